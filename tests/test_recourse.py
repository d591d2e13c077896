"""Exact recourse (issue 9) against independent references: exhaustive enumeration of supports, whole values and
levels, with the continuous part solved by scipy's linprog (l1) or SLSQP (l2); minimal_flip; scikit-learn."""

import itertools
import math

import numpy as np
import pytest
import scipy.optimize
from conftest import random_model
from scipy.special import logsumexp

from solver import SoftmaxModel, minimal_flip, recourse, recourse_front

MARGIN = 1e-6


# -- the independent reference ---------------------------------------------------------------------------------
def continuous_part(metric, c, G, r, lo, hi):
    """min sum c |d| (l1, linprog) or sum c d^2 (l2, SLSQP from a linprog-feasible start) s.t. G d >= r, box."""
    n = G.shape[1]
    if n == 0:
        return 0.0 if np.all(r <= 1e-12) else math.inf
    box = list(zip(lo, hi))
    if metric == "l1":
        split = list(zip(np.maximum(lo, 0), np.maximum(hi, 0))) + list(zip(np.maximum(-hi, 0), np.maximum(-lo, 0)))
        res = scipy.optimize.linprog(np.concatenate([c, c]), A_ub=-np.hstack([G, -G]), b_ub=-r, bounds=split,
                                     method="highs")
        return res.fun if res.status == 0 else math.inf
    feasible = scipy.optimize.linprog(np.zeros(n), A_ub=-G, b_ub=-r, bounds=box, method="highs")
    if feasible.status != 0:
        return math.inf
    res = scipy.optimize.minimize(lambda d: np.sum(c * d * d), feasible.x, jac=lambda d: 2 * c * d, method="SLSQP",
                                  bounds=box, constraints=[{"type": "ineq", "fun": lambda d: G @ d - r,
                                                            "jac": lambda d: G}],
                                  options={"ftol": 1e-15, "maxiter": 500})
    assert np.all(G @ res.x - r >= -1e-9)
    return float(np.sum(c * res.x * res.x))


def enumerate_optimum(model, x0, target, metric, cost, lower, upper, integer, groups=(), budget=None,
                      locked=(), forbid=(), margin=MARGIN):
    """Cheapest cost over every support (at most ``budget`` items), every whole value and every level."""
    others = [i for i in range(model.n_classes) if i != target]
    G = model.coef[target] - model.coef[others]
    in_group = {j for g in groups for j in g}
    numeric = [j for j in range(x0.size) if j not in in_group and j not in locked]
    items = numeric + list(groups)
    best = math.inf
    for size in range(0, len(items) + 1 if budget is None else min(budget, len(items)) + 1):
        for support in itertools.combinations(items, size):
            if any(set(f) <= set(support) for f in forbid):
                continue
            ints = [j for j in support if not isinstance(j, tuple) and integer[j]]
            conts = [j for j in support if not isinstance(j, tuple) and not integer[j]]
            level_choices = []
            for g in groups:
                current = g[int(np.argmax(x0[list(g)]))]
                level_choices.append([lv for lv in g if lv != current] if g in support else [current])
            values = [range(int(np.ceil(lower[j])), int(np.floor(upper[j])) + 1) for j in ints]
            for vals in itertools.product(*values):
                for levels in itertools.product(*level_choices):
                    x = x0.copy()
                    x[ints] = vals
                    for g, lv in zip(groups, levels):
                        x[list(g)] = 0.0
                        x[lv] = 1.0
                    dx = x - x0
                    fixed_cost = np.sum(cost * (np.abs(dx) if metric == "l1" else dx * dx))
                    if fixed_cost >= best:
                        continue
                    z = model.decision_function(x)
                    r = margin - (z[target] - z[others])
                    cols = np.array(conts, dtype=int)
                    rest = continuous_part(metric, cost[cols], G[:, cols], r, lower[cols] - x0[cols],
                                           upper[cols] - x0[cols])
                    best = min(best, fixed_cost + rest)
    return best if metric == "l1" else math.sqrt(best)


