"""Newton's method, reduced (MATH.md section 2) and full-space (section 3), with the paper's line search."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dposv

from ._objective import EPS, neg_log_proba, neg_log_proba_rows
from ._result import CONVERGED, MAX_ITER, NON_FINITE, ROUND_OFF, STALLED, HistoryRecorder

ARMIJO = 1e-4
SHRINK = 0.8
MAX_BACKTRACKS = 100
# A full step whose energy change is within this many ulps of E counts as "no change" on round-off.
ROUND_OFF_ULPS = 64


@dataclass
class NewtonOutcome:
    point: np.ndarray      # u (reduced) or x (full)
    proba: np.ndarray
    energy: float
    grad_norm: float
    n_iter: int
    status: int
    floor: float
    derivatives: np.ndarray | None = None  # rows du*/dlam and d2u*/dlam2 at the solution (reduced Newton)


def _spd_solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve with a symmetric positive definite matrix (``lam I + ...``, never singular in exact
    arithmetic) by LAPACK's Cholesky ``dposv``, called directly: at K x K sizes the wrappers of
    numpy.linalg and scipy.linalg cost more than the factorisation. Least squares if it fails."""
    if matrix.shape[0] == 0:
        return np.zeros(0)
    _, solution, info = dposv(matrix, rhs)
    if info == 0:
        return solution
    return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


def _accept_step(energy, grad_norm, trial_energy, slope, step, trial_grad_norm) -> bool:
    """Armijo on E; near machine precision, a full step that reduces ||grad|| (MATH.md section 4).

    ``trial_grad_norm`` is a callable, evaluated only when Armijo fails on a full step.
    """
    if not np.isfinite(trial_energy):
        return False
    if trial_energy <= energy + ARMIJO * step * slope:
        return True
    at_round_off = trial_energy - energy <= ROUND_OFF_ULPS * EPS * max(1.0, abs(energy))
    return step == 1.0 and at_round_off and trial_grad_norm() < grad_norm


def _first_acceptable(energies, steps, energy, slope) -> int:
    """Index of the first step meeting Armijo, or -1."""
    ok = np.isfinite(energies) & (energies <= energy + ARMIJO * steps * slope)
    return int(np.argmax(ok)) if ok.any() else -1


_BACKTRACK_STEPS = SHRINK ** np.arange(1, MAX_BACKTRACKS + 1)


def newton_reduced(N, w0, target, lam, u, tol, max_iter, recorder: HistoryRecorder | None) -> NewtonOutcome:
    """Minimise ``F(u) = lam/2 ||u||^2 + logsumexp(w0 + N u)``; O(K^3) per iteration.

    ``grad F = lam u + N^T p`` and ``hess F = lam I + Nc^T diag(p) Nc`` with ``Nc = N - 1 (N^T p)^T``,
    the centred form of ``N^T (diag p - p p^T) N``, which stays positive semi-definite on round-off.
    The backtracking line search (unit step first, then 0.8^j) is evaluated for all j at once: the
    step it returns is the one the sequential search would take, for one batch of K x r work.
    """
    rank = N.shape[1]
    n_norm = math.sqrt(float(np.einsum("ij,ij->", N, N)))
    lam_identity = lam * np.eye(rank)

    def evaluate(u_):
        value, proba_ = neg_log_proba(w0 + N @ u_, target)
        return 0.5 * lam * float(u_ @ u_) + value, proba_, lam * u_ + N.T @ proba_

    energy, proba, grad = evaluate(u)
    grad_norm = math.sqrt(float(grad @ grad))
    floor = 100.0 * EPS * (n_norm + 1.0)
    if recorder is not None:
        recorder.add(energy, grad_norm, proba, np.nan, time.perf_counter())
    if not np.isfinite(energy):
        return NewtonOutcome(u, proba, energy, grad_norm, 0, NON_FINITE, floor)
    status, n_iter = MAX_ITER, 0
    for n_iter in range(max_iter + 1):
        floor = 100.0 * EPS * (lam * math.sqrt(float(u @ u)) + n_norm + 1.0)
        if grad_norm <= tol:
            status = CONVERGED
            break
        if n_iter == max_iter:
            break
        centred = N - proba @ N
        hessian = lam_identity + centred.T @ (proba[:, None] * centred)
        direction = -_spd_solve(hessian, grad)
        slope = float(grad @ direction)
        step = 1.0
        trial = u + direction
        trial_energy, trial_proba, trial_grad = evaluate(trial)
        if not _accept_step(energy, grad_norm, trial_energy, slope, 1.0, lambda: math.sqrt(float(trial_grad @ trial_grad))):
            steps = _BACKTRACK_STEPS
            U = u[None, :] + steps[:, None] * direction[None, :]
            values, _ = neg_log_proba_rows(w0[None, :] + U @ N.T, target)
            first = _first_acceptable(0.5 * lam * np.einsum("ij,ij->i", U, U) + values, steps, energy, slope)
            if first < 0:
                status = ROUND_OFF if grad_norm <= floor else STALLED
                break
            step = float(steps[first])
            trial = U[first]
            trial_energy, trial_proba, trial_grad = evaluate(trial)
        u, energy, proba, grad = trial, trial_energy, trial_proba, trial_grad
        grad_norm = math.sqrt(float(grad @ grad))
        if recorder is not None:
            recorder.add(energy, grad_norm, proba, step, time.perf_counter())
    derivatives = None
    if status in (CONVERGED, ROUND_OFF):
        # For a predictor the Hessian of the last iteration is close enough (the last step is tiny).
        derivatives = path_derivatives(N, proba, lam, u, hessian if n_iter > 0 else None)
    return NewtonOutcome(u, proba, energy, grad_norm, n_iter, status, floor, derivatives)


