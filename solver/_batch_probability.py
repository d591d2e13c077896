"""The smallest change that reaches a probability for every row: :func:`closest_with_probability_batch` (the
rows' twin of ``_probability.closest_with_probability``, MATH.md sections 5 and 6)."""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.special import softmax

from ._batch import (
    D_CHUNK_BYTES,
    DEFAULT_MAX_ITER_BOUNDED,
    SUCCESS_CODES,
    BatchResult,
    Output,
    bounded_start,
    check_alphas,
    check_rows,
    check_targets,
    chunk_rows,
    chunks,
    outer_table,
    pose_batch,
    relative_logits,
)
from ._batch_kernels import (
    BoundedRows,
    kkt_newton_rows,
    newton_rows,
    sigmoid_rows,
    target_logit_margins,
)
from ._objective import EPS
from ._probability import closest_with_probability
from ._problem import check_model
from ._rules import AIM_ABOVE, LAM_NUDGE, LOG_STEP, MAX_LAM_NUDGES, PENALISED_TOL
from ._validation import check_lam_range


def closest_with_probability_batch(model, X0, targets, alpha, *, immutable=None, cost=None, bounds=None,
                                   categorical=None, lam_range=(1e-12, 1e8), chunk_size=None) -> BatchResult:
    r""":func:`solver.closest_with_probability` for every row of ``X0``:

    .. math:: \min_x \sum_j c_j (x_j - x_{0ij})^2 \quad \text{s.t.} \quad p_{k_i}(x) \ge \alpha_i

    Without ranges: for K = 2 the explicit answer of MATH.md section 5 for all rows at once; for K > 2
    Newton on the optimality conditions in the reduced space (the bordered ``(r+1)`` systems stacked),
    ``O(K^3)`` per row and iteration. Every answer is nudged to the side ``p >= alpha`` exactly as the
    single-row function does. With ranges, the single-row search for all rows at once: brackets of lam by
    factors of 100 from lam = 1, then regula falsi (Illinois) on ``log lam`` to 1e-13, each probe a
    warm-started batched projected Newton solve; the answer is the bracket's end on the side
    ``p >= alpha``. Rows where a solve fails, and rows where the reduced Newton does not converge, are
    answered by :func:`solver.closest_with_probability` itself.

    Parameters
    ----------
    alpha : float or array_like (n,) in (0, 1)
    lam_range : (float, float)
        As in :func:`solver.closest_with_probability`.
    Other parameters as in :func:`invert_batch`.

    Returns
    -------
    BatchResult
        ``lam`` holds the trade-off whose minimiser is each answer (``inf`` where x0 already qualifies).

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0])
    >>> res = closest_with_probability_batch(model, [[2.0, 0.0], [0.0, 3.0]], 1, 0.9)
    >>> res.success.tolist(), bool((res.proba[:, 1] >= 0.9).all())
    ([True, True], True)
    """
    start_time = time.perf_counter()
    model = check_model(model)
    X0 = check_rows(X0, model.n_features)
    n = X0.shape[0]
    targets = check_targets(targets, n, model.n_classes)
    alphas = check_alphas(alpha, n)
    lam_range = check_lam_range(lam_range)
    problem = pose_batch(model, immutable, cost, bounds, categorical)
    out = Output(n, model.n_features, model.n_classes, with_lam=True)
    K = model.n_classes
    kwargs = dict(immutable=problem.frozen, cost=cost, bounds=bounds, lam_range=lam_range)
    with np.errstate(all="ignore"):
        if problem.bounded:
            outer = outer_table(problem.model.coef)
            F = problem.model.n_features
            size = chunk_rows(chunk_size, 8 * (F * (BoundedRows.batch + 14) + 6 * K * K), least=64,
                               budget=D_CHUNK_BYTES)
            for rows in chunks(n, size):
                _closest_bounded(problem, outer, X0[rows], targets[rows], alphas[rows], lam_range, out, rows, kwargs)
        else:
            basis = problem.model.reduced_basis()
            size = chunk_rows(chunk_size, 8 * (K * max(basis.rank, 1) * 8 + 3 * model.n_features), least=64,
                               budget=D_CHUNK_BYTES)
            for rows in chunks(n, size):
                _closest_unbounded(problem, basis, X0[rows], targets[rows], alphas[rows], lam_range, out, rows,
                                   kwargs)
        # The kernels judge an answer by its logit margin; the softmax shown may still round p(target) one ulp
        # below alpha. Those rows are answered by the single-row function, which nudges until both qualify.
        short = np.flatnonzero(out.success & (out.proba[np.arange(n), targets] < alphas))
        for i in short:
            single = closest_with_probability(model, X0[i], int(targets[i]), float(alphas[i]), **kwargs)
            out.from_single(i, single, X0[i])
    return out.result(targets, "closest-with-probability", start_time)


