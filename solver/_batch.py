"""Whole-dataset answers: the result object, the checks and posing every batch shares, and
:func:`invert_batch` (the questions are in ``_batch_flip.py`` and ``_batch_probability.py``).

Each row is the single-row problem of :func:`solver.invert`, :func:`solver.minimal_flip` or
:func:`solver.closest_with_probability`, with the same constraints for every row; the kernels in
``_batch_kernels.py`` advance all unfinished rows together. Rows are processed in chunks whose size
bounds the memory; the chunking does not change any row's answer.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass

import numpy as np

from ._batch_kernels import (
    BoundedRows,
    ReducedRows,
    newton_rows,
    two_class_start,
)
from ._constraints import Constraints, parse_constraints
from ._iteration import succeeded
from ._levels import check_groups
from ._model import SoftmaxModel
from ._problem import check_model
from ._result import status_message
from ._validation import check_positive_int, check_tol, feature_mask

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
    frozen = feature_mask(immutable, model.n_features, "immutable")
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


def chunk_rows(chunk_size, per_row_bytes: int, least: int = 16, budget: int = CHUNK_BYTES) -> int:
    if chunk_size is not None:
        return check_positive_int(chunk_size, "chunk_size")
    return int(max(least, min(8192, budget // max(per_row_bytes, 1))))


def chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class Output:
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


def relative_logits(Z: np.ndarray, targets: np.ndarray) -> np.ndarray:
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
    out = Output(n, model.n_features, model.n_classes)
    K, F = problem.model.n_classes, problem.model.n_features
    with np.errstate(all="ignore"):
        if problem.bounded:
            outer = outer_table(problem.model.coef)
            size = chunk_rows(chunk_size, 8 * (F * (BoundedRows.batch + 8) + 6 * K * K), budget=D_CHUNK_BYTES)
            for rows in chunks(n, size):
                _invert_bounded(problem, X0[rows], targets[rows], lams[rows], tol, max_iter, out, rows, outer)
        else:
            basis = problem.model.reduced_basis()
            size = chunk_rows(chunk_size, 8 * (max(basis.rank, 1) * (K + basis.rank) * 4 + 12 * K))
            lift_rows = chunk_rows(None, 8 * 4 * model.n_features)  # the D-sized steps, in smaller pieces
            for rows in chunks(n, size):
                _invert_reduced(problem, basis, X0[rows], targets[rows], lams[rows], tol, max_iter, out, rows,
                                lift_rows)
    return out.result(targets, "projected-newton" if problem.bounded else "newton", start_time, lam=lams)


def outer_table(A: np.ndarray):
    """``AA[f, (k, l)] = A[k, f] A[l, f]`` (F x K^2), or None when it would be large."""
    K, F = A.shape
    if F * K * K * 8 > _MAX_OUTER_BYTES:
        return None
    return (A[:, None, :] * A[None, :, :]).reshape(K * K, F).T.copy()


def _invert_reduced(problem, basis, X0, targets, lams, tol, max_iter, out, rows, lift_rows):
    Z0 = problem.user.decision_function(X0)
    w0 = relative_logits(Z0, targets)
    energy = ReducedRows(basis.M, w0, targets, lams)
    every = np.arange(X0.shape[0])
    start = two_class_start(basis.M, w0, targets, lams)
    better = energy.evaluate(every, start)[0] < energy.evaluate(every, np.zeros_like(start))[0]
    start[~better] = 0.0  # from x0, as the single-row invert starts, unless the two-class answer is lower
    U, proba, _, grad_norm, n_iter, status, floor = newton_rows(energy, start, tol, max_iter)
    for piece in chunks(X0.shape[0], lift_rows):
        X = problem.to_full(problem.reduced(X0[piece]) + basis.lift(U[piece]), X0[piece])
        _finish_invert(problem, X, X0[piece], proba[piece], grad_norm[piece], n_iter[piece], status[piece],
                       floor[piece], tol, "newton", out, slice(rows.start + piece.start, rows.start + piece.stop))


def bounded_start(problem, energy, Y0, Z0, targets, lams):
    """Projected Newton's starting points: the two-class answer without ranges (see
    :func:`two_class_start`), clipped into them, where its energy is below that of the clipped source."""
    basis = problem.model.reduced_basis()
    every = np.arange(Y0.shape[0])
    clipped = energy.clip(Y0)
    guess = energy.clip(Y0 + basis.lift(two_class_start(basis.M, relative_logits(Z0, targets), targets, lams)))
    better = energy.evaluate(every, guess)[0] < energy.evaluate(every, clipped)[0]
    return np.where(better[:, None], guess, clipped)


def _invert_bounded(problem, X0, targets, lams, tol, max_iter, out, rows, outer):
    Y0 = problem.reduced(X0)
    energy = BoundedRows(problem.model.coef, problem.intercepts(X0), Y0, targets, lams, problem.lower,
                         problem.upper, outer)
    start = bounded_start(problem, energy, Y0, problem.user.decision_function(X0), targets, lams)
    Y, proba, _, grad_norm, n_iter, status, floor = newton_rows(energy, start, tol, max_iter)
    X = problem.to_full(Y, X0)
    _finish_invert(problem, X, X0, proba, grad_norm, n_iter, status, floor, tol, "projected-newton", out, rows)


def _finish_invert(problem, X, X0, proba, grad_norm, n_iter, status, floor, tol, method, out, rows):
    ok = np.isin(status, SUCCESS_CODES)
    X[~ok] = X0[~ok]
    out.X[rows], out.proba[rows] = X, proba
    out.distance[rows] = np.where(ok, problem.distance(X, X0), np.inf)
    out.success[rows], out.n_iter[rows], out.grad_norm[rows] = ok, n_iter, grad_norm
    out.message[rows] = [status_message(s, g, tol, i, f, method)  # Python scalars format fastest
                         for s, g, i, f in zip(status.tolist(), grad_norm.tolist(), n_iter.tolist(), floor.tolist())]


SUCCESS_CODES = np.array([code for code in range(5) if succeeded(code)])
