"""Projected Newton for feature ranges ``l <= x <= u`` (MATH.md section 6; Bertsekas 1982).

Ranges break the subspace property, so this works in the full (free-feature) space. Each iteration
splits the features into an *active* set (at a bound, with the gradient pushing outwards) and a free
set; the free part takes the Newton step of section 3 restricted to the free features,

    d_F = -(lam I + B_F^T C^T C B_F)^{-1} g_F = -(g_F - (C B_F)^T (lam I_K + C G_F C^T)^{-1} C B_F g_F) / lam,

the active part a scaled gradient step, and a line search along the projection arc
``P(x + t d)`` accepts the first ``t = 0.8^j`` meeting Armijo. It stops on the projected gradient
``||x - P(x - grad E)|| <= tol``. Once the active set settles it is Newton's method on the free
features, hence quadratic. O(D K^2) per iteration for ``G_F``, O(D K) per line-search trial.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ._newton import ARMIJO, MAX_BACKTRACKS, SHRINK, NewtonOutcome, _spd_solve
from ._objective import EPS, neg_log_proba, neg_log_proba_rows
from ._result import CONVERGED, MAX_ITER, NON_FINITE, ROUND_OFF, STALLED

_STEPS = SHRINK ** np.arange(1, MAX_BACKTRACKS + 1)
_BATCH = 8
_ACTIVE_MARGIN = 1e-3  # Bertsekas: a bound counts as active within min(margin, ||projected gradient||)


def projected_newton(coef_rel, intercept_rel, x0, target, lam, lower, upper, x, tol, max_iter, recorder) -> NewtonOutcome:
    B = coef_rel
    n_classes = B.shape[0]
    identity = np.eye(n_classes)
    b_norm = float(np.linalg.norm(B))

    def evaluate(x_):
        diff_ = x_ - x0
        value, proba_ = neg_log_proba(B @ x_ + intercept_rel, target)
        return 0.5 * lam * float(diff_ @ diff_) + value, proba_, diff_

    def clip(v):  # np.clip's dispatch costs more than the work at these sizes
        return np.minimum(np.maximum(v, lower), upper)

    x = clip(x)
    energy, proba, diff = evaluate(x)
    grad = lam * diff + B.T @ proba

    def projected_norm(x_, grad_):
        step = x_ - clip(x_ - grad_)
        return math.sqrt(float(step @ step))

    pg_norm = projected_norm(x, grad)
    floor = 100.0 * EPS * (b_norm + 1.0)
    if recorder is not None:
        recorder.add(energy, pg_norm, proba, np.nan, time.perf_counter())
    if not np.isfinite(energy):
        return NewtonOutcome(x, proba, energy, pg_norm, 0, NON_FINITE, floor)
    status, n_iter = MAX_ITER, 0
    for n_iter in range(max_iter + 1):
        if pg_norm <= tol:
            status = CONVERGED
            break
        if n_iter == max_iter:
            break
        margin = min(_ACTIVE_MARGIN, pg_norm)
        active = np.where(grad > 0, x <= lower + margin, x >= upper - margin)
        free = ~active
        # Masking instead of gathering the free columns: at these sizes indexing costs more than the
        # arithmetic on the masked-out zeros. Active columns of B_F are zero, so C B_F g = C B_F g_F.
        g_free = grad * free
        B_free = B * free
        CB = np.sqrt(proba)[:, None] * (B_free - proba @ B_free)  # C B_F = diag(sqrt p)(I - 1 p^T) B_F
        y = _spd_solve(lam * identity + CB @ CB.T, CB @ g_free)
        # free part: the Newton step; active part: a gradient step scaled like lam I
        direction = np.where(free, CB.T @ y - grad, -grad) / lam
        slope_free = float(g_free @ direction)
        grad_active = grad * active
        step, accepted = 1.0, False
        trial = clip(x + direction)
        trial_energy, trial_proba, trial_diff = evaluate(trial)
        decrease = slope_free + float(grad_active @ (trial - x))
        if np.isfinite(trial_energy) and trial_energy <= energy + ARMIJO * decrease:
            accepted = True
        elif trial_energy - energy <= 64 * EPS * max(1.0, abs(energy)):
            trial_grad = lam * trial_diff + B.T @ trial_proba
            accepted = projected_norm(trial, trial_grad) < pg_norm  # round-off regime: accept a full step
        if not accepted:
            # The rest of the backtracking sequence 0.8^j, a batch of 8 steps at a time; the first step
            # meeting Armijo is the one the sequential search would take.
            for chunk in range(0, MAX_BACKTRACKS, _BATCH):
                steps = _STEPS[chunk:chunk + _BATCH]
                trials = clip(x[None, :] + steps[:, None] * direction[None, :])
                diffs = trials - x0
                values, probas = neg_log_proba_rows(trials @ B.T + intercept_rel, target)
                energies = 0.5 * lam * np.einsum("ij,ij->i", diffs, diffs) + values
                decreases = steps * slope_free + (trials - x) @ grad_active
                ok = np.isfinite(energies) & (energies <= energy + ARMIJO * decreases)
                if ok.any():
                    first = int(np.argmax(ok))
                    step, trial, accepted = float(steps[first]), trials[first], True
                    trial_energy, trial_proba, trial_diff = float(energies[first]), probas[first], diffs[first]
                    break
        if not accepted:
            floor = 100.0 * EPS * (lam * float(np.linalg.norm(x - x0)) + b_norm + 1.0)
            status = ROUND_OFF if pg_norm <= floor else STALLED
            break
        x, energy, proba = trial, trial_energy, trial_proba
        grad = lam * trial_diff + B.T @ proba
        pg_norm = projected_norm(x, grad)
        if recorder is not None:
            recorder.add(energy, pg_norm, proba, step, time.perf_counter())
    floor = 100.0 * EPS * (lam * float(np.linalg.norm(x - x0)) + b_norm + 1.0)
    return NewtonOutcome(x, proba, energy, pg_norm, n_iter, status, floor)
