"""The questions analysts ask (MATH.md section 6): the smallest change that flips the decision, and the
smallest change that reaches a target probability; with immutable features, costs, ranges and
categorical features whose level may change."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
from scipy.special import logsumexp

from ._api import _check_model, _pose, invert
from ._validation import check_instance, check_target

_FEASIBILITY_RTOL = 1e-9


@dataclass(frozen=True, eq=False)
class CounterfactualResult:
    """The answer to :func:`minimal_flip` or :func:`closest_with_probability`.

    Attributes
    ----------
    x : ndarray (D,)
        The counterfactual (x0 itself when nothing needs to change; undefined when ``success`` is
        False, where it is x0).
    proba : ndarray (K,)
        Class probabilities at ``x``.
    distance : float
        ``sqrt(sum_j cost_j (x_j - x0_j)^2)``, the minimised distance (Euclidean without costs).
    target : int
    lam : float or None
        For :func:`closest_with_probability`: the trade-off whose minimiser this is (``inf`` when x0
        already qualifies); None for :func:`minimal_flip`.
    success : bool
    message : str
    method : str
    n_iter : int
        Solver iterations (flip) or lambda probes (probability).
    time_s : float
    at_lower, at_upper : ndarray of int
        Features that end at a bound.
    tied_classes : ndarray of int
        Classes whose decision boundary with the target is active (logit gap equal to the margin).
    level_changes : tuple of (int, str, str)
        Categorical groups whose level changed: (group index, from feature name, to feature name).
    """

    x: np.ndarray
    proba: np.ndarray
    distance: float
    target: int
    lam: float | None
    success: bool
    message: str
    method: str
    n_iter: int
    time_s: float
    at_lower: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    at_upper: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    tied_classes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    level_changes: tuple = ()


def _weights(n_features, cost):
    return np.ones(n_features) if cost is None else np.broadcast_to(np.asarray(cost, dtype=float), (n_features,))


def _weighted_distance(x, x0, cost):
    return float(math.sqrt(np.sum(_weights(x.shape[0], cost) * (x - x0) ** 2)))


def _freeze(n_features, immutable, groups) -> np.ndarray:
    mask = np.zeros(n_features, dtype=bool)
    if immutable is not None:
        values = np.asarray(immutable)
        if values.dtype == bool:
            mask |= values
        elif values.size:
            mask[values.astype(int)] = True
    for group in groups:
        mask[list(group)] = True
    return mask


def _check_groups(categorical, n_features):
    groups = [] if categorical is None else [tuple(int(j) for j in g) for g in categorical]
    seen = set()
    for g in groups:
        if len(g) < 2 or min(g) < 0 or max(g) >= n_features or seen & set(g):
            raise ValueError("categorical must be disjoint groups of >= 2 feature indices (one-hot columns) in range")
        seen |= set(g)
    return groups


def _alternatives(x0, groups, change_levels):
    """Starting points: x0, then x0 with one allowed group switched to each other level."""
    yield x0, ()
    if not change_levels:
        return
    allowed = range(len(groups)) if change_levels is True else [int(g) for g in change_levels]
    for g in allowed:
        columns = groups[g]
        current = columns[int(np.argmax(x0[list(columns)]))]
        for level in columns:
            if level != current:
                switched = np.array(x0, dtype=float)
                switched[list(columns)] = 0.0
                switched[level] = 1.0
                yield switched, ((g, current, level),)


def _enumerate(model, x0, cost, categorical, change_levels, immutable, solve):
    """Solve once per allowed categorical alternative; the cheapest valid total change wins."""
    groups = _check_groups(categorical, model.n_features)
    frozen = _freeze(model.n_features, immutable, groups)
    best = None
    for start, change in _alternatives(x0, groups, change_levels):
        result = solve(start, frozen)
        if not result.success:
            if best is None:
                best = (np.inf, result, change)
            continue
        total = _weighted_distance(result.x, x0, cost)
        if best is None or not best[1].success or total < best[0] - 1e-12:
            best = (total, result, change)
    total, result, change = best
    names = model.feature_names
    readable = tuple((g, names[a] if names else str(a), names[b] if names else str(b)) for g, a, b in change)
    return result, (total if np.isfinite(total) else result.distance), readable


# -- minimal flip -------------------------------------------------------------------------------
def _boundary_rows(problem, target, margin):
    """``B y + c <= 0`` says every other class's logit is at least ``margin`` below the target's."""
    A, b = problem.model.coef, problem.model.intercept
    others = np.array([i for i in range(A.shape[0]) if i != target])
    return others, A[others] - A[target], b[others] - b[target] + margin


def _feasible(B, c, lower, upper) -> bool:
    """Is there a y (within the ranges) with ``B y + c <= 0``? A linear programme."""
    bounds = None if lower is None else list(zip(np.where(np.isfinite(lower), lower, None),
                                                 np.where(np.isfinite(upper), upper, None)))
    result = scipy.optimize.linprog(np.zeros(B.shape[1]), A_ub=B, b_ub=-c, bounds=bounds if bounds else (None, None),
                                    method="highs")
    return result.status != 2


def _project_unbounded(problem, B, c, others, target):
    """Projection of y0 onto ``{B y + c <= 0}`` in the reduced space: ``y = y0 + P u``, ``u = -N^T mu``
    with ``mu = nnls(N^T, z)``, ``N z = h0`` (the dual of MATH.md section 6, exact active set).
    ``N = B P`` comes from the basis's ``M = A P`` in O(K r)."""
    basis = problem.model.reduced_basis()
    N = (basis.M - basis.M[target])[others]
    h0 = B @ problem.x0 + c
    z, *_ = np.linalg.lstsq(N, h0, rcond=None) if basis.rank else (np.zeros(0),)
    if basis.rank and np.linalg.norm(N @ z - h0) <= 1e-10 * (np.linalg.norm(h0) + 1.0):
        mu, _ = scipy.optimize.nnls(N.T, z, maxiter=50 * max(1, N.shape[0]))
        u = -N.T @ mu
        return problem.x0 + basis.lift(u)
    # h0 is not in the range of N (more constraints than dimensions): a small QP in u.
    result = scipy.optimize.minimize(lambda u: 0.5 * u @ u, np.zeros(basis.rank), jac=lambda u: u, method="SLSQP",
                                     constraints=[{"type": "ineq", "fun": lambda u: -(N @ u + h0), "jac": lambda u: -N}],
                                     options={"ftol": 1e-15, "maxiter": 500})
    return problem.x0 + basis.lift(result.x)


