"""The questions' answers are valid, their arguments are validated, and their fast routes agree with
the general ones."""

import numpy as np
import pytest
from conftest import random_model

from datasets import load_builtin
from solver import DEFAULT_MARGIN, SoftmaxModel, closest_with_probability, minimal_flip


def fitted(name):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_builtin(name)
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(data.X, data.y)
    return data, estimator, SoftmaxModel.from_estimator(estimator)


@pytest.mark.parametrize("name", ["breast-cancer", "german-credit", "wine"])
def test_default_answers_are_predicted_as_the_target_by_the_model_and_the_estimator(name):
    """Regression: minimal_flip's old default margin 0 left answers on the boundary, where ties went to
    another class (118 of 209 breast-cancer flips were not benign by scikit-learn's predict)."""
    data, estimator, model = fitted(name)
    predicted = model.predict(data.X)
    questions = [(i, k) for i in range(data.n_samples) for k in range(model.n_classes) if k != predicted[i]]
    flips, probables = [], []
    for i, k in questions:
        flip = minimal_flip(model, data.X[i], k)
        assert flip.success, flip.message  # no constraints and K <= D + 1: every class can win
        flips.append((flip.x, k))
        sure = closest_with_probability(model, data.X[i], k, 0.6)
        assert sure.success, sure.message
        assert sure.proba[k] >= 0.6
        probables.append((sure.x, k))
    for answers in (flips, probables):
        X = np.array([x for x, _ in answers])
        targets = np.array([k for _, k in answers])
        assert np.array_equal(model.predict(X), targets)
        assert np.array_equal(estimator.predict(X), estimator.classes_[targets])
    # the answers lead by the margin (in logits), and no more than round-off beyond it where a boundary is active
    z = model.decision_function(flips[0][0])
    lead = z[flips[0][1]] - np.delete(z, flips[0][1]).max()
    assert DEFAULT_MARGIN / 2 <= lead <= DEFAULT_MARGIN * (1 + 1e-6) + 1e-9


def test_margin_zero_is_the_boundary_point():
    rng = np.random.default_rng(1)
    model = random_model(rng, 2, 5)
    x0 = rng.standard_normal(5)
    target = int(np.argmin(model.predict_proba(x0)))
    res = minimal_flip(model, x0, target, margin=0.0)
    z = model.decision_function(res.x)
    assert res.success and abs(z[0] - z[1]) <= 1e-12 * (1 + np.abs(z).max())


@pytest.mark.parametrize("call,fragment", [
    (lambda m, x: minimal_flip(m, x, 1, immutable=[0.5]), "immutable must be a boolean mask or a list of integer"),
    (lambda m, x: minimal_flip(m, x, 1, immutable=[7]), "immutable indices must be in 0..5"),
    (lambda m, x: minimal_flip(m, x, 1, immutable=[True, False]), "immutable as a boolean mask must have 6"),
    (lambda m, x: minimal_flip(m, x, 1, categorical=[(0, 1)], change_levels=[3]), "change_levels must list indices"),
    (lambda m, x: minimal_flip(m, x, 1, categorical=[(0, 1)], change_levels=[-1]), "change_levels must list indices"),
    (lambda m, x: minimal_flip(m, x, 1, categorical=[(0, 9)]), r"categorical\[0\] has indices outside 0..5"),
    (lambda m, x: minimal_flip(m, x, 1, categorical=[(0, 1), (1, 2)]), "shares columns"),
    (lambda m, x: minimal_flip(m, x, 1, categorical=[(0, 1)], change_levels=True), "x0 is not one-hot"),
    (lambda m, x: minimal_flip(m, x, 1, margin=-1.0), "margin must be a finite number >= 0"),
    (lambda m, x: minimal_flip(m, x, 1, margin=float("nan")), "margin must be a finite number >= 0"),
    (lambda m, x: minimal_flip(m, x, 5), "target must be in 0..2"),
    (lambda m, x: closest_with_probability(m, x, 1, 0.9, lam_range=(0, 1)), r"lam_range\[0\] must be a finite number > 0"),
    (lambda m, x: closest_with_probability(m, x, 1, 0.9, lam_range=(2, 1)), "lam_range must have low < high"),
    (lambda m, x: closest_with_probability(m, x, 1, 0.9, lam_range=3), "lam_range must be a pair"),
    (lambda m, x: closest_with_probability(m, x, 1, 1.0), "alpha must be a probability"),
    (lambda m, x: closest_with_probability(m, x, 1, True), "alpha must be a probability"),
    (lambda m, x: closest_with_probability(m, x, 1, 0.9, immutable=[7]), "immutable indices must be in 0..5"),
    (lambda m, x: closest_with_probability(m, x, 1, 0.9, cost=[1, 2]), "cost has 2 entries"),
    (lambda m, x: minimal_flip("model", x, 1), "model must be a solver.SoftmaxModel"),
    (lambda m, x: minimal_flip(m, x[:3], 1), "x0 has 3 features"),
])
def test_invalid_question_arguments_raise_value_error_naming_them(call, fragment):
    model = SoftmaxModel(np.eye(3, 6), np.zeros(3))
    with pytest.raises(ValueError, match=fragment):
        call(model, np.linspace(0.1, 0.6, 6))


