"""Exact inverse classification for softmax and logistic-regression models.

Given ``p(x) = softmax(A x + b)``, an instance ``x0``, a target class ``k`` and ``lam > 0``, find the
unique minimiser of ``E(x) = lam/2 ||x - x0||^2 - log p_k(x)`` (see MATH.md). numpy/scipy only.

>>> from solver import SoftmaxModel, invert, invert_path
>>> from solver import counterfactual  # a scikit-learn pipeline and a pandas row in, a pandas row out
"""

from ._api import METHODS, invert, invert_path
from ._counterfactual import RowCounterfactual, counterfactual, encode_rows, fold_error
from ._io import FORMATS, ModelFileError, load_estimator, load_model
from ._model import SoftmaxModel
from ._questions import CounterfactualResult, closest_with_probability, minimal_flip
from ._result import InversionPath, InversionResult, IterationHistory
from ._schema import FeatureSchema, SchemaColumn
from ._sklearn import UnsupportedEstimatorError

__all__ = [
    "CounterfactualResult",
    "FeatureSchema",
    "RowCounterfactual",
    "SchemaColumn",
    "UnsupportedEstimatorError",
    "counterfactual",
    "encode_rows",
    "fold_error",
    "load_estimator",
    "closest_with_probability",
    "minimal_flip",
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
