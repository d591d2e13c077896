"""The one answer a page shows: the slider's solve or a question's answer, in the same terms
(pure functions, testable without Streamlit)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ui import constraints


@dataclass(frozen=True, eq=False)
class Shown:
    """Everything the page says about the answer on screen.

    Attributes
    ----------
    source : str
        "slider", "flip", "alpha" or "recourse".
    title : str
    x, proba : ndarray
        The counterfactual and the class probabilities there.
    predicted : int
        The class the model predicts at ``x`` (``model.predict``, ties to the lower index).
    target : int
    lam : float or None
        The lambda whose minimiser ``x`` is; None when no lambda gives it.
    lam_text, lam_note : str
        How lambda is shown (a number, or "not on the path") and a sentence on it.
    distance : float
        ``sqrt(sum_j cost_j (x_j - x0_j)^2)``, in ``unit``.
    unit : str
    success : bool
        The solve converged (slider), or the question has an answer (questions).
    meets : bool
        The answer does what was asked: the target is predicted (flip), ``p >= alpha`` (alpha);
        for the slider, whether the target is predicted.
    message : str
    n_iter : int
    time_s : float
    grad_norm : float or None
        Slider only.
    at_lower, at_upper : ndarray of int
    level_changes : tuple
    arguments : dict
        The solver arguments the answer was found with (for describing its active constraints).
    alpha : float or None
        The alpha asked ("alpha", and "recourse" when it also asks p >= alpha).
    metric : str
        "l2" (the distance above) or "l1" (``sum_j cost_j |x_j - x0_j|``, recourse only).
    cost : ndarray or None
        The weights of the distance when they are not the page's own (recourse with l1).
    optimal : bool or None
        Recourse: certified optimal (None for the other sources).
    bound : float or None
        Recourse: the proved lower bound on the distance.
    changed : tuple
        Recourse: the changed features (ints) and one-hot groups (tuples of columns).
    budget : int or None
        Recourse: at most this many changes were allowed.
    """

    source: str
    title: str
    x: np.ndarray
    proba: np.ndarray
    predicted: int
    target: int
    lam: float | None
    lam_text: str
    lam_note: str
    distance: float
    unit: str
    success: bool
    meets: bool
    message: str
    n_iter: int
    time_s: float
    grad_norm: float | None
    at_lower: np.ndarray
    at_upper: np.ndarray
    level_changes: tuple = ()
    arguments: dict = field(default_factory=dict)
    alpha: float | None = None
    metric: str = "l2"
    cost: np.ndarray | None = None
    optimal: bool | None = None
    bound: float | None = None
    changed: tuple = ()
    budget: int | None = None

    @property
    def is_answer(self) -> bool:
        return self.source != "slider"


def unsolvable(model, x0, target: int, what, message: str) -> Shown:
    """What the slider shows when what may change leaves nothing to solve (every feature locked): x0
    itself and the reason."""
    x0 = np.asarray(x0, dtype=float)
    empty = np.zeros(0, dtype=int)
    return Shown(source="slider", title="Nothing can change", x=x0, proba=model.predict_proba(x0),
                 predicted=int(model.predict(x0)), target=int(target), lam=None, lam_text="—", lam_note="",
                 distance=0.0, unit=what.unit, success=False, meets=False, message=message, n_iter=0, time_s=0.0,
                 grad_norm=None, at_lower=empty, at_upper=empty, arguments=what.arguments)


def question_title(question: str, target_name: str, alpha: float | None) -> str:
    if question == "flip":
        return "Smallest change that flips the decision"
    return f"Closest with p({target_name}) ≥ {alpha:g}"


def from_slider(result, model, x0, what) -> Shown:
    """The slider's penalised minimiser at its lambda."""
    predicted = int(model.predict(result.x))
    return Shown(source="slider", title=f"The slider's answer at λ = {result.lam:.4g}", x=result.x, proba=result.proba,
                 predicted=predicted, target=int(result.target), lam=float(result.lam),
                 lam_text=f"{result.lam:.4g}", lam_note="", distance=constraints.distance(result.x, x0, what.cost),
                 unit=what.unit, success=bool(result.success), meets=predicted == int(result.target),
                 message=result.message, n_iter=int(result.n_iter), time_s=float(result.time_s),
                 grad_norm=float(result.grad_norm), at_lower=result.at_lower, at_upper=result.at_upper,
                 arguments=what.arguments)


