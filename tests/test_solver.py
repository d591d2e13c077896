"""The solver against independent references: scipy's softmax, finite differences, closed forms."""

import numpy as np
import pytest
from conftest import gradient_scale, random_model, reference_energy, reference_gradient

from solver import METHODS, SoftmaxModel, invert, invert_path
from solver._basis import build_basis
from solver._objective import full_energy_and_gradient, relative_parameters
from solver._result import NON_FINITE

ITERATIVE = ["newton", "newton-full", "gd", "cg", "bfgs", "lbfgs"]


def assert_stationary(model, x0, k, lam, res, rtol=1e-8):
    g = reference_gradient(model.coef, model.intercept, x0, k, lam, res.x)
    assert np.linalg.norm(g) <= rtol * gradient_scale(model.coef, lam, res.x, x0), res.message


def test_gradient_matches_finite_differences(rng):
    model = random_model(rng, 5, 7)
    x0, x = rng.standard_normal(7), rng.standard_normal(7)
    coef_rel, intercept_rel = relative_parameters(model.coef, model.intercept, 2)
    energy, grad, _ = full_energy_and_gradient(coef_rel, intercept_rel, x0, 2, 0.3, x)
    assert energy == pytest.approx(reference_energy(model.coef, model.intercept, x0, 2, 0.3, x), rel=1e-13)
    h = 1e-6
    fd = np.array([
        (reference_energy(model.coef, model.intercept, x0, 2, 0.3, x + h * e)
         - reference_energy(model.coef, model.intercept, x0, 2, 0.3, x - h * e)) / (2 * h)
        for e in np.eye(7)
    ])
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("lam", [1e-3, 0.05, 1.0])
def test_newton_reaches_machine_precision(rng, lam):
    model = random_model(rng, 10, 60, scale=0.3)
    x0 = rng.random(60)
    res = invert(model, x0, 4, lam, method="newton", tol=1e-12)
    assert res.success and res.n_iter <= 30
    assert_stationary(model, x0, 4, lam, res, rtol=1e-12)
    assert res.energy == pytest.approx(reference_energy(model.coef, model.intercept, x0, 4, lam, res.x), rel=1e-12)
    np.testing.assert_allclose(res.proba, model.predict_proba(res.x), rtol=1e-10, atol=1e-15)


def test_every_method_agrees_with_every_other(rng):
    """Strong convexity: ||x - x*|| <= ||grad E(x)|| / lam for any x, so solutions must agree that well."""
    model = random_model(rng, 6, 40, scale=0.3)
    x0, lam, k = rng.random(40), 0.2, 1
    results = {m: invert(model, x0, k, lam, method=m, tol=1e-9, max_iter=5000) for m in ITERATIVE}
    for res in results.values():
        assert res.grad_norm <= 1e-8, res.message
    for a in ITERATIVE:
        for b in ITERATIVE:
            ga = np.linalg.norm(reference_gradient(model.coef, model.intercept, x0, k, lam, results[a].x))
            gb = np.linalg.norm(reference_gradient(model.coef, model.intercept, x0, k, lam, results[b].x))
            bound = (ga + gb) / lam + 1e-13
            assert np.linalg.norm(results[a].x - results[b].x) <= bound, (a, b)


def test_closed_form_equals_newton_for_logistic_regression():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    model = SoftmaxModel.from_estimator(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y))
    x0 = X[0]
    for lam in [1e-4, 1e-2, 1.0]:
        closed = invert(model, x0, 1, lam)
        newton = invert(model, x0, 1, lam, method="newton")
        full = invert(model, x0, 1, lam, method="newton-full")
        assert closed.method == "closed-form" and closed.n_iter == 0
        assert closed.success and newton.success and full.success
        for other in (newton, full):
            bound = (closed.grad_norm + other.grad_norm) / lam + 1e-12 * np.linalg.norm(x0)
            assert np.linalg.norm(closed.x - other.x) <= bound
        assert_stationary(model, x0, 1, lam, closed, rtol=1e-12)


