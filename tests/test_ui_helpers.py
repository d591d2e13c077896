"""The pure parts of the dashboard: figure builders, the change table and reading, constraint mapping,
share links, and the one answer a page shows."""

import math

import numpy as np
import pytest

import datasets
from solver import SoftmaxModel, closest_with_probability, invert, invert_path, minimal_flip
from training import TrainingParams
from ui import constraints, explain, figures, links, view


def test_change_table_speaks_in_original_units_and_shares_the_distance(credit):
    x0 = credit.X[1].copy()
    x = x0.copy()
    duration = credit.feature_names.index("duration_months")
    amount = credit.feature_names.index("credit_amount")
    x[duration], x[amount] = 31.0, x0[amount] + 500.0
    what = constraints.what_may_change(credit, constraints.default_table(credit, True), True)
    table = explain.change_table(credit, x0, x, what.cost, what.unit)
    std = credit.X.std(axis=0)
    by_feature = table.set_index("feature")
    assert by_feature.loc["duration_months", "change (std)"] == pytest.approx(17.0 / std[duration])
    assert by_feature.loc["credit_amount", "change (std)"] == pytest.approx(500.0 / std[amount])
    assert by_feature.loc["duration_months", "source"] == "48" and by_feature.loc["duration_months", "counterfactual"] == "31"
    assert len(table) == 20  # one row per original column, not per one-hot feature
    assert list(table["change (std)"]) == sorted(table["change (std)"], reverse=True)
    # the table's shares make up the problem's distance
    assert math.sqrt((table["change (std)"] ** 2).sum()) == pytest.approx(constraints.distance(x, x0, what.cost))
    raw = constraints.what_may_change(credit, constraints.default_table(credit, False), False)
    raw_table = explain.change_table(credit, x0, x, raw.cost, raw.unit)
    assert raw.unit == "raw units" and raw_table.iloc[0]["feature"] == "credit_amount"
    assert raw_table.iloc[0]["change (raw units)"] == pytest.approx(500.0)


def test_reading_says_classified_only_when_the_target_is_predicted(credit):
    x0 = credit.X[1].copy()
    x = x0.copy()
    x[credit.feature_names.index("duration_months")] = 31.0
    what = constraints.what_may_change(credit, constraints.default_table(credit, True), True)
    table = explain.change_table(credit, x0, x, what.cost, what.unit)
    reached = explain.reading(table, "good", "0.7100", "good")
    assert reached == "To be classified as good (p = 0.7100), duration_months would fall from 48 to 31."
    short = explain.reading(table, "good", "0.4990", "bad")
    assert short == ("Moving towards good (p = 0.4990), duration_months would fall from 48 to 31; the model still "
                     "predicts bad there.")
    assert "classified as" not in short
    unchanged = explain.change_table(credit, x0, x0, what.cost, what.unit)
    assert explain.reading(unchanged, "good", "0.3000", "bad").startswith("Nothing changes noticeably: the model still")
    assert explain.reading(unchanged, "bad", "0.7000", "bad").startswith("The instance is already classified as bad")


def test_reading_names_a_level_change(credit):
    x0 = credit.X[0].copy()
    group = credit.encoding.categorical[0]
    x = x0.copy()
    x[list(group.columns)] = 0.0
    x[group.columns[-1]] = 1.0
    what = constraints.what_may_change(credit, constraints.default_table(credit, True), True)
    sentence = explain.reading(explain.change_table(credit, x0, x, what.cost, what.unit), "bad", "0.6000", "bad")
    assert f"{group.name} would change from '{group.levels[0]}' to '{group.levels[-1]}'" in sentence


def test_constraint_table_maps_to_solver_arguments(credit):
    table = constraints.default_table(credit, standardised=True)
    numeric = [name for name, _ in credit.encoding.numeric]
    assert list(table.feature) == numeric + [g.name for g in credit.encoding.categorical]
    age = table.index[table.feature == "age_years"][0]
    table.loc[age, "min"] = "30"
    liable = table.index[table.feature == "people_liable"][0]
    table.loc[liable, "may change"] = constraints.LOCKED
    arguments = constraints.solver_arguments(credit, table)
    age_index = credit.feature_names.index("age_years")
    liable_index = credit.feature_names.index("people_liable")
    # the range is the data's unless edited: age's max stays the observed one
    assert arguments["bounds"][0][age_index] == 30.0 and arguments["bounds"][1][age_index] == credit.X[:, age_index].max()
    assert arguments["immutable"][liable_index] and arguments["immutable"].sum() == sum(
        len(g.columns) for g in credit.encoding.categorical) + 1
    std = credit.X.std(axis=0)[age_index]
    assert arguments["cost"][age_index] == 1 / std**2  # exactly, although the cell shows six digits
    for group in credit.encoding.categorical:
        assert arguments["immutable"][list(group.columns)].all()
    questions = constraints.question_arguments(credit, table)
    assert len(questions["categorical"]) == 13 and questions["change_levels"] is None
    assert not questions["immutable"][list(credit.encoding.categorical[0].columns)].any()