def _closest_unbounded(problem, basis, X0, targets, alphas, lam_range, out, rows, kwargs):
    model = problem.user
    K = model.n_classes
    base = rows.start
    goal = np.log(alphas) - np.log1p(-alphas)
    Z0 = model.decision_function(X0)
    qualifies = target_logit_margins(Z0, targets) >= goal
    proba0 = softmax(Z0, axis=1)
    for i in np.flatnonzero(qualifies):
        out.X[base + i], out.proba[base + i], out.distance[base + i] = X0[i], proba0[i], 0.0
        out.success[base + i], out.n_iter[base + i], out.lam[base + i] = True, 0, np.inf
        out.message[base + i] = f"x0 already has p = {proba0[i, targets[i]]:.4g} >= {alphas[i]:g}"
    pending = np.flatnonzero(~qualifies)
    if pending.size == 0:
        return
    Y0 = problem.reduced(X0)
    if K == 2:
        solved = _binary_rows(problem, Y0[pending], X0[pending], Z0[pending], targets[pending], goal[pending],
                              alphas[pending])
    else:
        solved = _kkt_rows(problem, basis, Y0[pending], X0[pending], Z0[pending], targets[pending], goal[pending],
                           lam_range)
    X, lam, iterations, grad_norm, converged = solved
    for j in np.flatnonzero(~converged):  # the single-row function answers (its own safeguarded search)
        i = pending[j]
        single = closest_with_probability(model, X0[i], int(targets[i]), float(alphas[i]), **kwargs)
        out.from_single(base + i, single, X0[i])
    j = np.flatnonzero(converged)
    i = pending[j]
    Z = model.decision_function(X[j])
    ok = target_logit_margins(Z, targets[i]) >= goal[i]
    p = softmax(Z, axis=1)
    p_target = p[np.arange(j.size), targets[i]]
    g = base + i
    out.X[g] = X[j]
    out.X[g[~ok]] = X0[i[~ok]]
    out.proba[g] = np.where(ok[:, None], p, proba0[i])
    out.distance[g] = np.where(ok, problem.distance(X[j], X0[i]), np.inf)
    out.success[g], out.n_iter[g], out.lam[g], out.grad_norm[g] = ok, iterations[j], lam[j], grad_norm[j]
    out.message[g] = [f"p = {pt:.6g} >= {a:g} at lam = {la:.6g}." if good else
                      f"p = {pt:.6g} reached at lam = {la:.6g}, short of {a:g}. "
                      for pt, a, la, good in zip(p_target.tolist(), alphas[i].tolist(), lam[j].tolist(), ok.tolist())]


