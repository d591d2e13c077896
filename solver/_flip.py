"""The smallest change that makes the target the predicted class (MATH.md section 6): the projection of
x0 onto the polyhedron where the target's logit leads every other class's by a margin."""

from __future__ import annotations

import time

import numpy as np

from ._levels import over_levels, weighted_distance
from ._problem import check_model, pose
from ._result import CounterfactualResult
from ._rules import MARGIN_SLACK as _MARGIN_SLACK
from ._rules import MAX_MARGIN_NUDGES as _MAX_NUDGES
from ._validation import check_instance, check_margin, check_target

DEFAULT_MARGIN = 1e-6


def _boundary_rows(problem, target, margin):
    """``B y + c <= 0`` says every other class's logit is at least ``margin`` below the target's."""
    A, b = problem.model.coef, problem.model.intercept
    others = np.array([i for i in range(A.shape[0]) if i != target])
    return others, A[others] - A[target], b[others] - b[target] + margin


def _feasible(B, c, lower, upper) -> bool:
    """Is there a y (within the ranges) with ``B y + c <= 0``? A linear programme."""
    import scipy.optimize  # imported where used: ~0.25 s at start-up, before the first counterfactual

    bounds = (None, None) if lower is None else list(zip(np.where(np.isfinite(lower), lower, None),
                                                         np.where(np.isfinite(upper), upper, None)))
    result = scipy.optimize.linprog(np.zeros(B.shape[1]), A_ub=B, b_ub=-c, bounds=bounds, method="highs")
    return result.status != 2


def _project_half_space(y0, B, c):
    """K = 2: ``y0 - max(0, B y0 + c) / ||B||^2 B``, the projection onto one half-space."""
    row = B[0]
    return y0 - max(0.0, float(row @ y0 + c[0])) / float(row @ row) * row


def _project_unbounded(problem, B, c, others, target):
    """Projection of y0 onto ``{B y + c <= 0}`` in the reduced space: ``y = y0 + P u``, ``u = -N^T mu``
    with ``mu = nnls(N^T, z)``, ``N z = h0`` (the dual of MATH.md section 6, exact active set).
    ``N = B P`` comes from the basis's ``M = A P`` in O(K r)."""
    import scipy.optimize

    basis = problem.model.reduced_basis()
    N = (basis.M - basis.M[target])[others]
    h0 = B @ problem.x0 + c
    if basis.rank:
        z = np.linalg.lstsq(N, h0, rcond=None)[0]
        if np.linalg.norm(N @ z - h0) <= 1e-10 * (np.linalg.norm(h0) + 1.0):
            mu, _ = scipy.optimize.nnls(N.T, z, maxiter=50 * max(1, N.shape[0]))
            return problem.x0 + basis.lift(-N.T @ mu)
    # h0 is not in the range of N (more constraints than dimensions): a small QP in u.
    result = scipy.optimize.minimize(lambda u: 0.5 * u @ u, np.zeros(basis.rank), jac=lambda u: u, method="SLSQP",
                                     constraints=[{"type": "ineq", "fun": lambda u: -(N @ u + h0), "jac": lambda u: -N}],
                                     options={"ftol": 1e-15, "maxiter": 500})
    return problem.x0 + basis.lift(result.x)


def _project_bounded(problem, B, c):
    """Projection onto ``{B y + c <= 0, l <= y <= u}`` by its dual: maximise over mu >= 0
    ``q(mu) = min_{l<=y<=u} 1/2||y - y0||^2 + mu^T (B y + c)``, attained at ``y(mu) = clip(y0 - B^T mu)``;
    then re-solve the equalities of the active set exactly."""
    import scipy.optimize

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


def _project(problem, target, margin):
    """The projection of the (reduced) source onto the target's region with this margin, or None when
    the region (within the ranges) is empty."""
    others, B, c = _boundary_rows(problem, target, margin)
    if problem.lower is not None:
        if not _feasible(B, c, problem.lower, problem.upper):
            return None
        return _project_bounded(problem, B, c)
    if B.shape[0] == 1:
        if not np.any(B[0]):
            return None if c[0] > 0 else problem.x0
        return _project_half_space(problem.x0, B, c)
    # Without ranges the region is non-empty whenever the K-1 rows of B are independent (the basis has
    # full rank K-1): then B y + c = -1 has a solution. Otherwise a linear programme decides.
    if problem.model.reduced_basis().rank < B.shape[0] and not _feasible(B, c, None, None):
        return None
    return _project_unbounded(problem, B, c, others, target)


def _lead(model, x, target) -> float:
    """``min_{j != k} z_k(x) - z_j(x)``: how far the target's logit leads."""
    z = model.decision_function(x)
    return float(z[target] - np.max(np.delete(z, target)))


