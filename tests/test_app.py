"""Every page through Streamlit's AppTest, and the interactions users rely on."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = ["pages/explore.py", "pages/trajectories.py", "pages/race.py", "pages/teaching.py", "pages/data.py",
         "pages/model.py"]
TIMEOUT = 180


def fresh_app(query=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if query:
        at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at, label_start: str) -> str:
    for m in at.metric:
        if m.label.startswith(label_start):
            return m.value
    raise AssertionError(f"no metric starting with {label_start!r}: {[m.label for m in at.metric]}")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_from_a_fresh_session(page):
    at = fresh_app()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title, "every page has a title"
    assert any("What am I looking at" in e.label for e in at.expander)


def test_default_shows_a_counterfactual_on_the_first_screen():
    at = fresh_app()
    assert at.session_state["dataset_name"] == "mnist-5k"
    assert float(metric(at, "λ")) == pytest.approx(0.1)
    assert float(metric(at, "‖grad E‖")) < 1e-8
    assert not at.warning


def test_moving_the_slider_changes_the_probabilities_and_warm_starts():
    at = fresh_app()
    target_label = next(m.label for m in at.metric if m.label.startswith("p("))
    before = float(metric(at, target_label))
    at.slider(key="_widget_log_lam").set_value(-3.0).run()
    assert not at.exception
    after = float(metric(at, target_label))
    assert after > before  # a smaller lambda buys more probability for the target
    assert float(metric(at, "λ")) == pytest.approx(1e-3)
    at.slider(key="_widget_log_lam").set_value(-2.98).run()
    assert int(metric(at, "Newton iterations")) <= 4  # warm start from the previous solve


def test_choosing_another_target_re_solves():
    at = fresh_app()
    first = next(m.label for m in at.metric if m.label.startswith("p("))
    current = at.session_state["target"]
    other = (current + 3) % 10
    at.selectbox(key="_widget_target").set_value(other).run()
    assert not at.exception
    label = next(m.label for m in at.metric if m.label.startswith("p("))
    assert label != first and label == f"p({other})"
    assert at.query_params["target"] == [str(other)] or at.query_params["target"] == str(other)


def test_state_survives_page_switches():
    at = fresh_app()
    at.slider(key="_widget_log_lam").set_value(-2.5).run()
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/explore.py").run()
    assert at.slider(key="_widget_log_lam").value == pytest.approx(-2.5)


def test_shared_link_restores_the_question():
    at = fresh_app({"dataset": "iris", "i": "120", "target": "0", "lam": "0.01"})
    assert at.session_state["dataset_name"] == "iris"
    assert at.session_state["instance"] == 120 and at.session_state["target"] == 0
    assert float(metric(at, "λ")) == pytest.approx(0.01)
    assert at.info, "tabular data gets a one-sentence reading"


def test_junk_link_falls_back_to_defaults():
    at = fresh_app({"dataset": "../../etc/passwd", "i": "abc", "lam": "-5"})
    assert at.session_state["dataset_name"] == "mnist-5k"


def test_tabular_counterfactual_reads_in_the_users_terms():
    at = fresh_app({"dataset": "german-credit", "i": "1", "target": "1", "lam": "0.01"})
    reading = at.info[0].value
    assert reading.startswith("To be classified as good")
    table = next(d.value for d in at.dataframe if "counterfactual" in d.value.columns)
    assert {"feature", "source", "counterfactual", "change"} <= set(table.columns)
    assert "duration_months" in set(table.feature)


def button(at, label_start: str):
    return next(b for b in at.button if b.label.startswith(label_start))


def test_smallest_flip_button_answers_and_moves_the_slider():
    at = fresh_app({"dataset": "german-credit", "i": "1", "target": "1", "lam": "100"})
    before = at.slider(key="_widget_log_lam").value
    button(at, "Smallest change that flips").click().run()
    assert not at.exception
    answer = at.session_state["answer"][-2]
    assert answer.success and answer.proba.argmax() == 1
    assert any(m.value == "**Smallest change that flips the decision**" for m in at.markdown)
    assert at.slider(key="_widget_log_lam").value != before
    # categorical features are frozen by default and stay so
    dataset = at.session_state["dataset"]
    x0 = dataset.X[1]
    for group in dataset.encoding.categorical:
        assert np.array_equal(answer.x[list(group.columns)], x0[list(group.columns)])


def test_alpha_button_reaches_the_probability_in_standardised_units():
    at = fresh_app({"dataset": "german-credit", "i": "1", "target": "1"})
    at.number_input[0].set_value(0.95)
    button(at, "Closest with p(").click().run()
    assert not at.exception
    answer = at.session_state["answer"][-2]
    assert answer.success and answer.proba[1] >= 0.95 - 1e-9
    assert float(metric(at, "p(good)")) >= 0.95 - 1e-4


def test_images_stay_in_the_pixel_range_by_default():
    at = fresh_app({"lam": "0.001"})
    result = at.session_state["warm_start"][1]
    assert result.method == "projected-newton" and result.success
    assert result.x.min() >= 0.0 and result.x.max() <= 1.0
    at.toggle(key="_widget_pixel_range").set_value(False).run()
    unconstrained = at.session_state["warm_start"][1]
    assert unconstrained.method == "newton" and unconstrained.x.min() < 0.0


def test_teaching_view_switches_to_the_toy_and_moves_with_the_slider():
    at = fresh_app()
    at.switch_page("pages/teaching.py").run()
    at.button[0].click().run()
    assert not at.exception and at.session_state["dataset_name"] == "toy-2d"
    before = metric(at, "counterfactual")
    at.slider(key="_widget_log_lam").set_value(-2.0).run()
    assert metric(at, "counterfactual") != before


def test_model_page_trains_with_new_parameters():
    at = fresh_app({"dataset": "iris"})
    at.switch_page("pages/model.py").run()
    at.select_slider[0].set_value(0.01)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    assert "C=0.01" in at.session_state["model_label"]


UPLOAD_SCRIPT = """
import streamlit as st
from ui import state
state.init_session()
before = st.session_state[state.DATASET].content_hash
message = state.load_upload(st.session_state["payload"], st.session_state["filename"], None, False)
if message:
    st.error(message)