def check_valid(model, result, x0, target, *, integer=None, groups=(), locked=(), bounds=None, budget=None,
                margin=MARGIN):
    x = result.x
    assert result.success, result.message
    assert model.predict(x) == target
    z = model.decision_function(x)
    assert np.all(z[target] - np.delete(z, target) >= margin)
    if integer is not None:
        assert np.all(x[integer] == np.floor(x[integer]))  # exactly whole, not 1.0000000002
    for g in groups:
        assert set(np.unique(x[list(g)])) <= {0.0, 1.0} and x[list(g)].sum() == 1.0
    locked = list(locked)
    assert x[locked].tobytes() == x0[locked].tobytes()  # bit for bit
    if bounds is not None:
        free = np.setdiff1d(np.arange(x.size), locked)
        assert np.all(x[free] >= bounds[0][free]) and np.all(x[free] <= bounds[1][free])
    if budget is not None:
        assert result.n_changes <= budget
    assert result.bound <= result.distance * (1 + 1e-9) + 1e-12


def small_problem(seed, n_classes=2):
    """7 features: 0-1 whole numbers in -2..3, 2-3 continuous in ranges, 4-6 a one-hot group of 3 levels."""
    rng = np.random.default_rng(seed)
    model = random_model(rng, n_classes, 7, scale=1.5)
    x0 = np.concatenate([rng.integers(-1, 2, 2).astype(float), rng.uniform(-1, 1, 2), [0.0, 1.0, 0.0]])
    integer = np.array([True, True, False, False, False, False, False])
    lower = np.array([-2, -2, -1.5, -2.0, 0, 0, 0], dtype=float)
    upper = np.array([3, 3, 1.5, 2.0, 1, 1, 1], dtype=float)
    target = int(np.argmin(model.predict_proba(x0)))  # the least likely class: something must change
    cost = rng.uniform(0.5, 2.0, 7)
    return model, x0, target, cost, lower, upper, integer


GROUPS = ((4, 5, 6),)


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("budget", [None, 1, 2])
@pytest.mark.parametrize("seed", range(3))
def test_exhaustive_enumeration_on_small_problems(metric, budget, seed):
    model, x0, target, cost, lower, upper, integer = small_problem(seed)
    reference = enumerate_optimum(model, x0, target, metric, cost, lower, upper, integer, GROUPS, budget)
    res = recourse(model, x0, target, metric=metric, cost=cost, bounds=(lower, upper), integer=integer,
                   categorical=GROUPS, change_levels=True, max_changes=budget)
    if not math.isfinite(reference):
        assert not res.success
        return
    check_valid(model, res, x0, target, integer=integer, groups=GROUPS, bounds=(lower, upper), budget=budget)
    assert res.optimal
    assert res.distance == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("metric", ["l1", "l2"])
@pytest.mark.parametrize("seed", range(2))
def test_exhaustive_enumeration_three_classes_with_a_lock(metric, seed):
    model, x0, target, cost, lower, upper, integer = small_problem(10 + seed, n_classes=3)
    x0[3] = 0.1 + 0.2  # a locked value that is not a short binary fraction
    reference = enumerate_optimum(model, x0, target, metric, cost, lower, upper, integer, GROUPS, 2, locked=(3,))
    res = recourse(model, x0, target, metric=metric, cost=cost, bounds=(lower, upper), integer=integer,
                   categorical=GROUPS, change_levels=True, max_changes=2, immutable=[3])
    if not math.isfinite(reference):
        assert not res.success
        return
    check_valid(model, res, x0, target, integer=integer, groups=GROUPS, bounds=(lower, upper), budget=2, locked=[3])
    assert res.optimal and res.distance == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_unbounded_features_with_a_budget_use_a_valid_big_m(metric):
    """No ranges at all: the big-M constants come from a verified answer's cost; the optimum is still exact."""
    rng = np.random.default_rng(5)
    model = random_model(rng, 3, 5)
    x0 = rng.standard_normal(5)
    target = int(np.argmin(model.predict_proba(x0)))
    cost = rng.uniform(0.5, 2, 5)
    inf = np.full(5, np.inf)
    none = np.zeros(5, dtype=bool)
    for budget in (1, 2):
        reference = enumerate_optimum(model, x0, target, metric, cost, -inf, inf, none, budget=budget)
        res = recourse(model, x0, target, metric=metric, cost=cost, max_changes=budget)
        if math.isfinite(reference):
            check_valid(model, res, x0, target, budget=budget)
            assert res.optimal and res.distance == pytest.approx(reference, rel=1e-6)
        else:
            assert not res.success and "allow more changes" in res.message


