"""Newton's method as the seed paper runs it (MATH.md section 4), once, for every energy it is used on.

:func:`newton` is the textbook loop: gradient and Hessian, direction, unit step (accepted on Armijo, or
on a smaller gradient at round-off level), batched backtracking, stop on the gradient norm. The energies
it runs on differ only in their coordinates and the cost of a trial step:

* :class:`ReducedEnergy`, ``F(u) = lam/2 ||u||^2 + logsumexp(w0 + N u)`` in the (K-1)-dimensional
  subspace of section 2: O(K^3) per iteration, so every backtracking step is tried in one batch;
* :class:`FullEnergy`, the paper's full-space Newton (theorem 2.6) with the stable K x K direction of
  section 3: O(D K) per iteration, trial steps in O(K) each from ``Abar d``;
* ``BoundedEnergy`` (``_projected.py``), projected Newton for feature ranges.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._iteration import (
    BACKTRACK_STEPS,
    MAX_BACKTRACKS,
    Iterate,
    MethodOutcome,
    SearchDirection,
    accept_unit_step,
    backtrack,
    full_space_floor,
    predicted_decrease,
    round_off_floor,
    spd_solve,
    stopped_status,
    succeeded,
)
from ._objective import neg_log_proba, neg_log_proba_rows
from ._result import CONVERGED, MAX_ITER, NON_FINITE, ROUND_OFF, HistoryRecorder


def newton(energy, point, tol: float, max_iter: int, recorder: HistoryRecorder | None) -> MethodOutcome:
    """Damped Newton on ``energy`` from ``point`` until its stopping measure is at most ``tol``.

    ``energy`` provides ``evaluate(point) -> Iterate``, ``direction(iterate) -> SearchDirection``,
    ``point_at(iterate, direction, step)``, ``trials(iterate, direction, steps) -> (energies,
    decreases)``, ``batch`` (trial steps per evaluation), ``floor(iterate)`` and ``outcome(...)``.
    """
    current = energy.evaluate(point)
    if recorder is not None:
        recorder.add(current.energy, current.grad_norm, current.proba, np.nan, time.perf_counter())
    if not math.isfinite(current.energy):
        return energy.outcome(current, 0, NON_FINITE)
    status, n_iter = MAX_ITER, 0
    for n_iter in range(max_iter + 1):
        if current.grad_norm <= tol:
            status = CONVERGED
            break
        if n_iter == max_iter:
            break
        direction = energy.direction(current)
        step = 1.0
        trial = energy.evaluate(energy.point_at(current, direction, step))
        decrease = predicted_decrease(current, direction, step, trial.point)
        if not accept_unit_step(current.energy, current.grad_norm, trial, decrease):
            index = backtrack(lambda steps: energy.trials(current, direction, steps), current.energy, energy.batch)
            if index < 0:
                status = stopped_status(current.grad_norm, energy.floor(current))
                break
            step = float(BACKTRACK_STEPS[index])
            trial = energy.evaluate(energy.point_at(current, direction, step))
        if trial.grad_norm > 0.5 * current.grad_norm and current.grad_norm <= energy.floor(current):
            # At the round-off floor a step can be accepted without changing anything (Armijo holds
            # within round-off): Newton has stopped improving, so stop rather than run to max_iter.
            status = ROUND_OFF
            if trial.grad_norm < current.grad_norm:
                current = trial
            break
        current = trial
        if recorder is not None:
            recorder.add(current.energy, current.grad_norm, current.proba, step, time.perf_counter())
    return energy.outcome(current, n_iter, status)


class ReducedEnergy:
    """``F(u) = lam/2 ||u||^2 + logsumexp(w0 + N u)``, ``N = Abar P`` (K x r), MATH.md section 2.

    ``grad F = lam u + N^T p`` and ``hess F = lam I + Nc^T diag(p) Nc`` with ``Nc = N - 1 (N^T p)^T``,
    the centred form of ``N^T (diag p - p p^T) N``, which stays positive semi-definite on round-off.
    """

    batch = MAX_BACKTRACKS  # a trial costs O(K r): the whole backtracking sequence in one batch

    def __init__(self, N: np.ndarray, w0: np.ndarray, target: int, lam: float):
        self.N, self.w0, self.target, self.lam = N, w0, target, lam
        self.n_norm = math.sqrt(float(np.einsum("ij,ij->", N, N)))
        self.lam_identity = lam * np.eye(N.shape[1])
        self.hessian = None  # of the last direction, reused for the path derivatives

    def evaluate(self, u) -> Iterate:
        value, proba = neg_log_proba(self.w0 + self.N @ u, self.target)
        grad = self.lam * u + self.N.T @ proba
        return Iterate(u, 0.5 * self.lam * float(u @ u) + value, proba, grad, math.sqrt(float(grad @ grad)))

    def hessian_at(self, proba) -> np.ndarray:
        centred = self.N - proba @ self.N
        return self.lam_identity + centred.T @ (proba[:, None] * centred)

    def direction(self, current: Iterate) -> SearchDirection:
        self.hessian = self.hessian_at(current.proba)
        vector = -spd_solve(self.hessian, current.grad)
        return SearchDirection(vector, float(current.grad @ vector))

    @staticmethod
    def point_at(current: Iterate, direction: SearchDirection, step: float):
        return current.point + step * direction.vector

    def trials(self, current: Iterate, direction: SearchDirection, steps):
        U = current.point[None, :] + steps[:, None] * direction.vector[None, :]
        values, _ = neg_log_proba_rows(self.w0[None, :] + U @ self.N.T, self.target)
        return 0.5 * self.lam * np.einsum("ij,ij->i", U, U) + values, steps * direction.slope

    def floor(self, current: Iterate) -> float:
        return round_off_floor(self.lam, math.sqrt(float(current.point @ current.point)), self.n_norm)

    def outcome(self, current: Iterate, n_iter: int, status: int) -> MethodOutcome:
        derivatives = None
        if succeeded(status):
            # For a predictor the Hessian of the last direction is close enough (the last step is tiny).
            hessian = self.hessian if n_iter > 0 else None
            derivatives = path_derivatives(self.N, current.proba, self.lam, current.point, hessian)
        return MethodOutcome(current.point, current.proba, current.energy, current.grad_norm, n_iter, status,
                             self.floor(current), derivatives)


def newton_reduced(N, w0, target, lam, u, tol, max_iter, recorder: HistoryRecorder | None) -> MethodOutcome:
    """Reduced Newton (MATH.md section 2) from ``u``; O(K^3) per iteration, independent of D."""
    return newton(ReducedEnergy(N, w0, target, lam), u, tol, max_iter, recorder)


def path_derivatives(N, proba, lam, u, hessian=None) -> np.ndarray:
    """``u'`` and ``u''`` of the solution path ``u*(lam)``; O(K r^2).

    Differentiating ``lam u + N^T p = 0`` once gives ``H u' = -u``; twice gives
    ``H u'' = -2 u' - N^T (dS/dlam) N u'`` with ``S = diag p - p p^T`` and, for ``s = N u'`` and
    ``p' = p o (s - p.s)``, ``(dS/dlam) s = p' o s - p' (p.s) - p (p'.s)``.
    """
    if hessian is None:
        centred = N - proba @ N
        hessian = lam * np.eye(N.shape[1]) + centred.T @ (proba[:, None] * centred)
    first = -spd_solve(hessian, u)
    s = N @ first
    ps = float(proba @ s)
    proba_dot = proba * (s - ps)
    curvature = proba_dot * s - proba_dot * ps - proba * float(proba_dot @ s)
    second = -spd_solve(hessian, 2.0 * first + N.T @ curvature)
    return np.vstack([first, second])


class FullEnergy:
    """``E(x) = lam/2 ||x - x0||^2 + logsumexp(Abar x + bbar)`` in the full space, with the paper's Newton
    direction in the stable form of MATH.md section 3:

        d = -(g - (C B)^T (lam I + C G C^T)^{-1} (C B g)) / lam,   B = Abar, G = B B^T,
        C = diag(sqrt p) (I - 1 p^T);

    O(D K) per iteration after the O(D K^2) Gram matrix. A trial step costs O(K): along ``d`` the logits
    are ``w + t B d`` and the distance term is a quadratic in ``t``.
    """

    batch = MAX_BACKTRACKS

    def __init__(self, coef_rel, intercept_rel, x0, target, lam):
        self.B, self.bbar, self.x0, self.target, self.lam = coef_rel, intercept_rel, x0, target, lam
        self.gram = coef_rel @ coef_rel.T
        self.identity = np.eye(coef_rel.shape[0])
        self.b_norm = float(np.linalg.norm(coef_rel))

    def evaluate(self, x) -> Iterate:
        w = self.B @ x + self.bbar  # recomputed, not accumulated, so round-off does not drift
        diff = x - self.x0
        value, proba = neg_log_proba(w, self.target)
        grad = self.lam * diff + self.B.T @ proba
        return Iterate(x, 0.5 * self.lam * float(diff @ diff) + value, proba, grad, float(np.linalg.norm(grad)))

    def direction(self, current: Iterate) -> SearchDirection:
        proba, grad = current.proba, current.grad
        C = np.sqrt(proba)[:, None] * (self.identity - proba[None, :])
        y = spd_solve(self.lam * self.identity + C @ self.gram @ C.T, C @ (self.B @ grad))
        vector = -(grad - self.B.T @ (C.T @ y)) / self.lam
        return SearchDirection(vector, float(grad @ vector), image=self.B @ vector)

    @staticmethod
    def point_at(current: Iterate, direction: SearchDirection, step: float):
        return current.point + step * direction.vector

    def trials(self, current: Iterate, direction: SearchDirection, steps):
        d, diff = direction.vector, current.point - self.x0
        rr, rd, dd = float(diff @ diff), float(diff @ d), float(d @ d)
        w = self.B @ current.point + self.bbar
        values, _ = neg_log_proba_rows(w[None, :] + steps[:, None] * direction.image[None, :], self.target)
        return 0.5 * self.lam * (rr + 2.0 * steps * rd + steps**2 * dd) + values, steps * direction.slope

    def floor(self, current: Iterate) -> float:
        return full_space_floor(self.lam, current.point, self.x0, self.b_norm)

    def outcome(self, current: Iterate, n_iter: int, status: int) -> MethodOutcome:
        return MethodOutcome(current.point, current.proba, current.energy, current.grad_norm, n_iter, status,
                             self.floor(current))


def newton_full(coef_rel, intercept_rel, x0, target, lam, x, tol, max_iter, recorder) -> MethodOutcome:
    """The paper's full-space Newton (theorem 2.6) from ``x``."""
    return newton(FullEnergy(coef_rel, intercept_rel, x0, target, lam), x, tol, max_iter, recorder)
