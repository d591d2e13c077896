"""Solves for the current question, warm-started within the session."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import streamlit as st

from solver import InversionPath, InversionResult, invert, invert_path
from ui import state

PATH_LAMS = np.logspace(state.LOG_LAM_RANGE[0], state.LOG_LAM_RANGE[1], 121)


def question():
    """``(dataset, model, instance index, target, x0)`` of the current session."""
    dataset = st.session_state[state.DATASET]
    index = int(st.session_state[state.INSTANCE])
    return dataset, st.session_state[state.MODEL], index, int(st.session_state[state.TARGET]), dataset.X[index]


def _problem_key(model, dataset, index):
    return model.fingerprint, dataset.content_hash, index


def solve_current(lam: float) -> InversionResult:
    """Solve at ``lam``, warm-started from this session's previous solve of the same model and instance."""
    dataset, model, index, target, x0 = question()
    key = _problem_key(model, dataset, index)
    warm = st.session_state.get(state.WARM)
    previous = warm[1] if warm is not None and warm[0] == key else None
    result = invert(model, x0, target, lam, x_init=previous)
    st.session_state[state.WARM] = (key, result)
    return result


def current_path() -> InversionPath:
    """The warm-started lambda path of the current question (kept for this session)."""
    dataset, model, index, target, x0 = question()
    key = (*_problem_key(model, dataset, index), target)
    cached = st.session_state.get("_path")
    if cached is None or cached[0] != key:
        cached = (key, invert_path(model, x0, target, PATH_LAMS))
        st.session_state["_path"] = cached
    return cached[1]


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
