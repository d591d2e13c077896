"""The smallest change to the target class for every row: :func:`minimal_flip_batch` (the rows' twin of
``_flip.minimal_flip``, MATH.md section 6)."""

from __future__ import annotations

import time

import numpy as np
from scipy.special import softmax

from ._batch import (
    D_CHUNK_BYTES,
    BatchResult,
    Output,
    check_margins,
    check_rows,
    check_targets,
    chunk_rows,
    chunks,
    outer_table,
    pose_batch,
    relative_logits,
)
from ._batch_kernels import bounded_projection_rows, lead_round_off, logit_leads, nnls_rows
from ._flip import DEFAULT_MARGIN, minimal_flip
from ._problem import check_model
from ._rules import MARGIN_SLACK, MAX_MARGIN_NUDGES


def minimal_flip_batch(model, X0, targets, margin=DEFAULT_MARGIN, *, immutable=None, cost=None, bounds=None,
                       categorical=None, chunk_size=None) -> BatchResult:
    r""":func:`solver.minimal_flip` for every row of ``X0``: the projection

    .. math:: \min_x \tfrac12 \sum_j c_j (x_j - x_{0ij})^2 \quad \text{s.t.} \quad
              z_{k_i}(x) - z_l(x) \ge \text{margin}\ \ (l \ne k_i)

    of each row onto its target's region. Without ranges, its (K-1)-variable dual (MATH.md section 6)
    ``min_{mu >= 0} 1/2 mu^T G_k mu - h_i^T mu`` with ``G_k = N_k N_k^T`` shared by every row with target
    k, solved for all rows by Lawson-Hanson's active-set method in stacked K x K solves; ``O(D K)`` per
    row to form ``h`` and lift the answer. Answers that miss half the margin by round-off are re-solved
    with a larger margin, as the single-row function does. With ranges, projected Newton on the dual
    ``max_{mu >= 0} q(mu)``, ``y(mu) = clip(y0 - Abar^T mu)``, with stacked K x K systems and the final
    active set's equalities solved exactly; a row whose dual does not converge (among them those whose
    target region is empty within the ranges) is answered by :func:`solver.minimal_flip`, whose linear
    programme decides feasibility. For models whose basis has rank < K - 1 (K > D + 1) every row is
    answered by :func:`solver.minimal_flip` itself.

    Parameters
    ----------
    model, X0, targets, chunk_size
        As in :func:`invert_batch`.
    margin : float or array_like (n,) of float >= 0
        As in :func:`solver.minimal_flip` (default 1e-6 logits).
    immutable, cost, bounds, categorical
        As in :func:`solver.minimal_flip`; one-hot groups are frozen (no level changes in batches).

    Returns
    -------
    BatchResult
        ``margin`` holds the margin each answer was solved for; ``lam`` is None.

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    >>> flips = minimal_flip_batch(model, [[2.0, 0.0], [0.0, 1.0]], targets=1, margin=0.0)
    >>> flips.distance.round(6).tolist()
    [1.414214, 0.0]
    """
    start_time = time.perf_counter()
    model = check_model(model)
    X0 = check_rows(X0, model.n_features)
    n = X0.shape[0]
    targets = check_targets(targets, n, model.n_classes)
    margins = check_margins(margin, n)
    problem = pose_batch(model, immutable, cost, bounds, categorical)
    out = Output(n, model.n_features, model.n_classes, with_margin=True)
    K = model.n_classes
    basis = problem.model.reduced_basis()
    with np.errstate(all="ignore"):
        if problem.bounded:
            outer = outer_table(problem.model.coef)
            size = chunk_rows(chunk_size, 8 * (6 * K * K + 6 * problem.model.n_features), least=64,
                               budget=D_CHUNK_BYTES)
            for rows in chunks(n, size):
                _flip_bounded(problem, outer, X0[rows], targets[rows], margins[rows], out, rows)
        elif basis.rank < K - 1:
            for i in range(n):
                single = minimal_flip(model, X0[i], int(targets[i]), float(margins[i]), immutable=problem.frozen,
                                      cost=cost, bounds=bounds)
                out.from_single(i, single, X0[i])
        else:
            MM = basis.M @ basis.M.T
            diagonal = np.diag(MM)
            # G_k = (M - 1 m_k^T)(M - 1 m_k^T)^T for each target k: (K, K, K), row and column k zero
            G_all = MM[None] - MM[:, :, None] - MM[:, None, :] + diagonal[:, None, None]
            size = chunk_rows(chunk_size, 8 * (6 * K * K + 3 * model.n_features), least=64, budget=D_CHUNK_BYTES)
            for rows in chunks(n, size):
                _flip_reduced(problem, basis, G_all, X0[rows], targets[rows], margins[rows], out, rows)
    return out.result(targets, "minimal-flip", start_time)


def _flip_reduced(problem, basis, G_all, X0, targets, margins, out, rows):
    model = problem.user
    n, K = X0.shape[0], model.n_classes
    Z0 = model.decision_function(X0)
    w0 = relative_logits(Z0, targets)
    eligible = np.ones((n, K), dtype=bool)
    eligible[np.arange(n), targets] = False
    already = logit_leads(Z0, targets) >= margins
    Y0 = problem.reduced(X0)
    M = basis.M

    def project(pending, used):
        t = targets[pending]
        h = w0[pending] + used[:, None]
        mu, taken, converged = nnls_rows(G_all[t], h, eligible[pending], max_steps=6 * K)
        U = -(mu @ M - mu.sum(axis=1)[:, None] * M[t])  # u = -N^T mu = -(M^T mu - (1^T mu) m_k)
        return problem.to_full(Y0[pending] + basis.lift(U), X0[pending]), taken, converged

    X, Z, used, steps, valid, fallback = _nudged(project, model, X0, Z0, targets, margins, already)
    for i in np.flatnonzero(fallback):  # the active-set method did not finish: the single-row function answers
        single = minimal_flip(model, X0[i], int(targets[i]), float(margins[i]), immutable=problem.frozen,
                              cost=problem.cost)
        out.from_single(rows.start + i, single, X0[i])
    mine = np.flatnonzero(~fallback)
    _finish_flip(problem, X[mine], X0[mine], Z[mine], Z0[mine], targets[mine], margins[mine], used[mine], steps[mine],
                 valid[mine], already[mine], np.zeros(mine.size, dtype=bool), out, rows.start + mine)


