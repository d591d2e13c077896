"""The softmax classifier ``p(x) = softmax(A x + b)`` that every solver works on."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import scipy.special

from ._basis import ReducedBasis, build_basis
from ._validation import as_finite_array


class SoftmaxModel:
    """A softmax (multinomial logistic) classifier ``p(x) = softmax(A x + b)``.

    Parameters
    ----------
    coef : array_like (K, D)
        Weight matrix ``A``, one row per class; K >= 2.
    intercept : array_like (K,)
        Biases ``b``.
    classes : sequence of length K, optional
        Class labels (default ``0..K-1``); solvers always take a class *index*.
    feature_names : sequence of str of length D, optional
    schema : FeatureSchema, optional
        What the features mean in the user's table (set by :meth:`from_estimator` for pipelines).

    Notes
    -----
    The model is immutable. The reduced basis of MATH.md section 2 (O(D K^2)) is computed on first
    use and shared by every instance, target and lam, so one model object should be reused.

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0])
    >>> model.predict_proba([0.0, 0.0]).round(3)
    array([0.333, 0.333, 0.333])
    """

    def __init__(self, coef, intercept, classes=None, feature_names=None, schema=None):
        A = as_finite_array(coef, "coef", 2)
        b = as_finite_array(intercept, "intercept", 1)
        n_classes, n_features = A.shape
        if n_classes < 2:
            raise ValueError(
                f"coef must have K >= 2 rows (one per class), got {n_classes}; for a binary logistic "
                "model with one weight row w use coef=[zeros, w], intercept=[0, b]"
            )
        if n_features < 1:
            raise ValueError("coef must have at least one column (feature)")
        if b.shape[0] != n_classes:
            raise ValueError(f"intercept has {b.shape[0]} entries but coef has {n_classes} rows")
        if classes is None:
            classes = np.arange(n_classes)
        classes = np.asarray(classes)
        if classes.ndim != 1 or classes.shape[0] != n_classes:
            raise ValueError(f"classes must have {n_classes} entries, got shape {classes.shape}")
        if len(set(classes.tolist())) != n_classes:
            raise ValueError("classes must be distinct")
        if feature_names is not None:
            feature_names = tuple(str(name) for name in feature_names)
            if len(feature_names) != n_features:
                raise ValueError(f"feature_names has {len(feature_names)} entries but coef has {n_features} columns")
        self._coef = np.array(A, order="C")
        self._intercept = b.copy()
        self._coef.setflags(write=False)
        self._intercept.setflags(write=False)
        self._classes = classes.copy()
        self._classes.setflags(write=False)
        if schema is not None and schema.n_features != n_features:
            raise ValueError(f"schema describes {schema.n_features} features but coef has {n_features} columns")
        self._feature_names = feature_names
        self._schema = schema
        self._basis: ReducedBasis | None = None
        self._fingerprint: str | None = None
        self._lock = threading.Lock()
        self._derived: dict[bytes, SoftmaxModel] = {}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_estimator(cls, estimator, feature_names=None) -> "SoftmaxModel":
        """Build from a fitted scikit-learn classifier or pipeline, folding its affine steps.

        Accepted final estimators: ``LogisticRegression`` (binary or multinomial),
        ``LogisticRegressionCV``, ``SGDClassifier(loss="log_loss")`` (binary) and
        ``LinearDiscriminantAnalysis``; before them, in a ``Pipeline`` and ``ColumnTransformer``:
        ``StandardScaler``, ``MinMaxScaler``, ``MaxAbsScaler``, ``RobustScaler``, ``OneHotEncoder``,
        ``OrdinalEncoder`` and ``SimpleImputer``. Every such pipeline computes
        ``softmax(W (a * z + c) + w0)`` with ``z`` its encoded columns in their own units (numeric
        values after imputation, one-hot indicators, ordinal codes), so ``A = W diag(a)`` and
        ``b = W c + w0`` exactly. A binary model's single row ``w`` becomes ``A = [0, w]``,
        ``b = [0, c]``. The model keeps a :class:`FeatureSchema` (``model.schema``) saying which
        input column each feature comes from.

        Parameters
        ----------
        estimator : fitted scikit-learn estimator or Pipeline
        feature_names : sequence of str, optional
            Names of the input columns when the estimator was fitted on an array (default ``x0``,
            ``x1``, ...).

        Raises
        ------
        UnsupportedEstimatorError (a ValueError)
            Naming the step that cannot be folded and listing what is supported.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> model = SoftmaxModel.from_estimator(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
        >>> model.coef.shape, model.schema.column_names
        ((2, 1), ('x0',))
        """
        from ._sklearn import fold_estimator

        coef, intercept, classes, schema = fold_estimator(estimator, input_names=feature_names)
        return cls(coef, intercept, classes=classes, feature_names=schema.feature_names, schema=schema)

    # -- properties ---------------------------------------------------------------------------
    @property
    def coef(self) -> np.ndarray:
        """Weights ``A`` (K x D), read-only."""
        return self._coef

    @property
    def intercept(self) -> np.ndarray:
        """Biases ``b`` (K,), read-only."""
        return self._intercept

    @property
    def classes(self) -> np.ndarray:
        return self._classes

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        return self._feature_names

    @property
    def schema(self):
        """The :class:`FeatureSchema` of a folded pipeline (None for a model built from arrays)."""
        return self._schema

    @property
    def n_classes(self) -> int:
        return self._coef.shape[0]

    @property
    def n_features(self) -> int:
        return self._coef.shape[1]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the parameters: a content key for caches (computed once)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            digest.update(np.asarray(self._coef.shape, dtype=np.int64).tobytes())
            digest.update(self._coef.tobytes())
            digest.update(self._intercept.tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # -- pickling, for Dask's own transport between worker processes (never for files users upload) --
    def __getstate__(self) -> dict:
        """Everything but the lock: the parameters, and the basis and column-scaled twins already built,
        so a worker that receives the model does not rebuild them."""
        state = self.__dict__.copy()
        del state["_lock"]
        with self._lock:
            state["_derived"] = dict(self._derived)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for array in (self._coef, self._intercept, self._classes):
            array.setflags(write=False)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SoftmaxModel(n_classes={self.n_classes}, n_features={self.n_features})"

    # -- prediction ---------------------------------------------------------------------------
    def decision_function(self, X) -> np.ndarray:
        """Logits ``A x + b`` for one instance (D,) or many (n, D)."""
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != self.n_features or X.ndim not in (1, 2):
            raise ValueError(f"X must have shape ({self.n_features},) or (n, {self.n_features}), got {X.shape}")
        return X @ self._coef.T + self._intercept

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``softmax(A x + b)``, shape (K,) or (n, K)."""
        return scipy.special.softmax(self.decision_function(X), axis=-1)

    def predict(self, X) -> np.ndarray:
        """Index of the most probable class."""
        return np.argmax(self.decision_function(X), axis=-1)

    def to_bytes(self, fmt: str = "npz") -> bytes:
        """Serialise as ``"npz"``, ``"json"`` or ``"skops"``; :func:`solver.load_model` reads all three."""
        from ._io import model_to_bytes

        return model_to_bytes(self, fmt)

    # -- shared precomputation ------------------------------------------------------------------
    _MAX_DERIVED = 8

    def column_scaled(self, free: np.ndarray, scale: np.ndarray, key: bytes) -> "SoftmaxModel":
        """``A[:, free] / scale`` with a zero intercept, cached (with its basis) per constraint key.

        MATH.md section 6: costs and immutable features are this column scaling; the fixed features'
        contribution to the logits is added per instance with :meth:`with_intercept`.
        """
        with self._lock:
            derived = self._derived.get(key)
        if derived is None:
            derived = SoftmaxModel(self._coef[:, free] / scale, np.zeros(self.n_classes), classes=self._classes)
            with self._lock:
                if len(self._derived) >= self._MAX_DERIVED:
                    self._derived.pop(next(iter(self._derived)))
                derived = self._derived.setdefault(key, derived)
        return derived

    def with_intercept(self, intercept: np.ndarray) -> "SoftmaxModel":
        """The same weights (and the same reduced basis object) with other biases; O(K)."""
        twin = object.__new__(SoftmaxModel)
        twin.__dict__.update(self.__dict__)
        twin._intercept = np.array(intercept, dtype=np.float64)
        twin._intercept.setflags(write=False)
        twin._fingerprint = None
        twin._basis = self.reduced_basis()
        twin._lock = threading.Lock()
        twin._derived = {}
        return twin

    def reduced_basis(self) -> ReducedBasis:
        """The basis of MATH.md section 2, computed once (thread-safe) and reused."""
        if self._basis is None:
            with self._lock:
                if self._basis is None:
                    self._basis = build_basis(self._coef)
        return self._basis