@pytest.mark.parametrize("seed", range(3))
def test_l2_without_integers_or_budget_equals_minimal_flip(seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, 4, 10)
    x0 = rng.uniform(0, 1, 10)
    target = int(np.argmin(model.predict_proba(x0)))
    cost = rng.uniform(0.5, 2, 10)
    for bounds in (None, (np.zeros(10), np.ones(10) * 2)):
        flip = minimal_flip(model, x0, target, margin=MARGIN, cost=cost, bounds=bounds, immutable=[2])
        res = recourse(model, x0, target, cost=cost, bounds=bounds, immutable=[2])
        assert flip.success
        check_valid(model, res, x0, target, locked=[2])
        assert res.optimal
        assert res.distance == pytest.approx(flip.distance, rel=1e-7)
        np.testing.assert_allclose(res.x, flip.x, atol=1e-6)


def test_answers_agree_with_a_real_scikit_learn_estimator():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 400
    counts = rng.integers(0, 6, (n, 2)).astype(float)
    amounts = rng.normal(1000, 300, (n, 1))
    level = rng.integers(0, 3, n)
    onehot = np.eye(3)[level]
    X = np.hstack([counts, amounts, onehot])
    y = (counts[:, 0] - counts[:, 1] + (amounts[:, 0] - 1000) / 200 + (level == 2) + rng.normal(0, 1, n) > 0)
    est = LogisticRegression(max_iter=2000).fit(X, y.astype(int))
    model = SoftmaxModel.from_estimator(est)
    integer = [0, 1]
    bounds = (X.min(0), X.max(0))
    for i in range(15):
        x0 = X[i]
        target = 1 - int(est.predict(x0[None])[0])
        for metric in ("l1", "l2"):
            res = recourse(est, x0, target, metric=metric, integer=integer, bounds=bounds, categorical=[(3, 4, 5)],
                           change_levels=True, max_changes=2, cost=1 / X.std(0) ** 2)
            if res.success:
                check_valid(model, res, x0, target, integer=np.array([True, True, False, False, False, False]),
                            groups=[(3, 4, 5)], bounds=bounds, budget=2)
                assert est.predict(res.x[None])[0] == target


def test_front_is_monotone_and_each_point_is_the_budgeted_optimum():
    model, x0, target, cost, lower, upper, integer = small_problem(1)
    kw = dict(metric="l2", cost=cost, bounds=(lower, upper), integer=integer, categorical=GROUPS, change_levels=True)
    front = recourse_front(model, x0, target, max_changes=4, **kw)
    assert len(front) == 4
    costs = [math.inf if r is None else r.distance for r in front]
    assert all(a >= b - 1e-12 for a, b in zip(costs, costs[1:]))
    for s, r in enumerate(front, start=1):
        reference = enumerate_optimum(model, x0, target, "l2", cost, lower, upper, integer, GROUPS, s)
        if r is None:
            assert not math.isfinite(reference)
            continue
        assert r.n_changes <= s and r.optimal
        assert r.distance == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_alternatives_are_in_cost_order_and_respect_the_no_good_cuts(metric):
    model, x0, target, cost, lower, upper, integer = small_problem(2)
    res = recourse(model, x0, target, metric=metric, cost=cost, bounds=(lower, upper), integer=integer,
                   categorical=GROUPS, change_levels=True, n_alternatives=4)
    answers = [res, *res.alternatives]
    assert len(answers) >= 2
    forbid = []
    for answer in answers:
        check_valid(model, answer, x0, target, integer=integer, groups=GROUPS, bounds=(lower, upper))
        for earlier in forbid:
            assert not set(earlier) <= set(answer.changed)  # keeps one change of every earlier answer at x0
        reference = enumerate_optimum(model, x0, target, metric, cost, lower, upper, integer, GROUPS,
                                      forbid=tuple(forbid))
        assert answer.distance == pytest.approx(reference, rel=1e-6)
        forbid.append(answer.changed)
    distances = [a.distance for a in answers]
    assert distances == sorted(distances)


