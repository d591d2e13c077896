"""The Audit page through Streamlit's AppTest: each question on German credit, every number shown checked
against the single-row functions asked of every row (not against the page's own helpers); no stale audit
after the table, the model or the data changed; the row links and the in-session button open the right
applicant on Explore with the same answer."""

from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd
import pytest
from test_app import fresh_app, metric

from solver import closest_with_probability, invert, minimal_flip
from ui import constraints

CREDIT = {"dataset": "german-credit"}
# age locked; duration and credit amount may only fall (a bound at each applicant's own value)
EDITS = "age_years:change=lock;duration_months:change=fall;credit_amount:change=fall"
GOOD = 1


def audit_page(query=None, question=None, alpha=None, log_lam=None, run=True):
    at = fresh_app(CREDIT if query is None else query)
    at.switch_page("pages/audit.py").run()
    assert not at.exception, at.exception
    if question is not None:
        at.radio(key="_widget_audit_question").set_value(question).run()
    if alpha is not None:
        at.number_input(key="_widget_alpha").set_value(alpha).run()
    if log_lam is not None:
        at.slider(key="_widget_audit_log_lam").set_value(log_lam).run()
    if run:
        run_audit(at)
    return at


def run_audit(at):
    next(b for b in at.button if b.key == "audit_run").click().run()
    assert not at.exception, at.exception


def frame(at, first_column: str) -> pd.DataFrame:
    """The dataframe on the page whose columns include ``first_column``."""
    return next(d.value for d in at.dataframe if first_column in d.value.columns)


def single_row_answers(at, question, alpha=None, lam=None, target=GOOD):
    """Every row asked by the single-row function, with Explore's arguments for that row: (has recourse,
    distance) per row."""
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    settings = at.session_state["constraints"]
    has, distance = [], []
    for x0 in dataset.X:
        what = constraints.for_instance(settings, x0)
        if question == "flip":
            r = minimal_flip(model, x0, target, **what.question_arguments)
            ok = r.success
        elif question == "probability":
            r = closest_with_probability(model, x0, target, alpha, **what.question_arguments)
            ok = r.success and r.proba[target] >= alpha
        else:
            r = invert(model, x0, target, lam, **what.arguments)
            ok = r.success and int(model.predict(r.x)) == target
        has.append(ok)
        distance.append(float(np.sqrt(np.sum(what.cost * (r.x - x0) ** 2))) if ok else np.nan)
    return np.array(has), np.array(distance)


def personal_status(dataset) -> np.ndarray:
    group = next(g for g in dataset.encoding.categorical if g.name == "personal_status_sex")
    return np.asarray(group.levels, dtype=object)[np.argmax(dataset.X[:, list(group.columns)], axis=1)]


def test_the_audit_page_runs_from_a_fresh_session_and_asks_before_it_runs():
    at = audit_page(query={}, run=False)  # the default, MNIST-5k
    assert at.title[0].value == "Audit recourse over the whole dataset"
    assert any("What am I looking at" in e.label for e in at.expander)
    assert any("run the audit" in i.value for i in at.info) and not at.metric
    assert next(b for b in at.button if b.key == "audit_run").label == "Run the audit over all 5,000 rows"


