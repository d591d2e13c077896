"""The exact recourse question on the Explore page, through Streamlit's AppTest: the answer shown is valid
(checked here against the data, the model's own logits and the link's choices, not against the page's
code), and the card, metrics, sentence, table, front, alternatives and link all show that answer."""

import io
import math

import numpy as np
import pandas as pd
import pytest
from test_app import fresh_app, metric, query

from ui import explain
from ui import recourse as recourse_ui
from ui.state import RecourseAnswer

CREDIT = {"dataset": "german-credit", "i": "1", "target": "1"}
# age locked; duration and credit amount may only fall; savings and checking status may change level
EDITS = ("age_years:change=lock;duration_months:change=fall;credit_amount:change=fall;savings:change=free;"
         "checking_status:change=free")
FALLING = ("duration_months", "credit_amount")
LEVELS_FREE = ("savings", "checking_status")


def ask(at, budget=None):
    if budget is not None:
        at.number_input(key="_widget_recourse_budget").set_value(budget).run()
    next(b for b in at.button if b.key == "recourse_ask").click().run()
    assert not at.exception, at.exception
    answer = at.session_state["answer"]
    assert isinstance(answer, RecourseAnswer)
    return answer


def changed_items(dataset, x0, x) -> list:
    """What differs from x0, by original column: numeric names and group names (independent of the solver)."""
    items = [name for name, j in dataset.encoding.numeric if x[j] != x0[j]]
    items += [g.name for g in dataset.encoding.categorical if not np.array_equal(x[list(g.columns)], x0[list(g.columns)])]
    return items


def assert_valid(at, x, budget, falling=FALLING, locked_numeric=("age_years",), levels_free=LEVELS_FREE, rising=()):
    """Predicted as the target by the model's logits, whole numbers whole, one level per group, locks bit
    for bit, the data's ranges and the directions held, at most ``budget`` changes."""
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    x0 = dataset.X[at.session_state["instance"]]
    target = at.session_state["target"]
    logits = model.coef @ x + model.intercept
    assert np.argmax(logits) == target and np.sort(logits)[-1] > np.sort(logits)[-2]
    assert int(model.predict(x)) == target
    for name, j in dataset.encoding.numeric:
        column = dataset.X[:, j]
        if np.all(column == np.round(column)):
            assert x[j] == round(x[j]), name  # whole, exactly
        assert column.min() <= x[j] <= column.max(), name
        if name in falling:
            assert x[j] <= x0[j], name
        if name in rising:
            assert x[j] >= x0[j], name
        if name in locked_numeric:
            assert x[j].tobytes() == x0[j].tobytes(), name
    for group in dataset.encoding.categorical:
        values = x[list(group.columns)]
        assert set(values.tolist()) <= {0.0, 1.0} and values.sum() == 1.0, group.name
        if group.name not in levels_free:
            assert values.tobytes() == x0[list(group.columns)].tobytes(), group.name
    changed = changed_items(dataset, x0, x)
    assert 1 <= len(changed) <= budget
    return changed


def l2_distance_in_std(dataset, x0, x) -> float:
    """The page's distance computed here: 1/std^2 per numeric column, 1 per one-hot column."""
    cost = np.ones(dataset.n_features)
    std = dataset.X.std(axis=0)
    for _, j in dataset.encoding.numeric:
        cost[j] = 1.0 / std[j] ** 2
    return math.sqrt(np.sum(cost * (x - x0) ** 2))


def change_table(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "counterfactual" in d.value.columns)


