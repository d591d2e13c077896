"""The one answer a page shows: the slider's solve or a question's answer, in the same terms
(pure functions, testable without Streamlit)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ui import constraints

# Relative round-off of evaluating a softmax probability: p >= alpha is judged up to it, since the
# solver certifies the logit margin and softmax may then round p one ulp below alpha.
PROBABILITY_ROUND_OFF = 4 * np.finfo(float).eps


@dataclass(frozen=True, eq=False)
class Shown:
    """Everything the page says about the answer on screen.

    Attributes
    ----------
    source : str
        "slider", "flip" or "alpha".
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
        The answer does what was asked: the target is predicted (flip), ``p >= alpha`` up to the
        round-off of evaluating p (alpha);
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
        The alpha asked ("alpha" only).
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

    @property
    def is_answer(self) -> bool:
        return self.source != "slider"


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
        meets = result.success and float(result.proba[target]) >= answer.alpha * (1 - PROBABILITY_ROUND_OFF)
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


def distance_label(unit: str) -> str:
    return {"pixels": "distance ‖x − x₀‖", "std": "distance (std)", "raw units": "distance (raw units)"}.get(
        unit, f"distance ({unit})")


def format_proba(p: float) -> str:
    """Every probability on the page, one format (the metric, the sentence, the bars)."""
    return f"{p:.4f}"


def format_distance(d: float) -> str:
    return f"{d:.4g}"