@pytest.mark.parametrize("question, alpha, log_lam, edits", [
    ("flip", None, None, None),
    ("flip", None, None, EDITS),
    ("probability", 0.8, None, EDITS),
    ("lam", None, -1.0, EDITS),
])
def test_each_question_shows_the_single_row_answers_of_every_row(question, alpha, log_lam, edits):
    query = dict(CREDIT, edits=edits) if edits else CREDIT
    at = audit_page(query, question, alpha, log_lam)
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    lam = None if log_lam is None else 10.0 ** log_lam
    has, distance = single_row_answers(at, question, alpha, lam)
    rejected = model.predict(dataset.X) != GOOD  # the rows summarised by default
    assert metric(at, "rows summarised") == f"{rejected.sum():,}"
    assert metric(at, "without recourse") == f"{(~has[rejected]).sum():,}"
    assert metric(at, "with recourse") == f"{has[rejected].mean():.1%}"
    median = np.median(distance[rejected & has])
    assert float(metric(at, "median cost")) == pytest.approx(median, rel=5e-4)  # shown to 4 digits

    rows = frame(at, "p(target) after").set_index("row")
    assert list(rows.index) == list(np.flatnonzero(rejected))
    shown_has = (rows["status"] == "recourse").to_numpy()
    np.testing.assert_array_equal(shown_has, has[rejected])
    np.testing.assert_allclose(rows["distance"].to_numpy()[shown_has], distance[rejected & has], rtol=1e-6, atol=1e-9)

    groups = frame(at, "median / lowest median").set_index("personal_status_sex")
    status = personal_status(dataset)
    lowest = np.inf
    for level in np.unique(status[rejected]):
        members = rejected & (status == level)
        assert groups.loc[level, "rows"] == members.sum()
        assert groups.loc[level, "without recourse"] == (~has[members]).sum()
        assert groups.loc[level, "with recourse %"] == pytest.approx(100 * has[members].mean())
        level_median = np.median(distance[members & has])
        assert groups.loc[level, "median"] == pytest.approx(level_median, rel=1e-6)
        lowest = min(lowest, level_median)
    np.testing.assert_allclose(groups["median / lowest median"], groups["median"] / lowest, rtol=1e-6)
    assert float(metric(at, "cost disparity")) == pytest.approx(groups["median"].max() / lowest, rel=5e-3)

    if edits:  # the answers kept every lock bit for bit and every direction at the row's own value
        kept = at.session_state["audit"].rows
        age, duration = dataset.feature_names.index("age_years"), dataset.feature_names.index("duration_months")
        answered = (kept["status"] != "no answer").to_numpy()
        assert (kept["answer: age_years"].to_numpy()[answered] == dataset.X[answered, age]).all()
        assert (kept["answer: duration_months"].to_numpy()[answered] <= dataset.X[answered, duration]).all()
        assert any("each row's own value is its bound" in c.value for c in at.caption)


def test_every_row_counts_rows_that_already_qualify_at_cost_zero():
    at = audit_page(run=True)
    at.radio(key="_widget_audit_rows").set_value("all").run()
    assert not at.exception
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    assert metric(at, "rows summarised") == f"{dataset.n_samples:,}"
    rows = frame(at, "p(target) after").set_index("row")
    already = model.predict(dataset.X) == GOOD
    assert (rows["distance"].to_numpy()[already] == 0).all()


def test_splitting_by_age_uses_age_bands():
    at = audit_page()
    at.selectbox(key="_widget_audit_group").set_value("age_years").run()
    assert not at.exception
    groups = frame(at, "median / lowest median")
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    ages = dataset.X[model.predict(dataset.X) != GOOD, dataset.feature_names.index("age_years")]
    counts = dict(zip(groups["age_years"], groups["rows"]))
    assert counts["< 25"] == (ages < 25).sum() and counts["≥ 65"] == (ages >= 65).sum()
    assert counts["[25, 35)"] == ((ages >= 25) & (ages < 35)).sum()


def test_no_stale_audit_after_the_table_the_model_or_the_data_changed():
    at = audit_page()
    first = metric(at, "median cost")
    at.toggle(key="_widget_standardised").set_value(False).run()  # what may change: distances in raw units
    assert not at.exception
    assert not [m for m in at.metric if m.label == "median cost"]
    assert any("what may change changed" in i.value for i in at.info)
    run_audit(at)
    assert metric(at, "median cost") != first and not at.info

    table = at.session_state["constraints"].table.copy()
    table.loc[table.feature == "duration_months", "may change"] = constraints.FALL  # what the editor hands back
    at.session_state["constraints"] = constraints.what_may_change(at.session_state["dataset"], table, False)
    at.run()
    assert not [m for m in at.metric if m.label == "median cost"]  # directions alone change the key too
    run_audit(at)

    at.switch_page("pages/model.py").run()  # another model
    at.select_slider[0].set_value(0.01)
    next(b for b in at.button if b.label == "Train").click().run()
    assert "C=0.01" in at.session_state["model_label"]
    at.switch_page("pages/audit.py").run()
    assert not [m for m in at.metric if m.label == "median cost"]
    assert any("the model changed" in i.value for i in at.info)
    run_audit(at)

    at.switch_page("pages/data.py").run()  # other data
    at.selectbox[0].set_value("penguins").run()
    next(b for b in at.button if b.label == "Load this dataset").click().run()
    at.switch_page("pages/audit.py").run()
    assert not at.exception
    assert not [m for m in at.metric if m.label == "median cost"]
    assert any("the data" in i.value for i in at.info)

    other = fresh_app(CREDIT)  # another session never sees this one's audit
    assert "audit" not in other.session_state or other.session_state["audit"] is None


