// The live lambda slider (issue 11): Streamlit components v2 module. The browser solves the inverse
// problem exactly at every input event while the thumb moves, and tells the server only on release.
//
// The solvers below are ports of the project's Python solvers, line for line where it matters:
//   negLogProba     <- solver/_objective.py  neg_log_proba   (relative logits, log1p branch)
//   newtonReduced   <- solver/_newton.py     newton_reduced  (MATH.md section 2)
//   projectedNewton <- solver/_projected.py  projected_newton (MATH.md section 6, feature ranges)
// with the same constants (Armijo 1e-4, shrink 0.8, 100 backtracks, the 64-ulp round-off rule), the same
// stopping rules (gradient norm, projected gradient norm) and the same status codes. They take typed
// arrays and touch no DOM, so tests/test_live_slider.py runs them under node against solver.invert.
//
// Streamlit runs loader.js, which imports this module from the text of a full payload (header.module) once.
//
// The payload (ui/live_slider.py, build_payload) is one byte string: a little-endian uint32 n, n bytes of
// UTF-8 JSON (the header), zero padding to a multiple of 8, then the float64 arrays the header lists
// (offset and length of each, in float64s from the end of the padding). When the header says
// with_arrays: false, the bytes end after the header: the page holds the arrays of that key already (or
// asks the server for them with the "missing" state value).
//
// A question's answer on screen (header.answer = {title, box}): the component shows the slider alone, with a
// line saying so, and solves nothing; the first move of the thumb hides the answer's box (a CSS selector of
// the page's own container) and shows the live view, and the release tells the server, which drops the answer.

export const CONVERGED = 0, MAX_ITER = 1, STALLED = 2, NON_FINITE = 3, ROUND_OFF = 4;
const EPS = Number.EPSILON;  // 2^-52, numpy's finfo(float64).eps
const ARMIJO = 1e-4;
const SHRINK = 0.8;
const MAX_BACKTRACKS = 100;
const ROUND_OFF_ULPS = 64;
const ACTIVE_MARGIN = 1e-3;  // projected Newton: a bound is active within min(margin, ||projected gradient||)

// ---------------------------------------------------------------------------------------------------
// Shared pieces

/** -log p_k from relative logits w (w[target] == 0); fills proba with softmax(w). */
export function negLogProba(w, target, proba) {
  const K = w.length;
  let top = -Infinity;
  for (let i = 0; i < K; i++) {
    if (Number.isNaN(w[i])) { proba.fill(NaN); return NaN; }
    if (w[i] > top) top = w[i];
  }
  let value;
  if (top <= 0) {
    // The target dominates: log1p keeps the digits that logsumexp(z) - z_k would lose.
    let others = 0;
    for (let i = 0; i < K; i++) if (i !== target) others += Math.exp(w[i]);
    value = Math.log1p(others);
  } else {
    let total = 0;
    for (let i = 0; i < K; i++) total += Math.exp(w[i] - top);
    value = top + Math.log(total);
  }
  for (let i = 0; i < K; i++) proba[i] = Math.exp(w[i] - value);
  return value;
}

function dot(a, b, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/** Solve (matrix) z = rhs for a symmetric positive definite n x n matrix (row-major; overwritten):
 * Cholesky, as solver/_newton.py's _spd_solve (LAPACK dposv). Where Cholesky fails on round-off,
 * Gaussian elimination with partial pivoting on a saved copy (Python falls back to least squares). */
export function spdSolve(matrix, rhs, n) {
  const z = new Float64Array(n);
  if (n === 0) return z;
  const saved = Float64Array.from(matrix);
  const L = matrix;
  let ok = true;
  for (let j = 0; j < n && ok; j++) {
    let d = L[j * n + j];
    for (let k = 0; k < j; k++) d -= L[j * n + k] * L[j * n + k];
    if (!(d > 0) || !Number.isFinite(d)) { ok = false; break; }
    const root = Math.sqrt(d);
    L[j * n + j] = root;
    for (let i = j + 1; i < n; i++) {
      let s = L[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = s / root;
    }
  }
  if (ok) {
    for (let i = 0; i < n; i++) {  // L y = rhs
      let s = rhs[i];
      for (let k = 0; k < i; k++) s -= L[i * n + k] * z[k];
      z[i] = s / L[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) {  // L^T z = y
      let s = z[i];
      for (let k = i + 1; k < n; k++) s -= L[k * n + i] * z[k];
      z[i] = s / L[i * n + i];
    }
    return z;
  }
  return gaussSolve(saved, Float64Array.from(rhs), n);
}

function gaussSolve(A, b, n) {
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(A[i * n + c]) > Math.abs(A[pivot * n + c])) pivot = i;
    if (pivot !== c) {
      for (let k = 0; k < n; k++) { const t = A[c * n + k]; A[c * n + k] = A[pivot * n + k]; A[pivot * n + k] = t; }
      const t = b[c]; b[c] = b[pivot]; b[pivot] = t;
    }
    const head = A[c * n + c];
    if (head === 0) continue;
    for (let i = c + 1; i < n; i++) {
      const f = A[i * n + c] / head;
      if (f === 0) continue;
      for (let k = c; k < n; k++) A[i * n + k] -= f * A[c * n + k];
      b[i] -= f * b[c];
    }
  }
  const z = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= A[i * n + k] * z[k];
    z[i] = A[i * n + i] === 0 ? 0 : s / A[i * n + i];
  }
  return z;
}

