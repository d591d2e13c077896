"""The Explore page's lambda slider through Streamlit's AppTest, which runs no JavaScript.

Under AppTest the live slider cannot run, so the page shows Streamlit's slider and the server draws the
whole answer (the fallback users get where the live view is off). With the browser check forced on, the
page mounts the component (AppTest keeps it as an unknown element whose payload can be read) and the server
draws only its part of the slider's answer; what it sends to the page is checked byte by byte.
"""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_app import fresh_app, metric

import solver
import ui.solve
from ui import constraints, live_slider, view

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 180
SERVER_LINE = "The server's solve at λ = "


def components(at) -> list:
    """The live slider components on the page (AppTest knows them only as unknown elements)."""
    return [e for e in at.main if type(e).__name__ == "UnknownElement"
            and e.proto.DESCRIPTOR.name == "BidiComponent"]


def header(element) -> tuple[dict, int]:
    """The JSON header the component's payload carries, and the payload's length."""
    data = element.proto.bytes
    (length,) = struct.unpack("<I", data[:4])
    return json.loads(data[4:4 + length].decode()), len(data)


@pytest.fixture
def count_solves(monkeypatch):
    """How many times the page calls solver.invert (the slider's solve) and builds a live payload."""
    calls = {"invert": 0, "payload": 0}
    invert, build = ui.solve.invert, live_slider.build_payload

    def counting_invert(*args, **kwargs):
        calls["invert"] += 1
        return invert(*args, **kwargs)

    def counting_build(*args, **kwargs):
        calls["payload"] += 1
        return build(*args, **kwargs)

    monkeypatch.setattr(ui.solve, "invert", counting_invert)
    monkeypatch.setattr(live_slider, "build_payload", counting_build)
    return calls


def test_without_javascript_the_page_works_with_the_server_slider(count_solves):
    at = fresh_app()
    assert components(at) == []  # nothing is mounted that could not run
    assert len(at.slider) == 1 and at.slider[0].key == "_widget_log_lam"
    assert count_solves["payload"] == 0  # no payload is built for a page that cannot use it
    # the server draws the whole answer: the metrics, the image and the probabilities
    assert float(metric(at, "λ")) == pytest.approx(0.1)
    assert at.image and any("probability" in m.value.lower() or "<table" in m.value for m in at.markdown)
    before = metric(at, "p(5)")
    count_solves["invert"] = 0
    at.slider(key="_widget_log_lam").set_value(-2.0).run()
    assert not at.exception
    assert count_solves["invert"] == 1  # a slider move solves once, and nothing else
    assert float(metric(at, "λ")) == pytest.approx(0.01) and metric(at, "p(5)") != before
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    reference = solver.invert(model, dataset.X[0], 5, 0.01, bounds=(0.0, 1.0))
    assert metric(at, "p(5)") == view.format_proba(float(reference.proba[5]))


def test_without_javascript_moving_the_slider_dismisses_a_questions_answer():
    at = fresh_app()
    next(b for b in at.button if b.label.startswith("Smallest change")).click().run()
    assert metric(at, "valid") == "yes" and at.session_state["answer"] is not None
    at.slider(key="_widget_log_lam").set_value(-1.5).run()
    assert at.session_state["answer"] is None
    assert float(metric(at, "λ")) == pytest.approx(10 ** -1.5, rel=1e-3)


@pytest.fixture
def live(monkeypatch):
    """The page as a browser gets it: the live slider's check forced on (AppTest runs no JavaScript)."""
    monkeypatch.setattr(live_slider, "can_run_in_browser", lambda: True)


def server_line(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith(SERVER_LINE))


def test_with_the_live_slider_the_server_draws_only_its_part_and_a_move_solves_once(live, count_solves):
    at = fresh_app()
    (component,) = components(at)
    first, first_bytes = header(component)
    assert not at.slider and not at.image  # the component draws the slider, the metrics, the images, the bars
    assert not any(m.label in ("λ", "p(5)", "predicted") for m in at.metric)
    assert first["with_arrays"] and first["module"] == (live_slider.WEB / "component.js").read_text()
    assert first["log_lam"]["value"] == -1.0 and first["answer"] is None and first["mode"] == "projected"
    assert first["distance_label"] == "distance ‖x − x₀‖"
    dataset, model = at.session_state["dataset"], at.session_state["model"]
    reference = solver.invert(model, dataset.X[0], 5, 0.1, bounds=(0.0, 1.0))
    assert server_line(at).startswith(f"{SERVER_LINE}0.1: p(5) = {view.format_proba(float(reference.proba[5]))}, "
                                      f"predicted {int(model.predict(reference.x))}, distance ‖x − x₀‖ = "
                                      f"{view.format_distance(float(np.linalg.norm(reference.x - dataset.X[0])))} (")
    assert [b.label for b in at.get("download_button")] == ["Counterfactual (CSV)", "Counterfactual (PNG)"]

    # What a release does (the component's callback writes the lambda, then the fragment reruns): one solve,
    # no new payload. (AppTest reruns the whole page, which sends the arrays again; a fragment rerun sends the
    # header alone: see the harness test below.)
    count_solves["invert"] = count_solves["payload"] = 0
    at.session_state["log_lam"] = -2.0
    at.run()
    assert not at.exception
    assert count_solves == {"invert": 1, "payload": 0}
    moved, _ = header(components(at)[0])
    assert moved["key"] == first["key"] and moved["log_lam"]["value"] == -2.0
    assert server_line(at).startswith(f"{SERVER_LINE}0.01: ")


