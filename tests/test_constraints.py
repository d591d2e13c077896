"""Constrained questions against independent references: SLSQP, L-BFGS-B, closed forms, rescaling."""

import numpy as np
import pytest
import scipy.optimize
from conftest import random_model, reference_gradient
from scipy.special import expit, log_softmax

from solver import DEFAULT_MARGIN, SoftmaxModel, closest_with_probability, invert, invert_path, minimal_flip


def slsqp_flip(model, x0, target, margin=0.0, cost=None, bounds=None, fixed=()):
    A, b = model.coef, model.intercept
    others = [i for i in range(model.n_classes) if i != target]
    c = np.ones(model.n_features) if cost is None else np.asarray(cost, dtype=float)
    constraints = [{"type": "ineq", "fun": lambda x: (A[target] - A[others]) @ x + b[target] - b[others] - margin,
                    "jac": lambda x: A[target] - A[others]}]
    box = [(None, None)] * model.n_features if bounds is None else list(zip(*bounds))
    box = [(x0[j], x0[j]) if j in fixed else box[j] for j in range(model.n_features)]
    res = scipy.optimize.minimize(lambda x: 0.5 * np.sum(c * (x - x0) ** 2), x0, jac=lambda x: c * (x - x0),
                                  constraints=constraints, bounds=box, method="SLSQP",
                                  options={"ftol": 1e-13, "maxiter": 1000})
    # status 8 ("positive directional derivative") is SLSQP at its precision limit; feasibility decides
    assert res.success or res.status == 8, res.message
    assert np.min(constraints[0]["fun"](res.x)) >= -1e-9
    return res.x


@pytest.mark.parametrize("seed", range(4))
def test_minimal_flip_matches_slsqp(seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, 5, 12)
    x0 = rng.standard_normal(12)
    target = int(np.argsort(model.predict_proba(x0))[0])
    res = minimal_flip(model, x0, target)
    reference = slsqp_flip(model, x0, target, margin=DEFAULT_MARGIN)
    assert res.success and res.method == "minimal-flip" and res.margin == DEFAULT_MARGIN
    np.testing.assert_allclose(res.x, reference, atol=1e-7)
    assert res.distance == pytest.approx(np.linalg.norm(reference - x0), rel=1e-9)
    z = model.decision_function(res.x)
    assert model.predict(res.x) == target and len(res.tied_classes) >= 1
    assert np.delete(z[target] - z, target).min() >= 0.5 * DEFAULT_MARGIN


def test_minimal_flip_margin_puts_the_result_inside():
    rng = np.random.default_rng(7)
    model = random_model(rng, 4, 6)
    x0 = rng.standard_normal(6)
    target = int(np.argsort(model.predict_proba(x0))[0])
    res = minimal_flip(model, x0, target, margin=0.5)
    z = model.decision_function(res.x)
    assert np.all(z[target] - np.delete(z, target) >= 0.5 - 1e-9)
    assert model.predict(res.x) == target
    np.testing.assert_allclose(res.x, slsqp_flip(model, x0, target, margin=0.5), atol=1e-7)


def test_minimal_flip_with_bounds_costs_and_immutables_matches_slsqp():
    rng = np.random.default_rng(3)
    model = random_model(rng, 4, 10)
    x0 = rng.random(10)
    target = int(np.argsort(model.predict_proba(x0))[0])
    cost = rng.uniform(0.2, 3.0, 10)
    bounds = (np.zeros(10), np.ones(10))
    res = minimal_flip(model, x0, target, cost=cost, bounds=bounds, immutable=[0, 4])
    assert res.success, res.message
    assert res.x[0] == x0[0] and res.x[4] == x0[4]  # bit for bit
    assert np.all(res.x >= 0) and np.all(res.x <= 1)
    reference = slsqp_flip(model, x0, target, margin=DEFAULT_MARGIN, cost=cost, bounds=bounds, fixed=(0, 4))
    np.testing.assert_allclose(res.x, reference, atol=1e-6)
    expected = np.sqrt(np.sum(cost * (reference - x0) ** 2))
    assert res.distance <= expected + 1e-9