def _flip_bounded(problem, outer, X0, targets, margins, out, rows):
    """With ranges: :func:`bounded_projection_rows` (projected Newton on the dual), the same nudges; rows
    whose dual does not converge (an empty region within the ranges among them) are answered by
    :func:`solver.minimal_flip`, whose linear programme says whether any x qualifies."""
    model = problem.user
    Z0 = model.decision_function(X0)
    Y0 = problem.reduced(X0)
    intercepts = problem.intercepts(X0)
    outside = problem.outside(Y0)
    already = (logit_leads(Z0, targets) >= margins) & ~outside

    def project(pending, used):
        Y, taken, converged = bounded_projection_rows(problem.model.coef, intercepts[pending], Y0[pending],
                                                      targets[pending], used, problem.lower, problem.upper, outer)
        return problem.to_full(Y, X0[pending]), taken, converged

    X, Z, used, steps, valid, fallback = _nudged(project, model, X0, Z0, targets, margins, already)
    for i in np.flatnonzero(fallback):
        single = minimal_flip(model, X0[i], int(targets[i]), float(margins[i]), immutable=problem.frozen,
                              cost=problem.cost, bounds=problem.bounds)
        out.from_single(rows.start + i, single, X0[i])
    mine = np.flatnonzero(~fallback)
    _finish_flip(problem, X[mine], X0[mine], Z[mine], Z0[mine], targets[mine], margins[mine], used[mine], steps[mine],
                 valid[mine], already[mine], outside[mine], out, rows.start + mine)


def _nudged(project, model, X0, Z0, targets, margins, already):
    """Project every row not ``already`` qualifying with ``project(pending, used) -> (X, steps,
    converged)`` at margin ``used``, and judge each answer by its own logits; a row whose answer misses
    its margin by round-off is projected again with the margin raised past the miss (at most
    MAX_MARGIN_NUDGES times). Returns X, Z, used, steps, valid and fallback (the rows whose projection
    did not converge: the single-row function answers them)."""
    n = X0.shape[0]
    X, Z = X0.copy(), Z0.copy()
    used = margins.copy()
    steps = np.zeros(n, dtype=np.int64)
    valid = already.copy()
    fallback = np.zeros(n, dtype=bool)
    pending = np.flatnonzero(~already)
    for nudge in range(MAX_MARGIN_NUDGES + 1):
        if pending.size == 0:
            break
        Xp, taken, converged = project(pending, used[pending])
        Zp = model.decision_function(Xp)
        lead = logit_leads(Zp, targets[pending])
        m = margins[pending]
        ok = np.where(m > 0, lead >= MARGIN_SLACK * m, lead >= -lead_round_off(Zp)) & converged
        X[pending], Z[pending], steps[pending], valid[pending] = Xp, Zp, taken, ok
        fallback[pending[~converged]] = True
        retry = ~ok & converged & (m > 0) & (nudge < MAX_MARGIN_NUDGES)
        used[pending[retry]] = 2.0 * used[pending[retry]] + (m[retry] - lead[retry])  # past the round-off
        pending = pending[retry]
    return X, Z, used, steps, valid, fallback


def _finish_flip(problem, X, X0, Z, Z0, targets, margins, used, steps, valid, already, outside, out, rows):
    """Fill the output rows ``rows`` (indices) from the batched projection."""
    n = X0.shape[0]
    every = np.arange(n)
    lead = logit_leads(Z, targets)
    gaps = Z - Z[every, targets][:, None] + used[:, None]  # B y + c of the single-row function
    gaps[every, targets] = -np.inf
    violation = np.maximum(gaps.max(axis=1), 0.0)  # the largest constraint violation at the answer
    gaps[every, targets] = np.inf
    tied = (np.abs(gaps) <= lead_round_off(Z)[:, None]).sum(axis=1)
    messages = []
    lead, margins, tied, targets_list = lead.tolist(), margins.tolist(), tied.tolist(), targets.tolist()
    for i in range(n):
        k = targets_list[i]
        if already[i]:
            messages.append(f"x0 is already predicted as class {k} with the margin; nothing changes")
        elif valid[i]:
            count = tied[i]
            moved = " The source was outside its ranges and was moved into them." if outside[i] else ""
            messages.append(f"class {k} leads every other class by {lead[i]:.3g} in the logits (margin "
                            f"{margins[i]:g}); {count} decision boundar{'y is' if count == 1 else 'ies are'} active."
                            f"{moved}")
        else:
            messages.append(f"the projection missed the target's region: the target's logit leads by {lead[i]:.3g}, "
                            f"short of the margin {margins[i]:g}")
    moved = valid & ~already
    answer = np.where(moved[:, None], X, X0)
    out.X[rows] = answer
    out.proba[rows] = softmax(np.where(moved[:, None], Z, Z0), axis=1)
    out.distance[rows] = np.where(valid, np.where(moved, problem.distance(answer, X0), 0.0), np.inf)
    out.success[rows] = valid
    out.n_iter[rows] = np.where(already, 0, steps)
    out.grad_norm[rows] = np.where(already, np.nan, violation)
    out.margin[rows] = used
    out.message[rows] = messages
