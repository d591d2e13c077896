"""The batched kernels: many rows' Newton iterations, projections and optimality systems at once.

Every row is an independent problem; the kernels advance all rows that have not finished by one step
of the single-row method at a time, with the per-row algebra stacked: ``(n, r, r)`` Newton systems,
``(n, K)`` logits, GEMMs with the model's weights. A row that has converged (or failed) leaves the
working set. Nothing here is ``n x D x K``: the largest arrays are ``n x K x r`` (reduced), ``n x D x s``
(``s`` <= 8 trial steps, feature ranges) and ``n x K x K``; the callers bound ``n`` by chunking.

* :class:`ReducedRows` / :class:`BoundedRows` are the rows' twins of ``ReducedEnergy`` and
  ``BoundedEnergy``; :func:`newton_rows` is the rows' twin of ``_newton.newton`` (the same unit-step
  acceptance, the same backtracking sequence, the same exit status).
* :func:`nnls_rows`: Lawson-Hanson's active-set method on the (K-1)-variable dual of the projection
  (MATH.md section 6), one stacked solve per step.
* :func:`kkt_newton_rows`: the rows' twin of ``_probability._kkt_newton``.
"""

from __future__ import annotations

import numpy as np

from ._iteration import (
    ACTIVE_MARGIN,
    BACKTRACK_STEPS,
    accept_unit_steps,
    backtrack_rows,
    round_off_floor,
    spd_solve,
    stopped_statuses,
)
from ._objective import EPS
from ._result import CONVERGED, MAX_ITER, NON_FINITE
from ._rules import KKT_MAX_ITER, PENALISED_TOL


