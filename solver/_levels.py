"""Categorical features in the questions: one-hot groups are frozen, or their level is enumerated.

A one-hot group is a set of columns of which exactly one is 1. The continuous questions cannot move it
by a fraction, so each group is kept at its level (its columns immutable) unless it is allowed to change
level; then each other level is tried, one group at a time, and the cheapest valid answer wins.
"""

from __future__ import annotations

import numbers
import time

import numpy as np

from ._result import CounterfactualResult
from ._validation import feature_mask


def check_groups(categorical, n_features: int) -> list[tuple[int, ...]]:
    """Validate ``categorical``: disjoint groups of >= 2 distinct feature indices in range."""
    if categorical is None:
        return []
    groups, seen = [], set()
    for position, group in enumerate(categorical):
        try:
            columns = tuple(group)
        except TypeError:
            raise ValueError(f"categorical[{position}] must be a tuple of feature indices, got {group!r}") from None
        if not all(isinstance(j, numbers.Integral) and not isinstance(j, bool) for j in columns):
            raise ValueError(f"categorical[{position}] must hold integer feature indices, got {group!r}")
        columns = tuple(int(j) for j in columns)
        if len(columns) < 2 or len(set(columns)) != len(columns):
            raise ValueError(f"categorical[{position}] must hold >= 2 distinct feature indices, got {group!r}")
        if min(columns) < 0 or max(columns) >= n_features:
            raise ValueError(f"categorical[{position}] has indices outside 0..{n_features - 1}: {group!r}")
        if seen & set(columns):
            raise ValueError(f"categorical[{position}] shares columns with an earlier group: {group!r}")
        seen |= set(columns)
        groups.append(columns)
    return groups


def check_change_levels(change_levels, n_groups: int) -> tuple[int, ...]:
    """Indices of the groups that may change level: True (all), None/False (none), or a sequence."""
    if change_levels is None or change_levels is False:
        return ()
    if change_levels is True:
        return tuple(range(n_groups))
    try:
        values = list(change_levels)
    except TypeError:
        raise ValueError(f"change_levels must be True, False, None or a list of group indices, got {change_levels!r}"
                         ) from None
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < n_groups:
            raise ValueError(f"change_levels must list indices into categorical (0..{n_groups - 1}), got {value!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"change_levels lists a group twice: {change_levels!r}")
    return tuple(int(v) for v in values)


def check_one_hot(x0: np.ndarray, groups) -> None:
    for position, columns in enumerate(groups):
        values = x0[list(columns)]
        if not (np.all((values == 0.0) | (values == 1.0)) and values.sum() == 1.0):
            raise ValueError(f"x0 is not one-hot in categorical[{position}] (columns {columns}): {values.tolist()}")


def _alternatives(x0, groups, allowed):
    """Starting points: x0, then x0 with one allowed group switched to each other level."""
    yield x0, ()
    for g in allowed:
        columns = groups[g]
        current = columns[int(np.argmax(x0[list(columns)]))]
        for level in columns:
            if level != current:
                switched = np.array(x0, dtype=float)
                switched[list(columns)] = 0.0
                switched[level] = 1.0
                yield switched, ((g, current, level),)


def weighted_distance(x, x0, cost) -> float:
    """``sqrt(sum_j cost_j (x_j - x0_j)^2)`` (Euclidean without costs)."""
    diff = x - x0
    if cost is None:
        return float(np.sqrt(diff @ diff))
    return float(np.sqrt(np.sum(np.broadcast_to(np.asarray(cost, dtype=float), diff.shape) * diff**2)))


def over_levels(model, x0, cost, categorical, change_levels, immutable, solve, start_time) -> CounterfactualResult:
    """Solve once per allowed categorical alternative; the cheapest valid total change wins.

    ``solve(start, frozen)`` answers from ``start`` with the boolean mask ``frozen`` of features that may
    not move (the immutable ones and every one-hot column).
    """
    groups = check_groups(categorical, model.n_features)
    allowed = check_change_levels(change_levels, len(groups))
    if allowed:
        check_one_hot(x0, [groups[g] for g in allowed])
    frozen = feature_mask(immutable, model.n_features, "immutable")
    for columns in groups:
        frozen[list(columns)] = True
    best, best_total, best_change = None, np.inf, ()
    for start, change in _alternatives(x0, groups, allowed):
        result = solve(start, frozen)
        total = weighted_distance(result.x, x0, cost) if result.success else np.inf
        if best is None or (result.success and (not best.success or total < best_total - 1e-12)):
            best, best_total, best_change = result, total, change
    names = model.feature_names
    readable = tuple((g, names[a] if names else str(a), names[b] if names else str(b)) for g, a, b in best_change)
    fields = dict(best.__dict__, level_changes=readable, time_s=time.perf_counter() - start_time)
    if best.success:
        fields["distance"] = best_total
    return CounterfactualResult(**fields)