def shown_number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def assert_shown_everywhere(at, result, budget, choices=(("age_years", "locked"), ("duration_months", "may only fall"))):
    """Card, metrics, sentence and table say what ``result`` is."""
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    x0, x = dataset.X[at.session_state["instance"]], result.x
    before, after = model.predict_proba(x0)[1], model.predict_proba(x)[1]
    changed = changed_items(dataset, x0, x)
    things = "feature" if budget == 1 else "features"
    assert any(m.value == f"**Cheapest change of at most {budget} {things}**" for m in at.markdown)
    card = next(m.value for m in at.markdown if "HiGHS solve" in m.value)
    assert ("Certified optimal" in card) == bool(result.optimal)
    assert f"{len(changed)} {'feature' if len(changed) == 1 else 'features'} changed" in card
    assert metric(at, "features changed") == str(len(changed))
    assert metric(at, "p(good)") == f"{after:.4f}" and metric(at, "predicted") == "good"
    assert metric(at, "distance (std)") == f"{l2_distance_in_std(dataset, x0, x):.4g}" == f"{result.distance:.4g}"
    assert metric(at, "certified") == ("optimal" if result.optimal else "no") and metric(at, "valid") == "yes"
    sentence = at.info[0].value
    assert sentence.startswith(f"To be classified as good (p(good) from {before:.4f} to {after:.4f}): ")
    for name, j in dataset.encoding.numeric:
        if name in changed:
            unit = {"credit_amount": " DM", "duration_months": " months"}.get(name, "")
            first = shown_number(x0[j]) + (unit if unit == " DM" else "")
            assert f"from {first} to {shown_number(x[j])}{unit}" in sentence, (name, sentence)
    for group in dataset.encoding.categorical:
        if group.name in changed:
            level = group.levels[int(np.argmax(x[list(group.columns)]))]
            assert f"change the {group.name.replace('_', ' ')} from" in sentence and f"to '{level}'" in sentence
    table = change_table(at)
    assert len(table) == len(dataset.encoding.numeric) + len(dataset.encoding.categorical)  # not 61 one-hot rows
    rows = table.set_index("feature")
    for name, j in dataset.encoding.numeric:
        assert rows.at[name, "source"] == shown_number(x0[j]) and rows.at[name, "counterfactual"] == shown_number(x[j])
    for name, choice in choices:
        assert rows.at[name, "may change"] == choice
    assert math.sqrt((table["change (std)"] ** 2).sum()) == pytest.approx(result.distance, rel=1e-9)
    assert set(table.feature[table["change (std)"] > 0]) == set(changed)


def test_recourse_on_german_credit_is_valid_and_agrees_everywhere():
    at = fresh_app({**CREDIT, "edits": EDITS})
    assert not at.warning
    answer = ask(at, budget=2)
    result = answer.result
    assert result.success and answer.choice == 0 and answer.key.budget == 2 and answer.key.metric == "l2"
    assert_valid(at, result.x, 2)
    assert_shown_everywhere(at, result, 2)
    # the front and the alternatives are on the page, and the link carries the question
    assert len(answer.front) == 5 and len(at.get("plotly_chart")) == 1
    assert len(result.alternatives) >= 1
    link = query(at)
    assert link["q"] == "recourse" and link["s"] == "2" and link["metric"] == "l2"
    assert "duration_months:change=fall" in link["edits"]
    # the CSV is the table on screen: one row per original column
    labels = [d.label for d in at.get("download_button")]
    assert labels[:2] == ["Change table (CSV)", "Encoded features (CSV)"]
    table = change_table(at)
    back = pd.read_csv(io.BytesIO(explain.table_csv(table)), dtype=str, keep_default_na=False)
    assert len(back) == 20 and list(back.columns) == list(table.columns)
    pd.testing.assert_frame_equal(back.drop(columns="change (std)"), table.drop(columns="change (std)").astype(str))


