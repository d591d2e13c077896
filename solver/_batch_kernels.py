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

from ._closed_form import logistic_root
from ._iteration import (
    ACTIVE_MARGIN,
    ARMIJO,
    BACKTRACK_STEPS,
    MAX_BACKTRACKS,
    ROUND_OFF_ULPS,
    accept_unit_steps,
    backtrack_rows,
    round_off_floor,
    spd_solve,
    stopped_statuses,
)
from ._objective import EPS
from ._result import CONVERGED, MAX_ITER, NON_FINITE, ROUND_OFF
from ._rules import KKT_MAX_ITER, PENALISED_TOL

_CLASS_MAJOR_MAX = 16  # systems up to this size are factorised class-major


def cholesky_columns(H: np.ndarray):
    """Cholesky factors of the SPD matrices ``H[:, :, j]`` (m, m, n), class-major so that every step is one
    vectorised operation over the n systems (about 4x faster than n LAPACK calls at m ~ 10).

    Returns ``(L, ok)``; ``ok[j]`` is False where a pivot was not positive (the caller solves that
    system another way).
    """
    m = H.shape[0]
    L = np.zeros_like(H)
    ok = np.ones(H.shape[2], dtype=bool)
    for j in range(m):
        pivot = H[j, j] - np.einsum("kn,kn->n", L[j, :j], L[j, :j])
        ok &= pivot > 0.0
        L[j, j] = np.sqrt(np.where(pivot > 0.0, pivot, 1.0))
        if j + 1 < m:
            L[j + 1:, j] = (H[j + 1:, j] - np.einsum("ikn,kn->in", L[j + 1:, :j], L[j, :j])) / L[j, j]
    return L, ok


