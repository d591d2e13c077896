"""A real browser: start the app the way the README does (``make run``), time the first screen, visit
every page in headless Chromium, move the lambda slider with the keyboard, and find no exception anywhere."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PAGES = ["", "trajectories", "race", "teaching", "data", "model"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    process = subprocess.Popen(["make", "--no-print-directory", "run", f"PORT={port}"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
            if process.poll() is not None:
                raise RuntimeError(f"make run exited: {process.stdout.read().decode()[-2000:]}")
        else:
            raise RuntimeError("the app did not answer its health check within 120 s")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it with apt"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def wait_until_idle(page, timeout_s: float = 120.0) -> None:
    """Until the page has a title and Streamlit shows no spinner or running indicator for a second."""
    page.wait_for_selector("h1", timeout=timeout_s * 1000)
    deadline, quiet_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        busy = page.locator('[data-testid="stSpinner"], [data-testid="stSkeleton"]').count() > 0
        busy = busy or page.locator('[data-testid="stStatusWidget"]').count() > 0
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        time.sleep(0.2)
    raise AssertionError("the page kept running")


FIRST_SCREEN_BOUND_S = 15.0  # generous: the target is 3 s, and these machines are shared


@pytest.fixture(scope="module")
def first_screen_s(app_url, browser) -> float:
    """Seconds from the first request to the fresh server until the first counterfactual (the
    source/counterfactual/difference image and its metrics) is visible. Every test asks for this
    fixture, so it runs first, whichever test is selected."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start = time.monotonic()
    page.goto(app_url)
    page.locator('[data-testid="stImage"] img').first.wait_for(state="visible", timeout=120_000)
    page.locator('[data-testid="stMetricValue"]').first.wait_for(state="visible", timeout=120_000)
    elapsed = time.monotonic() - start
    page.close()
    print(f"first counterfactual visible {elapsed:.2f} s after the first request")
    return elapsed


def test_the_first_counterfactual_appears_soon_after_the_first_request(first_screen_s, record_property):
    record_property("first_screen_s", round(first_screen_s, 2))
    assert first_screen_s < FIRST_SCREEN_BOUND_S


def exceptions(page) -> list[str]:
    """Tracebacks and st.error boxes on the page (Streamlit renders st.error as stAlertContentError)."""
    return page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').all_inner_texts()


def test_every_page_renders_without_an_exception(app_url, browser, first_screen_s):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    for path in PAGES:
        page.goto(f"{app_url}/{path}")
        wait_until_idle(page)
        assert exceptions(page) == [], (path, exceptions(page))
        assert page.locator("h1").count() >= 1
    page.close()


def test_moving_the_slider_with_the_keyboard_updates_the_view(app_url, browser, first_screen_s):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    wait_until_idle(page)
    lam_metric = page.locator('[data-testid="stMetric"]').first
    before = lam_metric.inner_text()
    thumb = page.locator('[data-testid="stSlider"] input[type="range"], [data-testid="stSlider"] [role="slider"]').first
    thumb.focus()
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("(before) => document.querySelector('[data-testid=\"stMetric\"]').innerText !== before",
                           arg=before, timeout=30_000)
    wait_until_idle(page)
    after = lam_metric.inner_text()
    assert "0.0631" in after.replace("\n", " "), after  # log10 lam moved from -1.00 to -1.20
    assert exceptions(page) == []
    assert "lam=0.0631" in page.url  # the question travels in the address
    page.close()