/** Armijo on E; near machine precision, a full step that reduces ||grad|| (MATH.md section 4).
 * The same rule as solver/_newton.py's _accept_step; trialGradNorm is called only when needed. */
function acceptStep(energy, gradNorm, trialEnergy, slope, step, trialGradNorm) {
  if (!Number.isFinite(trialEnergy)) return false;
  if (trialEnergy <= energy + ARMIJO * step * slope) return true;
  const atRoundOff = trialEnergy - energy <= ROUND_OFF_ULPS * EPS * Math.max(1.0, Math.abs(energy));
  return step === 1.0 && atRoundOff && trialGradNorm() < gradNorm;
}

// ---------------------------------------------------------------------------------------------------
// Reduced Newton (MATH.md section 2): F(u) = lam/2 ||u||^2 + logsumexp(w0 + N u), N = M - 1 M_k (K x r)

/** Minimise F from the start u (copied); O(K r^2) per iteration, independent of D.
 * grad F = lam u + N^T p;  hess F = lam I + Nc^T diag(p) Nc with Nc = N - 1 (p^T N), the centred form. */
export function newtonReduced(N, K, r, w0, target, lam, uStart, tol, maxIter) {
  let nNorm = 0;
  for (let i = 0; i < K * r; i++) nNorm += N[i] * N[i];
  nNorm = Math.sqrt(nNorm);
  const w = new Float64Array(K);

  function evaluate(u) {  // (energy, proba, grad) at u
    for (let i = 0; i < K; i++) {
      let s = w0[i];
      for (let j = 0; j < r; j++) s += N[i * r + j] * u[j];
      w[i] = s;
    }
    const proba = new Float64Array(K);
    const value = negLogProba(w, target, proba);
    const grad = new Float64Array(r);
    for (let j = 0; j < r; j++) grad[j] = lam * u[j];
    for (let i = 0; i < K; i++) {
      const p = proba[i];
      for (let j = 0; j < r; j++) grad[j] += N[i * r + j] * p;
    }
    return { energy: 0.5 * lam * dot(u, u, r) + value, proba, grad };
  }
  function energyOnly(u) {
    for (let i = 0; i < K; i++) {
      let s = w0[i];
      for (let j = 0; j < r; j++) s += N[i * r + j] * u[j];
      w[i] = s;
    }
    const scratch = new Float64Array(K);
    return 0.5 * lam * dot(u, u, r) + negLogProba(w, target, scratch);
  }

  let u = Float64Array.from(uStart);
  let { energy, proba, grad } = evaluate(u);
  let gradNorm = Math.sqrt(dot(grad, grad, r));
  let floor = 100.0 * EPS * (nNorm + 1.0);
  if (!Number.isFinite(energy)) return { u, proba, energy, gradNorm, nIter: 0, status: NON_FINITE, floor };
  let status = MAX_ITER;
  let nIter = 0;
  const hessian = new Float64Array(r * r);
  const mean = new Float64Array(r);
  const centred = new Float64Array(K * r);
  for (nIter = 0; nIter <= maxIter; nIter++) {
    floor = 100.0 * EPS * (lam * Math.sqrt(dot(u, u, r)) + nNorm + 1.0);
    if (gradNorm <= tol) { status = CONVERGED; break; }
    if (nIter === maxIter) break;
    // Hessian lam I + Nc^T diag(p) Nc
    mean.fill(0);
    for (let i = 0; i < K; i++) for (let j = 0; j < r; j++) mean[j] += proba[i] * N[i * r + j];
    for (let i = 0; i < K; i++) for (let j = 0; j < r; j++) centred[i * r + j] = N[i * r + j] - mean[j];
    for (let a = 0; a < r; a++) {
      for (let b = a; b < r; b++) {
        let s = 0;
        for (let i = 0; i < K; i++) s += centred[i * r + a] * proba[i] * centred[i * r + b];
        hessian[a * r + b] = s;
        hessian[b * r + a] = s;
      }
      hessian[a * r + a] += lam;
    }
    const direction = spdSolve(hessian, grad, r);
    for (let j = 0; j < r; j++) direction[j] = -direction[j];
    const slope = dot(grad, direction, r);
    let trial = new Float64Array(r);
    for (let j = 0; j < r; j++) trial[j] = u[j] + direction[j];
    let next = evaluate(trial);
    if (!acceptStep(energy, gradNorm, next.energy, slope, 1.0, () => Math.sqrt(dot(next.grad, next.grad, r)))) {
      // Backtracking 0.8^j, j = 1..100: the first step meeting Armijo (Python tests them in one batch).
      let found = false;
      for (let j = 1; j <= MAX_BACKTRACKS; j++) {
        const step = Math.pow(SHRINK, j);
        for (let c = 0; c < r; c++) trial[c] = u[c] + step * direction[c];
        const e = energyOnly(trial);
        if (Number.isFinite(e) && e <= energy + ARMIJO * step * slope) { found = true; break; }
      }
      if (!found) {
        status = gradNorm <= floor ? ROUND_OFF : STALLED;
        break;
      }
      next = evaluate(trial);
    }
    u = trial;
    energy = next.energy;
    proba = next.proba;
    grad = next.grad;
    gradNorm = Math.sqrt(dot(grad, grad, r));
  }
  return { u, proba, energy, gradNorm, nIter, status, floor };
}

