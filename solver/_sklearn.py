"""Fold fitted scikit-learn pipelines into ``softmax(A x + b)`` and a feature schema.

Duck-typed: scikit-learn is never imported here; a step is recognised by its class name *and* by its
class living in scikit-learn (a user's subclass may override ``transform`` and is refused).

Every supported pipeline is a softmax of an affine function of its encoded columns. The fold follows
each input column through the steps as an affine function ``t = a z + c`` of one model feature ``z``
(the column's value, a one-hot indicator or an ordinal code) and adds the final estimator's weights
``W t + w0`` up: ``A[:, z] += W[:, t] a`` and ``b += W[:, t] c``. Exact, no sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._schema import CATEGORICAL, NUMERIC, ORDINAL, UNUSED, FeatureSchema, SchemaColumn, is_missing, same_level

FINAL_ESTIMATORS = ("LogisticRegression", "LogisticRegressionCV", "SGDClassifier", "LinearDiscriminantAnalysis")
SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler")
TRANSFORMERS = ("Pipeline", "ColumnTransformer", *SCALERS, "OneHotEncoder", "OrdinalEncoder", "SimpleImputer",
                "FunctionTransformer")
SUPPORTED = (
    "supported: a Pipeline or ColumnTransformer (remainder 'drop' or 'passthrough', columns by name or index) of "
    "StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, OneHotEncoder, OrdinalEncoder and SimpleImputer, "
    "ending in LogisticRegression, LogisticRegressionCV, SGDClassifier(loss='log_loss', two classes) or "
    "LinearDiscriminantAnalysis"
)


class UnsupportedEstimatorError(ValueError):
    """A step that cannot be folded into a softmax model. ``step`` names it (``'pre' > 'num' > 'poly'``)."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


def sklearn_name(obj) -> str | None:
    """The class name of a scikit-learn object, None for anything defined elsewhere."""
    cls = type(obj)
    return cls.__name__ if str(cls.__module__).split(".")[0] == "sklearn" else None


def _where(path) -> str:
    return "the estimator" if not path else "step " + " > ".join(repr(str(p)) for p in path)


def _refuse(path, obj, reason: str):
    cls = type(obj).__name__
    where = _where(path)
    raise UnsupportedEstimatorError(where, f"{where} ({cls}) cannot be folded into a softmax model: {reason}; "
                                           f"{SUPPORTED}")


# -- the final estimator ------------------------------------------------------------------------------
def _final_parameters(est, path):
    """``(W, w0, classes)`` with ``softmax(W t + w0)`` equal to the estimator's ``predict_proba``."""
    name = sklearn_name(est)
    if name not in FINAL_ESTIMATORS:
        reason = ("it is a subclass defined outside scikit-learn" if type(est).__name__ in FINAL_ESTIMATORS
                  else "its probabilities are not a softmax of an affine function")
        _refuse(path, est, reason)
    if not hasattr(est, "coef_") or not hasattr(est, "classes_"):
        _refuse(path, est, "it is not fitted (it has no coef_)")
    classes = np.asarray(est.classes_)
    n_classes = len(classes)
    if name in ("LogisticRegression", "LogisticRegressionCV") and n_classes > 2:
        multi_class = getattr(est, "multi_class", "auto")
        if multi_class == "ovr" or (multi_class == "auto" and getattr(est, "solver", "") == "liblinear"):
            _refuse(path, est, "it was fitted one-vs-rest (multi_class='ovr' or solver='liblinear'), whose "
                               "probabilities are not a softmax; refit it with the default multinomial setting")
    if name == "SGDClassifier":
        if getattr(est, "loss", None) not in ("log_loss", "log"):
            _refuse(path, est, f"loss={est.loss!r} has no softmax probabilities; use loss='log_loss'")
        if n_classes > 2:
            _refuse(path, est, "with more than two classes SGDClassifier is fitted one-vs-rest and its "
                               "probabilities are normalised sigmoids, not a softmax")
    coef = np.asarray(est.coef_, dtype=np.float64)
    intercept = np.broadcast_to(np.asarray(est.intercept_, dtype=np.float64), (coef.shape[0],)).copy()
    if coef.ndim != 2 or coef.shape[0] not in (1, n_classes):
        _refuse(path, est, f"coef_ has shape {coef.shape} for {n_classes} classes")
    if coef.shape[0] == 1:  # binary: p(classes_[1]) = sigmoid(w t + c) = softmax([0, w t + c])[1]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    return coef, intercept, classes


