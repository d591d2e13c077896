"""Exact inverse classification for softmax and logistic-regression models.

Given ``p(x) = softmax(A x + b)``, an instance ``x0``, a target class ``k`` and ``lam > 0``, find the
unique minimiser of ``E(x) = lam/2 ||x - x0||^2 - log p_k(x)`` (see MATH.md). numpy/scipy only.

>>> from solver import SoftmaxModel, invert, invert_path
"""

from ._api import METHODS, invert, invert_path
from ._batch import BatchResult, invert_batch
from ._batch_flip import minimal_flip_batch
from ._batch_probability import closest_with_probability_batch
from ._flip import DEFAULT_MARGIN, minimal_flip
from ._io import FORMATS, ModelFileError, load_model
from ._model import SoftmaxModel
from ._probability import closest_with_probability
from ._result import CounterfactualResult, InversionPath, InversionResult, IterationHistory

__all__ = [
    "BatchResult",
    "closest_with_probability_batch",
    "invert_batch",
    "minimal_flip_batch",
    "CounterfactualResult",
    "DEFAULT_MARGIN",
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
