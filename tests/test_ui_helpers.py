"""The pure parts of the dashboard: figure builders, the change table and reading, constraint mapping."""

import numpy as np
import pytest

import datasets
from solver import SoftmaxModel, invert, invert_path
from ui import constraints, explain, figures


@pytest.fixture(scope="module")
def credit():
    return datasets.load_builtin("german-credit")


def test_change_table_speaks_in_original_units(credit):
    x0 = credit.X[1].copy()
    x = x0.copy()
    duration = credit.feature_names.index("duration_months")
    x[duration] = 31.0
    table = explain.change_table(credit, x0, x)
    assert table.iloc[0]["feature"] == "duration_months"
    assert table.iloc[0]["source"] == "48" and table.iloc[0]["counterfactual"] == "31"
    assert len(table) == 20  # one row per original column, not per one-hot feature
    sentence = explain.reading(credit, x0, x, "good", 0.71)
    assert sentence == "To be classified as good (p = 0.71), duration_months would fall from 48 to 31."


def test_reading_names_a_level_change(credit):
    x0 = credit.X[0].copy()
    group = credit.encoding.categorical[0]
    x = x0.copy()
    x[list(group.columns)] = 0.0
    x[group.columns[-1]] = 1.0
    sentence = explain.reading(credit, x0, x, "bad", 0.6)
    assert f"{group.name} would change from '{group.levels[0]}' to '{group.levels[-1]}'" in sentence


def test_constraint_table_maps_to_solver_arguments(credit):
    table = constraints.default_table(credit, standardised=True)
    assert list(table.feature[:2]) == ["duration_months", "credit_amount"] or "age_years" in set(table.feature)
    age = table.index[table.feature == "age_years"][0]
    table.loc[age, "min"] = 30.0
    sex = table.index[table.feature == "people_liable"][0]
    table.loc[sex, "locked"] = True
    arguments = constraints.solver_arguments(credit, table)
    age_index = credit.feature_names.index("age_years")
    liable_index = credit.feature_names.index("people_liable")
    assert arguments["bounds"][0][age_index] == 30.0 and np.isinf(arguments["bounds"][1][age_index])
    assert arguments["immutable"][liable_index]
    std = credit.X[:, age_index].std()
    assert arguments["cost"][age_index] == pytest.approx(1 / std**2)
    for group in credit.encoding.categorical:
        assert arguments["immutable"][list(group.columns)].all()
    questions = constraints.question_arguments(credit, table)
    assert len(questions["categorical"]) == 13 and questions["change_levels"] is None


def test_locked_and_ranged_features_hold_in_a_real_solve(credit):
    from training import train_softmax

    model = train_softmax(credit.X, credit.y, credit.class_names, credit.feature_names).model
    table = constraints.default_table(credit)
    age_index = credit.feature_names.index("age_years")
    x0 = credit.X[1]
    table.loc[table.feature == "age_years", "min"] = x0[age_index]
    table.loc[table.feature == "duration_months", "locked"] = True
    arguments = constraints.solver_arguments(credit, table)
    res = invert(model, x0, 1, 0.01, **arguments)
    assert res.success
    assert res.x[credit.feature_names.index("duration_months")] == x0[credit.feature_names.index("duration_months")]
    assert res.x[age_index] >= x0[age_index]


def test_figures_build_without_streamlit():
    rng = np.random.default_rng(0)
    model = SoftmaxModel(rng.standard_normal((3, 2)), np.zeros(3))
    x0 = np.array([0.5, -0.2])
    path = invert_path(model, x0, 2, np.logspace(-3, 1, 20))
    res = invert(model, x0, 2, 0.1, record=True)
    fig = figures.path_figures(path.lams, path.proba, path.distance, ["a", "b", "c"], 2, 0.1)
    assert len(fig.data) == 3 + 2 + 1  # classes, distance, trade-off, marker
    conv = figures.convergence_figure({"newton": res.history}, res.energy)
    assert len(conv.data) == 4
    regions = figures.decision_regions(model, rng.standard_normal((30, 2)), rng.integers(0, 3, 30), ["a", "b", "c"],
                                       x0, path.X, res.x, grid_size=50)
    assert regions.data[0].z.shape == (50, 50)
    (source, counterfactual, difference), bound = figures.triptych_images(
        np.zeros(4), np.array([0.0, 0.5, -0.25, 1.0]), (2, 2), pixel=3)
    assert source.shape == (6, 6, 3) and bound == 1.0  # the scale is symmetric, set by the largest change
    assert tuple(source[0, 0]) == (255, 255, 255) and tuple(counterfactual[5, 5]) == (0, 0, 0)
    assert tuple(difference[0, 0]) == (247, 247, 247)  # no change: the white centre
    assert difference[5, 5, 0] > difference[5, 5, 2] and difference[3, 0, 2] > difference[3, 0, 0]  # red +, blue -
    html = figures.probability_table_html(np.array([0.2, 0.8]), np.array([0.6, 0.4]), ["<b>", "1"], 0)
    assert "&lt;b&gt;" in html and "width:60.0%" in html and "width:80.0%" in html  # names escaped, bars scaled