// ---------------------------------------------------------------------------------------------------
// Projected Newton for ranges lower <= y <= upper (MATH.md section 6; Bertsekas 1982), full space

/** Minimise E(y) = lam/2 ||y - y0||^2 + logsumexp(B y + c) over the box, B = Abar (K x D, row k zero).
 * Free features take the Newton step d_F = -(g_F - (C B_F)^T (lam I_K + C G_F C^T)^{-1} C B_F g_F) / lam,
 * active ones a gradient step scaled like lam I; a line search along the projection arc; stop on the
 * projected gradient ||y - P(y - grad E)||. O(D K^2) per iteration, O(D K) per line-search trial. */
export function projectedNewton(B, K, D, c, y0, target, lam, lower, upper, yStart, tol, maxIter) {
  let bNorm = 0;
  for (let i = 0; i < K * D; i++) bNorm += B[i] * B[i];
  bNorm = Math.sqrt(bNorm);
  const w = new Float64Array(K);
  const clipInto = (out, v) => {
    for (let j = 0; j < D; j++) out[j] = Math.min(Math.max(v[j], lower[j]), upper[j]);
    return out;
  };
  function evaluate(y) {  // energy, proba, diff = y - y0
    for (let i = 0; i < K; i++) {
      let s = 0;
      const row = i * D;
      for (let j = 0; j < D; j++) s += B[row + j] * y[j];
      w[i] = s + c[i];
    }
    const proba = new Float64Array(K);
    const value = negLogProba(w, target, proba);
    const diff = new Float64Array(D);
    let d2 = 0;
    for (let j = 0; j < D; j++) { diff[j] = y[j] - y0[j]; d2 += diff[j] * diff[j]; }
    return { energy: 0.5 * lam * d2 + value, proba, diff };
  }
  function gradient(diff, proba) {  // lam diff + B^T p
    const g = new Float64Array(D);
    for (let j = 0; j < D; j++) g[j] = lam * diff[j];
    for (let i = 0; i < K; i++) {
      const p = proba[i], row = i * D;
      for (let j = 0; j < D; j++) g[j] += B[row + j] * p;
    }
    return g;
  }
  function projectedNorm(y, g) {
    let s = 0;
    for (let j = 0; j < D; j++) {
      const step = y[j] - Math.min(Math.max(y[j] - g[j], lower[j]), upper[j]);
      s += step * step;
    }
    return Math.sqrt(s);
  }
  function distance(y) {
    let s = 0;
    for (let j = 0; j < D; j++) s += (y[j] - y0[j]) * (y[j] - y0[j]);
    return Math.sqrt(s);
  }

  let y = clipInto(new Float64Array(D), yStart);
  let { energy, proba, diff } = evaluate(y);
  let grad = gradient(diff, proba);
  let pgNorm = projectedNorm(y, grad);
  let floor = 100.0 * EPS * (bNorm + 1.0);
  if (!Number.isFinite(energy)) return { y, proba, energy, gradNorm: pgNorm, nIter: 0, status: NON_FINITE, floor };
  let status = MAX_ITER;
  let nIter = 0;
  const free = new Uint8Array(D);
  const freeIndex = new Int32Array(D);
  const CB = new Float64Array(K * D);
  const mean = new Float64Array(D);
  const system = new Float64Array(K * K);
  const rhs = new Float64Array(K);
  const direction = new Float64Array(D);
  const raw = new Float64Array(D);
  const sqrtP = new Float64Array(K);
  for (nIter = 0; nIter <= maxIter; nIter++) {
    if (pgNorm <= tol) { status = CONVERGED; break; }
    if (nIter === maxIter) break;
    const margin = Math.min(ACTIVE_MARGIN, pgNorm);
    let nFree = 0;
    for (let j = 0; j < D; j++) {
      const active = grad[j] > 0 ? y[j] <= lower[j] + margin : y[j] >= upper[j] - margin;
      free[j] = active ? 0 : 1;
      if (!active) freeIndex[nFree++] = j;
    }
    // C B_F = diag(sqrt p)(B_F - 1 p^T B_F), only on the free columns (the others are zero).
    for (let i = 0; i < K; i++) sqrtP[i] = Math.sqrt(proba[i]);
    for (let f = 0; f < nFree; f++) {
      const j = freeIndex[f];
      let m = 0;
      for (let i = 0; i < K; i++) m += proba[i] * B[i * D + j];
      mean[j] = m;
    }
    for (let i = 0; i < K; i++) {
      const row = i * D;
      for (let f = 0; f < nFree; f++) {
        const j = freeIndex[f];
        CB[row + j] = sqrtP[i] * (B[row + j] - mean[j]);
      }
    }
    // (lam I_K + CB CB^T) z = CB g_F
    for (let a = 0; a < K; a++) {
      const ra = a * D;
      let s = 0;
      for (let f = 0; f < nFree; f++) { const j = freeIndex[f]; s += CB[ra + j] * grad[j]; }
      rhs[a] = s;
      for (let b = a; b < K; b++) {
        const rb = b * D;
        let t = 0;
        for (let f = 0; f < nFree; f++) { const j = freeIndex[f]; t += CB[ra + j] * CB[rb + j]; }
        system[a * K + b] = t;
        system[b * K + a] = t;
      }
      system[a * K + a] += lam;
    }
    const z = spdSolve(system, rhs, K);
    // free part: the Newton step; active part: a gradient step scaled like lam I
    let slopeFree = 0;
    for (let j = 0; j < D; j++) {
      if (free[j]) {
        let s = 0;
        for (let i = 0; i < K; i++) s += CB[i * D + j] * z[i];
        direction[j] = (s - grad[j]) / lam;
        slopeFree += grad[j] * direction[j];
      } else {
        direction[j] = -grad[j] / lam;
      }
    }
    const decreaseAt = (trialY, step) => {  // step * slope_free + grad_active . (trial - y)
      let s = 0;
      for (let j = 0; j < D; j++) if (!free[j]) s += grad[j] * (trialY[j] - y[j]);
      return step * slopeFree + s;
    };
    let step = 1.0;
    let accepted = false;
    for (let j = 0; j < D; j++) raw[j] = y[j] + direction[j];
    let trial = clipInto(new Float64Array(D), raw);
    let next = evaluate(trial);
    const decrease = decreaseAt(trial, 1.0);
    if (Number.isFinite(next.energy) && next.energy <= energy + ARMIJO * decrease) {
      accepted = true;
    } else if (next.energy - energy <= ROUND_OFF_ULPS * EPS * Math.max(1.0, Math.abs(energy))) {
      accepted = projectedNorm(trial, gradient(next.diff, next.proba)) < pgNorm;  // round-off regime
    }
    if (!accepted) {
      for (let b = 1; b <= MAX_BACKTRACKS; b++) {
        step = Math.pow(SHRINK, b);
        for (let j = 0; j < D; j++) raw[j] = y[j] + step * direction[j];
        clipInto(trial, raw);
        const candidate = evaluate(trial);
        if (Number.isFinite(candidate.energy) && candidate.energy <= energy + ARMIJO * decreaseAt(trial, step)) {
          next = candidate;
          accepted = true;
          break;
        }
      }
    }
    if (!accepted) {
      floor = 100.0 * EPS * (lam * distance(y) + bNorm + 1.0);
      status = pgNorm <= floor ? ROUND_OFF : STALLED;
      break;
    }
    y = trial;
    energy = next.energy;
    proba = next.proba;
    grad = gradient(next.diff, proba);
    pgNorm = projectedNorm(y, grad);
  }
  floor = 100.0 * EPS * (lam * distance(y) + bNorm + 1.0);
  return { y, proba, energy, gradNorm: pgNorm, nIter, status, floor };
}

