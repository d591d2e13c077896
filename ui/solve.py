"""Solves for the current question, warm-started within the session."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import streamlit as st

from solver import InversionPath, InversionResult, invert, invert_path
from ui import constraints, state

PATH_LAMS = np.logspace(state.LOG_LAM_RANGE[0], state.LOG_LAM_RANGE[1], 121)
FLIP_MARGIN = 1e-3  # logits: strictly inside the target's region, so the prediction really flips


def question():
    """``(dataset, model, instance index, target, x0)`` of the current session."""
    dataset = st.session_state[state.DATASET]
    index = int(st.session_state[state.INSTANCE])
    return dataset, st.session_state[state.MODEL], index, int(st.session_state[state.TARGET]), dataset.X[index]


def constraint_table() -> pd.DataFrame:
    """This session's editable table of what may change (tabular data), made on first use."""
    dataset = st.session_state[state.DATASET]
    stored = st.session_state.get(state.CONSTRAINTS)
    if stored is None or stored[0] != (dataset.content_hash, st.session_state[state.STANDARDISED]):
        table = constraints.default_table(dataset, st.session_state[state.STANDARDISED])
        stored = ((dataset.content_hash, st.session_state[state.STANDARDISED]), table)
        st.session_state[state.CONSTRAINTS] = stored
    return stored[1]


def set_constraint_table(table: pd.DataFrame) -> None:
    key = st.session_state[state.CONSTRAINTS][0]
    st.session_state[state.CONSTRAINTS] = (key, table)


def constraint_arguments(for_questions: bool = False) -> dict:
    """``immutable``/``cost``/``bounds`` (and categorical groups for the questions) of this session."""
    dataset = st.session_state[state.DATASET]
    if dataset.kind == "image":
        return constraints.image_arguments(st.session_state[state.PIXEL_RANGE])
    table = constraint_table()
    if for_questions:
        return constraints.question_arguments(dataset, table)
    return constraints.solver_arguments(dataset, table)


def _signature(arguments: dict) -> str:
    """A content hash of the constraint arguments (arrays, scalars, None)."""
    digest = hashlib.sha256()
    for name in sorted(arguments):
        digest.update(name.encode())
        value = arguments[name]
        for part in value if isinstance(value, tuple) else (value,):
            digest.update(b"none" if part is None else np.asarray(part, dtype=float).tobytes())
    return digest.hexdigest()


def _problem_key(model, dataset, index, arguments):
    return model.fingerprint, dataset.content_hash, index, _signature(arguments)


def solve_current(lam: float, arguments: dict) -> InversionResult:
    """Solve at ``lam`` under ``arguments`` (from :func:`constraint_arguments`), warm-started from this
    session's previous solve of the same model, instance and constraints."""
    dataset, model, index, target, x0 = question()
    key = _problem_key(model, dataset, index, arguments)
    warm = st.session_state.get(state.WARM)
    previous = warm[1] if warm is not None and warm[0] == key else None
    result = invert(model, x0, target, lam, x_init=previous, **arguments)
    st.session_state[state.WARM] = (key, result)
    return result


def current_path(arguments: dict) -> InversionPath:
    """The warm-started lambda path of the current question (kept for this session)."""
    dataset, model, index, target, x0 = question()
    key = (*_problem_key(model, dataset, index, arguments), target)
    cached = st.session_state.get("_path")
    if cached is None or cached[0] != key:
        cached = (key, invert_path(model, x0, target, PATH_LAMS, **arguments))
        st.session_state["_path"] = cached
    return cached[1]


def answer_question(kind: str, alpha: float | None = None) -> None:
    """Answer 'smallest flip' or 'closest with p >= alpha', keep it, and move the slider to its lam."""
    from solver import closest_with_probability, minimal_flip

    dataset, model, index, target, x0 = question()
    arguments = constraint_arguments(for_questions=True)
    if kind == "flip":
        answer = minimal_flip(model, x0, target, margin=FLIP_MARGIN, **arguments)
        lam = None
        if answer.success and answer.distance > 0:
            alpha_flip = float(np.clip(answer.proba[target], 1e-6, 1 - 1e-9))
            on_path = closest_with_probability(model, x0, target, alpha_flip, **constraint_arguments())
            lam = on_path.lam if on_path.success else None
    else:
        answer = closest_with_probability(model, x0, target, float(alpha), **arguments)
        lam = answer.lam
    if lam is not None and np.isfinite(lam) and lam > 0:
        low, high = state.LOG_LAM_RANGE
        st.session_state[state.LOG_LAM] = float(np.clip(round(np.log10(lam) / state.LOG_LAM_STEP) * state.LOG_LAM_STEP,
                                                        low, high))
    st.session_state[state.ANSWER] = ((model.fingerprint, dataset.content_hash, index, target), kind, alpha, answer, lam)


def current_answer():
    """The kept answer if it belongs to the current question, else None."""
    dataset, model, index, target, _ = question()
    stored = st.session_state.get(state.ANSWER)
    if stored is None or stored[0] != (model.fingerprint, dataset.content_hash, index, target):
        return None
    return stored[1:]



def counterfactual_csv(feature_names, x0, x) -> bytes:
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
