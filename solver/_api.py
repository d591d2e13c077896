"""``invert`` and ``invert_path``: the public entry points of the solver."""

from __future__ import annotations

import time

import numpy as np

from ._closed_form import logistic_path
from ._first_order import bfgs_memory_check, conjugate_gradient, gradient_descent, scipy_method
from ._iteration import final_status, succeeded
from ._newton import newton_full, newton_reduced
from ._objective import full_energy_and_gradient, relative_parameters
from ._problem import check_model, pose
from ._projected import projected_newton
from ._result import HistoryRecorder, InversionPath, InversionResult, ReducedState, status_message
from ._validation import check_instance, check_lam, check_lams, check_positive_int, check_target, check_tol

METHODS = ("auto", "newton", "newton-full", "closed-form", "gd", "cg", "bfgs", "lbfgs", "projected-newton")
DEFAULT_MAX_ITER = {"newton": 200, "newton-full": 200, "projected-newton": 500, "gd": 1000, "cg": 1000, "bfgs": 1000,
                    "lbfgs": 1000}
BOUNDED_METHODS = ("auto", "newton", "projected-newton", "lbfgs")


def _resolve_method(method, n_classes: int, n_features: int, bounded: bool = False) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if bounded:
        if method not in BOUNDED_METHODS:
            raise ValueError(f"method={method!r} does not handle bounds; use 'newton' (projected Newton) or 'lbfgs'")
        return "lbfgs" if method == "lbfgs" else "projected-newton"
    if method == "projected-newton":
        raise ValueError("method='projected-newton' is for problems with bounds; pass bounds=(lower, upper)")
    if method == "auto":
        return "closed-form" if n_classes == 2 else "newton"
    if method == "closed-form" and n_classes != 2:
        raise ValueError(f"method='closed-form' needs a binary model (K = 2); this model has K = {n_classes}")
    if method == "bfgs":
        bfgs_memory_check(n_features)
    return method


def _validate(model, x0, target, method, tol, max_iter, x_init, immutable, cost, bounds):
    """The checks :func:`invert` and :func:`invert_path` share, and the problem the solvers see."""
    model = check_model(model)
    x0 = check_instance(x0, model.n_features)
    target = check_target(target, model.n_classes)
    tol = check_tol(tol)
    problem = pose(model, x0, immutable, cost, bounds)
    method = _resolve_method(method, model.n_classes, problem.model.n_features, problem.lower is not None)
    max_iter = check_positive_int(DEFAULT_MAX_ITER.get(method, 1) if max_iter is None else max_iter, "max_iter")
    start, state = _start_point(x_init, x0)
    return target, problem, method, tol, max_iter, start, state


def _start_point(x_init, x0: np.ndarray):
    """``(vector, reduced state)`` to start from; either may be None."""
    if x_init is None:
        return None, None
    if isinstance(x_init, InversionResult):
        if x_init.warm_state is not None and x_init.x.shape == x0.shape:
            return x_init.x, x_init.warm_state  # our own result: already validated
        return check_instance(x_init.x, x0.shape[0], name="x_init"), x_init.warm_state
    return check_instance(x_init, x0.shape[0], name="x_init"), None


# Predict the next solution from the path's derivatives when lam moves by at most this factor.
_PREDICT_MAX_RATIO = 2.0


def _predicted(u, lam_from, derivatives, lam):
    """Continuation along the path: ``u*(lam) ~ u + d u' + d^2/2 u''`` with ``d = lam - lam_from``."""
    if derivatives is not None and 1 / _PREDICT_MAX_RATIO <= lam / lam_from <= _PREDICT_MAX_RATIO:
        delta = lam - lam_from
        return u + delta * derivatives[0] + 0.5 * delta**2 * derivatives[1]
    return u


def _reduced_start(model, x0, target, lam, start, state):
    """Basis, logits ``A x0 + b`` and starting coordinates ``u`` for reduced Newton.

    From a previous result on the same model and instance nothing D-sized is recomputed; for the same
    target the path's derivatives predict the new solution to third order in the change of lam.
    """
    basis = model.reduced_basis()
    if state is not None and state.basis is basis and (state.x0 is x0 or np.array_equal(state.x0, x0)):
        derivatives = state.derivatives if state.target == target else None
        return basis, state.logits, _predicted(state.u, state.lam, derivatives, lam)
    logits = model.coef @ x0 + model.intercept
    u = np.zeros(basis.rank) if start is None else basis.project(start - x0)
    return basis, logits, u