def test_locked_and_ranged_features_hold_in_a_real_solve(credit, credit_model):
    table = constraints.default_table(credit)
    age_index = credit.feature_names.index("age_years")
    x0 = credit.X[1]
    table.loc[table.feature == "age_years", "min"] = constraints.number_text(x0[age_index])
    table.loc[table.feature == "duration_months", "may change"] = constraints.LOCKED
    arguments = constraints.solver_arguments(credit, table)
    res = invert(credit_model, x0, 1, 0.01, **arguments)
    assert res.success
    assert res.x[credit.feature_names.index("duration_months")] == x0[credit.feature_names.index("duration_months")]
    assert res.x[age_index] >= x0[age_index]


def test_the_signature_changes_with_every_setting_an_answer_depends_on(credit):
    base = constraints.default_table(credit, True)
    std = constraints.what_may_change(credit, base, True)
    raw = constraints.what_may_change(credit, constraints.default_table(credit, False), False)
    locked = base.copy()
    locked.loc[locked.feature == "duration_months", "may change"] = constraints.LOCKED
    levels = base.copy()
    levels.loc[levels.feature == credit.encoding.categorical[0].name, "may change"] = constraints.MAY_CHANGE
    ranged = base.copy()
    ranged.loc[ranged.feature == "age_years", "max"] = "70"
    fractional = base.copy()
    fractional.loc[fractional.feature == "age_years", "whole numbers"] = False  # only the recourse question uses it
    signatures = {std.signature, raw.signature}
    for table in (locked, levels, ranged, fractional):
        signatures.add(constraints.what_may_change(credit, table, True).signature)
    assert len(signatures) == 6
    assert constraints.what_may_change(credit, base.copy(), True).signature == std.signature
    images = datasets.load_builtin("digits")
    assert constraints.image_constraints(images, True).signature != constraints.image_constraints(images, False).signature


def test_table_edits_round_trip_through_a_link(credit):
    default = constraints.default_table(credit, True)
    edited = default.copy()
    edited.loc[edited.feature == "age_years", ["may change", "min"]] = [constraints.LOCKED, "30"]
    edited.loc[edited.feature == "credit_amount", "cost"] = "1e-07"
    edited.loc[edited.feature == "duration_months", ["may change", "whole numbers"]] = [constraints.FALL, False]
    group = credit.encoding.categorical[2].name
    edited.loc[edited.feature == group, "may change"] = constraints.MAY_CHANGE
    edits = constraints.table_edits(default, edited)
    assert {(e.feature, e.column) for e in edits} == {("age_years", "may change"), ("age_years", "min"),
                                                      ("credit_amount", "cost"), ("duration_months", "may change"),
                                                      ("duration_months", "whole numbers"), (group, "may change")}
    text = links.encode_edits(edits)
    features = list(default.feature)
    decoded, problems = links.decode_edits(text, features)
    assert not problems and decoded == edits
    assert constraints.apply_edits(default, decoded).equals(edited)
    odd = [constraints.Edit("a:b;c,d=e %", "max", 1.5)]
    assert links.decode_edits(links.encode_edits(odd), ["a:b;c,d=e %"]) == (tuple(odd), [])
    # links written before "may change" was one choice still read
    legacy, problems = links.decode_edits(f"age_years:lock=1;{group}:levels=1", features)
    assert not problems and legacy == (constraints.Edit("age_years", "may change", constraints.LOCKED),
                                       constraints.Edit(group, "may change", constraints.MAY_CHANGE))
    _, problems = links.decode_edits("nope:lock=1;age_years:size=3,min=x,cost=-1", features)
    assert problems == ["'nope' is not a feature of this dataset", "'size' is not a column of the what-may-change table",
                        r"age\_years min = 'x' is not a valid value", r"age\_years cost = '\-1' is not a valid value"]


