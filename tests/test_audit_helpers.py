"""The Audit page's computations (ui/audit.py): progress in steps, per-row ranges, the page's own check of
every answer, changes per column, costs by group, the key of a kept audit, downloads."""

import io

import numpy as np
import pandas as pd
import pytest

import datasets
from solver import BatchResult, closest_with_probability, minimal_flip, minimal_flip_batch
from training import train_softmax
from ui import audit, constraints
from ui.constraints import Edit, default_table, solver_arguments, what_may_change


@pytest.fixture(scope="module")
def credit():
    data = datasets.load_builtin("german-credit")
    model = train_softmax(data.X, data.y, data.class_names, feature_names=data.feature_names).model
    return data, model


def directions(data, *edits):
    return what_may_change(data, constraints.apply_edits(default_table(data), edits), True)


RISE_AND_FALL = (Edit("age_years", "may change", constraints.RISE), Edit("duration_months", "may change", constraints.FALL))


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


def test_row_bounds_are_for_instance_for_every_row(credit):
    data, _ = credit
    # credit amount may only fall, from at least 5,000: rows below that are held at their own amount
    what = directions(data, *RISE_AND_FALL, Edit("credit_amount", "may change", constraints.FALL),
                      Edit("credit_amount", "min", 5000.0))
    lower, upper, held = constraints.row_bounds(what.arguments["bounds"], data.X, what.rise, what.fall)
    amount = data.feature_names.index("credit_amount")
    np.testing.assert_array_equal(held[:, amount], data.X[:, amount] < 5000)
    for i in range(0, data.n_samples, 37):
        low, high = constraints.for_instance(what, data.X[i]).arguments["bounds"]
        np.testing.assert_array_equal(lower[i], low)
        np.testing.assert_array_equal(upper[i], high)


@pytest.mark.parametrize("question", ["flip", "probability", "lam"])
def test_per_row_ranges_give_each_row_its_single_row_answer(credit, question):
    data, model = credit
    what = directions(data, *RISE_AND_FALL)
    X0 = data.X[:150]
    lower, upper, _ = constraints.row_bounds(what.arguments["bounds"], X0, what.rise, what.fall)
    seen = []
    result = audit.run_audit(model, X0, 1, question, alpha=0.8, lam=0.1, step_rows=40, row_bounds=(lower, upper),
                             progress=lambda done, total: seen.append(done), **what.arguments)
    assert seen[-1] == 150 and seen == sorted(seen) and len(seen) <= 150 // 40 + 1
    age = data.feature_names.index("age_years")
    for i in range(0, 150, 7):
        arguments = constraints.for_instance(what, X0[i]).question_arguments
        if question == "flip":
            single = minimal_flip(model, X0[i], 1, **arguments)
        elif question == "probability":
            single = closest_with_probability(model, X0[i], 1, 0.8, **arguments)
        else:
            from solver import invert

            single = invert(model, X0[i], 1, 0.1, **constraints.for_instance(what, X0[i]).arguments)
        assert result.success[i] == single.success
        if single.success:
            distance = np.sqrt(np.sum(what.cost * (single.x - X0[i]) ** 2))
            assert result.distance[i] == pytest.approx(distance, rel=1e-6, abs=1e-9)
            assert result.X[i, age] >= X0[i, age]  # may only rise, from this row's own age


def test_the_pages_check_rejects_answers_that_break_what_was_asked(credit):
    data, model = credit
    what = what_may_change(data, default_table(data), True)
    arguments = what.arguments
    lower, upper, _ = constraints.row_bounds(arguments["bounds"], data.X[:60], False, False)
    flips = audit.run_audit(model, data.X[:60], 1, "flip", **arguments)
    ok, why = audit.check_answers(model, data.X[:60], flips, "flip", immutable=arguments["immutable"], lower=lower,
                                  upper=upper)
    np.testing.assert_array_equal(ok, flips.success)
    assert flips.success.sum() >= 55
    rows = np.flatnonzero(flips.success & (flips.distance > 0))[:4]
    X = flips.X.copy()
    locked = np.flatnonzero(arguments["immutable"])[0]
    X[rows[0], locked] += 1e-12  # a locked feature moved by a hair
    X[rows[1], data.feature_names.index("age_years")] = upper[rows[1], data.feature_names.index("age_years")] + 1
    X[rows[2]] = data.X[rows[2]]  # back at x0, which the model does not predict as the target
    proba = flips.proba.copy()
    proba[rows[2]] = model.predict_proba(data.X[rows[2]])
    proba[rows[3]] = proba[rows[3]][::-1]
    tampered = BatchResult(**{**flips.__dict__, "X": X, "proba": proba})
    ok, why = audit.check_answers(model, data.X[:60], tampered, "flip", immutable=arguments["immutable"], lower=lower,
                                  upper=upper)
    assert not ok[rows].any() and ok.sum() == flips.success.sum() - 4
    assert [why[r] for r in rows[:3]] == ["a locked feature moved", "the answer leaves its ranges",
                                          "the answer is not predicted as the target"]
    assert "disagree" in why[rows[3]]
    sure = audit.run_audit(model, data.X[:60], 1, "probability", alpha=0.8, **arguments)
    ok, _ = audit.check_answers(model, data.X[:60], sure, "probability", alpha=0.8)
    np.testing.assert_array_equal(ok, sure.success)
    ok, why = audit.check_answers(model, data.X[:60], sure, "probability", alpha=0.999)
    assert not ok[sure.success].any() and set(why[sure.success]) == {"p(target) < alpha at the answer"}