st.write("unchanged" if st.session_state[state.DATASET].content_hash == before else "changed")
"""


@pytest.mark.parametrize("payload,filename,fragment", [
    (b"\x00\x01garbage" * 100, "bad.csv", "binary file"),
    (b"a,b,label\n1,2,x\n3,4,x\n", "one.csv", "only 'x'"),
    (b"", "empty.npz", "is empty"),
])
def test_a_bad_upload_shows_an_error_and_keeps_the_data(payload, filename, fragment):
    at = AppTest.from_string(UPLOAD_SCRIPT, default_timeout=TIMEOUT)
    at.session_state["payload"] = payload
    at.session_state["filename"] = filename
    at.run()
    assert not at.exception
    assert fragment in at.error[0].value
    assert at.markdown[-1].value == "unchanged"


def test_a_good_upload_replaces_the_data():
    csv = "\n".join(["x,y,label"] + [f"{i},{(i * 7) % 5},{'a' if i % 2 else 'b'}" for i in range(40)]).encode()
    at = AppTest.from_string(UPLOAD_SCRIPT, default_timeout=TIMEOUT)
    at.session_state["payload"] = csv
    at.session_state["filename"] = "mine.csv"
    at.run()
    assert not at.exception and not at.error
    assert at.markdown[-1].value == "changed"
    assert at.session_state["dataset_name"] == "upload:mine.csv"


MODEL_SCRIPT = """
import streamlit as st
from ui import state
state.init_session()
before = st.session_state[state.MODEL].fingerprint
message = state.load_model_file(st.session_state["payload"], st.session_state["filename"])
if message:
    st.error(message)
st.write("unchanged" if st.session_state[state.MODEL].fingerprint == before else "changed")
"""


def test_a_model_with_the_wrong_feature_count_is_refused_with_both_numbers():
    from solver import SoftmaxModel

    at = AppTest.from_string(MODEL_SCRIPT, default_timeout=TIMEOUT)
    at.session_state["payload"] = SoftmaxModel(np.eye(3, 5), np.zeros(3)).to_bytes("npz")
    at.session_state["filename"] = "small.npz"
    at.run()
    assert "expects 5 features" in at.error[0].value and "784" in at.error[0].value
    assert at.markdown[-1].value == "unchanged"


def test_a_matching_model_file_is_loaded():
    from solver import SoftmaxModel

    rng = np.random.default_rng(0)
    at = AppTest.from_string(MODEL_SCRIPT, default_timeout=TIMEOUT)
    at.session_state["payload"] = SoftmaxModel(rng.standard_normal((10, 784)), np.zeros(10)).to_bytes("json")
    at.session_state["filename"] = "mine.json"
    at.run()
    assert not at.error and at.markdown[-1].value == "changed"