def test_minimal_flip_reports_impossible_targets():
    # Three classes on a line (D = 1): the middle class's region is bounded, so a class whose logit is
    # dominated everywhere (a convex combination of two others, lower bias) can never win.
    model = SoftmaxModel([[1.0], [-1.0], [0.0]], [0.0, 0.0, -5.0])
    res = minimal_flip(model, np.array([3.0]), 2)
    assert not res.success and "no x can make class 2" in res.message and res.distance == np.inf
    possible = minimal_flip(SoftmaxModel([[1.0], [-1.0], [0.0]], [0.0, 0.0, 1.0]), np.array([3.0]), 2)
    assert possible.success and abs(possible.x[0]) <= 1.0 + 1e-9


def test_minimal_flip_reports_what_constraints_make_impossible():
    model = SoftmaxModel([[1.0, 0.0], [-1.0, 0.0]], [0.0, 0.0])
    res = minimal_flip(model, np.array([2.0, 0.0]), 1, bounds=([0.5, -1.0], [3.0, 1.0]))
    assert not res.success and "under these constraints" in res.message


def test_minimal_flip_binary_closed_form():
    """K = 2: the projection onto a half-space, x0 - (s0 + margin) c / ||c||^2."""
    rng = np.random.default_rng(11)
    model = random_model(rng, 2, 8)
    x0 = rng.standard_normal(8)
    target = int(np.argmin(model.predict_proba(x0)))
    c = model.coef[1 - target] - model.coef[target]
    s0 = c @ x0 + model.intercept[1 - target] - model.intercept[target]
    res = minimal_flip(model, x0, target, margin=0.1)
    np.testing.assert_allclose(res.x, x0 - (s0 + 0.1) * c / (c @ c), atol=1e-12)


def test_already_predicted_needs_no_change():
    rng = np.random.default_rng(5)
    model = random_model(rng, 3, 4)
    x0 = rng.standard_normal(4)
    res = minimal_flip(model, x0, int(model.predict(x0)))
    assert res.success and res.distance == 0 and np.array_equal(res.x, x0)


