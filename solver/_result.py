"""Small frozen result objects and the status table shared by every method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CONVERGED = 0
MAX_ITER = 1
STALLED = 2
NON_FINITE = 3
ROUND_OFF = 4


def status_message(status: int, grad_norm: float, tol: float, n_iter: int, floor: float, method: str) -> str:
    """A message a user can act on, for each exit status."""
    if status == CONVERGED:
        return f"converged: gradient norm {grad_norm:.2e} <= tol {tol:.1e} after {n_iter} iteration(s)"
    if status == ROUND_OFF:
        return (
            f"converged to round-off level: gradient norm {grad_norm:.2e} is at the double-precision floor "
            f"(about {floor:.1e}) of this problem, above the requested tol {tol:.1e}"
        )
    if status == MAX_ITER:
        hint = "" if method.startswith("newton") else ", or use method='newton'"
        return (
            f"not converged: gradient norm {grad_norm:.2e} > tol {tol:.1e} after max_iter={n_iter} "
            f"iterations; increase max_iter{hint}"
        )
    if status == STALLED and not method.startswith("newton"):
        return (
            f"not converged: {method} stopped making progress at gradient norm {grad_norm:.2e} "
            f"(tol {tol:.1e}); its line search cannot resolve smaller decreases of the objective: "
            "method='newton' reaches the tolerance"
        )
    if status == STALLED:
        return (
            f"not converged: the line search could not decrease the objective at gradient norm "
            f"{grad_norm:.2e} (tol {tol:.1e}); the problem is badly scaled at this lam: try a larger lam "
            f"or a looser tol"
        )
    return (
        "not converged: a non-finite value appeared (the logits overflowed); lam is so small for this "
        "model's scale that the solution runs away: try a larger lam"
    )


@dataclass(frozen=True, eq=False)
class IterationHistory:
    """Per-iteration record; entry 0 is the starting point.

    Attributes
    ----------
    energy : ndarray (n+1,)
        ``E(x_t) = lam/2 ||x_t - x0||^2 - log p_k(x_t)``.
    grad_norm : ndarray (n+1,)
        ``||grad E(x_t)||``.
    proba : ndarray (n+1, K)
        Class probabilities at ``x_t``.
    step : ndarray (n+1,)
        Line-search step size that produced ``x_t`` (NaN for the start).
    time_s : ndarray (n+1,)
        Seconds since the solve started when ``x_t`` was reached.
    """

    energy: np.ndarray
    grad_norm: np.ndarray
    proba: np.ndarray
    step: np.ndarray
    time_s: np.ndarray


class HistoryRecorder:
    """Collects per-iteration values while a solver runs."""

    def __init__(self, start_time: float):
        self.start_time = start_time
        self.rows: list[tuple[float, float, np.ndarray, float, float]] = []

    def add(self, energy: float, grad_norm: float, proba: np.ndarray, step: float, now: float) -> None:
        self.rows.append((float(energy), float(grad_norm), np.array(proba, dtype=float), float(step), now - self.start_time))

    def freeze(self) -> IterationHistory:
        energy, grad_norm, proba, step, time_s = zip(*self.rows)
        return IterationHistory(
            energy=np.array(energy),
            grad_norm=np.array(grad_norm),
            proba=np.vstack(proba),
            step=np.array(step),
            time_s=np.array(time_s),
        )


@dataclass(frozen=True, eq=False)
class ReducedState:
    """What a warm re-solve on the same model and instance reuses, so it does no D-sized work before
    its Newton iterations: the basis the coordinates refer to, the logits ``A x0 + b``, the reduced
    solution ``u`` and the path's derivatives ``du/dlam``, ``d2u/dlam2`` (rows of ``derivatives``) at
    ``lam`` for ``target``."""

    basis: object
    x0: np.ndarray
    logits: np.ndarray
    u: np.ndarray
    lam: float
    target: int
    derivatives: np.ndarray | None


@dataclass(frozen=True, eq=False)
class InversionResult:
    """The minimiser of ``E(x) = lam/2 ||x - x0||^2 - log p_target(x)`` and how it was found.

    Attributes
    ----------
    x : ndarray (D,)
        The solution.
    proba : ndarray (K,)
        Class probabilities at ``x``.
    energy : float
        ``E(x)``.
    grad_norm : float
        ``||grad E(x)||``; 0 at the exact minimiser.
    n_iter : int
        Iterations used (0 for the closed form).
    success : bool
        Whether ``grad_norm`` reached ``tol`` (or the round-off floor).
    status : int
        0 converged, 1 max_iter reached, 2 line search stalled, 3 non-finite values, 4 round-off floor.
    message : str
        What happened, in words a user can act on.
    method : str
        The method that ran (``"auto"`` resolved to ``"closed-form"`` or ``"newton"``).
    lam, target : float, int
        The problem solved.
    time_s : float
        Wall time of the call in seconds.
    history : IterationHistory or None
        Per-iteration record when ``record=True``.
    warm_state : ReducedState or None
        Internal: lets ``invert(..., x_init=result)`` skip D-sized work (reduced Newton only).
    at_lower, at_upper : ndarray of int
        Features that end at their lower / upper bound (empty without bounds).
    """

    x: np.ndarray
    proba: np.ndarray
    energy: float
    grad_norm: float
    n_iter: int
    success: bool
    status: int
    message: str
    method: str
    lam: float
    target: int
    time_s: float
    history: IterationHistory | None = None
    warm_state: ReducedState | None = field(default=None, repr=False)
    at_lower: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    at_upper: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


@dataclass(frozen=True, eq=False)
class InversionPath:
    """Solutions along a sequence of ``lam`` values, each warm-started from the previous one.

    Attributes
    ----------
    lams : ndarray (n,)
    X : ndarray (n, D)
        ``X[i]`` minimises ``E`` at ``lams[i]``.
    proba : ndarray (n, K)
    energy, distance, grad_norm : ndarray (n,)
        ``E(X[i])``, ``||X[i] - x0||``, ``||grad E(X[i])||``.
    n_iter : ndarray (n,) of int
    success : ndarray (n,) of bool
    target : int
    method : str
    time_s : float
        Wall time of the whole path.
    """

    lams: np.ndarray
    X: np.ndarray
    proba: np.ndarray
    energy: np.ndarray
    distance: np.ndarray
    grad_norm: np.ndarray
    n_iter: np.ndarray
    success: np.ndarray
    target: int
    method: str
    time_s: float


@dataclass(frozen=True, eq=False)
class CounterfactualResult:
    """The answer to :func:`solver.minimal_flip` or :func:`solver.closest_with_probability`.

    Attributes
    ----------
    x : ndarray (D,)
        The counterfactual (x0 itself when nothing needs to change; x0 when ``success`` is False).
    proba : ndarray (K,)
        Class probabilities at ``x``.
    distance : float
        ``sqrt(sum_j cost_j (x_j - x0_j)^2)``, the minimised distance (Euclidean without costs; ``inf``
        when there is no answer).
    target : int
    lam : float or None
        For :func:`solver.closest_with_probability`: the trade-off whose minimiser this is (``inf`` when
        x0 already qualifies); None for :func:`solver.minimal_flip`.
    success : bool
    message : str
    method : str
    n_iter : int
        Solver iterations (flip) or lambda probes (probability).
    time_s : float
    at_lower, at_upper : ndarray of int
        Features that end at a bound.
    tied_classes : ndarray of int
        Classes whose decision boundary with the target is active (logit gap equal to the margin).
    level_changes : tuple of (int, str, str)
        Categorical groups whose level changed: (group index, from feature name, to feature name).
    margin : float or None
        For :func:`solver.minimal_flip`: the logit gap ``min_j z_k(x) - z_j(x)`` the answer was solved
        for (the requested margin, or larger after a deliberate nudge past round-off).
    """

    x: np.ndarray
    proba: np.ndarray
    distance: float
    target: int
    lam: float | None
    success: bool
    message: str
    method: str
    n_iter: int
    time_s: float
    at_lower: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    at_upper: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    tied_classes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    level_changes: tuple = ()
    margin: float | None = None
