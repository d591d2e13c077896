"""Counterfactuals in a table's own columns: the numerical core behind :func:`solver.counterfactual`.

numpy only. It takes a folded model (with its :class:`FeatureSchema`), one row as a list of values and
constraints by column name, and answers with the public solvers (``minimal_flip``,
``closest_with_probability``, ``invert``; ``recourse`` for sparsity budgets and whole numbers once it
exists). Categorical columns are level choices: each group is solved as one-hot over *all* its levels,
the dropped level of ``drop="first"`` included as an explicit zero-weight column, so "one level per
group" holds exactly and the answer always decodes to a real level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._schema import CATEGORICAL, NUMERIC, ORDINAL, UNUSED

QUESTIONS = ("flip", "probability", "lam")
DEFAULT_MARGIN = 1e-6  # logit gap that keeps answers off the decision boundary, far above round-off


@dataclass(frozen=True)
class ColumnFacts:
    """What a training table says about one numeric or ordinal column (in its units or codes)."""

    lower: float
    upper: float
    spread: float  # standard deviation
    whole: bool  # every observed value is a whole number


@dataclass(frozen=True, eq=False)
class ColumnAnswer:
    """The answer in column terms (see :class:`solver.RowCounterfactual` for the pandas view).

    Attributes
    ----------
    values : list
        The new row, one value per input column (unchanged columns keep the source's value as given,
        a missing one included).
    x, x0 : ndarray (D,)
        Model features of the answer and of the source (imputed).
    changed : tuple of str
        Columns whose value changed.
    success, message
    result
        The solver's own result (``CounterfactualResult``, ``InversionResult`` or recourse's).
    distance : float
        ``sqrt(sum_j cost_j (x_j - x0_j)^2)`` over the one-hot-over-all-levels features.
    notes : tuple of str
        What the answer assumed: imputed values, unseen categories, rounding, ranges.
    imputed : tuple of (column, value)
    integer : tuple of str
        Columns held to whole values.
    bounds : dict
        Column -> (lower, upper) used, in the column's units (ordinal: codes).
    cost : dict
        Column -> weight used.
    """

    values: list
    x: np.ndarray
    x0: np.ndarray
    changed: tuple[str, ...]
    success: bool
    message: str
    result: object
    distance: float
    notes: tuple[str, ...] = ()
    imputed: tuple = ()
    integer: tuple[str, ...] = ()
    bounds: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class FixedPoint:
    """The result when nothing is left free to solve for: the point itself, valid or not."""

    x: np.ndarray
    proba: np.ndarray
    success: bool
    message: str


class _Expanded:
    """The model over one-hot-over-all-levels features: every categorical group gets an explicit
    column for its all-zeros state (a dropped level, or the source's unseen value) with zero weight."""

    def __init__(self, model, x0):
        schema = model.schema
        self.n_model = schema.n_features
        self.zero_state: dict[str, int] = {}
        self.groups: list[tuple[int, ...]] = []
        self.group_columns: list[str] = []
        self.fixed: list[int] = []  # one-hot features of a column with a single state
        n = self.n_model
        for column in schema.of_kind(CATEGORICAL):
            members = list(column.features)
            if not members:
                continue
            if any(f < 0 for f in column.level_features) or x0[members].max() < 0.5:
                self.zero_state[column.name] = n
                members.append(n)
                n += 1
            if len(members) >= 2:
                self.groups.append(tuple(members))
                self.group_columns.append(column.name)
            else:
                self.fixed.extend(members)
        self.n = n
        coef = np.zeros((model.n_classes, n))
        coef[:, : self.n_model] = model.coef
        names = list(schema.feature_names) + [f"{name}=(all zeros)" for name in self.zero_state]
        from ._model import SoftmaxModel

        self.model = SoftmaxModel(coef, model.intercept, classes=model.classes, feature_names=names)
        self.schema = schema

    def expand(self, x):
        xx = np.zeros(self.n)
        xx[: self.n_model] = x
        for name, index in self.zero_state.items():
            members = list(self.schema.column(name).features)
            xx[index] = 1.0 if x[members].max() < 0.5 else 0.0
        return xx

    def members(self, name) -> list[int]:
        column = self.schema.column(name)
        extra = [self.zero_state[name]] if name in self.zero_state else []
        return list(column.features) + extra


def _solvers():
    """The public solvers, looked up at call time (``recourse`` only exists once issue 9 lands)."""
    import sys

    from . import closest_with_probability, invert, minimal_flip

    return minimal_flip, closest_with_probability, invert, getattr(sys.modules[__package__], "recourse", None)


def _resolve_bounds(schema, x0, bounds, facts, notes):
    """Column -> (lower, upper) in feature units; user ranges win, then the data's, then the pipeline's.
    Default ranges are widened to include the source value, so they never force a change."""
    used, kept = {}, {}
    for column in schema.columns:
        if column.kind not in (NUMERIC, ORDINAL):
            continue
        value = x0[column.features[0]]
        lower, upper, source = column.lower, column.upper, column.range_note
        fact = facts.get(column.name)
        if fact is not None and column.kind == NUMERIC:
            lower, upper, source = fact.lower, fact.upper, "the data"
        if math.isfinite(lower) or math.isfinite(upper):
            lower, upper = min(lower, value), max(upper, value)
        if column.name in bounds:
            lower, upper = _user_range(column, bounds[column.name])
            source = "given"
        if math.isfinite(lower) or math.isfinite(upper):
            used[column.name] = (lower, upper)
            if source not in ("given", "the encoder's levels"):
                kept.setdefault(source, []).append(f"{column.name} in [{lower:g}, {upper:g}]")
    notes.extend(f"ranges from {source}: {', '.join(items)}" for source, items in kept.items())
    for name in bounds:
        column = schema.column(name)
        if column.kind not in (NUMERIC, ORDINAL):
            raise ValueError(f"bounds: column {name!r} is {column.kind}; ranges apply to numeric and ordinal columns "
                             "(lock a categorical column with immutable)")
    return used


def _user_range(column, pair):
    try:
        low, high = pair
    except (TypeError, ValueError):
        raise ValueError(f"bounds[{column.name!r}] must be a pair (lower, upper), None for an open end") from None

    def convert(value, default):
        if value is None:
            return default
        if column.kind == ORDINAL and column.code_of(value) is not None:
            return float(column.code_of(value))
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{column.name!r}]: {value!r} is neither a number nor a level") from None
        if math.isnan(number):
            raise ValueError(f"bounds[{column.name!r}] contains NaN; use None for an open end")
        return number

    low, high = convert(low, -math.inf), convert(high, math.inf)
    if low > high:
        raise ValueError(f"bounds[{column.name!r}]: lower {low:g} > upper {high:g}")
    return low, high