def _closest_bounded(problem, outer, X0, targets, alphas, lam_range, out, rows, kwargs):
    """With ranges: the lam where ``p_k(x*(lam)) = alpha`` for every row at once, as the single-row
    ``_lam_search`` finds it: bracket by factors of 100 (from the two-class lam rather than lam = 1), then
    shrink the bracket on ``log lam``
    to 1e-13 by safeguarded Newton (the excess's derivative from the solution's sensitivity,
    :meth:`BoundedRows.margin_slope`), each probe a warm-started batched projected Newton solve. The answer is the bracket's end on the side ``p >= alpha``, so no nudge is needed. Rows
    whose solves fail are answered by :func:`solver.closest_with_probability`."""
    model = problem.user
    base = rows.start
    goal = np.log(alphas) - np.log1p(-alphas)
    Y0 = problem.reduced(X0)
    intercepts = problem.intercepts(X0)
    outside = problem.outside(Y0)
    start = np.minimum(np.maximum(Y0, problem.lower), problem.upper)
    X_start = problem.to_full(start, X0)
    Z_start = model.decision_function(X_start)
    proba_start = softmax(Z_start, axis=1)
    qualifies = target_logit_margins(Z_start, targets) >= goal
    for i in np.flatnonzero(qualifies):
        g = base + i
        p = proba_start[i, targets[i]]
        out.X[g], out.proba[g], out.success[g], out.n_iter[g], out.lam[g] = X_start[i], proba_start[i], True, 0, np.inf
        out.distance[g] = problem.distance(X_start[i:i + 1], X0[i:i + 1])[0] if outside[i] else 0.0
        out.message[g] = (f"the source was outside its ranges; moved into them it has p = {p:.4g} >= {alphas[i]:g}"
                          if outside[i] else f"x0 already has p = {p:.4g} >= {alphas[i]:g}")
    P = np.flatnonzero(~qualifies)
    if P.size == 0:
        return

    def probe(idx, log_lam, warm):
        energy = BoundedRows(problem.model.coef, intercepts[P[idx]], Y0[P[idx]], targets[P[idx]], np.exp(log_lam),
                             problem.lower, problem.upper, outer)
        Y, _, _, grad_norm, _, status, _ = newton_rows(energy, energy.clip(warm), PENALISED_TOL,
                                                       DEFAULT_MAX_ITER_BOUNDED)
        X = problem.to_full(Y, X0[P[idx]])
        excess = target_logit_margins(model.decision_function(X), targets[P[idx]]) - goal[P[idx]]
        slope[idx] = energy.margin_slope(np.arange(idx.size), Y)
        return excess, Y, X, grad_norm, np.isin(status, SUCCESS_CODES)

    m = P.size
    every = np.arange(m)
    slope = np.full(m, np.nan)  # d excess / d log lam at each row's latest probe (set by probe)
    low_limit, high_limit = math.log(lam_range[0]), math.log(lam_range[1])
    # The bracket search starts at each row's two-class lam without ranges (MATH.md section 5) rather than at
    # lam = 1 as the single-row search does: the root is the same, it is just found in fewer probes.
    Z0 = model.decision_function(X0[P])
    low = np.clip(_two_class_log_lam(problem.model.coef, Z0, targets[P], goal[P], alphas[P]), low_limit, high_limit)
    high = low.copy()
    first = BoundedRows(problem.model.coef, intercepts[P], Y0[P], targets[P], np.exp(low), problem.lower,
                        problem.upper, outer)
    first_start = bounded_start(problem, first, Y0[P], Z0, targets[P], np.exp(low))
    f_low, Y_low, X_low, g_low, ok = probe(every, low, first_start)
    failed = ~ok
    f_high, Y_high, X_high, g_high = f_low.copy(), Y_low.copy(), X_low.copy(), g_low.copy()
    s_low, s_high = slope.copy(), slope.copy()  # d excess / d log lam at the bracket's ends
    probes = np.ones(m, dtype=np.int64)
    while True:  # p stays above alpha: a larger lam
        up = np.flatnonzero(~failed & (f_high >= 0) & (high < high_limit))
        if up.size == 0:
            break
        low[up], f_low[up], Y_low[up], X_low[up], g_low[up] = high[up], f_high[up], Y_high[up], X_high[up], g_high[up]
        s_low[up] = s_high[up]
        high[up] = np.minimum(high[up] + LOG_STEP, high_limit)
        f_high[up], Y_high[up], X_high[up], g_high[up], ok = probe(up, high[up], Y_high[up])
        s_high[up] = slope[up]
        probes[up] += 1
        failed[up[~ok]] = True
    while True:  # alpha not reached: a smaller lam
        down = np.flatnonzero(~failed & (f_low < 0) & (low > low_limit))
        if down.size == 0:
            break
        high[down], f_high[down], Y_high[down], X_high[down] = low[down], f_low[down], Y_low[down], X_low[down]
        s_high[down] = s_low[down]
        low[down] = np.maximum(low[down] - LOG_STEP, low_limit)
        f_low[down], Y_low[down], X_low[down], g_low[down], ok = probe(down, low[down], Y_low[down])
        s_low[down] = slope[down]
        probes[down] += 1
        failed[down[~ok]] = True
    unreachable = ~failed & (f_low < 0)
    at_top = ~failed & ~unreachable & (f_high >= 0)  # p >= alpha up to the largest lam: its minimiser answers
    X_low[at_top], low[at_top], g_low[at_top] = X_high[at_top], high[at_top], g_high[at_top]
    # Shrink [low, high] (excess >= 0 at low, < 0 at high) by safeguarded Newton: Newton from the end with
    # the smaller excess where it stays inside, else Illinois' regula falsi, bisection where the bracket did
    # not halve over four probes. Done when the bracket is within the tolerance, or Newton from the low end
    # puts the root within it, or a Newton step from there no longer moves the excess.
    side = np.zeros(m, dtype=np.int8)  # Illinois: which end moved last (-1 low, +1 high)
    weight_low, weight_high = f_low.copy(), f_high.copy()
    widths = np.full((m, 4), np.inf)  # the bracket's width one to four probes ago
    searching = np.flatnonzero(~failed & ~unreachable & ~at_top)
    for _ in range(_MAX_BRACKET_STEPS):
        a, b = low[searching], high[searching]
        tol = _LOG_LAM_XTOL + 4 * EPS * np.maximum(np.abs(a), np.abs(b))
        with np.errstate(divide="ignore", invalid="ignore"):
            to_root = -f_low[searching] / s_low[searching]
        done = (b - a <= 2 * tol) | (f_low[searching] == 0) | ((s_low[searching] < 0) & (to_root <= tol))
        searching = searching[~done]
        if searching.size == 0:
            break
        s = searching
        a, b, tol = a[~done], b[~done], tol[~done]
        c = b - weight_high[s] * (b - a) / (weight_high[s] - weight_low[s])  # regula falsi on the weights
        c = np.where((c > a) & (c < b), c, 0.5 * (a + b))
        from_low = np.abs(f_low[s]) <= np.abs(f_high[s])
        end_slope = np.where(from_low, s_low[s], s_high[s])
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = np.where(from_low, a - f_low[s] / s_low[s], b - f_high[s] / s_high[s])
        halving = b - a <= 0.5 * widths[s, 3]
        usable = np.isfinite(newton) & (end_slope < 0) & (newton > a) & (newton < b) & halving
        c = np.where(usable, newton, np.where(halving, c, 0.5 * (a + b)))
        c = np.minimum(np.maximum(c, a + tol), b - tol)  # as Brent's method, never within tol of an end
        widths[s] = np.column_stack([b - a, widths[s, :3]])
        before = f_low[s]
        fc, Yc, Xc, gc, ok = probe(s, c, Y_low[s])
        probes[s] += 1
        failed[s[~ok]] = True
        above = ok & (fc >= 0)
        below = ok & (fc < 0)
        # A Newton step from the low end that leaves its excess unchanged is below what the solves resolve
        # (the warm start already meets their tolerance there): the low end is the answer.
        resolved = above & usable & from_low & (fc == before)
        lo_rows, hi_rows = s[above], s[below]
        # Illinois: when the same end moves twice running, the other end's weight is halved
        weight_high[lo_rows[side[lo_rows] == -1]] *= 0.5
        weight_low[hi_rows[side[hi_rows] == 1]] *= 0.5
        low[lo_rows], f_low[lo_rows], Y_low[lo_rows], X_low[lo_rows], g_low[lo_rows] = (
            c[above], fc[above], Yc[above], Xc[above], gc[above])
        high[hi_rows], f_high[hi_rows], Y_high[hi_rows] = c[below], fc[below], Yc[below]
        s_low[lo_rows], s_high[hi_rows] = slope[lo_rows], slope[hi_rows]
        weight_low[lo_rows], weight_high[hi_rows] = fc[above], fc[below]
        side[lo_rows], side[hi_rows] = -1, 1
        searching = s[ok & ~resolved]
    else:
        failed[searching] = True
    for j in np.flatnonzero(failed):  # the single-row function answers
        i = P[j]
        single = closest_with_probability(model, X0[i], int(targets[i]), float(alphas[i]), **kwargs)
        out.from_single(base + i, single, X0[i])
    answered = np.flatnonzero(~failed & ~unreachable)
    i = P[answered]
    g = base + i
    X = X_low[answered]
    p = model.predict_proba(X)
    out.X[g], out.proba[g], out.success[g] = X, p, True
    out.distance[g] = problem.distance(X, X0[i])
    out.lam[g], out.n_iter[g], out.grad_norm[g] = np.exp(low[answered]), probes[answered], g_low[answered]
    moved = np.where(outside[i], " The source was outside its ranges and was moved into them.", "")
    out.message[g] = [f"p = {pk:.6g} >= {a:g} at lam = {la:.6g}.{mv}" for pk, a, la, mv in
                      zip(p[np.arange(i.size), targets[i]].tolist(), alphas[i].tolist(),
                          np.exp(low[answered]).tolist(), moved.tolist())]
    lost = np.flatnonzero(unreachable)
    i = P[lost]
    g = base + i
    proba0 = model.predict_proba(X0[i])
    best = model.predict_proba(X_low[lost])[np.arange(i.size), targets[i]]
    out.X[g], out.proba[g], out.success[g], out.distance[g] = X0[i], proba0, False, np.inf
    out.n_iter[g], out.lam[g] = probes[lost], np.nan
    out.message[g] = [f"p = {a:g} is out of reach: even lam = {lam_range[0]:g} gives only p = {pb:.6g}"
                      for a, pb in zip(alphas[i].tolist(), best.tolist())]


