"""The Audit page's computations: one question over the whole dataset with progress, every answer checked,
and the recourse cost summarised overall and by group (numpy, pandas and plotly; no Streamlit, so
everything here is testable without the app).

An audit asks every row the same question with the same what-may-change settings as Explore: locks,
costs and ranges for every row alike, and "may only rise/fall" as bounds at each row's own value (rows
with the same bounds are solved together). The batched solver keeps every categorical level as it is.
"""

from __future__ import annotations

import io
import math
import re
import time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from threadpoolctl import threadpool_limits

from datasets import Dataset
from solver import BatchResult, closest_with_probability_batch, invert_batch, minimal_flip_batch
from ui import constraints
from ui.constraints import WhatMayChange

QUESTIONS = {"flip": "the smallest change to the target class",
             "probability": "the smallest change to p(target) >= alpha",
             "lam": "the penalised answer for one trade-off lam"}
RUNNER_UP = -1  # the target "each row's runner-up class"
AGE_EDGES = (0, 25, 35, 50, 65, np.inf)
PROTECTED = ("sex|gender", "age", "foreign", "race|ethnic")  # columns offered first for a split, in this order
TRUE_CLASS, PREDICTED_CLASS = "true class", "predicted class"  # groups every dataset has
ALL_ROWS, NEED_ROWS = "all", "need"  # the rows summarised: every row, or those not predicted as the target
RECOURSE, NOT_REACHED, NO_ANSWER, REJECTED = "recourse", "not reached", "no answer", "rejected"
MAX_ANSWER_COLUMNS = 100  # wider tables (text features) keep the answers' values out of the per-row results
LEVELS_NOTE = ("The audit keeps every categorical level as it is (the batched solver does not change levels); the "
               "questions on Explore change the levels you allow, one applicant at a time.")


# -- running -----------------------------------------------------------------------------------------
def _take(result: BatchResult, order: np.ndarray) -> BatchResult:
    """The rows ``order`` of ``result``."""
    fields = {name: None if getattr(result, name) is None else getattr(result, name)[order]
              for name in ("X", "proba", "distance", "success", "n_iter", "grad_norm", "message", "target", "lam",
                           "margin")}
    return replace(result, **fields)