def test_a_point_of_the_front_and_an_alternative_each_become_the_answer():
    at = fresh_app({**CREDIT, "edits": EDITS})
    front = ask(at, budget=2).front
    at.selectbox(key="recourse_front_pick_2").set_value(1).run()  # the selectbox beside the chart
    assert not at.exception
    one = at.session_state["answer"]
    assert one.key.budget == 1 and at.number_input(key="_widget_recourse_budget").value == 1 and query(at)["s"] == "1"
    assert one.result.distance == pytest.approx(front[0].distance, rel=1e-6)  # the point clicked
    assert_valid(at, one.result.x, 1)
    assert_shown_everywhere(at, one.result, 1)

    at.selectbox(key="recourse_front_pick_1").set_value(3).run()
    three = at.session_state["answer"]
    assert three.key.budget == 3 and three.result.distance == pytest.approx(front[2].distance, rel=1e-6)
    assert three.result.distance <= one.result.distance + 1e-12
    alternatives = three.result.alternatives
    assert alternatives
    at.selectbox(key="recourse_alternative_0").set_value(1).run()
    assert not at.exception
    picked = at.session_state["answer"]
    assert picked.choice == 1 and picked.shown is alternatives[0]
    changed = assert_valid(at, picked.shown.x, 3)
    assert_shown_everywhere(at, picked.shown, 3)
    dataset = at.session_state["dataset"]
    x0 = dataset.X[1]
    assert not set(changed_items(dataset, x0, three.result.x)) <= set(changed)  # keeps one earlier change at x0
    assert picked.shown.distance >= three.result.distance - 1e-12
    assert any("alternative 1" in m.value for m in at.markdown)


def test_a_slider_move_dismisses_the_answer_and_solves_no_recourse(monkeypatch):
    calls = []
    real_recourse, real_front = recourse_ui.recourse, recourse_ui.recourse_front
    monkeypatch.setattr(recourse_ui, "recourse", lambda *a, **k: calls.append("recourse") or real_recourse(*a, **k))
    monkeypatch.setattr(recourse_ui, "recourse_front", lambda *a, **k: calls.append("front") or real_front(*a, **k))
    recourse_ui.SHARED_ANSWERS.clear()
    at = fresh_app({**CREDIT, "edits": EDITS})
    ask(at, budget=2)
    assert calls == ["recourse", "front"]
    ask(at)  # asked again: from the content-keyed cache
    assert calls == ["recourse", "front"]
    for log_lam in (-2.0, -1.5, 0.5):
        at.slider(key="_widget_log_lam").set_value(log_lam).run()
        assert not at.exception and at.session_state["answer"] is None
    assert calls == ["recourse", "front"]
    assert float(metric(at, "‖grad E‖")) < 1e-6 and "q" not in query(at)


def test_whole_numbers_can_be_unticked_and_l1_changes_the_distance():
    at = fresh_app({**CREDIT, "edits": EDITS})
    whole = ask(at, budget=2).result
    at = fresh_app({**CREDIT, "edits": EDITS + ";duration_months:int=0;credit_amount:int=0"})
    relaxed = ask(at, budget=2).result
    assert relaxed.success and relaxed.distance <= whole.distance + 1e-12  # fewer constraints, never dearer
    assert_valid(at, relaxed.x, 2) if np.all(relaxed.x == np.round(relaxed.x)) else None
    dataset = at.session_state["dataset"]
    j = [dataset.feature_names.index(f) for f in ("duration_months", "credit_amount")]
    assert any(relaxed.x[i] != round(relaxed.x[i]) for i in j)  # ... and it uses that freedom here

    at.selectbox(key="_widget_recourse_metric").set_value("l1").run()
    l1 = ask(at, budget=2)
    assert l1.key.metric == "l1" and l1.result.success
    x0, x = dataset.X[1], l1.result.x
    table = change_table(at)
    assert table["change (MADs, l1)"].sum() == pytest.approx(l1.result.distance, rel=1e-9)  # l1 shares add up
    assert metric(at, "distance (MADs, l1)") == f"{l1.result.distance:.4g}"
    X = dataset.X
    mad = np.median(np.abs(X - np.median(X, axis=0)), axis=0)
    expected = sum(abs(x[j] - x0[j]) / (mad[j] if mad[j] > 0 else X[:, j].std()) for _, j in dataset.encoding.numeric)
    expected += 0.5 * np.abs(x - x0)[[c for g in dataset.encoding.categorical for c in g.columns]].sum()
    assert l1.result.distance == pytest.approx(expected, rel=1e-9)  # 1/MAD, and a level change costs 1
    assert query(at)["metric"] == "l1"