def _resolve_cost(schema, cost, facts):
    """Column -> weight: given, else 1/spread^2 from the data, else 1/scale^2 from the pipeline's scaler;
    1 per one-hot column."""
    used = {}
    for column in schema.columns:
        if column.kind == UNUSED:
            continue
        if column.name in cost:
            weight = float(cost[column.name])
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"cost[{column.name!r}] must be a finite number >= 0, got {cost[column.name]!r}")
        elif column.kind == CATEGORICAL:
            weight = 1.0
        else:
            fact = facts.get(column.name)
            spread = fact.spread if fact is not None and fact.spread > 0 else column.scale
            weight = 1.0 / spread**2
        used[column.name] = weight
    for name in cost:
        schema.column(name)
    return used


def solve_columns(model, values, target: int, *, question="flip", alpha=None, lam=None, immutable=(), bounds=None,
                  cost=None, max_changes=None, facts=None, integer=(), margin=DEFAULT_MARGIN) -> ColumnAnswer:
    """Answer ``question`` for one row given as values per input column (see :func:`solver.counterfactual`).

    ``target`` is a class index; ``facts`` maps column names to :class:`ColumnFacts` from the training
    data; ``integer`` names numeric columns that take whole values (ordinal columns always do).
    """
    schema = model.schema
    if schema is None:
        raise ValueError("model has no feature schema; build it with SoftmaxModel.from_estimator(pipeline)")
    if question not in QUESTIONS:
        raise ValueError(f"question must be one of {', '.join(QUESTIONS)}; got {question!r}")
    if question == "probability" and not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"question='probability' needs alpha, a probability strictly between 0 and 1; got {alpha!r}")
    if question == "lam" and not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam > 0):
        raise ValueError(f"question='lam' needs lam, a finite number > 0; got {lam!r}")
    if max_changes is not None and (isinstance(max_changes, bool) or not isinstance(max_changes, int) or max_changes < 1):
        raise ValueError(f"max_changes must be a positive integer or None, got {max_changes!r}")
    if max_changes is not None and question == "lam":
        raise ValueError("max_changes applies to question='flip' or 'probability', not 'lam'")
    facts = dict(facts or {})
    locked = set()
    for name in ([immutable] if isinstance(immutable, str) else list(immutable or ())):
        locked.add(schema.column(name).name)
    integer = {schema.column(name).name for name in integer} | {c.name for c in schema.of_kind(ORDINAL)}
    for name in integer:
        if schema.column(name).kind not in (NUMERIC, ORDINAL):
            raise ValueError(f"integer: column {name!r} is {schema.column(name).kind}, not numeric")

    encoded = schema.encode(values)
    x0 = encoded.x
    notes = [f"{name} is missing; the pipeline imputes {v!r} ({schema.column(name).fill_note})"
             for name, v in encoded.imputed]
    notes += [f"{name} has the unseen value {v!r}, encoded as its encoder's handle_unknown says" for name, v in
              encoded.unknown]
    bounds_used = _resolve_bounds(schema, x0, dict(bounds or {}), facts, notes)
    cost_used = _resolve_cost(schema, dict(cost or {}), facts)

    space = _Expanded(model, x0)
    xx0 = space.expand(x0)
    n = space.n
    weights, lower, upper, frozen, integer_features = _feature_arrays(schema, space, locked, integer, bounds_used,
                                                                      cost_used)
    movable_groups = [g for g, name in enumerate(space.group_columns) if name not in locked
                      and cost_used[name] > 0]
    integer_free = [j for j in integer_features if not frozen[j]]

    minimal_flip, closest_with_probability, invert, recourse = _solvers()
    common = dict(cost=None if np.all(weights == 1) else weights,
                  bounds=(lower, upper) if (np.isfinite(lower).any() or np.isfinite(upper).any()) else None)
    if movable_groups and question != "lam":
        notes.append("categorical columns may change level one column at a time"
                     if recourse is None or not (integer_free or max_changes) else
                     "categorical columns may change level")
    if question == "lam" and space.groups:
        notes.append("question='lam' keeps categorical columns at their levels")

    def ask(start, fixed, held, level_groups, ranges):
        if question == "lam":
            return invert(space.model, start, target, float(lam), immutable=held, cost=common["cost"], bounds=ranges)
        kwargs = dict(immutable=fixed if fixed.any() else None, categorical=space.groups or None,
                      change_levels=level_groups or None, cost=common["cost"], bounds=ranges)
        if question == "flip":
            return minimal_flip(space.model, start, target, margin=margin, **kwargs)
        return closest_with_probability(space.model, start, target, float(alpha), **kwargs)

    def solve(start, fixed, level_groups):
        """One continuous solve of the question from ``start`` with ``fixed`` features held.

        With ranges, the problem without them is solved first: every question here is convex (per
        categorical alternative), so an answer without ranges that lies within them is also the
        answer with them, and the exact unbounded solvers are much faster than the bounded ones."""
        held = fixed | _group_mask(space, n, [g for g in range(len(space.groups)) if question == "lam"
                                              or g not in level_groups])
        if held.all():
            return _fixed_point(space.model, start, target, question, margin, alpha)
        if (fixed | _group_mask(space, n, range(len(space.groups)))).all():  # only levels may change
            return _levels_only(space, start, level_groups, weights, target, question, margin, alpha)
        if common["bounds"] is not None:
            free = ask(start, fixed, held, level_groups, None)
            x = np.asarray(free.x, dtype=float)
            if free.success and np.all((x >= lower) & (x <= upper) | held):
                return free
        return ask(start, fixed, held, level_groups, common["bounds"])

    if (integer_free or max_changes is not None) and question != "lam":
        if recourse is not None:
            locked_groups = _group_mask(space, n, [g for g in range(len(space.groups)) if g not in movable_groups])
            held = frozen | locked_groups
            result = recourse(space.model, xx0, target, metric="l2", cost=common["cost"],
                              immutable=held if held.any() else None, bounds=common["bounds"],
                              integer=np.array(integer_features, dtype=int) if integer_features else None,
                              categorical=space.groups or None,
                              change_levels=(True if len(movable_groups) == len(space.groups) else movable_groups)
                              if movable_groups else False,
                              max_changes=max_changes, alpha=float(alpha) if question == "probability" else None)
            xx = np.asarray(result.x, dtype=float)
            success, message = bool(result.success), result.message
        elif max_changes is not None:
            raise NotImplementedError("max_changes needs solver.recourse (exact sparse recourse, issue 9), which "
                                      "this version of the solver does not have yet")
        else:
            result, xx, success, message = _rounded(solve, space, xx0, frozen, movable_groups, integer_free,
                                                    integer_features, lower, upper, weights, target, notes)
    else:
        result = solve(xx0, frozen, movable_groups)
        xx = np.asarray(result.x, dtype=float)
        success, message = bool(result.success), result.message
        if question == "lam" and integer_free:
            result, xx, success, message = _rounded(solve, space, xx0, frozen, [], integer_free, integer_features,
                                                    lower, upper, weights, target, notes, start=result)
    if success and not _leads(space.model, xx, target):
        success = False
        message = (f"class {model.classes[target]!r} is not the predicted class at the answer: {message}"
                   + (" (ask for alpha > 0.5, or question='flip')" if question == "probability" else ""))
    if question == "lam" and not success and result is not None and np.all(np.isfinite(xx)):
        message = (f"at lam = {lam:g} the minimiser is not predicted as {model.classes[target]!r}; "
                   "a smaller lam moves further" if _converged(result) else message)
    values, changed = _decode(schema, space, list(values), xx0, xx, integer)
    distance = float(math.sqrt(np.sum(weights * (xx - xx0) ** 2)))
    return ColumnAnswer(values=values, x=xx[: space.n_model], x0=x0, changed=changed, success=success,
                        message=message, result=result, distance=distance, notes=tuple(notes),
                        imputed=encoded.imputed, integer=tuple(sorted(integer)), bounds=bounds_used, cost=cost_used)


