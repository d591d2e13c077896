"""Whole-dataset answers: :func:`invert_batch`, :func:`minimal_flip_batch`, :func:`closest_with_probability_batch`.

Each row is the single-row problem of :func:`solver.invert`, :func:`solver.minimal_flip` or
:func:`solver.closest_with_probability`, with the same constraints for every row; the kernels in
``_batch_kernels.py`` advance all unfinished rows together. Rows are processed in chunks whose size
bounds the memory; the chunking does not change any row's answer.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from ._batch_kernels import (
    BoundedRows,
    ReducedRows,
    bounded_projection_rows,
    kkt_newton_rows,
    lead_round_off,
    logit_leads,
    newton_rows,
    nnls_rows,
    sigmoid_rows,
    target_logit_margins,
    two_class_start,
)
from ._constraints import Constraints, immutable_mask, parse_constraints
from ._flip import DEFAULT_MARGIN, minimal_flip
from ._iteration import succeeded
from ._levels import check_groups
from ._model import SoftmaxModel
from ._objective import EPS
from ._probability import closest_with_probability
from ._problem import check_model
from ._result import status_message
from ._rules import AIM_ABOVE, LAM_NUDGE, LOG_STEP, MARGIN_SLACK, MAX_LAM_NUDGES, MAX_MARGIN_NUDGES, PENALISED_TOL
from ._validation import check_lam_range, check_positive_int, check_tol

DEFAULT_MAX_ITER = 200  # reduced Newton, as invert
DEFAULT_MAX_ITER_BOUNDED = 500  # projected Newton, as invert
# Working memory per chunk; the chunk size follows from it and the problem's dimensions. Where a chunk's
# arrays are D-sized (the questions, ranges) smaller chunks stay in cache: measured best at ~1,000 rows
# for MNIST's flips and ~200 with pixel ranges, ~8,000 for reduced Newton without ranges on digits.
CHUNK_BYTES = 48 * 2**20
D_CHUNK_BYTES = 20 * 2**20
_MAX_OUTER_BYTES = 64 * 2**20  # BoundedRows' A_k o A_l table (F x K^2) is built only below this


@dataclass(frozen=True, eq=False)
class BatchResult:
    """Answers for every row of a batch; row ``i`` is the single-row function's answer for ``X0[i]``.

    Attributes
    ----------
    X : ndarray (n, D)
        The answers; ``X0[i]`` where ``success[i]`` is False.
    proba : ndarray (n, K)
        Class probabilities at ``X[i]``.
    distance : ndarray (n,)
        ``sqrt(sum_j cost_j (X_ij - X0_ij)^2)`` (Euclidean without costs); ``inf`` where ``success`` is False.
    success : ndarray (n,) of bool
    n_iter : ndarray (n,) of int
        Newton iterations (invert, probability) or active-set steps (flip); 0 where nothing had to change.
    grad_norm : ndarray (n,)
        The optimality measure at the answer: ``||grad E||`` (the projected gradient with ranges) for
        invert and for the probability question's penalised problem; for flips the largest constraint
        violation of the dual's solution (0 at the exact projection); NaN where nothing was solved.
    message : ndarray (n,) of str (object dtype)
    target : ndarray (n,) of int
    lam : ndarray (n,) or None
        invert: the trade-off of each row; probability: the lam whose minimiser is the answer (``inf``
        where x0 already qualifies, NaN where it failed); None for flips.
    margin : ndarray (n,) or None
        Flips: the logit margin each answer was solved for (the requested one, or larger after a
        nudge past round-off).
    method : str
    time_s : float
    """

    X: np.ndarray
    proba: np.ndarray
    distance: np.ndarray
    success: np.ndarray
    n_iter: np.ndarray
    grad_norm: np.ndarray
    message: np.ndarray
    target: np.ndarray
    lam: np.ndarray | None
    margin: np.ndarray | None
    method: str
    time_s: float

    def __len__(self) -> int:
        return self.X.shape[0]

    @staticmethod
    def concat(parts) -> "BatchResult":
        """The rows of several results of the same question, in order (e.g. slices solved one after another
        to show progress); ``time_s`` is their sum."""
        parts = list(parts)
        if not parts:
            raise ValueError("concat needs at least one BatchResult")
        fields = {}
        for name in ("X", "proba", "distance", "success", "n_iter", "grad_norm", "message", "target", "lam", "margin"):
            values = [getattr(p, name) for p in parts]
            fields[name] = None if values[0] is None else np.concatenate(values)
        return BatchResult(method=parts[0].method, time_s=float(sum(p.time_s for p in parts)), **fields)


# -- validation at the boundary ----------------------------------------------------------------------
def check_rows(X0, n_features: int, name: str = "X0") -> np.ndarray:
    """``X0`` as a C-ordered float64 (n, D) array of finite values; errors name the first bad row."""
    try:
        X = np.asarray(X0, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric; could not convert it to float64 ({exc})") from None
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"{name} must have shape (n, {n_features}) (one row per instance), got {X.shape}")
    finite = np.isfinite(X)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        bad = int(np.count_nonzero(~finite.all(axis=1)))
        raise ValueError(f"{name} row {row} has a non-finite value ({X[row, column]}) in feature {column}; "
                         f"{bad} row(s) are affected")
    return np.ascontiguousarray(X)


def _per_row(value, n: int, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 0:
        return np.full(n, array.item() if array.dtype.kind != "O" else value)
    if array.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have one entry per row ({n}), got shape {array.shape}")
    return array


def check_targets(targets, n: int, n_classes: int) -> np.ndarray:
    """One class index per row, from an int or an (n,) array of integers."""
    if isinstance(targets, (bool, np.bool_)) or (np.ndim(targets) == 0 and not isinstance(targets, numbers.Integral)):
        raise ValueError(f"targets must be a class index 0..{n_classes - 1} or one per row, got {targets!r}")
    values = _per_row(targets, n, "targets")
    if values.dtype.kind not in "iu":
        raise ValueError(f"targets must be integer class indices 0..{n_classes - 1}, got dtype {values.dtype}")
    outside = (values < 0) | (values >= n_classes)
    if outside.any():
        row = int(np.argmax(outside))
        raise ValueError(f"targets row {row} is {values[row]}, not a class index in 0..{n_classes - 1}")
    return values.astype(np.int64)


def _real_per_row(value, n: int, name: str, what: str, ok) -> np.ndarray:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    try:
        values = _per_row(np.asarray(value, dtype=np.float64), n, name)
    except (TypeError, ValueError) as exc:
        if "per row" in str(exc):
            raise
        raise ValueError(f"{name} must be {what}, got {value!r}") from None
    bad = ~ok(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} row {row} is {values[row]!r}; it must be {what}")
    return values


def check_lams_per_row(lam, n: int) -> np.ndarray:
    return _real_per_row(lam, n, "lam", "a finite number > 0", lambda v: np.isfinite(v) & (v > 0))


def check_alphas(alpha, n: int) -> np.ndarray:
    return _real_per_row(alpha, n, "alpha", "a probability strictly between 0 and 1", lambda v: (v > 0) & (v < 1))


def check_margins(margin, n: int) -> np.ndarray:
    return _real_per_row(margin, n, "margin", "a finite number >= 0 (a logit gap)", lambda v: np.isfinite(v) & (v >= 0))


# -- the batch's problem in the solver's coordinates (``_problem.pose`` for many rows) ----------------
@dataclass(frozen=True, eq=False)
class BatchProblem:
    """The constraint set, shared by every row, and the model the kernels see.

    ``model`` is the user's own model, or with costs or immutable features the column-scaled model of
    the free features (MATH.md section 6), whose per-row intercept carries the fixed features.
    """

    user: SoftmaxModel
    model: SoftmaxModel
    constraints: Constraints | None
    rescaled: bool
    cost: np.ndarray | None
    frozen: np.ndarray | None = None  # the immutable mask, one-hot groups included
    bounds: tuple | None = None  # the ranges as the user gave them, for the single-row fallbacks

    @property
    def lower(self):
        return None if self.constraints is None else self.constraints.reduced_lower

    @property
    def upper(self):
        return None if self.constraints is None else self.constraints.reduced_upper

    @property
    def bounded(self) -> bool:
        return self.lower is not None

    def reduced(self, X0: np.ndarray) -> np.ndarray:
        return self.constraints.scale * X0[:, self.constraints.free] if self.rescaled else X0

    def intercepts(self, X0: np.ndarray) -> np.ndarray:
        """Per-row intercepts of ``model``: ``b + A[:, fixed] x0[fixed]`` (n, K)."""
        b = self.user.intercept
        if not self.rescaled:
            return np.broadcast_to(b, (X0.shape[0], b.shape[0]))
        fixed = np.ones(self.user.n_features, dtype=bool)
        fixed[self.constraints.free] = False
        if not fixed.any():
            return np.broadcast_to(b, (X0.shape[0], b.shape[0]))
        return X0[:, fixed] @ self.user.coef[:, fixed].T + b

    def to_full(self, Y: np.ndarray, X0: np.ndarray) -> np.ndarray:
        """Rows of X0 with the free features replaced; immutable ones are copied, never recomputed."""
        if not self.rescaled:
            return np.array(Y, dtype=np.float64, copy=True)
        X = np.array(X0, dtype=np.float64, copy=True)
        values = Y / self.constraints.scale
        if self.bounded:  # y / scale may land an ulp outside a range that y itself meets
            values = np.minimum(np.maximum(values, self.constraints.lower), self.constraints.upper)
        X[:, self.constraints.free] = values
        return X

    def outside(self, Y0: np.ndarray) -> np.ndarray:
        """Rows whose source breaks a range."""
        if not self.bounded:
            return np.zeros(Y0.shape[0], dtype=bool)
        return ((Y0 < self.lower) | (Y0 > self.upper)).any(axis=1)

    def distance(self, X: np.ndarray, X0: np.ndarray) -> np.ndarray:
        diff = X - X0
        if self.cost is None:
            return np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return np.sqrt(np.einsum("ij,j,ij->i", diff, self.cost, diff))


def pose_batch(model: SoftmaxModel, immutable=None, cost=None, bounds=None, categorical=None) -> BatchProblem:
    """Validate the constraint arguments once for the whole batch (as ``_problem.pose`` does for a row).

    One-hot groups in ``categorical`` are frozen, as the single-row questions freeze them when no level
    may change: their columns join the immutable ones.
    """
    frozen = immutable_mask(immutable, model.n_features)
    for columns in check_groups(categorical, model.n_features):
        frozen[list(columns)] = True
    frozen = frozen if frozen.any() else None
    constraints = parse_constraints(model.n_features, frozen, cost, bounds)
    weights = None if cost is None else np.broadcast_to(np.asarray(cost, dtype=np.float64), (model.n_features,))
    if constraints is None:
        return BatchProblem(model, model, None, False, weights)
    if constraints.free.size == 0:
        raise ValueError("every feature is immutable (or has cost 0): nothing can change; free at least one feature")
    if constraints.free.size == model.n_features and np.all(constraints.scale == 1.0):
        return BatchProblem(model, model, constraints, False, weights, frozen, bounds)
    scaled = model.column_scaled(constraints.free, constraints.scale, constraints.key)
    return BatchProblem(model, scaled, constraints, True, weights, frozen, bounds)


def _chunk_rows(chunk_size, per_row_bytes: int, least: int = 16, budget: int = CHUNK_BYTES) -> int:
    if chunk_size is not None:
        return check_positive_int(chunk_size, "chunk_size")
    return int(max(least, min(8192, budget // max(per_row_bytes, 1))))


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class _Output:
    """Preallocated result arrays, filled chunk by chunk."""

    def __init__(self, n, n_features, n_classes, with_lam=False, with_margin=False):
        self.X = np.empty((n, n_features))
        self.proba = np.empty((n, n_classes))
        self.distance = np.full(n, np.inf)
        self.success = np.zeros(n, dtype=bool)
        self.n_iter = np.zeros(n, dtype=np.int64)
        self.grad_norm = np.full(n, np.nan)
        self.message = np.empty(n, dtype=object)
        self.lam = np.full(n, np.nan) if with_lam else None
        self.margin = np.full(n, np.nan) if with_margin else None

    def fail(self, rows, X0, proba0, messages):
        """Rows without an answer: ``X = x0``, ``distance = inf``, ``success = False``."""
        self.X[rows] = X0
        self.proba[rows] = proba0
        self.distance[rows] = np.inf
        self.success[rows] = False
        self.message[rows] = messages

    def from_single(self, row, result, X0_row):
        """Row ``row`` answered by the single-row function (its ``CounterfactualResult``)."""
        self.X[row] = result.x if result.success else X0_row
        self.proba[row] = result.proba
        self.distance[row] = result.distance if result.success else np.inf
        self.success[row] = result.success
        self.n_iter[row] = result.n_iter
        self.message[row] = result.message
        if self.lam is not None:
            self.lam[row] = np.nan if result.lam is None else result.lam
        if self.margin is not None:
            self.margin[row] = np.nan if result.margin is None else result.margin

    def result(self, targets, method, start_time, lam=None):
        return BatchResult(X=self.X, proba=self.proba, distance=self.distance, success=self.success,
                           n_iter=self.n_iter, grad_norm=self.grad_norm, message=self.message,
                           target=targets, lam=self.lam if lam is None else lam, margin=self.margin, method=method,
                           time_s=time.perf_counter() - start_time)


def _relative_logits(Z: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return Z - Z[np.arange(Z.shape[0]), targets][:, None]


# -- invert ------------------------------------------------------------------------------------------
def invert_batch(model, X0, targets, lam, *, tol=1e-10, max_iter=None, immutable=None, cost=None, bounds=None,
                 categorical=None, chunk_size=None) -> BatchResult:
    r""":func:`solver.invert` for every row of ``X0``: the minimiser of

    .. math:: E_i(x) = \frac{\lambda_i}{2} \sum_j c_j (x_j - x_{0ij})^2 - \log p_{k_i}(x)

    for each row ``i``, with the same constraints for all rows.

    Without ranges, reduced Newton (MATH.md section 2) for all rows at once: after the once-per-model
    basis, ``O(D K)`` per row to form ``w0`` and to lift ``u`` to ``x``, and ``O(K^3)`` per row and
    iteration in stacked ``(n, r, r)`` solves. Each row starts from the exact answer of its two-class
    problem between the target and its strongest rival (the answer itself for K = 2) when that is lower
    than x0, so it needs fewer damped steps than the single-row loop from x0. With ranges, projected
    Newton (section 6) with the K x K systems of section 3 stacked, ``O(D K^2)`` per row and iteration,
    from the two-class answer clipped into the ranges (where that is lower than the clipped x0); each
    Newton step is the single-row loop's step. Rows that converged leave the working set.

    Parameters
    ----------
    model : SoftmaxModel
    X0 : array_like (n, D)
    targets : int or array_like (n,) of int
    lam : float or array_like (n,) of float > 0
    tol, max_iter, immutable, cost, bounds
        As in :func:`solver.invert` (the same for every row).
    categorical : sequence of index tuples, optional
        One-hot groups, frozen (their columns are immutable), as the single-row questions freeze them.
    chunk_size : int, optional
        Rows per chunk (default: from a working-memory budget of ~48 MB, ~20 MB with ranges). Results
        do not depend on it.

    Returns
    -------
    BatchResult
        ``lam`` holds each row's trade-off. A row that did not converge has ``success=False``,
        ``X = x0``, ``distance = inf`` and a message saying why; the other rows are unaffected.

    Raises
    ------
    ValueError
        For invalid arguments, naming the argument and the row.

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0])
    >>> batch = invert_batch(model, [[2.0, 0.0], [0.0, 2.0]], targets=[1, 0], lam=0.1)
    >>> batch.success.tolist(), batch.proba.argmax(axis=1).tolist()
    ([True, True], [1, 0])
    """
    start_time = time.perf_counter()
    model = check_model(model)
    X0 = check_rows(X0, model.n_features)
    n = X0.shape[0]
    targets = check_targets(targets, n, model.n_classes)
    lams = check_lams_per_row(lam, n)
    tol = check_tol(tol)
    problem = pose_batch(model, immutable, cost, bounds, categorical)
    default = DEFAULT_MAX_ITER_BOUNDED if problem.bounded else DEFAULT_MAX_ITER
    max_iter = check_positive_int(default if max_iter is None else max_iter, "max_iter")
    out = _Output(n, model.n_features, model.n_classes)
    K, F = problem.model.n_classes, problem.model.n_features
    with np.errstate(all="ignore"):
        if problem.bounded:
            outer = _outer_table(problem.model.coef)
            size = _chunk_rows(chunk_size, 8 * (F * (BoundedRows.batch + 8) + 6 * K * K), budget=D_CHUNK_BYTES)
            for rows in _chunks(n, size):
                _invert_bounded(problem, X0[rows], targets[rows], lams[rows], tol, max_iter, out, rows, outer)
        else:
            basis = problem.model.reduced_basis()
            size = _chunk_rows(chunk_size, 8 * (max(basis.rank, 1) * (K + basis.rank) * 4 + 12 * K))
            lift_rows = _chunk_rows(None, 8 * 4 * model.n_features)  # the D-sized steps, in smaller pieces
            for rows in _chunks(n, size):
                _invert_reduced(problem, basis, X0[rows], targets[rows], lams[rows], tol, max_iter, out, rows,
                                lift_rows)
    return out.result(targets, "projected-newton" if problem.bounded else "newton", start_time, lam=lams)


def _outer_table(A: np.ndarray):
    """``AA[f, (k, l)] = A[k, f] A[l, f]`` (F x K^2), or None when it would be large."""
    K, F = A.shape
    if F * K * K * 8 > _MAX_OUTER_BYTES:
        return None
    return (A[:, None, :] * A[None, :, :]).reshape(K * K, F).T.copy()


def _invert_reduced(problem, basis, X0, targets, lams, tol, max_iter, out, rows, lift_rows):
    Z0 = problem.user.decision_function(X0)
    w0 = _relative_logits(Z0, targets)
    energy = ReducedRows(basis.M, w0, targets, lams)
    every = np.arange(X0.shape[0])
    start = two_class_start(basis.M, w0, targets, lams)
    better = energy.evaluate(every, start)[0] < energy.evaluate(every, np.zeros_like(start))[0]
    start[~better] = 0.0  # from x0, as the single-row invert starts, unless the two-class answer is lower
    U, proba, _, grad_norm, n_iter, status, floor = newton_rows(energy, start, tol, max_iter)
    for piece in _chunks(X0.shape[0], lift_rows):
        X = problem.to_full(problem.reduced(X0[piece]) + basis.lift(U[piece]), X0[piece])
        _finish_invert(problem, X, X0[piece], proba[piece], grad_norm[piece], n_iter[piece], status[piece],
                       floor[piece], tol, "newton", out, slice(rows.start + piece.start, rows.start + piece.stop))


def _bounded_start(problem, energy, Y0, Z0, targets, lams):
    """Projected Newton's starting points: the two-class answer without ranges (see
    :func:`two_class_start`), clipped into them, where its energy is below that of the clipped source."""
    basis = problem.model.reduced_basis()
    every = np.arange(Y0.shape[0])
    clipped = energy.clip(Y0)
    guess = energy.clip(Y0 + basis.lift(two_class_start(basis.M, _relative_logits(Z0, targets), targets, lams)))
    better = energy.evaluate(every, guess)[0] < energy.evaluate(every, clipped)[0]
    return np.where(better[:, None], guess, clipped)


def _invert_bounded(problem, X0, targets, lams, tol, max_iter, out, rows, outer):
    Y0 = problem.reduced(X0)
    energy = BoundedRows(problem.model.coef, problem.intercepts(X0), Y0, targets, lams, problem.lower,
                         problem.upper, outer)
    start = _bounded_start(problem, energy, Y0, problem.user.decision_function(X0), targets, lams)
    Y, proba, _, grad_norm, n_iter, status, floor = newton_rows(energy, start, tol, max_iter)
    X = problem.to_full(Y, X0)
    _finish_invert(problem, X, X0, proba, grad_norm, n_iter, status, floor, tol, "projected-newton", out, rows)


def _finish_invert(problem, X, X0, proba, grad_norm, n_iter, status, floor, tol, method, out, rows):
    ok = np.isin(status, _SUCCESS_CODES)
    X[~ok] = X0[~ok]
    out.X[rows], out.proba[rows] = X, proba
    out.distance[rows] = np.where(ok, problem.distance(X, X0), np.inf)
    out.success[rows], out.n_iter[rows], out.grad_norm[rows] = ok, n_iter, grad_norm
    out.message[rows] = [status_message(s, g, tol, i, f, method)  # Python scalars format fastest
                         for s, g, i, f in zip(status.tolist(), grad_norm.tolist(), n_iter.tolist(), floor.tolist())]


_SUCCESS_CODES = np.array([code for code in range(5) if succeeded(code)])


# -- minimal flip ------------------------------------------------------------------------------------
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
    out = _Output(n, model.n_features, model.n_classes, with_margin=True)
    K = model.n_classes
    basis = problem.model.reduced_basis()
    with np.errstate(all="ignore"):
        if problem.bounded:
            outer = _outer_table(problem.model.coef)
            size = _chunk_rows(chunk_size, 8 * (6 * K * K + 6 * problem.model.n_features), least=64,
                               budget=D_CHUNK_BYTES)
            for rows in _chunks(n, size):
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
            size = _chunk_rows(chunk_size, 8 * (6 * K * K + 3 * model.n_features), least=64, budget=D_CHUNK_BYTES)
            for rows in _chunks(n, size):
                _flip_reduced(problem, basis, G_all, X0[rows], targets[rows], margins[rows], out, rows)
    return out.result(targets, "minimal-flip", start_time)


def _flip_reduced(problem, basis, G_all, X0, targets, margins, out, rows):
    model = problem.user
    n, K = X0.shape[0], model.n_classes
    Z0 = model.decision_function(X0)
    w0 = _relative_logits(Z0, targets)
    eligible = np.ones((n, K), dtype=bool)
    eligible[np.arange(n), targets] = False
    already = logit_leads(Z0, targets) >= margins
    X, Z = X0.copy(), Z0.copy()
    used = margins.copy()
    steps = np.zeros(n, dtype=np.int64)
    valid = already.copy()
    fallback = np.zeros(n, dtype=bool)
    Y0 = problem.reduced(X0)
    M = basis.M
    pending = np.flatnonzero(~already)
    for nudge in range(MAX_MARGIN_NUDGES + 1):
        if pending.size == 0:
            break
        t = targets[pending]
        h = w0[pending] + used[pending, None]
        mu, taken, converged = nnls_rows(G_all[t], h, eligible[pending], max_steps=6 * K)
        U = -(mu @ M - mu.sum(axis=1)[:, None] * M[t])  # u = -N^T mu = -(M^T mu - (1^T mu) m_k)
        Xp = problem.to_full(Y0[pending] + basis.lift(U), X0[pending])
        Zp = model.decision_function(Xp)
        lead = logit_leads(Zp, t)
        m = margins[pending]
        ok = np.where(m > 0, lead >= MARGIN_SLACK * m, lead >= -lead_round_off(Zp)) & converged
        X[pending], Z[pending], steps[pending], valid[pending] = Xp, Zp, taken, ok
        fallback[pending[~converged]] = True
        retry = ~ok & converged & (m > 0) & (nudge < MAX_MARGIN_NUDGES)
        used[pending[retry]] = 2.0 * used[pending[retry]] + (m[retry] - lead[retry])  # past the round-off
        pending = pending[retry]
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
    n = X0.shape[0]
    Z0 = model.decision_function(X0)
    Y0 = problem.reduced(X0)
    intercepts = problem.intercepts(X0)
    outside = problem.outside(Y0)
    already = (logit_leads(Z0, targets) >= margins) & ~outside
    X, Z = X0.copy(), Z0.copy()
    used = margins.copy()
    steps = np.zeros(n, dtype=np.int64)
    valid = already.copy()
    fallback = np.zeros(n, dtype=bool)
    pending = np.flatnonzero(~already)
    for nudge in range(MAX_MARGIN_NUDGES + 1):
        if pending.size == 0:
            break
        t = targets[pending]
        Y, taken, converged = bounded_projection_rows(problem.model.coef, intercepts[pending], Y0[pending], t,
                                                      used[pending], problem.lower, problem.upper, outer)
        Xp = problem.to_full(Y, X0[pending])
        Zp = model.decision_function(Xp)
        lead = logit_leads(Zp, t)
        m = margins[pending]
        ok = np.where(m > 0, lead >= MARGIN_SLACK * m, lead >= -lead_round_off(Zp)) & converged
        X[pending], Z[pending], steps[pending], valid[pending] = Xp, Zp, taken, ok
        fallback[pending[~converged]] = True
        retry = ~ok & converged & (m > 0) & (nudge < MAX_MARGIN_NUDGES)
        used[pending[retry]] = 2.0 * used[pending[retry]] + (m[retry] - lead[retry])
        pending = pending[retry]
    for i in np.flatnonzero(fallback):
        single = minimal_flip(model, X0[i], int(targets[i]), float(margins[i]), immutable=problem.frozen,
                              cost=problem.cost, bounds=problem.bounds)
        out.from_single(rows.start + i, single, X0[i])
    mine = np.flatnonzero(~fallback)
    _finish_flip(problem, X[mine], X0[mine], Z[mine], Z0[mine], targets[mine], margins[mine], used[mine], steps[mine],
                 valid[mine], already[mine], outside[mine], out, rows.start + mine)


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


# -- closest with probability ------------------------------------------------------------------------
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
    out = _Output(n, model.n_features, model.n_classes, with_lam=True)
    K = model.n_classes
    kwargs = dict(immutable=problem.frozen, cost=cost, bounds=bounds, lam_range=lam_range)
    with np.errstate(all="ignore"):
        if problem.bounded:
            outer = _outer_table(problem.model.coef)
            F = problem.model.n_features
            size = _chunk_rows(chunk_size, 8 * (F * (BoundedRows.batch + 14) + 6 * K * K), least=64,
                               budget=D_CHUNK_BYTES)
            for rows in _chunks(n, size):
                _closest_bounded(problem, outer, X0[rows], targets[rows], alphas[rows], lam_range, out, rows, kwargs)
        else:
            basis = problem.model.reduced_basis()
            size = _chunk_rows(chunk_size, 8 * (K * max(basis.rank, 1) * 8 + 3 * model.n_features), least=64,
                               budget=D_CHUNK_BYTES)
            for rows in _chunks(n, size):
                _closest_unbounded(problem, basis, X0[rows], targets[rows], alphas[rows], lam_range, out, rows,
                                   kwargs)
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
    ``_lam_search`` finds it: bracket by factors of 100 from lam = 1, then shrink the bracket on ``log lam``
    (Illinois' regula falsi, bisection when it stalls) to 1e-13, each probe a warm-started batched projected
    Newton solve. The answer is the bracket's end on the side ``p >= alpha``, so no nudge is needed. Rows
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
        return excess, Y, X, grad_norm, np.isin(status, _SUCCESS_CODES)

    m = P.size
    every = np.arange(m)
    low_limit, high_limit = math.log(lam_range[0]), math.log(lam_range[1])
    low = np.full(m, min(max(0.0, low_limit), high_limit))
    high = low.copy()
    first = BoundedRows(problem.model.coef, intercepts[P], Y0[P], targets[P], np.exp(low), problem.lower,
                        problem.upper, outer)
    first_start = _bounded_start(problem, first, Y0[P], model.decision_function(X0[P]), targets[P], np.exp(low))
    f_low, Y_low, X_low, g_low, ok = probe(every, low, first_start)
    failed = ~ok
    f_high, Y_high, X_high, g_high = f_low.copy(), Y_low.copy(), X_low.copy(), g_low.copy()
    probes = np.ones(m, dtype=np.int64)
    while True:  # p stays above alpha: a larger lam
        up = np.flatnonzero(~failed & (f_high >= 0) & (high < high_limit))
        if up.size == 0:
            break
        low[up], f_low[up], Y_low[up], X_low[up], g_low[up] = high[up], f_high[up], Y_high[up], X_high[up], g_high[up]
        high[up] = np.minimum(high[up] + LOG_STEP, high_limit)
        f_high[up], Y_high[up], X_high[up], g_high[up], ok = probe(up, high[up], Y_high[up])
        probes[up] += 1
        failed[up[~ok]] = True
    while True:  # alpha not reached: a smaller lam
        down = np.flatnonzero(~failed & (f_low < 0) & (low > low_limit))
        if down.size == 0:
            break
        high[down], f_high[down], Y_high[down], X_high[down] = low[down], f_low[down], Y_low[down], X_low[down]
        low[down] = np.maximum(low[down] - LOG_STEP, low_limit)
        f_low[down], Y_low[down], X_low[down], g_low[down], ok = probe(down, low[down], Y_low[down])
        probes[down] += 1
        failed[down[~ok]] = True
    unreachable = ~failed & (f_low < 0)
    at_top = ~failed & ~unreachable & (f_high >= 0)  # p >= alpha up to the largest lam: its minimiser answers
    X_low[at_top], low[at_top], g_low[at_top] = X_high[at_top], high[at_top], g_high[at_top]
    side = np.zeros(m, dtype=np.int8)  # Illinois: which end moved last (-1 low, +1 high)
    weight_low, weight_high = f_low.copy(), f_high.copy()
    searching = np.flatnonzero(~failed & ~unreachable & ~at_top)
    for _ in range(_MAX_BRACKET_STEPS):
        a, b = low[searching], high[searching]
        wide = b - a > 2 * (_LOG_LAM_XTOL + 4 * EPS * np.maximum(np.abs(a), np.abs(b)))
        searching = searching[wide & (f_low[searching] > 0)]
        if searching.size == 0:
            break
        s = searching
        a, b = low[s], high[s]
        c = b - weight_high[s] * (b - a) / (weight_high[s] - weight_low[s])  # regula falsi on the weights
        c = np.where((c > a) & (c < b), c, 0.5 * (a + b))
        # as Brent's method, never closer than the tolerance to an end: a root within it of an end is then
        # bracketed to the tolerance by the next probe
        tol = _LOG_LAM_XTOL + 4 * EPS * np.maximum(np.abs(a), np.abs(b))
        c = np.minimum(np.maximum(c, a + tol), b - tol)
        fc, Yc, Xc, gc, ok = probe(s, c, Y_low[s])
        probes[s] += 1
        failed[s[~ok]] = True
        above = ok & (fc >= 0)
        below = ok & (fc < 0)
        lo_rows, hi_rows = s[above], s[below]
        # Illinois: when the same end moves twice running, the other end's weight is halved
        weight_high[lo_rows[side[lo_rows] == -1]] *= 0.5
        weight_low[hi_rows[side[hi_rows] == 1]] *= 0.5
        low[lo_rows], f_low[lo_rows], Y_low[lo_rows], X_low[lo_rows], g_low[lo_rows] = (
            c[above], fc[above], Yc[above], Xc[above], gc[above])
        high[hi_rows], f_high[hi_rows], Y_high[hi_rows] = c[below], fc[below], Yc[below]
        weight_low[lo_rows], weight_high[hi_rows] = fc[above], fc[below]
        side[lo_rows], side[hi_rows] = -1, 1
        searching = s[ok]
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
    W = _relative_logits(Zr, targets)
    p = np.exp(W - np.logaddexp(0.0, W[every, other])[:, None])
    grad = lam[:, None] * (Yx - Y0) + p[every, other][:, None] * C
    return X, lam, n_iter, np.sqrt(np.einsum("ij,ij->i", grad, grad)), np.ones(n, dtype=bool)


def _kkt_rows(problem, basis, Y0, X0, Z0, targets, goal, lam_range):
    """K > 2: :func:`kkt_newton_rows`, answers nudged to the side ``p >= alpha`` as in ``_probability._reduced``."""
    w0 = _relative_logits(Z0, targets)
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

