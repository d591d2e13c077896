"""The smallest change that gives the target a probability of at least alpha (MATH.md section 6).

``min ||x - x0|| s.t. p_k(x) >= alpha`` is convex, and its solution is the penalised minimiser x*(lam)
of :func:`solver.invert` for the lam where ``p_k(x*(lam)) = alpha``: ``p_k(x*(lam))`` falls as lam grows.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.special

from ._api import invert
from ._closed_form import logistic_root_scalar, sigmoid
from ._iteration import round_off_floor, spd_solve
from ._levels import over_levels, weighted_distance
from ._objective import EPS, target_logit_margin
from ._problem import check_model, pose
from ._result import CounterfactualResult
from ._rules import AIM_ABOVE as _AIM_ABOVE
from ._rules import KKT_MAX_ITER as _KKT_MAX_ITER
from ._rules import LAM_NUDGE as _LAM_NUDGE
from ._rules import LOG_STEP as _LOG_STEP
from ._rules import MAX_LAM_NUDGES as _MAX_NUDGES
from ._rules import PENALISED_TOL as _TOL
from ._validation import check_instance, check_lam_range, check_probability, check_target


def _target_logit_margin(model, x, target) -> float:
    return target_logit_margin(model.decision_function(x), target)


def _qualifies(model, x, target, alpha) -> bool:
    """``p_k(x) >= alpha`` both as the logit margin says and as the probabilities shown to a user say
    (they can disagree in the last ulp)."""
    z = model.decision_function(x)
    goal = math.log(alpha) - math.log1p(-alpha)
    return target_logit_margin(z, target) >= goal and float(scipy.special.softmax(z)[target]) >= alpha


def closest_with_probability(model, x0, target, alpha, *, immutable=None, cost=None, bounds=None, categorical=None,
                             change_levels=None, lam_range=(1e-12, 1e8)) -> CounterfactualResult:
    r"""The smallest change that gives ``target`` a probability of at least ``alpha``.

    .. math:: \min_x \sum_j c_j (x_j - x_{0j})^2 \quad \text{s.t.} \quad p_k(x) \ge \alpha,\ \ l \le x \le u

    is convex and its solution is the penalised minimiser ``x*(lam)`` of :func:`invert` for the lam where
    ``p_k(x*(lam)) = alpha`` (MATH.md section 6). Without ranges that lam is found by safeguarded Newton
    on ``log lam`` in the reduced space, with ``d log p_k / d lam`` from the path derivatives, each probe
    an O(K^3) warm-started reduced Newton solve; with ranges by Brent's method over projected Newton
    solves. For K = 2 without ranges it is explicit: ``lam = ||c||^2 (1 - alpha) / (s0 - logit(1 - alpha))``.
    The answer always has ``p_k >= alpha`` (lam is nudged down past round-off by at most a relative 2e-8).
    For alpha <= 1/2 with K = 2, or alpha <= 1/K in general, p_k >= alpha does not make k the predicted
    class. A source outside its ranges is always moved into them, even when it already qualifies.

    Parameters
    ----------
    alpha : float in (0, 1)
    lam_range : (float, float)
        Where lam is searched, ``0 < low < high``; if even the smallest lam cannot reach alpha, the result
        says which probability is reachable.
    Other parameters as in :func:`minimal_flip`.

    Returns
    -------
    CounterfactualResult
        With ``lam``, and ``proba[target] >= alpha`` on success.

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0])
    >>> res = closest_with_probability(model, [2.0, 0.0], 1, 0.9)
    >>> bool(res.success), bool(res.proba[1] >= 0.9)
    (True, True)
    """
    start_time = time.perf_counter()
    model = check_model(model)
    x0 = check_instance(x0, model.n_features)
    target = check_target(target, model.n_classes)
    alpha = check_probability(alpha)
    lam_range = check_lam_range(lam_range)

    def solve(start, frozen):
        return _closest(model, start, target, alpha, frozen, cost, bounds, lam_range)

    return over_levels(model, x0, cost, categorical, change_levels, immutable, solve, start_time)


def _closest(model, x0, target, alpha, frozen, cost, bounds, lam_range) -> CounterfactualResult:
    immutable = frozen if frozen.any() else None
    problem = pose(model, x0, immutable, cost, bounds)
    goal = math.log(alpha) - math.log1p(-alpha)
    common = dict(target=target, method="closest-with-probability", time_s=0.0)
    outside = problem.source_outside_ranges()
    start = problem.to_full(np.clip(problem.x0, problem.lower, problem.upper)) if outside else x0
    if _qualifies(model, start, target, alpha):
        p = model.predict_proba(start)
        if outside:  # the closest point within the ranges already qualifies
            at_lower, at_upper = problem.active_bounds(start)
            return CounterfactualResult(x=start, proba=p, distance=weighted_distance(start, x0, cost), lam=np.inf,
                                        success=True, n_iter=0, at_lower=at_lower, at_upper=at_upper,
                                        message=(f"the source was outside its ranges; moved into them it has "
                                                 f"p = {p[target]:.4g} >= {alpha:g}"), **common)
        return CounterfactualResult(x=x0, proba=p, distance=0.0, lam=np.inf, success=True, n_iter=0,
                                    message=f"x0 already has p = {p[target]:.4g} >= {alpha:g}", **common)

    def answer(x, lam, probes, solver_message="", qualified=None):
        """The result for ``x``; ``qualified`` is what the caller's :func:`_qualifies` said of it, if asked."""
        p = model.predict_proba(x)
        if not (_qualifies(model, x, target, alpha) if qualified is None else qualified):
            return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=np.inf, lam=lam, success=False,
                                        n_iter=probes, message=(f"p = {p[target]:.6g} reached at lam = {lam:.6g}, "
                                                                f"short of {alpha:g}. {solver_message}"), **common)
        at_lower, at_upper = problem.active_bounds(x)
        moved = " The source was outside its ranges and was moved into them." if outside else ""
        return CounterfactualResult(x=x, proba=p, distance=weighted_distance(x, x0, cost), lam=lam, success=True,
                                    n_iter=probes, at_lower=at_lower, at_upper=at_upper,
                                    message=f"p = {p[target]:.6g} >= {alpha:g} at lam = {lam:.6g}.{moved}", **common)

    def unreachable(p_best, probes):
        return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=np.inf, lam=None, success=False,
                                    n_iter=probes, message=(f"p = {alpha:g} is out of reach: even lam = "
                                                            f"{lam_range[0]:g} gives only p = {p_best:.6g}"), **common)

    if problem.lower is None and model.n_classes == 2:
        return _binary(problem, target, alpha, goal, answer, model)
    if problem.lower is None:
        result = _reduced(problem, target, alpha, goal, lam_range, answer, model)
        if result is not None:
            return result
    return _lam_search(model, x0, target, alpha, goal, immutable, cost, bounds, lam_range, answer, unreachable)


