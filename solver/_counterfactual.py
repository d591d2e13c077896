"""``counterfactual``: a scikit-learn pipeline and a pandas row in, a pandas row out.

The thin adapter that speaks pandas and scikit-learn's types; the numerical work is
:func:`solver._tabular.solve_columns` (numpy). Every answer is checked with the pipeline itself:
``success=True`` only if ``pipeline.predict(cf.row)`` is the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._model import SoftmaxModel
from ._schema import NUMERIC, ORDINAL, UNUSED
from ._tabular import DEFAULT_MARGIN, ColumnFacts, solve_columns

_AGREEMENT = 1e-8  # folded vs pipeline probabilities at the source row; the fold is exact to round-off


@dataclass(frozen=True, eq=False)
class RowCounterfactual:
    """The answer of :func:`counterfactual`, in the pipeline's own columns.

    Attributes
    ----------
    row : DataFrame (1 row)
        The counterfactual with the pipeline's input columns, categories as their levels; unchanged
        columns keep the source's values (a missing value stays missing). When ``success`` is True,
        ``pipeline.predict(row)`` is the target (checked).
    changes : DataFrame
        One line per column the model reads: ``column``, ``kind``, ``before``, ``after``, ``change``
        (after - before in the column's units; levels moved for an ordinal column; empty for a
        categorical one), ``changed`` and ``note`` (imputed values); changed columns first.
    proba : Series
        ``pipeline.predict_proba(row)`` by class label.
    predicted : object
        ``pipeline.predict(row)[0]``.
    target : object
        The class label asked for.
    success : bool
    message : str
    distance : float
        ``sqrt(sum_j cost_j (x_j - x0_j)^2)`` over the encoded columns (every level of a categorical
        column counted, so a level change costs ``cost_a + cost_b``).
    changed : tuple of str
        Columns that changed.
    notes : tuple of str
        What the answer assumed: imputed values, unseen categories, ranges, rounding.
    result : object
        The underlying solver result (``CounterfactualResult``, ``InversionResult``, or recourse's).
    x, x0 : ndarray
        Encoded features (the model's) of ``row`` and of the source.
    model : SoftmaxModel
        The folded model, with its ``schema``.
    source : DataFrame
        The source row, restricted to the pipeline's input columns.
    """

    row: pd.DataFrame
    changes: pd.DataFrame
    proba: pd.Series
    predicted: object
    target: object
    success: bool
    message: str
    distance: float
    changed: tuple
    notes: tuple
    result: object
    x: np.ndarray
    x0: np.ndarray
    model: SoftmaxModel
    source: pd.DataFrame


def counterfactual(pipeline, row, target, *, question="flip", alpha=None, lam=None, immutable=(), bounds=None,
                   cost=None, max_changes=None, data=None, model=None) -> RowCounterfactual:
    r"""The closest row, in the pipeline's own columns, that the pipeline assigns to ``target``.

    The pipeline is folded (:meth:`SoftmaxModel.from_estimator`) into ``p(x) = softmax(A x + b)`` over
    its encoded columns ``x``; the question is solved exactly there with categorical columns as
    choices between their real levels, and the answer is written back as a row.

    - ``question="flip"``: :math:`\min_x \sum_j c_j (x_j - x_{0j})^2` such that the target's logit
      leads every other class (by a margin of 1e-6) -- :func:`solver.minimal_flip`.
    - ``question="probability"``: the same distance such that :math:`p_k(x) \ge \alpha` --
      :func:`solver.closest_with_probability`.
    - ``question="lam"``: the minimiser of :math:`\tfrac{\lambda}{2}\sum_j c_j (x_j - x_{0j})^2 - \log p_k(x)`
      -- :func:`solver.invert`, categorical columns held at their levels; it is a success only if the
      minimiser is predicted as the target.

    Parameters
    ----------
    pipeline : fitted scikit-learn estimator or Pipeline
        One that :meth:`SoftmaxModel.from_estimator` folds.
    row : DataFrame (one row), Series, dict or sequence
        The source, with (at least) the pipeline's input columns.
    target : class label
        As the estimator knows it (``"Gentoo"``, ``1``; an entry of ``pipeline.classes_``).
    question : "flip", "probability" or "lam"
    alpha : float in (0, 1)
        For ``question="probability"`` (take alpha > 0.5 so that the target is also the predicted class).
    lam : float > 0
        For ``question="lam"``.
    immutable : sequence of column names
        Columns that must not change; a categorical column is locked as a whole.
    bounds : dict, optional
        Column -> ``(lower, upper)`` in the column's units (None: open); an ordinal column takes levels
        or codes. Default: the range observed in ``data``, else the range the pipeline knows
        (MinMaxScaler), widened to include the source's value.
    cost : dict, optional
        Column -> weight ``c_j`` of its squared change. Default ``1/s^2`` with ``s`` the column's
        standard deviation in ``data``, else the spread the pipeline's scaler divides by, else 1; 1
        per one-hot column.
    max_changes : int, optional
        At most this many columns change (a categorical column counts once): needs
        ``solver.recourse``.
    data : DataFrame, optional
        The training table: numeric columns whose values are all whole are held to whole values, and
        its ranges and spreads give the defaults above. Columns with an integer dtype in ``row`` are
        whole-valued too.
    model : SoftmaxModel, optional
        ``SoftmaxModel.from_estimator(pipeline)``, to fold once and reuse across many calls.

    Returns
    -------
    RowCounterfactual

    Notes
    -----
    Whole values and ``max_changes`` go to ``solver.recourse`` (an exact mixed-integer search) when it
    is available. Without it, whole values are obtained by rounding the continuous answer and
    re-solving the continuous columns exactly (valid, said in ``notes``, not certified optimal over the
    integers) and ``max_changes`` raises ``NotImplementedError``. Categorical columns change level one
    column at a time in :func:`solver.minimal_flip`'s enumeration.

    Examples
    --------
    >>> cf = counterfactual(pipeline, penguins.iloc[[0]], "Gentoo", immutable=["island", "sex"])  # doctest: +SKIP
    >>> cf.changes[cf.changes.changed]  # doctest: +SKIP
    """
    if model is None:
        model = SoftmaxModel.from_estimator(pipeline)
    elif not isinstance(model, SoftmaxModel) or model.schema is None:
        raise ValueError("model must be SoftmaxModel.from_estimator(pipeline) (a model with a feature schema)")
    schema = model.schema
    source = _source_row(row, schema)
    values = [None if _missing(v) else v for v in source.iloc[0].tolist()]
    target_index = _target_index(model.classes, target)
    facts = {} if data is None else _data_facts(data, schema)
    integer = {c.name for c in schema.of_kind(NUMERIC)
               if (c.name in facts and facts[c.name].whole) or pd.api.types.is_integer_dtype(source[c.name].dtype)}

    as_input = _input_adapter(pipeline, schema)
    answer = solve_columns(model, values, target_index, question=question, alpha=alpha, lam=lam, immutable=immutable,
                           bounds=bounds, cost=cost, max_changes=max_changes, facts=facts, integer=integer)
    folded = model.predict_proba(answer.x0)
    reference = np.asarray(pipeline.predict_proba(as_input(source)), dtype=float)[0]
    if np.max(np.abs(folded - reference)) > _AGREEMENT:
        raise RuntimeError(f"the folded model's probabilities differ from the pipeline's by "
                           f"{np.max(np.abs(folded - reference)):.2e} at this row; this is a bug in the fold")
    margin = DEFAULT_MARGIN
    for _ in range(3):
        out = _write_row(source, answer.values, answer.changed)
        predicted = pipeline.predict(as_input(out))[0]
        valid = _same_label(predicted, model.classes[target_index])
        if valid or not answer.success or question == "lam":
            break
        margin *= 1e3  # the pipeline's own arithmetic disagrees at the boundary: move further inside
        answer = solve_columns(model, values, target_index, question=question, alpha=alpha, lam=lam,
                               immutable=immutable, bounds=bounds, cost=cost, max_changes=max_changes, facts=facts,
                               integer=integer, margin=margin)
    success, message = answer.success and valid, answer.message
    if answer.success and not valid:
        message = f"the pipeline predicts {predicted!r} for the answer, not {target!r}: {message}"
    proba = pd.Series(np.asarray(pipeline.predict_proba(as_input(out)), dtype=float)[0],
                      index=pd.Index(list(model.classes), name="class"), name="probability")
    return RowCounterfactual(row=out, changes=_changes_table(schema, source, out, answer), proba=proba,
                             predicted=predicted, target=target, success=bool(success), message=message,
                             distance=answer.distance, changed=answer.changed, notes=answer.notes,
                             result=answer.result, x=answer.x, x0=answer.x0, model=model, source=source)


def encode_rows(model, frame) -> np.ndarray:
    """The model features of every row of ``frame`` (the pipeline's input columns), shape (n, D).

    Missing values are imputed and unseen categories encoded as the pipeline does; ``ValueError``
    naming the row and the column when the pipeline itself would refuse a value.
    """
    schema = getattr(model, "schema", None)
    if schema is None:
        raise ValueError("model must be SoftmaxModel.from_estimator(pipeline) (a model with a feature schema)")
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(np.asarray(frame, dtype=object), columns=list(schema.column_names))
    missing = [c for c in schema.column_names if c not in frame.columns]
    if missing:
        raise ValueError(f"the table lacks the pipeline's input column(s) {', '.join(map(repr, missing[:10]))}")
    X = np.empty((len(frame), schema.n_features))
    for i, row in enumerate(frame[list(schema.column_names)].itertuples(index=False)):
        try:
            X[i] = schema.encode([None if _missing(v) else v for v in row]).x
        except ValueError as exc:
            raise ValueError(f"row {frame.index[i]!r}: {exc}") from None
    return X


def fold_error(pipeline, frame, model=None) -> float:
    """``max |p_folded - pipeline.predict_proba|`` over the rows of ``frame``: how exactly the folded
    model reproduces the pipeline (round-off, about 1e-15, for every supported pipeline)."""
    model = SoftmaxModel.from_estimator(pipeline) if model is None else model
    data = frame if model.schema.named_columns else np.asarray(frame)
    reference = np.asarray(pipeline.predict_proba(data), dtype=float)
    return float(np.max(np.abs(model.predict_proba(encode_rows(model, frame)) - reference)))


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _source_row(row, schema) -> pd.DataFrame:
    """A one-row DataFrame with exactly the pipeline's input columns, in its order."""
    names = list(schema.column_names)
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"row must be a single row; got a DataFrame with {len(row)} rows (use df.iloc[[i]])")
        frame = row
    elif isinstance(row, pd.Series):
        frame = row.to_frame().T.infer_objects()
    elif isinstance(row, dict):
        frame = pd.DataFrame({k: [v] for k, v in row.items()})
    else:
        values = list(np.asarray(row, dtype=object).ravel())
        if len(values) != len(names):
            raise ValueError(f"row has {len(values)} values but the pipeline reads {len(names)} columns")
        frame = pd.DataFrame([values], columns=names).infer_objects()
    if not schema.named_columns and list(map(str, frame.columns)) != names and frame.shape[1] == len(names):
        frame = frame.set_axis(names, axis=1)
    frame = frame.rename(columns=str)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"row lacks the pipeline's input column(s) {', '.join(map(repr, missing[:10]))}")
    return frame[names].copy()


def _input_adapter(pipeline, schema):
    """How to hand a row to the pipeline: as the DataFrame, or as an array when it was fitted on one."""
    if schema.named_columns:
        return lambda frame: frame
    return lambda frame: frame.to_numpy()


def _same_label(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _target_index(classes, target) -> int:
    labels = list(classes)
    exact = [i for i, c in enumerate(labels) if type(c) is not bool and _same_label(c, target)]
    if len(exact) == 1:
        return exact[0]
    by_text = [i for i, c in enumerate(labels) if str(c) == str(target)]
    if len(by_text) == 1:
        return by_text[0]
    raise ValueError(f"target {target!r} is not a class of the estimator; its classes are "
                     f"{', '.join(repr(c) for c in labels)}")


def _data_facts(data, schema) -> dict:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a DataFrame with the pipeline's input columns, got {type(data).__name__}")
    facts = {}
    for column in schema.columns:
        if column.kind not in (NUMERIC, ORDINAL) or column.name not in data.columns:
            continue
        if column.kind == NUMERIC:
            values = pd.to_numeric(data[column.name], errors="coerce").to_numpy(dtype=float)
        else:
            codes = [column.code_of(v) for v in data[column.name].tolist()]
            values = np.array([np.nan if c is None else c for c in codes], dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        facts[column.name] = ColumnFacts(lower=float(values.min()), upper=float(values.max()),
                                         spread=float(values.std()), whole=bool(np.all(values == np.round(values))))
    return facts


def _write_row(source: pd.DataFrame, values, changed) -> pd.DataFrame:
    out = source.copy()
    for position, name in enumerate(source.columns):
        if name not in changed:
            continue
        value = values[position]
        new = pd.Series([value], index=out.index)
        try:
            if pd.api.types.is_integer_dtype(out[name].dtype) and not float(value).is_integer():
                raise ValueError("not whole")
            converted = new.astype(out[name].dtype)
            if not (converted == new).all():
                raise ValueError("lossy")
            out[name] = converted
        except (TypeError, ValueError):
            out[name] = new.astype(object) if isinstance(value, str) else new
    return out


def _changes_table(schema, source, out, answer) -> pd.DataFrame:
    imputed = dict(answer.imputed)
    rows = []
    for column in schema.columns:
        if column.kind == UNUSED:
            continue
        before, after = source[column.name].iloc[0], out[column.name].iloc[0]
        changed = column.name in answer.changed
        note = ""
        if column.name in imputed:
            note = f"missing; imputed as {imputed[column.name]!r}"
        change = None
        if changed and column.kind == NUMERIC:
            start = imputed.get(column.name, before)
            change = float(after) - float(start)
        elif changed and column.kind == ORDINAL:
            start = column.code_of(imputed.get(column.name, before))
            change = None if start is None else column.code_of(after) - start
        rows.append({"column": column.name, "kind": column.kind, "before": before, "after": after, "change": change,
                     "changed": changed, "note": note})
    table = pd.DataFrame(rows, columns=["column", "kind", "before", "after", "change", "changed", "note"])
    if len(table):
        table = table.sort_values("changed", ascending=False, kind="stable").reset_index(drop=True)
    return table