def test_a_row_link_opens_that_applicant_on_explore_with_the_same_answer():
    at = audit_page(dict(CREDIT, edits=EDITS), "probability", 0.8)
    rows = frame(at, "Explore")
    row = rows[rows["status"] == "recourse"].iloc[3]
    href = row["Explore"]
    assert href.startswith("./?")
    link = dict(parse_qsl(urlsplit(href).query))
    assert link["i"] == str(row["row"]) and link["target"] == str(GOOD)
    assert link["q"] == "alpha" and float(link["alpha"]) == 0.8 and link["dataset"] == "german-credit"
    explore = fresh_app(link)
    assert not explore.warning
    answer = explore.session_state["answer"]
    assert explore.session_state["instance"] == row["row"] and answer.question == "alpha" and answer.alpha == 0.8
    assert answer.result.distance == pytest.approx(row["distance"], rel=1e-6)


def test_open_on_explore_asks_the_same_question_of_that_row_in_this_session():
    at = audit_page(question="flip")
    rows = frame(at, "p(target) after")
    row = rows[rows["status"] == "recourse"].iloc[5]
    at.selectbox(key="_widget_audit_open").set_value(int(row["row"])).run()
    next(b for b in at.button if b.key == "audit_open_button").click().run()
    assert not at.exception
    assert at.session_state["instance"] == row["row"] and at.session_state["target"] == GOOD
    answer = at.session_state["answer"]
    assert answer.question == "flip" and answer.result.distance == pytest.approx(row["distance"], rel=1e-6)
    assert at.title[0].value == "Explore counterfactuals"


def test_the_audit_of_images_runs_with_each_rows_runner_up_and_says_what_is_slow():
    at = audit_page({"dataset": "mnist-5k"}, run=False)
    at.radio(key="_widget_audit_question").set_value("probability").run()
    assert any("pixel range the probability question is the slow one" in w.value for w in at.warning)
    next(b for b in at.button if b.key == "audit_use_flip").click().run()
    assert at.session_state["audit_question"] == "flip" and not at.warning
    run_audit(at)
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    assert metric(at, "rows summarised") == f"{dataset.n_samples:,}"  # no row is predicted as its runner-up
    rows = frame(at, "p(target) after").set_index("row")
    proba = model.predict_proba(dataset.X)
    for i in range(0, dataset.n_samples, 500):  # a sample, against the single-row function
        target = int(np.argsort(proba[i])[-2])
        single = minimal_flip(model, dataset.X[i], target, bounds=(0.0, 1.0))
        assert rows.loc[i, "target"] == str(model.classes[target])
        assert rows.loc[i, "distance"] == pytest.approx(single.distance, rel=1e-6)
    assert metric(at, "without recourse") == "0"


def test_an_upload_is_audited_without_links_and_opens_on_explore_by_the_button():
    rows = [f"{i},{(i * 7) % 5},{'u' if i % 3 else 'v'},{'a' if (i + (i * 7) % 5) % 2 else 'b'}" for i in range(60)]
    csv = "\n".join(["x,y,kind,label"] + rows).encode()
    at = fresh_app()
    at.switch_page("pages/data.py").run()
    at.file_uploader[0].set_value(("mine.csv", csv, "text/csv")).run()
    next(b for b in at.button if b.label == "Use this upload").click().run()
    assert at.session_state["dataset_name"] == "upload:mine.csv"
    at.switch_page("pages/audit.py").run()
    run_audit(at)
    table = frame(at, "p(target) after")
    assert "Explore" not in table.columns and len(table) >= 1
    assert any("cannot travel in a link" in c.value for c in at.caption)
    answered = table[table["status"] == "recourse"].iloc[0]
    row = int(answered["row"])
    at.selectbox(key="_widget_audit_open").set_value(row).run()
    next(b for b in at.button if b.key == "audit_open_button").click().run()
    assert not at.exception and at.session_state["instance"] == row
    answer = at.session_state["answer"]
    assert answer.result.success and answer.result.distance == pytest.approx(answered["distance"], rel=1e-6)


def test_open_on_explore_after_a_fixed_lambda_audit_puts_the_slider_at_that_lambda():
    at = audit_page(question="lam", log_lam=-1.5)
    rows = frame(at, "p(target) after")
    row = rows[rows["status"] == "recourse"].iloc[2]
    at.selectbox(key="_widget_audit_open").set_value(int(row["row"])).run()
    next(b for b in at.button if b.key == "audit_open_button").click().run()
    assert not at.exception
    assert at.session_state["log_lam"] == pytest.approx(-1.5) and at.session_state["answer"] is None
    slider = at.session_state["warm_start"].result  # the slider's own solve on Explore
    x0 = at.session_state["dataset"].X[int(row["row"])]
    distance = np.sqrt(np.sum(at.session_state["constraints"].cost * (slider.x - x0) ** 2))
    assert distance == pytest.approx(row["distance"], rel=1e-6)
