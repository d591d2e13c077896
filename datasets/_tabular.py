"""Tables to feature matrices: numeric columns stay, text columns become one-hot groups.

:func:`check_table` makes the checks every table passes (shape, header, target) and keeps it as read
(:class:`RawTable`); :func:`tabular_from_table` encodes it for a model the app trains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._dataset import CategoricalGroup, DataError, Dataset, RawTable, TabularEncoding, check_classes

MAX_ROWS = 200_000
MAX_COLUMNS = 1_000
MAX_FEATURES = 5_000
MAX_LEVELS = 100  # a text column with more distinct values is an identifier, not a category
MAX_CLASSES = 100
TARGET_HINTS = ("target", "class", "label", "y", "outcome", "credit_risk", "species", "diagnosis")


class MissingValuesError(DataError):
    """Rows with missing or non-finite values; ``rows`` lists them so the caller can offer to drop them."""

    def __init__(self, message: str, rows: np.ndarray):
        super().__init__(message)
        self.rows = rows


def default_target(columns) -> str:
    """A sensible target: a column named like a label, else the last column."""
    lowered = {str(c).strip().lower(): c for c in columns}
    for hint in TARGET_HINTS:
        if hint in lowered:
            return lowered[hint]
    return columns[-1]


def _numeric_or_none(series: pd.Series) -> pd.Series | None:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float)
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    converted = pd.to_numeric(series, errors="coerce")
    if converted.notna().sum() == series.notna().sum():
        return converted.astype(float)
    return None


def _missing_mask(frame: pd.DataFrame, numeric: dict[str, pd.Series]) -> pd.DataFrame:
    mask = frame.isna()
    for name, values in numeric.items():
        mask[name] = ~np.isfinite(values.to_numpy())
    return mask


def check_table(frame: pd.DataFrame, target=None, name: str = "table", description: str = "") -> RawTable:
    """Check a table's size and header and resolve its target column (default: one named like a
    label, else the last); the table itself is kept as it is: text stays text, missing stays missing."""
    if frame.shape[0] == 0:
        raise DataError("the table has a header but no data rows")
    if frame.shape[1] < 2:
        raise DataError(f"the table has {frame.shape[1]} column(s); it needs a target column and at least one feature")
    if frame.shape[0] > MAX_ROWS:
        raise DataError(f"the table has more than {MAX_ROWS:,} rows; sample it down before uploading")
    if frame.shape[1] > MAX_COLUMNS:
        raise DataError(f"the table has {frame.shape[1]:,} columns; at most {MAX_COLUMNS:,} are supported")
    frame = frame.set_axis([str(c).strip() for c in frame.columns], axis=1)
    if len(set(frame.columns)) != len(frame.columns):
        raise DataError("the header has duplicate column names; give every column a distinct name")
    target = default_target(list(frame.columns)) if target is None else str(target)
    if target not in frame.columns:
        raise DataError(f"there is no column named {target!r}; columns are: {', '.join(frame.columns[:20])}")
    return RawTable(name=name, frame=frame, target=target, description=description)


def tabular_from_frame(frame: pd.DataFrame, target=None, name: str = "table", description: str = "",
                       drop_missing: bool = False) -> Dataset:
    """Build a tabular :class:`Dataset` from a DataFrame (:func:`check_table`, then
    :func:`tabular_from_table`)."""
    return tabular_from_table(check_table(frame, target, name, description), drop_missing)


def tabular_from_table(table: RawTable, drop_missing: bool = False) -> Dataset:
    """Encode a checked table for a model the app trains.

    Numeric columns become features in their own units; text columns are one-hot encoded and
    remembered as :class:`CategoricalGroup` so the UI can show and constrain them as one feature.
    Rows with a missing or non-finite value are refused (:class:`MissingValuesError`), or dropped
    with ``drop_missing``. The dataset keeps the whole table and which of its rows it holds.
    """
    frame, target, name, description = table.frame, table.target, table.name, table.description
    rows = np.arange(frame.shape[0])
    notes = []

    numeric: dict[str, pd.Series] = {}
    text: list[str] = []
    for column in frame.columns:
        if column == target:
            continue
        values = _numeric_or_none(frame[column])
        if values is not None:
            numeric[column] = values
        elif frame[column].nunique(dropna=True) > MAX_LEVELS:
            notes.append(f"dropped column {column!r}: {frame[column].nunique()} distinct text values look like an identifier")
        else:
            text.append(column)
    if not numeric and not text:
        raise DataError("no usable feature columns: every column besides the target was dropped")

    used = [c for c in frame.columns if c in numeric or c in text or c == target]
    missing = _missing_mask(frame[used], numeric)
    bad_rows = np.flatnonzero(missing.any(axis=1).to_numpy())
    if bad_rows.size:
        per_column = missing.sum()
        where = ", ".join(f"{c}: {int(n)}" for c, n in per_column[per_column > 0].items())
        if not drop_missing:
            raise MissingValuesError(
                f"{bad_rows.size} of {frame.shape[0]} rows have missing or non-finite values ({where}); "
                "drop those rows or fix the file",
                bad_rows,
            )
        keep = np.setdiff1d(np.arange(frame.shape[0]), bad_rows)
        if keep.size == 0:
            raise DataError(f"every row has a missing or non-finite value ({where}); nothing is left to train on")
        frame = frame.iloc[keep].reset_index(drop=True)
        numeric = {c: v.iloc[keep].reset_index(drop=True) for c, v in numeric.items()}
        rows = keep
        notes.append(f"dropped {bad_rows.size} row(s) with missing values ({where})")

    labels = frame[target].astype(str).str.strip().to_numpy()
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"the target column {target!r} has {len(classes)} distinct values; that looks like a measurement, "
            "not a class label: pick a column with the classes"
        )
    check_classes(classes, codes)

    blocks, feature_names, numeric_index, groups, order = [], [], [], [], []
    for column in frame.columns:
        if column in numeric:
            numeric_index.append((column, len(feature_names)))
            feature_names.append(column)
            blocks.append(numeric[column].to_numpy()[:, None])
            order.append(column)
        elif column in text:
            values = frame[column].astype(str).str.strip().to_numpy()
            levels = tuple(sorted(set(values)))
            start = len(feature_names)
            groups.append(CategoricalGroup(column, levels, tuple(range(start, start + len(levels)))))
            feature_names.extend(f"{column}={level}" for level in levels)
            blocks.append((values[:, None] == np.array(levels)[None, :]).astype(float))
            order.append(column)
    if len(feature_names) > MAX_FEATURES:
        raise DataError(f"one-hot encoding gives {len(feature_names):,} features; at most {MAX_FEATURES:,} are supported")
    X = np.hstack(blocks)
    if description and notes:
        description = description + " " + "; ".join(notes)
    elif notes:
        description = "; ".join(notes)
    return Dataset(
        name=name,
        X=np.ascontiguousarray(X, dtype=np.float64),
        y=codes.astype(np.int64),
        class_names=tuple(str(c) for c in classes),
        feature_names=tuple(feature_names),
        kind="tabular",
        encoding=TabularEncoding(tuple(numeric_index), tuple(groups), tuple(order)),
        description=description,
        table=table,
        table_rows=rows,
    )
