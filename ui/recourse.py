"""The exact recourse question of the Explore page: "the cheapest change of at most s features, in whole
units where units are whole, between real categories, within the ranges" (:func:`solver.recourse`), its
sparsity/cost front, its alternatives, and the answer kept with its key.

Solves run only when the question is asked (a button, a point of the front), never on a slider move.
They are cached by content: the model's fingerprint, a hash of x0, the target and a hash of every
argument. About built-in data and its models the cache is everyone's (an entry is only ever found by
someone who holds the same model and row); about an upload or a model file it is the session's own.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from solver import RecourseResult, recourse, recourse_front
from ui import constraints, links, memory, solve, state, view

FRONT_MAX = 5  # the front's largest budget
N_ALTERNATIVES = 3  # the answer and two alternatives
TIME_LIMIT_S = 2.0  # per question (the front has its own)


def _digest(array) -> str:
    array = np.ascontiguousarray(array, dtype=np.float64)
    return hashlib.sha256(np.asarray(array.shape, dtype=np.int64).tobytes() + array.tobytes()).hexdigest()


# Results are small (a few vectors of D floats each); the byte bound matters for wide text tables.
SHARED_ANSWERS = memory.SharedCache("recourse answers", max_entries=256, max_bytes=32 * 2**20)


def _answers() -> memory.SharedCache:
    """Answers about built-in data and its models are shared by content; those about an upload or a
    model file stay in the session (its state goes when the session does)."""
    if state.shared_by_content():
        return SHARED_ANSWERS
    own = st.session_state.get(state.SESSION_ANSWERS)
    if own is None:
        own = st.session_state[state.SESSION_ANSWERS] = memory.SharedCache(
            "this session's recourse answers", max_entries=32, max_bytes=8 * 2**20)
    return own


def _cached_recourse(keys: tuple, budget: int, alpha: float | None, model, x0, arguments) -> RecourseResult:
    def make():
        with st.spinner("Solving exactly…"):
            return recourse(model, x0, keys[2], max_changes=budget, alpha=alpha, n_alternatives=N_ALTERNATIVES,
                            time_limit=TIME_LIMIT_S, **arguments)

    return _answers().get(("answer", *keys, budget, alpha), make)


def _cached_front(keys: tuple, s_max: int, alpha: float | None, model, x0, arguments) -> tuple:
    def make():
        with st.spinner("Solving the front exactly…"):
            return tuple(recourse_front(model, x0, keys[2], max_changes=s_max, alpha=alpha,
                                        time_limit=TIME_LIMIT_S, **arguments))

    return _answers().get(("front", *keys, s_max, alpha), make)


# -- the question --------------------------------------------------------------------------------------
def budget_key(dataset) -> str:
    return state.RECOURSE_PIXELS if dataset.kind == "image" else state.RECOURSE_BUDGET


def settings(q: solve.Question) -> tuple[int, str, float | None]:
    """(budget, metric, alpha or None) of the recourse question as the controls say."""
    low, high = links.budget_range(q.dataset)
    budget = int(min(max(int(st.session_state[budget_key(q.dataset)]), low), high))
    metric = "l1" if q.dataset.kind == "image" else st.session_state[state.RECOURSE_METRIC]
    alpha = float(st.session_state[state.ALPHA]) if st.session_state[state.RECOURSE_ALPHA] else None
    return budget, metric, alpha


def answer_key(q: solve.Question, what: constraints.WhatMayChange, budget: int, metric: str,
               alpha: float | None) -> state.RecourseKey:
    return state.RecourseKey(problem=solve.problem_key(q, what), target=q.target, budget=budget, metric=metric,
                             alpha=alpha)


def _failure(q: solve.Question, metric: str, message: str) -> RecourseResult:
    return RecourseResult(x=np.array(q.x0, dtype=float), success=False, message=message, distance=float("inf"),
                          proba=q.model.predict_proba(q.x0), changed=(), optimal=False, bound=float("nan"),
                          target=q.target, metric=metric)


def solve_recourse(q: solve.Question, what: constraints.WhatMayChange, budget: int, metric: str,
                   alpha: float | None) -> state.RecourseAnswer:
    """The answer with at most ``budget`` changes (and its alternatives), and for tables the front
    s = 1 .. FRONT_MAX (not after the time limit stopped the answer: the front would stop too); cached by
    content."""
    arguments, notes = constraints.recourse_arguments(q.dataset, what, metric, q.x0)
    keys = (q.model.fingerprint, _digest(q.x0), int(q.target), constraints.signature(arguments))
    try:
        result = _cached_recourse(keys, budget, alpha, q.model, q.x0, arguments)
        front = ()
        proved = result.success or math.isinf(result.bound)  # not stopped by the time limit
        if q.dataset.kind != "image" and proved:
            s_max = min(FRONT_MAX, links.budget_range(q.dataset)[1])
            front = _cached_front(keys, s_max, alpha, q.model, q.x0, arguments)
    except ValueError as exc:  # what the table asks cannot be posed (the message names the argument)
        result, front = _failure(q, metric, str(exc)), ()
    return state.RecourseAnswer(key=answer_key(q, what, budget, metric, alpha), result=result, front=tuple(front),
                                arguments=arguments, notes=notes)


def ask() -> None:
    """Answer the recourse question as the controls ask it; the page shows it until the slider moves."""
    q = solve.question()
    what = solve.what_may_change()
    st.session_state[state.ANSWER] = solve_recourse(q, what, *settings(q))


def ask_pending() -> None:
    """The recourse question a shared link asked, answered once the session is set up."""
    if st.session_state.get(state.PENDING_RECOURSE):
        st.session_state[state.PENDING_RECOURSE] = False
        ask()


def current_answer(q: solve.Question, what: constraints.WhatMayChange) -> state.RecourseAnswer | None:
    """The kept recourse answer if it answers the question as it stands (model, data, instance, target,
    what may change for this applicant, budget, metric, alpha); a stale one is dropped."""
    stored = st.session_state.get(state.ANSWER)
    if not isinstance(stored, state.RecourseAnswer):
        return None
    if stored.key != answer_key(q, what, *settings(q)):
        st.session_state[state.ANSWER] = None
        return None
    return stored


def pick_budget(budget: int) -> None:
    """Show the front's answer for ``budget``: the question asked again with that budget (cached), the
    control set to it. The page reruns whole so the control shows it (:func:`rerun_if_picked`)."""
    q = solve.question()
    st.session_state[budget_key(q.dataset)] = int(budget)
    ask()
    st.session_state[state.RECOURSE_PICKED] = True


def rerun_if_picked() -> None:
    """A point picked inside the slider's fragment: rerun the whole page, so the controls above agree."""
    if st.session_state.get(state.RECOURSE_PICKED):
        st.session_state[state.RECOURSE_PICKED] = False
        st.rerun()


