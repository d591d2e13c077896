"""The Dataset object every page works with, and how its features map back to the user's columns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd


class DataError(ValueError):
    """A dataset or upload that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True, eq=False)
class RawTable:
    """A table as read, before any encoding: text stays text, a missing entry stays missing (NaN).

    Attributes
    ----------
    name : str
    frame : DataFrame
        Every row as read, column names stripped of surrounding spaces. Treat it as read-only.
    target : str
        The class column.
    description : str
    """

    name: str
    frame: pd.DataFrame
    target: str
    description: str = ""

    @property
    def feature_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c != self.target]


@dataclass(frozen=True)
class CategoricalGroup:
    """One text column, one-hot encoded into ``len(levels)`` consecutive features."""

    name: str
    levels: tuple[str, ...]
    columns: tuple[int, ...]  # feature indices, one per level


@dataclass(frozen=True)
class TabularEncoding:
    """How feature vectors map to the user's columns: numeric columns and one-hot groups."""

    numeric: tuple[tuple[str, int], ...]  # (column name, feature index)
    categorical: tuple[CategoricalGroup, ...] = ()
    column_order: tuple[str, ...] = ()

    def decode(self, x: np.ndarray) -> dict[str, object]:
        """Original-unit values of one feature vector; a one-hot group shows its strongest level."""
        values: dict[str, object] = {}
        for name, index in self.numeric:
            values[name] = float(x[index])
        for group in self.categorical:
            values[group.name] = group.levels[int(np.argmax(x[list(group.columns)]))]
        order = self.column_order or tuple(values)
        return {name: values[name] for name in order if name in values}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled dataset ready for a softmax model.

    Attributes
    ----------
    name : str
    X : ndarray (n, D) float64
        Features; images are flattened with pixel values in [0, 1].
    y : ndarray (n,) int
        Class codes ``0..K-1``.
    class_names : tuple of str (K,)
    feature_names : tuple of str (D,)
    kind : "image" or "tabular"
    image_shape : (h, w) or None
    encoding : TabularEncoding or None
        For tabular data: which features are numeric columns and which are one-hot groups.
    description : str
        Where the data comes from and its licence.
    table : RawTable or None
        The table the rows were read from (tabular data read from a table), every row of it.
    table_rows : ndarray (n,) int or None
        Row ``i`` of ``X`` is row ``table_rows[i]`` (a position) of ``table.frame``.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    kind: str
    image_shape: tuple[int, int] | None = None
    encoding: TabularEncoding | None = None
    description: str = ""
    table: RawTable | None = None
    table_rows: np.ndarray | None = None

    def __post_init__(self):
        self.X.setflags(write=False)
        self.y.setflags(write=False)
        if (self.table is None) != (self.table_rows is None):
            raise ValueError("table and table_rows go together")
        if self.table_rows is not None:
            rows = np.array(self.table_rows, dtype=np.int64)
            if rows.shape != (self.X.shape[0],) or (rows.size and not 0 <= rows.min() <= rows.max() < len(self.table.frame)):
                raise ValueError("table_rows must give one row of the table per row of X")
            rows.setflags(write=False)
            object.__setattr__(self, "table_rows", rows)

    def source_rows(self, rows=None) -> pd.DataFrame | None:
        """The table's rows behind ``X[rows]`` (all rows by default) as read, target included; None
        without a table."""
        if self.table is None:
            return None
        positions = self.table_rows if rows is None else self.table_rows[np.atleast_1d(rows)]
        return self.table.frame.iloc[positions]

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of the data and labels: the key for caches shared across sessions."""
        digest = hashlib.sha256()
        digest.update(np.asarray(self.X.shape, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.X).tobytes())
        digest.update(np.ascontiguousarray(self.y, dtype=np.int64).tobytes())
        digest.update("\x1f".join(self.class_names + self.feature_names).encode())
        return digest.hexdigest()


def make_dataset(name, X, y_labels, feature_names, kind, **kwargs) -> Dataset:
    """Encode labels to codes, check the class counts, and build a :class:`Dataset`."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    labels = np.asarray(y_labels)
    classes, y = np.unique(labels, return_inverse=True)
    check_classes(classes, y)
    if not np.all(np.isfinite(X)):
        raise DataError(f"{name}: the features contain non-finite values (NaN or inf)")
    return Dataset(
        name=name,
        X=X,
        y=y.astype(np.int64),
        class_names=tuple(str(c) for c in classes),
        feature_names=tuple(str(f) for f in feature_names),
        kind=kind,
        **kwargs,
    )


def check_classes(classes: np.ndarray, codes: np.ndarray) -> None:
    counts = np.bincount(codes, minlength=len(classes))
    if len(classes) < 2:
        only = f" (only {classes[0]!r})" if len(classes) == 1 else ""
        raise DataError(f"the target has {len(classes)} class{only}: a classifier needs at least 2; pick another target column")
    rare = [str(c) for c, n in zip(classes, counts) if n < 2]
    if rare:
        shown = ", ".join(repr(r) for r in rare[:5]) + (" ..." if len(rare) > 5 else "")
        raise DataError(
            f"{len(rare)} class(es) have fewer than 2 rows ({shown}); every class needs at least 2 rows to "
            "train and test: remove those rows or pick another target column"
        )
