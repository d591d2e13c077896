"""What may change: the per-feature table the user edits, turned into solver arguments (pure functions).

One row per original column. What the data says comes first: a numeric column whose values are all
whole is a whole-number feature, its range is the observed min and max (the user may widen it, or clear
a cell for no limit), and a one-hot group keeps its real levels. Per feature the user then chooses
*may change*, *may only rise*, *may only fall* or *locked*; rising and falling are bounds at the
applicant's own value, so they are applied per instance (:func:`for_instance`), never typed into min or
max.

The number cells (min, max, cost) are text cells parsed here. Streamlit's number-cell editor (1.67)
drops the keys typed before its editor has opened: typing "48" quickly into a selected cell enters 8
(0 of 8 kept at 20 ms between keys in a bare app with nothing else on the page; a text cell kept 4 of 4).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from datasets import Dataset

MAY_CHANGE, RISE, FALL, LOCKED = "may change", "may only rise", "may only fall", "locked"
CHOICES = (MAY_CHANGE, RISE, FALL, LOCKED)
COLUMNS = ["feature", "kind", "may change", "whole numbers", "min", "max", "cost"]
EDITABLE = {"may change": str, "whole numbers": bool, "min": float, "max": float, "cost": float}
ONE_HOT_L1_COST = 0.5  # l1: each one-hot column, so a change of level costs 1 (like one MAD of a numeric column)


@dataclass(frozen=True)
class Edit:
    """One cell of the what-may-change table that differs from the default table."""

    feature: str
    column: str  # one of EDITABLE
    value: bool | float | str


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
    problems : tuple of str
        Cells that could not be used as typed, and what was done instead.
    integer : ndarray (D,) of bool or None
        Whole-number features (the recourse question).
    rise, fall : ndarray (D,) of bool or None
        Features that may only rise / only fall from the applicant's value (see :func:`for_instance`).
    feature_names : tuple of str
    """

    key: tuple
    table: pd.DataFrame | None
    arguments: dict
    question_arguments: dict
    signature: str
    cost: np.ndarray
    unit: str
    edits: tuple[Edit, ...] = ()
    problems: tuple[str, ...] = ()
    integer: np.ndarray | None = None
    rise: np.ndarray | None = None
    fall: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()


# -- cells ------------------------------------------------------------------------------------------
def number_text(value: float) -> str:
    """A number cell's text for ``value``, read back exactly by :func:`parse_number` ("" for NaN)."""
    value = float(value)
    if math.isnan(value):
        return ""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def cost_text(value: float) -> str:
    """A default cost as shown (six digits; the exact default is used while the cell is unchanged)."""
    return f"{float(value):.6g}"


def parse_number(cell) -> float:
    """The number in a cell: NaN for an empty cell ("", "none", "nan", "-"); ValueError for text that is
    not a finite number. Thousands separators are refused, not guessed ("1,5" is 1.5 in some places)."""
    if cell is None or isinstance(cell, bool):
        if isinstance(cell, bool):
            raise ValueError(f"{cell!r} is not a number")
        return math.nan
    if isinstance(cell, (int, float, np.integer, np.floating)):
        value = float(cell)
        if math.isinf(value):
            raise ValueError(f"{cell!r} is not a finite number")
        return value
    text = str(cell).strip()
    if text.lower() in ("", "none", "nan", "-", "—"):
        return math.nan
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise ValueError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"'{text}' is not a finite number")
    return value


def _numeric(dataset: Dataset) -> tuple[tuple[str, int], ...]:
    encoding = dataset.encoding
    return encoding.numeric if encoding is not None else tuple((n, i) for i, n in enumerate(dataset.feature_names))


def _groups(dataset: Dataset) -> tuple:
    return dataset.encoding.categorical if dataset.encoding is not None else ()


def default_costs(dataset: Dataset, standardised: bool = True) -> np.ndarray:
    """The default weight of each feature in ``sum_j cost_j (x_j - x0_j)^2``: 1/std^2 of numeric columns
    when standardised (1 for a constant column), else 1; one-hot columns 1."""
    cost = np.ones(dataset.n_features)
    if standardised:
        std = dataset.X.std(axis=0)
        for _, index in _numeric(dataset):
            if std[index] > 0:
                cost[index] = 1.0 / std[index] ** 2
    return cost