def _two_class_log_lam(A, Z0, targets, goal, alphas):
    """``log lam`` of the two-class answer between each row's target and its strongest rival j, without
    ranges: ``lam = ||a_j - a_k||^2 (1 - alpha) / (s0 + goal)`` with ``s0 = z_j - z_k``; 0 (lam = 1) where
    that rival alone already allows p >= alpha."""
    every = np.arange(Z0.shape[0])
    rivals = Z0.copy()
    rivals[every, targets] = -np.inf
    strongest = rivals.argmax(axis=1)
    c = A[strongest] - A[targets]
    gap = Z0[every, strongest] - Z0[every, targets] + goal
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.log(np.einsum("ij,ij->i", c, c) * (1.0 - alphas) / gap)
    return np.where((gap > 0) & np.isfinite(estimate), estimate, 0.0)


_LOG_LAM_XTOL = 1e-13  # as the single-row search's brentq
_MAX_BRACKET_STEPS = 200


def _binary_rows(problem, Y0, X0, Z0, targets, goal, alphas):
    """K = 2 (MATH.md section 5), every row at once: ``lam = ||c||^2 (1 - alpha) / (s0 - s*)``,
    ``s* = -goal``, ``x* = x0 - sigma(s*) c / lam``; rows short of the goal by round-off are nudged as in
    the single-row ``_binary``."""
    from ._closed_form import logistic_root_scalar

    A = problem.model.coef
    n = Y0.shape[0]
    every = np.arange(n)
    other = 1 - targets
    C = A[other] - A[targets]  # (n, F)
    cc = np.einsum("ij,ij->i", C, C)
    s0 = Z0[every, other] - Z0[every, targets]
    lam = cc * (1.0 - alphas) / (s0 + goal)
    s = -goal
    X = np.empty_like(X0)
    n_iter = np.zeros(n, dtype=np.int64)
    todo = every
    for nudge in range(MAX_LAM_NUDGES + 1):
        Xt = problem.to_full(Y0[todo] - (sigmoid_rows(s[todo]) / lam[todo])[:, None] * C[todo], X0[todo])
        X[todo], n_iter[todo] = Xt, nudge + 1
        Z = problem.user.decision_function(Xt)
        short = target_logit_margins(Z, targets[todo]) < goal[todo]
        if nudge == MAX_LAM_NUDGES or not short.any():
            break
        todo = todo[short]
        lam[todo] *= 1.0 - LAM_NUDGE * 4.0**nudge
        s = s.copy()
        for i in todo:
            s[i] = logistic_root_scalar(float(s0[i]), float(cc[i] / lam[i]))
    Yx = problem.reduced(X)
    Zr = Yx @ A.T + problem.intercepts(X0)
    W = relative_logits(Zr, targets)
    p = np.exp(W - np.logaddexp(0.0, W[every, other])[:, None])
    grad = lam[:, None] * (Yx - Y0) + p[every, other][:, None] * C
    return X, lam, n_iter, np.sqrt(np.einsum("ij,ij->i", grad, grad)), np.ones(n, dtype=bool)


