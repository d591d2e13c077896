"""Exact inverse classification for softmax and logistic-regression models.

Given ``p(x) = softmax(A x + b)``, an instance ``x0``, a target class ``k`` and ``lam > 0``, find the
unique minimiser of ``E(x) = lam/2 ||x - x0||^2 - log p_k(x)`` (see MATH.md). numpy/scipy only.

>>> from solver import SoftmaxModel, invert, invert_path
"""

from ._api import METHODS, invert, invert_path
from ._io import FORMATS, ModelFileError, load_model
from ._model import SoftmaxModel
from ._questions import CounterfactualResult, closest_with_probability, minimal_flip
from ._recourse import RecourseResult, recourse, recourse_front
from ._result import InversionPath, InversionResult, IterationHistory

__all__ = [
    "CounterfactualResult",
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