def _project_bounded(problem, B, c):
    """Projection onto ``{B y + c <= 0, l <= y <= u}`` by its dual: maximise over mu >= 0
    ``q(mu) = min_{l<=y<=u} 1/2||y - y0||^2 + mu^T (B y + c)``, attained at ``y(mu) = clip(y0 - B^T mu)``;
    then re-solve the equalities of the active set exactly."""
    y0, lower, upper = problem.x0, problem.lower, problem.upper

    def y_of(mu):
        return np.clip(y0 - B.T @ mu, lower, upper)

    def negative_dual(mu):
        y = y_of(mu)
        residual = B @ y + c
        return -(0.5 * float((y - y0) @ (y - y0)) + float(mu @ residual)), -residual

    result = scipy.optimize.minimize(negative_dual, np.zeros(B.shape[0]), jac=True, method="L-BFGS-B",
                                     bounds=[(0, None)] * B.shape[0],
                                     options={"ftol": 0.0, "gtol": 1e-13, "maxiter": 5000, "maxcor": 20})
    mu = result.x
    for _ in range(5):  # polish: equalities of the active set, solved exactly
        y = y_of(mu)
        active = mu > 1e-12 * max(1.0, mu.max())
        clipped = (y <= lower) | (y >= upper)
        free = ~clipped
        if not active.any():
            break
        Bs, Bf = B[active], B[active][:, free]
        rhs = Bs[:, free] @ y0[free] + Bs[:, clipped] @ y[clipped] + c[active]
        try:
            mu_active = np.linalg.solve(Bf @ Bf.T, rhs)
        except np.linalg.LinAlgError:
            break
        if np.any(mu_active < 0):
            break
        candidate = mu.copy()
        candidate[active] = mu_active
        candidate[~active] = 0.0
        if np.allclose(candidate, mu, rtol=1e-15, atol=0):
            break
        mu = candidate
    return y_of(mu)


