r"""Actionable recourse, exactly: the cheapest change of at most s features, in whole units where units are
whole, between real categories, within plausible ranges (issue 9).

For ``p(x) = softmax(A x + b)``, source ``x0`` and target ``k``::

    minimise   dist(x, x0)
    subject to z_k(x) - z_i(x) >= margin  (i != k)          [and p_k(x) >= alpha, if given]
               x_j integer (integer features); each changeable one-hot group exactly one level
               lower <= x <= upper; locked features equal to x0 (bit for bit)
               at most s features (a categorical group counts as one) differ from x0

with ``dist = sum_j c_j |x_j - x0_j|`` (``metric="l1"``) or ``sqrt(sum_j c_j (x_j - x0_j)^2)`` (``"l2"``).

How it is solved
----------------
The unknowns are the changes ``d_j = x_j - x0_j`` of the free numeric features, one binary ``y_l`` per level of
each changeable one-hot group (``sum_l y_l = 1``; a change of level a -> b costs ``c_a + c_b`` in both
metrics, because ``|y - y0| = (y - y0)^2`` for binaries) and, when a sparsity budget or a no-good cut needs it,
a binary ``z_j`` with ``z_j = 0 => d_j = 0`` (big-M rows ``-M^-_j z_j <= d_j <= M^+_j z_j``).

* ``metric="l1"``: ``d_j = p_j - n_j`` with ``p, n >= 0``; the margin form is a mixed-integer **linear**
  programme, solved by scipy's ``milp`` (HiGHS).
* ``metric="l2"``: a mixed-integer convex QP, solved by **outer approximation** with HiGHS as the master
  solver: ``c_j d_j^2`` is replaced by an epigraph variable ``t_j`` bounded below by perspective tangent cuts
  ``t_j >= c_j (2 a d_j - a^2 z_j)`` (exact at ``d_j = a`` and at ``z_j = 0``), or, for integer features,
  perspective secants through consecutive whole numbers ``v, v + 1``
  (``t_j >= c_j ((2v + 1) d_j - v (v + 1) z_j)``, exact at both). Every cut underestimates the true cost on the
  whole feasible set, so the master's optimum (and HiGHS's dual bound) is a valid lower bound; each master
  solution is *polished* (discrete part fixed, continuous part re-solved exactly, see below) into a verified
  answer, an upper bound; cuts are added at both points, and the loop stops when the bounds meet. With a cut at
  the exact continuous optimum of a support, the master's value for that support is exact (the tangent
  problem has the same KKT point), so the loop is finite (Duran and Grossmann's outer approximation).
* ``alpha`` (``p_k >= alpha``): for K = 2 the margin ``logit(alpha)`` (linear, exact); for K > 2 the convex
  constraint ``logsumexp_i(z_i - z_k) <= -log(alpha)``, outer-approximated by tangent cuts at the master
  solutions until it holds to 1e-9 at the answer.

Exact polish and verification
-----------------------------
A MIP solver's answer holds its constraints to tolerances (HiGHS's defaults are 1e-7 and 1e-6; we ask for 1e-10),
which is not "valid". Every answer is
rebuilt from x0: integer changes rounded to whole numbers, one level per group, unchanged features copied from
x0, locked ones never touched; the changed continuous features are then re-solved exactly with the discrete part
fixed and a margin raised by a round-off allowance (``l2``: the weighted projection onto ``{G d >= r,
L <= d <= U}`` by its exact dual line search/Newton; ``l1``: the LP vertex re-solved from its tight rows; for l2
the changed whole-number features are also tried rounded down and up from their continuous optimum), and
the result is verified in the model's own floating-point arithmetic: predicted as the target with every logit
gap ``z_k - z_i >= margin``, integers whole, groups one-hot, locks bit-for-bit, ranges held, at most s changes.
A master point that cannot be polished into a verified answer (its discrete part meets the margin only within
HiGHS's tolerance) is excluded by raising the master's margin for the remaining iterations; the lower bound is
then frozen at the last value proved for the requested margin, and ``optimal`` is claimed only when the verified
cost is within ``GAP_RTOL`` of a bound proved for the requested problem.

Exact pruning
-------------
Every constraint on the logits asks for larger gaps ``z_k - z_i``, so a feature whose column ``a_k - a_i`` has one
sign for every i never moves against it, and a level whose gains are matched by a level no more expensive (x0's own
level costs nothing) is never used; both are removed before the search (``_prune_dominated``), keeping an optimal
answer of every question, budgets and no-good cuts included.

Big-M constants
---------------
``M^+_j = upper_j - x0_j`` and ``M^-_j = x0_j - lower_j`` where the range is finite (exactly valid). Where it is
not, no range-based constant exists; the distance cannot serve either by itself (the continuous optimum's
distance is a *lower* bound on the sparse optimum, so it bounds nothing). A valid constant comes from any
verified answer of cost ``C`` (an upper bound on the optimum): every optimal answer has ``c_j |d_j| <= C``
(l1) or ``c_j d_j^2 <= C`` (l2), so ``M_j = C / c_j`` or ``sqrt(C / c_j)`` is valid. We solve with a guessed
constant (100x the cost of the answer without the sparsity budget), then check the guess against the constant
that the verified answer implies; if the guess was too small the problem is solved again with the implied,
valid constant. The certificate (``optimal``, ``bound``) is only given once the constants used are valid.
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.optimize
import scipy.sparse
from scipy.special import logsumexp

from ._constraints import parse_constraints
from ._levels import check_change_levels, check_groups, check_one_hot
from ._model import SoftmaxModel
from ._validation import as_finite_array, check_instance, check_target, feature_mask

DEFAULT_MARGIN = 1e-6  # logits: every other class's logit is at least this far below the target's
GAP_RTOL = 1e-6  # certified: verified cost <= bound * (1 + GAP_RTOL) (+ a round-off floor)
ALPHA_ATOL = 1e-9  # K > 2: logsumexp(z - z_k) <= -log(alpha) + ALPHA_ATOL at the answer
_MILP_REL_GAP = 1e-8  # HiGHS's relative gap; its absolute gap (1e-6) is made irrelevant by scaling the objective
_OBJECTIVE_SCALE = 1e4  # the master's objective is scaled so the expected optimum is about this large
_MAX_OA_ROUNDS = 200
_SEED_DENSE = (1.0, 2.0, 4.0)  # seed tangents at multiples of the dense continuous optimum ...
_SEED_ALONE = (1.0, 0.5, 0.25)  # ... and at fractions of each feature's single-handed move
_NEAR_STEPS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)  # cuts around the first answer, in standard units of each cost
_MAX_ROUNDED = 4  # whole-number features rounded both ways in the l2 polish (2^4 options at most)
# scipy passes options it does not know to HiGHS verbatim (HiGHS ignores names it does not know). HiGHS's
# feasibility-jump heuristic is a primal heuristic only (exactness is untouched); on these small masters it took
# two thirds of the time (16 ms -> 6 ms per German-credit master).
_HIGHS_OPTIONS = {"mip_heuristic_run_feasibility_jump": False, "primal_feasibility_tolerance": 1e-10,
                  "mip_feasibility_tolerance": 1e-10}
_FULL_SECANTS = 128  # integer features with at most this many values get every secant (an exact master)
_METRICS = ("l1", "l2")


@dataclass(frozen=True, eq=False)
class RecourseResult:
    """The answer to :func:`recourse` (one point of :func:`recourse_front`).

    Attributes
    ----------
    x : ndarray (D,)
        The answer (x0 itself when ``success`` is False).
    success : bool
        True only for a verified answer: predicted as the target with every logit gap ``z_k - z_i >= margin``,
        ``p_k >= alpha`` if asked, integers whole, one level per group, locked features bit-for-bit x0, ranges
        held, at most ``max_changes`` changes.
    message : str
    distance : float
        ``sqrt(sum_j c_j (x_j - x0_j)^2)`` for l2, ``sum_j c_j |x_j - x0_j|`` for l1 (inf on failure).
    proba : ndarray (K,)
        Class probabilities at ``x``.
    changed : tuple
        Changed features in index order: an int per numeric feature, a tuple of column indices per
        categorical group whose level changed.
    optimal : bool
        Certified: ``distance`` is within ``GAP_RTOL`` (relative, in the metric's objective: squared for l2)
        of ``bound``. False when the time limit stopped the search first.
    bound : float
        The best proved lower bound on the optimal distance (same units as ``distance``); inf when the question
        is proved to have no answer.
    alternatives : tuple of RecourseResult
        With ``n_alternatives = n``: up to n - 1 further answers in order of cost, each the cheapest that keeps
        at least one change of every earlier answer at its x0 value.
    target : int
    metric : str
    logit_gap : float
        ``min_{i != k} z_k(x) - z_i(x)``, the verified margin in logits.
    n_solves : int
        HiGHS (master) solves used.
    time_s : float
    """

    x: np.ndarray
    success: bool
    message: str
    distance: float
    proba: np.ndarray
    changed: tuple
    optimal: bool
    bound: float
    target: int
    metric: str
    logit_gap: float = float("nan")
    n_solves: int = 0
    time_s: float = 0.0
    alternatives: tuple = field(default_factory=tuple)

    @property
    def n_changes(self) -> int:
        """Number of changed features, a categorical group counting once."""
        return len(self.changed)


# -- the validated question ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Question:
    model: SoftmaxModel
    x0: np.ndarray
    target: int
    metric: str
    cost: np.ndarray  # (D,) > 0
    locked: np.ndarray  # (D,) bool: immutable, or a column of a group that may not change
    lower: np.ndarray  # (D,) ranges of the free features (integer features rounded inwards)
    upper: np.ndarray
    integer: np.ndarray  # (D,) bool
    num: np.ndarray  # free numeric features (not locked, in no group)
    groups: tuple  # changeable one-hot groups (tuples of columns)
    current: tuple  # x0's level (a column index) in each changeable group
    all_groups: tuple  # every one-hot group (locked ones too): how ``changed`` is reported
    margin: float
    alpha: float | None
    max_changes: int | None
    G: np.ndarray  # (K-1, D): rows a_k - a_i, i != k
    gap0: np.ndarray  # (K-1,): z_k(x0) - z_i(x0)
    others: np.ndarray

    @property
    def lse_alpha(self) -> bool:
        """p_k >= alpha is the convex log-sum-exp constraint (K > 2)."""
        return self.alpha is not None and self.model.n_classes > 2

    @property
    def linear_margin(self) -> float:
        """The margin every gap must meet: the user's, or logit(alpha) for K = 2 when that is larger."""
        if self.alpha is not None and self.model.n_classes == 2:
            return max(self.margin, math.log(self.alpha) - math.log1p(-self.alpha))
        return self.margin


def _as_model(model) -> SoftmaxModel:
    if isinstance(model, SoftmaxModel):
        return model
    try:
        return SoftmaxModel.from_estimator(model)
    except Exception as exc:  # whatever from_estimator raises, this is not a model we can read
        raise ValueError(f"model must be a solver.SoftmaxModel or a fitted scikit-learn LogisticRegression "
                         f"(or Pipeline ending in one); got {type(model).__name__} ({exc})") from None


def _check_real(value, name: str, low: float = 0.0, *, strict: bool = True, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if (value <= low if strict else value < low) or (high is not None and value >= high):
        bounds = f"> {low:g}" if strict else f">= {low:g}"
        raise ValueError(f"{name} must be {bounds}" + (f" and < {high:g}" if high is not None else "")
                         + f", got {value!r}")
    return value


def _pose(model, x0, target, metric, cost, immutable, bounds, integer, categorical, change_levels, max_changes,
          margin, alpha) -> _Question:
    model = _as_model(model)
    D = model.n_features
    x0 = check_instance(x0, D)
    target = check_target(target, model.n_classes)
    if metric not in _METRICS:
        raise ValueError(f"metric must be 'l1' or 'l2', got {metric!r}")
    if cost is None:
        weights = np.ones(D)
    else:
        weights = (np.full(D, _check_real(cost, "cost")) if np.ndim(cost) == 0
                   else as_finite_array(cost, "cost", 1))
        if weights.shape != (D,):
            raise ValueError(f"cost has {weights.shape[0]} entries but the model has {D} features")
        if not np.all(weights > 0):
            raise ValueError("cost must be > 0 for every feature; lock a feature with immutable instead of cost 0")
    margin = _check_real(margin, "margin")
    if alpha is not None:
        alpha = _check_real(alpha, "alpha", high=1.0)
    if max_changes is not None and (isinstance(max_changes, bool) or not isinstance(max_changes, numbers.Integral)
                                    or max_changes < 1):
        raise ValueError(f"max_changes must be a positive integer or None, got {max_changes!r}")
    constraints = parse_constraints(D, immutable=immutable, cost=weights, bounds=bounds)  # validates both
    fixed = feature_mask(immutable, D, "immutable")
    lower, upper = np.full(D, -np.inf), np.full(D, np.inf)
    if constraints is not None and constraints.bounded:
        lower[constraints.free], upper[constraints.free] = constraints.lower, constraints.upper
    whole = feature_mask(integer, D, "integer")
    all_groups = check_groups(categorical, D)
    check_one_hot(x0, all_groups)
    allowed = np.zeros(len(all_groups), dtype=bool)
    allowed[list(check_change_levels(change_levels, len(all_groups)))] = True
    in_group = np.zeros(D, dtype=bool)
    locked = fixed.copy()
    groups, current = [], []
    for g, columns in enumerate(all_groups):
        in_group[list(columns)] = True
        if allowed[g] and not fixed[list(columns)].any():
            groups.append(columns)
            current.append(columns[int(np.argmax(x0[list(columns)]))])
        else:
            locked[list(columns)] = True
    whole &= ~in_group
    bad = np.flatnonzero(whole & ~locked & (x0 != np.round(x0)))
    if bad.size:
        raise ValueError(f"x0 must be whole on integer features; x0[{bad[0]}] = {x0[bad[0]]!r}")
    lower = np.where(whole, np.ceil(lower), lower)
    upper = np.where(whole, np.floor(upper), upper)
    empty = np.flatnonzero(~locked & (lower > upper))
    if empty.size:
        raise ValueError(f"bounds of integer feature {empty[0]} contain no whole number")
    for columns in groups:  # bounds on one-hot columns say which levels are allowed (values in {0, 1})
        cols = list(columns)
        lower[cols] = np.clip(np.ceil(np.maximum(lower[cols], 0.0)), 0.0, 1.0)
        upper[cols] = np.clip(np.floor(np.minimum(upper[cols], 1.0)), 0.0, 1.0)
    num = np.flatnonzero(~locked & ~in_group)
    A, b = model.coef, model.intercept
    others = np.array([i for i in range(model.n_classes) if i != target])
    G = A[target] - A[others]
    gap0 = G @ x0 + (b[target] - b[others])
    _prune_dominated(x0, weights, lower, upper, num, groups, current, G)
    return _Question(model=model, x0=x0, target=target, metric=metric, cost=weights, locked=locked, lower=lower,
                     upper=upper, integer=whole, num=num, groups=tuple(groups), current=tuple(current),
                     all_groups=all_groups, margin=margin, alpha=alpha,
                     max_changes=None if max_changes is None else int(max_changes), G=G, gap0=gap0, others=others)


def _prune_dominated(x0, cost, lower, upper, num, groups, current, G) -> None:
    """Narrow the search, exactly, to changes that can be optimal (in place on ``lower``/``upper``).

    Every constraint on the logits (the margins and ``p_k >= alpha``) only asks for larger gaps
    ``z_k - z_i = G_i x + ...``. So (1) a numeric feature whose column of G has one sign never moves against it
    (moving back to x0 is cheaper, keeps every gap at least as large and changes fewer features), and (2) a level
    whose gains ``G[:, l]`` are matched by a no more expensive level (x0's own level costs nothing) is never
    needed. Both keep at least one optimal answer of every question (budgets and no-good cuts included: the
    replacement changes no more features, and keeps a group at x0 whenever the replaced answer did)."""
    for j in num:
        if not (lower[j] <= x0[j] <= upper[j]):
            continue  # x0 out of range: it must move into the range, in either direction
        if np.all(G[:, j] >= 0):
            lower[j] = x0[j]
        if np.all(G[:, j] <= 0):
            upper[j] = x0[j]
    for columns, cur in zip(groups, current):
        cols = list(columns)
        if np.any(lower[cols] > 0):
            continue  # a level is forced by the ranges
        available = [level for level in cols if upper[level] >= 1]
        price = {level: 0.0 if level == cur else cost[cur] + cost[level] for level in available}
        for level in available:
            if level == cur:
                continue
            for other in available:
                if other == level:
                    continue
                better = price[other] <= price[level] and np.all(G[:, other] >= G[:, level])
                tie = price[other] == price[level] and np.array_equal(G[:, other], G[:, level])
                if better and (not tie or other < level):
                    upper[level] = 0.0
                    break


# -- verification ------------------------------------------------------------------------------------------------
def _changed(q: _Question, x: np.ndarray) -> tuple:
    """Changed numeric features (ints) and changed groups (tuples), in index order."""
    in_group = set()
    items = []
    for columns in q.all_groups:
        in_group |= set(columns)
        if not np.array_equal(x[list(columns)], q.x0[list(columns)]):
            items.append((columns[0], columns))
    for j in np.flatnonzero(x != q.x0):
        if int(j) not in in_group:
            items.append((int(j), int(j)))
    return tuple(item for _, item in sorted(items, key=lambda t: t[0]))


def _logit_gaps(q: _Question, x: np.ndarray) -> np.ndarray:
    z = q.model.decision_function(x)
    return z[q.target] - z[q.others]


def _violation(q: _Question, x: np.ndarray, budget, nogoods) -> str | None:
    """Why ``x`` is not a valid answer, or None. Everything is checked in the model's own arithmetic."""
    if not np.array_equal(x[q.locked], q.x0[q.locked]):
        return "a locked feature changed"
    free = ~q.locked
    if np.any(x[free] < q.lower[free]) or np.any(x[free] > q.upper[free]):
        return "a range is not held"
    if np.any(x[q.integer] != np.floor(x[q.integer])):
        return "an integer feature is not whole"
    for columns in q.groups:
        values = x[list(columns)]
        if not (np.all((values == 0.0) | (values == 1.0)) and values.sum() == 1.0):
            return "a categorical group does not hold exactly one level"
    changed = _changed(q, x)
    if budget is not None and len(changed) > budget:
        return f"{len(changed)} changes exceed the budget of {budget}"
    changed_set = set(changed)
    for earlier in nogoods:
        if set(earlier) <= changed_set:
            return "an alternative repeats every change of an earlier answer"
    gaps = _logit_gaps(q, x)
    if np.any(gaps < q.linear_margin):
        return f"the logit gap {gaps.min():.3g} is below the margin {q.linear_margin:.3g}"
    if int(q.model.predict(x)) != q.target:
        return "the model does not predict the target"
    if q.lse_alpha:
        z = q.model.decision_function(x)
        if logsumexp(z - z[q.target]) > -math.log(q.alpha) + ALPHA_ATOL:
            return f"p_target < alpha = {q.alpha:g}"
    return None


def _objective(q: _Question, x: np.ndarray) -> float:
    """The metric's objective: sum c |dx| (l1) or sum c dx^2 (l2, the squared distance)."""
    dx = x - q.x0
    return float(np.sum(q.cost * np.abs(dx)) if q.metric == "l1" else np.sum(q.cost * dx * dx))


def _distance(q: _Question, objective: float) -> float:
    return objective if q.metric == "l1" else math.sqrt(max(objective, 0.0))


# -- exact continuous re-solves (the polish) ----------------------------------------------------------------------
def _line_maximum(mu, delta, G, r, inv2c, L, U, t_max):
    """Exact maximiser over t in [0, t_max] of the concave piecewise-quadratic dual q(mu + t delta).

    ``q'(t) = delta^T (r - G d(t))`` with ``d(t) = clip(G^T (mu + t delta) / 2c, L, U)`` is non-increasing and
    piecewise linear in t; its root is found between consecutive breakpoints (where a d_j reaches a bound)."""
    v0 = (G.T @ mu) * inv2c
    w = (G.T @ delta) * inv2c
    gdelta = G.T @ delta  # delta^T G d = sum_j gdelta_j d_j
    with np.errstate(divide="ignore", invalid="ignore"):
        tl, tu = (L - v0) / w, (U - v0) / w
    points = np.concatenate([tl[np.isfinite(tl) & (tl > 0)], tu[np.isfinite(tu) & (tu > 0)]])
    points = np.unique(np.concatenate([points[points < t_max], [t_max]] if np.isfinite(t_max) else [points]))
    base = float(delta @ r)

    def slope(t):
        return base - float(gdelta @ np.clip(v0 + t * w, L, U))

    t_prev, s_prev = 0.0, slope(0.0)
    if s_prev <= 0:
        return 0.0
    for t in points:
        s = slope(t)
        if s <= 0:
            return t_prev + (t - t_prev) * s_prev / (s_prev - s)
        t_prev, s_prev = t, s
    if np.isfinite(t_max):
        return t_max
    # beyond the last breakpoint the slope is linear in t: its root, or none (the primal rows cannot be met)
    rate = s_prev - slope(t_prev + 1.0)
    return t_prev + s_prev / rate if rate > 0 else math.inf


def _weighted_projection(c, G, r, L, U, max_iter=100):
    """``min sum_j c_j d_j^2  s.t.  G d >= r, L <= d <= U`` exactly, by its dual over ``mu >= 0`` (one
    multiplier per row; K - 1 rows): ``d(mu) = clip(G^T mu / 2c, L, U)``. Newton directions on the active rows
    with an exact line search on the piecewise-quadratic dual; for one row the line search alone is exact.

    Returns ``(d, dual_value)`` or ``(None, inf)`` when the rows cannot be met (the dual is unbounded). The dual
    value ``q(mu)`` is a lower bound for any ``mu >= 0`` (weak duality)."""
    m, n = G.shape
    if n == 0:
        return (np.zeros(0), 0.0) if np.all(r <= 0) else (None, math.inf)
    inv2c = 0.5 / c
    mu = np.zeros(m)
    scale = 1.0 + np.abs(r).max() + np.abs(G).sum(axis=1).max() * (1.0 + np.abs(np.where(np.isfinite(L), L, 0)).max()
                                                                  + np.abs(np.where(np.isfinite(U), U, 0)).max())
    tol = 1e-13 * scale
    d = np.clip(0.0, L, U)
    for _ in range(max_iter):
        v = (G.T @ mu) * inv2c
        d = np.clip(v, L, U)
        grad = r - G @ d  # the dual's gradient
        if np.all(grad <= tol) and np.all((mu == 0) | (np.abs(grad) <= tol)):
            break
        active = (mu > 0) | (grad > tol)
        free = (v > L) & (v < U)
        GA = G[active][:, free]
        H = (GA * inv2c[free]) @ GA.T
        delta = np.zeros(m)
        if free.any():
            step, *_ = np.linalg.lstsq(H, grad[active], rcond=1e-12)
            delta[active] = step
        delta[(mu <= 0) & (delta < 0)] = 0.0
        if float(delta @ grad) <= 0:  # not an ascent direction on this piece: projected gradient
            delta = np.where((mu <= 0) & (grad < 0), 0.0, grad)
        shrinking = delta < 0
        t_max = float(np.min(-mu[shrinking] / delta[shrinking])) if shrinking.any() else math.inf
        t = _line_maximum(mu, delta, G, r, inv2c, L, U, t_max)
        if not math.isfinite(t):
            return None, math.inf
        if t <= 0:
            break
        mu = np.maximum(mu + t * delta, 0.0)
    d = np.clip((G.T @ mu) * inv2c, L, U)
    if np.any(G @ d - r < -tol):
        return None, math.inf
    return d, float(np.sum(c * d * d) - mu @ (G @ d - r))


def _vertex_resolve(G, r, L, U, d_hat, rtol=1e-9):
    """An LP solution ``d_hat`` (from HiGHS, tolerances ~1e-7) made exact: values at 0 or at a bound are snapped,
    the others re-solved from the tight rows ``G_T d = r_T`` (least squares, minimum change)."""
    d = d_hat.copy()
    span = 1.0 + np.abs(d_hat)
    for target in (np.zeros_like(d), L, U):
        near = np.isfinite(target) & (np.abs(d - target) <= rtol * span)
        d[near] = target[near]
    snapped = (d == 0) | (d == L) | (d == U)
    basic = ~snapped
    if basic.any():
        scale = 1.0 + np.abs(r) + np.abs(G) @ np.abs(d)
        tight = np.abs(G @ d - r) <= 1e-6 * scale
        if tight.any():
            correction, *_ = np.linalg.lstsq(G[tight][:, basic], r[tight] - G[tight] @ d, rcond=None)
            d[basic] += correction
    return np.clip(d, L, U)


# -- the master problem (HiGHS) -----------------------------------------------------------------------------------
class _Master:
    """Column layout and rows of the MILP master; built once per question, solved many times."""

    def __init__(self, q: _Question, needs_z: np.ndarray, big_m: tuple[np.ndarray, np.ndarray]):
        self.q = q
        n = q.num.size
        self.n_num = n
        index = 0
        if q.metric == "l1":
            self.p = np.arange(index, index + n)
            self.n = np.arange(index + n, index + 2 * n)
            index += 2 * n
            self.d = None
            self.t = None
        else:
            self.d = np.arange(index, index + n)
            self.t = np.arange(index + n, index + 2 * n)
            index += 2 * n
        self.z = np.full(n, -1)
        where = np.flatnonzero(needs_z)
        self.z[where] = np.arange(index, index + where.size)
        index += where.size
        self.y = []
        for columns in q.groups:
            self.y.append(np.arange(index, index + len(columns)))
            index += len(columns)
        self.n_vars = index
        self.big_m = big_m  # (M+, M-) per numeric free feature, finite where z exists

    # the change dx of every feature as a linear function of the variables: dx = E v + e0
    def dx_row(self, w: np.ndarray) -> tuple[np.ndarray, float]:
        """Coefficients of ``w . dx`` in the variables, and its constant."""
        q = self.q
        coeffs = np.zeros(self.n_vars)
        wn = w[q.num]
        if q.metric == "l1":
            coeffs[self.p], coeffs[self.n] = wn, -wn
        else:
            coeffs[self.d] = wn
        constant = 0.0
        for columns, y in zip(q.groups, self.y):
            coeffs[y] = w[list(columns)]
            constant -= float(w[list(columns)] @ q.x0[list(columns)])
        return coeffs, constant

    def bounds(self):
        q = self.q
        lb, ub = np.zeros(self.n_vars), np.full(self.n_vars, np.inf)
        x0 = q.x0[q.num]
        L, U = q.lower[q.num] - x0, q.upper[q.num] - x0
        if q.metric == "l1":
            lb[self.p], ub[self.p] = np.maximum(L, 0.0), np.maximum(U, 0.0)
            lb[self.n], ub[self.n] = np.maximum(-U, 0.0), np.maximum(-L, 0.0)
        else:
            lb[self.d], ub[self.d] = L, U
        has_z = self.z >= 0
        ub[self.z[has_z]] = 1.0
        lb[self.z[has_z]] = np.where((L[has_z] > 0) | (U[has_z] < 0), 1.0, 0.0)  # x0 out of range: must change
        for columns, y in zip(q.groups, self.y):
            lb[y], ub[y] = q.lower[list(columns)], q.upper[list(columns)]
        return lb, ub

    def integrality(self):
        q = self.q
        kinds = np.zeros(self.n_vars)
        whole = q.integer[q.num]
        if q.metric == "l1":
            kinds[self.p[whole]] = 1
            kinds[self.n[whole]] = 1
        else:
            kinds[self.d[whole]] = 1
        kinds[self.z[self.z >= 0]] = 1
        for y in self.y:
            kinds[y] = 1
        return kinds

    def objective(self) -> tuple[np.ndarray, float]:
        q = self.q
        c = np.zeros(self.n_vars)
        cn = q.cost[q.num]
        if q.metric == "l1":
            c[self.p], c[self.n] = cn, cn
        else:
            c[self.t] = 1.0
        constant = 0.0
        for columns, current, y in zip(q.groups, q.current, self.y):
            c[y] = q.cost[list(columns)]
            here = columns.index(current)
            c[y[here]] = -q.cost[current]  # (1 - y_cur) c_cur + sum_{l != cur} c_l y_l
            constant += q.cost[current]
        return c, constant

    def changes_row(self) -> tuple[np.ndarray, float]:
        """``number of changes = coeffs . v + constant`` (z's, and 1 - y_current per group)."""
        coeffs = np.zeros(self.n_vars)
        coeffs[self.z[self.z >= 0]] = 1.0
        for current, columns, y in zip(self.q.current, self.q.groups, self.y):
            coeffs[y[columns.index(current)]] = -1.0
        return coeffs, float(len(self.q.groups))

    def item_indicator(self, item) -> tuple[np.ndarray, float]:
        """``1{item changed} <= coeffs . v + constant`` for a numeric feature (its z) or a group."""
        coeffs = np.zeros(self.n_vars)
        if isinstance(item, tuple):
            g = self.q.groups.index(item)
            coeffs[self.y[g][item.index(self.q.current[g])]] = -1.0
            return coeffs, 1.0
        local = int(np.searchsorted(self.q.num, item))
        coeffs[self.z[local]] = 1.0
        return coeffs, 0.0

    # outer-approximation cuts, built from the layout-independent pool of cut points
    def objective_cut(self, local: int, key) -> tuple[list, list, float]:
        """``t_j >= slope d_j + intercept z_j`` (perspective; ``z_j = 1`` without a z) under ``c_j d_j^2``: the
        tangent at ``a`` for ``key = ("t", a)``, the secant through ``v, v + 1`` for ``key = ("s", v)``.
        Returned sparse: (columns, values, right-hand side) of ``row . v >= rhs``."""
        c = self.q.cost[self.q.num[local]]
        kind, a = key
        slope, intercept = ((2 * a + 1) * c, -a * (a + 1) * c) if kind == "s" else (2 * a * c, -a * a * c)
        if self.z[local] >= 0:  # the intercept times z: z = 0 (so d = 0) leaves t >= 0
            return [self.t[local], self.d[local], self.z[local]], [1.0, -slope, -intercept], 0.0
        return [self.t[local], self.d[local]], [1.0, -slope], intercept

    def lse_cut(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Tangent of ``phi(x) = logsumexp(z - z_k) <= -log alpha`` at x: ``g . dx >= phi(x) + log alpha + g . dx(x)``
        with ``g = sum_i p_i (a_k - a_i) = -grad phi``."""
        q = self.q
        z = q.model.decision_function(x)
        w = z - z[q.target]
        phi = float(logsumexp(w))
        p = np.exp(w - phi)
        g = p[q.others] @ q.G
        coeffs, constant = self.dx_row(g)
        return coeffs, phi + math.log(q.alpha) + float(g @ (x - q.x0)) - constant

    def solve(self, pool: "_CutPool", margin: float, budget, nogoods, time_left: float, scale: float):
        q = self.q
        rows, lo, hi = [], [], []
        for i in range(q.G.shape[0]):
            coeffs, constant = self.dx_row(q.G[i])
            rows.append(coeffs)
            lo.append(margin - q.gap0[i] - constant)
            hi.append(np.inf)
        if budget is not None:
            coeffs, constant = self.changes_row()
            rows.append(coeffs)
            lo.append(-np.inf)
            hi.append(budget - constant)
        for items in nogoods:  # at least one change of every earlier answer stays at x0
            total, constant = np.zeros(self.n_vars), 0.0
            for item in items:
                coeffs, c0 = self.item_indicator(item)
                total += coeffs
                constant += c0
            rows.append(total)
            lo.append(-np.inf)
            hi.append(len(items) - 1 - constant)
        for y in self.y:
            coeffs = np.zeros(self.n_vars)
            coeffs[y] = 1.0
            rows.append(coeffs)
            lo.append(1.0)
            hi.append(1.0)
        for x in pool.lse:
            coeffs, rhs = self.lse_cut(x)
            rows.append(coeffs)
            lo.append(rhs)
            hi.append(np.inf)
        matrix = scipy.sparse.csr_array(np.array(rows)) if rows else None
        if q.metric == "l2":  # the objective's cuts, two or three nonzeros each
            r_idx, c_idx, vals = [], [], []
            for local, keys in enumerate(pool.objective):
                for key in keys:
                    cols, values, rhs = self.objective_cut(local, key)
                    r_idx += [len(lo)] * len(cols)
                    c_idx += cols
                    vals += values
                    lo.append(rhs)
                    hi.append(np.inf)
            n_rows = len(lo) - (0 if matrix is None else matrix.shape[0])
            if n_rows:
                offset = 0 if matrix is None else matrix.shape[0]
                cuts = scipy.sparse.csr_array((vals, (np.array(r_idx) - offset, c_idx)), shape=(n_rows, self.n_vars))
                matrix = cuts if matrix is None else scipy.sparse.vstack([matrix, cuts]).tocsr()
        has_z = np.flatnonzero(self.z >= 0)
        if has_z.size:  # big-M rows: d_j <= M+ z_j and -d_j <= M- z_j
            plus, minus = self.big_m
            n_rows = 2 * has_z.size
            r_idx, c_idx, vals = [], [], []
            for r, local in enumerate(has_z):
                up, down = (self.p[local], self.n[local]) if q.metric == "l1" else (self.d[local], self.d[local])
                r_idx += [2 * r, 2 * r, 2 * r + 1, 2 * r + 1]
                c_idx += [up, self.z[local], down, self.z[local]]
                vals += [1.0, -plus[local], 1.0 if q.metric == "l1" else -1.0, -minus[local]]
            big = scipy.sparse.csr_array((vals, (r_idx, c_idx)), shape=(n_rows, self.n_vars))
            matrix = big if matrix is None else scipy.sparse.vstack([matrix, big]).tocsr()
            lo += [-np.inf] * n_rows
            hi += [0.0] * n_rows
        c, constant = self.objective()
        lb, ub = self.bounds()
        constraints = scipy.optimize.LinearConstraint(matrix, lo, hi) if matrix is not None else None
        for presolve in (True, False):  # HiGHS occasionally reports a solve error; the other setting then works
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = scipy.optimize.milp(c * scale, integrality=self.integrality(),
                                          bounds=scipy.optimize.Bounds(lb, ub), constraints=constraints,
                                          options={"time_limit": max(time_left, 1e-3), "mip_rel_gap": _MILP_REL_GAP,
                                                   "presolve": presolve, **_HIGHS_OPTIONS})
            if res.status != 4:
                break
        bound = -math.inf
        dual = res.get("mip_dual_bound")
        if dual is None and res.status == 0:  # a pure LP (nothing discrete): its optimum is the bound
            dual = res.fun
        if res.status in (0, 1) and dual is not None and np.isfinite(dual):
            bound = dual / scale + constant
        return res, bound

    # reading a master solution
    def read(self, v: np.ndarray):
        """``(d, z_on, levels)``: numeric changes (integers rounded), which z are on, each group's level."""
        q = self.q
        d = v[self.p] - v[self.n] if q.metric == "l1" else v[self.d].copy()
        whole = q.integer[q.num]
        d[whole] = np.round(d[whole])
        z_on = np.ones(self.n_num, dtype=bool)
        has_z = self.z >= 0
        z_on[has_z] = v[self.z[has_z]] > 0.5
        levels = [columns[int(np.argmax(v[y]))] for columns, y in zip(q.groups, self.y)]
        return d, z_on, levels


# -- from a master point to a verified answer ---------------------------------------------------------------------
def _assemble(q: _Question, d: np.ndarray, levels) -> np.ndarray:
    """x from x0 (copied bit for bit), numeric changes added, one-hot levels set."""
    x = q.x0.copy()
    x[q.num] = np.clip(q.x0[q.num] + d, q.lower[q.num], q.upper[q.num])
    unchanged = d == 0
    x[q.num[unchanged]] = q.x0[q.num[unchanged]]
    for columns, level in zip(q.groups, levels):
        x[list(columns)] = 0.0
        x[level] = 1.0
    return x


def _round_off_allowance(q: _Question, x_fixed, cols, d_guess) -> float:
    """A bound on the round-off of the logit gaps (dot products of D terms: at most D eps sum |terms|, doubled
    for the two logits and the re-solve), so that gaps met at ``margin + allowance`` in exact arithmetic stay
    ``>= margin`` when the model evaluates them. About 1e-13 relative: it moves the answer by nothing visible."""
    x = np.abs(x_fixed)
    x[cols] += np.abs(d_guess)
    A, b = q.model.coef, q.model.intercept
    terms = np.abs(A) @ x + np.abs(b)
    return 8.0 * (q.x0.size + 2) * np.finfo(float).eps * float(terms.max() + 1.0)


def _polish(q: _Question, d: np.ndarray, z_on: np.ndarray, levels, margin: float):
    """Fix the discrete part (integers, levels, which features change); re-solve the changed continuous features
    exactly at ``margin`` plus a round-off allowance. Returns ``x`` (not yet verified)."""
    d = d.copy()
    d[~z_on] = 0.0
    x_fixed = _assemble(q, np.where(q.integer[q.num], d, 0.0), levels)
    continuous = z_on & ~q.integer[q.num]
    if q.lse_alpha or not continuous.any():
        return _assemble(q, d, levels)
    cols = q.num[continuous]
    gaps = _logit_gaps(q, x_fixed)
    r = margin + _round_off_allowance(q, x_fixed, cols, d[continuous]) - gaps
    L, U = q.lower[cols] - q.x0[cols], q.upper[cols] - q.x0[cols]
    G = q.G[:, cols]
    if q.metric == "l2":
        d_c, _ = _weighted_projection(q.cost[cols], G, r, L, U)
        if d_c is None:
            return _assemble(q, d, levels)
    else:
        d_c = _vertex_resolve(G, r, L, U, d[continuous])
    d[continuous] = d_c
    return _assemble(q, d, levels)


def _integer_roundings(q: _Question, d: np.ndarray, z_on: np.ndarray, levels, margin: float) -> list:
    """Other whole values for the master's support (l2): the continuous optimum over the changed features with
    their integrality relaxed, each changed integer feature rounded down or up (at most 2^_MAX_ROUNDED options).
    Upper bounds only (every option is verified; the certificate still comes from the master), but they put cuts
    where the optimum's whole values are, so the master's bound catches up in a round or two."""
    whole = q.integer[q.num] & z_on
    if q.metric != "l2" or q.lse_alpha or not whole.any():
        return []
    support = np.flatnonzero(z_on)
    cols = q.num[support]
    x_fixed = _assemble(q, np.zeros_like(d), levels)
    r = margin - _logit_gaps(q, x_fixed)
    L, U = q.lower[cols] - q.x0[cols], q.upper[cols] - q.x0[cols]
    relaxed, _ = _weighted_projection(q.cost[cols], q.G[:, cols], r, L, U)
    if relaxed is None:
        return []
    fractional = np.flatnonzero(whole[support] & (relaxed != np.round(relaxed)))
    if fractional.size == 0 or fractional.size > _MAX_ROUNDED:
        return []
    base = d.copy()
    base[~z_on] = 0.0
    base[support[whole[support]]] = np.round(relaxed[whole[support]])
    options = []
    for ups in itertools.product((False, True), repeat=fractional.size):
        option = base.copy()
        values = relaxed[fractional]
        option[support[fractional]] = np.where(ups, np.ceil(values), np.floor(values))
        if not np.array_equal(option[whole], d[whole]):
            options.append(option)
    return options


# -- the search ---------------------------------------------------------------------------------------------------
@dataclass
class _CutPool:
    """Outer-approximation cut points, valid for every master of one question (whatever its z layout)."""

    objective: list  # per numeric free feature: keys ("t", a) (tangent at a) or ("s", v) (secant v, v + 1)
    lse: list = field(default_factory=list)  # points x where phi was linearised

    def add_objective(self, q: _Question, local: int, a: float) -> bool:
        if q.integer[q.num[local]]:
            v = round(a)
            keys = [("s", v - 1), ("s", v)]
        else:
            keys = [("t", float(a))]
        new = [key for key in keys if key not in self.objective[local]]
        self.objective[local].extend(new)
        return bool(new)


@dataclass
class _Search:
    """State shared by the solves of one call: the cut pool, the deadline, the solve count, cached solves."""

    q: _Question
    deadline: float
    n_solves: int = 0
    pool: _CutPool | None = None
    relaxed: float | None = None
    free: "_Outcome | None" = None

    def __post_init__(self):
        self.pool = _CutPool([[] for _ in range(self.q.num.size)])
        if self.q.metric == "l2":
            _seed_cuts(self.q, self.pool)

    def time_left(self) -> float:
        return self.deadline - time.perf_counter()


@dataclass(frozen=True)
class _Outcome:
    x: np.ndarray | None
    objective: float
    bound: float
    optimal: bool
    status: str  # "ok", "infeasible", "time", "failed", "bigm"


def _finite_big_m(q: _Question, upper_cost: float | None):
    """Big-M constants per numeric free feature: the range where finite, else the change that alone would cost
    ``upper_cost`` (valid when ``upper_cost`` bounds the optimum: ``c_j |d_j| <= C`` or ``c_j d_j^2 <= C``)."""
    x0 = q.x0[q.num]
    plus, minus = np.maximum(q.upper[q.num] - x0, 0.0), np.maximum(x0 - q.lower[q.num], 0.0)
    if upper_cost is not None:
        c = q.cost[q.num]
        implied = upper_cost / c if q.metric == "l1" else np.sqrt(upper_cost / c)
        implied = np.where(q.integer[q.num], np.ceil(implied), implied)
        plus = np.where(np.isfinite(plus), plus, implied)
        minus = np.where(np.isfinite(minus), minus, implied)
    return plus, minus


def _big_m_covers(q: _Question, big_m, cost: float) -> bool:
    """Do the constants used admit every answer of cost <= ``cost`` (so the search over them was exact)?"""
    need_plus, need_minus = _finite_big_m(q, cost)
    return bool(np.all(big_m[0] >= need_plus) and np.all(big_m[1] >= need_minus))


def _needs_z(q: _Question, budget, nogoods) -> np.ndarray:
    needs = np.full(q.num.size, budget is not None)
    for items in nogoods:
        for item in items:
            if not isinstance(item, tuple):
                needs[int(np.searchsorted(q.num, item))] = True
    return needs


def _solve(search: _Search, budget, nogoods, big_m_cost: float | None) -> _Outcome:
    """One exact answer: a single MILP for l1 (margin form); outer approximation for l2 and for alpha, K > 2."""
    q = search.q
    needs_z = _needs_z(q, budget, nogoods)
    big_m = _finite_big_m(q, big_m_cost)
    if np.any(needs_z & ~(np.isfinite(big_m[0]) & np.isfinite(big_m[1]))):
        raise AssertionError("a z without a finite big-M")  # _answer always supplies a cost then
    master = _Master(q, needs_z, big_m)
    pool = search.pool
    margin = q.linear_margin
    working_margin = margin  # raised only when a master point meets the margin within HiGHS's tolerance only
    proved = -math.inf  # best lower bound proved for the requested margin
    best_x, best_obj = None, math.inf
    added_near = False
    status = "ok"
    if search.relaxed is None:
        search.relaxed = _relaxed_cost(q)
    scale = _OBJECTIVE_SCALE / (search.relaxed if math.isfinite(search.relaxed) and search.relaxed > 0 else 1.0)
    for _ in range(_MAX_OA_ROUNDS):
        if search.time_left() <= 0:
            status = "time"
            break
        res, bound = master.solve(pool, working_margin, budget, nogoods, search.time_left(), scale)
        search.n_solves += 1
        if res.status == 2:
            status = "infeasible" if best_x is None else "ok"
            if working_margin == margin and best_x is None:
                proved = math.inf
            break
        if res.x is None:
            status = "time" if res.status == 1 else "failed"
            break
        if working_margin == margin:
            proved = max(proved, bound)
        d, z_on, levels = master.read(res.x)
        x = _polish(q, d, z_on, levels, margin)
        reason = _violation(q, x, budget, nogoods)
        if reason is None and _objective(q, x) < best_obj:
            best_x, best_obj = x, _objective(q, x)
        extra = []
        for option in _integer_roundings(q, d, z_on, levels, margin):
            candidate = _polish(q, option, z_on, levels, margin)
            if _violation(q, candidate, budget, nogoods) is None:
                extra.append(candidate)
                if _objective(q, candidate) < best_obj:
                    best_x, best_obj = candidate, _objective(q, candidate)
        if res.status == 1:
            status = "time"
            break
        if best_x is not None and _certified(best_obj, proved):
            break
        added = False
        if q.metric == "l2":
            raw = res.x[master.d]
            for local in range(q.num.size):
                c = q.cost[q.num[local]]
                if res.x[master.t[local]] < c * raw[local] ** 2 * (1 - 1e-9) - 1e-300:
                    added |= pool.add_objective(q, local, float(raw[local]))
                if z_on[local]:
                    for point in [x, *extra]:
                        added |= pool.add_objective(q, local, float(point[q.num[local]] - q.x0[q.num[local]]))
            if best_x is not None and not added_near:  # once: a fan of cuts around the first verified answer
                added_near = True
                for local in np.flatnonzero(best_x[q.num] != q.x0[q.num]):
                    a = float(best_x[q.num[local]] - q.x0[q.num[local]])
                    step = 1.0 / math.sqrt(q.cost[q.num[local]])  # one standard unit of the cost
                    for f in _NEAR_STEPS:
                        for near in (a - f * step, a + f * step):
                            if q.lower[q.num[local]] - q.x0[q.num[local]] <= near <= \
                                    q.upper[q.num[local]] - q.x0[q.num[local]]:
                                added |= pool.add_objective(q, local, near)
        if q.lse_alpha:
            point = _assemble(q, d, levels)
            z = q.model.decision_function(point)
            if logsumexp(z - z[q.target]) > -math.log(q.alpha) + 1e-12:
                pool.lse.append(point)
                added = True
        if not added:
            if reason is None:
                break  # nothing left to learn: the bounds met as far as cuts can tell
            shortfall = max(margin - float(_logit_gaps(q, x).min()), 0.0)
            working_margin += max(10.0 * shortfall, 1e-9 * (1.0 + margin))
    if best_x is None:
        return _Outcome(None, math.inf, proved, False, status)
    if big_m_cost is not None and not _big_m_covers(q, big_m, best_obj):
        return _Outcome(best_x, best_obj, -math.inf, False, "bigm")
    optimal = _certified(best_obj, proved)
    return _Outcome(best_x, best_obj, min(proved, best_obj), optimal, "ok" if optimal else status)


def _certified(objective: float, bound: float) -> bool:
    return objective <= bound + GAP_RTOL * abs(objective) + 1e-12


def _relaxed_cost(q: _Question) -> float:
    """The metric's cost of the cheapest change of the free numeric features alone (no integers, no budget),
    or inf when they alone cannot reach the target."""
    cols = q.num
    r = q.linear_margin - q.gap0
    if cols.size == 0:
        return 0.0 if np.all(r <= 0) else math.inf
    L, U = q.lower[cols] - q.x0[cols], q.upper[cols] - q.x0[cols]
    G = q.G[:, cols]
    if q.metric == "l2":
        d, _ = _weighted_projection(q.cost[cols], G, r, L, U)
        return math.inf if d is None else float(np.sum(q.cost[cols] * d * d))
    c = q.cost[cols]
    res = scipy.optimize.linprog(np.concatenate([c, c]), A_ub=-np.hstack([G, -G]), b_ub=-r,
                                 bounds=list(zip(np.maximum(L, 0), np.maximum(U, 0)))
                                 + list(zip(np.maximum(-U, 0), np.maximum(-L, 0))), method="highs")
    return float(res.fun) if res.status == 0 else math.inf


def _seed_cuts(q: _Question, pool: _CutPool) -> None:
    """First cuts under c_j d_j^2: at the continuous optimum of the numeric features and at each feature's
    single-handed move (the change that alone would close the largest gap), so the first master is not blind."""
    n = q.num.size
    cols = q.num
    r = q.linear_margin - q.gap0
    L, U = q.lower[cols] - q.x0[cols], q.upper[cols] - q.x0[cols]
    d, _ = _weighted_projection(q.cost[cols], q.G[:, cols], r, L, U) if n else (None, 0)
    for local in range(n):
        j = cols[local]
        if q.integer[j] and U[local] - L[local] <= _FULL_SECANTS:  # the whole integer parabola: exact
            pool.objective[local].extend(("s", v) for v in range(int(L[local]), int(U[local])))
            continue
        points = [0.0]
        if d is not None and d[local] != 0:
            points += [float(np.clip(f * d[local], L[local], U[local])) for f in _SEED_DENSE]
        g = q.G[:, cols[local]]
        need = np.max(r)
        row = int(np.argmax(r))
        if need > 0 and g[row] != 0:
            alone = float(np.clip(need / g[row], L[local], U[local]))
            points += [f * alone for f in _SEED_ALONE]
        for a in points:
            pool.add_objective(q, local, a)


# -- messages for questions without an answer ----------------------------------------------------------------------
def _reachable(q: _Question, use_bounds: bool, use_locks: bool) -> bool:
    """Is the margin reachable by any real x (integers and one-hot relaxed, no budget)? A feasibility LP."""
    D = q.x0.size
    movable = ~q.locked if use_locks else np.ones(D, dtype=bool)
    lo = np.where(movable, q.lower if use_bounds else -np.inf, q.x0)
    hi = np.where(movable, q.upper if use_bounds else np.inf, q.x0)
    A_eq, b_eq = [], []
    for columns in q.all_groups:
        cols = list(columns)
        if movable[cols].all():
            lo[cols], hi[cols] = np.maximum(lo[cols], 0.0), np.minimum(hi[cols], 1.0)
            row = np.zeros(D)
            row[cols] = 1.0
            A_eq.append(row)
            b_eq.append(1.0)
    b = q.model.intercept
    box = list(zip(np.where(np.isfinite(lo), lo, None), np.where(np.isfinite(hi), hi, None)))
    # gap_i(x) = G_i x + b_k - b_i >= margin
    res = scipy.optimize.linprog(np.zeros(D), A_ub=-q.G, b_ub=(b[q.target] - b[q.others]) - q.linear_margin,
                                 A_eq=np.array(A_eq) if A_eq else None, b_eq=b_eq or None, bounds=box,
                                 method="highs")
    return res.status == 0


def _unreachable_message(q: _Question, budget, nogoods) -> str:
    name = _class_name(q)
    if nogoods:
        return ("no further answer: every other answer needs one of the changes of an earlier answer, or none "
                "reaches the target")
    if not _reachable(q, use_bounds=True, use_locks=True):
        if not _reachable(q, use_bounds=False, use_locks=False):
            return (f"no x makes class {name} the predicted class with margin {q.linear_margin:g}: another class's "
                    "logit exceeds the target's everywhere (possible when K > D + 1)")
        if _reachable(q, use_bounds=True, use_locks=False):
            return (f"the locked features make class {name} unreachable: even changing every unlocked feature to "
                    f"its range limit, class {name} is not reached")
        return (f"even changing every unlocked feature to its range limit, class {name} is not reached "
                "(widen the ranges)")
    if q.lse_alpha and not (budget is not None and _solved_without_budget(q)):
        return (f"p({name}) >= {q.alpha:g} is out of reach: no x within the ranges and locks (integers whole, one "
                "level per group) gets there")
    if budget is not None:
        return (f"no answer changes at most {budget} feature(s) (a categorical group counts as one) and reaches "
                f"class {name}; allow more changes")
    return (f"whole-number values and one level per group make class {name} unreachable within the ranges, "
            "although fractional values would reach it")


def _solved_without_budget(q: _Question) -> bool:
    """Does the question have an answer once the budget is dropped? (Only asked to word a message.)"""
    return _solve(_Search(q, time.perf_counter() + 5.0), None, (), None).x is not None


def _class_name(q: _Question) -> str:
    return str(q.model.classes[q.target])


# -- public API ---------------------------------------------------------------------------------------------------
def _answer(search: _Search, budget, nogoods, upper_cost: float | None = None) -> _Outcome:
    """Solve with valid big-M constants. ``upper_cost``, when given, is the cost of a verified answer that is
    admissible for this question too (the previous budget's answer, in the front), so it bounds the optimum."""
    q = search.q
    needs_z = _needs_z(q, budget, nogoods)
    plus, minus = _finite_big_m(q, None)
    if not np.any(needs_z & ~(np.isfinite(plus) & np.isfinite(minus))):
        return _solve(search, budget, nogoods, None)
    guess = upper_cost
    if guess is None:
        if search.free is None:
            search.free = _solve(search, None, (), None)  # no budget, no cuts: no big-M at all
        if search.free.x is None:
            return search.free
        guess = 100.0 * max(search.free.objective, 1e-12)
    outcome = _solve(search, budget, nogoods, guess)
    for _ in range(4):
        if outcome.status != "bigm":
            return outcome
        outcome = _solve(search, budget, nogoods, outcome.objective)  # now valid: that answer bounds the optimum
    return replace(outcome, optimal=False, status="time")


def _result(q: _Question, outcome: _Outcome, budget, nogoods, start: float, n_solves: int) -> RecourseResult:
    name = _class_name(q)
    common = dict(target=q.target, metric=q.metric, n_solves=n_solves, time_s=time.perf_counter() - start)
    if outcome.x is None:
        if outcome.status == "infeasible":
            message = _unreachable_message(q, budget, nogoods)
        elif outcome.status == "time":
            message = "the time limit was reached before any valid answer was found; raise time_limit"
        else:
            message = "the MIP solver failed without an answer"
        bound = outcome.bound if math.isfinite(outcome.bound) else (math.inf if outcome.status == "infeasible"
                                                                    else 0.0)
        return RecourseResult(x=q.x0.copy(), success=False, message=message, distance=math.inf,
                              proba=q.model.predict_proba(q.x0), changed=(), optimal=False,
                              bound=_distance(q, bound) if math.isfinite(bound) else bound, **common)
    x = outcome.x
    changed = _changed(q, x)
    distance = _distance(q, outcome.objective)
    bound = _distance(q, max(outcome.bound, 0.0))
    gap = float(_logit_gaps(q, x).min())
    p = q.model.predict_proba(x)
    what = f"{len(changed)} change{'s' if len(changed) != 1 else ''}"
    if outcome.optimal:
        message = (f"optimal ({q.metric} distance {distance:.6g}, {what}); class {name} leads by {gap:.3g} in the "
                   f"logits, p = {p[q.target]:.4g}")
    else:
        why = ("the time limit was reached; raise time_limit" if outcome.status == "time" else
               "the bounds stalled apart at the MIP solver's tolerance")
        message = (f"valid but not certified optimal: distance {distance:.6g}, best lower bound {bound:.6g} "
                   f"({what}); {why}")
    return RecourseResult(x=x, success=True, message=message, distance=distance, proba=p, changed=changed,
                          optimal=outcome.optimal, bound=bound, logit_gap=gap, **common)


def _check_search_args(n_alternatives, time_limit):
    if isinstance(n_alternatives, bool) or not isinstance(n_alternatives, numbers.Integral) or n_alternatives < 1:
        raise ValueError(f"n_alternatives must be a positive integer, got {n_alternatives!r}")
    return int(n_alternatives), _check_real(time_limit, "time_limit")


def _recourse(q: _Question, search: _Search, budget, n_alternatives: int, start: float,
              upper_cost: float | None = None) -> RecourseResult:
    if _violation(q, q.x0, budget, ()) is None:
        gap = float(_logit_gaps(q, q.x0).min())
        return RecourseResult(x=q.x0.copy(), success=True, distance=0.0, proba=q.model.predict_proba(q.x0),
                              changed=(), optimal=True, bound=0.0, target=q.target, metric=q.metric, logit_gap=gap,
                              message=f"x0 already qualifies (class {_class_name(q)} leads by {gap:.3g}); "
                                      "nothing changes", time_s=time.perf_counter() - start)
    nogoods: list[tuple] = []
    results = []
    for _ in range(n_alternatives):
        before = search.n_solves
        outcome = _answer(search, budget, tuple(nogoods), upper_cost if not nogoods else None)
        result = _result(q, outcome, budget, tuple(nogoods), start, search.n_solves - before)
        if not result.success and results:
            break
        results.append(result)
        if not result.success:
            break
        nogoods.append(result.changed)
    first = results[0]
    return replace(first, alternatives=tuple(results[1:]), time_s=time.perf_counter() - start)


def recourse(model, x0, target, *, metric="l2", cost=None, immutable=None, bounds=None, integer=None,
             categorical=None, change_levels=False, max_changes=None, margin=DEFAULT_MARGIN, alpha=None,
             n_alternatives=1, time_limit=10.0) -> RecourseResult:
    r"""The cheapest valid change that makes ``target`` the predicted class: exact, sparse, whole, plausible.

    .. math:: \min_x \ \mathrm{dist}(x, x_0) \quad \text{s.t.}\quad z_k(x) - z_i(x) \ge \text{margin}\ (i \ne k),
              \ [p_k(x) \ge \alpha],\ x_j \in \mathbb{Z}\ (j \in I),\ \text{one-hot groups},\ l \le x \le u,\
              x_L = x_{0L},\ \#\{\text{changes}\} \le s

    with ``dist = sum_j c_j |x_j - x0_j|`` (``"l1"``, a MILP) or ``sqrt(sum_j c_j (x_j - x0_j)^2)`` (``"l2"``, a
    mixed-integer convex QP by outer approximation); see the module docstring for the method, the exact polish
    and the big-M constants. The answer is verified in the model's arithmetic before ``success=True``.

    Parameters
    ----------
    model : SoftmaxModel or fitted scikit-learn LogisticRegression / Pipeline
    x0 : array (D,)
        The instance; whole on integer features, one-hot on each categorical group.
    target : int
        Class index.
    metric : "l2" or "l1"
    cost : float or array (D,), optional
        Per-feature weights ``c_j > 0`` (default 1): ``l2`` sums ``c_j dx_j^2``, ``l1`` sums ``c_j |dx_j|``. The
        dashboard passes ``1/std^2`` (l2) or ``1/MAD`` (l1). A one-hot column's weight is paid when it flips, so a
        change of level a -> b costs ``c_a + c_b``.
    immutable : boolean mask or indices, optional
        Locked features: copied from x0 bit for bit. Locking one column of a group locks the group.
    bounds : (lower, upper), optional
        Ranges of the free features (scalars or arrays; +-inf for none). Integer features' ranges are rounded
        inwards. An x0 outside its range must move into it (which counts as a change).
    integer : boolean mask or indices, optional
        Features that take whole values.
    categorical : list of index tuples, optional
        One-hot groups (as ``datasets`` records them). Locked unless ``change_levels`` allows them.
    change_levels : bool or list of int
        True lets every group change level, a list the groups (indices into ``categorical``) that may.
    max_changes : int, optional
        At most this many features differ from x0 (a group counts as one).
    margin : float > 0
        Required logit gap ``z_k - z_i`` for every other class i (default 1e-6 logits: strictly inside the target's
        region, far above round-off, so every caller's ``predict`` agrees).
    alpha : float in (0, 1), optional
        Also require ``p_k(x) >= alpha`` (K = 2: exactly; K > 2: to 1e-9 in ``log p_k``).
    n_alternatives : int
        Return up to this many answers: ``r`` and ``r.alternatives``, in order of cost, each the cheapest keeping at
        least one change of every earlier answer at its x0 value (no-good cuts on the sets of changes).
    time_limit : float
        Seconds for the whole call; on expiry the best valid answer is returned with ``optimal=False``.

    Returns
    -------
    RecourseResult

    Raises
    ------
    ValueError
        For invalid arguments, naming the argument.

    Examples
    --------
    >>> model = SoftmaxModel([[0.0, 0.0], [1.0, 2.0]], [0.0, -5.0])
    >>> r = recourse(model, [0.0, 0.0], 1, integer=[0, 1], bounds=(0, 10), max_changes=1)
    >>> r.x.tolist(), r.changed, r.optimal
    ([0.0, 3.0], (1,), True)
    """
    start = time.perf_counter()
    n_alternatives, time_limit = _check_search_args(n_alternatives, time_limit)
    q = _pose(model, x0, target, metric, cost, immutable, bounds, integer, categorical, change_levels, max_changes,
              margin, alpha)
    search = _Search(q, start + time_limit)
    return _recourse(q, search, q.max_changes, n_alternatives, start)


def recourse_front(model, x0, target, *, max_changes, **options) -> list:
    r"""The exact sparsity/cost trade-off: one optimal answer per budget ``s = 1 .. max_changes``.

    ``front[s - 1]`` is :func:`recourse` with ``max_changes = s`` (None where no answer exists with s changes).
    The optimal cost is non-increasing in s. The budgets are solved in increasing order sharing one cut pool and
    one deadline (``time_limit`` is for the whole front); once an answer changes fewer features than its budget
    allows and equals the answer without any budget, it answers every larger budget too.

    Parameters
    ----------
    max_changes : int
        The largest budget.
    options
        As for :func:`recourse`.

    Returns
    -------
    list of RecourseResult or None, length ``max_changes``
    """
    start = time.perf_counter()
    if "max_changes" in options:
        raise ValueError("max_changes is given once, as the front's largest budget")
    n_alternatives, time_limit = _check_search_args(options.pop("n_alternatives", 1), options.pop("time_limit", 10.0))
    unknown = set(options) - {"metric", "cost", "immutable", "bounds", "integer", "categorical", "change_levels",
                              "margin", "alpha"}
    if unknown:
        raise ValueError(f"unknown argument(s) for recourse_front: {', '.join(sorted(unknown))}")
    options.setdefault("metric", "l2")
    options.setdefault("margin", DEFAULT_MARGIN)
    q = _pose(model, x0, target, options["metric"], options.get("cost"), options.get("immutable"),
              options.get("bounds"), options.get("integer"), options.get("categorical"),
              options.get("change_levels", False), max_changes, options["margin"], options.get("alpha"))
    s_max = q.max_changes
    search = _Search(q, start + time_limit)
    unconstrained = _recourse(q, search, None, 1, start) if n_alternatives == 1 else None
    if unconstrained is not None and not unconstrained.success:
        return [None] * s_max
    front: list = []
    previous = None
    for s in range(1, s_max + 1):
        if (unconstrained is not None and unconstrained.optimal and unconstrained.n_changes <= s):
            front.append(replace(unconstrained, time_s=time.perf_counter() - start))
            continue
        upper = None if previous is None else _objective(q, previous.x)  # opt(s) <= opt(s - 1)
        result = _recourse(q, search, s, n_alternatives, time.perf_counter(), upper)
        front.append(result if result.success else None)
        previous = result if result.success else previous
    return front