def cholesky_substitute(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``L L^T x = b`` for every column of b (m, n), with L from :func:`cholesky_columns`."""
    m = L.shape[0]
    y = np.empty_like(b)
    for j in range(m):
        y[j] = (b[j] - np.einsum("kn,kn->n", L[j, :j], y[:j])) / L[j, j]
    x = np.empty_like(b)
    for j in reversed(range(m)):
        x[j] = (y[j] - np.einsum("kn,kn->n", L[j + 1:, j], x[j + 1:])) / L[j, j]
    return x


def solve_columns(H: np.ndarray, *rhs: np.ndarray):
    """Solve the SPD systems ``H[:, :, j] x = b[:, j]`` (H (m, m, n), each b (m, n)) by class-major Cholesky;
    a system whose factorisation fails is solved by :func:`spd_solve` (Cholesky, else least squares)."""
    if H.shape[0] == 0:
        return tuple(np.zeros_like(b) for b in rhs)
    if H.shape[0] > _CLASS_MAJOR_MAX:  # large systems: one LAPACK call each costs less than m^2 numpy steps
        stacked = np.ascontiguousarray(H.transpose(2, 0, 1))
        try:
            return tuple(np.linalg.solve(stacked, b.T[:, :, None])[:, :, 0].T for b in rhs)
        except np.linalg.LinAlgError:
            return tuple(np.stack([spd_solve(h, v) for h, v in zip(stacked, b.T)], axis=1) for b in rhs)
    L, ok = cholesky_columns(H)
    solutions = tuple(cholesky_substitute(L, b) for b in rhs)
    for j in np.flatnonzero(~ok):
        for x, b in zip(solutions, rhs):
            x[:, j] = spd_solve(np.array(H[:, :, j]), b[:, j])
    return solutions


def solve_rows(matrices: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """:func:`solve_columns` for row-major stacks: ``matrices[i] x = rhs[i]``, matrices (n, m, m), rhs (n, m)."""
    H = np.ascontiguousarray(matrices.transpose(1, 2, 0))
    return solve_columns(H, np.ascontiguousarray(rhs.T))[0].T


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

    convex_along_lines = True  # F(u + t d) is convex in t: Armijo holds on an interval of steps

    def __init__(self, M: np.ndarray, w0: np.ndarray, targets: np.ndarray, lams: np.ndarray):
        K, r = M.shape
        self.n_classes = K
        self.M, self.targets, self.lams = M, targets, lams
        self.w0 = np.ascontiguousarray(w0.T)  # (K, n)
        self.Mk = M[targets]
        centred = M - M.mean(axis=0)
        self.centred = centred
        self.outer = (centred[:, :, None] * centred[:, None, :]).reshape(K, r * r)
        per_target = np.sqrt(((M[None, :, :] - M[:, None, :]) ** 2).sum(axis=(1, 2)))
        self.n_norm = per_target[targets]

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
        mean = self.centred.T @ proba.T  # (r, m), class-major like the Hessians (r, r, m)
        hessian = (self.outer.T @ proba.T).reshape(r, r, -1)
        hessian -= mean[:, None, :] * mean[None, :, :]
        diagonal = np.arange(r)
        hessian[diagonal, diagonal] += self.lams[rows]
        vector = -solve_columns(hessian, np.ascontiguousarray(grad.T))[0].T
        return vector, np.einsum("ij,ij->i", grad, vector), None

    @staticmethod
    def point_at(rows, U, vector, step):
        return U + step * vector

    @staticmethod
    def decrease(U, trial, step, slope, active_grad):
        return step * slope

    def lower_bound(self, rows, U, vector, steps):
        """``lam/2 ||u + t d||^2 <= F(u + t d)`` (since ``-log p_k >= 0``) for steps (m, s) or (s,)."""
        uu, ud, dd = (np.einsum("ij,ij->i", a, b)[:, None] for a, b in ((U, U), (U, vector), (vector, vector)))
        return 0.5 * self.lams[rows, None] * (uu + 2.0 * steps * ud + steps**2 * dd)

    def trials(self, rows, U, vector, slope, active_grad, steps, energy0):
        """Energies and predicted decreases at steps (m, s). Along a direction the logits are linear and the
        distance term quadratic in the step t; where the distance term alone fails Armijo, the log-sum-exp
        (>= 0) is not computed: the step fails either way."""
        energies = self.lower_bound(rows, U, vector, steps)
        decreases = steps * slope[:, None]
        row, step = np.nonzero(energies <= energy0[:, None] + ARMIJO * decreases)
        if row.size:
            W = self.w0[:, rows] + self._image(rows, U)
            image = self._image(rows, vector)
            trial = W[:, row] + image[:, row] * steps[row, step]
            values, _, _ = neg_log_proba_columns(trial, self.targets[rows][row], with_proba=False)
            energies[row, step] += values
        return energies, decreases

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
        self.n_classes = K
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

    def margin_slope(self, rows, Y):
        """``d m / d log lam`` of the minimisers Y (m the target's logit margin ``z_k - logsumexp_{j != k} z_j``),
        for their active sets: differentiating ``lam (y - y0)_F + (Abar^T p)_F = 0`` gives
        ``dy_F / dlam = -H_FF^{-1} (y - y0)_F``, so ``dm / dlog lam = -grad m_F . (lam H_FF^{-1} (y - y0)_F)``,
        with ``lam H_FF^{-1} v = v - (C A_F)^T (lam I + C G_F C^T)^{-1} C A_F v`` (MATH.md section 3)."""
        lam, targets = self.lams[rows], self.targets[rows]
        _, proba, grad, grad_norm = self.evaluate(rows, Y)
        margin = np.minimum(ACTIVE_MARGIN, grad_norm)[:, None]
        free = (~np.where(grad > 0, Y <= self.lower + margin, Y >= self.upper - margin)).astype(np.float64)
        Z = self.A @ Y.T + self.bT[:, rows]
        Z[targets, np.arange(Y.shape[0])] = -np.inf
        q = np.exp(Z - Z.max(axis=0))
        q /= q.sum(axis=0)
        grad_m = self.A[targets] - q.T @ self.A
        v = (Y - self.y0[rows]) * free
        gram = self._free_gram(free)
        mixed = np.einsum("ikl,il->ik", gram, proba)
        centred = gram - mixed[:, :, None] - mixed[:, None, :] + np.einsum("ik,ik->i", mixed, proba)[:, None, None]
        root = np.sqrt(proba)
        system = root[:, :, None] * centred * root[:, None, :] + lam[:, None, None] * self.identity
        Av = v @ self.A.T
        solved = solve_rows(system, root * (Av - np.einsum("ik,ik->i", proba, Av)[:, None]))
        t = root * solved
        w = v - free * ((t - proba * t.sum(axis=1)[:, None]) @ self.A)
        return -np.einsum("ij,ij->i", grad_m * free, w)

    def point_at(self, rows, Y, vector, step):
        return self.clip(Y + step * vector)

    @staticmethod
    def decrease(Y, trial, step, slope, active_grad):
        return step * slope + np.einsum("ij,ij->i", active_grad, trial - Y)

    convex_along_lines = False  # along the projection arc it need not be

    @staticmethod
    def lower_bound(rows, Y, vector, steps):
        return None

    def trials(self, rows, Y, vector, slope, active_grad, steps, energy0):
        steps = steps[0]  # the same steps for every row: (s,)
        points = self.clip(Y[:, None, :] + steps[None, :, None] * vector[:, None, :])  # (m, s, F)
        values, _ = self._relative(rows, points, with_proba=False)
        diffs = points - self.y0[rows][:, None, :]
        energies = 0.5 * self.lams[rows, None] * np.einsum("isf,isf->is", diffs, diffs) + values
        decreases = steps[None, :] * slope[:, None] + np.einsum("isf,if->is", points - Y[:, None, :], active_grad)
        return energies, decreases

    def floor(self, rows, Y):
        return round_off_floor(self.lams[rows], _norms(Y) + _norms(self.y0[rows]), self.b_norm[self.targets[rows]])


def two_class_start(M: np.ndarray, w0: np.ndarray, targets: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """A starting point ``u`` (n, r) for reduced Newton: the exact minimiser of each row's two-class problem
    between its target and its strongest rival ``j`` (MATH.md section 5), ``u = -sigma(s*) c / lam`` with
    ``c = m_j - m_k`` and ``s*`` the root of ``s - w0_j + (||c||^2 / lam) sigma(s)``. Exact for K = 2; for
    K > 2 it skips most of Newton's damped first steps from ``u = 0``. O(K r) per row."""
    every = np.arange(w0.shape[0])
    rivals = w0.copy()
    rivals[every, targets] = -np.inf
    strongest = rivals.argmax(axis=1)
    c = M[strongest] - M[targets]
    s = logistic_root(w0[every, strongest], np.einsum("ij,ij->i", c, c) / lams)
    return -(sigmoid_rows(s) / lams)[:, None] * c


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
        t_value, t_proba, t_grad, t_norm = _evaluate_hopeful(energy, active, here, vector, trial, value[active])
        decrease = energy.decrease(here, trial, 1.0, slope, active_grad)
        accepted = accept_unit_steps(value[active], grad_norm[active], t_value, t_norm, decrease)
        if not accepted.all():
            back = np.flatnonzero(~accepted)
            rows = active[back]

            def trials(subset, steps):
                ag = None if active_grad is None else active_grad[back[subset]]
                steps = np.broadcast_to(steps, (subset.size, steps.shape[-1]))
                return energy.trials(rows[subset], here[back[subset]], vector[back[subset]], slope[back[subset]],
                                     ag, steps, value[rows[subset]])

            if energy.convex_along_lines:
                found = bisect_backtrack_rows(trials, value[rows])
            else:
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
        trial, t_value, t_proba, t_grad, t_norm = (trial[accepted], t_value[accepted], t_proba[accepted],
                                                   t_grad[accepted], t_norm[accepted])
        # As in _newton.newton: a step at the round-off floor that no longer halves the gradient ends the row.
        take = np.ones(rows.size, dtype=bool)
        stalled = np.zeros(rows.size, dtype=bool)
        slow = np.flatnonzero(t_norm > 0.5 * grad_norm[rows])
        if slow.size:
            at_floor = slow[grad_norm[rows[slow]] <= energy.floor(rows[slow], point[rows[slow]])]
            stalled[at_floor] = True
            take[at_floor] = t_norm[at_floor] < grad_norm[rows[at_floor]]
            status[rows[at_floor]] = ROUND_OFF
            n_iter[rows[at_floor]] = iteration
        kept = rows[take]
        point[kept], value[kept], proba[kept], grad[kept], grad_norm[kept] = (
            trial[take], t_value[take], t_proba[take], t_grad[take], t_norm[take])
        active = rows[~stalled]
    return point, proba, value, grad_norm, n_iter, status, energy.floor(every, point)


def bisect_backtrack_rows(trials, energy: np.ndarray) -> np.ndarray:
    """:func:`backtrack_rows` for energies convex along the search line: the same step, found by bisection.

    With ``psi(t) = E(x + t d) - E(x) - c t g^T d`` convex, ``psi(0) = 0`` and ``psi'(0) < 0``, Armijo
    (``psi <= 0``) holds exactly on an interval ``[0, t_max]``; the first step ``0.8^j`` of the sequence
    inside it is found by testing the smallest step, then bisecting on ``j``: 8 evaluations per row
    instead of up to 100. (The unit step, ``j = -1``, has already failed.)
    """
    m = energy.shape[0]
    found = np.full(m, -1)
    last = MAX_BACKTRACKS - 1
    energies, decreases = trials(np.arange(m), np.full((m, 1), BACKTRACK_STEPS[last]))
    meets = np.isfinite(energies[:, 0]) & (energies[:, 0] <= energy + ARMIJO * decreases[:, 0])
    rows = np.flatnonzero(meets)
    low, high = np.full(rows.size, -1), np.full(rows.size, last)
    while True:
        open_ = np.flatnonzero(high - low > 1)
        if open_.size == 0:
            break
        middle = (low[open_] + high[open_]) // 2
        energies, decreases = trials(rows[open_], BACKTRACK_STEPS[middle][:, None])
        meets = np.isfinite(energies[:, 0]) & (energies[:, 0] <= energy[rows[open_]] + ARMIJO * decreases[:, 0])
        high[open_[meets]] = middle[meets]
        low[open_[~meets]] = middle[~meets]
    found[rows] = high
    return found


def _evaluate_hopeful(energy, rows, here, vector, trial, current):
    """``energy.evaluate`` at the unit step, skipped (energy ``inf``) for the rows where a cheap lower bound
    on the trial energy already rules the step out: neither Armijo nor the round-off rule of
    :func:`accept_unit_steps` can accept an energy above ``E + 64 eps max(1, |E|)``."""
    lower = energy.lower_bound(rows, here, vector, np.ones(1))
    if lower is None:
        return energy.evaluate(rows, trial)
    hopeful = np.flatnonzero(lower[:, 0] <= current + ROUND_OFF_ULPS * EPS * np.maximum(1.0, np.abs(current)))
    if hopeful.size == rows.size:
        return energy.evaluate(rows, trial)
    m = rows.size
    t_value, t_norm = np.full(m, np.inf), np.full(m, np.inf)
    t_proba, t_grad = np.full((m, energy.n_classes), np.nan), np.full(here.shape, np.nan)
    if hopeful.size:
        t_value[hopeful], t_proba[hopeful], t_grad[hopeful], t_norm[hopeful] = energy.evaluate(rows[hopeful],
                                                                                              trial[hopeful])
    return t_value, t_proba, t_grad, t_norm


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


def bounded_projection_rows(A, intercepts, y0, targets, margins, lower, upper, outer=None, tol_scale=1e-11,
                            max_iter=60):
    """Projection of each row's ``y0`` onto ``{Abar_k y + c <= 0 (others), lower <= y <= upper}`` (the flip's
    target region within the ranges, MATH.md section 6) by projected Newton on its (K-1)-variable dual,

        max_{mu >= 0} q(mu) = 1/2 ||y(mu) - y0||^2 + mu^T (Abar y(mu) + c),   y(mu) = clip(y0 - Abar^T mu),

    whose gradient is the constraints' values ``Abar y(mu) + c`` and whose generalised Hessian is
    ``-Abar_F Abar_F^T`` over the unclipped features F (Bertsekas' projected Newton, with an Armijo
    search along the projection arc); then the equalities of the final active set are solved exactly,
    as the single-row function polishes. Rows whose dual does not converge (among them those whose
    region is empty within the ranges: the dual is unbounded) have ``converged`` False.

    Returns ``(y, steps, converged)``.
    """
    n, F = y0.shape
    K = A.shape[0]
    every = np.arange(n)
    others = np.ones((n, K), dtype=bool)
    others[every, targets] = False
    a_k = A[targets]
    c = intercepts - intercepts[every, targets][:, None] + margins[:, None]
    c[every, targets] = 0.0
    scale = 1.0 + np.abs(c).max(axis=1)
    identity = np.eye(K)

    def primal(rows, mu):
        v = y0[rows] - (mu @ A - mu.sum(axis=1)[:, None] * a_k[rows])
        y = np.minimum(np.maximum(v, lower), upper)
        h = y @ A.T - np.einsum("ij,ij->i", y, a_k[rows])[:, None] + c[rows]
        h[~others[rows]] = 0.0
        diff = y - y0[rows]
        q = 0.5 * np.einsum("ij,ij->i", diff, diff) + np.einsum("ij,ij->i", mu, h)
        return y, h, (v > lower) & (v < upper), q

    def gram(rows, free, mask):
        """``Abar_F Abar_F^T`` restricted to ``mask`` (identity elsewhere), class-major (K, K, m)."""
        f = free.astype(np.float64)
        if outer is not None:
            AfA = (f @ outer).reshape(-1, K, K)
        else:
            AfA = np.matmul(A[None, :, :] * f[:, None, :], A.T)
        t = targets[rows]
        m = rows.size
        col = AfA[np.arange(m), :, t]  # (m, K): A_F a_k
        kk = AfA[np.arange(m), t, t]
        G = AfA - col[:, :, None] - col[:, None, :] + kk[:, None, None]
        both = mask[:, :, None] & mask[:, None, :]
        G = np.where(both, G, 0.0) + identity * (~mask)[:, :, None]
        return G

    mu = np.zeros((n, K))
    y, h, free, q = primal(every, mu)
    steps = np.zeros(n, dtype=np.int64)
    converged = np.zeros(n, dtype=bool)
    active = every
    for iteration in range(max_iter):
        if active.size == 0:
            break
        a = active
        projected = mu[a] - np.maximum(0.0, mu[a] + h[a])  # mu - P(mu - grad f), f = -q
        done = np.abs(projected).max(axis=1) <= tol_scale * scale[a]
        converged[a[done]] = True
        steps[a[done]] = iteration
        a = a[~done]
        active = a
        if a.size == 0:
            break
        grad = -h[a]
        eps = np.minimum(1e-3, np.abs(projected[~done]).max(axis=1))[:, None]
        pinned = others[a] & (mu[a] <= eps) & (grad > 0)
        loose = others[a] & ~pinned
        G = gram(a, free[a], loose)
        ridge = 1e-12 * np.maximum(1.0, np.abs(G).max(axis=(1, 2)))
        G = G + ridge[:, None, None] * identity
        rhs = np.ascontiguousarray(np.where(loose, h[a], 0.0).T)
        newton = solve_columns(np.ascontiguousarray(G.transpose(1, 2, 0)), rhs)[0].T
        direction = np.where(loose, newton, np.where(pinned, -grad, 0.0))
        step = np.ones(a.size)
        searching = np.arange(a.size)
        accepted = np.zeros(a.size, dtype=bool)
        f0 = -q[a]
        for _ in range(40):
            if searching.size == 0:
                break
            rows = a[searching]
            trial_mu = np.maximum(0.0, mu[rows] + step[searching, None] * direction[searching])
            ty, th, tfree, tq = primal(rows, trial_mu)
            change = trial_mu - mu[rows]
            predicted = np.einsum("ij,ij->i", grad[searching], change)
            slack = ROUND_OFF_ULPS * EPS * np.maximum(1.0, np.abs(f0[searching]))
            ok = np.isfinite(tq) & (-tq <= f0[searching] + ARMIJO * predicted + slack)
            hit = searching[ok]
            r = a[hit]
            mu[r], y[r], h[r], free[r], q[r] = trial_mu[ok], ty[ok], th[ok], tfree[ok], tq[ok]
            accepted[hit] = True
            searching = searching[~ok]
            step[searching] *= 0.5
        active = a[accepted]
        blown = np.abs(mu[active]).max(axis=1) > 1e12 * scale[active]
        active = active[~blown]
    # Polish: the equalities of the active set, solved exactly (as _flip._project_bounded does)
    done = np.flatnonzero(converged)
    for _ in range(5):
        if done.size == 0:
            break
        S = others[done] & (mu[done] > 1e-12 * np.maximum(1.0, mu[done].max(axis=1))[:, None])
        has = S.any(axis=1)
        rows = done[has]
        if rows.size == 0:
            break
        S = S[has]
        fixed_y = np.where(free[rows], y0[rows], y[rows])
        rhs = fixed_y @ A.T - np.einsum("ij,ij->i", fixed_y, a_k[rows])[:, None] + c[rows]
        G = gram(rows, free[rows], S)
        solved = solve_columns(np.ascontiguousarray(G.transpose(1, 2, 0)),
                               np.ascontiguousarray(np.where(S, rhs, 0.0).T))[0].T
        keep = ~(S & (solved < 0)).any(axis=1)
        rows, solved, S = rows[keep], solved[keep], S[keep]
        candidate = np.where(S, solved, 0.0)
        same = np.all(candidate == mu[rows], axis=1)
        ty, th, tfree, tq = primal(rows, candidate)
        mu[rows], y[rows], h[rows], q[rows] = candidate, ty, th, tq
        changed = ~np.all(tfree == free[rows], axis=1)
        free[rows] = tfree
        done = rows[changed & ~same]
    return y, steps, converged


def kkt_newton_rows(M: np.ndarray, w0: np.ndarray, targets: np.ndarray, goal: np.ndarray, lam_range,
                    start=None):
    """Newton on the optimality conditions of ``min 1/2 ||u||^2  s.t.  m_i(u) >= goal_i`` for every row: the
    rows' twin of ``_probability._kkt_newton`` (the same bordered system, step halving, stopping rule).

    ``M`` (K, r) is the basis's ``A P`` (each row's ``N = M - 1 m_k^T``), ``w0`` (n, K) the rows' relative
    logits. As in :class:`ReducedRows` every product is a GEMM with M: ``N u = M u - (m_k . u) 1``,
    ``N_o^T q = M^T q - m_k`` (q sums to 1 over the other classes) and the curvature
    ``N_o^T (diag q - q q^T) N_o`` is the covariance of M's rows under q. Returns
    ``(u, lam, mu, iterations, converged)``; a row that did not converge (or whose lam falls outside
    ``lam_range``) has ``converged`` False and is answered by the caller's fallback.
    """
    n, K = w0.shape
    r = M.shape[1]
    every = np.arange(n)
    others = np.ones((n, K), dtype=bool)
    others[every, targets] = False
    Mk = M[targets]
    n_norm = np.sqrt(((M[None, :, :] - M[:, None, :]) ** 2).sum(axis=(1, 2)))[targets]
    centred = M - M.mean(axis=0)
    outer = (centred[:, :, None] * centred[:, None, :]).reshape(K, r * r)
    diagonal = np.arange(r)

    def residual(rows, u, mu):
        w = np.where(others[rows], w0[rows] + u @ M.T - np.einsum("ir,ir->i", u, Mk[rows])[:, None], -np.inf)
        top = w.max(axis=1)
        e = np.exp(w - top[:, None])
        total = e.sum(axis=1)
        q = e / total[:, None]
        margin = -(top + np.log(total))
        g = q @ M - Mk[rows]
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
            qa = q[a]
            mean = centred.T @ qa.T  # (r, m), class-major like the Hessians (r, r, m)
            hessian = (outer.T @ qa.T).reshape(r, r, -1)
            hessian -= mean[:, None, :] * mean[None, :, :]
            hessian *= mu[a]
            hessian[diagonal, diagonal] += 1.0
            h_r1, h_g = solve_columns(hessian, np.ascontiguousarray(r1[a].T), np.ascontiguousarray(g[a].T))
            h_r1, h_g = h_r1.T, h_g.T
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