def _kkt_rows(problem, basis, Y0, X0, Z0, targets, goal, lam_range):
    """K > 2: :func:`kkt_newton_rows`, answers nudged to the side ``p >= alpha`` as in ``_probability._reduced``."""
    w0 = relative_logits(Z0, targets)
    M = basis.M
    aim = goal + AIM_ABOVE * (1.0 + np.abs(goal))
    u, lam, mu, iterations, converged = kkt_newton_rows(M, w0, targets, aim, lam_range)
    X = X0.copy()
    todo = np.flatnonzero(converged)
    failed = ~converged
    for nudge in range(MAX_LAM_NUDGES + 1):
        if todo.size == 0:
            break
        X[todo] = problem.to_full(Y0[todo] + basis.lift(u[todo]), X0[todo])
        Z = problem.user.decision_function(X[todo])
        short = target_logit_margins(Z, targets[todo]) < goal[todo]
        if nudge == MAX_LAM_NUDGES or not short.any():
            break
        todo = todo[short]
        aim[todo] += AIM_ABOVE * 4.0**nudge * (1.0 + np.abs(goal[todo]))
        sub = kkt_newton_rows(M, w0[todo], targets[todo], aim[todo], lam_range, (u[todo], mu[todo]))
        u[todo], lam[todo], mu[todo], iterations[todo] = sub[0], sub[1], sub[2], sub[3]
        failed[todo[~sub[4]]] = True
        todo = todo[sub[4]]
    # ||lam u + N^T p|| = lam ||u + mu N_o^T q|| at the answer
    W = w0 + u @ M.T - np.einsum("ir,ir->i", u, M[targets])[:, None]
    W[np.arange(W.shape[0]), targets] = -np.inf
    q = np.exp(W - W.max(axis=1)[:, None])
    q /= q.sum(axis=1)[:, None]
    r1 = u + mu[:, None] * (q @ M - M[targets])
    return X, lam, iterations, lam * np.sqrt(np.einsum("ij,ij->i", r1, r1)), ~failed
