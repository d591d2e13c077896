"""The pure parts of the recourse question in the dashboard: feature types and ranges read from the data,
the per-feature choice mapped to bounds, the recourse arguments and their costs, links, the stakeholder's
words, the change table and its CSV, the front and the alternatives."""

import io
import math

import numpy as np
import pandas as pd
import pytest

import datasets
from solver import recourse, recourse_front
from ui import constraints, explain, links, view
from ui import recourse as recourse_ui


def table_with(credit, **choices):
    """The default table with some rows' choice set: feature=choice."""
    table = constraints.default_table(credit, True)
    for feature, choice in choices.items():
        table.loc[table.feature == feature, "may change"] = choice
    return table


def test_feature_types_and_ranges_come_from_the_data():
    for name in ("german-credit", "wine", "iris", "penguins"):
        data = datasets.load_builtin(name)
        table = constraints.default_table(data).set_index("feature")
        for feature, index in data.encoding.numeric:
            column = data.X[:, index]
            assert table.at[feature, "whole numbers"] == bool(np.all(np.mod(column, 1.0) == 0)), (name, feature)
            # the cells read back to the observed range exactly
            assert constraints.parse_number(table.at[feature, "min"]) == column.min()
            assert constraints.parse_number(table.at[feature, "max"]) == column.max()
            assert table.at[feature, "may change"] == constraints.MAY_CHANGE
        for group in data.encoding.categorical:
            assert table.at[group.name, "may change"] == constraints.LOCKED
            assert table.at[group.name, "kind"] == f"categorical ({len(group.levels)} levels)"
    wine = constraints.default_table(datasets.load_builtin("wine")).set_index("feature")
    assert wine.at["proline", "whole numbers"] and not wine.at["alcohol", "whole numbers"]
    credit = datasets.load_builtin("german-credit")
    what = constraints.what_may_change(credit, constraints.default_table(credit), True)
    assert what.edits == () and what.problems == ()
    numeric = [index for _, index in credit.encoding.numeric]
    assert what.integer[numeric].all() and not np.delete(what.integer, numeric).any()  # one-hot columns are not


def test_may_only_rise_and_fall_are_bounds_at_the_applicants_value(credit):
    names = credit.feature_names
    duration, amount, age = (names.index(f) for f in ("duration_months", "credit_amount", "age_years"))
    table = table_with(credit, duration_months=constraints.FALL, credit_amount=constraints.RISE,
                       age_years=constraints.LOCKED)
    what = constraints.what_may_change(credit, table, True)
    for row in (1, 7):
        x0 = credit.X[row]
        at = constraints.for_instance(what, x0)
        for arguments in (at.arguments, at.question_arguments):
            lower, upper = arguments["bounds"]
            assert (lower[duration], upper[duration]) == (credit.X[:, duration].min(), x0[duration])
            assert (lower[amount], upper[amount]) == (x0[amount], credit.X[:, amount].max())
            assert arguments["immutable"][age]
        # the instance-free settings are untouched, and the signature follows the instance
        assert what.arguments["bounds"][1][duration] == credit.X[:, duration].max()
    assert constraints.for_instance(what, credit.X[1]).signature != constraints.for_instance(what, credit.X[7]).signature
    plain = constraints.what_may_change(credit, constraints.default_table(credit), True)
    assert constraints.for_instance(plain, credit.X[1]) is plain  # nothing rises or falls: the same object

    # a range on the far side of the applicant holds the feature at its value, and says so
    x0 = credit.X[1]
    table.loc[table.feature == "duration_months", "min"] = constraints.number_text(x0[duration] + 6)
    at = constraints.for_instance(constraints.what_may_change(credit, table, True), x0)
    assert at.arguments["bounds"][0][duration] == at.arguments["bounds"][1][duration] == x0[duration]
    assert any(p.startswith("duration_months: its range lies on the other side") for p in at.problems)


def test_rise_and_fall_hold_in_a_real_recourse_answer(credit, credit_model):
    """The mapping is what the solver gets: the answer never moves against the chosen direction."""
    table = table_with(credit, duration_months=constraints.RISE, credit_amount=constraints.RISE,
                       installment_rate_pct_income=constraints.FALL)
    x0 = credit.X[1]
    what = constraints.for_instance(constraints.what_may_change(credit, table, True), x0)
    arguments, notes = constraints.recourse_arguments(credit, what, "l2", x0)
    free = constraints.for_instance(constraints.what_may_change(credit, constraints.default_table(credit), True), x0)
    unconstrained = recourse(credit_model, x0, 1, max_changes=3, **constraints.recourse_arguments(credit, free, "l2",
                                                                                                 x0)[0])
    result = recourse(credit_model, x0, 1, max_changes=3, **arguments)
    assert result.success and not notes
    names = credit.feature_names
    for feature, sign in (("duration_months", 1), ("credit_amount", 1), ("installment_rate_pct_income", -1)):
        j = names.index(feature)
        assert sign * (result.x[j] - x0[j]) >= 0, feature
    # without the directions the cheapest answer shortens the duration: the directions did bind
    assert unconstrained.x[names.index("duration_months")] < x0[names.index("duration_months")]
    assert result.distance > unconstrained.distance