# -- following columns through the steps -------------------------------------------------------------
@dataclass(frozen=True)
class _Raw:
    """An input column as the pipeline read it; ``fill`` is set once an imputer has filled it."""

    column: int
    fill: object = None
    fill_note: str = ""


@dataclass(frozen=True)
class _Lin:
    """``a * z + c`` of model feature ``feature``; ``nan`` is what a NaN feature value turns into on
    the way: ``"nan"`` (it stays NaN), ``"never"`` (it cannot be NaN), or a value in feature units."""

    feature: int
    scale: float = 1.0
    offset: float = 0.0
    nan: object = "nan"
    nan_note: str = ""


def _python(value):
    """numpy scalars as Python values (levels read back from a fitted encoder)."""
    return value.item() if isinstance(value, np.generic) else value


def _column_key(key, n: int, names, path):
    """Positions selected by a ColumnTransformer column specifier (names, indices, slice or mask)."""
    if callable(key):
        raise UnsupportedEstimatorError(_where(path), f"{_where(path)} selects its columns with a callable that "
                                                      "was not resolved at fit time")

    def by_name(label):
        if names is None:
            raise UnsupportedEstimatorError(_where(path), f"{_where(path)} selects columns by name but the "
                                                          "ColumnTransformer has no feature_names_in_")
        try:
            return names.index(str(label))
        except ValueError:
            raise UnsupportedEstimatorError(_where(path), f"{_where(path)} selects column {label!r}, which is not "
                                                          "among its input columns") from None

    if isinstance(key, str):
        return [by_name(key)]
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return [int(key) % n]
    if isinstance(key, slice):
        if isinstance(key.start, str) or isinstance(key.stop, str):  # label slices include their end
            start = 0 if key.start is None else by_name(key.start)
            stop = n if key.stop is None else by_name(key.stop) + 1
            return list(range(start, stop))
        return list(range(n))[key]
    values = list(np.asarray(key, dtype=object).ravel()) if not isinstance(key, (list, tuple)) else list(key)
    if not values:
        return []
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return [i for i, v in enumerate(values) if v]
    if all(isinstance(v, (int, np.integer)) for v in values):
        return [int(v) % n for v in values]
    return [by_name(v) for v in values]