def solve_rows(matrices: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the stacked SPD systems ``matrices[i] x = rhs[i]`` (rhs (n, m) or (n, m, c)).

    One LAPACK call per system inside numpy's stacked solve; if any system is numerically singular the
    rows are solved one by one with :func:`spd_solve` (Cholesky, least squares if it fails).
    """
    vector = rhs.ndim == 2
    right = rhs[..., None] if vector else rhs
    try:
        solution = np.linalg.solve(matrices, right)
    except np.linalg.LinAlgError:
        solution = np.stack([spd_solve(m, r).reshape(r.shape) for m, r in zip(matrices, right)])
    return solution[..., 0] if vector else solution


def _norms(values: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", values, values))


def neg_log_proba_columns(W: np.ndarray, targets: np.ndarray, with_proba: bool = True):
    """``(-log p_k, p, 1 - p_k)`` for each column of W (K, m), relative logits with ``W[k_j, j] == 0``.

    ``_objective.neg_log_proba_rows`` for one target per column, class-major (reductions over K run
    across contiguous columns, ~20x faster than over a short last axis) and with one exponential per
    entry: with ``s = max(top, 0)`` and ``e = exp(W - s)``, ``p = e / sum(e)``; ``1 - p_k`` is summed over
    the other classes, and for ``top <= 0`` ``-log p_k = log1p(sum_{j != k} e_j)``, exact as ``p_k -> 1``.
    """
    columns = np.arange(W.shape[1])
    top = W.max(axis=0)
    shift = np.maximum(top, 0.0)
    e = np.exp(W - shift)
    own = e[targets, columns]
    e[targets, columns] = 0.0
    rest = e.sum(axis=0)
    total = rest + own
    value = np.where(top <= 0.0, np.log1p(rest), shift + np.log(total))
    if not with_proba:
        return value, None, None
    e[targets, columns] = own
    e /= total
    return value, e, rest / total


class ReducedRows:
    """``F_i(u) = lam_i/2 ||u||^2 + logsumexp(w0_i + N_{k_i} u)`` for many rows (MATH.md section 2), with
    ``N_k = M - 1 m_k^T``; the rows' twin of ``ReducedEnergy``.

    Every product is a GEMM with ``M`` (K x r), whatever each row's target: ``N_k u = M u - (m_k . u) 1``,
    ``N_k^T p = sum_{j != k} p_j (m_j - m_k)``, and the Hessian's curvature term
    ``N_k^T (diag p - p p^T) N_k`` is the covariance of M's rows under p, which no shift changes:
    ``sum_j p_j c_j c_j^T - cbar cbar^T`` with ``c_j`` the centred rows of M, one ``(n, K) @ (K, r^2)``
    product for all rows. Logits are held class-major, (K, rows).
    """

    batch = 20  # trial steps per line-search evaluation: (K, rows x 20) logits

    def __init__(self, M: np.ndarray, w0: np.ndarray, targets: np.ndarray, lams: np.ndarray):
        K, r = M.shape
        self.M, self.targets, self.lams = M, targets, lams
        self.w0 = np.ascontiguousarray(w0.T)  # (K, n)
        self.Mk = M[targets]
        centred = M - M.mean(axis=0)
        self.centred = centred
        self.outer = (centred[:, :, None] * centred[:, None, :]).reshape(K, r * r)
        per_target = np.sqrt(((M[None, :, :] - M[:, None, :]) ** 2).sum(axis=(1, 2)))
        self.n_norm = per_target[targets]
        self.identity = np.eye(r)

    def _image(self, rows, V):
        """``N_k v`` for each row's v, class-major (K, m), exactly 0 at the target."""
        W = self.M @ V.T - np.einsum("ir,ir->i", V, self.Mk[rows])
        W[self.targets[rows], np.arange(V.shape[0])] = 0.0
        return W

    def evaluate(self, rows, U):
        lam, targets = self.lams[rows], self.targets[rows]
        values, proba, rest = neg_log_proba_columns(self.w0[:, rows] + self._image(rows, U), targets)
        proba = proba.T  # (m, K)
        others = proba.copy()
        others[np.arange(proba.shape[0]), targets] = 0.0
        grad = lam[:, None] * U + others @ self.M - rest[:, None] * self.Mk[rows]
        return 0.5 * lam * np.einsum("ij,ij->i", U, U) + values, proba, grad, _norms(grad)

    def direction(self, rows, U, proba, grad, grad_norm):
        r = self.M.shape[1]
        mean = proba @ self.centred
        hessian = (proba @ self.outer).reshape(-1, r, r) - mean[:, :, None] * mean[:, None, :]
        hessian += self.lams[rows, None, None] * self.identity
        vector = -solve_rows(hessian, grad)
        return vector, np.einsum("ij,ij->i", grad, vector), None

    @staticmethod
    def point_at(rows, U, vector, step):
        return U + step * vector

    @staticmethod
    def decrease(U, trial, step, slope, active_grad):
        return step * slope

    def trials(self, rows, U, vector, slope, active_grad, steps):
        # Along a direction the logits are linear and the distance term quadratic in the step t.
        W = self.w0[:, rows] + self._image(rows, U)
        image = self._image(rows, vector)
        K, m, s = W.shape[0], W.shape[1], steps.shape[0]
        trial = (W[:, :, None] + image[:, :, None] * steps).reshape(K, m * s)
        values, _, _ = neg_log_proba_columns(trial, np.repeat(self.targets[rows], s), with_proba=False)
        uu, ud, dd = (np.einsum("ij,ij->i", a, b) for a, b in ((U, U), (U, vector), (vector, vector)))
        distance = uu[:, None] + 2.0 * steps[None, :] * ud[:, None] + steps[None, :] ** 2 * dd[:, None]
        return 0.5 * self.lams[rows, None] * distance + values.reshape(m, s), steps[None, :] * slope[:, None]

    def floor(self, rows, U):
        return round_off_floor(self.lams[rows], _norms(U), self.n_norm[rows])


class BoundedRows:
    """``E_i(y) = lam_i/2 ||y - y0_i||^2 + logsumexp(Abar_{k_i} y + bbar_i)`` on the box ``[lower, upper]``,
    projected Newton for many rows (the rows' twin of ``BoundedEnergy``).

    Target-independent algebra keeps every product a GEMM with ``A`` (K x F): since ``C 1 = 0`` for
    ``C = diag(sqrt p)(I - 1 p^T)``, ``C Abar_F = C A_F``, so the K x K system of MATH.md section 3 is
    ``lam I + C (A D_f A^T) C^T`` with ``D_f`` the free-feature mask, and ``A D_f A^T`` for every row is
    one product ``f @ AA`` with ``AA[:, (k, l)] = A_k o A_l`` (when it fits in memory).
    """

    batch = 8

    def __init__(self, coef, intercepts, y0, targets, lams, lower, upper, outer=None):
        self.A, self.y0, self.targets, self.lams = coef, y0, targets, lams
        self.bT = np.ascontiguousarray(intercepts.T)  # (K, n)
        self.lower, self.upper = lower, upper
        self.outer = outer  # (F, K*K) or None
        K = coef.shape[0]
        self.identity = np.eye(K)
        self.b_norm = np.array([np.linalg.norm(coef - coef[k]) for k in range(K)])

    def clip(self, Y):
        return np.minimum(np.maximum(Y, self.lower), self.upper)

    def _relative(self, rows, Y, with_proba=True):
        """``(-log p_k, p)`` for points Y (m, F), or their values for Y (m, s, F) as (m, s)."""
        targets = self.targets[rows]
        if Y.ndim == 2:
            Z = self.A @ Y.T + self.bT[:, rows]  # (K, m)
            m = Y.shape[0]
        else:
            m, s = Y.shape[0], Y.shape[1]
            Z = (self.A @ Y.reshape(m * s, -1).T).reshape(-1, m, s) + self.bT[:, rows, None]
            Z = Z.reshape(-1, m * s)
            targets = np.repeat(targets, s)
        columns = np.arange(Z.shape[1])
        W = Z - Z[targets, columns]
        W[targets, columns] = 0.0
        values, proba, _ = neg_log_proba_columns(W, targets, with_proba)
        if Y.ndim == 3:
            return values.reshape(m, -1), None
        return values, proba.T

    def evaluate(self, rows, Y):
        lam, targets = self.lams[rows], self.targets[rows]
        values, proba = self._relative(rows, Y)
        others = proba.copy()
        others[np.arange(proba.shape[0]), targets] = 0.0
        # Abar^T p = sum_{j != k} p_j (a_j - a_k), without the cancellation of A^T p - a_k
        grad = lam[:, None] * (Y - self.y0[rows]) + others @ self.A - others.sum(axis=1)[:, None] * self.A[targets]
        diff = Y - self.y0[rows]
        projected = Y - self.clip(Y - grad)
        return 0.5 * lam * np.einsum("ij,ij->i", diff, diff) + values, proba, grad, _norms(projected)

    def _free_gram(self, free):
        """``A D_f A^T`` (m, K, K) for each row's free mask ``f``."""
        K = self.A.shape[0]
        if self.outer is not None:
            return (free @ self.outer).reshape(-1, K, K)
        return np.matmul(self.A[None, :, :] * free[:, None, :], self.A.T)

    def direction(self, rows, Y, proba, grad, grad_norm):
        lam = self.lams[rows]
        margin = np.minimum(ACTIVE_MARGIN, grad_norm)[:, None]
        active = np.where(grad > 0, Y <= self.lower + margin, Y >= self.upper - margin)
        free = (~active).astype(np.float64)
        gram = self._free_gram(free)
        q = np.einsum("ikl,il->ik", gram, proba)
        s = np.einsum("ik,ik->i", q, proba)
        centred = gram - q[:, :, None] - q[:, None, :] + s[:, None, None]  # (I - 1p^T) G (I - p1^T)
        root = np.sqrt(proba)
        system = root[:, :, None] * centred * root[:, None, :] + lam[:, None, None] * self.identity
        g_free = grad * free
        v = g_free @ self.A.T
        rhs = root * (v - np.einsum("ik,ik->i", proba, v)[:, None])  # C A_F g_F
        y = solve_rows(system, rhs)
        t = root * y
        back = t - proba * t.sum(axis=1)[:, None]  # C^T y
        vector = (free * (back @ self.A) - grad) / lam[:, None]  # free: Newton step; active: -grad / lam
        return vector, np.einsum("ij,ij->i", g_free, vector), grad * (1.0 - free)

    def point_at(self, rows, Y, vector, step):
        return self.clip(Y + step * vector)

    @staticmethod
    def decrease(Y, trial, step, slope, active_grad):
        return step * slope + np.einsum("ij,ij->i", active_grad, trial - Y)

    def trials(self, rows, Y, vector, slope, active_grad, steps):
        points = self.clip(Y[:, None, :] + steps[None, :, None] * vector[:, None, :])  # (m, s, F)
        values, _ = self._relative(rows, points, with_proba=False)
        diffs = points - self.y0[rows][:, None, :]
        energies = 0.5 * self.lams[rows, None] * np.einsum("isf,isf->is", diffs, diffs) + values
        decreases = steps[None, :] * slope[:, None] + np.einsum("isf,if->is", points - Y[:, None, :], active_grad)
        return energies, decreases

    def floor(self, rows, Y):
        return round_off_floor(self.lams[rows], _norms(Y - self.y0[rows]), self.b_norm[self.targets[rows]])


def newton_rows(energy, start: np.ndarray, tol: float, max_iter: int):
    """Damped Newton on every row of ``energy`` from ``start`` (n, m): the rows' twin of ``_newton.newton``.

    Each row takes the step the single-row loop would take: the unit step if it meets Armijo (or, at
    round-off level, reduces the gradient norm), else the first of the backtracking sequence that meets
    Armijo; a row whose search fails stops with :func:`stopped_statuses`. Returns
    ``(points, proba, energy, grad_norm, n_iter, status, floor)``.
    """
    n = start.shape[0]
    every = np.arange(n)
    point = start.copy()
    value, proba, grad, grad_norm = energy.evaluate(every, point)
    n_iter = np.zeros(n, dtype=np.int64)
    status = np.full(n, MAX_ITER)
    finite = np.isfinite(value)
    status[~finite] = NON_FINITE
    active = every[finite]
    for iteration in range(max_iter + 1):
        done = grad_norm[active] <= tol
        status[active[done]] = CONVERGED
        n_iter[active[done]] = iteration
        active = active[~done]
        if active.size == 0:
            break
        if iteration == max_iter:
            n_iter[active] = iteration
            break
        here = point[active]
        vector, slope, active_grad = energy.direction(active, here, proba[active], grad[active], grad_norm[active])
        trial = energy.point_at(active, here, vector, 1.0)
        t_value, t_proba, t_grad, t_norm = energy.evaluate(active, trial)
        decrease = energy.decrease(here, trial, 1.0, slope, active_grad)
        accepted = accept_unit_steps(value[active], grad_norm[active], t_value, t_norm, decrease)
        if not accepted.all():
            back = np.flatnonzero(~accepted)
            rows = active[back]

            def trials(subset, steps):
                ag = None if active_grad is None else active_grad[back[subset]]
                return energy.trials(rows[subset], here[back[subset]], vector[back[subset]], slope[back[subset]],
                                     ag, steps)

            found = backtrack_rows(trials, value[rows], energy.batch)
            stuck = found < 0
            if stuck.any():
                stopped = rows[stuck]
                status[stopped] = stopped_statuses(grad_norm[stopped], energy.floor(stopped, point[stopped]))
                n_iter[stopped] = iteration
            moved = back[~stuck]
            if moved.size:
                steps = BACKTRACK_STEPS[found[~stuck]][:, None]
                retry = energy.point_at(active[moved], here[moved], vector[moved], steps)
                r_value, r_proba, r_grad, r_norm = energy.evaluate(active[moved], retry)
                trial[moved], t_value[moved], t_proba[moved], t_grad[moved], t_norm[moved] = (
                    retry, r_value, r_proba, r_grad, r_norm)
            accepted[moved] = True
        rows = active[accepted]
        point[rows], value[rows], proba[rows], grad[rows], grad_norm[rows] = (
            trial[accepted], t_value[accepted], t_proba[accepted], t_grad[accepted], t_norm[accepted])
        active = rows
    return point, proba, value, grad_norm, n_iter, status, energy.floor(every, point)


def nnls_rows(G: np.ndarray, h: np.ndarray, eligible: np.ndarray, max_steps: int):
    """``min 1/2 mu^T G_i mu - h_i^T mu  s.t.  mu >= 0`` for every row (variables outside ``eligible`` stay 0).

    Lawson and Hanson's active-set method (1974, ch. 23) on the normal equations: move the most violated
    variable into the passive set, solve the equalities on it, step back to the last feasible point when
    a passive variable would turn non-positive. Finite; every row does one stacked solve per step.
    Here ``h - G mu`` is each constraint's value at the current projection, so "violated" means by more
    than ``64 eps`` of the logits' size. Returns ``(mu, steps, converged)``.
    """
    n, K = h.shape
    mu = np.zeros((n, K))
    passive = np.zeros((n, K), dtype=bool)
    inner = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    steps = np.zeros(n, dtype=np.int64)
    identity = np.eye(K, dtype=bool)
    for _ in range(max_steps):
        rows = np.flatnonzero(~done)
        if rows.size == 0:
            break
        G_rows, h_rows, mu_rows = G[rows], h[rows], mu[rows]
        Gmu = np.einsum("ikl,il->ik", G_rows, mu_rows)
        w = h_rows - Gmu
        tol = 64.0 * EPS * (1.0 + np.abs(h_rows).max(axis=1) + np.abs(Gmu).max(axis=1))
        adding = ~inner[rows]
        candidates = eligible[rows] & ~passive[rows] & (w > tol[:, None])
        has = candidates.any(axis=1)
        finished = adding & ~has
        done[rows[finished]] = True
        add = np.flatnonzero(adding & has)
        best = np.argmax(np.where(candidates[add], w[add], -np.inf), axis=1)
        passive[rows[add], best] = True
        keep = ~finished
        rows, G_rows, h_rows, mu_rows = rows[keep], G_rows[keep], h_rows[keep], mu_rows[keep]
        if rows.size == 0:
            break
        P = passive[rows]
        masked = np.where(P[:, :, None] & P[:, None, :], G_rows, 0.0) + (identity & ~P[:, :, None])
        s = solve_rows(masked, np.where(P, h_rows, 0.0))
        bad = P & (s <= 0.0)
        good = ~bad.any(axis=1)
        mu[rows[good]] = np.where(P[good], s[good], 0.0)
        inner[rows[good]] = False
        if not good.all():
            b = ~good
            m_b, s_b, bad_b = mu_rows[b], s[b], bad[b]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(bad_b, m_b / (m_b - s_b), np.inf)
            first = np.argmin(ratio, axis=1)
            alpha = np.minimum(ratio[np.arange(first.size), first], 1.0)
            m_new = m_b + alpha[:, None] * (s_b - m_b)
            drop = P[b] & (m_new <= 16.0 * EPS * np.maximum(1.0, np.abs(m_new).max(axis=1))[:, None])
            drop[np.arange(first.size), first] = True
            m_new[drop] = 0.0
            passive[rows[b]] = P[b] & ~drop
            mu[rows[b]] = m_new
            inner[rows[b]] = True
        steps[rows] += 1
    return mu, steps, done


def kkt_newton_rows(N: np.ndarray, w0: np.ndarray, targets: np.ndarray, goal: np.ndarray, lam_range,
                    start=None):
    """Newton on the optimality conditions of ``min 1/2 ||u||^2  s.t.  m_i(u) >= goal_i`` for every row: the
    rows' twin of ``_probability._kkt_newton`` (the same bordered system, step halving, stopping rule).

    ``N`` (n, K, r) is each row's ``M - M[k_i]``, ``w0`` (n, K) its relative logits. Returns
    ``(u, lam, mu, iterations, converged)``; a row that did not converge (or whose lam falls outside
    ``lam_range``) has ``converged`` False and is answered by the caller's fallback.
    """
    n, K, r = N.shape
    every = np.arange(n)
    others = np.ones((n, K), dtype=bool)
    others[every, targets] = False
    n_norm = np.sqrt(np.einsum("ikr,ikr->i", N, N))
    identity = np.eye(r)

    def residual(rows, u, mu):
        w = np.where(others[rows], w0[rows] + np.einsum("ikr,ir->ik", N[rows], u), -np.inf)
        top = w.max(axis=1)
        e = np.exp(w - top[:, None])
        total = e.sum(axis=1)
        q = e / total[:, None]
        margin = -(top + np.log(total))
        g = np.einsum("ik,ikr->ir", q, N[rows])
        r1 = u + mu[:, None] * g
        r2 = margin - goal[rows]
        norm = np.sqrt(np.einsum("ij,ij->i", r1, r1) + r2**2)
        finite_w = np.where(others[rows], w, 0.0)
        tol_margin = 16.0 * EPS * (1.0 + np.abs(finite_w).max(axis=1))
        return q, g, r1, r2, norm, tol_margin, margin

    if start is None:
        u = np.zeros((n, r))
        _, g0, _, r2_0, _, _, _ = residual(every, u, np.zeros(n))
        mu = -r2_0 / np.einsum("ij,ij->i", g0, g0)
    else:
        u, mu = start[0].copy(), start[1].copy()
    q, g, r1, r2, norm, tol_margin, margin = residual(every, u, mu)
    iterations = np.zeros(n, dtype=np.int64)
    converged = np.zeros(n, dtype=bool)
    lam = np.full(n, np.nan)
    active = every
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for iteration in range(KKT_MAX_ITER):
            if active.size == 0:
                break
            a = active
            lam_a = sigmoid_rows(-margin[a]) / mu[a]  # (1 - p_k) / mu
            floor = round_off_floor(1.0, _norms(u[a]), mu[a] * n_norm[a])
            r1_norm = _norms(r1[a])
            stop = (np.abs(r2[a]) <= tol_margin[a]) & (r1_norm <= np.maximum(PENALISED_TOL / lam_a, floor))
            stop &= np.isfinite(lam_a)
            if stop.any():
                rows = a[stop]
                lam[rows], iterations[rows] = lam_a[stop], iteration
                converged[rows] = (lam_a[stop] >= lam_range[0]) & (lam_a[stop] <= lam_range[1])
            a = a[~stop]
            if a.size == 0:
                active = a
                break
            Nq = N[a]
            centred = Nq - g[a][:, None, :]
            S = np.sqrt(q[a])[:, :, None] * centred
            hessian = identity + mu[a, None, None] * np.matmul(S.transpose(0, 2, 1), S)
            solved = solve_rows(hessian, np.stack([r1[a], g[a]], axis=2))
            h_r1, h_g = solved[:, :, 0], solved[:, :, 1]
            d_mu = -(r2[a] + np.einsum("ij,ij->i", g[a], h_r1)) / np.einsum("ij,ij->i", g[a], h_g)
            d_u = -(h_r1 + d_mu[:, None] * h_g)
            step = np.ones(a.size)
            searching = np.arange(a.size)
            accepted = np.zeros(a.size, dtype=bool)
            new = [np.zeros_like(x[a]) for x in (q, g, r1, r2, norm, tol_margin, margin)]
            while searching.size and step[searching[0]] > 1e-10:
                rows = a[searching]
                st = step[searching]
                mu_t = mu[rows] + st * d_mu[searching]
                trial = residual(rows, u[rows] + st[:, None] * d_u[searching], mu_t)
                ok = (mu_t > 0) & (trial[4] < (1.0 - 1e-4 * st) * norm[rows])
                for slot, values in zip(new, trial):
                    slot[searching[ok]] = values[ok]
                accepted[searching[ok]] = True
                searching = searching[~ok]
                step[searching] *= 0.5
            moved = a[accepted]
            u[moved] += step[accepted, None] * d_u[accepted]
            mu[moved] += step[accepted] * d_mu[accepted]
            for full, slot in zip((q, g, r1, r2, norm, tol_margin, margin), new):
                full[moved] = slot[accepted]
            active = moved  # a row whose search failed leaves, not converged
    return u, lam, mu, iterations, converged


def target_logit_margins(Z: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``z_k - logsumexp_{j != k} z_j`` per row: the rows' twin of ``_objective.target_logit_margin``."""
    n = Z.shape[0]
    others = Z.copy()
    others[np.arange(n), targets] = -np.inf
    top = others.max(axis=1)
    return Z[np.arange(n), targets] - top - np.log(np.exp(others - top[:, None]).sum(axis=1))


def logit_leads(Z: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``z_k - max_{j != k} z_j`` per row."""
    others = Z.copy()
    others[np.arange(Z.shape[0]), targets] = -np.inf
    return Z[np.arange(Z.shape[0]), targets] - others.max(axis=1)


def sigmoid_rows(s: np.ndarray) -> np.ndarray:
    """The logistic function without overflow, elementwise."""
    e = np.exp(-np.abs(s))
    return np.where(s >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def lead_round_off(Z: np.ndarray) -> np.ndarray:
    """``1e-9 (1 + max |z|)`` per row: the tie tolerance of ``minimal_flip``."""
    return 1e-9 * (1.0 + np.abs(Z).max(axis=1))