def test_from_estimator_probabilities_equal_sklearn():
    from sklearn.datasets import load_breast_cancer, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    for est in [LogisticRegression(max_iter=1000), make_pipeline(StandardScaler(), LogisticRegression())]:
        est.fit(X, y)
        model = SoftmaxModel.from_estimator(est)
        assert model.n_classes == 3 and model.n_features == 4
        np.testing.assert_allclose(model.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-12)
    Xb, yb = load_breast_cancer(return_X_y=True)
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xb, yb)
    model = SoftmaxModel.from_estimator(est)
    assert model.n_classes == 2 and model.coef.shape == (2, 30)
    np.testing.assert_allclose(model.predict_proba(Xb), est.predict_proba(Xb), rtol=0, atol=1e-12)


def test_warm_start_uses_fewer_iterations(rng):
    model = random_model(rng, 10, 100, scale=0.2)
    x0 = rng.random(100)
    previous = invert(model, x0, 7, 0.01)
    cold = invert(model, x0, 7, 0.01 * 10**0.02)
    warm = invert(model, x0, 7, 0.01 * 10**0.02, x_init=previous)
    assert warm.success and cold.success
    assert warm.n_iter < cold.n_iter
    assert np.linalg.norm(warm.x - cold.x) <= (warm.grad_norm + cold.grad_norm) / warm.lam + 1e-13


@pytest.mark.parametrize("method", ["newton", "newton-full"])
@pytest.mark.parametrize("lam", [1e-6, 1e-3, 1.0, 1e4])
def test_extreme_lams(rng, method, lam):
    model = random_model(rng, 8, 30)
    x0 = rng.standard_normal(30)
    res = invert(model, x0, 0, lam, method=method)
    assert res.success, res.message
    assert_stationary(model, x0, 0, lam, res)


def test_logits_in_the_hundreds(rng):
    model = random_model(rng, 5, 20, scale=60.0)
    x0 = rng.standard_normal(20)
    assert np.abs(model.decision_function(x0)).max() > 100
    for k in range(5):
        res = invert(model, x0, k, 0.5)
        assert res.success, res.message
        assert_stationary(model, x0, k, 0.5, res)


def test_target_probability_near_one_keeps_its_digits():
    """Regression (MATH.md section 1): with p_k -> 1, logsumexp(z) - z_k loses the digits Newton needs."""
    model = SoftmaxModel([[40.0, 0.0], [0.0, 0.0], [-40.0, 1.0]], [0.0, 0.0, 0.0])
    x0 = np.array([1.0, 0.0])
    res = invert(model, x0, 0, 1e-3, tol=1e-13)
    assert res.success and 1.0 - res.proba[0] < 1e-10
    assert res.grad_norm <= 1e-13
    assert_stationary(model, x0, 0, 1e-3, res, rtol=1e-13)


@pytest.mark.parametrize("n_classes,n_features", [(12, 3), (5, 1), (2, 1), (30, 4)])
def test_more_classes_than_features(rng, n_classes, n_features):
    model = random_model(rng, n_classes, n_features)
    x0 = rng.standard_normal(n_features)
    for method in ["newton", "newton-full"]:
        res = invert(model, x0, n_classes - 1, 0.1, method=method)
        assert res.success, res.message
        assert_stationary(model, x0, n_classes - 1, 0.1, res)


def test_duplicated_class_rows(rng):
    A = rng.standard_normal((4, 50))
    A = np.vstack([A, A[1], A[1]])  # rank-deficient: classes 1, 4 and 5 share weights
    model = SoftmaxModel(A, rng.standard_normal(6))
    x0 = rng.standard_normal(50)
    basis = model.reduced_basis()
    assert basis.rank == 3 and basis.Q is not None
    res = invert(model, x0, 4, 0.05)
    assert res.success
    assert_stationary(model, x0, 4, 0.05, res)
    np.testing.assert_allclose(res.x, invert(model, x0, 4, 0.05, method="newton-full").x, atol=1e-9)


def test_identical_classes_leave_x0_unchanged(rng):
    A = np.tile(rng.standard_normal(5), (3, 1))
    model = SoftmaxModel(A, [0.0, 1.0, 2.0])
    x0 = rng.standard_normal(5)
    res = invert(model, x0, 0, 0.1)
    assert res.success and model.reduced_basis().rank == 0
    np.testing.assert_allclose(res.x, x0, atol=1e-12)