def test_a_link_reads_back_what_encode_wrote(credit):
    params = TrainingParams(C=0.01, standardize=False, test_fraction=0.3, seed=7)
    edits = (constraints.Edit("age_years", "min", 30.0),)
    encoded = links.encode(dataset="german-credit", instance=5, target=1, log_lam=-1.2, kind="tabular", flag=False,
                           question="alpha", alpha=0.85, edits=edits, training=params)
    request, warnings = links.read(encoded, "german-credit", credit, (-4.0, 2.0), 0.02)
    assert not warnings
    assert request == links.LinkRequest(dataset="german-credit", instance=5, target=1, log_lam=pytest.approx(-1.2),
                                        question="alpha", alpha=0.85, standardised=False, edits=edits, training=params)
    default = links.encode(dataset="german-credit", instance=0, target=0, log_lam=-1.0, kind="tabular", flag=True,
                           training=TrainingParams.default_for("tabular"))
    assert set(default) == {"dataset", "i", "target", "lam", "std"}  # defaults stay out of the link


def test_a_bad_link_is_described_part_by_part(credit):
    name, warnings = links.dataset_name({"dataset": "nope"}, datasets.list_builtin(), "mnist-5k")
    assert name == "mnist-5k" and warnings == ["dataset 'nope' is not a built-in dataset (opened mnist-5k)"]
    bad = {"i": "99999", "target": "7", "lam": "1e9", "q": "alpha", "alpha": "2", "std": "x", "C": "-1", "zz": "1"}
    request, warnings = links.read(bad, "german-credit", credit, (-4.0, 2.0), 0.02)
    assert request == links.LinkRequest(dataset="german-credit", log_lam=2.0)
    text = " | ".join(warnings)
    for fragment in ("unknown parameter 'zz'", "instance '99999' is not a row of german-credit (0 to 999",
                     "target '7' is not a class", "λ = 1e+09 is outside the slider's range", "α = '2'",
                     "std = 'x' is not 0 or 1", r"C = '\-1' is not a positive number"):
        assert fragment in text, fragment


def test_a_crafted_link_cannot_put_markdown_on_the_page(credit):
    _, warnings = links.dataset_name({"dataset": "[w](http://e.x) ![x](y) :red[!]"}, datasets.list_builtin(),
                                     "mnist-5k")
    assert warnings[0] == r"dataset '\[w\]\(http\://e\.x\) \!\[x\]\(y\) \:red\[\!\]' is not a built-in dataset (opened mnist-5k)"
    _, warnings = links.dataset_name({"dataset": "x" * 100}, datasets.list_builtin(), "mnist-5k")
    assert warnings[0] == f"dataset '{'x' * 40}…' is not a built-in dataset (opened mnist-5k)"


def test_shown_answers_say_what_the_model_predicts(credit, credit_model):
    what = constraints.what_may_change(credit, constraints.default_table(credit, True), True)
    x0 = credit.X[1]
    slider = view.from_slider(invert(credit_model, x0, 1, 100.0, **what.arguments), credit_model, x0, what)
    assert slider.predicted == int(credit_model.predict(slider.x)) and slider.meets == (slider.predicted == 1)
    assert slider.distance == pytest.approx(math.sqrt(np.sum(what.cost * (slider.x - x0) ** 2)))
    # within the observed ranges p(good) reaches 0.89 at most for this applicant
    result = closest_with_probability(credit_model, x0, 1, 0.85, **what.question_arguments)

    class Answer:  # what ui.state.Answer carries
        question, alpha, lam, lam_note, arguments = "alpha", 0.85, result.lam, "", what.question_arguments

    Answer.result = result
    shown = view.from_answer(Answer, credit_model, x0, what, "good")
    assert shown.meets and shown.predicted == 1 and shown.distance == pytest.approx(result.distance)
    assert shown.lam_text == f"{result.lam:.6g}" and shown.title == "Closest with p(good) ≥ 0.85"
    flip = minimal_flip(credit_model, x0, 1, **what.question_arguments)
    Answer.question, Answer.alpha, Answer.result, Answer.lam = "flip", None, flip, None
    shown = view.from_answer(Answer, credit_model, x0, what, "good")
    assert shown.lam_text == "off path" and shown.meets == (int(credit_model.predict(flip.x)) == 1)


def test_path_distance_is_the_problems_own(credit, credit_model):
    from ui import solve

    what = constraints.what_may_change(credit, constraints.default_table(credit, True), True)
    x0 = credit.X[1]
    path = invert_path(credit_model, x0, 1, np.logspace(-2, 1, 5), **what.arguments)
    expected = [constraints.distance(x, x0, what.cost) for x in path.X]
    np.testing.assert_allclose(solve.path_distance(path, x0, what), expected, rtol=1e-12)