def pick_alternative(choice: int) -> None:
    stored = st.session_state.get(state.ANSWER)
    if isinstance(stored, state.RecourseAnswer) and 0 <= choice <= len(stored.result.alternatives):
        st.session_state[state.ANSWER] = replace(stored, choice=int(choice))


# -- what the answer panel shows (pure) -------------------------------------------------------------------
def item_name(dataset, item) -> str:
    """A changed feature's name: a numeric column, a one-hot group, or a pixel (row, column)."""
    if isinstance(item, tuple):
        group = next(g for g in dataset.encoding.categorical if tuple(g.columns) == tuple(item))
        return group.name
    if dataset.kind == "image":
        row, column = divmod(int(item), dataset.image_shape[1])
        return f"pixel ({row}, {column})"
    if dataset.encoding is not None:
        return next(name for name, index in dataset.encoding.numeric if index == item)
    return dataset.feature_names[int(item)]


def changed_names(dataset, changed, limit: int = 6) -> str:
    names = [item_name(dataset, item) for item in changed]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "") or "nothing"


def front_figure(front, dataset, shown_budget: int | None, distance_label: str, target_name: str) -> go.Figure:
    """The exact sparsity/cost trade-off: the optimal distance for each budget s (None points, where no
    answer changes only s features, are left out), the answer on screen ringed. Points carry their
    budget as ``customdata``."""
    budgets = [s for s, r in enumerate(front, start=1) if r is not None]
    answers = [front[s - 1] for s in budgets]
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=budgets, y=[r.distance for r in answers], mode="lines+markers", name="optimal cost",
        customdata=budgets, line=dict(shape="hv", color="#7f7f7f"),
        marker=dict(size=12, color=["#1f77b4" if r.optimal else "white" for r in answers],
                    line=dict(color="#1f77b4", width=2)),
        text=[f"{r.n_changes} changed: {changed_names(dataset, r.changed, 4)}<br>"
              f"{'certified optimal' if r.optimal else 'not certified'}" for r in answers],
        hovertemplate="at most %{x} · distance %{y:.4g}<br>%{text}<extra></extra>"))
    if shown_budget in budgets:
        r = front[shown_budget - 1]
        figure.add_trace(go.Scatter(x=[shown_budget], y=[r.distance], mode="markers", name="on screen",
                                    customdata=[shown_budget], hoverinfo="skip",
                                    marker=dict(size=22, color="rgba(0,0,0,0)", line=dict(color="#d62728", width=3))))
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), showlegend=False, clickmode="event+select",
                         title=dict(text=f"Cheapest change to {target_name} by number of features changed",
                                    font=dict(size=13)))
    figure.update_xaxes(title="features changed (at most)", dtick=1, range=[0.5, len(front) + 0.5])
    figure.update_yaxes(title=distance_label, rangemode="tozero")
    return figure


def alternatives_table(dataset, answer: state.RecourseAnswer, target_name: str) -> pd.DataFrame:
    """The answer and its alternatives (each the cheapest keeping one change of every earlier answer at
    x0): what each changes, its distance and p(target); the row on screen marked."""
    rows = []
    for i, r in enumerate((answer.result, *answer.result.alternatives)):
        rows.append({"shown": "●" if i == answer.choice else "", "answer": "cheapest" if i == 0 else f"alternative {i}",
                     "changes": changed_names(dataset, r.changed), "distance": view.format_distance(r.distance),
                     f"p({target_name})": view.format_proba(float(r.proba[r.target])),
                     "certified": "optimal" if r.optimal else "no"})
    return pd.DataFrame(rows)
