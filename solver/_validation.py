"""Argument checks at the public boundary. Internal code trusts what passes here."""

from __future__ import annotations

import numbers

import numpy as np


def as_finite_array(value, name: str, ndim: int) -> np.ndarray:
    """Return ``value`` as a float64 array of ``ndim`` dimensions with finite entries."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric; could not convert it to float64 ({exc})") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return array


def check_instance(x0, n_features: int, name: str = "x0") -> np.ndarray:
    x = as_finite_array(x0, name, 1)
    if x.shape[0] != n_features:
        raise ValueError(f"{name} has {x.shape[0]} features but the model has {n_features}")
    return x


def check_lam(lam, name: str = "lam") -> float:
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real):
        raise ValueError(f"{name} must be a positive real number, got {lam!r}")
    value = float(lam)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {lam!r}")
    return value


def check_lams(lams) -> np.ndarray:
    values = as_finite_array(lams, "lams", 1)
    if values.size == 0:
        raise ValueError("lams must contain at least one value")
    if np.any(values <= 0.0):
        raise ValueError(f"every lam must be > 0; lams has {int(np.sum(values <= 0))} value(s) <= 0")
    return values


def check_target(target, n_classes: int) -> int:
    if isinstance(target, bool) or not isinstance(target, numbers.Integral):
        raise ValueError(f"target must be a class index (an integer 0..{n_classes - 1}), got {target!r}")
    index = int(target)
    if not 0 <= index < n_classes:
        raise ValueError(f"target must be in 0..{n_classes - 1}, got {index}")
    return index


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    return float(tol)


def check_probability(alpha, name: str = "alpha") -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"{name} must be a probability strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def check_margin(margin) -> float:
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0 (a logit gap), got {margin!r}")
    return float(margin)


def check_lam_range(lam_range) -> tuple[float, float]:
    try:
        low, high = lam_range
    except (TypeError, ValueError):
        raise ValueError(f"lam_range must be a pair (low, high) with 0 < low < high, got {lam_range!r}") from None
    low, high = check_lam(low, "lam_range[0]"), check_lam(high, "lam_range[1]")
    if not low < high:
        raise ValueError(f"lam_range must have low < high, got {lam_range!r}")
    return low, high


def feature_mask(value, n_features: int, name: str) -> np.ndarray:
    """``value`` (a boolean mask or feature indices, or None) as a boolean mask of ``n_features``."""
    mask = np.zeros(n_features, dtype=bool)
    if value is None:
        return mask
    values = np.asarray(value)
    if values.dtype == bool:
        if values.shape != (n_features,):
            raise ValueError(f"{name} as a boolean mask must have {n_features} entries, got shape {values.shape}")
        return values.copy()
    if values.size == 0:
        return mask
    if values.dtype.kind not in "iu" or values.ndim != 1:
        raise ValueError(f"{name} must be a boolean mask or a list of integer feature indices, got {value!r}")
    if values.min() < 0 or values.max() >= n_features:
        raise ValueError(f"{name} indices must be in 0..{n_features - 1}")
    mask[values] = True
    return mask