def test_alpha_two_classes_is_the_logit_margin():
    model, x0, target, cost, lower, upper, integer = small_problem(0)
    alpha = 0.9
    res = recourse(model, x0, target, cost=cost, bounds=(lower, upper), integer=integer, alpha=alpha)
    assert res.success and res.proba[target] >= alpha
    reference = enumerate_optimum(model, x0, target, "l2", cost, lower, upper, integer,
                                  margin=math.log(alpha / (1 - alpha)))
    assert res.optimal and res.distance == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_alpha_three_classes_outer_approximation_matches_slsqp(metric):
    rng = np.random.default_rng(3)
    model = random_model(rng, 3, 4)
    x0 = rng.standard_normal(4)
    target = int(np.argmin(model.predict_proba(x0)))
    alpha = 0.7
    cost = rng.uniform(0.5, 2, 4)
    res = recourse(model, x0, target, metric=metric, cost=cost, alpha=alpha)
    assert res.success and res.optimal
    z = model.decision_function(res.x)
    assert logsumexp(z - z[target]) <= -math.log(alpha) + 1e-9
    # reference: SLSQP on the smooth convex problem (l1 through the split d = p - n)
    if metric == "l2":
        x_start, box = x0, None

        def fun(v):
            return np.sum(cost * (v - x0) ** 2)

        def to_x(v):
            return v
    else:
        x_start, box = np.zeros(8), [(0, None)] * 8

        def fun(v):
            return np.sum(np.concatenate([cost, cost]) * v)

        def to_x(v):
            return x0 + v[:4] - v[4:]
    constraint = {"type": "ineq", "fun": lambda v: -math.log(alpha) - logsumexp(
        model.decision_function(to_x(v)) - model.decision_function(to_x(v))[target])}
    best = math.inf
    for _ in range(5):
        v0 = x_start + (rng.standard_normal(x_start.size) * 0.5 if metric == "l2" else rng.uniform(0, 1, 8))
        ref = scipy.optimize.minimize(fun, v0, method="SLSQP", bounds=box, constraints=[constraint],
                                      options={"ftol": 1e-14, "maxiter": 1000})
        if ref.success and constraint["fun"](ref.x) >= -1e-9:
            best = min(best, ref.fun)
    reference = best if metric == "l1" else math.sqrt(best)
    assert res.distance == pytest.approx(reference, rel=1e-5)
    assert res.distance <= reference * (1 + 1e-7)


def test_infeasible_questions_say_which_constraint():
    model = SoftmaxModel([[0.0, 0.0], [1.0, 1.0]], [0.0, -10.0])
    x0 = np.zeros(2)
    res = recourse(model, x0, 1, bounds=(np.zeros(2), np.ones(2) * 3))
    assert not res.success and "range limit" in res.message
    res = recourse(model, x0, 1, bounds=(np.zeros(2), np.ones(2) * 6), max_changes=1)
    assert not res.success and "allow more changes" in res.message
    res = recourse(model, x0, 1, bounds=(np.zeros(2), np.ones(2) * 20), immutable=[0], max_changes=1)
    assert res.success and res.x[1] == pytest.approx(10 + MARGIN, abs=1e-6)
    res = recourse(model, x0, 1, bounds=(np.zeros(2), np.ones(2) * 8), immutable=[0])
    assert not res.success and "locked" in res.message
    res = recourse(model, x0, 1, integer=[0, 1], bounds=(np.zeros(2), [5.0, 5.0]), margin=0.5)
    assert not res.success and "range limit" in res.message


def test_whole_numbers_are_exactly_whole_and_the_answer_is_the_integer_optimum():
    model = SoftmaxModel([[0.0, 0.0, 0.0], [0.37, 0.61, 0.0]], [0.0, -3.05, ])
    res = recourse(model, np.zeros(3), 1, integer=[0, 1], bounds=(0, 20), metric="l1")
    assert res.success and res.optimal
    assert np.all(res.x == np.round(res.x)) and res.x[2] == 0.0
    reference = min(a + b for a in range(21) for b in range(21) if 0.37 * a + 0.61 * b - 3.05 >= MARGIN)
    assert res.distance == reference


def test_sparse_pixels_l1_on_an_image_model():
    rng = np.random.default_rng(0)
    model = random_model(rng, 10, 64, scale=0.3)
    x0 = rng.uniform(0, 1, 64)
    target = int(np.argsort(model.predict_proba(x0))[-2])
    res = recourse(model, x0, target, metric="l1", bounds=(0.0, 1.0), max_changes=5)
    if res.success:
        check_valid(model, res, x0, target, bounds=(np.zeros(64), np.ones(64)), budget=5)