def test_number_cells_are_parsed_and_what_cannot_be_used_is_said(credit):
    table = constraints.default_table(credit)
    rows = {f: table.index[table.feature == f][0] for f in ("duration_months", "credit_amount", "age_years",
                                                             "people_liable", "existing_credits")}
    table.loc[rows["duration_months"], ["min", "max"]] = ["12", " 48 "]
    table.loc[rows["credit_amount"], ["min", "max"]] = ["abc", ""]
    table.loc[rows["age_years"], "cost"] = "-1"
    table.loc[rows["credit_amount"], "cost"] = "cheap"
    table.loc[rows["people_liable"], "cost"] = "0"
    table.loc[rows["existing_credits"], ["min", "max"]] = ["3", "2"]
    what = constraints.what_may_change(credit, table, True)
    lower, upper = what.arguments["bounds"]
    names = credit.feature_names
    duration, amount, age, liable, credits = (names.index(f) for f in rows)
    assert (lower[duration], upper[duration]) == (12.0, 48.0)
    assert lower[amount] == credit.X[:, amount].min() and upper[amount] == np.inf  # bad cell: the data's; empty: none
    for j in (age, amount):  # the default, exactly (the cell shows six digits of it)
        assert what.arguments["cost"][j] == 1 / credit.X.std(axis=0)[j] ** 2
    assert what.arguments["immutable"][liable]  # cost 0 locks, as in the solver
    assert (lower[credits], upper[credits]) == (2.0, 3.0)
    assert what.problems == ("credit_amount cost: 'cheap' is not a number; kept 1.2563e-07",
                             "credit_amount min: 'abc' is not a number; kept 250",
                             "age_years cost: -1 is negative; kept 0.00773563",
                             "existing_credits: min 3 is above max 2; swapped")
    for text, value in (("1e-07", 1e-7), ("-2.5", -2.5), ("none", None), ("", None), (7, 7.0)):
        parsed = constraints.parse_number(text)
        assert (math.isnan(parsed) if value is None else parsed == value)
    for bad in ("1,5", "inf", "nan%", True):
        with pytest.raises(ValueError):
            constraints.parse_number(bad)
    # the editor's number cells are text, written so that they read back exactly
    for value in (0.1, 1 / 3, 18424.0, -250.0, 1e-300):
        assert constraints.parse_number(constraints.number_text(value)) == value


def test_recourse_arguments_weigh_l1_by_the_mad_and_keep_the_tables_choices(credit):
    table = table_with(credit, savings=constraints.MAY_CHANGE, age_years=constraints.LOCKED)
    amount = table.index[table.feature == "credit_amount"][0]
    std = credit.X.std(axis=0)
    j = credit.feature_names.index("credit_amount")
    table.loc[amount, "cost"] = repr(float(4.0 / std[j] ** 2))  # twice as dear per standard deviation
    x0 = credit.X[1]
    what = constraints.for_instance(constraints.what_may_change(credit, table, True), x0)
    l2, _ = constraints.recourse_arguments(credit, what, "l2", x0)
    l1, _ = constraints.recourse_arguments(credit, what, "l1", x0)
    np.testing.assert_array_equal(l2["cost"], what.cost)
    X = credit.X
    mad = np.median(np.abs(X - np.median(X, axis=0)), axis=0)
    for name, index in credit.encoding.numeric:
        scale = mad[index] if mad[index] > 0 else std[index]  # people_liable and existing_credits: MAD 0
        factor = 2.0 if name == "credit_amount" else 1.0
        assert l1["cost"][index] == pytest.approx(factor / scale, rel=1e-12), name
    for group in credit.encoding.categorical:
        assert (l1["cost"][list(group.columns)] == 0.5).all()  # a change of level costs 1
    groups = [g.name for g in credit.encoding.categorical]
    assert l1["change_levels"] == [groups.index("savings")] and l1["categorical"] == [g.columns for g in
                                                                                     credit.encoding.categorical]
    assert l1["immutable"][credit.feature_names.index("age_years")] and l1["integer"].sum() == 7
    images = datasets.load_builtin("digits")
    pixels = constraints.image_constraints(images, True)
    assert constraints.recourse_arguments(images, pixels, "l2", images.X[0]) == (dict(metric="l1", bounds=(0.0, 1.0)), ())