def _feature_arrays(schema, space, locked, integer, bounds_used, cost_used):
    """Per feature of the expanded space: weights, ranges, held features and the whole-valued ones."""
    n = space.n
    weights = np.ones(n)
    lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
    frozen = np.zeros(n, dtype=bool)
    frozen[space.fixed] = True
    integer_features = []
    for column in schema.columns:
        if column.kind == UNUSED:
            continue
        members = space.members(column.name) if column.kind == CATEGORICAL else list(column.features)
        weights[members] = cost_used[column.name]
        if column.kind != CATEGORICAL:
            j = column.features[0]
            lower[j], upper[j] = bounds_used.get(column.name, (-np.inf, np.inf))
            frozen[j] |= column.name in locked
            if column.name in integer:
                integer_features.append(j)
    return weights, lower, upper, frozen | (weights == 0), integer_features


def _converged(result) -> bool:
    return bool(getattr(result, "success", False)) or getattr(result, "status", None) == 0


def _group_mask(space, n, which):
    """Features of the categorical groups ``which`` (indices into ``space.groups``)."""
    mask = np.zeros(n, dtype=bool)
    for g in which:
        mask[list(space.groups[g])] = True
    return mask


def _leads(model, x, target) -> bool:
    z = model.decision_function(x)
    return bool(z[target] > np.max(np.delete(z, target)))