def l1_costs(dataset: Dataset, standardised: bool = True) -> np.ndarray:
    """The default weights of ``sum_j cost_j |x_j - x0_j|``: 1/MAD of numeric columns when standardised
    (Wachter et al.; 1/std where the MAD is 0, as for a column that is mostly one value; 1 for a
    constant column), else 1; each one-hot column 0.5, so a change of level costs 1."""
    cost = np.ones(dataset.n_features)
    X = dataset.X
    if standardised:
        mad = np.median(np.abs(X - np.median(X, axis=0)), axis=0)
        std = X.std(axis=0)
        for _, index in _numeric(dataset):
            scale = mad[index] if mad[index] > 0 else std[index]
            cost[index] = 1.0 / scale if scale > 0 else 1.0
    for group in _groups(dataset):
        cost[list(group.columns)] = ONE_HOT_L1_COST
    return cost


def default_table(dataset: Dataset, standardised: bool = True) -> pd.DataFrame:
    """One row per original column, read from the data. Numeric: may change; whole numbers where every
    value is whole; min and max observed; cost 1/std^2 (standardised units) or 1. Categorical: locked
    (the questions may change its level when the user says it may change)."""
    X = dataset.X
    cost = default_costs(dataset, standardised)
    rows = []
    for name, index in _numeric(dataset):
        column = X[:, index]
        rows.append({"feature": name, "kind": "numeric", "may change": MAY_CHANGE,
                     "whole numbers": bool(np.all(column == np.round(column))), "min": number_text(column.min()),
                     "max": number_text(column.max()), "cost": cost_text(cost[index])})
    for group in _groups(dataset):
        rows.append({"feature": group.name, "kind": f"categorical ({len(group.levels)} levels)", "may change": LOCKED,
                     "whole numbers": False, "min": "", "max": "", "cost": ""})
    return pd.DataFrame(rows, columns=COLUMNS)


# -- the table, read ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Reading:
    locked: np.ndarray  # numeric features locked (or cost 0)
    cost: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integer: np.ndarray
    rise: np.ndarray
    fall: np.ndarray
    change_groups: tuple[int, ...]
    problems: tuple[str, ...]


def _choice(value) -> str:
    text = str(value).strip() if value is not None and not (isinstance(value, float) and math.isnan(value)) else ""
    return text if text in CHOICES else ""


def _read(dataset: Dataset, table: pd.DataFrame, standardised: bool) -> _Reading:
    n = dataset.n_features
    rows = table.set_index("feature")
    default = default_table(dataset, standardised).set_index("feature")
    exact_cost = default_costs(dataset, standardised)
    locked, integer = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    rise, fall = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    cost = exact_cost.copy()
    lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
    problems = []

    def number(name, column):
        cell, fallback = rows.at[name, column], default.at[name, column]
        try:
            return parse_number(cell), False
        except ValueError as exc:
            problems.append(f"{name} {column}: {exc}; kept {fallback or 'no limit'}")
            return parse_number(fallback), True

    for name, index in _numeric(dataset):
        choice = _choice(rows.at[name, "may change"])
        if not choice:
            problems.append(f"{name}: '{rows.at[name, 'may change']}' is not one of {', '.join(CHOICES)}; "
                            f"kept '{MAY_CHANGE}'")
            choice = MAY_CHANGE
        locked[index] = choice == LOCKED
        rise[index], fall[index] = choice == RISE, choice == FALL
        integer[index] = bool(rows.at[name, "whole numbers"])
        if str(rows.at[name, "cost"]).strip() != str(default.at[name, "cost"]):
            value, failed = number(name, "cost")
            if failed or math.isnan(value):
                value = exact_cost[index]
            elif value < 0:
                problems.append(f"{name} cost: {value:g} is negative; kept {default.at[name, 'cost']}")
                value = exact_cost[index]
            elif value == 0:  # cost 0 means "cannot change", as in the solver
                locked[index], value = True, 1.0
            cost[index] = value
        low, _ = number(name, "min")
        high, _ = number(name, "max")
        if not math.isnan(low):
            lower[index] = low
        if not math.isnan(high):
            upper[index] = high
        if lower[index] > upper[index]:
            problems.append(f"{name}: min {number_text(lower[index])} is above max {number_text(upper[index])}; "
                            "swapped")
            lower[index], upper[index] = upper[index], lower[index]
    change_groups = []
    for g, group in enumerate(_groups(dataset)):
        choice = _choice(rows.at[group.name, "may change"])
        if choice in (RISE, FALL):
            problems.append(f"{group.name}: a categorical feature has no order to rise or fall in; read as "
                            f"'{MAY_CHANGE}'")
        elif not choice:
            problems.append(f"{group.name}: '{rows.at[group.name, 'may change']}' is not one of "
                            f"{MAY_CHANGE}, {LOCKED}; kept '{LOCKED}'")
        if choice in (MAY_CHANGE, RISE, FALL):
            change_groups.append(g)
    return _Reading(locked=locked, cost=cost, lower=lower, upper=upper, integer=integer, rise=rise, fall=fall,
                    change_groups=tuple(change_groups), problems=tuple(problems))