// ---------------------------------------------------------------------------------------------------
// The payload and the problem it poses

/** Header and float64 arrays from the payload bytes (a Uint8Array, ArrayBuffer or Node Buffer). */
export function parsePayload(bytes) {
  const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  const buffer = view.slice().buffer;  // a fresh, 8-byte aligned copy
  const headerLength = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, headerLength)));
  if (header.with_arrays === false) return { header, arrays: null };
  const base = 8 * Math.ceil((4 + headerLength) / 8);
  const arrays = {};
  for (const [name, [offset, length]] of Object.entries(header.arrays)) {  // offsets in float64s
    arrays[name] = new Float64Array(buffer, base + 8 * offset, length);
  }
  return { header, arrays };
}

/** One question (model, x0, target, constraints) solved at any lam, warm-started from the last solve. */
export class LiveProblem {
  constructor(payload) {
    const { header, arrays } = payload;
    this.header = header;
    this.arrays = arrays;
    this.mode = header.mode;
    this.K = header.n_classes;
    this.D = header.n_features;
    this.target = header.target;
    this.tol = header.tol;
    this.maxIter = header.max_iter;
    const K = this.K, k = this.target;
    if (this.mode === "reduced") {
      // w0 = (A x0 + b) - (A x0 + b)_k and N = M - 1 M_k (MATH.md section 2)
      this.r = header.rank;
      const r = this.r, M = arrays.M, logits = arrays.logits;
      this.N = new Float64Array(K * r);
      for (let i = 0; i < K; i++) for (let j = 0; j < r; j++) this.N[i * r + j] = M[i * r + j] - M[k * r + j];
      this.w0 = new Float64Array(K);
      for (let i = 0; i < K; i++) this.w0[i] = logits[i] - logits[k];
      this.warm = new Float64Array(r);
    } else {
      // Abar = A - 1 a_k^T, bbar = b - b_k (solver/_objective.py relative_parameters)
      const Df = header.n_free;
      this.Df = Df;
      const A = arrays.coef, b = arrays.intercept;
      this.B = new Float64Array(K * Df);
      for (let i = 0; i < K; i++) for (let j = 0; j < Df; j++) this.B[i * Df + j] = A[i * Df + j] - A[k * Df + j];
      this.c = new Float64Array(K);
      for (let i = 0; i < K; i++) this.c[i] = b[i] - b[k];
      this.warm = Float64Array.from(arrays.y0);
    }
  }

