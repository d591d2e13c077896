"""Model files: ``.npz`` and ``.json`` of the parameters, and ``.skops`` restricted to trusted types.

Uploaded model files are untrusted. Nothing is unpickled: npz is read with ``allow_pickle=False``,
JSON is plain data, and skops files are checked type by type before loading (skops and
scikit-learn are imported only for that format).
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from pathlib import PurePosixPath

import numpy as np

from ._model import SoftmaxModel

MAX_MODEL_BYTES = 50 * 2**20
FORMATS = ("npz", "json", "skops")
# The estimators a .skops file may contain, by their public import path: what SoftmaxModel.from_estimator
# folds (make_column_selector and FunctionTransformer only as column selection and the identity that
# ColumnTransformer's remainder="passthrough" becomes). Resolved to the module.Class names skops records.
TRUSTED_ESTIMATORS = (
    "sklearn.pipeline.Pipeline",
    "sklearn.compose.ColumnTransformer",
    "sklearn.compose.make_column_selector",
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.MinMaxScaler",
    "sklearn.preprocessing.MaxAbsScaler",
    "sklearn.preprocessing.RobustScaler",
    "sklearn.preprocessing.OneHotEncoder",
    "sklearn.preprocessing.OrdinalEncoder",
    "sklearn.preprocessing.FunctionTransformer",
    "sklearn.impute.SimpleImputer",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.LogisticRegressionCV",
    "sklearn.linear_model.SGDClassifier",
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
)
# SGDClassifier(loss="log_loss") keeps its loss object (a compiled class without state to speak of).
TRUSTED_LOSSES = frozenset({"sklearn._loss._loss.CyHalfBinomialLoss", "sklearn.linear_model._sgd_fast.Log"})
# skops node kinds that carry data only; anything else (functions, methods, partials, reduce calls,
# operator functions) is refused before loading.
_DATA_LOADERS = frozenset({"DictNode", "ListNode", "TupleNode", "SliceNode", "JsonNode", "NdArrayNode", "DTypeNode",
                           "TypeNode", "RandomStateNode"})
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


class ModelFileError(ValueError):
    """A model file that cannot be used; the message says what is wrong and what to do."""


def load_model(data: bytes, filename: str) -> SoftmaxModel:
    """Read a :class:`SoftmaxModel` from an untrusted file's bytes.

    ``.npz`` needs arrays ``coef`` (K, D) and ``intercept`` (K,), optionally ``classes`` and
    ``feature_names``; ``.json`` the same keys; ``.skops`` a fitted classifier or pipeline that
    :meth:`SoftmaxModel.from_estimator` folds (checked type by type before loading; the model keeps its
    feature schema). A binary model's single weight row is accepted.

    Raises
    ------
    ModelFileError
    """
    name = PurePosixPath(str(filename).replace("\\", "/")).name or "model"
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    data = bytes(data)
    if not data:
        raise ModelFileError(f"{name} is empty")
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(f"{name} is {len(data) / 2**20:.0f} MB; model files may be at most {MAX_MODEL_BYTES // 2**20} MB")
    if suffix in {"pkl", "pickle", "joblib"} or data.startswith(_PICKLE_MAGIC):
        raise ModelFileError(
            f"{name} is a pickle/joblib file; those can run arbitrary code when loaded and are never opened here. "
            "Save the model with skops (skops.io.dump) or as .npz/.json with coef and intercept"
        )
    readers = {"npz": _read_npz, "json": _read_json, "skops": _read_skops}
    if suffix not in readers:
        raise ModelFileError(f"{name}: unsupported model file type '.{suffix}'; use .npz, .json or .skops")
    try:
        return readers[suffix](data, name)
    except ModelFileError:
        raise
    except ValueError as exc:  # SoftmaxModel's own checks: shapes, finiteness
        raise ModelFileError(f"{name}: {exc}") from None


def _from_parameters(coef, intercept, classes, feature_names, name) -> SoftmaxModel:
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.atleast_1d(np.asarray(intercept, dtype=np.float64))
    if coef.ndim == 2 and coef.shape[0] == 1 and intercept.shape == (1,):
        coef = np.vstack([np.zeros_like(coef), coef])  # binary logistic regression
        intercept = np.array([0.0, intercept[0]])
    if classes is not None:
        classes = [str(c) for c in np.asarray(classes).ravel()]
    return SoftmaxModel(coef, intercept, classes=classes, feature_names=feature_names)


def _read_npz(data: bytes, name: str) -> SoftmaxModel:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if sum(e.file_size for e in archive.infolist()) > 8 * MAX_MODEL_BYTES:
            raise ModelFileError(f"{name} would unpack to more than {8 * MAX_MODEL_BYTES // 2**20} MB")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if not {"coef", "intercept"} <= set(npz.files):
                raise ModelFileError(f"{name} must contain arrays 'coef' and 'intercept'; it has {', '.join(npz.files) or 'none'}")
            arrays = {key: npz[key] for key in ("coef", "intercept", "classes", "feature_names") if key in npz.files}
    except ModelFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ModelFileError(f"{name} contains object arrays (pickled Python objects), which are never loaded") from None
        raise ModelFileError(f"{name} could not be read ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ModelFileError(f"{name} is not a valid .npz file ({type(exc).__name__}); it may be truncated") from None
    for key in ("coef", "intercept"):
        if arrays[key].dtype.kind not in "biuf":
            raise ModelFileError(f"{name}: '{key}' must be numeric, got dtype {arrays[key].dtype}")
    names = arrays.get("feature_names")
    return _from_parameters(arrays["coef"], arrays["intercept"], arrays.get("classes"),
                            None if names is None else [str(n) for n in names], name)


def _read_json(data: bytes, name: str) -> SoftmaxModel:
    try:
        content = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{name} is not valid JSON ({exc})") from None
    if not isinstance(content, dict) or "coef" not in content or "intercept" not in content:
        raise ModelFileError(f"{name} must be a JSON object with 'coef' (K lists of D numbers) and 'intercept' (K numbers)")
    try:
        coef = np.array(content["coef"], dtype=np.float64)
        intercept = np.array(content["intercept"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ModelFileError(f"{name}: 'coef' and 'intercept' must be numbers in rectangular lists") from None
    return _from_parameters(coef, intercept, content.get("classes"), content.get("feature_names"), name)


def _read_skops(data: bytes, name: str) -> SoftmaxModel:
    estimator = _load_skops_estimator(data, name)
    try:
        return SoftmaxModel.from_estimator(estimator)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ModelFileError(f"{name}: {exc}") from None


def load_estimator(data: bytes, filename: str):
    """The scikit-learn estimator in an untrusted ``.skops`` file, loaded only if every type in it is
    one :meth:`SoftmaxModel.from_estimator` folds (``TRUSTED_ESTIMATORS``) or plain data.

    Use it to run :func:`solver.counterfactual` on an uploaded pipeline. Checks as :func:`load_model`.

    Raises
    ------
    ModelFileError
    """
    name = PurePosixPath(str(filename).replace("\\", "/")).name or "model"
    data = bytes(data)
    if not data:
        raise ModelFileError(f"{name} is empty")
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(f"{name} is {len(data) / 2**20:.0f} MB; model files may be at most {MAX_MODEL_BYTES // 2**20} MB")
    if data.startswith(_PICKLE_MAGIC) or PurePosixPath(name).suffix.lower() != ".skops":
        raise ModelFileError(f"{name}: only .skops files hold a scikit-learn estimator that is loaded here "
                             "(pickle and joblib files are never opened)")
    return _load_skops_estimator(data, name)


@functools.lru_cache(maxsize=1)
def trusted_skops_types() -> frozenset[str]:
    """The ``module.Class`` names skops records for ``TRUSTED_ESTIMATORS`` in this scikit-learn."""
    import importlib

    names = set()
    for path in TRUSTED_ESTIMATORS:
        module, _, attribute = path.rpartition(".")
        cls = getattr(importlib.import_module(module), attribute)
        names.add(f"{cls.__module__}.{cls.__qualname__}")
    return frozenset(names)


def _load_skops_estimator(data: bytes, name: str):
    try:
        import skops.io as sio
    except ImportError:  # pragma: no cover - skops is in requirements.txt
        raise ModelFileError("reading .skops files needs the skops package (pip install skops)") from None
    try:
        untrusted = set(sio.get_untrusted_types(data=data))
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_MODEL_BYTES:
                raise ModelFileError(f"{name}: its schema is implausibly large ({info.file_size / 2**20:.0f} MB)")
            schema = json.loads(archive.read(info))
    except ModelFileError:
        raise
    except Exception as exc:  # skops and zipfile raise many types for damaged files
        raise ModelFileError(f"{name} is not a valid skops file ({type(exc).__name__}); it may be truncated") from None
    # skops trusts every scikit-learn estimator and numpy function by default; this app loads only the
    # types it folds, checked node by node, before anything is imported or constructed.
    refused = _refused_nodes(schema, trusted_skops_types())
    located = {t for t, _ in refused}
    refused |= {(t, "") for t in untrusted if t not in located and not (t in trusted_skops_types() or _plain_type(t))}
    if refused:
        shown = sorted({f"{t} (in {where})" if where else t for t, where in refused})
        raise ModelFileError(
            f"{name} contains types that are not trusted here: {', '.join(shown[:12])}"
            f"{' ...' if len(shown) > 12 else ''}. Nothing in it was loaded. A .skops file may hold a {_SUPPORTED_SKOPS}, "
            "with numpy arrays and plain values: refit the pipeline with those steps and save it again with "
            "skops.io.dump"
        )
    try:
        return sio.loads(data, trusted=sorted(untrusted))
    except Exception as exc:
        raise ModelFileError(f"{name} could not be loaded ({type(exc).__name__}: {exc})") from None


_SUPPORTED_SKOPS = ("Pipeline or ColumnTransformer of StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, "
                    "OneHotEncoder, OrdinalEncoder and SimpleImputer ending in LogisticRegression, "
                    "LogisticRegressionCV, SGDClassifier or LinearDiscriminantAnalysis")
_PLAIN_BUILTINS = {"builtins." + t for t in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType",
                                             "slice")}


def _refused_nodes(schema, trusted: frozenset[str]) -> set[tuple[str, str]]:
    """``(module.Class, where)`` of every node in a skops schema that is neither a trusted estimator
    nor plain data; ``where`` names the pipeline step it sits in (``'pre' > 'evil'``)."""
    refused = set()
    stack = [(schema, ())]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((item, where) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if "__class__" in node:
            qualified = f"{node.get('__module__')}.{node['__class__']}"
            loader = node.get("__loader__")
            if loader == "ObjectNode":
                allowed = qualified in trusted
            elif loader == "LossNode":
                allowed = qualified in TRUSTED_LOSSES
            elif loader == "RandomStateNode":
                allowed = qualified == "numpy.random.mtrand.RandomState"
            else:
                allowed = loader in _DATA_LOADERS and _plain_type(qualified)
            if not allowed:
                refused.add((qualified, " > ".join(repr(w) for w in where)))
            step = _step_name(node)
            if step is not None:
                stack.extend((item, (*where, step)) for item in node["content"][1:])
                stack.append((node["content"][0], where))
                continue
        stack.extend((value, where) for value in node.values())
    return refused


def _step_name(node) -> str | None:
    """The name of a ``(name, estimator, ...)`` tuple node, as in Pipeline.steps and
    ColumnTransformer.transformers; None for any other node."""
    content = node.get("content")
    if node.get("__loader__") != "TupleNode" or not isinstance(content, list) or len(content) < 2:
        return None
    first, second = content[0], content[1]
    if not (isinstance(first, dict) and first.get("__loader__") == "JsonNode" and isinstance(second, dict)):
        return None
    try:
        label = json.loads(first.get("content", ""))
    except (TypeError, ValueError):
        return None
    return label if isinstance(label, str) and second.get("__loader__") not in ("JsonNode", None) else None


def _plain_type(qualified: str) -> bool:
    """Containers, strings, numbers, slices, and numpy arrays, dtypes and scalar types: data, not behaviour."""
    if qualified in _PLAIN_BUILTINS:
        return True
    module, _, cls = qualified.rpartition(".")
    if module != "numpy":
        return False
    if cls in ("ndarray", "dtype"):
        return True
    scalar = getattr(np, cls, None)
    return isinstance(scalar, type) and issubclass(scalar, np.generic)


def model_to_bytes(model: SoftmaxModel, fmt: str) -> bytes:
    """Serialise ``model`` as ``npz``, ``json`` or ``skops`` (a fitted LogisticRegression)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}; got {fmt!r}")
    classes = [str(c) for c in model.classes]
    if fmt == "npz":
        buffer = io.BytesIO()
        extra = {} if model.feature_names is None else {"feature_names": np.array(model.feature_names, dtype=str)}
        np.savez(buffer, coef=model.coef, intercept=model.intercept, classes=np.array(classes, dtype=str), **extra)
        return buffer.getvalue()
    if fmt == "json":
        content = {"format": "softmax-model", "version": 1, "coef": model.coef.tolist(),
                   "intercept": model.intercept.tolist(), "classes": classes,
                   "feature_names": None if model.feature_names is None else list(model.feature_names)}
        return json.dumps(content).encode("utf-8")
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression()
    if model.n_classes == 2:
        estimator.coef_ = (model.coef[1] - model.coef[0])[None, :]
        estimator.intercept_ = np.array([model.intercept[1] - model.intercept[0]])
    else:
        estimator.coef_ = np.array(model.coef)
        estimator.intercept_ = np.array(model.intercept)
    estimator.classes_ = np.array(classes)
    estimator.n_features_in_ = model.n_features
    estimator.n_iter_ = np.array([0])
    if model.feature_names is not None:
        estimator.feature_names_in_ = np.array(model.feature_names, dtype=object)
    return sio.dumps(estimator)
