"""What may change: the per-feature table the user edits, turned into solver arguments (pure functions)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datasets import Dataset

COLUMNS = ["feature", "kind", "locked", "cost", "min", "max", "level may change"]
EDITABLE = {"locked": bool, "cost": float, "min": float, "max": float, "level may change": bool}


@dataclass(frozen=True)
class Edit:
    """One cell of the what-may-change table that differs from the default table."""

    feature: str
    column: str  # one of EDITABLE
    value: bool | float


@dataclass(frozen=True, eq=False)
class WhatMayChange:
    """Everything the solves derive from the what-may-change settings, computed once per change.

    Attributes
    ----------
    key : tuple
        (data hash, standardised) for tables, (data hash, pixel range) for images: when the key no
        longer matches the session, the table is rebuilt from its default.
    table : DataFrame or None
        The edited table (None for images).
    arguments : dict
        ``immutable``/``cost``/``bounds`` for :func:`solver.invert` (the slider).
    question_arguments : dict
        The same plus the one-hot groups and which may change level (the two questions).
    signature : str
        A content hash of both argument sets and the flag: part of every key of a kept result.
    cost : ndarray (D,)
        The per-feature weights of the distance ``sqrt(sum_j cost_j (x_j - x0_j)^2)``.
    unit : str
        What that distance is measured in, for labels ("std", "raw units", "cost-weighted", "pixels").
    edits : tuple of Edit
        Where the table differs from the default (what a shared link carries).
    """

    key: tuple
    table: pd.DataFrame | None
    arguments: dict
    question_arguments: dict
    signature: str
    cost: np.ndarray
    unit: str
    edits: tuple[Edit, ...] = ()


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


def signature(*parts) -> str:
    """A content hash of argument dicts (arrays, scalars, None, nested tuples/lists) and flags."""
    digest = hashlib.sha256()

    def feed(value):
        if isinstance(value, dict):
            for name in sorted(value):
                digest.update(b"<" + name.encode() + b">")
                feed(value[name])
        elif isinstance(value, (tuple, list)):
            digest.update(b"(%d" % len(value))
            for item in value:
                feed(item)
            digest.update(b")")
        elif value is None:
            digest.update(b"none")
        elif isinstance(value, (bool, np.bool_)):
            digest.update(b"T" if value else b"F")
        else:
            array = np.asarray(value)
            digest.update(str(array.dtype).encode() + np.asarray(array.shape, dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(array).tobytes())

    for part in parts:
        feed(part)
    return digest.hexdigest()


def table_edits(default: pd.DataFrame, table: pd.DataFrame) -> tuple[Edit, ...]:
    """The cells of ``table`` that differ from ``default`` (rows matched by feature name)."""
    base, edited = default.set_index("feature"), table.set_index("feature")
    edits = []
    for name in edited.index:
        if name not in base.index:
            continue
        for column, kind in EDITABLE.items():
            new, old = edited.at[name, column], base.at[name, column]
            if kind is bool:
                if bool(new) != bool(old):
                    edits.append(Edit(name, column, bool(new)))
            elif pd.isna(new) != pd.isna(old) or (not pd.isna(new) and float(new) != float(old)):
                edits.append(Edit(name, column, math.nan if pd.isna(new) else float(new)))
    return tuple(edits)


def apply_edits(table: pd.DataFrame, edits) -> pd.DataFrame:
    """``table`` with each edit's cell set (edits of unknown features or columns are skipped)."""
    table = table.copy()
    for edit in edits:
        rows = table.index[table.feature == edit.feature]
        if len(rows) and edit.column in EDITABLE:
            table.loc[rows[0], edit.column] = edit.value
    return table


def _distance_unit(dataset: Dataset, table: pd.DataFrame, standardised: bool, cost: np.ndarray) -> str:
    default = default_table(dataset, standardised).set_index("feature")["cost"]
    edited = table.set_index("feature")["cost"]
    numeric = table.kind == "numeric"
    same = np.allclose(edited[numeric.values].to_numpy(dtype=float), default[numeric.values].to_numpy(dtype=float),
                       rtol=1e-12, atol=0, equal_nan=True)
    if not same:
        return "cost-weighted"
    return "std" if standardised else "raw units"


def what_may_change(dataset: Dataset, table: pd.DataFrame, standardised: bool) -> WhatMayChange:
    """All solver arguments of a tabular dataset's edited table, with their signature and unit."""
    arguments = solver_arguments(dataset, table)
    questions = question_arguments(dataset, table)
    cost = np.asarray(arguments["cost"], dtype=float)
    return WhatMayChange(key=(dataset.content_hash, bool(standardised)), table=table, arguments=arguments,
                         question_arguments=questions, signature=signature(arguments, questions, bool(standardised)),
                         cost=cost, unit=_distance_unit(dataset, table, standardised, cost),
                         edits=table_edits(default_table(dataset, standardised), table))


def image_constraints(dataset: Dataset, keep_in_unit_range: bool) -> WhatMayChange:
    """Images: the only setting is the [0, 1] pixel range; distances are Euclidean in pixel values."""
    arguments = image_arguments(keep_in_unit_range)
    return WhatMayChange(key=(dataset.content_hash, bool(keep_in_unit_range)), table=None, arguments=arguments,
                         question_arguments=arguments, signature=signature(arguments, bool(keep_in_unit_range)),
                         cost=np.ones(dataset.n_features), unit="pixels")


def distance(x, x0, cost) -> float:
    """The problem's own distance ``sqrt(sum_j cost_j (x_j - x0_j)^2)``."""
    delta = np.asarray(x, dtype=float) - np.asarray(x0, dtype=float)
    return float(math.sqrt(np.sum(np.asarray(cost, dtype=float) * delta * delta)))


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