  /** Solve at lam from the previous solution (or cold from x0); returns the shown quantities. */
  solve(lam, cold = false) {
    const K = this.K, a = this.arrays;
    let outcome;
    if (this.mode === "reduced") {
      const start = cold ? new Float64Array(this.r) : this.warm;
      outcome = newtonReduced(this.N, K, this.r, this.w0, this.target, lam, start, this.tol, this.maxIter);
    } else {
      const start = cold ? a.y0 : this.warm;
      outcome = projectedNewton(this.B, K, this.Df, this.c, a.y0, this.target, lam, a.lower, a.upper, start,
                                this.tol, this.maxIter);
    }
    const ok = outcome.status === CONVERGED || outcome.status === ROUND_OFF;
    const point = this.mode === "reduced" ? outcome.u : outcome.y;
    if (ok && point.every(Number.isFinite)) this.warm = point;
    else this.warm = this.mode === "reduced" ? new Float64Array(this.r) : Float64Array.from(a.y0);
    const x = this.lift(outcome);
    // The problem's own distance sqrt(sum_j cost_j (x_j - x0_j)^2) = ||y - y0||; in reduced form y - y0 = P u
    // with P orthonormal, so ||u||: no D-sized work.
    let distance;
    if (this.mode === "reduced") {
      distance = Math.sqrt(dot(outcome.u, outcome.u, this.r));
    } else {
      const y = outcome.y, y0 = a.y0;
      let s = 0;
      for (let j = 0; j < this.Df; j++) s += (y[j] - y0[j]) * (y[j] - y0[j]);
      distance = Math.sqrt(s);
    }
    let predicted = 0;
    for (let i = 1; i < K; i++) if (outcome.proba[i] > outcome.proba[predicted]) predicted = i;
    return { lam, x, distance, predicted, ok, proba: outcome.proba, gradNorm: outcome.gradNorm,
             nIter: outcome.nIter, status: outcome.status };
  }