class _Folder:
    """Builds the model features and the per-column facts while the steps are walked."""

    def __init__(self, names):
        self.names = names
        self.kinds: dict[int, str] = {}
        self.features: list[dict] = []  # {"column", "order", "name"}
        self.numeric: dict[int, int] = {}
        self.facts: dict[int, dict] = {i: {} for i in range(len(names))}
        self.uses: dict[int, list] = {}  # feature -> "nan" markers of the paths that reach the estimator
        self.steps: list[str] = []

    # features and column kinds
    def claim(self, column: int, kind: str, path, step):
        previous = self.kinds.get(column)
        if previous is not None and not (previous == kind == NUMERIC):
            _refuse(path, step, f"column {self.names[column]!r} is already used as a {previous} column; a "
                                "column must be one of numeric, one-hot or ordinal")
        self.kinds[column] = kind

    def new_feature(self, column: int, name: str) -> int:
        self.features.append({"column": column, "order": len(self.features), "name": name})
        return len(self.features) - 1

    def to_linear(self, flow, path, step) -> _Lin:
        if isinstance(flow, _Lin):
            return flow
        column = flow.column
        self.claim(column, NUMERIC, path, step)
        if column not in self.numeric:
            self.numeric[column] = self.new_feature(column, self.names[column])
        nan = "nan" if flow.fill is None else float(flow.fill)
        return _Lin(self.numeric[column], 1.0, 0.0, nan=nan, nan_note=flow.fill_note)

    def label(self, flow) -> str:
        return self.names[flow.column] if isinstance(flow, _Raw) else self.features[flow.feature]["name"]

    def note_step(self, path, text, flows):
        shown = ", ".join(self.label(f) for f in flows[:8]) + (f", ... ({len(flows)} columns)" if len(flows) > 8 else "")
        self.steps.append(f"{' > '.join(map(str, path)) or 'model'}: {text} on {shown}")

    def fact(self, feature: int, key: str, value):
        """Record a range or scale of a numeric or ordinal column once (the first step that knows it wins)."""
        column = self.features[feature]["column"]
        if self.kinds[column] in (NUMERIC, ORDINAL):
            self.facts[column].setdefault(key, value)

    # the walk
    def apply(self, step, flows, path):
        if step is None or (isinstance(step, str) and step == "passthrough"):
            return flows
        if isinstance(step, str):
            raise UnsupportedEstimatorError(_where(path), f"{_where(path)} is {step!r}; {SUPPORTED}")
        name = sklearn_name(step)
        if name not in TRANSFORMERS:
            if type(step).__name__ in TRANSFORMERS:
                _refuse(path, step, "it is a subclass defined outside scikit-learn")
            _refuse(path, step, "it is not an affine transformation of the columns")
        if name == "Pipeline":
            for step_name, inner in step.steps:
                flows = self.apply(inner, flows, (*path, step_name))
            return flows
        return getattr(self, "_" + name)(step, flows, path)

    def _ColumnTransformer(self, ct, flows, path):
        if not hasattr(ct, "transformers_"):
            _refuse(path, ct, "it is not fitted")
        n = len(flows)
        if getattr(ct, "n_features_in_", n) != n:
            _refuse(path, ct, f"it expects {ct.n_features_in_} columns but receives {n}")
        names = [str(c) for c in ct.feature_names_in_] if hasattr(ct, "feature_names_in_") else None
        weights = getattr(ct, "transformer_weights", None) or {}
        indices = getattr(ct, "output_indices_", {})
        out = []
        for name, trans, key in ct.transformers_:
            if isinstance(trans, str) and trans == "drop":
                continue
            where = (*path, name)
            selected = _column_key(key, n, names, where)
            if not selected:
                continue
            result = self.apply(trans, [flows[i] for i in selected], where)
            weight = weights.get(name)
            if weight is not None and weight != 1:
                result = [self._affine(f, float(weight), 0.0, where, ct) for f in result]
            width = indices.get(name)
            if isinstance(width, slice) and width.stop - width.start != len(result):
                _refuse(where, trans, f"it writes {width.stop - width.start} columns but {len(result)} were expected")
            out.extend(result)
        return out

    def _affine(self, flow, scale, offset, path, step) -> _Lin:
        lin = self.to_linear(flow, path, step)
        return _Lin(lin.feature, lin.scale * scale, lin.offset * scale + offset, lin.nan, lin.nan_note)

    def _scaler(self, step, flows, path, scale, offset, spread, text):
        """``t -> scale * t + offset`` per column; ``spread`` (in t's units) is the scaler's natural unit."""
        out = []
        for j, flow in enumerate(flows):
            lin = self.to_linear(flow, path, step)
            self.fact(lin.feature, "scale", (abs(spread[j] / lin.scale), f"{text} in {' > '.join(map(str, path))}"))
            out.append(self._affine(lin, float(scale[j]), float(offset[j]), path, step))
        self.note_step(path, text, flows)
        return out

    def _StandardScaler(self, step, flows, path):
        n = len(flows)
        mean = np.asarray(step.mean_, dtype=float) if step.with_mean else np.zeros(n)
        std = np.asarray(step.scale_, dtype=float) if step.with_std and step.scale_ is not None else np.ones(n)
        return self._scaler(step, flows, path, 1.0 / std, -mean / std, std, "StandardScaler")

    def _MinMaxScaler(self, step, flows, path):
        if getattr(step, "clip", False):
            _refuse(path, step, "with clip=True it is not affine outside the training range")
        scale, offset = np.asarray(step.scale_, dtype=float), np.asarray(step.min_, dtype=float)
        low, high = np.asarray(step.data_min_, dtype=float), np.asarray(step.data_max_, dtype=float)
        flows = [self.to_linear(flow, path, step) for flow in flows]
        out = self._scaler(step, flows, path, scale, offset, high - low, "MinMaxScaler")
        for j, lin in enumerate(flows):
            if np.isfinite(low[j]) and np.isfinite(high[j]):  # t = a z + c in [low, high]
                ends = sorted(((low[j] - lin.offset) / lin.scale, (high[j] - lin.offset) / lin.scale))
                self.fact(lin.feature, "range", (ends[0], ends[1], f"MinMaxScaler's data range in {' > '.join(map(str, path))}"))
        return out

    def _MaxAbsScaler(self, step, flows, path):
        scale = np.asarray(step.scale_, dtype=float)
        return self._scaler(step, flows, path, 1.0 / scale, np.zeros(len(flows)), scale, "MaxAbsScaler")

    def _RobustScaler(self, step, flows, path):
        n = len(flows)
        center = np.asarray(step.center_, dtype=float) if step.with_centering else np.zeros(n)
        scale = np.asarray(step.scale_, dtype=float) if step.with_scaling else np.ones(n)
        return self._scaler(step, flows, path, 1.0 / scale, -center / scale, scale, "RobustScaler")

    def _FunctionTransformer(self, step, flows, path):
        if getattr(step, "func", None) is not None or getattr(step, "inverse_func", None) is not None:
            _refuse(path, step, f"it applies the function {getattr(step.func, '__name__', step.func)!r}, which "
                                "cannot be folded (only FunctionTransformer() without a function, the identity, is)")
        return flows

    def _SimpleImputer(self, step, flows, path):
        if getattr(step, "add_indicator", False):
            _refuse(path, step, "add_indicator=True adds missing-value indicator columns, which are not affine")
        if not is_missing(getattr(step, "missing_values", np.nan)):
            _refuse(path, step, f"missing_values={step.missing_values!r} replaces an ordinary value, which is not "
                                "affine; only missing_values=np.nan is supported")
        stats = list(np.asarray(step.statistics_, dtype=object))
        note = f"SimpleImputer(strategy={step.strategy!r}) in {' > '.join(map(str, path))}"
        keep_empty = getattr(step, "keep_empty_features", False)
        out = []
        for flow, stat in zip(flows, stats):
            if is_missing(stat) and not keep_empty:
                continue  # a column with no observed value at fit time: the imputer drops it
            stat = 0.0 if is_missing(stat) else _python(stat)
            if isinstance(flow, _Raw):
                out.append(flow if flow.fill is not None else _Raw(flow.column, stat, note))
            elif flow.nan == "nan":
                out.append(_Lin(flow.feature, flow.scale, flow.offset, (float(stat) - flow.offset) / flow.scale, note))
            else:
                out.append(flow)
        self.note_step(path, f"SimpleImputer(strategy={step.strategy!r})", flows)
        return out

    def _raw_inputs(self, step, flows, path):
        for flow in flows:
            if not isinstance(flow, _Raw):
                _refuse(path, step, f"it encodes {self.label(flow)!r} after another step has transformed it; an "
                                    "encoder must read the raw column (an imputer before it is fine)")
        if not hasattr(step, "categories_"):
            _refuse(path, step, "it is not fitted")

    def _OneHotEncoder(self, step, flows, path):
        self._raw_inputs(step, flows, path)
        try:
            infrequent = step.infrequent_categories_
        except AttributeError:
            infrequent = [None] * len(flows)
        drop_idx = getattr(step, "drop_idx_", None)
        handle = getattr(step, "handle_unknown", "error")
        out = []
        for j, flow in enumerate(flows):
            column, name = flow.column, self.names[flow.column]
            self.claim(column, CATEGORICAL, path, step)
            categories = [_python(c) for c in step.categories_[j]]
            pooled = [] if infrequent[j] is None else [_python(c) for c in infrequent[j]]
            states = [[c] for c in categories if not any(same_level(c, p) for p in pooled)]
            if pooled:
                states.append(pooled)  # scikit-learn puts the pooled infrequent column last
            dropped = None
            if drop_idx is not None and drop_idx[j] is not None:
                level = categories[int(drop_idx[j])]
                dropped = next(i for i, s in enumerate(states) if any(same_level(level, c) for c in s))
            state_feature = {}
            for i, state in enumerate(states):
                if i != dropped:
                    label = "infrequent" if (pooled and state is states[-1]) else str(state[0])
                    state_feature[i] = self.new_feature(column, f"{name}={label}")
                    out.append(_Lin(state_feature[i], nan="never"))
            level_features = []
            for c in categories:
                i = next(i for i, s in enumerate(states) if any(same_level(c, v) for v in s))
                level_features.append(state_feature.get(i, -1))
            if handle == "ignore" or not pooled or dropped == len(states) - 1:
                unknown = "error" if handle == "error" else "zeros"
            else:
                unknown = state_feature[len(states) - 1]
            self.facts[column].update(levels=tuple(categories), level_features=tuple(level_features),
                                      unknown=unknown, fill=flow.fill, fill_note=flow.fill_note)
        try:
            width = len(step.get_feature_names_out())
        except Exception:  # names need fitted feature names; the width check is a safeguard only
            width = len(out)
        if width != len(out):
            _refuse(path, step, f"its layout ({width} columns) differs from the expected {len(out)}")
        self.note_step(path, f"OneHotEncoder(drop={getattr(step, 'drop', None)!r}, handle_unknown={handle!r})", flows)
        return out

    def _OrdinalEncoder(self, step, flows, path):
        self._raw_inputs(step, flows, path)
        if getattr(step, "max_categories", None) is not None or getattr(step, "min_frequency", None) is not None:
            _refuse(path, step, "min_frequency/max_categories pool levels into one code; an ordinal column needs "
                                "one code per level")
        out = []
        for j, flow in enumerate(flows):
            column, name = flow.column, self.names[flow.column]
            self.claim(column, ORDINAL, path, step)
            categories = [_python(c) for c in step.categories_[j]]
            has_nan = bool(categories) and is_missing(categories[-1])
            levels = tuple(categories[:-1] if has_nan else categories)
            feature = self.new_feature(column, name)
            unknown_code = (float(step.unknown_value) if step.handle_unknown == "use_encoded_value" else None)
            self.facts[column].update(levels=levels, fill=flow.fill, fill_note=flow.fill_note,
                                      missing_code=float(step.encoded_missing_value) if has_nan else None,
                                      unknown_code=unknown_code)
            self.facts[column].setdefault("range", (0.0, float(len(levels) - 1), "the encoder's levels"))
            out.append(_Lin(feature, nan="nan"))
        self.note_step(path, "OrdinalEncoder", flows)
        return out

    # the end of the walk
    def record_use(self, lin: _Lin):
        self.uses.setdefault(lin.feature, []).append((lin.nan, lin.nan_note))