def test_a_recourse_question_travels_in_a_link(credit):
    encoded = links.encode(dataset="german-credit", instance=1, target=1, log_lam=-1.0, kind="tabular", flag=True,
                           question="recourse", budget=3, metric="l1", alpha=0.7,
                           edits=(constraints.Edit("duration_months", "may change", constraints.FALL),))
    assert encoded["q"] == "recourse" and encoded["s"] == "3" and encoded["metric"] == "l1"
    assert encoded["edits"] == "duration_months:change=fall"
    request, warnings = links.read(encoded, "german-credit", credit, (-4.0, 2.0), 0.02)
    assert not warnings
    assert (request.question, request.budget, request.metric, request.alpha) == ("recourse", 3, "l1", 0.7)
    assert request.edits == (constraints.Edit("duration_months", "may change", constraints.FALL),)
    request, warnings = links.read({"q": "recourse", "s": "99", "metric": "l3"}, "german-credit", credit,
                                   (-4.0, 2.0), 0.02)
    assert request.question is None and warnings == [
        "budget s = '99' is not a whole number from 1 to 20; the recourse question was not asked"]
    request, warnings = links.read({"q": "recourse", "s": "2", "metric": "l3", "edits": "age_years:change=up"},
                                   "german-credit", credit, (-4.0, 2.0), 0.02)
    assert request.budget == 2 and request.metric is None
    assert "metric 'l3' is not l2 or l1 (using the default)" in warnings
    assert r"what may change: age\_years may change = 'up' is not a valid value" in warnings
    images = datasets.load_builtin("digits")
    request, warnings = links.read({"q": "recourse", "s": "64", "metric": "l2"}, "digits", images, (-4.0, 2.0), 0.02)
    assert request.budget == 64 and warnings == ["metric 'l2' is not l1 (using the default)"]


def test_the_stakeholders_words_are_in_the_applicants_units():
    assert explain.change_words("credit_amount", 5951, 4200, "german-credit") == \
        "reduce the credit amount from 5,951 DM to 4,200 DM"
    assert explain.change_words("duration_months", 48, 36, "german-credit") == "shorten the duration from 48 to 36 months"
    assert explain.change_words("duration_months", 12, 24) == "extend the duration from 12 to 24 months"
    assert explain.change_words("existing_credits", 1, 2, "german-credit") == "increase the existing credits from 1 to 2"
    assert explain.change_words("body_mass_g", 3750, 4050) == "increase the body mass from 3,750 to 4,050 g"
    assert explain.change_words("alcohol", 13.2, 12.85) == "reduce the alcohol from 13.20 to 12.85"
    assert explain.plain_name("credit_amount", "other-data") == ("credit amount", "")  # DM only where documented
    assert explain.level_words("savings", "... < 100 DM", "unknown/ no savings account") == \
        "change the savings from '... < 100 DM' to 'unknown/ no savings account'"


def test_the_recourse_sentence_reads_a_real_answer(credit, credit_model):
    x0 = credit.X[1]
    table = table_with(credit, savings=constraints.MAY_CHANGE)
    what = constraints.for_instance(constraints.what_may_change(credit, table, True), x0)
    arguments, _ = constraints.recourse_arguments(credit, what, "l2", x0)
    result = recourse(credit_model, x0, 1, max_changes=2, **arguments)
    assert result.success and result.n_changes == 2
    sentence = explain.recourse_reading(credit, x0, result.x, result.changed, "good", "0.3786", "0.5000", "good")
    assert sentence.startswith("To be classified as good (p(good) from 0.3786 to 0.5000): ")
    names = credit.feature_names
    for item in result.changed:
        if isinstance(item, tuple):
            group = next(g for g in credit.encoding.categorical if g.columns == item)
            before = group.levels[int(np.argmax(x0[list(item)]))]
            after = group.levels[int(np.argmax(result.x[list(item)]))]
            assert f"change the {group.name} from '{before}' to '{after}'" in sentence
        else:
            before, after = x0[item], result.x[item]
            assert after == round(after)  # whole numbers stay whole
            unit = " DM" if names[item] == "credit_amount" else (" months" if names[item] == "duration_months" else "")
            assert f"from {before:,.0f}{unit if unit == ' DM' else ''} to {after:,.0f}{unit}" in sentence, sentence
    assert explain.recourse_reading(credit, x0, x0, (), "bad", "0.6214", "0.6214", "bad") == \
        "Already classified as bad (p(bad) from 0.6214 to 0.6214): nothing needs to change."
    held = explain.held_fixed(credit, dict(zip(table.feature, table["may change"])), ["credit_amount"])
    assert held.startswith("Held fixed (locked): checking status, credit history, purpose, employment since")
    assert "unchanged although free to change: duration, installment rate pct income" in held