def _slider_arguments(dataset: Dataset, reading: _Reading) -> dict:
    immutable = reading.locked.copy()
    for group in _groups(dataset):
        immutable[list(group.columns)] = True
    has_bounds = np.isfinite(reading.lower).any() or np.isfinite(reading.upper).any()
    return dict(immutable=immutable, cost=reading.cost.copy(),
                bounds=(reading.lower.copy(), reading.upper.copy()) if has_bounds else None)


def _question_arguments(dataset: Dataset, reading: _Reading, arguments: dict) -> dict:
    groups = list(_groups(dataset))
    if not groups:
        return arguments
    return dict(arguments, immutable=reading.locked.copy(), categorical=[group.columns for group in groups],
                change_levels=list(reading.change_groups) or None)


def solver_arguments(dataset: Dataset, table: pd.DataFrame, standardised: bool = True) -> dict:
    """``immutable``, ``cost`` and ``bounds`` for :func:`solver.invert` from the edited table.

    One-hot columns are always immutable here: a level is either kept or changed as a whole, which
    only the questions can do. "May only rise/fall" is not in here: it depends on the instance
    (:func:`for_instance`).
    """
    return _slider_arguments(dataset, _read(dataset, table, standardised))


def question_arguments(dataset: Dataset, table: pd.DataFrame, standardised: bool = True) -> dict:
    """Solver arguments plus the categorical groups and which may change level (for the questions)."""
    reading = _read(dataset, table, standardised)
    return _question_arguments(dataset, reading, _slider_arguments(dataset, reading))


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


def _same_number(new, old) -> bool | None:
    """Whether two number cells hold the same number (None when the new cell is not a number)."""
    if str(new).strip() == str(old).strip():
        return True
    try:
        a, b = parse_number(new), parse_number(old)
    except ValueError:
        return None
    return (math.isnan(a) and math.isnan(b)) or a == b


def table_edits(default: pd.DataFrame, table: pd.DataFrame) -> tuple[Edit, ...]:
    """The cells of ``table`` that differ from ``default`` (rows matched by feature name); number cells
    that are not numbers are left out (they are reported as problems instead)."""
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
            elif kind is str:
                if _choice(new) and _choice(new) != _choice(old):
                    edits.append(Edit(name, column, _choice(new)))
            elif _same_number(new, old) is False:
                edits.append(Edit(name, column, parse_number(new)))
    return tuple(edits)


def apply_edits(table: pd.DataFrame, edits) -> pd.DataFrame:
    """``table`` with each edit's cell set (edits of unknown features or columns are skipped)."""
    table = table.copy()
    for edit in edits:
        rows = table.index[table.feature == edit.feature]
        kind = EDITABLE.get(edit.column)
        if not len(rows) or kind is None:
            continue
        if kind is float:
            value = number_text(edit.value)
        elif kind is str:
            if edit.value not in CHOICES:
                continue
            value = edit.value
        else:
            value = bool(edit.value)
        table.loc[rows[0], edit.column] = value
    return table


def _distance_unit(dataset: Dataset, reading: _Reading, standardised: bool) -> str:
    numeric = [index for _, index in _numeric(dataset)]
    if not np.array_equal(reading.cost[numeric], default_costs(dataset, standardised)[numeric]):
        return "cost-weighted"
    return "std" if standardised else "raw units"


def what_may_change(dataset: Dataset, table: pd.DataFrame, standardised: bool) -> WhatMayChange:
    """All solver arguments of a tabular dataset's edited table, with their signature and unit."""
    reading = _read(dataset, table, standardised)
    arguments = _slider_arguments(dataset, reading)
    questions = _question_arguments(dataset, reading, arguments)
    return WhatMayChange(key=(dataset.content_hash, bool(standardised)), table=table, arguments=arguments,
                         question_arguments=questions,
                         signature=signature(arguments, questions, bool(standardised), reading.integer),
                         cost=reading.cost, unit=_distance_unit(dataset, reading, standardised),
                         edits=table_edits(default_table(dataset, standardised), table), problems=reading.problems,
                         integer=reading.integer, rise=reading.rise, fall=reading.fall,
                         feature_names=dataset.feature_names)