def minimal_flip(model, x0, target, margin=DEFAULT_MARGIN, *, immutable=None, cost=None, bounds=None,
                 categorical=None, change_levels=None) -> CounterfactualResult:
    r"""The smallest change that makes ``target`` the predicted class.

    Solves the projection onto the polyhedron where the target's logit leads every other class's by
    ``margin``,

    .. math:: \min_x \tfrac12 \sum_j c_j (x_j - x_{0j})^2 \quad \text{s.t.} \quad
              z_k(x) - z_i(x) \ge \text{margin} \ \ (i \ne k),\ \ l \le x \le u,

    exactly through its (K-1)-variable dual (MATH.md section 6): non-negative least squares in the
    reduced space without ranges (one half-space for K = 2), the dual of the clipped problem with
    ranges. When no x can make the target the predicted class (possible when K > D + 1, or under
    constraints) the result says so, with ``success=False``. A source outside its ranges is always moved
    into them, even when it already has the target.

    Parameters
    ----------
    model, x0, target
        As in :func:`invert`.
    margin : float >= 0
        The required lead ``z_k - z_i`` of the target's logit over every other class's, in logits (natural
        log of the probability ratio: ``p_k >= e^margin p_i``). The default 1e-6 keeps the answer a hair
        inside the target's region, far above the round-off in computing logits (~1e-15 relative), so
        that this model and the estimator it came from both predict the target; ``margin=0`` returns the
        point on the decision boundary, where the prediction may go either way. If round-off leaves the
        answer short of half the margin, the margin is doubled (at most 4 times) and ``result.margin``
        says which was used.
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

    Raises
    ------
    ValueError
        For invalid arguments, naming the argument.

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    >>> res = minimal_flip(model, [2.0, 0.0], target=1, margin=0.0)
    >>> res.x.round(6).tolist(), round(res.distance, 6)
    ([1.0, 1.0], 1.414214)
    >>> int(minimal_flip(model, [2.0, 0.0], target=1).proba.argmax())
    1
    """
    start_time = time.perf_counter()
    model = check_model(model)
    x0 = check_instance(x0, model.n_features)
    target = check_target(target, model.n_classes)
    margin = check_margin(margin)

    def solve(start, frozen):
        return _minimal_flip(model, start, target, margin, frozen, cost, bounds)

    return over_levels(model, x0, cost, categorical, change_levels, immutable, solve, start_time)


def _minimal_flip(model, x0, target, margin, frozen, cost, bounds) -> CounterfactualResult:
    problem = pose(model, x0, frozen if frozen.any() else None, cost, bounds)
    common = dict(target=target, lam=None, method="minimal-flip", time_s=0.0, margin=margin)
    outside = problem.source_outside_ranges()
    if not outside and _lead(model, x0, target) >= margin:
        return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=0.0, success=True, n_iter=0,
                                    message=f"x0 is already predicted as class {target} with the margin; nothing changes",
                                    **common)
    used = margin
    for nudge in range(_MAX_NUDGES + 1):
        y = _project(problem, target, used)
        if y is None:
            reason = "under these constraints" if problem.constraints is not None else (
                "anywhere: another class's logit exceeds the target's everywhere (possible when K > D + 1)")
            return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=np.inf, success=False, n_iter=0,
                                        message=f"no x can make class {target} the predicted class {reason}", **common)
        x = problem.to_full(y)
        logits = model.decision_function(x)
        lead = float(logits[target] - np.max(np.delete(logits, target)))
        round_off = 1e-9 * (1.0 + np.abs(logits).max())
        valid = lead >= _MARGIN_SLACK * margin if margin > 0 else lead >= -round_off
        if valid or margin == 0 or nudge == _MAX_NUDGES:
            break
        used = 2.0 * used + (margin - lead)  # push past the round-off that left the answer short
    if not valid:
        return CounterfactualResult(x=x0, proba=model.predict_proba(x0), distance=np.inf, success=False, n_iter=1,
                                    message=(f"the projection missed the target's region: the target's logit leads by "
                                             f"{lead:.3g}, short of the margin {margin:g}"), **common)
    others, B, c = _boundary_rows(problem, target, used)
    tied = others[np.abs(B @ y + c) <= round_off]
    at_lower, at_upper = problem.active_bounds(x)
    boundaries = f"{len(tied)} decision boundar{'y is' if len(tied) == 1 else 'ies are'} active"
    moved = " The source was outside its ranges and was moved into them." if outside else ""
    message = (f"class {target} leads every other class by {lead:.3g} in the logits (margin {margin:g}); "
               f"{boundaries}.{moved}")
    return CounterfactualResult(x=x, proba=model.predict_proba(x), distance=weighted_distance(x, x0, cost),
                                success=True, message=message, n_iter=1, at_lower=at_lower, at_upper=at_upper,
                                tied_classes=tied, **dict(common, margin=used))