def test_the_change_table_shares_the_l1_distance_and_its_csv_is_the_table(credit, credit_model):
    x0 = credit.X[1]
    table = table_with(credit, checking_status=constraints.MAY_CHANGE, age_years=constraints.LOCKED)
    what = constraints.for_instance(constraints.what_may_change(credit, table, True), x0)
    arguments, _ = constraints.recourse_arguments(credit, what, "l1", x0)
    result = recourse(credit_model, x0, 1, max_changes=3, **arguments)
    assert result.success
    choices = dict(zip(table.feature, table["may change"]))
    unit = constraints.recourse_unit(what, "l1")
    shown = explain.change_table(credit, x0, result.x, arguments["cost"], unit, metric="l1", choices=choices)
    assert unit == "MADs, l1" and len(shown) == 20  # one row per original column, not per one-hot column
    size = explain.size_column(unit)
    assert shown[size].sum() == pytest.approx(result.distance, rel=1e-12)  # l1 shares add up
    assert shown.set_index("feature").at["age_years", "may change"] == "locked"
    displayed = shown.drop(columns="kind")
    back = pd.read_csv(io.BytesIO(explain.table_csv(displayed)), dtype=str, keep_default_na=False)
    assert list(back.columns) == list(displayed.columns) and len(back) == 20
    expected = displayed.astype(str)
    expected[size] = [repr(v) for v in displayed[size]]  # numbers as pandas writes them
    pd.testing.assert_frame_equal(back.drop(columns=size), expected.drop(columns=size))
    np.testing.assert_array_equal(back[size].astype(float), displayed[size])


def test_the_front_chart_and_the_alternatives_are_the_answers_own(credit, credit_model):
    x0 = credit.X[1]
    table = table_with(credit, savings=constraints.MAY_CHANGE)
    what = constraints.for_instance(constraints.what_may_change(credit, table, True), x0)
    arguments, _ = constraints.recourse_arguments(credit, what, "l2", x0)
    front = tuple(recourse_front(credit_model, x0, 1, max_changes=5, **arguments))
    figure = recourse_ui.front_figure(front, credit, 2, "distance (std)", "good")
    points = figure.data[0]
    budgets = [s for s, r in enumerate(front, start=1) if r is not None]
    assert list(points.x) == budgets == list(points.customdata)
    np.testing.assert_array_equal(points.y, [front[s - 1].distance for s in budgets])
    assert all(np.diff(points.y) <= 1e-12)  # more allowed changes never cost more
    assert list(figure.data[1].x) == [2] and figure.data[1].y[0] == front[1].distance  # the answer on screen, ringed
    result = recourse(credit_model, x0, 1, max_changes=2, n_alternatives=3, **arguments)
    assert result.distance == pytest.approx(front[1].distance, rel=1e-6)
    answer = type("A", (), {"result": result, "choice": 1})()
    alternatives = recourse_ui.alternatives_table(credit, answer, "good")
    assert list(alternatives.answer) == ["cheapest"] + [f"alternative {i}" for i in range(1, len(result.alternatives) + 1)]
    assert list(alternatives.shown) == ["", "●"] + [""] * (len(result.alternatives) - 1)
    assert alternatives.distance[0] == view.format_distance(result.distance)
    first = {recourse_ui.item_name(credit, item) for item in result.changed}
    for row, alternative in zip(list(alternatives.itertuples())[1:], result.alternatives):
        assert set(row.changes.split(", ")) == {recourse_ui.item_name(credit, i) for i in alternative.changed}
        assert not first <= {recourse_ui.item_name(credit, i) for i in alternative.changed}  # keeps one of them at x0


def test_the_shown_recourse_answer_has_the_solvers_distance(credit, credit_model):
    x0 = credit.X[1]
    what = constraints.for_instance(constraints.what_may_change(credit, table_with(credit), True), x0)
    for metric in ("l2", "l1"):
        arguments, _ = constraints.recourse_arguments(credit, what, metric, x0)
        result = recourse(credit_model, x0, 1, max_changes=2, n_alternatives=2, **arguments)
        key = type("K", (), {"metric": metric, "budget": 2})()
        for choice in (0, 1):
            answer = type("A", (), {"shown": (result, *result.alternatives)[choice], "arguments": arguments,
                                    "key": key, "alpha": None, "result": result, "choice": choice})()
            shown = view.from_recourse(answer, credit_model, x0, what, credit, "good")
            assert shown.distance == pytest.approx(answer.shown.distance, rel=1e-12)
            assert shown.meets and shown.predicted == 1 and shown.optimal
            assert shown.unit == ("std" if metric == "l2" else "MADs, l1") and shown.title == \
                "Cheapest change of at most 2 features"
            assert view.certificate(shown) == "certified optimal"


def test_the_timing_script_runs():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import recourse_ui_timing

    rows = recourse_ui_timing.main(["--rows", "2"])
    assert len(rows) == 2 and all(optimal for success, optimal, _, _ in rows if success)