def test_may_only_rise_binds_where_the_cheapest_change_would_fall():
    at = fresh_app({**CREDIT, "edits": EDITS})
    falling = ask(at, budget=2).result
    dataset = at.session_state["dataset"]
    duration = dataset.feature_names.index("duration_months")
    assert falling.x[duration] < dataset.X[1][duration]  # left free to fall, the duration is shortened
    rising = EDITS.replace("duration_months:change=fall", "duration_months:change=rise")
    at = fresh_app({**CREDIT, "edits": rising})
    table = next(d.value for d in at.dataframe if "whole numbers" in d.value.columns)
    assert table.set_index("feature").at["duration_months", "may change"] == "may only rise"  # the editor shows it
    answer = ask(at, budget=2).result
    assert answer.success and answer.distance > falling.distance
    assert_valid(at, answer.x, 2, falling=("credit_amount",), rising=("duration_months",))
    assert_shown_everywhere(at, answer, 2, choices=(("age_years", "locked"), ("duration_months", "may only rise")))


def test_a_recourse_link_gives_the_recipient_the_same_answer():
    sender = fresh_app({**CREDIT, "edits": EDITS})
    sender.selectbox(key="_widget_recourse_metric").set_value("l1").run()
    answer = ask(sender, budget=3)
    link = query(sender)
    assert link["q"] == "recourse" and link["s"] == "3" and link["metric"] == "l1"
    recipient = fresh_app(link)
    again = recipient.session_state["answer"]
    assert isinstance(again, RecourseAnswer) and again.key.budget == 3 and again.key.metric == "l1"
    np.testing.assert_array_equal(again.result.x, answer.result.x)
    for label in ("p(good)", "distance (MADs, l1)", "features changed", "certified"):
        assert metric(recipient, label) == metric(sender, label)
    assert recipient.info[0].value == sender.info[0].value


def test_an_unreachable_target_is_said_in_words():
    locks = ";".join(f"{f}:change=lock" for f in ("duration_months", "credit_amount", "installment_rate_pct_income",
                                                   "residence_since_years", "age_years", "existing_credits",
                                                   "people_liable"))
    at = fresh_app({**CREDIT, "edits": locks})
    answer = ask(at, budget=3)
    assert not answer.result.success
    warning = at.warning[0].value
    assert warning.startswith("Cheapest change of at most 3 features: ") and answer.result.message in warning
    assert not at.get("plotly_chart")


def test_the_sparse_adversarial_example_changes_at_most_s_pixels():
    at = fresh_app({"lam": "0.1"})
    at.number_input(key="_widget_recourse_pixels").set_value(12).run()
    next(b for b in at.button if b.key == "recourse_ask").click().run()
    assert not at.exception
    answer = at.session_state["answer"]
    result, dataset, model = answer.result, at.session_state["dataset"], at.session_state["model"]
    x0, x = dataset.X[0], result.x
    assert result.success and answer.key.metric == "l1" and answer.front == ()
    assert int(model.predict(x)) == at.session_state["target"]
    assert 1 <= np.count_nonzero(x != x0) <= 12 and x.min() >= 0.0 and x.max() <= 1.0
    assert metric(at, "pixels changed") == str(np.count_nonzero(x != x0))
    assert metric(at, "distance (pixels, l1)") == f"{np.abs(x - x0).sum():.4g}"
    assert any(m.value == "**Cheapest change of at most 12 pixels**" for m in at.markdown)
    assert at.info[0].value.startswith(f"Changing {np.count_nonzero(x != x0)} pixels makes the model predict")
    assert [d.label for d in at.get("download_button")] == ["Counterfactual (CSV)", "Counterfactual (PNG)"]
    assert query(at)["q"] == "recourse" and query(at)["s"] == "12" and "metric" not in query(at)
