"""A user's scikit-learn pipeline in the dashboard: loaded from an untrusted ``.skops`` file, reading a
table, and its answers written back as rows in the pipeline's own columns. Pure functions, no Streamlit.

The folded model (:meth:`solver.SoftmaxModel.from_estimator`) acts on the pipeline's encoded features
``z``. The pages show every categorical or ordinal column as one feature per level, one-hot over *all*
its levels: a level dropped by ``drop="first"``, levels pooled as infrequent, an ordinal column's codes
and values the encoder has not seen each get a feature of their own. With ``M`` the matrix whose
column for a level is the encoded features that level becomes (``z = M x + c``), the pages' model is

    p(x) = softmax(A M x + A c + b),

the pipeline's probabilities exactly, for every row. Every one-hot state of the pages' features is a
real row (exactly one level per column), so the pages' categorical groups, level changes and locks
apply to any supported pipeline unchanged, and an answer is read back as a row by taking each group's
level.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datasets import CategoricalGroup, Dataset, RawTable, TabularEncoding
from solver import ModelFileError, SoftmaxModel, UnsupportedEstimatorError, load_estimator

NUMERIC, CATEGORICAL, ORDINAL, UNUSED = "numeric", "categorical", "ordinal", "unused"
MAX_SHOWN_FEATURES = 5_000  # as for tables the app encodes itself
# The pages' model against the pipeline's own predict_proba on every row read: the fold is exact, so
# anything above round-off (about 1e-15) is a bug, not a tolerance.
AGREEMENT = 1e-9
_MISSING = object()  # the key of a missing value among a column's levels
MISSING_NOT_IMPUTED = "missing, and the pipeline does not impute it"


class PipelineError(ValueError):
    """A pipeline that cannot be loaded, or a table it cannot read; the message says why and what to do."""


@dataclass(frozen=True, eq=False)
class LoadedPipeline:
    """A fitted pipeline from a ``.skops`` file, and its fold.

    Attributes
    ----------
    filename : str
    sha256 : str
        Of the file's bytes.
    estimator : object
        The scikit-learn estimator itself (kept in the session that loaded it, never shared).
    folded : SoftmaxModel
        ``SoftmaxModel.from_estimator(estimator)``, over the pipeline's encoded features, with its
        ``schema``.
    """

    filename: str
    sha256: str
    estimator: object
    folded: SoftmaxModel

    @property
    def schema(self):
        return self.folded.schema


@dataclass(frozen=True)
class Level:
    """One level of a categorical or ordinal column as the pages show it."""

    value: object  # as it is written in a row (NaN for a missing value kept as a category)
    label: str  # as it is shown
    encoded: tuple[float, ...]  # the pipeline's encoded features of the column for this level
    note: str = ""  # "dropped by the encoder", "pooled as infrequent", "not seen by the encoder", ...


@dataclass(frozen=True)
class ShownColumn:
    """A column of the pipeline's input and the pages' features that stand for it.

    ``kind`` is the schema's (numeric, categorical, ordinal); ``features`` the pages' features (one
    for a numeric column, one per level otherwise); ``levels`` categorical and ordinal only.
    """

    name: str
    kind: str
    features: tuple[int, ...]
    levels: tuple[Level, ...] = ()


@dataclass(frozen=True, eq=False)
class PipelineTable:
    """What a pipeline makes of a table: the pages' dataset and model, and the check against the pipeline.

    Attributes
    ----------
    pipeline : LoadedPipeline
    dataset : Dataset
        The rows the pipeline reads, in the pages' features (``table`` and ``table_rows`` say which rows
        of the table they are).
    model : SoftmaxModel
        ``softmax(A M x + A c + b)`` over those features (module docstring); classes as the pipeline's.
    columns : tuple of ShownColumn
        The input columns the model depends on, in the pipeline's order.
    constant : tuple of (str, object)
        Categorical columns with a single level (folded into the intercept, not shown).
    fold_error : float
        ``max |p(x) - pipeline.predict_proba(row)|`` over every row read (the pages' model).
    encoded_fold_error : float
        The same for the folded model over the pipeline's own encoded features.
    accuracy : float
        Of ``pipeline.predict`` on the rows read.
    notes : tuple of str
        Rows left out and why.
    """

    pipeline: LoadedPipeline
    dataset: Dataset
    model: SoftmaxModel
    columns: tuple[ShownColumn, ...]
    constant: tuple
    fold_error: float
    encoded_fold_error: float
    accuracy: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class RowCheck:
    """An answer written back as a row and judged by the pipeline itself.

    ``row`` has the pipeline's input columns: changed columns take the answer's values, the others keep
    the source's (a missing value stays missing and is imputed as before). ``imputed`` lists the
    source's missing entries the pipeline fills, with the value it uses.
    """

    row: pd.DataFrame
    changed: tuple[str, ...]
    predicted: object
    proba: np.ndarray
    imputed: tuple = ()


# -- loading ----------------------------------------------------------------------------------------
def load(raw: bytes, filename: str) -> LoadedPipeline:
    """The pipeline in an untrusted ``.skops`` file, loaded through :func:`solver.load_estimator` (only
    the types it folds are trusted, checked before anything is built; never a pickle) and folded.

    Raises
    ------
    PipelineError
        Naming the step that is not supported and saying what is.
    """
    name = str(filename).replace("\\", "/").rsplit("/", 1)[-1] or "model"
    try:
        estimator = load_estimator(raw, name)
    except ModelFileError as exc:
        raise PipelineError(str(exc)) from None
    try:
        folded = SoftmaxModel.from_estimator(estimator)
    except UnsupportedEstimatorError as exc:
        raise PipelineError(f"{name} was not loaded: {exc}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise PipelineError(f"{name} could not be folded into a softmax model ({exc})") from None
    return LoadedPipeline(filename=name, sha256=hashlib.sha256(bytes(raw)).hexdigest(), estimator=estimator,
                          folded=folded)


def missing_columns(pipeline: LoadedPipeline, table: RawTable | None) -> list[str] | None:
    """The pipeline's input columns the table lacks ([] when it has them all); None when the pipeline
    was fitted on an array (columns by position, not by name) or there is no table."""
    if table is None or not pipeline.schema.named_columns:
        return None
    return [c for c in pipeline.schema.column_names if c not in table.frame.columns]


# -- reading a table --------------------------------------------------------------------------------
def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _key(value):
    """A hashable key for a cell: missing values share one key; numpy scalars become Python values
    (so 2007, 2007.0 and np.int64(2007) are one level, as for the encoder)."""
    if _missing(value):
        return _MISSING
    return value.item() if isinstance(value, np.generic) else value


def _text(value) -> str:
    """A class label or level as text: 1.0 reads as "1" (a label column with a gap is read as floats)."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _template(schema) -> list:
    """A row every column of which the pipeline reads: a value to vary one column at a time."""
    values = []
    for column in schema.columns:
        if column.kind == NUMERIC:
            values.append(0.0)
        elif column.kind in (CATEGORICAL, ORDINAL) and column.levels:
            values.append(column.levels[0])
        else:
            values.append(None)
    return values


def _encoded_value(schema, template, position, features, value):
    """The column's encoded features for ``value`` (``schema.encode`` on the template row with this one
    value), whether the pipeline imputes it, or the pipeline's refusal as a message."""
    row = list(template)
    row[position] = None if _missing(value) else value
    try:
        encoded = schema.encode(row)
    except ValueError as exc:
        return None, False, str(exc)
    name = schema.columns[position].name
    return tuple(float(v) for v in encoded.x[list(features)]), any(c == name for c, _ in encoded.imputed), ""


def _level_notes(column) -> dict:
    """Why a known level shares or lacks an encoded feature."""
    notes = {}
    if column.kind != CATEGORICAL:
        return notes
    counts = Counter(f for f in column.level_features if f >= 0)
    for level, feature in zip(column.levels, column.level_features):
        if feature < 0:
            notes[_key(level)] = "dropped by the encoder: all its columns 0"
        elif counts[feature] > 1:
            notes[_key(level)] = "pooled as infrequent"
    return notes


def _read_numeric(column, series):
    """Encoded values of a numeric column: a missing entry takes the imputer's value (or the row is
    unreadable), anything else must be a finite number (as ``FeatureSchema.encode``)."""
    missing = series.isna().to_numpy()
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    values = np.where(missing, np.nan if column.fill is None else float(column.fill), numbers)
    problems = {}
    if column.fill is None and missing.any():
        problems[MISSING_NOT_IMPUTED] = missing
    wrong = ~missing & np.isnan(numbers)
    if wrong.any():
        problems["not a number"] = wrong
    infinite = ~missing & np.isinf(numbers)
    if infinite.any():
        problems["infinite"] = infinite
    return values, problems


def _read_levels(schema, template, position, series):
    """The levels of a categorical or ordinal column (the encoder's, then values only the table has)
    and each row's level (-1: unreadable, with the reasons)."""
    column = schema.columns[position]
    notes = _level_notes(column)
    levels, index = [], {}

    def add(key, value, encoded, note):
        index[key] = len(levels)
        levels.append(Level(value=value, label="", encoded=encoded, note=note))

    for level in column.levels:
        encoded, _, problem = _encoded_value(schema, template, position, column.features, level)
        if problem:  # the encoder refuses its own level: cannot happen for a fitted encoder
            raise PipelineError(f"column {column.name!r}: the pipeline refuses its own level {level!r} ({problem})")
        add(_key(level), level, encoded, notes.get(_key(level), ""))
    values = series.to_numpy(dtype=object)
    distinct: dict = {}
    inverse = np.array([distinct.setdefault(_key(v), len(distinct)) for v in values], dtype=np.int64)
    codes = np.full(len(values), -1)
    problems = {}
    for key, d in distinct.items():
        rows = inverse == d
        value = values[int(np.argmax(rows))]
        encoded, imputed, problem = _encoded_value(schema, template, position, column.features, value)
        if problem:
            problems[MISSING_NOT_IMPUTED if key is _MISSING else problem] = rows
            continue
        level_key = _key(column.fill) if imputed else key
        if level_key not in index:  # a value only the table has: missing kept as a category, or unseen
            add(level_key, np.nan if key is _MISSING else value, encoded, "not seen by the encoder")
        codes[rows] = index[level_key]
    labels = [("(missing)" if _key(level.value) is _MISSING else _text(level.value)) for level in levels]
    for i, label in enumerate(labels):
        if labels.count(label) > 1:  # e.g. 1 and "1": tell them apart
            labels[i] = f"{label} ({type(levels[i].value).__name__})"
    levels = [Level(value=level.value, label=label, encoded=level.encoded, note=level.note)
              for level, label in zip(levels, labels)]
    return levels, codes, problems


def _class_codes(classes, labels: pd.Series):
    """Each row's class index among the pipeline's classes (-1: missing or not one of them)."""
    by_text = {_text(c): k for k, c in enumerate(classes)}
    codes = np.array([-1 if _missing(v) else by_text.get(_text(v), -1) for v in labels.to_numpy(dtype=object)])
    unknown = sorted({_text(v) for v, c in zip(labels, codes) if c < 0 and not _missing(v)})
    return codes, labels.isna().to_numpy(), unknown


@dataclass(frozen=True, eq=False)
class _Shown:
    """The pages' features of every row of a table (unreadable rows included, flagged)."""

    columns: tuple[ShownColumn, ...]
    constant: tuple
    X: np.ndarray  # (n rows, shown features)
    M: np.ndarray  # (encoded features, shown features): z = M x + offset
    offset: np.ndarray
    names: tuple[str, ...]
    encoding: TabularEncoding
    readable: np.ndarray  # (n rows,) bool
    reasons: tuple[str, ...]


def _shown_columns(schema, frame: pd.DataFrame) -> _Shown:
    template = _template(schema)
    columns, constant, blocks, parts, names, groups, numeric_index, reasons = [], [], [], [], [], [], [], []
    not_imputed = {}
    offset = np.zeros(schema.n_features)
    readable = np.ones(len(frame), dtype=bool)
    n_shown = 0
    for position, column in enumerate(schema.columns):
        if column.kind == UNUSED or not column.features:
            continue
        series = frame[column.name]
        if column.kind == NUMERIC:
            values, problems = _read_numeric(column, series)
            levels = ()
            block, part = values[:, None], np.zeros((schema.n_features, 1))
            part[column.features[0], 0] = 1.0
        else:
            levels, codes, problems = _read_levels(schema, template, position, series)
            block = np.zeros((len(frame), len(levels)))
            ok = codes >= 0
            block[np.flatnonzero(ok), codes[ok]] = 1.0
            part = np.zeros((schema.n_features, len(levels)))
            for j, level in enumerate(levels):
                part[list(column.features), j] = level.encoded
        for why, mask in problems.items():
            readable &= ~mask
            if why == MISSING_NOT_IMPUTED:
                not_imputed[column.name] = int(mask.sum())
            else:
                reasons.append(f"{int(mask.sum())} with {column.name!r} {why}" if column.kind == NUMERIC
                               else f"{int(mask.sum())} where {why}")
        if column.kind != NUMERIC and len(levels) == 1:  # a single state: a constant, part of the intercept
            offset[list(column.features)] += levels[0].encoded
            constant.append((column.name, levels[0].value))
            continue
        features = tuple(range(n_shown, n_shown + block.shape[1]))
        if column.kind == NUMERIC:
            numeric_index.append((column.name, features[0]))
            names.append(column.name)
        else:
            groups.append(CategoricalGroup(column.name, tuple(level.label for level in levels), features))
            names.extend(f"{column.name}={level.label}" for level in levels)
        columns.append(ShownColumn(column.name, column.kind, features, tuple(levels)))
        blocks.append(block)
        parts.append(part)
        n_shown += block.shape[1]
        if n_shown > MAX_SHOWN_FEATURES:
            raise PipelineError(f"the pipeline's columns give more than {MAX_SHOWN_FEATURES:,} features (one per "
                                "level of every categorical column); at most that many are supported")
    if not columns:
        raise PipelineError("the model depends on none of the pipeline's input columns")
    if not_imputed:
        reasons.insert(0, "missing values the pipeline does not impute (" + ", ".join(
            f"{name}: {count}" for name, count in not_imputed.items()) + ")")
    encoding = TabularEncoding(tuple(numeric_index), tuple(groups), tuple(c.name for c in columns))
    return _Shown(columns=tuple(columns), constant=tuple(constant), X=np.hstack(blocks), M=np.hstack(parts),
                  offset=offset, names=tuple(names), encoding=encoding, readable=readable, reasons=tuple(reasons))


def read_table(pipeline: LoadedPipeline, table: RawTable, name: str | None = None) -> PipelineTable:
    """The rows of ``table`` the pipeline reads, as the pages' dataset and model (module docstring).

    Rows whose class is missing or not one of the pipeline's, and rows the pipeline itself would refuse
    (a missing value it does not impute, a level its encoder has not seen with
    ``handle_unknown="error"``, text in a numeric column), are left out and counted in ``notes``.

    Raises
    ------
    PipelineError
        The table lacks the pipeline's columns, the pipeline reads the class column, no row is left,
        or the pipeline does not reproduce its fold (a bug).
    """
    schema = pipeline.schema
    missing = missing_columns(pipeline, table)
    if missing is None:
        raise PipelineError(f"{pipeline.filename} was fitted on an array (columns by position), so it cannot "
                            "read a table by column names; fit it on a DataFrame and save it again")
    if missing:
        raise PipelineError(f"the table lacks the pipeline's input column(s) {', '.join(map(repr, missing[:10]))}; "
                            f"its columns are {', '.join(map(repr, table.frame.columns[:20]))}")
    if table.target in schema.column_names:
        raise PipelineError(f"the pipeline reads the class column {table.target!r} as an input; pick the column it "
                            "predicts as the class column")
    frame = table.frame
    estimator, folded = pipeline.estimator, pipeline.folded
    classes = list(folded.classes)
    y, no_class, unknown = _class_codes(classes, frame[table.target])
    readable = y >= 0
    reasons = []
    if no_class.any():
        reasons.append(f"{int(no_class.sum())} with no class")
    if unknown:
        listed = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        reasons.append(f"{int((~readable & ~no_class).sum())} whose class ({listed}) is not one of the pipeline's "
                       f"({', '.join(_text(c) for c in classes)})")

    shown = _shown_columns(schema, frame)
    readable &= shown.readable
    reasons.extend(shown.reasons)
    rows = np.flatnonzero(readable)
    left_out = len(frame) - rows.size
    notes = [f"{left_out} of {len(frame)} rows left out: " + "; ".join(reasons)] if left_out else []
    if rows.size == 0:
        raise PipelineError(f"the pipeline reads none of the table's {len(frame)} rows ({'; '.join(reasons)})")

    X, M, offset = np.ascontiguousarray(shown.X[rows]), shown.M, shown.offset
    if not np.all(np.isfinite(X)):  # every unreadable entry has left with its row
        raise PipelineError("the table has non-finite values where the pipeline reads numbers")
    model = SoftmaxModel(folded.coef @ M, folded.intercept + folded.coef @ offset, classes=classes,
                         feature_names=shown.names)
    inputs = frame.iloc[rows][list(schema.column_names)]
    try:
        reference = np.asarray(estimator.predict_proba(inputs), dtype=float)
        predicted = estimator.predict(inputs)
    except Exception as exc:  # the user's pipeline on the user's table: report it, whatever it is
        raise PipelineError(f"the pipeline could not score the table ({type(exc).__name__}: {exc})") from None
    fold_error = float(np.max(np.abs(model.predict_proba(X) - reference)))
    encoded_fold_error = float(np.max(np.abs(folded.predict_proba(X @ M.T + offset) - reference)))
    if not fold_error <= AGREEMENT:
        worst = int(np.argmax(np.max(np.abs(model.predict_proba(X) - reference), axis=1)))
        raise PipelineError(f"the folded model's probabilities differ from the pipeline's by {fold_error:.2e} at "
                            f"row {int(rows[worst])}; this is a bug in the fold, please report it")
    y = y[rows]
    by_text = {_text(c): k for k, c in enumerate(classes)}
    accuracy = float(np.mean([by_text.get(_text(p), -1) == k for p, k in zip(predicted, y)]))
    description = (f"{table.description} Read by the pipeline in {pipeline.filename}: {rows.size:,} of "
                   f"{len(frame):,} rows.").strip()
    if notes:
        description += " " + " ".join(notes) + "."
    dataset = Dataset(name=name or table.name, X=X, y=y.astype(np.int64), class_names=tuple(_text(c) for c in classes),
                      feature_names=tuple(shown.names), kind="tabular", encoding=shown.encoding,
                      description=description, table=table, table_rows=rows)
    return PipelineTable(pipeline=pipeline, dataset=dataset, model=model, columns=shown.columns,
                         constant=shown.constant, fold_error=fold_error, encoded_fold_error=encoded_fold_error,
                         accuracy=accuracy, notes=tuple(notes))


# -- answers as rows --------------------------------------------------------------------------------
def _level(column: ShownColumn, x) -> int:
    return int(np.argmax(np.asarray(x)[list(column.features)]))


def _assign(frame: pd.DataFrame, name: str, value) -> None:
    """Write ``value`` into the one-row ``frame``, keeping the column's dtype when that loses nothing."""
    new = pd.Series([value], index=frame.index)
    try:
        converted = new.astype(frame[name].dtype)
        if _missing(value) or bool((converted == new).all()):  # a missing value: the column's own NA
            frame[name] = converted
            return
    except (TypeError, ValueError):
        pass
    frame[name] = new.astype(object) if isinstance(value, str) else new


def answer_row(read: PipelineTable, index: int, x) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Row ``index`` of the dataset with the answer ``x`` (the pages' features) written in: a numeric
    column takes x's value where it differs from the source's, a categorical or ordinal column the
    level its one-hot group holds. Returns the one-row frame (the pipeline's input columns) and the
    columns that changed."""
    x, x0 = np.asarray(x, dtype=float), read.dataset.X[index]
    source = read.dataset.source_rows([index])[list(read.pipeline.schema.column_names)]
    row, changed = source.copy(), []
    for column in read.columns:
        if column.kind == NUMERIC:
            j = column.features[0]
            if x[j] != x0[j]:
                _assign(row, column.name, float(x[j]))
                changed.append(column.name)
        elif _level(column, x) != _level(column, x0):
            _assign(row, column.name, column.levels[_level(column, x)].value)
            changed.append(column.name)
    return row, tuple(changed)


def check_answer(read: PipelineTable, index: int, x) -> RowCheck:
    """The answer as a row, and what the pipeline itself predicts for it."""
    row, changed = answer_row(read, index, x)
    estimator = read.pipeline.estimator
    proba = np.asarray(estimator.predict_proba(row), dtype=float)[0]
    imputed = []
    for column in read.pipeline.schema.columns:
        if column.name not in changed and column.fill_note and _missing(row[column.name].iloc[0]):
            imputed.append((column.name, column.fill))
    return RowCheck(row=row, changed=changed, predicted=estimator.predict(row)[0], proba=proba, imputed=tuple(imputed))


def check_sentence(read: PipelineTable, check: RowCheck, shown_predicted: int) -> tuple[str, bool]:
    """One line on the pipeline's own verdict, and whether it agrees with the model the page shows."""
    names = [_text(c) for c in read.model.classes]
    predicted = _text(check.predicted)
    agrees = predicted == names[shown_predicted]
    k = names.index(predicted) if predicted in names else int(np.argmax(check.proba))
    line = (f"Checked with your pipeline ({read.pipeline.filename}): it predicts {predicted} for this row "
            f"(p = {check.proba[k]:.4f}).")
    if not agrees:
        line = (f"Your pipeline ({read.pipeline.filename}) predicts {predicted} for this row, not "
                f"{names[shown_predicted]}; please report this.")
    if check.imputed:
        line += " Missing in the source row, imputed by the pipeline: " + ", ".join(
            f"{name} = {_text(value)}" for name, value in check.imputed) + "."
    return line, agrees


def answer_csv(read: PipelineTable, index: int, x) -> bytes:
    """The source row and the answer in the pipeline's input columns, with what the pipeline predicts for
    each: the answer line can be fed back to ``pipeline.predict`` as it is."""
    check = check_answer(read, index, x)
    source = read.dataset.source_rows([index])[list(read.pipeline.schema.column_names)]
    estimator = read.pipeline.estimator
    frame = pd.concat([source.astype(object), check.row.astype(object)], ignore_index=True)
    frame.insert(0, "row", ["source", "counterfactual"])
    frame["predicted by the pipeline"] = [_text(estimator.predict(source)[0]), _text(check.predicted)]
    return frame.to_csv(index=False).encode()


# -- what the Model page shows -----------------------------------------------------------------------
def columns_table(read: PipelineTable) -> pd.DataFrame:
    """One line per input column of the pipeline: its kind, how many encoded features it becomes, its
    levels (or range), and what fills a missing value."""
    schema = read.pipeline.schema
    shown = {c.name: c for c in read.columns}
    constant = dict(read.constant)
    rows = []
    for column in schema.columns:
        kind = "constant" if column.name in constant else column.kind
        details = ""
        if column.name in shown and shown[column.name].levels:
            details = ", ".join(level.label + (f" ({level.note})" if level.note else "")
                                for level in shown[column.name].levels[:30])
        elif column.name in constant:
            details = f"only {_text(constant[column.name])}"
        elif column.kind == NUMERIC and column.range_note:
            details = f"range [{column.lower:g}, {column.upper:g}] ({column.range_note})"
        rows.append({"column": column.name, "kind": kind, "encoded features": len(column.features),
                     "levels / range": details, "missing values": column.fill_note or ""})
    return pd.DataFrame(rows, columns=["column", "kind", "encoded features", "levels / range", "missing values"])


def columns_by_kind(read: PipelineTable) -> dict[str, list[str]]:
    """Input column names per kind (numeric, categorical, ordinal, constant, unused)."""
    table = columns_table(read)
    return {kind: table.column[table.kind == kind].tolist() for kind in
            (NUMERIC, CATEGORICAL, ORDINAL, "constant", UNUSED) if (table.kind == kind).any()}