def test_time_limit_reports_honestly():
    model, x0, target, cost, lower, upper, integer = small_problem(0)
    res = recourse(model, x0, target, cost=cost, bounds=(lower, upper), integer=integer, categorical=GROUPS,
                   change_levels=True, max_changes=2, time_limit=1e-4)
    if res.success:
        assert res.bound <= res.distance * (1 + 1e-9)
        check_valid(model, res, x0, target, integer=integer, groups=GROUPS, budget=2)
    else:
        assert "time limit" in res.message


def test_x0_already_valid_changes_nothing():
    model = SoftmaxModel([[0.0, 0.0], [1.0, 1.0]], [0.0, 0.0])
    res = recourse(model, [1.0, 1.0], 1)
    assert res.success and res.distance == 0.0 and res.changed == () and res.optimal


@pytest.mark.parametrize("kwargs, name", [
    (dict(metric="l3"), "metric"), (dict(cost=0.0), "cost"), (dict(cost=[1.0, -1.0, 1.0]), "cost"),
    (dict(cost=[1.0, 1.0]), "cost"), (dict(margin=0.0), "margin"), (dict(margin=float("nan")), "margin"),
    (dict(alpha=1.5), "alpha"), (dict(max_changes=0), "max_changes"), (dict(max_changes=1.5), "max_changes"),
    (dict(n_alternatives=0), "n_alternatives"), (dict(time_limit=-1.0), "time_limit"),
    (dict(integer=[0], x0=[0.5, 0.0, 0.0]), "x0"), (dict(categorical=[(0, 1), (1, 2)]), "categorical"),
    (dict(categorical=[(0, 1)], x0=[1.0, 1.0, 0.0]), "x0"),
    (dict(categorical=[(0, 1)], change_levels=[3], x0=[1.0, 0.0, 0.0]), "change_levels"),
    (dict(bounds=([1.0, 0, 0], [0.0, 1, 1])), "lower > upper"), (dict(immutable=[7]), "immutable"),
    (dict(target=5), "target"), (dict(x0=[0.0, 0.0]), "x0"), (dict(model="not a model"), "model"),
    (dict(integer=[0], bounds=([0.2, 0, 0], [0.8, 1, 1])), "integer feature"),
])
def test_invalid_arguments_raise_value_error_naming_the_argument(kwargs, name):
    model = SoftmaxModel([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [0.0, -1.0])
    args = dict(model=model, x0=[0.0, 0.0, 0.0], target=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        recourse(args.pop("model"), args.pop("x0"), args.pop("target"), **args)


def test_front_rejects_a_second_budget_and_unknown_arguments():
    model = SoftmaxModel([[0.0, 0.0], [1.0, 1.0]], [0.0, -1.0])
    with pytest.raises(ValueError, match="max_changes"):
        recourse_front(model, [0.0, 0.0], 1, max_changes=0)
    with pytest.raises(ValueError, match="unknown"):
        recourse_front(model, [0.0, 0.0], 1, max_changes=2, colour="red")


def test_alpha_out_of_reach_says_so():
    rng = np.random.default_rng(1)
    model = random_model(rng, 3, 3)
    x0 = np.zeros(3)
    target = int(np.argmin(model.predict_proba(x0)))
    res = recourse(model, x0, target, bounds=(-0.5, 0.5), alpha=0.999)
    assert not res.success and ("out of reach" in res.message or "range limit" in res.message)


def test_benchmark_smoke_run(tmp_path):
    """A small run of benchmarks/recourse_benchmark.py (no DiCE), so the script cannot rot; no timing asserted."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import recourse_benchmark

    runs, summary, ratios, fronts = recourse_benchmark.main(["--smoke", "--no-dice", "--out", str(tmp_path)])
    assert (tmp_path / "smoke_recourse_summary.csv").exists()
    ours = runs[runs.method.str.startswith("ours")]
    assert ours.found.all() and ours.valid.all() and ours.optimal.all()
    assert not (ours.locks_violated | ours.ranges_violated | ours.not_whole | ours.not_one_hot).any()
    assert fronts.monotone.all() and fronts.all_optimal.all()