@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.999])
def test_closest_with_probability_reaches_alpha_exactly_and_minimally(alpha):
    rng = np.random.default_rng(2)
    model = random_model(rng, 6, 15, scale=0.5)
    x0 = rng.standard_normal(15)
    target = int(np.argsort(model.predict_proba(x0))[1])
    res = closest_with_probability(model, x0, target, alpha)
    assert res.success and res.lam > 0
    assert res.proba[target] == pytest.approx(alpha, abs=1e-9) and res.proba[target] >= alpha - 1e-12
    # optimality: an independent solver of  min ||x - x0||^2  s.t.  log p_k(x) >= log alpha
    constraint = {"type": "ineq", "fun": lambda x: log_softmax(model.decision_function(x))[target] - np.log(alpha)}
    ref = scipy.optimize.minimize(lambda x: np.sum((x - x0) ** 2), res.x + 0.01, constraints=[constraint],
                                  method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    assert res.distance <= np.linalg.norm(ref.x - x0) + 1e-6
    # and it is the penalised minimiser at the reported lam
    g = reference_gradient(model.coef, model.intercept, x0, target, res.lam, res.x)
    assert np.linalg.norm(g) <= 1e-7


def test_closest_with_probability_binary_closed_form():
    """MATH.md section 5: lam = ||c||^2 (1 - alpha) / (s0 - s*) with s* = logit(1 - alpha), x* = x0 - sigma(s*) c / lam.

    The solver may nudge lam down (by a relative 1e-12, 4e-12, ... at most ~2.2e-8 in all) so that the answer
    lands on the side p >= alpha; the tolerances below are that nudge, not one machine's last digits."""
    rng = np.random.default_rng(8)
    model = random_model(rng, 2, 5)
    x0 = rng.standard_normal(5)
    target = int(np.argmin(model.predict_proba(x0)))
    res = closest_with_probability(model, x0, target, 0.8)
    c = model.coef[1 - target] - model.coef[target]
    d = model.intercept[1 - target] - model.intercept[target]
    s0 = c @ x0 + d
    formula = c @ c * 0.2 / (s0 - np.log(0.2 / 0.8))
    nudge_bound = 1e-12 * (4**9 - 1) / 3
    assert formula * (1 - nudge_bound) <= res.lam <= formula * (1 + 1e-15)
    assert res.proba[target] >= 0.8 and res.proba[target] - 0.8 <= 1e-7
    # the answer is the penalised minimiser at the reported lam: x = x0 - sigma(s(x)) c / lam
    s = c @ res.x + d
    np.testing.assert_allclose(res.x, x0 - expit(s) * c / res.lam, atol=1e-12 * (1 + np.linalg.norm(x0)))
    assert res.n_iter <= 9


def test_closest_with_probability_with_bounds_and_unreachable_alpha():
    rng = np.random.default_rng(4)
    model = random_model(rng, 3, 6)
    x0 = np.full(6, 0.5)
    target = int(np.argmin(model.predict_proba(x0)))
    res = closest_with_probability(model, x0, target, 0.6, bounds=(0.0, 1.0))
    assert res.success, res.message
    assert np.all((res.x >= 0) & (res.x <= 1)) and res.proba[target] >= 0.6
    # optimal: no point of the box with p >= 0.6 is closer (SLSQP as the independent reference)
    constraint = {"type": "ineq", "fun": lambda x: log_softmax(model.decision_function(x))[target] - np.log(0.6)}
    ref = scipy.optimize.minimize(lambda x: np.sum((x - x0) ** 2), res.x, constraints=[constraint], bounds=[(0, 1)] * 6,
                                  method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    assert ref.success and res.distance <= np.linalg.norm(ref.x - x0) + 1e-6
    tiny = closest_with_probability(model, x0, target, 0.999999, bounds=(0.45, 0.55))
    assert not tiny.success and "out of reach" in tiny.message


def test_immutable_features_never_move_in_invert_and_path():
    rng = np.random.default_rng(9)
    model = random_model(rng, 5, 20)
    x0 = rng.standard_normal(20) * 1e3 + 0.1  # large values: round-off would show if they were recomputed
    fixed = np.zeros(20, dtype=bool)
    fixed[[1, 5, 19]] = True
    res = invert(model, x0, 2, 0.01, immutable=fixed)
    assert res.success and np.array_equal(res.x[fixed], x0[fixed])
    path = invert_path(model, x0, 2, np.logspace(-2, 1, 6), immutable=[1, 5, 19])
    assert np.array_equal(path.X[:, fixed], np.tile(x0[fixed], (6, 1)))


def test_costs_equal_the_column_scaled_problem():
    """MATH.md section 6: cost c is the plain problem in y = sqrt(c) x with A scaled by 1/sqrt(c)."""
    rng = np.random.default_rng(10)
    model = random_model(rng, 4, 7)
    x0 = rng.standard_normal(7)
    cost = rng.uniform(0.1, 5.0, 7)
    res = invert(model, x0, 3, 0.2, cost=cost)
    s = np.sqrt(cost)
    scaled = SoftmaxModel(model.coef / s, model.intercept)
    plain = invert(scaled, s * x0, 3, 0.2)
    np.testing.assert_allclose(res.x, plain.x / s, atol=1e-12)
    # and it is stationary for the weighted objective
    g = 0.2 * cost * (res.x - x0) + model.coef.T @ (model.predict_proba(res.x) - np.eye(4)[3])
    assert np.linalg.norm(g) <= 1e-9


@pytest.mark.parametrize("lam", [1e-3, 0.05, 1.0])
def test_projected_newton_matches_lbfgsb_on_pixel_bounds(lam):
    from sklearn.datasets import load_digits

    from training import train_softmax

    digits = load_digits()
    X = digits.data / 16.0
    model = train_softmax(X, digits.target, [str(d) for d in range(10)], standardize=False).model
    x0 = X[0]
    res = invert(model, x0, 3, lam, bounds=(0.0, 1.0))
    assert res.method == "projected-newton" and res.success, res.message
    assert np.all(res.x >= 0) and np.all(res.x <= 1)
    ref = scipy.optimize.minimize(
        lambda x: (0.5 * lam * np.sum((x - x0) ** 2) - log_softmax(model.decision_function(x))[3],
                   reference_gradient(model.coef, model.intercept, x0, 3, lam, x)),
        x0, jac=True, method="L-BFGS-B", bounds=[(0, 1)] * 64, options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    energy = 0.5 * lam * np.sum((res.x - x0) ** 2) - log_softmax(model.decision_function(res.x))[3]
    assert energy <= ref.fun + 1e-12
    np.testing.assert_allclose(res.x, ref.x, atol=1e-5)
    assert set(res.at_lower) | set(res.at_upper)  # some pixels end at a bound


def test_categorical_level_changes_are_enumerated_and_cheapest_wins():
    # features: x (numeric), colour one-hot (red, green, blue); class 1 likes green strongly
    model = SoftmaxModel([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 4.0, -2.0]], [0.0, -4.0])
    x0 = np.array([0.0, 1.0, 0.0, 0.0])  # red
    frozen = minimal_flip(model, x0, 1, categorical=[(1, 2, 3)])
    assert frozen.success and np.array_equal(frozen.x[1:], x0[1:])
    assert frozen.x[0] == pytest.approx(6.0)  # x - 2 - 4 = 0
    free = minimal_flip(model, x0, 1, categorical=[(1, 2, 3)], change_levels=True)
    assert free.success and free.x[2] == 1.0 and free.x[1] == 0.0  # switched to green
    assert free.distance < frozen.distance
    assert free.level_changes == ((0, "1", "2"),)
    assert free.distance == pytest.approx(np.sqrt(np.sum((free.x - x0) ** 2)))


def test_constraint_arguments_are_validated():
    model = SoftmaxModel(np.eye(3), np.zeros(3))
    x0 = np.zeros(3)
    with pytest.raises(ValueError, match="cost must be >= 0"):
        invert(model, x0, 0, 1.0, cost=[1, -1, 1])
    with pytest.raises(ValueError, match="lower > upper"):
        invert(model, x0, 0, 1.0, bounds=([0, 0, 1], [1, 1, 0]))
    with pytest.raises(ValueError, match="immutable indices must be in 0..2"):
        invert(model, x0, 0, 1.0, immutable=[5])
    with pytest.raises(ValueError, match="nothing can change"):
        invert(model, x0, 0, 1.0, immutable=[0, 1, 2])
    with pytest.raises(ValueError, match="does not handle bounds"):
        invert(model, x0, 0, 1.0, bounds=(0, 1), method="cg")
    with pytest.raises(ValueError, match="alpha must be a probability"):
        closest_with_probability(model, x0, 0, 1.0)
    with pytest.raises(ValueError, match="margin must be"):
        minimal_flip(model, x0, 0, margin=-1)


def test_projected_newton_stops_at_round_off_for_a_huge_lam_and_a_source_outside_its_ranges():
    """Regression: at lam = 1e8 with raw-unit features (|x0| ~ 1e4) and x0 above one range, every unit step
    was accepted without changing anything and the solve ran to max_iter (German credit, duration > 24)."""
    rng = np.random.default_rng(21)
    model = random_model(rng, 2, 6, scale=0.01)
    x0 = rng.uniform(1e3, 1e4, 6)
    upper = np.full(6, np.inf)
    upper[2] = x0[2] - 500.0
    lam = 1e8
    res = invert(model, x0, 1, lam, bounds=(np.full(6, -np.inf), upper))
    assert res.success and res.n_iter <= 5, res.message
    assert res.x[2] == upper[2] and 2 in res.at_upper
    # free features satisfy x_j = x0_j - (A^T (p - e_k))_j / lam, to the precision x itself is stored in
    p = model.predict_proba(res.x)
    p[1] -= 1.0
    stationary = x0 - model.coef.T @ p / lam
    free = np.arange(6) != 2
    assert np.all(np.abs(res.x[free] - stationary[free]) <= 4 * np.finfo(float).eps * np.abs(x0[free]))


def test_answers_with_costs_and_ranges_never_leave_the_ranges_by_an_ulp():
    """Regression: x = y / sqrt(cost) of a y at its bound sqrt(cost) * l rounded to -1.5000000000000002."""
    rng = np.random.default_rng(12345)
    cost = np.linspace(0.5, 3, 4)
    for trial in range(200):
        model = SoftmaxModel(rng.standard_normal((3, 4)), rng.standard_normal(3))
        x0 = rng.standard_normal(4)
        target = int(rng.integers(3))
        res = invert(model, x0, target, 0.05, cost=cost, bounds=(-1.5, 2.0))
        assert np.all(res.x >= -1.5) and np.all(res.x <= 2.0)
        if trial % 25 == 0:
            sure = closest_with_probability(model, x0, target, 0.6, cost=cost, bounds=(-1.5, 2.0))
            assert not sure.success or (np.all(sure.x >= -1.5) and np.all(sure.x <= 2.0))
