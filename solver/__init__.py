"""Exact inverse classification for softmax and logistic-regression models.

Given ``p(x) = softmax(A x + b)``, an instance ``x0``, a target class ``k`` and ``lam > 0``, find the
unique minimiser of ``E(x) = lam/2 ||x - x0||^2 - log p_k(x)`` (see MATH.md). numpy/scipy only.

>>> from solver import SoftmaxModel, invert, invert_path
>>> from solver import counterfactual  # a scikit-learn pipeline and a pandas row in, a pandas row out
"""

from ._api import METHODS, invert, invert_path
from ._batch import BatchResult, invert_batch
from ._batch_flip import minimal_flip_batch
from ._batch_probability import closest_with_probability_batch
from ._counterfactual import RowCounterfactual, counterfactual, encode_rows, fold_error
from ._flip import DEFAULT_MARGIN, minimal_flip
from ._io import FORMATS, ModelFileError, load_estimator, load_model
from ._model import SoftmaxModel
from ._probability import closest_with_probability
from ._problem import Problem, pose_problem
from ._result import CounterfactualResult, InversionPath, InversionResult, IterationHistory
from ._schema import FeatureSchema, SchemaColumn
from ._sklearn import UnsupportedEstimatorError

_LAZY = {"RecourseResult", "recourse", "recourse_front"}  # scipy.optimize's MILP: loaded on first use


def __getattr__(name):
    if name in _LAZY:
        from . import _recourse

        return getattr(_recourse, name)
    raise AttributeError(f"module 'solver' has no attribute {name!r}")


__all__ = [
    "BatchResult",
    "closest_with_probability_batch",
    "invert_batch",
    "minimal_flip_batch",
    "CounterfactualResult",
    "DEFAULT_MARGIN",
    "FeatureSchema",
    "Problem",
    "pose_problem",
    "RowCounterfactual",
    "SchemaColumn",
    "UnsupportedEstimatorError",
    "counterfactual",
    "encode_rows",
    "fold_error",
    "load_estimator",
    "closest_with_probability",
    "minimal_flip",
    "RecourseResult",
    "recourse",
    "recourse_front",
    "FORMATS",
    "METHODS",
    "ModelFileError",
    "load_model",
    "InversionPath",
    "InversionResult",
    "IterationHistory",
    "SoftmaxModel",
    "invert",
    "invert_path",
]
