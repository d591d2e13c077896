"""What every iterative method of the family shares, each piece once (as scipy's ``optimize/_lsq/common.py``
serves its trust-region loops): the line-search constants, step acceptance near machine precision, the
batched backtracking search, the round-off floor of the gradient, the exit status, and the outcome a
method hands back to :func:`solver.invert`.

The Newton loop itself is in ``_newton.py``; the energies it runs on (reduced, full-space, with ranges)
differ only in how they evaluate a point, a direction and a batch of trial steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg.lapack import dposv

from ._objective import EPS
from ._result import CONVERGED, MAX_ITER, NON_FINITE, ROUND_OFF, STALLED

ARMIJO = 1e-4  # sufficient-decrease constant (MATH.md section 4)
SHRINK = 0.8  # backtracking factor
MAX_BACKTRACKS = 100
BACKTRACK_STEPS = SHRINK ** np.arange(1, MAX_BACKTRACKS + 1)  # the steps tried after the unit step
# A change of E within this many ulps of E is no change: Armijo cannot see it.
ROUND_OFF_ULPS = 64
# The gradient lam (x - x0) + Abar^T p is computed with an error of a few ulps of its terms; this many.
FLOOR_ULPS = 100
# Projected Newton (Bertsekas): a bound counts as active within min(margin, ||projected gradient||).
ACTIVE_MARGIN = 1e-3


@dataclass(frozen=True, eq=False)
class MethodOutcome:
    """What one iterative method returns to the public functions.

    Attributes
    ----------
    point : ndarray
        The final iterate: reduced coordinates ``u`` (reduced Newton) or ``x``.
    proba : ndarray (K,)
    energy, grad_norm : float
        ``E`` and the stopping measure (the projected gradient's norm with ranges) at ``point``.
    n_iter : int
    status : int
        One of the codes in ``_result``.
    floor : float
        :func:`round_off_floor` at ``point``.
    derivatives : ndarray (2, r) or None
        Reduced Newton only: ``du*/dlam`` and ``d2u*/dlam2`` at the solution, for warm starts.
    """

    point: np.ndarray
    proba: np.ndarray
    energy: float
    grad_norm: float
    n_iter: int
    status: int
    floor: float
    derivatives: np.ndarray | None = None


class Iterate(NamedTuple):
    """A point with its energy, probabilities, gradient and stopping measure."""

    point: np.ndarray
    energy: float
    proba: np.ndarray
    grad: np.ndarray
    grad_norm: float


class SearchDirection(NamedTuple):
    """A descent direction with what the line search needs to predict the decrease along it.

    ``slope`` is ``grad^T d`` over the free features; with ranges, ``active_grad`` (the gradient on the
    features held at a bound) adds ``active_grad^T (P(x + t d) - x)``. ``image`` caches ``Abar d``.
    """

    vector: np.ndarray
    slope: float
    active_grad: np.ndarray | None = None
    image: np.ndarray | None = None


def predicted_decrease(iterate: Iterate, direction: SearchDirection, step: float, point: np.ndarray) -> float:
    """First-order change of E from ``iterate`` to ``point``, reached with ``step`` along ``direction``."""
    decrease = step * direction.slope
    if direction.active_grad is not None:
        decrease += float(direction.active_grad @ (point - iterate.point))
    return decrease


def round_off_floor(lam, magnitude, operator_norm):
    """``100 eps (lam m + ||Abar|| + 1)``: below this the gradient norm is round-off.

    The gradient ``lam (x - x0) + Abar^T p`` is computed with an error of a few ulps of its terms, and
    the iterate itself is stored to ``eps |x|``, so no iterate's gradient is known better than
    ``lam eps |x|``: ``m`` is ``||x|| + ||x0||`` in the full space and ``||u||`` in the reduced space
    (where x0 is not an unknown). Works elementwise on arrays of ``lam`` and ``m``.
    """
    return FLOOR_ULPS * EPS * (lam * magnitude + operator_norm + 1.0)


def full_space_floor(lam, x, x0, operator_norm) -> float:
    """:func:`round_off_floor` of an iterate ``x`` of the full-space energy."""
    return round_off_floor(lam, float(np.linalg.norm(x)) + float(np.linalg.norm(x0)), operator_norm)


def energy_unchanged(energy: float, trial_energy: float) -> bool:
    """Is ``trial_energy`` no larger than ``energy`` up to round-off (``ROUND_OFF_ULPS`` ulps)?"""
    return trial_energy - energy <= ROUND_OFF_ULPS * EPS * max(1.0, abs(energy))


def accept_unit_step(energy: float, grad_norm: float, trial: Iterate, decrease: float) -> bool:
    """Armijo on E for the unit step; near machine precision, where Armijo cannot see the decrease, a unit
    step that reduces the gradient norm is accepted instead (MATH.md section 4)."""
    if not np.isfinite(trial.energy):
        return False
    if trial.energy <= energy + ARMIJO * decrease:
        return True
    return energy_unchanged(energy, trial.energy) and trial.grad_norm < grad_norm


def backtrack(trials, energy: float, batch: int) -> int:
    """Index ``j`` into :data:`BACKTRACK_STEPS` of the first step meeting Armijo, or -1.

    ``trials(steps)`` returns the energies and predicted decreases at those steps; they are evaluated
    ``batch`` at a time. The step found is the one the sequential search would take.
    """
    for start in range(0, MAX_BACKTRACKS, batch):
        energies, decreases = trials(BACKTRACK_STEPS[start:start + batch])
        ok = np.isfinite(energies) & (energies <= energy + ARMIJO * decreases)
        if ok.any():
            return start + int(np.argmax(ok))
    return -1


def accept_unit_steps(energy, grad_norm, trial_energy, trial_grad_norm, decrease) -> np.ndarray:
    """:func:`accept_unit_step` elementwise, for the rows of a batch (``_batch_kernels.py``)."""
    armijo = trial_energy <= energy + ARMIJO * decrease
    unchanged = trial_energy - energy <= ROUND_OFF_ULPS * EPS * np.maximum(1.0, np.abs(energy))
    return np.isfinite(trial_energy) & (armijo | (unchanged & (trial_grad_norm < grad_norm)))


def backtrack_rows(trials, energy: np.ndarray, batch: int) -> np.ndarray:
    """:func:`backtrack` for the rows of a batch: per row, the index into :data:`BACKTRACK_STEPS` of the
    first step meeting Armijo, or -1.

    ``trials(rows, steps)`` returns the energies and predicted decreases (len(rows), len(steps)) of those
    rows at those steps; rows leave the search as soon as they have their step.
    """
    found = np.full(energy.shape[0], -1)
    searching = np.arange(energy.shape[0])
    for start in range(0, MAX_BACKTRACKS, batch):
        if searching.size == 0:
            break
        energies, decreases = trials(searching, BACKTRACK_STEPS[start:start + batch])
        ok = np.isfinite(energies) & (energies <= energy[searching, None] + ARMIJO * decreases)
        hit = ok.any(axis=1)
        found[searching[hit]] = start + np.argmax(ok[hit], axis=1)
        searching = searching[~hit]
    return found


def stopped_status(grad_norm: float, floor: float) -> int:
    """Why a line search that found no decrease stopped: round-off (success), a stall, or an overflow.

    A gradient norm that overflowed is never "at the floor", and neither is any gradient when the floor
    itself overflowed (the model's weights are beyond double precision's range for this question).
    """
    if not math.isfinite(grad_norm):
        return NON_FINITE
    return ROUND_OFF if grad_norm <= floor < math.inf else STALLED


def stopped_statuses(grad_norm: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """:func:`stopped_status` elementwise."""
    status = np.where((grad_norm <= floor) & np.isfinite(floor), ROUND_OFF, STALLED)
    return np.where(np.isfinite(grad_norm), status, NON_FINITE)


def final_status(energy: float, grad_norm: float, tol: float, floor: float, hit_max_iter: bool = False) -> int:
    """The status of a method that ran its own loop (scipy's, the closed form, gradient descent)."""
    if not math.isfinite(energy):
        return NON_FINITE
    if grad_norm <= tol:
        return CONVERGED
    if hit_max_iter:
        return MAX_ITER
    return stopped_status(grad_norm, floor)


def succeeded(status: int) -> bool:
    return status in (CONVERGED, ROUND_OFF)


def spd_solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve with a symmetric positive definite matrix (``lam I + ...``, never singular in exact
    arithmetic) by LAPACK's Cholesky ``dposv``, called directly: at K x K sizes the wrappers of
    numpy.linalg and scipy.linalg cost more than the factorisation. Least squares if it fails."""
    if matrix.shape[0] == 0:
        return np.zeros(0)
    _, solution, info = dposv(matrix, rhs)
    if info == 0:
        return solution
    return np.linalg.lstsq(matrix, rhs, rcond=None)[0]