def path_derivatives(N, proba, lam, u, hessian=None) -> np.ndarray:
    """``u'`` and ``u''`` of the solution path ``u*(lam)``; O(K r^2).

    Differentiating ``lam u + N^T p = 0`` once gives ``H u' = -u``; twice gives
    ``H u'' = -2 u' - N^T (dS/dlam) N u'`` with ``S = diag p - p p^T`` and, for ``s = N u'`` and
    ``p' = p o (s - p.s)``, ``(dS/dlam) s = p' o s - p' (p.s) - p (p'.s)``.
    """
    if hessian is None:
        centred = N - proba @ N
        hessian = lam * np.eye(N.shape[1]) + centred.T @ (proba[:, None] * centred)
    first = -_spd_solve(hessian, u)
    s = N @ first
    ps = float(proba @ s)
    proba_dot = proba * (s - ps)
    curvature = proba_dot * s - proba_dot * ps - proba * float(proba_dot @ s)
    second = -_spd_solve(hessian, 2.0 * first + N.T @ curvature)
    return np.vstack([first, second])


def newton_full(coef_rel, intercept_rel, x0, target, lam, x, tol, max_iter, recorder) -> NewtonOutcome:
    """The paper's full-space Newton (theorem 2.6) with the stable K x K direction of MATH.md section 3.

    ``d = -(g - (C B)^T (lam I + C G C^T)^{-1} (C B g)) / lam`` with ``B = Abar``, ``G = B B^T`` and
    ``C = diag(sqrt p) (I - 1 p^T)``; O(D K) per iteration after the O(D K^2) Gram matrix.
    """
    B = coef_rel
    n_classes = B.shape[0]
    gram = B @ B.T
    identity = np.eye(n_classes)
    b_norm = float(np.linalg.norm(B))

    def energy_at(x_, w_):
        diff_ = x_ - x0
        value, proba_ = neg_log_proba(w_, target)
        return 0.5 * lam * float(diff_ @ diff_) + value, proba_

    def gradient_at(x_, proba_):
        return lam * (x_ - x0) + B.T @ proba_

    w = B @ x + intercept_rel
    energy, proba = energy_at(x, w)
    grad = gradient_at(x, proba)
    grad_norm = float(np.linalg.norm(grad))
    floor = 100.0 * EPS * (b_norm + 1.0)
    if recorder is not None:
        recorder.add(energy, grad_norm, proba, np.nan, time.perf_counter())
    if not np.isfinite(energy):
        return NewtonOutcome(x, proba, energy, grad_norm, 0, NON_FINITE, floor)
    status, n_iter = MAX_ITER, 0
    for n_iter in range(max_iter + 1):
        floor = 100.0 * EPS * (lam * float(np.linalg.norm(x - x0)) + b_norm + 1.0)
        if grad_norm <= tol:
            status = CONVERGED
            break
        if n_iter == max_iter:
            break
        C = np.sqrt(proba)[:, None] * (identity - proba[None, :])
        CBg = C @ (B @ grad)
        y = _spd_solve(lam * identity + C @ gram @ C.T, CBg)
        direction = -(grad - B.T @ (C.T @ y)) / lam
        B_direction = B @ direction
        slope = float(grad @ direction)
        step, accepted = 1.0, False
        for _ in range(MAX_BACKTRACKS):
            trial = x + step * direction
            trial_energy, trial_proba = energy_at(trial, w + step * B_direction)
            trial_grad_norm = lambda: np.linalg.norm(gradient_at(trial, trial_proba))  # noqa: E731
            if _accept_step(energy, grad_norm, trial_energy, slope, step, trial_grad_norm):
                accepted = True
                break
            step *= SHRINK
        if not accepted:
            status = ROUND_OFF if grad_norm <= floor else STALLED
            break
        x = trial
        w = B @ x + intercept_rel  # recomputed, not accumulated, so round-off does not drift
        energy, proba = energy_at(x, w)
        grad = gradient_at(x, proba)
        grad_norm = float(np.linalg.norm(grad))
        if recorder is not None:
            recorder.add(energy, grad_norm, proba, step, time.perf_counter())
    return NewtonOutcome(x, proba, energy, grad_norm, n_iter, status, floor)