def _fixed_point(model, x, target, question, margin, alpha, what="nothing is left to change") -> FixedPoint:
    """The answer when every feature is held: ``x`` itself, a success if it answers the question
    (for question="lam" there is nothing to solve: always a success, validity is judged later)."""
    z = model.decision_function(x)
    gap = float(z[target] - np.max(np.delete(z, target)))
    proba = model.predict_proba(x)
    if question == "flip":
        ok = gap >= margin
    elif question == "probability":
        ok = gap > 0 and proba[target] >= alpha
    else:
        ok = True
    state = (f"class {target} leads by {gap:.3g} in the logits" if gap > 0 else
             f"class {target} trails by {-gap:.3g} in the logits")
    return FixedPoint(x=np.array(x, dtype=float), proba=proba, success=ok,
                      message=f"{what}: {state}, p = {proba[target]:.4g}")


def _levels_only(space, start, level_groups, weights, target, question, margin, alpha) -> FixedPoint:
    """Only categorical levels may change (everything else is held): try the start and every single
    group's other levels, as minimal_flip's enumeration does, and keep the cheapest that answers."""
    best = _fixed_point(space.model, start, target, question, margin, alpha)
    cost = 0.0 if best.success else np.inf
    for g in level_groups:
        members = list(space.groups[g])
        for level in members:
            if start[level] == 1.0:
                continue
            candidate = np.array(start, dtype=float)
            candidate[members] = 0.0
            candidate[level] = 1.0
            point = _fixed_point(space.model, candidate, target, question, margin, alpha,
                                 what=f"only a categorical level changes ({space.model.feature_names[level]})")
            distance = float(np.sum(weights * (candidate - start) ** 2))
            if point.success and distance < cost:
                best, cost = point, distance
    return best