def minimal_flip(model, x0, target, margin=0.0, *, immutable=None, cost=None, bounds=None, categorical=None,
                 change_levels=None) -> CounterfactualResult:
    r"""The smallest change that makes ``target`` the predicted class.

    Solves the projection onto the polyhedron where the target has the largest logit,

    .. math:: \min_x \tfrac12 \sum_j c_j (x_j - x_{0j})^2 \quad \text{s.t.} \quad
              z_i(x) \le z_k(x) - \text{margin} \ \ (i \ne k),\ \ l \le x \le u,

    exactly through its (K-1)-variable dual (MATH.md section 6): non-negative least squares in the
    reduced space without ranges, the dual of the clipped problem with ranges. ``margin > 0`` puts the
    result strictly inside the target's region. When no x can make the target the predicted class
    (possible when K > D + 1, or under constraints) the result says so, with ``success=False``.

    Parameters
    ----------
    model, x0, target
        As in :func:`invert`.
    margin : float >= 0
        Required logit gap between the target and every other class.
    immutable, cost, bounds
        As in :func:`invert`.
    categorical : sequence of index tuples, optional
        One-hot groups. They are frozen unless listed in ``change_levels``.
    change_levels : True or sequence of int, optional
        Groups (indices into ``categorical``, or True for all) whose level may change, one group at a
        time; every alternative level is solved exactly and the cheapest valid option returned.

    Returns
    -------
    CounterfactualResult

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    >>> res = minimal_flip(model, [2.0, 0.0], target=1)
    >>> res.x.round(6).tolist(), round(res.distance, 6)
    ([1.0, 1.0], 1.414214)
    """
    start_time = time.perf_counter()
    model = _check_model(model)
    x0 = check_instance(x0, model.n_features)
    target = check_target(target, model.n_classes)
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")

    def solve(start, frozen):
        return _minimal_flip(model, start, target, float(margin), frozen, cost, bounds, start_time)

    result, distance, changes = _enumerate(model, x0, cost, categorical, change_levels, immutable, solve)
    return _finalise(result, distance, changes, start_time)


def _finalise(result, distance, changes, start_time):
    return CounterfactualResult(**{**result.__dict__, "distance": distance, "level_changes": changes,
                                   "time_s": time.perf_counter() - start_time})


def _minimal_flip(model, x0, target, margin, frozen, cost, bounds, start_time) -> CounterfactualResult:
    problem = _pose(model, x0, frozen if frozen.any() else None, cost, bounds)
    others, B, c = _boundary_rows(problem, target, margin)
    gaps = B @ problem.x0 + c
    common = dict(target=target, lam=None, method="minimal-flip", time_s=0.0)
    if np.all(gaps <= 0):
        return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=0.0, success=True, n_iter=0,
                                    message=f"x0 is already predicted as class {target} with the margin; nothing changes",
                                    **common)
    if not _feasible(B, c, problem.lower, problem.upper):
        reason = "under these constraints" if problem.constraints is not None else (
            "anywhere: another class's logit exceeds the target's everywhere (possible when K > D + 1)")
        return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=np.inf, success=False, n_iter=0,
                                    message=f"no x can make class {target} the predicted class {reason}", **common)
    if problem.lower is None:
        y = _project_unbounded(problem, B, c, others, target)
    else:
        y = _project_bounded(problem, B, c)
    x = problem.to_full(y)
    logits = model.decision_function(x)
    scale = np.abs(logits).max() + 1.0
    violation = float(np.max(np.delete(logits, target) - logits[target] + margin))
    tied = others[np.abs(B @ y + c) <= 1e-9 * scale]
    at_lower, at_upper = (problem.constraints.active_bounds(x) if problem.constraints is not None
                          else (np.zeros(0, dtype=int), np.zeros(0, dtype=int)))
    success = violation <= _FEASIBILITY_RTOL * scale
    message = (f"the target leads every other class by at least the margin {margin:g}; "
               f"{len(tied)} decision boundar{'y is' if len(tied) == 1 else 'ies are'} active"
               if success else f"the projection missed the target's region by {violation:.2e} in the logits")
    return CounterfactualResult(x=x, proba=model.predict_proba(x), distance=_weighted_distance(x, x0, cost),
                                success=success, message=message, n_iter=1, at_lower=at_lower, at_upper=at_upper,
                                tied_classes=tied, **common)


# -- closest with probability ---------------------------------------------------------------------
def _target_logit_margin(model, x, target) -> float:
    """``log p_k - log(1 - p_k)`` from the logits, exact also when p_k is within 1e-16 of 1."""
    z = model.decision_function(x)
    return float(z[target] - logsumexp(np.delete(z, target)))