def _run(model, x0, target, lam, method, start, tol, max_iter, recorder, state=None, lower=None, upper=None):
    """Dispatch to one iterative method; returns the solution x, the outcome and any reduced state."""
    if method == "newton":
        basis, logits, u = _reduced_start(model, x0, target, lam, start, state)
        N = basis.M - basis.M[target]
        outcome = newton_reduced(N, logits - logits[target], target, lam, u, tol, max_iter, recorder)
        warm = ReducedState(basis, x0, logits, outcome.point, lam, target, outcome.derivatives)
        return x0 + basis.lift(outcome.point), outcome, warm
    coef_rel, intercept_rel = relative_parameters(model.coef, model.intercept, target)
    x = x0.copy() if start is None else start.copy()
    args = (coef_rel, intercept_rel, x0, target, lam, x, tol, max_iter, recorder)
    if method == "projected-newton":
        outcome = projected_newton(coef_rel, intercept_rel, x0, target, lam, lower, upper, x, tol, max_iter, recorder)
    elif method == "newton-full":
        outcome = newton_full(*args)
    elif method == "gd":
        outcome = gradient_descent(*args)
    elif method == "cg":
        outcome = conjugate_gradient(*args)
    else:
        outcome = scipy_method(method, *args, lower=lower, upper=upper)
    return outcome.point, outcome, None


def invert(model, x0, target, lam, *, x_init=None, method="auto", tol=1e-10, max_iter=None, record=False,
           immutable=None, cost=None, bounds=None):
    r"""The closest instance the model assigns to ``target``, for one trade-off ``lam``.

    Minimises the strongly convex energy (seed paper, eq. 2)

    .. math:: E(x) = \frac{\lambda}{2} \|x - x_0\|^2 - \log p_k(x)

    whose unique minimiser satisfies ``x* = x0 - Abar^T p(x*) / lam``.

    Parameters
    ----------
    model : SoftmaxModel
    x0 : array_like (D,)
        The source instance.
    target : int
        Class index ``k`` in ``0..K-1``.
    lam : float > 0
        Weight of the distance; small lam pushes further towards the target.
    x_init : array_like (D,) or InversionResult, optional
        Warm start, e.g. the result for a neighbouring lam. Default: ``x0``.
    method : str
        ``"auto"`` (closed form for K = 2, else ``"newton"``); ``"newton"``: Newton in the
        (K-1)-dimensional subspace (MATH.md section 2), O(K^3) per iteration after an O(D K^2)
        once-per-model basis; ``"newton-full"``: the paper's full-space Newton (section 3), O(D K) per
        iteration; ``"closed-form"`` (K = 2, section 5); baselines ``"gd"``, ``"cg"``, ``"bfgs"``,
        ``"lbfgs"`` (memory 4).
    tol : float
        Stop when ``||grad E(x)|| <= tol``.
    max_iter : int, optional
        Iteration limit (default 200 for Newton, 1000 for the baselines).
    record : bool
        Keep a per-iteration :class:`IterationHistory` in ``result.history``.
    immutable : bool mask (D,) or sequence of int, optional
        Features that must not change; they are copied from x0, so they never move, not even by
        round-off.
    cost : array_like (D,) of float >= 0, optional
        Per-feature weights: the distance becomes ``sum_j cost_j (x_j - x0_j)^2`` (``1/std_j^2``
        measures change in standard deviations; 0 means the feature cannot change).
    bounds : (lower, upper), optional
        Feature ranges, arrays or scalars, ``-inf``/``inf`` for none. Solved by projected Newton
        (``method="newton"``) or L-BFGS-B (``"lbfgs"``); ``grad_norm`` is then the projected gradient.

    Returns
    -------
    InversionResult
        With constraints, ``energy`` and ``grad_norm`` refer to the weighted distance, and
        ``at_lower``/``at_upper`` list the features that end at a bound.

    Raises
    ------
    ValueError
        For invalid arguments, naming the argument. Numerical trouble is reported in the result
        (``success=False`` and ``message``), never raised.

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0])
    >>> res = invert(model, [2.0, 0.0], target=1, lam=0.1)
    >>> bool(res.success), int(res.proba.argmax())
    (True, 1)
    """
    start_time = time.perf_counter()
    lam = check_lam(lam)
    target, problem, method, tol, max_iter, start, state = _validate(model, x0, target, method, tol, max_iter, x_init,
                                                                     immutable, cost, bounds)
    recorder = HistoryRecorder(start_time) if record else None
    with np.errstate(all="ignore"):  # overflow shows up as status NON_FINITE, never as a warning
        return _invert(problem, target, lam, method, start, state, tol, max_iter, recorder, start_time)