def from_answer(answer, model, x0, what, target_name: str) -> Shown:
    """A question's answer itself: its own x, probabilities and lambda (if it has one)."""
    result = answer.result
    predicted = int(model.predict(result.x))
    target = int(result.target)
    if answer.question == "flip":
        meets = result.success and predicted == target
    else:
        meets = result.success and float(result.proba[target]) >= answer.alpha
    if answer.lam is not None:
        lam_text = f"{answer.lam:.6g}"
    elif not result.success or result.distance == 0:
        lam_text = "—"  # no answer, or x0 itself: no lambda is involved
    else:
        lam_text = "off path"
    return Shown(source=answer.question, title=question_title(answer.question, target_name, answer.alpha), x=result.x,
                 proba=result.proba, predicted=predicted, target=target, lam=answer.lam, lam_text=lam_text,
                 lam_note=answer.lam_note, distance=constraints.distance(result.x, x0, what.cost), unit=what.unit,
                 success=bool(result.success), meets=bool(meets), message=result.message, n_iter=int(result.n_iter),
                 time_s=float(result.time_s), grad_norm=None, at_lower=result.at_lower, at_upper=result.at_upper,
                 level_changes=tuple(result.level_changes), arguments=answer.arguments,
                 alpha=answer.alpha)


def recourse_title(budget: int, image: bool, alpha: float | None, target_name: str) -> str:
    things = ("pixel" if budget == 1 else "pixels") if image else ("feature" if budget == 1 else "features")
    also = f" with p({target_name}) ≥ {alpha:g}" if alpha is not None else ""
    return f"Cheapest change of at most {budget} {things}{also}"


def from_recourse(answer, model, x0, what, dataset, target_name: str) -> Shown:
    """The recourse answer on screen (``answer.shown``: the cheapest, or the alternative picked), its
    distance recomputed here in the answer's own metric and weights."""
    result = answer.shown
    arguments = answer.arguments
    metric = answer.key.metric
    cost = arguments.get("cost")
    cost = np.ones(x0.size) if cost is None else np.asarray(cost, dtype=float)
    x = result.x
    predicted = int(model.predict(x))
    target = int(result.target)
    if result.success:
        distance = (constraints.l1_distance(x, x0, cost) if metric == "l1" else constraints.distance(x, x0, cost))
    else:
        distance = float("nan")
    lower, upper = _bounds(arguments, x0.size)
    moved = np.flatnonzero(x != x0)
    at_lower = moved[np.isfinite(lower[moved]) & (x[moved] <= lower[moved])]
    at_upper = moved[np.isfinite(upper[moved]) & (x[moved] >= upper[moved])]
    level_changes = []
    for group in (dataset.encoding.categorical if dataset.encoding is not None else ()):
        columns = list(group.columns)
        before, after = int(np.argmax(x0[columns])), int(np.argmax(x[columns]))
        if before != after:
            level_changes.append((group.name, group.levels[before], group.levels[after]))
    meets = bool(result.success) and predicted == target  # success includes recourse's own p >= alpha check
    image = dataset.kind == "image"
    return Shown(source="recourse", title=recourse_title(answer.key.budget, image, answer.alpha, target_name), x=x,
                 proba=result.proba, predicted=predicted, target=target, lam=None, lam_text="—",
                 lam_note="An exact mixed-integer answer: no λ of the slider's problem gives it.", distance=distance,
                 unit=constraints.recourse_unit(what, metric), success=bool(result.success), meets=meets,
                 message=result.message, n_iter=int(result.n_solves), time_s=float(result.time_s), grad_norm=None,
                 at_lower=at_lower, at_upper=at_upper, level_changes=tuple(level_changes), arguments=arguments,
                 alpha=answer.alpha, metric=metric, cost=cost, optimal=bool(result.optimal), bound=float(result.bound),
                 changed=tuple(result.changed), budget=int(answer.key.budget))


def _bounds(arguments: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    bounds = arguments.get("bounds")
    if bounds is None:
        return np.full(n, -np.inf), np.full(n, np.inf)
    return tuple(np.array(np.broadcast_to(b, n), dtype=float) for b in bounds)


def certificate(shown: Shown) -> str:
    """'certified optimal' or, honestly, how far from proved the answer is."""
    if shown.optimal:
        return "certified optimal"
    if not np.isfinite(shown.bound):
        return "not certified (no lower bound proved)"
    gap = (shown.distance - shown.bound) / shown.distance if shown.distance > 0 else 0.0
    return (f"not certified: the time limit came first; the best answer found has distance "
            f"{format_distance(shown.distance)}, the optimum is at least {format_distance(shown.bound)} "
            f"(gap {gap:.1%})")


def distance_label(unit: str) -> str:
    return {"pixels": "distance ‖x − x₀‖", "std": "distance (std)", "raw units": "distance (raw units)"}.get(
        unit, f"distance ({unit})")


def format_proba(p: float) -> str:
    """Every probability on the page, one format (the metric, the sentence, the bars)."""
    return f"{p:.4f}"


def format_distance(d: float) -> str:
    return f"{d:.4g}"