def test_a_rerun_that_only_moves_lambda_sends_the_header_alone(live):
    """The harness renders the live slider without ever forgetting what the page holds, as a fragment rerun
    on Explore does: the arrays and the module go once, then a few hundred bytes per move."""
    at = AppTest.from_file(str(ROOT / "tests" / "apps" / "live_slider_app.py"), default_timeout=TIMEOUT)
    at.query_params["scenario"] = "mnist"
    at.run()
    assert not at.exception, at.exception
    first, first_bytes = header(components(at)[0])
    assert first["with_arrays"] and "module" in first
    at.session_state["log_lam"] = -2.0
    at.run()
    moved, moved_bytes = header(components(at)[0])
    assert not moved["with_arrays"] and "module" not in moved and moved["module_key"] == first["module_key"]
    assert moved["key"] == first["key"] and moved["log_lam"]["value"] == -2.0
    assert moved_bytes < 1500 < 100_000 < first_bytes
    # a page that lost them (remounted) asks with "missing"; the server's callback then forgets what was sent
    at.session_state[live_slider.sent_key("live_lambda")] = None
    at.run()
    again, _ = header(components(at)[0])
    assert again["with_arrays"] and "module" in again


def test_with_the_live_slider_a_questions_answer_is_shown_by_the_server_and_named_to_the_component(live):
    at = fresh_app()
    next(b for b in at.button if b.label.startswith("Smallest change")).click().run()
    (component,) = components(at)
    sent, _ = header(component)
    assert sent["answer"] == {"title": "Smallest change that flips the decision", "box": ".st-key-question_answer"}
    # the question's answer is the one on screen, drawn in full by the server
    assert metric(at, "valid") == "yes" and metric(at, "λ") == "off path"
    assert at.image and not any(c.value.startswith(SERVER_LINE) for c in at.caption)
    # the release's callback (ui/live_slider.render) moves lambda and dismisses the answer
    at.session_state["answer"] = None
    at.run()
    sent, _ = header(components(at)[0])
    assert sent["answer"] is None and server_line(at)


def test_with_the_live_slider_tabular_distances_are_the_problems_own(live):
    at = fresh_app({"dataset": "german-credit", "i": "3", "lam": "0.1"})
    (component,) = components(at)
    sent, _ = header(component)
    dataset, model, what = at.session_state["dataset"], at.session_state["model"], at.session_state["constraints"]
    # the observed ranges are on by default for tables: projected Newton in the browser too
    expected = "reduced" if what.arguments.get("bounds") is None else "projected"
    assert sent["mode"] == expected and sent["distance_label"] == "distance (std)"
    assert "lift" not in sent["arrays"]  # no image to draw: no D-sized lift
    target = at.session_state["target"]
    reference = solver.invert(model, dataset.X[3], target, 0.1, **what.arguments)
    distance = constraints.distance(reference.x, dataset.X[3], what.cost)
    assert f"distance (std) = {view.format_distance(distance)} (" in server_line(at)
    assert at.info  # the reading of the changes, and their table, stay the server's
    assert any("counterfactual" in d.value.columns for d in at.dataframe)


def test_where_the_live_view_is_off_the_page_says_why_and_shows_the_server_slider(live, monkeypatch):
    monkeypatch.setattr(live_slider, "MAX_PROJECTED_WORK", 10.0)
    original = live_slider.build_payload
    monkeypatch.setattr(live_slider, "build_payload",
                        lambda *a, **k: original(*a, **dict(k, max_projected_work=10.0)))
    at = fresh_app()
    assert components(at) == [] and len(at.slider) == 1
    assert any(c.value.startswith("The live view is off: with feature ranges") for c in at.caption)
    assert float(metric(at, "λ")) == pytest.approx(0.1)