def _missing_fill(uses):
    """The single value a missing feature takes on every path to the estimator, or None."""
    values = {v for v, _ in uses}
    if len(values) != 1 or "nan" in values or "never" in values:
        return None, ""
    return next(iter(values)), next(note for _, note in uses)


def fold_estimator(estimator, input_names=None):
    """``(coef, intercept, classes, schema)`` of a fitted classifier or pipeline (see module docstring).

    Raises
    ------
    UnsupportedEstimatorError
        Naming the step that cannot be folded and listing what is supported.
    """
    if sklearn_name(estimator) == "Pipeline":
        steps = [(name, step) for name, step in estimator.steps]
        (final_name, final), transforms = steps[-1], steps[:-1]
        final_path = (final_name,)
    else:
        final, transforms, final_path = estimator, [], ()
    W, w0, classes = _final_parameters(final, final_path)
    n_inputs = getattr(estimator, "n_features_in_", None)
    if n_inputs is None:
        _refuse((), estimator, "it is not fitted (it has no n_features_in_)")
    fitted_names = getattr(estimator, "feature_names_in_", None)
    if fitted_names is not None:
        names = [str(c) for c in fitted_names]
    elif input_names is not None and len(input_names) == n_inputs:
        names = [str(c) for c in input_names]
    else:
        names = [f"x{i}" for i in range(n_inputs)]
    folder = _Folder(names)
    flows = [_Raw(i) for i in range(n_inputs)]
    for name, step in transforms:
        flows = folder.apply(step, flows, (name,))
    if len(flows) != W.shape[1]:
        _refuse(final_path, final, f"it reads {W.shape[1]} columns but the steps before it write {len(flows)}")
    linear = [folder.to_linear(f, final_path, final) for f in flows]
    text = f"{type(final).__name__} ({len(classes)} classes)"
    folder.note_step(final_path, text, flows)

    order = sorted(range(len(folder.features)), key=lambda i: (folder.features[i]["column"], folder.features[i]["order"]))
    position = {old: new for new, old in enumerate(order)}
    A = np.zeros((W.shape[0], len(order)))
    b = np.array(w0, dtype=np.float64)
    for j, lin in enumerate(linear):
        folder.record_use(lin)
        A[:, position[lin.feature]] += W[:, j] * lin.scale
        b += W[:, j] * lin.offset
    schema = _build_schema(folder, position, order, fitted_names is not None)
    return A, b, classes, schema