def _invert(problem, target, lam, method, start, state, tol, max_iter, recorder, start_time) -> InversionResult:
    model, x0 = problem.model, problem.x0
    start = None if start is None else problem.to_reduced(start)
    warm = None
    if method == "closed-form":
        X, energies, grad_norms, probas, floors = logistic_path(model.coef, model.intercept, x0, target, np.array([lam]))
        x, proba, energy, grad_norm, floor = X[0], probas[0], float(energies[0]), float(grad_norms[0]), float(floors[0])
        n_iter, status = 0, final_status(energy, grad_norm, tol, floor)
        if recorder is not None:
            coef_rel, intercept_rel = relative_parameters(model.coef, model.intercept, target)
            start_energy, start_grad, start_proba = full_energy_and_gradient(coef_rel, intercept_rel, x0, target, lam, x0)
            recorder.add(start_energy, np.linalg.norm(start_grad), start_proba, np.nan, start_time)
            recorder.add(energy, grad_norm, proba, 1.0, time.perf_counter())
    else:
        x, outcome, warm = _run(model, x0, target, lam, method, start, tol, max_iter, recorder, state,
                                problem.lower, problem.upper)
        proba, energy, grad_norm = outcome.proba, outcome.energy, outcome.grad_norm
        n_iter, status, floor = outcome.n_iter, outcome.status, outcome.floor
    x = problem.to_full(x)
    at_lower, at_upper = problem.active_bounds(x)

    return InversionResult(
        x=x,
        proba=proba,
        energy=energy,
        grad_norm=grad_norm,
        n_iter=n_iter,
        success=succeeded(status),
        status=status,
        message=status_message(status, grad_norm, tol, n_iter, floor, method),
        method=method,
        lam=lam,
        target=target,
        time_s=time.perf_counter() - start_time,
        history=None if recorder is None else recorder.freeze(),
        warm_state=warm,
        at_lower=at_lower,
        at_upper=at_upper,
    )


def invert_path(model, x0, target, lams, *, method="auto", tol=1e-10, max_iter=None, x_init=None,
                immutable=None, cost=None, bounds=None):
    r"""Solutions of :func:`invert` along ``lams``, each warm-started from the previous one.

    Like scikit-learn's regularisation paths. For K = 2 (``"auto"`` or ``"closed-form"``) the path is
    explicit (MATH.md section 5): O(D) per lam, no iterations. With ``"newton"`` the whole path stays
    in the reduced space, O(K^3) per iteration, and is lifted to D dimensions once at the end.

    Parameters
    ----------
    model, x0, target, method, tol, max_iter, immutable, cost, bounds
        As in :func:`invert`.
    lams : array_like (n,)
        Trade-offs, all > 0, solved in the order given (sorted order makes warm starts best).
    x_init : array_like (D,) or InversionResult, optional
        Warm start for the first lam.

    Returns
    -------
    InversionPath
        ``X[i]`` solves ``lams[i]``; ``distance[i] = ||X[i] - x0||``.

    Examples
    --------
    >>> model = SoftmaxModel([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], [0.0, 0.0, 0.0])
    >>> path = invert_path(model, [2.0, 0.0], 1, np.logspace(-2, 1, 4))
    >>> bool(np.all(np.diff(path.distance) < 0))
    True
    """
    start_time = time.perf_counter()
    lams = check_lams(lams)
    target, problem, method, tol, max_iter, start, state = _validate(model, x0, target, method, tol, max_iter, x_init,
                                                                     immutable, cost, bounds)
    with np.errstate(all="ignore"):
        return _invert_path(problem, target, lams, method, start, state, tol, max_iter, start_time)


def _invert_path(problem, target, lams, method, start, state, tol, max_iter, start_time) -> InversionPath:
    model, x0 = problem.model, problem.x0
    start = None if start is None else problem.to_reduced(start)
    n_lams = lams.shape[0]

    if method == "closed-form":
        X, energy, grad_norm, proba, floor = logistic_path(model.coef, model.intercept, x0, target, lams)
        n_iter = np.zeros(n_lams, dtype=int)
        success = np.array([succeeded(final_status(e, g, tol, f)) for e, g, f in zip(energy, grad_norm, floor)])
    elif method == "newton":
        basis, logits, u = _reduced_start(model, x0, target, float(lams[0]), start, state)
        w0 = logits - logits[target]
        N = basis.M - basis.M[target]
        outcomes, previous_lam = [], None
        for lam in lams:
            lam = float(lam)
            if outcomes:
                u = _predicted(outcomes[-1].point, previous_lam, outcomes[-1].derivatives, lam)
            outcomes.append(newton_reduced(N, w0, target, lam, u, tol, max_iter, None))
            previous_lam = lam
        U = np.array([o.point for o in outcomes]).reshape(n_lams, basis.rank)
        X = x0 + basis.lift(U)
        energy, grad_norm, proba, n_iter, success = _collect(outcomes)
    else:
        outcomes = []
        for lam in lams:
            x, outcome, _ = _run(model, x0, target, float(lam), method, start, tol, max_iter, None,
                                 lower=problem.lower, upper=problem.upper)
            outcomes.append(outcome)
            start = x
        X = np.array([o.point for o in outcomes])
        energy, grad_norm, proba, n_iter, success = _collect(outcomes)
    if problem.constraints is not None:
        X = np.array([problem.to_full(y) for y in X])

    return InversionPath(
        lams=lams,
        X=X,
        proba=proba,
        energy=energy,
        distance=np.linalg.norm(X - problem.source, axis=1),
        grad_norm=grad_norm,
        n_iter=n_iter,
        success=success,
        target=target,
        method=method,
        time_s=time.perf_counter() - start_time,
    )


def _collect(outcomes):
    return (
        np.array([o.energy for o in outcomes]),
        np.array([o.grad_norm for o in outcomes]),
        np.array([o.proba for o in outcomes]),
        np.array([o.n_iter for o in outcomes]),
        np.array([succeeded(o.status) for o in outcomes]),
    )