def _rounded(solve, space, xx0, frozen, movable_groups, integer_free, integer_features, lower, upper, weights,
             target, notes, start=None):
    """Whole values without an exact integer solver: solve continuously, then hold the changed integer
    features at their nearest (and, failing that, their outward-rounded) whole values and re-solve the
    continuous rest exactly with the chosen levels fixed. Valid when it says so; not certified optimal
    over the integers (``solver.recourse`` is).

    With ``start`` (question="lam": the penalised minimiser) the nearest rounding is re-solved and kept
    whether or not it leads; the caller judges validity."""
    first = start if start is not None else solve(xx0, frozen, movable_groups)
    x = np.asarray(first.x, dtype=float)
    if not first.success:
        return first, x, False, first.message
    changed = [j for j in integer_free if x[j] != xx0[j]]
    if not changed:
        return first, x, True, first.message
    held = frozen.copy()
    held[integer_features] = True
    low, high = np.ceil(lower[changed]), np.floor(upper[changed])
    best = None
    for mode in ("nearest", "outward"):
        if mode == "nearest":
            whole = np.round(x[changed])
        else:
            whole = np.where(x[changed] > xx0[changed], np.ceil(x[changed]), np.floor(x[changed]))
        begin = np.array(xx0)
        begin[changed] = np.clip(whole, low, high)
        for group in space.groups:
            begin[list(group)] = x[list(group)]
        result = solve(begin, held, [])
        xr = np.asarray(result.x, dtype=float)
        valid = result.success and (start is not None or _leads(space.model, xr, target))  # lam: any
        if valid:
            distance = float(np.sum(weights * (xr - xx0) ** 2))
            if best is None or distance < best[0]:
                best = (distance, result, xr, mode)
        if start is not None:
            break
    if best is None:
        names = ", ".join(space.model.feature_names[j] for j in changed)
        message = (f"rounding {names} to whole values loses the target class; the exact integer answer needs "
                   "solver.recourse")
        return first, x, False, message
    _, result, xr, mode = best
    names = ", ".join(space.model.feature_names[j] for j in changed if xr[j] != xx0[j]) or "the whole-valued columns"
    notes.append(f"{names} rounded to whole values ({mode}) and the rest re-solved exactly; optimal for those whole "
                 "values, not certified optimal over all whole values (solver.recourse is)")
    return result, xr, True, result.message


def _decode(schema, space, source, xx0, xx, integer):
    """New values per column: the source's value where the column did not change."""
    values, changed = list(source), []
    for i, column in enumerate(schema.columns):
        if column.kind == UNUSED:
            continue
        if column.kind == CATEGORICAL:
            members = space.members(column.name)
            if not members:
                continue
            before, after = int(np.argmax(xx0[members])), int(np.argmax(xx[members]))
            if before == after:
                continue
            feature = members[after]
            value = column.baseline_levels[0] if feature >= space.n_model else column.level_of_feature(feature)
            values[i] = value
            changed.append(column.name)
            continue
        j = column.features[0]
        if xx[j] == xx0[j]:
            continue
        value = float(xx[j])
        if column.name in integer:
            value = float(round(value))
        if column.kind == ORDINAL:
            code = int(value)
            if not 0 <= code < len(column.levels) or code == xx0[j]:
                continue
            value = column.levels[code]
        values[i] = value
        changed.append(column.name)
    return values, tuple(changed)
