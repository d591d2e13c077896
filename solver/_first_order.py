"""The paper's baselines on the full-space objective: GD, Polak-Ribiere CG, BFGS, L-BFGS (memory 4).

All stop on the same rule as Newton, ``||grad E|| <= tol`` in the 2-norm, or after ``max_iter``
iterations. BFGS and L-BFGS are scipy's, stopped through the callback. CG is ours, with an exact line
search: scipy's CG stalled in its Wolfe line search on a fifth of the RCV1-sized problems.
"""

from __future__ import annotations

import time

import numpy as np

from ._iteration import ARMIJO, MAX_BACKTRACKS, SHRINK, MethodOutcome, final_status, full_space_floor
from ._objective import full_energy_and_gradient, neg_log_proba

BFGS_MAX_BYTES = 2**30  # BFGS keeps a dense D x D inverse Hessian


def bfgs_memory_check(n_features: int) -> None:
    needed = 8 * n_features**2
    if needed > BFGS_MAX_BYTES:
        raise ValueError(
            f"method='bfgs' stores a dense {n_features} x {n_features} matrix ({needed / 2**30:.1f} GiB); "
            "use method='lbfgs' or 'newton' for this many features"
        )


class _Objective:
    """E and grad E with a one-entry cache, so the callback reuses the last evaluation."""

    def __init__(self, coef_rel, intercept_rel, x0, target, lam):
        self.args = (coef_rel, intercept_rel, x0, target, lam)
        self.last_x = None
        self.last = None

    def __call__(self, x):
        if self.last_x is None or not np.array_equal(x, self.last_x):
            self.last_x = np.array(x)
            self.last = full_energy_and_gradient(*self.args, self.last_x)
        return self.last

    def fun_and_grad(self, x):
        energy, gradient, _ = self(x)
        return energy, gradient


def _finish(objective, x, n_iter, hit_max_iter, tol, coef_rel, lam, x0, lower=None, upper=None):
    energy, gradient, proba = objective(x)
    if lower is not None:  # with bounds, the projected gradient is what vanishes
        gradient = x - np.clip(x - gradient, lower, upper)
    grad_norm = float(np.linalg.norm(gradient))
    floor = full_space_floor(lam, x, x0, float(np.linalg.norm(coef_rel)))
    return MethodOutcome(x, proba, energy, grad_norm, n_iter, final_status(energy, grad_norm, tol, floor, hit_max_iter),
                         floor)


def gradient_descent(coef_rel, intercept_rel, x0, target, lam, x, tol, max_iter, recorder) -> MethodOutcome:
    """Steepest descent with Armijo backtracking; each step starts from twice the last accepted one.

    Its own sequential search, not :func:`solver._iteration.backtrack`: the first trial is not the unit
    step but twice the last accepted step, which is what makes gradient descent usable at all here.
    """
    objective = _Objective(coef_rel, intercept_rel, x0, target, lam)
    energy, gradient, proba = objective(x)
    grad_norm = float(np.linalg.norm(gradient))
    if recorder is not None:
        recorder.add(energy, grad_norm, proba, np.nan, time.perf_counter())
    # 1 / (lam + ||Abar||^2 / 2) bounds the inverse curvature, since diag p - p p^T <= I / 2.
    step = 1.0 / (lam + 0.5 * float(np.linalg.norm(coef_rel, 2)) ** 2)
    n_iter = 0
    while grad_norm > tol and n_iter < max_iter and np.isfinite(energy):
        slope = -grad_norm**2
        step, accepted = 2.0 * step, False
        for _ in range(MAX_BACKTRACKS):
            trial = x - step * gradient
            trial_energy, trial_gradient, trial_proba = objective(trial)
            if np.isfinite(trial_energy) and trial_energy <= energy + ARMIJO * step * slope:
                accepted = True
                break
            step *= SHRINK
        if not accepted:
            break
        x, energy, gradient, proba = trial, trial_energy, trial_gradient, trial_proba
        grad_norm = float(np.linalg.norm(gradient))
        n_iter += 1
        if recorder is not None:
            recorder.add(energy, grad_norm, proba, step, time.perf_counter())
    return _finish(objective, x, n_iter, n_iter >= max_iter, tol, coef_rel, lam, x0)


