"""The live slider alone in a real browser, in the harness (tests/apps/live_slider_app.py: the component and,
below it, the server's answer in full precision): on the RCV1-sized model and a projected tabular problem,
drag the thumb with the mouse in small steps and check that the view follows during the drag, that what it
shows equals Python's solver.invert at the lambda it shows, and that after release the server holds the
same lambda and probabilities; arrow keys move both. The Explore page's own drags, the question's answer, fast
arrow keys and the README's frames are in tests/test_browser.py.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from browser_harness import serving, streamlit_command
from test_browser import PROBA_TOL, assert_matches_python

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "apps"))
import live_scenarios  # noqa: E402

STEPS, STEP_PX = 36, 7  # a drag of about 250 px (1.8 decades of lambda) in small mouse moves
START_LOG_LAM = 1.2  # MNIST's digit turns from 0 into the target 5 along the drag
SERVER_TEXT = '[data-testid="stText"]'


@pytest.fixture(scope="module")
def harness_url():
    with serving(streamlit_command("tests/apps/live_slider_app.py")) as url:
        yield url


def open_scenario(browser, harness_url, name):
    page = browser.new_page(viewport={"width": 900, "height": 1000})
    page.goto(f"{harness_url}/?scenario={name}&log_lam={START_LOG_LAM}")
    page.wait_for_selector(".live-slider[data-frames]", timeout=120_000)
    page.wait_for_selector(SERVER_TEXT, timeout=120_000)
    return page


def shown(page) -> dict:
    """What the component shows (its root's data attributes) and what the server shows, in one round trip."""
    return page.evaluate("""() => {
        const root = document.querySelector('.stBidiComponent [data-testid="stBidiComponentIsolated"]')
            .shadowRoot.querySelector('.live-slider');
        const canvas = root.querySelectorAll('.live-triptych canvas')[1];
        return {...root.dataset, server: document.querySelector('[data-testid="stText"]').innerText,
                pixels: canvas ? canvas.toDataURL() : null};
    }""")


def thumb_position(page):
    """Where the thumb is on screen, from the range input's box and value."""
    box = page.locator(".live-slider input[type=range]").bounding_box()
    low, high, value = page.locator(".live-slider input[type=range]").evaluate(
        "i => [Number(i.min), Number(i.max), Number(i.value)]")
    half_thumb = 8
    x = box["x"] + half_thumb + (value - low) / (high - low) * (box["width"] - 2 * half_thumb)
    return x, box["y"] + box["height"] / 2


@pytest.mark.parametrize("name", ["text", "german-ranges"])
def test_dragging_solves_in_the_browser_and_the_server_follows_on_release(browser, harness_url, name):
    """The RCV1-sized model (K = 51, D = 47236: reduced Newton with no D-sized array in the page) and a
    projected tabular problem; the Explore page's own drags are in tests/test_browser.py."""
    scenario = live_scenarios.build(name)
    page = open_scenario(browser, harness_url, name)
    first = shown(page)
    server = json.loads(first["server"])
    assert server["fingerprint"] == scenario.model.fingerprint  # the browser solves the test's own model
    assert server["mode"] == ("projected" if "bounds" in scenario.arguments else "reduced")
    if name == "text":
        assert server["payload_bytes"] < 60_000  # K r + 2 K floats and a header, whatever D is
    assert_matches_python(scenario, first)

    x, y = thumb_position(page)
    page.mouse.move(x, y)
    page.mouse.down()
    samples = []
    for _ in range(STEPS):
        x -= STEP_PX  # leftwards: smaller lambda, bolder change
        page.mouse.move(x, y)
        samples.append(shown(page))

    # The view changed at every move while the server heard nothing: it still shows the first answer.
    lams = [s["logLam"] for s in samples]
    assert len(set(lams)) >= STEPS - 4, lams
    assert int(samples[-1]["frames"]) - int(first["frames"]) >= STEPS - 4
    assert all(s["server"] == first["server"] for s in samples)
    assert float(samples[-1]["logLam"]) < float(first["logLam"]) - 1.0
    for sample in samples[:: STEPS // 6]:
        assert_matches_python(scenario, sample)

    page.mouse.up()
    page.wait_for_function("(before) => document.querySelector('[data-testid=\"stText\"]').innerText !== before",
                           arg=first["server"], timeout=60_000)
    released = shown(page)
    server = json.loads(released["server"])
    assert server["log_lam"] == float(released["logLam"]) == float(samples[-1]["logLam"])
    assert server["lam"] == pytest.approx(float(released["lam"]), rel=4 * np.finfo(float).eps)
    assert np.abs(np.array(server["proba"]) - np.array(json.loads(released["proba"]))).max() <= PROBA_TOL
    page.close()


def test_arrow_keys_move_the_live_view_and_the_server(browser, harness_url):
    scenario = live_scenarios.build("german")
    page = open_scenario(browser, harness_url, "german")
    before = shown(page)
    page.locator(".live-slider input[type=range]").focus()
    for _ in range(3):
        previous = shown(page)["server"]
        page.keyboard.press("ArrowRight")
        page.wait_for_function("(b) => document.querySelector('[data-testid=\"stText\"]').innerText !== b",
                               arg=previous, timeout=60_000)
    after = shown(page)
    assert float(after["logLam"]) == pytest.approx(float(before["logLam"]) + 0.06, abs=1e-12)
    assert json.loads(after["server"])["log_lam"] == float(after["logLam"])
    assert_matches_python(scenario, after)
    page.close()