@pytest.mark.parametrize("shape", [(10, 300), (7, 5), (3, 2)])
def test_reduced_basis_is_orthonormal_and_spans_centred_rows(rng, shape):
    coef = rng.standard_normal(shape)
    basis = build_basis(coef)
    P = basis.lift(np.eye(basis.rank))  # rows are the basis vectors
    np.testing.assert_allclose(P @ P.T, np.eye(basis.rank), atol=1e-13)
    centred = coef - coef.mean(axis=0)
    residual = centred - (centred @ P.T) @ P
    assert np.linalg.norm(residual) <= 1e-12 * np.linalg.norm(centred)
    np.testing.assert_allclose(basis.M, coef @ P.T, atol=1e-12 * np.abs(coef).max() * shape[1])


def test_ill_conditioned_weights_use_the_explicit_basis(rng):
    coef = rng.standard_normal((4, 30))
    coef[3] = coef[2] + 1e-7 * rng.standard_normal(30)  # two nearly identical classes
    basis = build_basis(coef)
    assert basis.Q is not None and basis.rank == 3
    model = SoftmaxModel(coef, np.zeros(4))
    x0 = rng.standard_normal(30)
    res = invert(model, x0, 3, 0.01, tol=1e-12)
    assert_stationary(model, x0, 3, 0.01, res, rtol=1e-12)


def test_huge_coefficients_do_not_overflow_the_basis(rng):
    model = random_model(rng, 4, 6, scale=1e160)
    basis = model.reduced_basis()
    assert basis.rank == 3 and np.all(np.isfinite(basis.M))
    # The gradient's norm (~1e160 per entry, squared) overflows: the solver must say so, not claim success.
    res = invert(model, rng.standard_normal(6), 2, 1.0)
    assert not res.success and res.status == NON_FINITE and "non-finite" in res.message


def test_history_records_each_iteration_and_decreases_energy(rng):
    model = random_model(rng, 10, 50, scale=0.3)
    x0 = rng.random(50)
    binary = random_model(rng, 2, 50, scale=0.3)
    for method in ["newton", "newton-full", "gd", "cg", "bfgs", "lbfgs", "closed-form", "projected-newton"]:
        problem = binary if method == "closed-form" else model
        bounds = (-2.0, 2.0) if method == "projected-newton" else None
        res = invert(problem, x0, 1 if method == "closed-form" else 3, 0.01, method=method, record=True, max_iter=300,
                     bounds=bounds)
        assert res.method == method and res.history is not None, method
        h = res.history
        assert len(h.energy) == len(h.grad_norm) == len(h.step) == len(h.time_s) == h.proba.shape[0]
        assert h.proba.shape[1] == problem.n_classes and np.all(np.diff(h.time_s) >= 0)
        assert np.all(np.diff(h.energy) <= 1e-12 * abs(h.energy[0]))
        assert h.energy[-1] == pytest.approx(res.energy)
        if method.startswith("newton"):
            assert len(h.energy) == res.n_iter + 1
    res = invert(model, x0, 3, 0.01, method="newton", record=True, tol=1e-13)
    g = res.history.grad_norm
    # quadratic convergence: the last iterates at least square the error (with slack for round-off)
    assert g[-2] < 1e-4 and (g[-1] <= 1e-13 or g[-1] <= 10 * g[-2] ** 1.8)


def test_max_iter_reported_not_raised(rng):
    model = random_model(rng, 10, 50, scale=0.3)
    res = invert(model, rng.random(50), 3, 0.001, method="gd", max_iter=3)
    assert not res.success and res.status == 1 and "increase max_iter" in res.message
    assert res.n_iter == 3


def test_path_matches_individual_solves_and_is_monotone(rng):
    model = random_model(rng, 6, 25, scale=0.5)
    x0 = rng.standard_normal(25)
    lams = np.logspace(-3, 1, 15)
    k = int(np.argsort(model.predict_proba(x0))[0])  # least likely class
    path = invert_path(model, x0, k, lams)
    assert path.X.shape == (15, 25) and path.proba.shape == (15, 6) and np.all(path.success)
    assert np.all(np.diff(path.distance) < 0) and np.all(np.diff(path.proba[:, k]) < 0)
    for i in [0, 7, 14]:
        single = invert(model, x0, k, lams[i])
        assert np.linalg.norm(single.x - path.X[i]) <= (single.grad_norm + path.grad_norm[i]) / lams[i] + 1e-12
        assert_stationary(model, x0, k, lams[i], single)
    assert path.n_iter[1:].mean() < invert(model, x0, k, lams[8]).n_iter + 1