  /** The counterfactual in the user's features, or null where the payload carries no D-sized lift. */
  lift(outcome) {
    const a = this.arrays;
    if (!a.x0) return null;
    const x = Float64Array.from(a.x0);
    if (this.mode === "reduced") {
      if (!a.lift) return null;
      const r = this.r, D = this.D, L = a.lift, u = outcome.u;
      for (let j = 0; j < r; j++) {
        const uj = u[j], row = j * D;
        if (uj !== 0) for (let i = 0; i < D; i++) x[i] += uj * L[row + i];
      }
    } else {
      const free = a.free, scale = a.scale, y = outcome.y;
      for (let f = 0; f < this.Df; f++) x[free[f]] = y[f] / scale[f];
    }
    return x;
  }
}

// ---------------------------------------------------------------------------------------------------
// Pixels, as ui/figures.py's triptych_images draws them (grey: 0 white, 1 black; RdBu difference)

const DIVERGING = [[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240],
                   [247, 247, 247], [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43],
                   [103, 0, 31]];

/** RGBA bytes of grey levels 255 (1 - clip(x, 0, 1)), truncated like numpy's astype(uint8). */
export function greyPixels(x, out) {
  for (let i = 0; i < x.length; i++) {
    const level = Math.trunc(255 * (1.0 - Math.min(Math.max(x[i], 0.0), 1.0)));
    out[4 * i] = level; out[4 * i + 1] = level; out[4 * i + 2] = level; out[4 * i + 3] = 255;
  }
  return out;
}

/** RGBA bytes of the difference on the diverging scale symmetric about 0; returns its end, max |diff|. */
export function differencePixels(x, x0, out) {
  let bound = 0;
  for (let i = 0; i < x.length; i++) bound = Math.max(bound, Math.abs(x[i] - x0[i]));
  if (bound === 0) bound = 1.0;
  const last = DIVERGING.length - 1;
  for (let i = 0; i < x.length; i++) {
    const position = ((x[i] - x0[i]) / bound + 1.0) * 0.5 * last;  // np.interp on anchors 0..last
    const lo = Math.min(Math.max(Math.floor(position), 0), last - 1);
    const t = Math.min(Math.max(position - lo, 0), 1);
    for (let ch = 0; ch < 3; ch++) {
      const a = DIVERGING[lo][ch], b = DIVERGING[lo + 1][ch];
      out[4 * i + ch] = Math.trunc(t === 1 ? b : a + t * (b - a));
    }
    out[4 * i + 3] = 255;
  }
  return bound;
}

// ---------------------------------------------------------------------------------------------------
// The view

const STATS_KEPT = 20000;
const views = new WeakMap();  // parentElement -> view, so a rerun with new data keeps the DOM and warm start