def test_run_counts_changed_columns_with_a_one_hot_group_once(credit):
    data, model = credit
    what = what_may_change(data, default_table(data), True)
    kept = audit.run(data, model, what, "flip", 1)
    everything = np.ones(data.n_samples, dtype=bool)
    table = audit.changed_columns(kept, everything)
    assert len(table) == 20 and table["rows changed"].is_monotonic_decreasing
    groups = {g.name for g in data.encoding.categorical}
    assert (table[table.column.isin(groups)]["rows changed"] == 0).all()  # locked by the default table
    answers = kept.rows["status"] == audit.RECOURSE
    duration = data.feature_names.index("duration_months")
    moved = kept.rows["answer: duration_months"].to_numpy() != data.X[:, duration]
    assert table.set_index("column").loc["duration_months", "rows changed"] == (moved & answers).sum()
    share = table.set_index("column").loc["duration_months", "share of answers"]
    assert share == pytest.approx((moved & answers).sum() / answers.sum())
    counted = kept.rows["features changed"].to_numpy(dtype=float, na_value=np.nan)
    assert np.nanmax(counted) <= 20 and np.isnan(counted[~answers]).all()


def test_group_costs_by_hand():
    distance = np.array([1.0, 3.0, np.inf, 2.0, 4.0, 6.0])
    recourse = np.array([True, True, False, True, True, True])
    table = audit.group_costs(recourse, distance, pd.Series(["a", "a", "a", "b", "b", "b"])).set_index("group")
    assert table.loc["a", "feasible"] == pytest.approx(2 / 3) and table.loc["a", "no_recourse"] == 1
    assert table.loc["a", "median"] == 2.0 and table.loc["b", "median"] == 4.0
    assert table.loc["b", "median / lowest median"] == 2.0 and table.loc["b", "q25"] == 3.0
    x, F = audit.ecdf(distance[recourse])
    assert x.tolist() == [1.0, 2.0, 3.0, 4.0, 6.0] and F.tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]


def test_group_labels_levels_bands_quartiles_and_classes(credit):
    data, model = credit
    sex = audit.group_labels(data, "personal_status_sex")
    group = next(g for g in data.encoding.categorical if g.name == "personal_status_sex")
    assert len(sex) == data.n_samples and list(sex.cat.categories) == list(group.levels)
    assert (sex.to_numpy() == np.asarray(group.levels)[np.argmax(data.X[:, list(group.columns)], axis=1)]).all()
    age = audit.group_labels(data, "age_years")
    ages = data.X[:, data.feature_names.index("age_years")]
    assert list(age.cat.categories) == ["< 25", "[25, 35)", "[35, 50)", "[50, 65)", "≥ 65"]
    assert (age[ages < 25] == "< 25").all() and (age[ages >= 65] == "≥ 65").all()
    assert (age[(ages >= 35) & (ages < 50)] == "[35, 50)").all()
    amount = audit.group_labels(data, "credit_amount")  # quartiles: every row in a band, about a quarter each
    counts = amount.value_counts(sort=False)
    assert counts.sum() == data.n_samples and len(counts) == 4 and counts.min() >= 200
    predicted = audit.group_labels(data, audit.PREDICTED_CLASS, model=model)
    assert (predicted.to_numpy() == np.asarray(model.classes)[model.predict(data.X)]).all()
    assert audit.group_options(data)[:3] == ["personal_status_sex", "age_years", "foreign_worker"]
    with pytest.raises(ValueError, match="no column"):
        audit.group_labels(data, "shoe size")


def test_the_key_holds_everything_an_audit_depends_on(credit):
    data, model = credit
    plain = what_may_change(data, default_table(data), True)
    rising = directions(data, RISE_AND_FALL[0])
    assert rising.signature == plain.signature  # the settings' signature does not hold the directions ...
    key = audit.audit_key(data, model, plain, "probability", 1, alpha=0.8)
    assert audit.audit_key(data, model, rising, "probability", 1, alpha=0.8) != key  # ... the audit's key does
    assert audit.changed_key_parts(key, audit.audit_key(data, model, rising, "probability", 1, alpha=0.8)) == [
        "what may change"]
    assert audit.changed_key_parts(key, audit.audit_key(data, model, plain, "probability", 1, alpha=0.9)) == ["α or λ"]
    assert audit.changed_key_parts(key, audit.audit_key(data, model, plain, "flip", 0)) == [
        "the question", "α or λ", "the target"]
    assert audit.audit_key(data, model, plain, "flip", 1, alpha=0.8).parameter is None


def test_downloads_read_back_as_the_rows(credit):
    data, model = credit
    kept = audit.run(data, model, what_may_change(data, default_table(data), True), "lam", 1, lam=0.1)
    groups = audit.group_labels(data, "foreign_worker")
    frame = audit.download_frame(kept, groups)
    assert len(frame) == data.n_samples and frame.columns[1] == "group: foreign_worker"
    back = pd.read_parquet(io.BytesIO(audit.to_parquet(frame)))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    csv = pd.read_csv(io.BytesIO(audit.to_csv(frame)))
    np.testing.assert_allclose(csv["distance"], frame["distance"], rtol=1e-12)
    assert (csv["status"] == frame["status"]).all()


def test_default_step_is_about_twenty_steps_of_whole_fifties():
    assert audit.default_step(1000) == 50 and audit.default_step(5000) == 250 and audit.default_step(130) == 50
