"""What may change: the per-feature table the user edits, turned into solver arguments (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from datasets import Dataset

COLUMNS = ["feature", "kind", "locked", "cost", "min", "max", "level may change"]


def default_table(dataset: Dataset, standardised: bool = True) -> pd.DataFrame:
    """One row per original column. Numeric: free, cost 1/std^2 (standardised units) or 1, no range.
    Categorical: locked; its level may change only in the two questions (never continuously)."""
    std = dataset.X.std(axis=0)
    rows = []
    encoding = dataset.encoding
    numeric = encoding.numeric if encoding is not None else tuple((n, i) for i, n in enumerate(dataset.feature_names))
    for name, index in numeric:
        cost = 1.0 / std[index] ** 2 if standardised and std[index] > 0 else 1.0
        rows.append(dict(feature=name, kind="numeric", locked=False, cost=float(cost), min=np.nan, max=np.nan,
                         **{"level may change": False}))
    for group in (encoding.categorical if encoding is not None else ()):
        rows.append(dict(feature=group.name, kind=f"categorical ({len(group.levels)} levels)", locked=True, cost=np.nan,
                         min=np.nan, max=np.nan, **{"level may change": False}))
    return pd.DataFrame(rows, columns=COLUMNS)


def solver_arguments(dataset: Dataset, table: pd.DataFrame) -> dict:
    """``immutable``, ``cost`` and ``bounds`` for :func:`solver.invert` from the edited table.

    One-hot columns are always immutable here: a level is either kept or changed as a whole, which
    only the questions (minimal flip, target probability) can do, by enumeration.
    """
    n = dataset.n_features
    immutable = np.zeros(n, dtype=bool)
    cost = np.ones(n)
    lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
    rows = table.set_index("feature")
    encoding = dataset.encoding
    numeric = encoding.numeric if encoding is not None else tuple((f, i) for i, f in enumerate(dataset.feature_names))
    for name, index in numeric:
        row = rows.loc[name]
        immutable[index] = bool(row["locked"])
        value = float(row["cost"]) if pd.notna(row["cost"]) else 1.0
        cost[index] = value if value > 0 else 1.0
        if value <= 0:
            immutable[index] = True
        if pd.notna(row["min"]):
            lower[index] = float(row["min"])
        if pd.notna(row["max"]):
            upper[index] = float(row["max"])
    for group in (encoding.categorical if encoding is not None else ()):
        immutable[list(group.columns)] = True
    swapped = lower > upper
    lower[swapped], upper[swapped] = upper[swapped], lower[swapped]
    has_bounds = np.isfinite(lower).any() or np.isfinite(upper).any()
    return dict(immutable=immutable, cost=cost, bounds=(lower, upper) if has_bounds else None)


def question_arguments(dataset: Dataset, table: pd.DataFrame) -> dict:
    """Solver arguments plus the categorical groups and which may change level (for the questions)."""
    arguments = solver_arguments(dataset, table)
    groups = list(dataset.encoding.categorical) if dataset.encoding is not None else []
    if not groups:
        return arguments
    rows = table.set_index("feature")
    immutable = arguments["immutable"].copy()
    for group in groups:
        immutable[list(group.columns)] = False  # handled by `categorical` below
    change = [g for g, group in enumerate(groups) if bool(rows.loc[group.name, "level may change"])]
    return dict(arguments, immutable=immutable, categorical=[group.columns for group in groups],
                change_levels=change or None)


def image_arguments(keep_in_unit_range: bool) -> dict:
    return dict(bounds=(0.0, 1.0)) if keep_in_unit_range else {}


def describe_active(dataset: Dataset, x0, x, arguments: dict, at_lower, at_upper) -> str:
    """One line on which constraints shaped the answer."""
    parts = []
    names = dataset.feature_names
    if dataset.kind == "image":
        if len(at_lower) or len(at_upper):
            parts.append(f"{len(at_lower)} pixels held at 0 and {len(at_upper)} at 1 by the [0, 1] range")
    else:
        shown = lambda idx: ", ".join(names[i] for i in idx[:5]) + (" …" if len(idx) > 5 else "")  # noqa: E731
        if len(at_lower):
            parts.append(f"at their minimum: {shown(at_lower)}")
        if len(at_upper):
            parts.append(f"at their maximum: {shown(at_upper)}")
        immutable = arguments.get("immutable")
        if immutable is not None and dataset.encoding is not None:
            locked = [n for n, i in dataset.encoding.numeric if immutable[i]]
            if locked:
                parts.append(f"locked: {', '.join(locked[:6])}{' …' if len(locked) > 6 else ''}")
    return "; ".join(parts) if parts else "no constraint is active at this answer"