def test_class_regions_partition_the_box_exactly():
    rng = np.random.default_rng(3)
    model = SoftmaxModel(rng.standard_normal((4, 2)) * 2, rng.standard_normal(4))
    low, high = np.array([-3.0, -2.0]), np.array([4.0, 5.0])
    regions = figures.class_regions(model, low, high)

    def area(polygon):
        if len(polygon) < 3:
            return 0.0
        x, y = polygon[:, 0], polygon[:, 1]
        return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    assert sum(area(p) for p in regions) == pytest.approx(np.prod(high - low), rel=1e-12)
    samples = rng.uniform(low, high, size=(2000, 2))
    predicted = model.predict(samples)
    for k, polygon in enumerate(regions):
        inside = np.ones(len(samples), dtype=bool)
        for start, end in zip(polygon, np.roll(polygon, -1, axis=0)):  # counter-clockwise: left of every edge
            edge, offset = end - start, samples - start
            inside &= edge[0] * offset[:, 1] - edge[1] * offset[:, 0] >= -1e-12
        np.testing.assert_array_equal(inside, predicted == k)


def test_teaching_view_has_equal_scales_in_the_problems_distance():
    """On screen (x-pixels per unit times x, y-pixels per unit times y) the segment from x0 to the
    smallest flip meets the boundary at a right angle, whatever the costs."""
    model = SoftmaxModel([[0.0, 0.0], [1.5, 0.7]], [0.0, -0.4])
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((40, 2)) * 2, rng.integers(0, 2, 40)
    x0 = np.array([-1.5, -2.0])
    cost = np.array([0.25, 4.0])
    flip = minimal_flip(model, x0, 1, cost=cost)
    path = invert_path(model, x0, 1, np.logspace(-3, 1, 30), cost=cost)
    fig = figures.decision_regions(model, X, y, ["a", "b"], x0, path.X, flip.x, target=1, cost=cost,
                                   shown_label="smallest flip", flip=True)
    layout = fig.layout
    assert layout.yaxis.scaleanchor == "x" and layout.xaxis.constrain == layout.yaxis.constrain == "domain"
    ratio = layout.yaxis.scaleratio
    segment = (flip.x - x0) * [1.0, ratio]
    a = model.coef[1] - model.coef[0]
    boundary = np.array([-a[1], a[0]]) * [1.0, ratio]
    assert abs(segment @ boundary) <= 1e-9 * np.linalg.norm(segment) * np.linalg.norm(boundary)
    # the regions fill the plotted ranges exactly, and the target's contours are drawn
    regions = [t for t in fig.data if t.type == "scatter" and t.fill == "toself"]
    xs = np.concatenate([t.x for t in regions])
    assert (min(xs), max(xs)) == pytest.approx(tuple(layout.xaxis.range))
    contour = next(t for t in fig.data if t.type == "contour")
    assert contour.contours.start == 0.1 and contour.contours.end == 0.9 and contour.contours.coloring == "lines"
    assert any(t.name == "smallest flip" and t.marker.symbol == "diamond" for t in fig.data)


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
    (source, counterfactual, difference), bound = figures.triptych_images(
        np.zeros(4), np.array([0.0, 0.5, -0.25, 1.0]), (2, 2), pixel=3)
    assert source.shape == (6, 6, 3) and bound == 1.0  # the scale is symmetric, set by the largest change
    assert tuple(source[0, 0]) == (255, 255, 255) and tuple(counterfactual[5, 5]) == (0, 0, 0)
    assert tuple(difference[0, 0]) == (247, 247, 247)  # no change: the white centre
    assert difference[5, 5, 0] > difference[5, 5, 2] and difference[3, 0, 2] > difference[3, 0, 0]  # red +, blue -
    html = figures.probability_table_html(np.array([0.2, 0.8]), np.array([0.6, 0.4]), ["<b>", "1"], 0)
    assert "&lt;b&gt;" in html and "width:60.0%" in html and "width:80.0%" in html  # names escaped, bars scaled
    assert ">0.6000<" in html and ">0.8000<" in html  # the page's one probability format


def test_an_instance_that_already_qualifies_needs_no_lambda(credit, credit_model):
    what = constraints.what_may_change(credit, constraints.default_table(credit, True), True)
    row = int(np.flatnonzero(credit_model.predict_proba(credit.X)[:, 1] > 0.95)[0])
    x0 = credit.X[row]
    result = closest_with_probability(credit_model, x0, 1, 0.9, **what.question_arguments)

    class Answer:
        question, alpha, lam, lam_note, arguments = "alpha", 0.9, None, "x₀ already has that probability", {}

    Answer.result = result
    shown = view.from_answer(Answer, credit_model, x0, what, "good")
    assert result.distance == 0 and shown.lam_text == "—" and shown.meets and shown.distance == 0