def _binary(problem, target, alpha, goal, answer, model):
    """K = 2 (MATH.md section 5): ``lam = ||c||^2 (1 - alpha) / (s0 - s*)`` with ``s* = -logit(alpha)``
    and ``x* = x0 - sigma(s*) c / lam``; lam nudged down until the answer is on the side ``p >= alpha``."""
    A, b = problem.model.coef, problem.model.intercept
    other = 1 - target
    c = A[other] - A[target]
    cc = float(c @ c)
    s0 = float(c @ problem.x0 + b[other] - b[target])
    lam = cc * (1.0 - alpha) / (s0 + goal)  # s0 > s* = -goal, since x0 does not qualify
    s = -goal  # the root of s - s0 + (||c||^2 / lam) sigma(s) at this lam
    for nudge in range(_MAX_NUDGES + 1):
        x = problem.to_full(problem.x0 - sigmoid(s) * c / lam)
        qualified = _qualifies(model, x, target, alpha)
        if qualified or nudge == _MAX_NUDGES:
            return answer(x, lam, nudge + 1, qualified=qualified)
        lam *= 1.0 - _LAM_NUDGE * 4.0**nudge
        s = logistic_root_scalar(s0, cc / lam)


def _kkt_newton(problem, target, goal, lam_range, start=None):
    """Newton's method on the optimality conditions of ``min 1/2 ||u||^2 s.t. m(u) >= goal`` in the reduced
    space, where ``m(u) = -logsumexp_{j != k}(w0 + N u)_j = log p_k - log(1 - p_k)`` is the target's logit
    margin (concave) and the constraint is active at the answer (x0 does not qualify):

        R(u, mu) = (u + mu N_o^T q,  m(u) - goal) = 0,    q = softmax of the other classes' logits,

    a bordered (r+1) x (r+1) system per step, solved through ``H = I + mu N_o^T (diag q - q q^T) N_o``
    (SPD) and its Schur complement; steps are halved until ``||R||`` decreases with ``mu > 0``. Since
    ``N^T p = (1 - p_k) N_o^T q``, the answer is the penalised minimiser at ``lam = (1 - p_k) / mu``.
    Converged means ``m(u) = goal`` to round-off and ``||lam u + N^T p|| <= 1e-10`` (as :func:`invert`
    stops). Returns ``(u, lam, mu, iterations)``, or None (the caller then searches lam).
    """
    basis = problem.model.reduced_basis()
    logits = problem.model.coef @ problem.x0 + problem.model.intercept
    w0 = logits - logits[target]
    N = basis.M - basis.M[target]
    others = np.arange(N.shape[0]) != target
    N_o, w0_o = N[others], w0[others]
    n_norm = math.sqrt(float(np.einsum("ij,ij->", N, N)))

    def residual(u, mu):
        w = w0_o + N_o @ u
        top = float(w.max())
        e = np.exp(w - top)
        total = float(e.sum())
        q = e / total
        margin = -(top + math.log(total))
        g = N_o.T @ q
        r1 = u + mu * g
        tol_margin = 16.0 * EPS * (1.0 + max(top, -float(w.min())))
        return q, g, r1, margin - goal, math.sqrt(float(r1 @ r1) + (margin - goal) ** 2), tol_margin, margin

    if start is None:
        u = np.zeros(basis.rank)
        q, g, r1, r2, norm, _, _ = residual(u, 0.0)
        mu = -r2 / float(g @ g)  # the multiplier of the step onto the linearised constraint
    else:
        u, mu = start
    q, g, r1, r2, norm, tol_margin, margin = residual(u, mu)
    for iteration in range(_KKT_MAX_ITER):
        lam = sigmoid(-margin) / mu  # (1 - p_k) / mu
        floor = round_off_floor(1.0, math.sqrt(float(u @ u)), mu * n_norm)
        if abs(r2) <= tol_margin and math.sqrt(float(r1 @ r1)) <= max(_TOL / lam, floor):
            if not lam_range[0] <= lam <= lam_range[1]:
                return None
            return u, lam, mu, iteration
        centred = N_o - q @ N_o
        hessian = mu * (centred.T @ (q[:, None] * centred))
        hessian.flat[:: basis.rank + 1] += 1.0  # I + mu N_o^T (diag q - q q^T) N_o
        rhs = np.empty((basis.rank, 2))
        rhs[:, 0], rhs[:, 1] = r1, g
        solved = spd_solve(hessian, rhs)
        h_r1, h_g = solved[:, 0], solved[:, 1]
        # linearised: H du + g dmu = -r1 and -g^T du = -r2 (grad m = -g)
        d_mu = -(r2 + float(g @ h_r1)) / float(g @ h_g)
        d_u = -(h_r1 + d_mu * h_g)
        step = 1.0
        while step > 1e-10:
            if mu + step * d_mu > 0:
                trial = residual(u + step * d_u, mu + step * d_mu)
                if trial[4] < (1.0 - 1e-4 * step) * norm:
                    break
            step *= 0.5
        else:
            return None
        u, mu = u + step * d_u, mu + step * d_mu
        q, g, r1, r2, norm, tol_margin, margin = trial
    return None


