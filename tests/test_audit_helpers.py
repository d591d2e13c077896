"""The Audit page's pure helpers (ui/audit.py): progress in steps, changes per column, costs by group."""

import numpy as np
import pandas as pd
import pytest

import datasets
from solver import BatchResult, minimal_flip, minimal_flip_batch
from training import train_softmax
from ui import audit
from ui.constraints import default_table, solver_arguments


@pytest.fixture(scope="module")
def credit():
    data = datasets.load_builtin("german-credit")
    model = train_softmax(data.X, data.y, data.class_names, feature_names=data.feature_names).model
    return data, model


def test_run_audit_in_steps_equals_one_batch_and_reports_progress(credit):
    data, model = credit
    arguments = solver_arguments(data, default_table(data))
    seen = []
    stepped = audit.run_audit(model, data.X[:130], 1, "flip", progress=lambda done, total: seen.append((done, total)),
                              step_rows=50, **arguments)
    whole = minimal_flip_batch(model, data.X[:130], 1, **arguments)
    assert seen == [(50, 130), (100, 130), (130, 130)]
    np.testing.assert_array_equal(stepped.X, whole.X)
    np.testing.assert_array_equal(stepped.distance, whole.distance)
    assert list(stepped.message) == list(whole.message) and len(stepped) == 130
    single = minimal_flip(model, data.X[7], 1, **arguments)
    assert stepped.distance[7] == pytest.approx(single.distance, rel=1e-9, abs=1e-12)


def test_changed_columns_count_a_one_hot_group_once(credit):
    data, model = credit
    result = audit.run_audit(model, data.X[:200], 1, "flip", **solver_arguments(data, default_table(data)))
    table = audit.changed_columns(data, result, data.X[:200])
    assert len(table) == 20 and table["rows changed"].is_monotonic_decreasing
    groups = {g.name for g in data.encoding.categorical}
    assert (table[table.column.isin(groups)]["rows changed"] == 0).all()  # locked by the default table
    moved = ~np.isclose(result.X, data.X[:200], rtol=0, atol=0)
    duration = data.feature_names.index("duration_months")
    assert table.set_index("column").loc["duration_months", "rows changed"] == moved[result.success, duration].sum()


def test_group_costs_by_hand():
    result = BatchResult(
        X=np.zeros((6, 1)), proba=np.zeros((6, 2)), distance=np.array([1.0, 3.0, np.inf, 2.0, 4.0, 6.0]),
        success=np.array([True, True, False, True, True, True]), n_iter=np.zeros(6, int), grad_norm=np.zeros(6),
        message=np.array([""] * 6), target=np.zeros(6, int), lam=None, margin=None, method="minimal-flip", time_s=0.0)
    table = audit.group_costs(result, pd.Series(["a", "a", "a", "b", "b", "b"])).set_index("group")
    assert table.loc["a", "feasible"] == pytest.approx(2 / 3) and table.loc["a", "no_recourse"] == 1
    assert table.loc["a", "median"] == 2.0 and table.loc["b", "median"] == 4.0
    assert table.loc["b", "median / lowest median"] == 2.0
    x, F = audit.ecdf(result.distance)
    assert x.tolist() == [1.0, 2.0, 3.0, 4.0, 6.0] and F[-1] == 1.0


def test_group_labels_levels_and_age_bands(credit):
    data, _ = credit
    sex = audit.group_labels(data, data.encoding.categorical[0].name)
    assert len(sex) == data.n_samples and set(sex) <= set(data.encoding.categorical[0].levels)
    age = audit.group_labels(data, "age_years")
    ages = data.X[:, data.feature_names.index("age_years")]
    assert (age[ages < 25] == "[0.0, 25.0)").all() and (age[ages >= 65] == "[65.0, inf)").all()
    with pytest.raises(ValueError, match="no column"):
        audit.group_labels(data, "shoe size")