def _build_schema(folder, position, order, named) -> FeatureSchema:
    by_column: dict[int, list[int]] = {}
    for old in order:
        by_column.setdefault(folder.features[old]["column"], []).append(old)
    columns = []
    for column, name in enumerate(folder.names):
        kind = folder.kinds.get(column, UNUSED) if column in by_column else UNUSED
        facts = folder.facts[column]
        olds = by_column.get(column, [])
        features = tuple(position[o] for o in olds)
        spec = dict(name=name, kind=kind, features=features)
        if "range" in facts:
            low, high, note = facts["range"]
            spec.update(lower=float(low), upper=float(high), range_note=note)
        if "scale" in facts and math.isfinite(facts["scale"][0]) and facts["scale"][0] > 0:
            spec.update(scale=float(facts["scale"][0]))
        if kind == NUMERIC:
            fill, note = _missing_fill(folder.uses.get(olds[0], []))
            spec.update(fill=fill, fill_note=note if fill is not None else "")
        elif kind == CATEGORICAL:
            remap = {old: position[old] for old in olds}
            unknown = facts["unknown"]
            spec.update(levels=facts["levels"], fill=facts["fill"], fill_note=facts["fill_note"],
                        level_features=tuple(remap.get(f, -1) for f in facts["level_features"]),
                        unknown=unknown if isinstance(unknown, str) else remap[unknown])
        elif kind == ORDINAL:
            code_fill, code_note = _missing_fill(folder.uses.get(olds[0], []))
            spec.update(levels=facts["levels"], fill=facts["fill"], integer=True,
                        fill_note=facts["fill_note"] or (code_note if code_fill is not None else ""),
                        missing_code=facts["missing_code"], unknown_code=facts["unknown_code"], code_fill=code_fill)
        columns.append(SchemaColumn(**spec))
    feature_names = tuple(folder.features[old]["name"] for old in order)
    return FeatureSchema(tuple(columns), feature_names, tuple(folder.steps), named)

