"""Solves for the current question, warm-started within the session, and the answers to the two
questions, each kept with the key of everything it depends on."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from solver import InversionPath, InversionResult, closest_with_probability, invert, invert_path, minimal_flip
from ui import constraints, state
from ui.constraints import WhatMayChange

PATH_LAMS = np.logspace(state.LOG_LAM_RANGE[0], state.LOG_LAM_RANGE[1], 121)


@dataclass(frozen=True, eq=False)
class Question:
    """The question of the current session: which row, which model, which target class."""

    dataset: object
    model: object
    index: int
    target: int
    x0: np.ndarray
    names: tuple[str, ...]  # class names of the model

    @property
    def target_name(self) -> str:
        return self.names[self.target]


def question() -> Question:
    dataset, model = st.session_state[state.DATASET], st.session_state[state.MODEL]
    index = int(st.session_state[state.INSTANCE])
    return Question(dataset=dataset, model=model, index=index, target=int(st.session_state[state.TARGET]),
                    x0=dataset.X[index], names=tuple(str(c) for c in model.classes))


# -- what may change ------------------------------------------------------------------------------
def _key(dataset) -> tuple:
    flag = state.PIXEL_RANGE if dataset.kind == "image" else state.STANDARDISED
    return dataset.content_hash, bool(st.session_state[flag])


def _settings() -> WhatMayChange:
    """The kept what-may-change settings, rebuilt from the default table (plus a shared link's edits)
    when the data or the flag changed."""
    dataset = st.session_state[state.DATASET]
    stored = st.session_state.get(state.CONSTRAINTS)
    key = _key(dataset)
    if stored is not None and stored.key == key:
        return stored
    if dataset.kind == "image":
        what = constraints.image_constraints(dataset, key[1])
    else:
        table = constraints.apply_edits(constraints.default_table(dataset, key[1]), st.session_state[state.LINK_EDITS])
        what = constraints.what_may_change(dataset, table, key[1])
    st.session_state[state.CONSTRAINTS] = what
    return what


def settings() -> WhatMayChange:
    """This session's what-may-change settings for every row: "may only rise/fall" not yet applied to
    an instance (the Audit page applies them row by row)."""
    return _settings()


def what_may_change() -> WhatMayChange:
    """This session's what-may-change settings and the solver arguments made from them, for the
    current instance ("may only rise/fall" are bounds at its values)."""
    dataset = st.session_state[state.DATASET]
    return constraints.for_instance(_settings(), dataset.X[int(st.session_state[state.INSTANCE])])


def set_constraint_table(table: pd.DataFrame) -> WhatMayChange:
    """Keep the table as edited in the editor; the arguments are remade only when it changed."""
    what = _settings()
    if what.table is not None and not table.equals(what.table):
        dataset = st.session_state[state.DATASET]
        what = constraints.what_may_change(dataset, table.reset_index(drop=True), what.key[1])
        st.session_state[state.CONSTRAINTS] = what
    return what_may_change()


def problem_key(q: Question, what: WhatMayChange) -> state.ProblemKey:
    return state.ProblemKey(model=q.model.fingerprint, data=q.dataset.content_hash, instance=q.index,
                            constraints=what.signature)


# -- the slider ------------------------------------------------------------------------------------
def solve_current(lam: float, what: WhatMayChange) -> InversionResult:
    """Solve at ``lam``, warm-started from this session's previous solve of the same model,
    instance and constraints."""
    q = question()
    key = problem_key(q, what)
    warm = st.session_state.get(state.WARM)
    previous = warm.result if warm is not None and warm.key == key else None
    result = invert(q.model, q.x0, q.target, lam, x_init=previous, **what.arguments)
    st.session_state[state.WARM] = state.WarmSolve(key=key, result=result)
    return result


def current_path(what: WhatMayChange) -> InversionPath:
    """The warm-started lambda path of the current question (kept for this session)."""
    q = question()
    key = problem_key(q, what)
    cached = st.session_state.get(state.PATH)
    if cached is None or cached.key != key or cached.target != q.target:
        cached = state.CachedPath(key=key, target=q.target,
                                  path=invert_path(q.model, q.x0, q.target, PATH_LAMS, **what.arguments))
        st.session_state[state.PATH] = cached
    return cached.path


def path_distance(path: InversionPath, x0: np.ndarray, what: WhatMayChange) -> np.ndarray:
    """The problem's own distance of every point of the path."""
    delta = path.X - x0
    return np.sqrt((delta * delta) @ what.cost)


# -- the two questions -----------------------------------------------------------------------------
def _flip_lam(q: Question, what: WhatMayChange, result) -> tuple[float | None, str]:
    """The lambda whose penalised minimiser is the minimal flip itself, if there is one."""
    if not result.success:
        return None, ""
    if result.distance == 0:
        return None, "x₀ already qualifies: nothing changes, so no λ is needed."
    if q.model.n_classes > 2:
        return None, (f"The smallest flip is not on the λ path: with K = {q.model.n_classes} classes every point of "
                      "the path is pulled by all classes, the flip only by the boundary it crosses. No λ gives it; "
                      "the slider stays where it was.")
    if result.level_changes:
        return None, "The smallest flip changes a level, which the λ path never does, so no λ gives it."
    alpha = float(result.proba[q.target])
    if not 0.0 < alpha < 1.0:
        return None, "The flip's probability is at the end of the floating-point range; no λ is computed."
    on_path = closest_with_probability(q.model, q.x0, q.target, alpha, **what.arguments)
    scale = 1e-6 * (1.0 + result.distance)
    if on_path.success and on_path.lam is not None and np.isfinite(on_path.lam) and \
            constraints.distance(on_path.x, result.x, what.cost) <= scale:
        return float(on_path.lam), ""
    return None, "With these ranges the smallest flip is not on the λ path, so no λ gives it."


def _alpha_lam(result) -> tuple[float | None, str]:
    if not result.success:
        return None, ""
    if result.lam is None or not np.isfinite(result.lam):
        return None, "x₀ already has that probability: nothing changes, so no λ is needed."
    if result.level_changes:
        return float(result.lam), ("This λ is the one for the instance with the level changed; the slider's path "
                                   "keeps every level as it is.")
    return float(result.lam), ""


def answer_question(kind: str, alpha: float | None = None) -> None:
    """Answer 'smallest flip' or 'closest with p >= alpha', keep it with its key, and move the slider
    to the nearest step of its lambda (the answer itself is what the page shows)."""
    q = question()
    what = what_may_change()
    arguments = what.question_arguments
    if kind == "flip":
        alpha = None
        result = minimal_flip(q.model, q.x0, q.target, **arguments)
        lam, note = _flip_lam(q, what, result)
    else:
        alpha = float(alpha)
        result = closest_with_probability(q.model, q.x0, q.target, alpha, **arguments)
        lam, note = _alpha_lam(result)
    if lam is not None:
        low, high = state.LOG_LAM_RANGE
        step = state.LOG_LAM_STEP
        st.session_state[state.LOG_LAM] = float(np.clip(round(math.log10(lam) / step) * step, low, high))
    key = state.AnswerKey(problem=problem_key(q, what), target=q.target, question=kind, alpha=alpha)
    st.session_state[state.ANSWER] = state.Answer(key=key, result=result, lam=lam, lam_note=note, arguments=arguments)


def ask_pending_question() -> None:
    """The question a shared link asked, answered once the session is set up."""
    pending = st.session_state.get(state.PENDING_QUESTION)
    if pending is not None:
        st.session_state[state.PENDING_QUESTION] = None
        answer_question(pending.question, pending.alpha)


def current_answer(what: WhatMayChange) -> state.Answer | None:
    """The kept answer if it answers the current question (model, data, instance, target, what may
    change, the question and its alpha); a stale answer is dropped."""
    stored = st.session_state.get(state.ANSWER)
    if stored is None:
        return None
    q = question()
    alpha = float(st.session_state[state.ALPHA]) if stored.question == "alpha" else None
    expected = state.AnswerKey(problem=problem_key(q, what), target=q.target, question=stored.question, alpha=alpha)
    if stored.key != expected:
        st.session_state[state.ANSWER] = None
        return None
    return stored


def dismiss_answer(*_) -> None:
    st.session_state[state.ANSWER] = None


# -- downloads -------------------------------------------------------------------------------------
def counterfactual_csv(feature_names, x0, x) -> bytes:
    """Every encoded feature (one row per one-hot column): for machines; the page's table has its own CSV."""
    frame = pd.DataFrame({"feature": feature_names, "source": x0, "counterfactual": x, "change": x - x0})
    return frame.to_csv(index=False).encode()


def counterfactual_png(x, shape, scale: int = 10) -> bytes:
    from PIL import Image

    pixels = np.clip(np.asarray(x).reshape(shape), 0.0, 1.0)
    image = Image.fromarray((255 * (1.0 - pixels)).astype(np.uint8))  # dark strokes on white, as displayed
    image = image.resize((shape[1] * scale, shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
