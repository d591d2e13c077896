"""What may change and at what price: immutable features, per-feature costs, feature ranges.

MATH.md section 6: the distance ``sum_j c_j (x_j - x0_j)^2`` becomes the plain one in ``y_j = sqrt(c_j) x_j``,
so the problem is the same with ``A`` scaled column-wise; an immutable feature (or ``c_j = 0``) is dropped
and its fixed contribution ``A_j x0_j`` moves into the intercept. Feature ranges become ranges on ``y``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import as_finite_array, feature_mask


@dataclass(frozen=True, eq=False)
class Constraints:
    """A validated constraint set in the solver's terms.

    Attributes
    ----------
    free : ndarray of int
        Features that may change (not immutable, cost > 0).
    scale : ndarray
        ``sqrt(cost)`` of the free features; ``y = scale * x[free]``.
    lower, upper : ndarray or None
        Ranges of the free features in original units (``None``: no finite bound anywhere).
    reduced_lower, reduced_upper : ndarray or None
        The same ranges for ``y = scale * x[free]``.
    """

    free: np.ndarray
    scale: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    reduced_lower: np.ndarray | None = None
    reduced_upper: np.ndarray | None = None

    @property
    def key(self) -> bytes:
        """Identifies the column scaling (not the ranges): the part a model basis depends on."""
        return self.free.tobytes() + b"|" + self.scale.tobytes()

    @property
    def bounded(self) -> bool:
        return self.lower is not None

    def to_reduced(self, x: np.ndarray) -> np.ndarray:
        return self.scale * x[self.free]

    def to_full(self, y: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """Features of x0 with the free ones replaced; immutable ones are copied, never recomputed.

        With ranges the unscaled values are clipped to them: ``y / scale`` of a ``y`` at its bound
        ``scale * l`` can round to one ulp outside ``l``."""
        x = np.array(x0, dtype=np.float64, copy=True)
        values = y / self.scale
        x[self.free] = values if self.lower is None else np.minimum(np.maximum(values, self.lower), self.upper)
        return x

    def active_bounds(self, x: np.ndarray, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
        """Original feature indices sitting at their lower and upper bound."""
        if not self.bounded:
            empty = np.zeros(0, dtype=int)
            return empty, empty
        values = x[self.free]
        slack = rtol * np.maximum(1.0, np.abs(values))
        at_lower = self.free[np.isfinite(self.lower) & (values <= self.lower + slack)]
        at_upper = self.free[np.isfinite(self.upper) & (values >= self.upper - slack)]
        return at_lower, at_upper


def _per_feature(value, n_features: int) -> np.ndarray:
    """A scalar broadcast to every feature, or the array as float64."""
    if np.ndim(value) == 0:
        return np.full(n_features, float(value))
    return np.asarray(value, dtype=np.float64)


def parse_constraints(n_features: int, immutable=None, cost=None, bounds=None) -> Constraints | None:
    """Validate the constraint arguments; ``None`` when there are none (the plain problem)."""
    if immutable is None and cost is None and bounds is None:
        return None
    fixed = feature_mask(immutable, n_features, "immutable")
    if cost is None:
        weights = np.ones(n_features)
    else:
        weights = as_finite_array(_per_feature(cost, n_features), "cost", 1)
        if weights.shape[0] != n_features:
            raise ValueError(f"cost has {weights.shape[0]} entries but the model has {n_features} features")
        if (weights < 0).any():
            raise ValueError("cost must be >= 0 for every feature (0 means the feature cannot change)")
    free = np.flatnonzero(~fixed & (weights > 0))
    scale = np.sqrt(weights[free])
    if bounds is None:
        return Constraints(free=free, scale=scale, lower=None, upper=None)
    try:
        low, high = bounds
    except (TypeError, ValueError):
        raise ValueError("bounds must be a pair (lower, upper) of arrays or scalars") from None
    low, high = _per_feature(low, n_features), _per_feature(high, n_features)
    for name, values in (("lower bounds", low), ("upper bounds", high)):
        if values.shape != (n_features,):
            raise ValueError(f"{name} must have {n_features} entries, got shape {values.shape}")
        if np.isnan(values).any():
            raise ValueError(f"{name} contain NaN; use -inf or +inf for 'no bound'")
    if (low > high).any():
        raise ValueError(f"lower > upper for feature(s) {np.flatnonzero(low > high)[:10].tolist()}")
    lower, upper = low[free], high[free]
    if not (np.isfinite(lower).any() or np.isfinite(upper).any()):
        return Constraints(free=free, scale=scale, lower=None, upper=None)
    return Constraints(free=free, scale=scale, lower=lower, upper=upper, reduced_lower=scale * lower,
                       reduced_upper=scale * upper)
