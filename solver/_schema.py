"""What a model's features mean in the user's own table: the feature schema. numpy only.

A scikit-learn pipeline reads a table (its *input columns*) and feeds a linear classifier the encoded
columns. :func:`SoftmaxModel.from_estimator` folds the affine steps away, so the model's features are
the pipeline's columns in their own units: one feature per numeric column (after imputation), one per
one-hot column an encoder writes, one per ordinal column (the integer code). This module records that
correspondence and converts between a row of the table and a feature vector.

A categorical column encoded with ``drop="first"`` (or ``"if_binary"``, or an explicit ``drop``) has no
feature for its dropped level: that level is the state where every feature of the group is 0. The
schema says so (``baseline_levels``); "one level per group" then means *at most* one feature is 1, and
all-zeros stands for the dropped level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

NUMERIC, CATEGORICAL, ORDINAL, UNUSED = "numeric", "categorical", "ordinal", "unused"
KINDS = (NUMERIC, CATEGORICAL, ORDINAL, UNUSED)


def is_missing(value) -> bool:
    """None, NaN (float or numpy) and pandas' NA/NaT (duck-typed: they are not equal to themselves or
    are instances of ``NAType``)."""
    if value is None:
        return True
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def same_level(a, b) -> bool:
    """Level equality where NaN equals NaN (an encoder may keep NaN as a category of its own)."""
    if is_missing(a) or is_missing(b):
        return is_missing(a) and is_missing(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class SchemaColumn:
    """One input column of the pipeline and the model features it becomes.

    Attributes
    ----------
    name : str
        The column's name (``x0``, ``x1``, ... when the pipeline was fitted on an array).
    kind : str
        ``"numeric"`` (one feature in the column's units), ``"categorical"`` (one-hot features),
        ``"ordinal"`` (one integer feature, the code of the level) or ``"unused"`` (the pipeline reads
        the column but the model does not depend on it, e.g. ``remainder="drop"``).
    features : tuple of int
        The model features of this column (a categorical column: the encoder's columns, in order).
    levels : tuple
        Categorical and ordinal columns: the encoder's categories in its order (for an ordinal column
        level ``i`` has code ``i``).
    level_features : tuple of int
        Categorical: per level, the model feature that is 1 for it, or -1 for a dropped level (all
        features 0). Infrequent levels pooled by ``min_frequency``/``max_categories`` share one feature.
    unknown : str or int
        Categorical: what an unseen value becomes: ``"error"``, ``"zeros"`` (all features 0), or the
        feature index of the pooled infrequent column.
    fill : object
        The value a missing entry is replaced with (a SimpleImputer before the model or encoder), in
        the column's units or as a level; None when a missing value is not imputed.
    fill_note : str
        Which step imputes, e.g. ``"SimpleImputer(strategy='mean') in 'pre' > 'num'"``.
    missing_code, unknown_code : float or None
        Ordinal: the code OrdinalEncoder writes for a missing / an unseen value (None: refused).
    code_fill : float or None
        Ordinal: what a NaN code becomes further down the pipeline (an imputer after the encoder).
    lower, upper : float
        A range the pipeline knows for the column (MinMaxScaler's ``data_min_``/``data_max_``; for an
        ordinal column 0 and the last code); infinite otherwise.
    range_note : str
    scale : float
        The spread the pipeline's scaler divides this column by (StandardScaler's standard deviation,
        RobustScaler's IQR, MaxAbsScaler's maximum, MinMaxScaler's data range), in the column's units;
        1.0 when nothing scales it. A natural unit for distances.
    integer : bool
        The feature takes whole values (ordinal codes always; numeric columns when the data says so).
    """

    name: str
    kind: str
    features: tuple[int, ...] = ()
    levels: tuple = ()
    level_features: tuple[int, ...] = ()
    unknown: str | int = "error"
    fill: object = None
    fill_note: str = ""
    missing_code: float | None = None
    unknown_code: float | None = None
    code_fill: float | None = None
    lower: float = -math.inf
    upper: float = math.inf
    range_note: str = ""
    scale: float = 1.0
    integer: bool = False

    @property
    def baseline_levels(self) -> tuple:
        """Categorical: the levels encoded as all zeros (the dropped level), empty without ``drop``."""
        return tuple(level for level, f in zip(self.levels, self.level_features) if f < 0)

    def level_of_feature(self, feature: int):
        """Categorical: the first level whose feature is ``feature`` (-1: the dropped level)."""
        for level, f in zip(self.levels, self.level_features):
            if f == feature:
                return level
        raise KeyError(feature)

    def code_of(self, level) -> int | None:
        """Ordinal: the code of ``level``, None if it is not a level."""
        for code, candidate in enumerate(self.levels):
            if same_level(candidate, level):
                return code
        return None


@dataclass(frozen=True)
class EncodedRow:
    """A row as model features, and what the encoding had to assume.

    Attributes
    ----------
    x : ndarray (D,)
    imputed : tuple of (column name, value used)
        Missing entries the pipeline replaces (SimpleImputer).
    unknown : tuple of (column name, value)
        Values the encoder has not seen, encoded as its ``handle_unknown`` says.
    """

    x: np.ndarray
    imputed: tuple = ()
    unknown: tuple = ()


@dataclass(frozen=True, eq=False)
class FeatureSchema:
    """The pipeline's input columns and the model features each becomes.

    Attributes
    ----------
    columns : tuple of SchemaColumn
        Every input column, in the pipeline's order.
    feature_names : tuple of str
        The model features: ``column`` for numeric and ordinal columns, ``column=level`` for one-hot
        columns (``column=infrequent`` for pooled levels).
    steps : tuple of str
        The steps that were folded, one line each, for display.
    named_columns : bool
        Whether the pipeline was fitted on a DataFrame (columns selected by name).
    """

    columns: tuple[SchemaColumn, ...]
    feature_names: tuple[str, ...]
    steps: tuple[str, ...] = ()
    named_columns: bool = True
    _by_name: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        seen = set()
        for column in self.columns:
            if column.kind not in KINDS:
                raise ValueError(f"column {column.name!r} has unknown kind {column.kind!r}")
            for f in column.features:
                if f in seen or not 0 <= f < len(self.feature_names):
                    raise ValueError(f"feature {f} of column {column.name!r} is out of range or used twice")
                seen.add(f)
        if len(seen) != len(self.feature_names):
            raise ValueError("every model feature must belong to exactly one column")
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    # -- what the schema says ---------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name) -> SchemaColumn:
        """The column called ``name``; ``ValueError`` listing the columns otherwise."""
        try:
            return self._by_name[str(name)]
        except KeyError:
            shown = ", ".join(self.column_names[:30]) + (" ..." if len(self.columns) > 30 else "")
            raise ValueError(f"the pipeline has no input column {name!r}; its columns are: {shown}") from None

    def of_kind(self, kind: str) -> tuple[SchemaColumn, ...]:
        return tuple(c for c in self.columns if c.kind == kind)

    @property
    def groups(self) -> list[tuple[int, ...]]:
        """Feature indices of each categorical column (as ``categorical=`` takes them)."""
        return [c.features for c in self.columns if c.kind == CATEGORICAL and c.features]

    @property
    def integer_features(self) -> np.ndarray:
        """Indices of the features that take whole values."""
        return np.array(sorted(f for c in self.columns if c.integer for f in c.features), dtype=int)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` per feature: known ranges, [0, 1] for one-hot columns, inf elsewhere."""
        lower, upper = np.full(self.n_features, -np.inf), np.full(self.n_features, np.inf)
        for c in self.columns:
            if c.kind in (NUMERIC, ORDINAL):
                lower[c.features[0]], upper[c.features[0]] = c.lower, c.upper
            elif c.kind == CATEGORICAL:
                lower[list(c.features)], upper[list(c.features)] = 0.0, 1.0
        return lower, upper

    def summary(self) -> dict:
        """What was understood, for display: steps, columns by kind, number of encoded features."""
        return {
            "steps": list(self.steps),
            "numeric": [c.name for c in self.of_kind(NUMERIC)],
            "categorical": {c.name: [str(v) for v in c.levels] for c in self.of_kind(CATEGORICAL)},
            "ordinal": {c.name: [str(v) for v in c.levels] for c in self.of_kind(ORDINAL)},
            "unused": [c.name for c in self.of_kind(UNUSED)],
            "imputed": {c.name: c.fill_note for c in self.columns if c.fill_note},
            "ranges": {c.name: (c.lower, c.upper) for c in self.columns if c.range_note},
            "n_features": self.n_features,
        }

    # -- rows <-> features -------------------------------------------------------------------------
    def encode(self, values) -> EncodedRow:
        """Model features of one row; ``values`` holds one entry per input column, in order.

        A missing entry (None or NaN) is replaced as the pipeline replaces it; an unseen category is
        encoded as the encoder's ``handle_unknown`` says. ``ValueError`` naming the column when the
        pipeline itself would refuse the value.
        """
        values = list(values)
        if len(values) != len(self.columns):
            raise ValueError(f"a row needs {len(self.columns)} values (one per input column), got {len(values)}")
        x = np.zeros(self.n_features)
        imputed, unknown = [], []
        for column, value in zip(self.columns, values):
            if column.kind == UNUSED:
                continue
            if column.kind == NUMERIC:
                x[column.features[0]] = self._numeric_value(column, value, imputed)
            elif column.kind == CATEGORICAL:
                self._encode_categorical(column, value, x, imputed, unknown)
            else:
                x[column.features[0]] = self._ordinal_code(column, value, imputed, unknown)
        return EncodedRow(x=x, imputed=tuple(imputed), unknown=tuple(unknown))

    @staticmethod
    def _numeric_value(column, value, imputed) -> float:
        if is_missing(value):
            if column.fill is None:
                raise ValueError(f"column {column.name!r} is missing in the row and the pipeline does not impute it")
            imputed.append((column.name, column.fill))
            return float(column.fill)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"column {column.name!r} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"column {column.name!r} is {number}; the pipeline needs a finite number")
        return number

    @staticmethod
    def _resolve_level(column, value, imputed):
        """The value the encoder sees: an imputer before it fills a missing entry."""
        if is_missing(value) and column.fill is not None:
            imputed.append((column.name, column.fill))
            return column.fill
        return value

    def _encode_categorical(self, column, value, x, imputed, unknown) -> None:
        value = self._resolve_level(column, value, imputed)
        for level, feature in zip(column.levels, column.level_features):
            if same_level(level, value):
                if feature >= 0:
                    x[feature] = 1.0
                return
        if column.unknown == "error":
            shown = ", ".join(repr(v) for v in column.levels[:20])
            raise ValueError(f"column {column.name!r} has the value {value!r}, which its encoder has not seen "
                             f"(handle_unknown='error'); known levels: {shown}")
        unknown.append((column.name, value))
        if column.unknown != "zeros":
            x[int(column.unknown)] = 1.0

    def _ordinal_code(self, column, value, imputed, unknown) -> float:
        value = self._resolve_level(column, value, imputed)
        if is_missing(value) and column.missing_code is not None:
            code = column.missing_code
        else:
            code = column.code_of(value)
            if code is None:
                if column.unknown_code is None:
                    raise ValueError(f"column {column.name!r} has the value {value!r}, which its OrdinalEncoder has "
                                     f"not seen; known levels: {', '.join(repr(v) for v in column.levels[:20])}")
                unknown.append((column.name, value))
                code = column.unknown_code
        if math.isnan(code):
            if column.code_fill is None:
                raise ValueError(f"column {column.name!r} is missing and the pipeline does not impute its code")
            imputed.append((column.name, column.code_fill))
            return float(column.code_fill)
        return float(code)

    def decode(self, x) -> list:
        """One value per input column for the features ``x`` (unused columns: None).

        Numeric: the feature's value; ordinal: the level of the rounded code; categorical: the level
        of the feature that is 1 (the first level sharing it, for pooled infrequent levels), the
        dropped level when every feature of the group is 0, None when that state has no level.
        """
        x = np.asarray(x, dtype=np.float64)
        values = []
        for column in self.columns:
            if column.kind == NUMERIC:
                values.append(float(x[column.features[0]]))
            elif column.kind == ORDINAL:
                code = int(round(float(x[column.features[0]])))
                values.append(column.levels[code] if 0 <= code < len(column.levels) else None)
            elif column.kind == CATEGORICAL:
                group = x[list(column.features)]
                if group.size and group.max() > 0.5:
                    values.append(column.level_of_feature(column.features[int(np.argmax(group))]))
                else:
                    baseline = column.baseline_levels
                    values.append(baseline[0] if baseline else None)
            else:
                values.append(None)
        return values
