"""Pure helpers for the Audit page: run a question over the whole dataset with progress, and summarise the
recourse cost overall and by group (pandas/numpy only; no Streamlit, so everything here is testable)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from datasets import Dataset
from solver import BatchResult, closest_with_probability_batch, invert_batch, minimal_flip_batch

QUESTIONS = {"flip": "the smallest change to the target class",
             "probability": "the smallest change to p(target) >= alpha",
             "lam": "the penalised answer for one trade-off lam"}
AGE_EDGES = (0, 25, 35, 50, 65, np.inf)


def run_audit(model, X0, targets, question: str, *, margin=None, alpha=None, lam=None, progress=None,
              step_rows: int = 250, **constraints) -> BatchResult:
    """Answer ``question`` for every row of ``X0``, ``step_rows`` rows at a time, calling
    ``progress(done, total)`` after each step (a progress bar); the result is the one batch call's.

    ``constraints`` are ``immutable``, ``cost``, ``bounds`` (e.g. from ``ui.constraints.solver_arguments``).
    """
    X0 = np.asarray(X0, dtype=np.float64)
    n = X0.shape[0]
    targets = np.broadcast_to(np.asarray(targets), (n,))
    if question == "flip":
        def solve(rows):
            return minimal_flip_batch(model, X0[rows], targets[rows], **({} if margin is None else {"margin": margin}),
                                      **constraints)
    elif question == "probability":
        def solve(rows):
            return closest_with_probability_batch(model, X0[rows], targets[rows], alpha, **constraints)
    elif question == "lam":
        def solve(rows):
            return invert_batch(model, X0[rows], targets[rows], lam, **constraints)
    else:
        raise ValueError(f"question must be one of {', '.join(QUESTIONS)}; got {question!r}")
    parts = []
    # The batched kernels are many small BLAS calls: on a shared 2-core machine a second BLAS thread made
    # them 2-9x slower (measured), so they run on one.
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, max(n, 1), step_rows):
            parts.append(solve(slice(start, min(n, start + step_rows))))
            if progress is not None:
                progress(min(n, start + step_rows), n)
    return BatchResult.concat(parts)


def changed_columns(dataset: Dataset, result: BatchResult, X0: np.ndarray, rtol: float = 1e-9) -> pd.DataFrame:
    """Per original column (a numeric feature, or a one-hot group as one column): how many answers change
    it, and the share of the rows with an answer; sorted by that share. A feature changes when it moves
    by more than ``rtol (1 + |x0|)``."""
    moved = np.abs(result.X - X0) > rtol * (1.0 + np.abs(X0))
    moved &= result.success[:, None]
    answered = max(int(result.success.sum()), 1)
    encoding = dataset.encoding
    columns = (encoding.numeric if encoding is not None
               else tuple((name, j) for j, name in enumerate(dataset.feature_names)))
    rows = [(name, int(moved[:, j].sum())) for name, j in columns]
    for group in (encoding.categorical if encoding is not None else ()):
        rows.append((group.name, int(moved[:, list(group.columns)].any(axis=1).sum())))
    frame = pd.DataFrame(rows, columns=["column", "rows changed"])
    frame["share of answers"] = frame["rows changed"] / answered
    return frame.sort_values(["rows changed", "column"], ascending=[False, True], ignore_index=True)


def group_labels(dataset: Dataset, column: str, edges=None) -> pd.Series:
    """Each row's group for ``column``: its level for a categorical column; for a numeric one, bands by
    ``edges`` (default: age bands 0-25-35-50-65+ for a column named like "age", else quartiles)."""
    encoding = dataset.encoding
    for group in (encoding.categorical if encoding is not None else ()):
        if group.name == column:
            levels = np.asarray(group.levels, dtype=object)
            return pd.Series(levels[np.argmax(dataset.X[:, list(group.columns)], axis=1)], name=column)
    numeric = dict(encoding.numeric) if encoding is not None else {n: j for j, n in enumerate(dataset.feature_names)}
    if column not in numeric:
        raise ValueError(f"no column {column!r} in {dataset.name}")
    values = dataset.X[:, numeric[column]]
    if edges is None:
        edges = AGE_EDGES if "age" in column.lower() else np.unique(np.quantile(values, [0, 0.25, 0.5, 0.75, 1]))
    edges = np.asarray(edges, dtype=float)
    bands = pd.cut(values, bins=edges, include_lowest=True, right=False, duplicates="drop")
    return pd.Series(bands.astype(str), name=column)


def group_costs(result: BatchResult, groups: pd.Series) -> pd.DataFrame:
    """Recourse cost by group: rows, share with an answer (feasible recourse), and among those the
    quartiles of the cost (``distance``; 0 for rows that already have the target), with each group's
    median over the lowest group median (the disparity ratio; NaN when that median is 0)."""
    frame = pd.DataFrame({"group": np.asarray(groups), "success": result.success, "distance": result.distance})
    rows = []
    for name, part in frame.groupby("group", sort=True):
        feasible = part.distance[part.success]
        rows.append(dict(group=name, rows=len(part), feasible=float(part.success.mean()),
                         no_recourse=int((~part.success).sum()),
                         q25=float(feasible.quantile(0.25)) if len(feasible) else np.nan,
                         median=float(feasible.median()) if len(feasible) else np.nan,
                         q75=float(feasible.quantile(0.75)) if len(feasible) else np.nan))
    table = pd.DataFrame(rows)
    lowest = table["median"].min()
    table["median / lowest median"] = table["median"] / lowest if lowest > 0 else np.nan
    return table


def ecdf(values) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of the finite ``values``: sorted values and ``i / n``."""
    values = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    return values, np.arange(1, values.size + 1) / max(values.size, 1)