def closest_with_probability(model, x0, target, alpha, *, immutable=None, cost=None, bounds=None, categorical=None,
                             change_levels=None, lam_range=(1e-12, 1e8)) -> CounterfactualResult:
    r"""The smallest change that gives ``target`` a probability of at least ``alpha``.

    ``min ||x - x0|| s.t. p_k(x) >= alpha`` is convex and its solution is the penalised minimiser
    ``x*(lam)`` of :func:`invert` for the lam where ``p_k(x*(lam)) = alpha`` (MATH.md section 6); since
    ``p_k(x*(lam))`` falls as lam grows, that lam is found by a safeguarded secant/bisection search on
    ``log lam``, each probe a warm-started O(K^3) reduced Newton solve (projected Newton with ranges).
    For K = 2 without ranges it is explicit: ``lam = ||c||^2 (1 - alpha) / (s0 - logit(1 - alpha))``.

    Parameters
    ----------
    alpha : float in (0, 1)
    lam_range : (float, float)
        Where lam is searched; if even the smallest lam cannot reach alpha, the result says which
        probability is reachable.
    Other parameters as in :func:`minimal_flip`.

    Returns
    -------
    CounterfactualResult
        With ``lam``, and ``proba[target] >= alpha`` on success.
    """
    start_time = time.perf_counter()
    model = _check_model(model)
    x0 = check_instance(x0, model.n_features)
    target = check_target(target, model.n_classes)
    if not (isinstance(alpha, (int, float, np.floating)) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must be a probability strictly between 0 and 1, got {alpha!r}")
    alpha = float(alpha)

    def solve(start, frozen):
        return _closest(model, start, target, alpha, frozen, cost, bounds, lam_range)

    result, distance, changes = _enumerate(model, x0, cost, categorical, change_levels, immutable, solve)
    return _finalise(result, distance, changes, start_time)


def _closest(model, x0, target, alpha, frozen, cost, bounds, lam_range) -> CounterfactualResult:
    kwargs = dict(immutable=frozen if frozen.any() else None, cost=cost, bounds=bounds)
    goal = math.log(alpha) - math.log1p(-alpha)
    common = dict(target=target, method="closest-with-probability", time_s=0.0)
    if _target_logit_margin(model, x0, target) >= goal:
        return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=0.0, lam=np.inf, success=True, n_iter=0,
                                    message=f"x0 already has p = {model.predict_proba(x0)[target]:.4g} >= {alpha:g}", **common)

    def finish(res, probes, lam):
        x = res.x
        p = model.predict_proba(x)
        ok = res.success and _target_logit_margin(model, x, target) >= goal - 1e-9
        message = (f"p = {p[target]:.6g} >= {alpha:g} at lam = {lam:.6g}" if ok else
                   f"p = {p[target]:.6g} reached at lam = {lam:.6g}, short of {alpha:g}: {res.message}")
        return CounterfactualResult(x=x, proba=p, distance=_weighted_distance(x, x0, cost), lam=lam, success=ok,
                                    message=message, n_iter=probes, at_lower=res.at_lower, at_upper=res.at_upper,
                                    **common)

    problem = _pose(model, x0, kwargs["immutable"], cost, bounds)
    if model.n_classes == 2 and problem.lower is None:
        A, b = problem.model.coef, problem.model.intercept
        other = 1 - target
        c = A[other] - A[target]
        s0 = float(c @ problem.x0 + b[other] - b[target])
        s_goal = -goal  # p_k = sigma(-s)
        lam = float(c @ c) * (1.0 - alpha) / (s0 - s_goal)
        if lam > 0 and np.isfinite(lam):
            res = invert(model, x0, target, lam, **kwargs)
            if _target_logit_margin(model, res.x, target) < goal:  # round-off on the wrong side: nudge lam down
                res = invert(model, x0, target, lam * (1 - 1e-12), **kwargs)
                lam = lam * (1 - 1e-12)
            return finish(res, 1, lam)

    probes = [0]
    previous = [None]

    def excess(log_lam):
        probes[0] += 1
        res = invert(model, x0, target, math.exp(log_lam), x_init=previous[0], **kwargs)
        previous[0] = res
        return _target_logit_margin(model, res.x, target) - goal, res

    # Bracket the root of the decreasing function f(log lam), stepping by factors of 100 from lam = 1.
    low_limit, high_limit = math.log(lam_range[0]), math.log(lam_range[1])
    low = high = 0.0
    f_low, res_low = excess(low)
    f_high = f_low
    while f_high >= 0 and high < high_limit:
        low, f_low, res_low = high, f_high, previous[0]
        high = min(high + math.log(100.0), high_limit)
        f_high, _ = excess(high)
    while f_low < 0 and low > low_limit:
        high, f_high = low, f_low
        low = max(low - math.log(100.0), low_limit)
        f_low, res_low = excess(low)
    if f_low < 0:
        p = model.predict_proba(res_low.x)[target]
        return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=np.inf, lam=None, success=False,
                                    n_iter=probes[0], message=(f"p = {alpha:g} is out of reach: even lam = "
                                                               f"{lam_range[0]:g} gives only p = {p:.6g}"), **common)
    if f_high >= 0:  # p stays above alpha up to the largest lam: that lam's minimiser answers
        return finish(previous[0], probes[0], math.exp(high))
    root = scipy.optimize.brentq(lambda t: excess(t)[0], low, high, xtol=1e-13, rtol=4 * np.finfo(float).eps)
    f_root, res_root = excess(root)
    step = 1e-12 * max(1.0, abs(root))
    while f_root < 0 and step < 1e-6:  # stay on the side where p >= alpha
        root -= step
        step *= 4
        f_root, res_root = excess(root)
    return finish(res_root, probes[0], math.exp(root))