def row_bounds(bounds, X0, rise: np.ndarray, fall: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ranges: ``bounds`` (a pair, or None for none) with lower = max(lower, x0) where only
    rising and upper = min(upper, x0) where only falling is allowed; where that leaves no room (a range
    that excludes x0 on the allowed side) the feature is held at x0. ``X0`` is one row (D,) or many
    (n, D); returns lower, upper and the features held so, each shaped like ``X0``."""
    X0 = np.asarray(X0, dtype=float)
    if bounds is None:
        lower, upper = np.full(X0.shape, -np.inf), np.full(X0.shape, np.inf)
    else:
        lower, upper = (np.array(np.broadcast_to(np.asarray(b, dtype=float), X0.shape)) for b in bounds)
    lower = np.where(rise, np.maximum(lower, X0), lower)
    upper = np.where(fall, np.minimum(upper, X0), upper)
    held = lower > upper
    lower[held] = upper[held] = X0[held]
    return lower, upper, held


def _tightened(arguments: dict, x0: np.ndarray, rise: np.ndarray, fall: np.ndarray) -> tuple[dict, np.ndarray]:
    """``arguments`` with the ranges of :func:`row_bounds` for the applicant ``x0``. Returns the
    arguments and the features held at x0."""
    lower, upper, held = row_bounds(arguments.get("bounds"), x0, rise, fall)
    return dict(arguments, bounds=(lower, upper)), held


def for_instance(what: WhatMayChange, x0) -> WhatMayChange:
    """``what`` for the applicant ``x0``: "may only rise" becomes lower = x0_j and "may only fall"
    upper = x0_j (within the range the table gives). The same object when nothing rises or falls."""
    if what.rise is None or not (what.rise.any() or what.fall.any()):
        return what
    x0 = np.asarray(x0, dtype=float)
    arguments, held = _tightened(what.arguments, x0, what.rise, what.fall)
    questions, _ = _tightened(what.question_arguments, x0, what.rise, what.fall)
    problems = what.problems
    if held.any():
        problems += tuple(f"{what.feature_names[j] if what.feature_names else j}: its range lies on the other side of the applicant's "
                          f"{number_text(x0[j])}, which it may not cross; held at {number_text(x0[j])}"
                          for j in np.flatnonzero(held))
    return replace(what, arguments=arguments, question_arguments=questions, problems=problems,
                   signature=signature(arguments, questions, what.key[1], what.integer))


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


def l1_distance(x, x0, cost) -> float:
    """``sum_j cost_j |x_j - x0_j|``, the distance of ``metric="l1"``."""
    delta = np.asarray(x, dtype=float) - np.asarray(x0, dtype=float)
    return float(np.sum(np.asarray(cost, dtype=float) * np.abs(delta)))


def recourse_arguments(dataset: Dataset, what: WhatMayChange, metric: str, x0) -> tuple[dict, tuple[str, ...]]:
    """Arguments of :func:`solver.recourse` for the applicant ``x0`` (``what`` already
    :func:`for_instance` of it), and notes on what could not be honoured.

    Tables: whole numbers, ranges, locks and level changes from the table; ``cost`` is the page's own
    for ``metric="l2"`` (1/std^2, or the user's) and for ``"l1"`` 1/MAD per numeric column times
    sqrt(cost / default cost) (so a cost the user raised makes the feature dearer in both metrics), 0.5
    per one-hot column. Images: ``metric="l1"`` and the pixel range, every pixel free.
    """
    if dataset.kind == "image":
        return dict(metric="l1", bounds=what.arguments.get("bounds")), ()
    x0 = np.asarray(x0, dtype=float)
    questions = what.question_arguments
    integer = what.integer.copy()
    fractional = integer & (x0 != np.round(x0))
    notes = ()
    if fractional.any():
        integer &= ~fractional
        names = ", ".join(dataset.feature_names[j] for j in np.flatnonzero(fractional))
        notes = (f"{names}: the applicant's value is not whole, so whole numbers were not asked of it",)
    if metric == "l2":
        cost = what.cost.copy()
    else:
        standardised = bool(what.key[1])
        cost = l1_costs(dataset, standardised) * np.sqrt(what.cost / default_costs(dataset, standardised))
    return dict(metric=metric, cost=cost, immutable=questions["immutable"], bounds=questions.get("bounds"),
                integer=integer, categorical=questions.get("categorical"),
                change_levels=questions.get("change_levels") or False), notes


def recourse_unit(what: WhatMayChange, metric: str) -> str:
    """The unit of a recourse answer's distance."""
    if metric == "l2":
        return what.unit
    base = {"std": "MADs", "pixels": "pixels"}.get(what.unit, what.unit)
    return f"{base}, l1"


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