def test_logistic_path_is_explicit_and_matches_newton(rng):
    model = random_model(rng, 2, 12)
    x0 = rng.standard_normal(12)
    lams = np.logspace(-4, 2, 30)
    closed = invert_path(model, x0, 0, lams)
    newton = invert_path(model, x0, 0, lams, method="newton")
    assert closed.method == "closed-form" and np.all(closed.n_iter == 0)
    np.testing.assert_allclose(closed.X, newton.X, atol=1e-9)
    np.testing.assert_allclose(closed.proba, newton.proba, atol=1e-12)
    # MATH.md section 5: lam(s) = ||c||^2 sigma(s) / (s0 - s) along the path
    c = model.coef[1] - model.coef[0]
    s0 = c @ x0 + model.intercept[1] - model.intercept[0]
    s = closed.X @ c + model.intercept[1] - model.intercept[0]
    np.testing.assert_allclose(c @ c / (1 + np.exp(-s)) / (s0 - s), lams, rtol=1e-8)


def test_other_path_methods_warm_start(rng):
    model = random_model(rng, 4, 10)
    x0 = rng.standard_normal(10)
    lams = np.logspace(-2, 0, 5)
    reference = invert_path(model, x0, 2, lams)
    for method in ["newton-full", "lbfgs"]:
        path = invert_path(model, x0, 2, lams, method=method, tol=1e-9)
        np.testing.assert_allclose(path.X, reference.X, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"x0": np.zeros(3)}, "x0 has 3 features"),
        ({"x0": np.full(4, np.nan)}, "x0 contains 4 non-finite"),
        ({"x0": np.zeros((2, 4))}, "x0 must be 1-dimensional"),
        ({"lam": 0.0}, "lam must be a finite number > 0"),
        ({"lam": -1.0}, "lam must be a finite number > 0"),
        ({"lam": float("inf")}, "lam must be a finite number > 0"),
        ({"target": 3}, "target must be in 0..2"),
        ({"target": 1.5}, "target must be a class index"),
        ({"method": "adam"}, "method must be one of"),
        ({"method": "closed-form"}, "needs a binary model"),
        ({"tol": 0}, "tol must be"),
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"x_init": np.zeros(5)}, "x_init has 5 features"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(kwargs, fragment):
    model = SoftmaxModel(np.eye(3, 4), np.zeros(3))
    args = {"x0": np.zeros(4), "target": 0, "lam": 1.0, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        invert(model, args.pop("x0"), args.pop("target"), args.pop("lam"), **args)


@pytest.mark.parametrize(
    "coef,intercept,fragment",
    [
        (np.zeros((1, 3)), np.zeros(1), "K >= 2"),
        (np.zeros((3, 3)), np.zeros(2), "intercept has 2 entries"),
        (np.full((2, 3), np.inf), np.zeros(2), "coef contains 6 non-finite"),
        (np.zeros(3), np.zeros(3), "coef must be 2-dimensional"),
    ],
)
def test_invalid_models_raise(coef, intercept, fragment):
    with pytest.raises(ValueError, match=fragment):
        SoftmaxModel(coef, intercept)


def test_bfgs_refuses_a_dense_matrix_that_would_not_fit():
    model = SoftmaxModel(np.zeros((3, 20000)) + np.eye(3, 20000), np.zeros(3))
    with pytest.raises(ValueError, match="method='bfgs' stores a dense"):
        invert(model, np.zeros(20000), 0, 1.0, method="bfgs")


def test_invert_path_rejects_bad_lams():
    model = SoftmaxModel(np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="every lam must be > 0"):
        invert_path(model, np.zeros(3), 0, [0.1, 0.0])
    with pytest.raises(ValueError, match="lams must contain at least one"):
        invert_path(model, np.zeros(3), 0, [])


def test_every_listed_method_solves_and_reports_itself(rng):
    """Each name in METHODS runs (on a problem it accepts) and ends at the same exact minimiser."""
    x0 = rng.standard_normal(8)
    multi, binary = random_model(rng, 4, 8), random_model(rng, 2, 8)
    wide = (-1e6, 1e6)  # ranges that never bind: projected Newton must find the unconstrained minimiser
    reference = {2: invert(binary, x0, 1, 0.1, method="newton", tol=1e-12),
                 4: invert(multi, x0, 1, 0.1, method="newton", tol=1e-12)}
    for method in METHODS:
        model = binary if method == "closed-form" else multi
        res = invert(model, x0, 1, 0.1, method=method, tol=1e-7, max_iter=5000,
                     bounds=wide if method == "projected-newton" else None)
        expected = {"auto": "newton"}.get(method, method)
        assert res.success and res.method == expected, (method, res.message)
        best = reference[model.n_classes]
        assert np.linalg.norm(res.x - best.x) <= (res.grad_norm + best.grad_norm) / 0.1, method


def test_solver_never_imports_streamlit():
    import ast
    from pathlib import Path

    for package in ["solver", "datasets"]:
        for path in (Path(__file__).resolve().parents[1] / package).glob("*.py"):
            tree = ast.parse(path.read_text())
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            assert not any(name.split(".")[0] == "streamlit" for name in names), path


@pytest.mark.parametrize("s0", [-700.0, -50.0, -3.0, 0.0, 2.0, 40.0, 700.0])
def test_logistic_root_solves_its_equation(s0):
    from scipy.special import expit

    from solver._closed_form import logistic_root, logistic_root_scalar

    betas = np.array([0.0, 1e-8, 0.5, 3.0, 1e3, 1e9, 1e14, 1e300])
    vector = logistic_root(s0, betas)
    for beta, s in zip(betas, vector):
        assert s0 - beta <= s <= s0
        sig = expit(s)
        newton_step = (s - s0 + beta * sig) / (1 + beta * sig * (1 - sig))
        assert abs(newton_step) <= 4e-16 * max(1.0, abs(s), abs(s0))
        assert logistic_root_scalar(s0, beta) == pytest.approx(s, rel=1e-12, abs=1e-12)


def test_warm_state_is_reused_only_for_the_same_model_and_instance(rng):
    model = random_model(rng, 10, 200, scale=0.2)
    x0 = rng.random(200)
    first = invert(model, x0, 7, 0.01)
    assert first.warm_state is not None and first.warm_state.basis is model.reduced_basis()
    other_x0 = rng.random(200)
    res = invert(model, other_x0, 7, 0.0105, x_init=first)  # different instance: start from first.x instead
    assert_stationary(model, other_x0, 7, 0.0105, res)
    # Another model of the same shape: reusing the first model's logits or basis would solve the wrong problem.
    other = SoftmaxModel(model.coef[::-1] * 1.5, model.intercept + 1.0)
    res = invert(other, x0, 2, 0.0105, x_init=first)
    assert res.warm_state.basis is other.reduced_basis()
    assert_stationary(other, x0, 2, 0.0105, res)
    # The same model and instance with another target reuses the logits but not the path's derivatives.
    res = invert(model, x0, 2, 0.0105, x_init=first)
    assert_stationary(model, x0, 2, 0.0105, res)


def test_path_derivatives_match_finite_differences(rng):
    from solver._newton import path_derivatives

    model = random_model(rng, 6, 30, scale=0.4)
    x0 = rng.random(30)
    basis = model.reduced_basis()
    lam = 0.05

    def u_star(lam_):
        res = invert(model, x0, 2, lam_, tol=1e-14)
        return basis.project(res.x - x0), res

    u, res = u_star(lam)
    N = basis.M - basis.M[2]
    first, second = path_derivatives(N, res.proba, lam, u)
    h = 1e-6  # central differences: O(h^2) truncation, O(1e-14 / h) round-off
    (u_minus, _), (u_plus, _) = u_star(lam - h), u_star(lam + h)
    np.testing.assert_allclose(first, (u_plus - u_minus) / (2 * h), rtol=1e-6, atol=1e-7)
    h = 1e-3
    (u_minus, _), (u_plus, _) = u_star(lam - h), u_star(lam + h)
    np.testing.assert_allclose(second, (u_plus - 2 * u + u_minus) / h**2, rtol=2e-3, atol=1e-4)


def test_a_slider_step_re_solve_takes_one_newton_iteration(rng):
    model = random_model(rng, 10, 784, scale=0.05)
    x0 = rng.random(784)
    previous = invert(model, x0, 4, 0.01)
    res = invert(model, x0, 4, 0.01 * 10**0.02, x_init=previous, tol=1e-8)
    assert res.success and res.n_iter <= 1