@pytest.mark.parametrize("seed", range(6))
def test_probability_fast_route_equals_the_lam_search(seed):
    """Without ranges, Newton on the optimality conditions; with ranges that never bind, Brent's method over
    projected Newton solves. Both must give the same exact answer (strong convexity: the penalised
    minimisers at nearby lams differ by at most |dx/dlam| |dlam|)."""
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(3, 11))
    model = random_model(rng, n_classes, 20, scale=0.5)
    x0 = rng.standard_normal(20)
    target = int(np.argsort(model.predict_proba(x0))[int(rng.integers(0, n_classes - 1))])
    for alpha in (0.3, 0.75, 0.99):
        fast = closest_with_probability(model, x0, target, alpha)
        wide = closest_with_probability(model, x0, target, alpha, bounds=(-1e6, 1e6))
        assert fast.success and wide.success, (fast.message, wide.message)
        assert fast.proba[target] >= alpha and wide.proba[target] >= alpha
        assert fast.lam == pytest.approx(wide.lam, rel=1e-7)
        np.testing.assert_allclose(fast.x, wide.x, atol=1e-7 * (1 + np.linalg.norm(fast.x - x0)))
        assert fast.distance <= wide.distance + 1e-9


def test_a_source_outside_its_ranges_is_moved_into_them_even_when_it_already_qualifies():
    model = SoftmaxModel([[0.0, 0.0], [1.0, 1.0]], [0.0, 0.0])
    x0 = np.array([3.0, 0.5])  # class 1 by far, but feature 0 is above its range [0, 2]
    bounds = ([0.0, 0.0], [2.0, 2.0])
    flip = minimal_flip(model, x0, 1, bounds=bounds)
    sure = closest_with_probability(model, x0, 1, 0.6, bounds=bounds)
    for res in (flip, sure):
        assert res.success and "outside its ranges" in res.message
        np.testing.assert_array_equal(res.x, [2.0, 0.5])  # the box projection, which still qualifies
        assert res.distance == pytest.approx(1.0)


def test_feasibility_is_decided_by_a_linear_programme_when_classes_outnumber_dimensions():
    # K = 4 classes in D = 2: every class can win somewhere (rank 3 > D is impossible, so the LP decides)
    model = SoftmaxModel([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], [0.0, 0.0, 0.0, -3.0])
    res = minimal_flip(model, np.array([0.0, 2.0]), 3)
    assert res.success and model.predict(res.x) == 3
    locked = minimal_flip(model, np.array([0.0, 2.0]), 3, bounds=([-1.0, 0.5], [1.0, 3.0]))
    assert not locked.success and "under these constraints" in locked.message


def test_probability_answers_show_at_least_alpha_not_one_ulp_below():
    """Regression: the logit margin met logit(alpha) while the softmax shown read 0.8999999999999999."""
    data, _, model = fitted("german-credit")
    for i in range(120):
        target = int(np.argsort(model.predict_proba(data.X[i]))[-2])
        res = closest_with_probability(model, data.X[i], target, 0.9)
        assert res.success and res.proba[target] >= 0.9 and model.predict_proba(res.x)[target] >= 0.9