/** Python's f"{value:.{precision}g}" (the Explore page's format for lambda and distances). */
export function formatG(value, precision = 4) {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return "0";
  const [mantissa, exponentText] = value.toExponential(precision - 1).split("e");
  const exponent = Number(exponentText);
  const strip = (text) => (text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text);
  if (exponent < -4 || exponent >= precision) {
    return `${strip(mantissa)}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  return strip(value.toFixed(Math.max(precision - 1 - exponent, 0)));
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

class LiveView {
  constructor(parentElement) {
    this.root = parentElement.querySelector(".live-slider");
    this.input = this.root.querySelector("input[type=range]");
    this.stats = { frameMs: [], stamps: [], frames: 0 };
    this.root.liveStats = this.stats;
    this.answerLine = this.root.querySelector(".live-answer");
    this.dragging = false;
    this.moved = false;
    this.payloadKey = null;
    this.requested = null;
    this.lastNonce = null;
    this.answer = null;
  }

  setData(bytes, setStateValue) {
    this.setStateValue = setStateValue;
    const payload = parsePayload(bytes);
    const h = payload.header;
    if (h.key !== this.payloadKey) {  // a new question: rebuild the problem and the view
      if (payload.arrays === null) {  // a header alone, for arrays this view never had (it was remounted)
        this.root.dataset.view = "loading";
        if (this.requested !== h.key) {  // once per key: the server's next run sends them
          this.requested = h.key;
          setStateValue("missing", { key: h.key, nonce: Math.random() });
        }
        return;
      }
      this.payloadKey = h.key;
      this.problem = new LiveProblem(payload);
      this.build(h, payload.arrays);
      this.drawn = null;
    }
    const slider = h.log_lam;
    this.input.min = String(slider.min);
    this.input.max = String(slider.max);
    this.input.step = String(slider.step);
    // The server's value, unless it predates a release of ours still on its way (fast arrow-key presses):
    // the server echoes the nonce of the last release it took in.
    const behind = this.lastNonce !== null && h.echo !== this.lastNonce;
    if (!this.dragging && !behind) {
      this.input.value = String(slider.value);
      this.showAnswer(h.answer || null);
      // The server's echo of what is drawn already (every release) costs no solve and no redraw.
      if (this.answer === null && this.drawn !== this.input.value) this.render();
    }
  }

  /** A question's answer is on screen (or not): the slider alone, solving nothing, or the live view. */
  showAnswer(answer) {
    this.answer = answer;
    const root = this.root;
    root.classList.toggle("live-answer-mode", answer !== null);
    root.dataset.view = answer === null ? "live" : "answer";
    if (answer === null) return;
    this.drawn = null;
    hideBox(null);  // the answer's box is on screen again
    this.answerLine.textContent = `Showing below: ${answer.title}. Moving the slider returns to the slider's answer.`;
    root.dataset.proba = "[]";  // no probabilities of ours are on screen
    root.dataset.lam = "";
    root.dataset.logLam = this.input.value;
  }

  /** The thumb moved while a question's answer was on screen: that answer goes, the slider's comes. */
  leaveAnswer() {
    hideBox(this.answer.box || null);
    this.showAnswer(null);
  }

  build(h, arrays) {
    const names = h.class_names, K = h.n_classes;
    this.names = names;
    this.proba0 = arrays.proba0;
    this.root.querySelector(".live-label").textContent = h.label;
    this.root.querySelector(".live-note").textContent = h.note;
    const metrics = this.root.querySelector(".live-metrics");
    metrics.replaceChildren();
    const metric = (label) => {
      const box = element("div", "live-metric");
      box.append(element("div", "live-metric-label", label));
      const value = element("div", "live-metric-value");
      const delta = element("div", "live-metric-delta");
      box.append(value, delta);
      metrics.append(box);
      return { value, delta };
    };
    this.m = {
      lam: metric("λ"),
      target: metric(`p(${names[h.target]})`),
      predicted: metric("predicted"),
      distance: metric(h.distance_label || "distance ‖x − x₀‖"),
    };
    const images = this.root.querySelector(".live-images");
    images.replaceChildren();
    this.canvases = null;
    if (h.image_shape && arrays.x0 && (arrays.lift || h.mode === "projected")) {
      const [height, width] = h.image_shape;
      const figure = element("div", "live-triptych");
      const make = (title) => {
        const cell = element("div", "live-cell");
        const canvas = element("canvas");
        canvas.width = width;
        canvas.height = height;
        cell.append(canvas, element("div", "live-caption", title));
        figure.append(cell);
        return canvas.getContext("2d");
      };
      const source = make("source");
      this.canvases = { counterfactual: make(`counterfactual (${names[h.target]})`), difference: make("difference") };
      this.pixels = { counterfactual: new ImageData(width, height), difference: new ImageData(width, height) };
      const sourcePixels = new ImageData(width, height);
      greyPixels(arrays.x0, sourcePixels.data);
      source.putImageData(sourcePixels, 0, 0);
      this.scaleCaption = element("div", "live-caption live-scale");
      images.append(figure, this.scaleCaption);
    }
    const table = this.root.querySelector(".live-bars");
    table.replaceChildren();
    const head = element("tr");
    head.append(element("th", "", "class"), element("th", "live-span", "source"), element("th", ""),
                element("th", "live-span", "live"), element("th", ""));
    table.append(head);
    this.bars = [];
    for (let i = 0; i < K; i++) {
      const row = element("tr", i === h.target ? "live-target" : "");
      const bar = (colour, share) => {
        const cell = element("td", "live-bar-cell");
        const fill = element("div", "live-bar");
        fill.style.background = colour;
        fill.style.transform = `scaleX(${share})`;  // a transform, not a width: no layout on every frame
        cell.append(fill);
        return [cell, fill];
      };
      const [sourceCell] = bar("#9aa5b1", this.proba0[i]);
      const [liveCell, liveFill] = bar(i === h.target ? h.target_colour : "#4a5568", this.proba0[i]);
      const liveValue = element("td", "live-number");
      row.append(element("td", "live-name", names[i]), sourceCell, element("td", "live-number", this.proba0[i].toFixed(3)),
                 liveCell, liveValue);
      table.append(row);
      this.bars.push({ fill: liveFill, value: liveValue });
    }
  }

  /** Solve at the slider's lam and redraw everything it drives; one frame. */
  render() {
    const started = performance.now();
    const logLam = Number(this.input.value);
    const lam = Math.pow(10, logLam);
    const frame = this.problem.solve(lam);
    const h = this.problem.header, names = this.names, k = h.target;
    this.m.lam.value.textContent = formatG(lam, 4);
    this.m.lam.delta.textContent = `log₁₀ λ = ${logLam.toFixed(2)}`;
    const pk = frame.proba[k];
    this.m.target.value.textContent = pk.toFixed(4);
    const change = pk - this.proba0[k];
    this.m.target.delta.textContent = `${change >= 0 ? "+" : "−"}${Math.abs(change).toFixed(4)}`;
    this.m.target.delta.className = `live-metric-delta ${change >= 0 ? "live-up" : "live-down"}`;
    this.m.predicted.value.textContent = names[frame.predicted];
    this.m.predicted.delta.textContent = frame.predicted === k ? "= target" : "";
    this.m.distance.value.textContent = formatG(frame.distance, 4);
    this.m.distance.delta.textContent = `in your browser: ${frame.nIter} Newton it. · ‖grad‖ ` +
      frame.gradNorm.toExponential(1);
    for (let i = 0; i < this.bars.length; i++) {
      this.bars[i].fill.style.transform = `scaleX(${frame.proba[i]})`;
      this.bars[i].value.textContent = frame.proba[i].toFixed(3);
    }
    if (this.canvases && frame.x) {
      greyPixels(frame.x, this.pixels.counterfactual.data);
      this.canvases.counterfactual.putImageData(this.pixels.counterfactual, 0, 0);
      const bound = differencePixels(frame.x, this.problem.arrays.x0, this.pixels.difference.data);
      this.canvases.difference.putImageData(this.pixels.difference, 0, 0);
      this.scaleCaption.textContent = `difference: red added, blue removed (±${Number(bound.toPrecision(3))} at full colour)`;
    }
    const warning = this.root.querySelector(".live-warning");
    warning.textContent = frame.ok ? "" : `Not converged in the browser (status ${frame.status}, ‖grad‖ ` +
      `${frame.gradNorm.toExponential(1)}); release the slider for the server's answer.`;
    this.root.dataset.lam = String(lam);
    this.root.dataset.logLam = String(logLam);
    this.root.dataset.proba = JSON.stringify(Array.from(frame.proba));
    this.root.dataset.status = String(frame.status);
    this.drawn = this.input.value;
    const elapsed = performance.now() - started;
    const s = this.stats;
    s.frames += 1;
    this.root.dataset.frames = String(s.frames);
    if (s.frameMs.length >= STATS_KEPT) { s.frameMs.splice(0, STATS_KEPT / 2); s.stamps.splice(0, STATS_KEPT / 2); }
    s.frameMs.push(elapsed);
    s.stamps.push(started);
    return frame;
  }

  attach() {
    const onInput = () => {
      if (!this.problem) return;
      this.moved = true;
      if (this.answer !== null) this.leaveAnswer();
      this.render();
    };
    const onDown = () => { this.dragging = true; this.moved = false; };
    const release = () => {
      this.dragging = false;
      this.moved = false;
      const logLam = Number(this.input.value);
      // A fresh nonce: releasing at the value the server already holds still reaches the server.
      this.lastNonce = Math.random();
      this.setStateValue("released", { log_lam: logLam, lam: Math.pow(10, logLam), nonce: this.lastNonce });
    };
    const onChange = () => { release(); };
    const onUp = () => {
      this.dragging = false;
      // A drag back to where it started fires no change event; it still left a question's answer.
      if (this.moved) setTimeout(() => { if (this.moved) release(); }, 0);
    };
    this.input.addEventListener("input", onInput);
    this.input.addEventListener("pointerdown", onDown);
    this.input.addEventListener("change", onChange);
    window.addEventListener("pointerup", onUp);
    return () => {
      this.input.removeEventListener("input", onInput);
      this.input.removeEventListener("pointerdown", onDown);
      this.input.removeEventListener("change", onChange);
      window.removeEventListener("pointerup", onUp);
    };
  }
}

// The page's own box of a question's answer, hidden by a style rule (not by touching Streamlit's elements):
// the rule matches nothing once Streamlit replaces that box with the slider's answer.
function hideBox(selector) {
  const id = "live-slider-hide-answer";
  let rule = document.getElementById(id);
  if (selector === null) {
    if (rule) rule.remove();
    return;
  }
  if (!rule) {
    rule = document.createElement("style");
    rule.id = id;
    document.head.append(rule);
  }
  rule.textContent = `${selector} { display: none !important; }`;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (!data) return undefined;
  let view = views.get(parentElement);
  if (!view) {
    view = new LiveView(parentElement);
    views.set(parentElement, view);
  }
  const detach = view.attach();
  view.setData(data, setStateValue);
  return detach;
}