def _bound_groups(n: int, row_bounds) -> list[tuple[np.ndarray, dict]]:
    """Rows with the same ranges, each with its ``bounds`` argument (one group without per-row ranges)."""
    if row_bounds is None:
        return [(np.arange(n), {})]
    lower, upper = (np.asarray(b, dtype=np.float64) for b in row_bounds)
    varying = ~((lower == lower[:1]).all(axis=0) & (upper == upper[:1]).all(axis=0))
    if n == 0 or not varying.any():
        return [(np.arange(n), {"bounds": (lower[0], upper[0])} if n else {})]
    _, inverse = np.unique(np.concatenate([lower[:, varying], upper[:, varying]], axis=1), axis=0,
                           return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    cuts = np.flatnonzero(np.diff(inverse[order])) + 1
    return [(rows, {"bounds": (lower[rows[0]], upper[rows[0]])}) for rows in np.split(order, cuts)]


def run_audit(model, X0, targets, question: str, *, margin=None, alpha=None, lam=None, progress=None,
              step_rows: int = 250, row_bounds=None, **arguments) -> BatchResult:
    """Answer ``question`` for every row of ``X0``, ``step_rows`` rows at a time, calling
    ``progress(done, total)`` about every ``step_rows`` rows (a progress bar); row ``i`` of the result is
    the batch function's answer for ``X0[i]``.

    ``arguments`` are ``immutable``, ``cost``, ``bounds`` (e.g. ``WhatMayChange.arguments``).
    ``row_bounds`` (lower, upper), each (n, D), replaces ``bounds`` with ranges of each row's own (as
    "may only rise/fall" makes them): rows with the same ranges are solved together.
    """
    X0 = np.asarray(X0, dtype=np.float64)
    n = X0.shape[0]
    targets = np.broadcast_to(np.asarray(targets), (n,))
    if question == "flip":
        def solve(rows, extra):
            return minimal_flip_batch(model, X0[rows], targets[rows], **({} if margin is None else {"margin": margin}),
                                      **arguments, **extra)
    elif question == "probability":
        def solve(rows, extra):
            return closest_with_probability_batch(model, X0[rows], targets[rows], alpha, **arguments, **extra)
    elif question == "lam":
        def solve(rows, extra):
            return invert_batch(model, X0[rows], targets[rows], lam, **arguments, **extra)
    else:
        raise ValueError(f"question must be one of {', '.join(QUESTIONS)}; got {question!r}")
    if row_bounds is not None:
        arguments.pop("bounds", None)
    groups = _bound_groups(n, row_bounds)
    parts, order, done, reported = [], [], 0, 0
    # The batched kernels are many small BLAS calls: on a shared 2-core machine a second BLAS thread made
    # them 2-9x slower (measured), so they run on one.
    with threadpool_limits(limits=1, user_api="blas"):
        for rows, extra in groups:
            for start in range(0, max(rows.size, 1), step_rows):
                chunk = rows[start:start + step_rows]
                parts.append(solve(chunk, extra))
                order.append(chunk)
                done += chunk.size
                if progress is not None and (done - reported >= step_rows or done == n):
                    progress(done, n)
                    reported = done
    result = BatchResult.concat(parts)
    if len(groups) == 1:
        return result
    return _take(result, np.argsort(np.concatenate(order), kind="stable"))


def row_targets(model, X0: np.ndarray, target: int) -> np.ndarray:
    """Each row's target: ``target`` for every row, or (``RUNNER_UP``) each row's second most probable class."""
    if target == RUNNER_UP:
        return np.argsort(model.predict_proba(X0), axis=1)[:, -2]
    return np.full(X0.shape[0], int(target))


def check_answers(model, X0, result: BatchResult, question: str, *, alpha=None, immutable=None, lower=None,
                  upper=None) -> tuple[np.ndarray, np.ndarray]:
    """The page's own check of every answer the solver reports as a success, from the model's logits
    ``A x + b`` (not from the solver's code): finite; locked features bit for bit as in x0; within each
    row's ranges; flips predicted as the target with a strict lead; ``p(target) >= alpha`` for the
    probability question (the probabilities reported agree with the logits to 1e-9). Returns which rows
    pass (False where the solver failed) and, for successes that do not pass, why."""
    X, X0 = result.X, np.asarray(X0, dtype=np.float64)
    n = X.shape[0]
    ok = result.success.copy()
    why = np.full(n, "", dtype=object)

    def reject(mask, reason):
        bad = ok & mask
        why[bad] = reason
        ok[bad] = False

    reject(~np.isfinite(X).all(axis=1), "the answer is not finite")
    if immutable is not None and np.any(immutable):
        cols = np.flatnonzero(immutable)
        same = (np.ascontiguousarray(X[:, cols]).view(np.uint64) == np.ascontiguousarray(X0[:, cols]).view(np.uint64))
        reject(~same.all(axis=1), "a locked feature moved")
    if lower is not None:
        reject((X < lower).any(axis=1) | (X > upper).any(axis=1), "the answer leaves its ranges")
    logits = X @ model.coef.T + model.intercept
    t = result.target
    own = logits[np.arange(n), t]
    others = np.where(np.arange(logits.shape[1])[None, :] == t[:, None], -np.inf, logits).max(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    proba = np.exp(shifted)
    proba /= proba.sum(axis=1, keepdims=True)
    reject(np.abs(proba - result.proba).max(axis=1) > 1e-9, "its probabilities disagree with the model's logits")
    if question == "flip":
        reject(~(own > others), "the answer is not predicted as the target")
    elif question == "probability":
        reject(~(result.proba[np.arange(n), t] >= np.asarray(alpha)), "p(target) < alpha at the answer")
    return ok, why


# -- the kept result ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditKey:
    """Everything an audit depends on: a kept audit is shown only while the session's key equals its own."""

    data: str  # the dataset's content hash
    model: str  # the model's fingerprint
    question: str  # one of QUESTIONS
    parameter: float | None  # alpha (probability) or lam (lam)
    target: int  # a class index, or RUNNER_UP
    constraints: str  # what may change: its signature with the directions (audit_signature)


@dataclass(frozen=True, eq=False)
class Audit:
    """One audit of a whole dataset.

    Attributes
    ----------
    key : AuditKey
    rows : DataFrame
        One row per dataset row (see :func:`run`): status, distance, probabilities before and after,
        classes, features changed, lam, the solver's message; for tables of at most ``MAX_ANSWER_COLUMNS``
        columns the answer's numeric values.
    columns : tuple of str
        The original columns (a one-hot group once); pixels are not listed.
    moved : ndarray (n, len(columns)) of bool or None
        Which columns each answer with recourse changes (tables).
    size : ndarray (n, len(columns)) or None
        Each column's part of the distance, ``sqrt(sum_j cost_j (x_j - x0_j)^2)`` over its encoded
        features: the change in the distance's own units (tables).
    mean_change : dict or None
        Images: ``{ALL_ROWS: (D,), NEED_ROWS: (D,)}`` mean signed change per pixel over the answers with
        recourse among those rows.
    unit : str
        The distance's unit (``WhatMayChange.unit``).
    time_s : float
        Wall time of the whole audit (solves, checks, tables); ``solve_s`` of the solves alone.
    notes : tuple of str
        How the settings were applied (levels kept, directions per row, rows held).
    """

    key: AuditKey
    rows: pd.DataFrame
    columns: tuple[str, ...]
    moved: np.ndarray | None
    size: np.ndarray | None
    mean_change: dict | None
    unit: str
    time_s: float
    solve_s: float
    notes: tuple[str, ...] = ()


def audit_signature(what: WhatMayChange) -> str:
    """What may change as it bears on an audit: the settings' signature and the directions (the
    signature of the settings alone does not hold "may only rise/fall", which act per row)."""
    return constraints.signature(what.signature, what.rise, what.fall)


def audit_key(dataset: Dataset, model, what: WhatMayChange, question: str, target: int, *, alpha=None,
              lam=None) -> AuditKey:
    parameter = {"flip": None, "probability": alpha, "lam": lam}[question]
    return AuditKey(data=dataset.content_hash, model=model.fingerprint, question=question,
                    parameter=None if parameter is None else float(parameter), target=int(target),
                    constraints=audit_signature(what))


def changed_key_parts(old: AuditKey, new: AuditKey) -> list[str]:
    """What differs between two keys, in words."""
    names = {"data": "the data", "model": "the model", "question": "the question", "parameter": "α or λ",
             "target": "the target", "constraints": "what may change"}
    return [words for field, words in names.items() if getattr(old, field) != getattr(new, field)]


def default_step(n: int) -> int:
    """About 20 progress steps, in multiples of 50 rows."""
    return max(50, int(math.ceil(n / 20 / 50)) * 50)


def original_columns(dataset: Dataset) -> tuple[tuple[str, list[int]], ...]:
    """Each original column with its encoded features (a one-hot group once)."""
    encoding = dataset.encoding
    if encoding is None:
        return tuple((name, [j]) for j, name in enumerate(dataset.feature_names))
    return (tuple((name, [j]) for name, j in encoding.numeric)
            + tuple((group.name, list(group.columns)) for group in encoding.categorical))


def _moved(X, X0, rtol: float = 1e-9) -> np.ndarray:
    """Features that moved by more than ``rtol (1 + |x0|)``."""
    return np.abs(X - X0) > rtol * (1.0 + np.abs(X0))


def run(dataset: Dataset, model, what: WhatMayChange, question: str, target: int, *, alpha=None, lam=None,
        progress=None, step_rows: int | None = None) -> Audit:
    """Ask ``question`` of every row of ``dataset`` under ``what`` (Explore's settings; ``for_instance``
    is applied row by row), check every answer (:func:`check_answers`) and tabulate the result."""
    start = time.perf_counter()
    X0 = dataset.X
    n = X0.shape[0]
    targets = row_targets(model, X0, target)
    arguments = dict(what.arguments)  # locks, costs, ranges; one-hot groups locked: no level changes in batches
    notes = []
    directions = what.rise is not None and bool(what.rise.any() or what.fall.any())
    bounded = arguments.get("bounds") is not None or directions
    lower = upper = None
    if bounded:
        lower, upper, held = constraints.row_bounds(arguments.get("bounds"), X0, what.rise if directions else False,
                                                    what.fall if directions else False)
    if directions:
        names = [what.feature_names[j] for j in np.flatnonzero(what.rise | what.fall)]
        notes.append(f"{', '.join(names)}: each row's own value is its bound (may only rise: x ≥ x₀; may only fall: "
                     "x ≤ x₀), so rows with the same values are solved together.")
        if held.any():
            notes.append(f"{int(held.any(axis=1).sum()):,} rows have a range on the other side of their own value "
                         "for a feature that may only rise or fall; that feature is held at the row's value.")
    if what.table is not None and what.question_arguments.get("change_levels"):
        notes.append(LEVELS_NOTE)
    result = run_audit(model, X0, targets, question, alpha=alpha, lam=lam, progress=progress,
                       step_rows=step_rows or default_step(n), row_bounds=(lower, upper) if directions else None,
                       **arguments)
    valid, why = check_answers(model, X0, result, question, alpha=alpha, immutable=arguments.get("immutable"),
                               lower=lower, upper=upper)
    logits = result.X @ model.coef.T + model.intercept
    after = np.argmax(logits, axis=1)
    reached = valid & (after == targets)
    if question == "lam":
        status = np.where(reached, RECOURSE, np.where(valid, NOT_REACHED, NO_ANSWER))
    else:
        status = np.where(valid, RECOURSE, NO_ANSWER)
    status = np.where(result.success & ~valid, REJECTED, status)
    message = np.where(status == REJECTED, "the page's check rejected the answer: " + why.astype(str),
                       result.message.astype(str)).astype(object)
    if question == "lam":
        names = [str(c) for c in model.classes]
        message[status == NOT_REACHED] = [f"at λ = {lam:g} the answer is predicted as {names[k]}, not the target"
                                          for k in after[status == NOT_REACHED]]
    recourse = status == RECOURSE
    names = [str(c) for c in model.classes]
    before = model.predict_proba(X0)
    rows = pd.DataFrame({
        "row": np.arange(n),
        "true class": [str(dataset.class_names[k]) for k in dataset.y],
        "predicted": [names[k] for k in before.argmax(axis=1)],
        "target": [names[k] for k in targets],
        "target index": targets,
        "status": status,
        "distance": np.where(valid, result.distance, np.nan),
        "p(target) before": before[np.arange(n), targets],
        "p(target) after": np.where(valid, result.proba[np.arange(n), targets], np.nan),
        "predicted after": pd.array([names[k] if v else None for k, v in zip(after, valid)], dtype="string"),
        "λ": np.where(valid, result.lam, np.nan) if result.lam is not None else np.nan,
        "iterations": result.n_iter,
        "message": message,
    })
    rows["λ"] = rows["λ"].where(np.isfinite(rows["λ"]))
    moved_all = _moved(result.X, X0) & valid[:, None]
    moved = size = mean_change = None
    delta = result.X - X0
    if dataset.kind == "image":
        columns = ()
        changed = moved_all.sum(axis=1)
        need = before.argmax(axis=1) != targets
        mean_change = {ALL_ROWS: _mean_rows(delta, recourse), NEED_ROWS: _mean_rows(delta, recourse & need)}
    else:
        spans = original_columns(dataset)
        columns = tuple(name for name, _ in spans)
        per_column = np.stack([moved_all[:, idx].any(axis=1) for _, idx in spans], axis=1)
        changed = per_column.sum(axis=1)
        moved = per_column & recourse[:, None]
        weighted = delta * delta * what.cost
        size = np.sqrt(np.stack([weighted[:, idx].sum(axis=1) for _, idx in spans], axis=1))
    rows.insert(rows.columns.get_loc("λ"), "features changed",
                pd.array([int(c) if v else None for c, v in zip(changed, valid)], dtype="Int64"))
    if dataset.kind != "image" and len(columns) <= MAX_ANSWER_COLUMNS:  # the answer's values, for the downloads
        numeric = [(name, idx[0]) for name, idx in spans if len(idx) == 1]
        values = np.where(valid[:, None], result.X[:, [j for _, j in numeric]], np.nan)
        rows = pd.concat([rows, pd.DataFrame(values, columns=[f"answer: {name}" for name, _ in numeric])], axis=1)
    key = audit_key(dataset, model, what, question, target, alpha=alpha, lam=lam)
    return Audit(key=key, rows=rows, columns=columns, moved=moved, size=size, mean_change=mean_change,
                 unit=what.unit, time_s=time.perf_counter() - start, solve_s=result.time_s, notes=tuple(notes))


def _mean_rows(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return values[mask].mean(axis=0) if mask.any() else np.zeros(values.shape[1])


# -- summaries ---------------------------------------------------------------------------------------
def summarised(audit: Audit, which: str) -> np.ndarray:
    """The rows a summary covers: every row (``ALL_ROWS``), or those the model does not already assign to
    their target (``NEED_ROWS``, the applicants the decision went against)."""
    rows = audit.rows
    if which == ALL_ROWS:
        return np.ones(len(rows), dtype=bool)
    return (rows["predicted"] != rows["target"]).to_numpy()


def changed_columns(audit: Audit, mask: np.ndarray) -> pd.DataFrame:
    """Per original column (a one-hot group once): how many answers with recourse among ``mask`` change
    it, their share of those answers, and the median size of the change where it changes (in the
    distance's units); sorted by the count."""
    recourse = (audit.rows["status"] == RECOURSE).to_numpy() & mask
    answered = max(int(recourse.sum()), 1)
    moved = audit.moved[recourse]
    size = np.where(moved, audit.size[recourse], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column no answer changes: its median is NaN
        medians = np.nanmedian(size, axis=0) if size.shape[0] else np.full(len(audit.columns), np.nan)
    frame = pd.DataFrame({"column": list(audit.columns), "rows changed": moved.sum(axis=0).astype(int),
                          "share of answers": moved.sum(axis=0) / answered, "median change": medians})
    return frame.sort_values(["rows changed", "column"], ascending=[False, True], ignore_index=True)


def _band_label(low: float, high: float) -> str:
    """``[low, high)``; "< high" for a first band from 0 and "≥ low" for a last band without end."""
    if high == np.inf:
        return f"≥ {low:g}"
    if low == 0:
        return f"< {high:g}"
    return f"[{low:g}, {high:g})"


def group_options(dataset: Dataset) -> list[str]:
    """The columns an audit can be split by: the categorical and numeric columns, then the true and
    predicted class; columns named like a protected attribute first (``PROTECTED``)."""
    columns = [name for name, _ in original_columns(dataset)] if dataset.kind != "image" else []
    protected = [c for word in PROTECTED for c in columns if re.search(word, c, re.IGNORECASE)]
    protected = list(dict.fromkeys(protected))
    return protected + [c for c in columns if c not in protected] + [TRUE_CLASS, PREDICTED_CLASS]


def group_labels(dataset: Dataset, column: str, edges=None, model=None) -> pd.Series:
    """Each row's group for ``column``, an ordered categorical: its level for a categorical column; for a
    numeric one, bands by ``edges`` (default: age bands 0-25-35-50-65+ for a column named like "age",
    else quartiles); ``TRUE_CLASS`` and ``PREDICTED_CLASS`` (with ``model``) by class."""
    if column == TRUE_CLASS:
        names = [str(c) for c in dataset.class_names]
        return pd.Series(pd.Categorical([names[k] for k in dataset.y], categories=names, ordered=True), name=column)
    if column == PREDICTED_CLASS:
        if model is None:
            raise ValueError("grouping by the predicted class needs the model")
        names = [str(c) for c in model.classes]
        return pd.Series(pd.Categorical([names[k] for k in model.predict(dataset.X)], categories=names, ordered=True),
                         name=column)
    encoding = dataset.encoding
    for group in (encoding.categorical if encoding is not None else ()):
        if group.name == column:
            levels = [str(level) for level in group.levels]
            picked = np.argmax(dataset.X[:, list(group.columns)], axis=1)
            return pd.Series(pd.Categorical([levels[k] for k in picked], categories=levels, ordered=True), name=column)
    numeric = dict(encoding.numeric) if encoding is not None else {n: j for j, n in enumerate(dataset.feature_names)}
    if column not in numeric:
        raise ValueError(f"no column {column!r} in {dataset.name}")
    values = dataset.X[:, numeric[column]]
    if edges is None:
        if "age" in column.lower():
            edges = AGE_EDGES
        else:
            edges = np.unique(np.quantile(values, [0, 0.25, 0.5, 0.75]))
            edges = np.concatenate([edges, [np.inf]])
    edges = np.unique(np.asarray(edges, dtype=float))
    band = np.searchsorted(edges, values, side="right") - 1  # [edges[i], edges[i+1])
    labels = [_band_label(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
    outside = (band < 0) | (band >= len(labels))
    if outside.any():
        raise ValueError(f"{int(outside.sum())} values of {column!r} lie outside the bands {edges.tolist()}")
    return pd.Series(pd.Categorical([labels[i] for i in band], categories=labels, ordered=True), name=column)


def group_costs(recourse, distance, groups: pd.Series) -> pd.DataFrame:
    """Recourse cost by group: rows, the share with recourse, the rows without it, and among those with
    it the quartiles of the cost (``distance``; 0 for rows that already answer the question), with each
    group's median over the lowest group median (the disparity ratio; NaN when that median is 0)."""
    frame = pd.DataFrame({"group": groups.to_numpy() if isinstance(groups, pd.Series) else np.asarray(groups),
                          "recourse": np.asarray(recourse, dtype=bool), "distance": np.asarray(distance, dtype=float)})
    if isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype):
        frame["group"] = pd.Categorical(frame["group"], categories=groups.cat.categories, ordered=True)
    rows = []
    for name, part in frame.groupby("group", sort=True, observed=True):
        feasible = part.distance[part.recourse]
        rows.append(dict(group=name, rows=len(part), feasible=float(part.recourse.mean()),
                         no_recourse=int((~part.recourse).sum()),
                         q25=float(feasible.quantile(0.25)) if len(feasible) else np.nan,
                         median=float(feasible.median()) if len(feasible) else np.nan,
                         q75=float(feasible.quantile(0.75)) if len(feasible) else np.nan))
    table = pd.DataFrame(rows, columns=["group", "rows", "feasible", "no_recourse", "q25", "median", "q75"])
    lowest = table["median"].min()
    table["median / lowest median"] = table["median"] / lowest if lowest > 0 else np.nan
    return table


def ecdf(values) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of the finite ``values``: sorted values and ``i / n``."""
    values = np.asarray(values, dtype=float)
    values = np.sort(values[np.isfinite(values)])
    return values, np.arange(1, values.size + 1) / max(values.size, 1)


# -- figures -----------------------------------------------------------------------------------------
def ecdf_figure(distance, recourse, groups: pd.Series, axis_label: str) -> go.Figure:
    """The ECDF of the cost among rows with recourse, one line per group and a dashed one for all."""
    figure = go.Figure()
    distance, recourse = np.asarray(distance, dtype=float), np.asarray(recourse, dtype=bool)
    labels = groups.to_numpy()
    categories = groups.cat.categories if isinstance(groups.dtype, pd.CategoricalDtype) else pd.unique(labels)
    for name in categories:
        x, F = ecdf(distance[recourse & (labels == name)])
        if x.size:
            figure.add_trace(go.Scatter(x=x, y=F, mode="lines", line_shape="hv", name=f"{name} ({x.size:,})"))
    x, F = ecdf(distance[recourse])
    figure.add_trace(go.Scatter(x=x, y=F, mode="lines", line_shape="hv", name=f"all ({x.size:,})",
                                line=dict(color="black", dash="dash")))
    figure.update_layout(xaxis_title=axis_label, yaxis_title="share with at most this cost", yaxis_range=[0, 1.02],
                         height=420, margin=dict(l=10, r=10, t=10, b=10),
                         legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0))
    return figure


def no_recourse_figure(table: pd.DataFrame, column: str) -> go.Figure:
    """The share of rows without recourse in each group."""
    share = 1.0 - table["feasible"]
    figure = go.Figure(go.Bar(x=[str(g) for g in table["group"]], y=share,
                              text=[f"{n:,} of {r:,}" for n, r in zip(table["no_recourse"], table["rows"])],
                              textposition="outside", marker_color="#c44e52"))
    figure.update_layout(xaxis_title=column, xaxis_type="category", yaxis_title="share without recourse",
                         yaxis_tickformat=".0%",
                         yaxis_range=[0, max(0.05, float(share.max()) * 1.25 if len(share) else 0.05)], height=320,
                         margin=dict(l=10, r=10, t=10, b=10))
    return figure


def changed_figure(table: pd.DataFrame, top: int = 15) -> go.Figure:
    """The columns changed most often (share of the answers with recourse)."""
    head = table.head(top).iloc[::-1]
    figure = go.Figure(go.Bar(x=head["share of answers"], y=head["column"], orientation="h", marker_color="#4c72b0",
                              text=[f"{n:,}" for n in head["rows changed"]], textposition="outside"))
    figure.update_layout(xaxis_title="share of the answers that change it", xaxis_tickformat=".0%",
                         xaxis_range=[0, 1.15], height=max(220, 24 * len(head) + 80), margin=dict(l=10, r=10, t=10, b=10))
    return figure


def change_heatmap(mean_change: np.ndarray, shape) -> go.Figure:
    """Images: the mean signed change of each pixel over the answers (red added, blue removed)."""
    image = np.asarray(mean_change).reshape(shape)
    bound = float(np.abs(image).max()) or 1.0
    figure = go.Figure(go.Heatmap(z=image[::-1], colorscale="RdBu_r", zmin=-bound, zmax=bound,
                                  colorbar=dict(title="mean change")))
    figure.update_layout(height=360, width=420, margin=dict(l=10, r=10, t=10, b=10),
                         xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"))
    return figure


# -- downloads ---------------------------------------------------------------------------------------
def download_frame(audit: Audit, groups: pd.Series | None = None) -> pd.DataFrame:
    """The per-row results as downloaded: every row, with its group when one is chosen."""
    frame = audit.rows.drop(columns=["target index"])
    if groups is not None:
        frame.insert(1, f"group: {groups.name}", groups.astype(str).to_numpy())
    return frame


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