def _reduced(problem, target, alpha, goal, lam_range, answer, model):
    """K > 2 without ranges: :func:`_kkt_newton`, the answer nudged to the side ``p >= alpha``; None if
    Newton did not converge."""
    basis = problem.model.reduced_basis()
    aim = goal + _AIM_ABOVE * (1.0 + abs(goal))  # a deliberate nudge past the round-off of lifting u to x
    solved = _kkt_newton(problem, target, aim, lam_range)
    for nudge in range(_MAX_NUDGES + 1):
        if solved is None:
            return None
        u, lam, mu, iterations = solved
        x = problem.to_full(problem.x0 + basis.lift(u))
        qualified = _qualifies(model, x, target, alpha)
        if qualified or nudge == _MAX_NUDGES:
            return answer(x, lam, iterations, qualified=qualified)
        aim += _AIM_ABOVE * 4.0**nudge * (1.0 + abs(goal))  # still short: aim higher
        solved = _kkt_newton(problem, target, aim, lam_range, (u, mu))
    return None


def _lam_search(model, x0, target, alpha, goal, immutable, cost, bounds, lam_range, answer, unreachable):
    """Brent's method on ``log lam`` over warm-started :func:`invert` solves (projected Newton with ranges):
    the general route, and the safeguard where Newton on the optimality conditions does not converge."""
    import scipy.optimize  # imported where used: ~0.25 s at start-up, before the first counterfactual

    kwargs = dict(immutable=immutable, cost=cost, bounds=bounds)
    probes = [0]
    previous = [None]

    def excess(log_lam):
        probes[0] += 1
        res = invert(model, x0, target, math.exp(log_lam), x_init=previous[0], **kwargs)
        previous[0] = res
        return _target_logit_margin(model, res.x, target) - goal, res

    # Bracket the root of the decreasing function f(log lam), stepping by factors of 100 from lam = 1.
    low_limit, high_limit = math.log(lam_range[0]), math.log(lam_range[1])
    low = high = min(max(0.0, low_limit), high_limit)
    f_low, res_low = excess(low)
    f_high = f_low
    while f_high >= 0 and high < high_limit:
        low, f_low, res_low = high, f_high, previous[0]
        high = min(high + _LOG_STEP, high_limit)
        f_high, _ = excess(high)
    while f_low < 0 and low > low_limit:
        high, f_high = low, f_low
        low = max(low - _LOG_STEP, low_limit)
        f_low, res_low = excess(low)
    if f_low < 0:
        return unreachable(model.predict_proba(res_low.x)[target], probes[0])
    if f_high >= 0:  # p stays above alpha up to the largest lam: that lam's minimiser answers
        return answer(previous[0].x, math.exp(high), probes[0], previous[0].message)
    root = scipy.optimize.brentq(lambda t: excess(t)[0], low, high, xtol=1e-13, rtol=4 * np.finfo(float).eps)
    f_root, res_root = excess(root)
    step = _LAM_NUDGE
    for _ in range(_MAX_NUDGES):  # stay on the side where p >= alpha
        if f_root >= 0 and _qualifies(model, res_root.x, target, alpha):
            break
        root += math.log1p(-step)
        step *= 4.0
        f_root, res_root = excess(root)
    return answer(res_root.x, math.exp(root), probes[0], res_root.message)
