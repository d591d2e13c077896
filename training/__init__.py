"""Train a softmax model on a Dataset with scikit-learn, and check a model fits a dataset.

Imports scikit-learn, numpy and the project's solver/datasets; never streamlit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from solver import SoftmaxModel

DEFAULT_MAX_ITER = 300


@dataclass(frozen=True)
class TrainingParams:
    """How a default or user-requested model is trained (see :func:`train_softmax`).

    Hashable and comparable: it keys the shared model cache and the shipped model files.
    """

    C: float = 1.0
    standardize: bool = True
    test_fraction: float = 0.2
    seed: int = 0
    max_iter: int = DEFAULT_MAX_ITER

    def __post_init__(self):
        object.__setattr__(self, "C", float(self.C))
        object.__setattr__(self, "standardize", bool(self.standardize))
        object.__setattr__(self, "test_fraction", float(self.test_fraction))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "max_iter", int(self.max_iter))

    @classmethod
    def default_for(cls, kind: str) -> "TrainingParams":
        """The built-in default: C = 1, standardised features for tables, raw pixels for images."""
        return cls(standardize=kind != "image")


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A fitted model with its held-out evaluation.

    Attributes
    ----------
    model : SoftmaxModel
        Acts on the dataset's own features (any standardisation is folded in).
    train_accuracy, test_accuracy : float
    confusion : ndarray (K, K)
        Test-set counts, rows true class, columns predicted class.
    test_index : ndarray
        Rows of the dataset held out for testing.
    C : float
    standardize : bool
    fit_seconds : float
        Seconds the fit took when it ran (for a shipped model: when its file was made).
    origin : str
        "trained here", or the shipped file the parameters were read from.
    """

    model: SoftmaxModel
    train_accuracy: float
    test_accuracy: float
    confusion: np.ndarray
    test_index: np.ndarray
    C: float
    standardize: bool
    fit_seconds: float
    origin: str = "trained here"


def train_softmax(X, y, class_names, feature_names=None, *, C: float = 1.0, standardize: bool = True,
                  test_fraction: float = 0.2, seed: int = 0, max_iter: int = DEFAULT_MAX_ITER) -> TrainedModel:
    """Fit a multinomial ``LogisticRegression`` (L2, strength ``1/C``) on a seeded stratified split.

    With ``standardize`` the features are scaled by a ``StandardScaler`` whose mean and scale are
    folded into the weights, so the inverse problem is posed in the features the user sees.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not (np.isfinite(C) and C > 0):
        raise ValueError(f"C must be a finite number > 0, got {C!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n_classes = len(class_names)
    index = np.arange(len(y))
    counts = np.bincount(y, minlength=n_classes)
    stratify = y if counts.min() >= 2 and round(test_fraction * len(y)) >= n_classes else None
    train_index, test_index = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=stratify)
    missing = sorted(set(range(n_classes)) - set(np.unique(y[train_index]).tolist()))
    if missing:
        raise ValueError(f"the training split has no rows of class(es) {', '.join(str(class_names[m]) for m in missing)}; "
                         "lower the test fraction or add rows of those classes")
    steps = ([StandardScaler()] if standardize else []) + [LogisticRegression(C=C, max_iter=max_iter)]
    estimator = make_pipeline(*steps)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X[train_index], y[train_index])
    fit_seconds = time.perf_counter() - start
    model = SoftmaxModel.from_estimator(estimator, feature_names=feature_names)
    model = SoftmaxModel(model.coef, model.intercept, classes=list(class_names), feature_names=feature_names)
    predicted = model.predict(X)
    return TrainedModel(
        model=model,
        train_accuracy=float(np.mean(predicted[train_index] == y[train_index])),
        test_accuracy=float(np.mean(predicted[test_index] == y[test_index])),
        confusion=confusion_matrix(y[test_index], predicted[test_index], labels=np.arange(n_classes)),
        test_index=np.sort(test_index),
        C=float(C),
        standardize=bool(standardize),
        fit_seconds=fit_seconds,
    )


def train(dataset, params: TrainingParams) -> TrainedModel:
    """:func:`train_softmax` on a :class:`datasets.Dataset` with these parameters."""
    return train_softmax(dataset.X, dataset.y, dataset.class_names, dataset.feature_names, C=params.C,
                         standardize=params.standardize, test_fraction=params.test_fraction, seed=params.seed,
                         max_iter=params.max_iter)


def compatibility_error(model: SoftmaxModel, n_features: int, n_classes: int) -> str | None:
    """Why ``model`` cannot explain a dataset with these dimensions, or None if it can."""
    if model.n_features != n_features:
        return (f"the model expects {model.n_features} features but the dataset has {n_features}; "
                "load a model trained on this dataset or train one on the Model page")
    if model.n_classes != n_classes:
        return (f"the model has {model.n_classes} classes but the dataset has {n_classes}; "
                "load a model trained on this dataset or train one on the Model page")
    return None