def _exact_line_search(diff, direction, w, Bd, target, lam, max_steps=50) -> float:
    """Minimise ``phi(t) = E(x + t d)`` over t >= 0 by safeguarded 1-D Newton; O(K) per step.

    ``phi'(t) = lam (r + t d).d + p(t).Bd`` and ``phi''(t) = lam d.d + Bd^T (diag p - p p^T) Bd``, with
    ``r = x - x0`` and ``Bd = Abar d`` computed once.
    """
    rd, dd = float(diff @ direction), float(direction @ direction)
    low, high, t = 0.0, np.inf, 0.0
    for _ in range(max_steps):
        _, proba = neg_log_proba(w + t * Bd, target)
        mean = float(proba @ Bd)
        slope = lam * (rd + t * dd) + mean
        curvature = lam * dd + float(proba @ (Bd - mean) ** 2)
        if slope < 0:
            low = t
        else:
            high = t
        nxt = t - slope / curvature
        if not low < nxt < high:
            nxt = 0.5 * (low + high) if np.isfinite(high) else 2.0 * max(t, 1e-12) + 1.0
        if abs(nxt - t) <= 1e-14 * max(abs(t), 1e-300):
            return nxt
        t = nxt
    return t


def conjugate_gradient(coef_rel, intercept_rel, x0, target, lam, x, tol, max_iter, recorder) -> MethodOutcome:
    """Polak-Ribiere nonlinear CG (PR+, restarted when beta < 0 or d is not a descent direction).

    Each iteration minimises E exactly along the search direction (the setting CG's theory assumes):
    one O(D K) product ``Abar d``, then O(K) work per 1-D Newton step.
    """
    objective = _Objective(coef_rel, intercept_rel, x0, target, lam)
    energy, gradient, proba = objective(x)
    grad_norm = float(np.linalg.norm(gradient))
    if recorder is not None:
        recorder.add(energy, grad_norm, proba, np.nan, time.perf_counter())
    direction = -gradient
    n_iter = 0
    while grad_norm > tol and n_iter < max_iter and np.isfinite(energy):
        if float(gradient @ direction) >= 0:
            direction = -gradient
        w = coef_rel @ x + intercept_rel
        step = _exact_line_search(x - x0, direction, w, coef_rel @ direction, target, lam)
        trial = x + step * direction
        trial_energy, trial_gradient, trial_proba = objective(trial)
        if not trial_energy <= energy:
            break
        beta = max(0.0, float(trial_gradient @ (trial_gradient - gradient)) / float(gradient @ gradient))
        x, energy, proba = trial, trial_energy, trial_proba
        direction = -trial_gradient + beta * direction
        gradient = trial_gradient
        grad_norm = float(np.linalg.norm(gradient))
        n_iter += 1
        if recorder is not None:
            recorder.add(energy, grad_norm, proba, step, time.perf_counter())
    return _finish(objective, x, n_iter, n_iter >= max_iter, tol, coef_rel, lam, x0)


_SCIPY_METHODS = {"bfgs": "BFGS", "lbfgs": "L-BFGS-B"}


def scipy_method(method, coef_rel, intercept_rel, x0, target, lam, x, tol, max_iter, recorder, lower=None,
                 upper=None) -> MethodOutcome:
    """BFGS or L-BFGS (memory 4; L-BFGS-B with bounds) from scipy, stopped on ``||grad|| <= tol``
    (the projected gradient with bounds)."""
    import scipy.optimize  # imported where used: ~0.25 s at start-up, before the first counterfactual

    objective = _Objective(coef_rel, intercept_rel, x0, target, lam)
    if lower is not None:
        x = np.clip(x, lower, upper)
    energy, gradient, proba = objective(x)
    if recorder is not None:
        recorder.add(energy, np.linalg.norm(gradient), proba, np.nan, time.perf_counter())
    previous = [np.array(x)]

    def callback(intermediate_result):
        current = np.asarray(intermediate_result.x)
        energy_, gradient_, proba_ = objective(current)
        if lower is not None:
            gradient_ = current - np.clip(current - gradient_, lower, upper)
        grad_norm_ = float(np.linalg.norm(gradient_))
        if recorder is not None:
            moved = np.linalg.norm(current - previous[0])
            recorder.add(energy_, grad_norm_, proba_, moved, time.perf_counter())
        previous[0] = np.array(current)
        if grad_norm_ <= tol:
            raise StopIteration

    if method == "lbfgs":
        options = {"maxiter": max_iter, "maxcor": 4, "ftol": 0.0, "gtol": 0.0, "maxfun": 20 * max_iter}
    else:
        options = {"maxiter": max_iter, "gtol": tol, "norm": 2.0}
    bounds = None if lower is None else scipy.optimize.Bounds(lower, upper)
    start = _finish(objective, x, 0, False, tol, coef_rel, lam, x0, lower, upper)
    if start.grad_norm <= tol:
        return start
    result = scipy.optimize.minimize(objective.fun_and_grad, x, jac=True, method=_SCIPY_METHODS[method],
                                     options=options, callback=callback, bounds=bounds)
    return _finish(objective, np.asarray(result.x), int(result.nit), int(result.nit) >= max_iter, tol, coef_rel,
                   lam, x0, lower, upper)
