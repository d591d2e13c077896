"""A real browser on the Audit page: start the app the way the README does (``make run``), open the Audit
page on German credit, run the audit, and find no error anywhere; the numbers shown are the model's, the
per-row CSV downloads, a row opens on Explore in the same session, and a row's relative link lands on
Explore with that applicant's answer."""

import csv
import io
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
from browser_harness import errors as exceptions
from browser_harness import wait_until_idle
from test_browser_recourse import type_duration_max

ROOT = Path(__file__).resolve().parents[1]
CREDIT = "?dataset=german-credit"


@pytest.fixture(scope="module")
def page(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    page.goto(app_url)
    wait_until_idle(page)
    yield page
    page.close()


def run_audit(page) -> None:
    page.get_by_role("button", name="Run the audit over all 1,000 rows").click()
    page.get_by_text("rows summarised", exact=True).wait_for(timeout=60_000)
    wait_until_idle(page)


def metric_value(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True)).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def explore_answer(page) -> None:
    """Until Explore shows the answer to the flip question (its title in bold)."""
    page.wait_for_function("() => document.querySelector('h1')?.innerText === 'Explore counterfactuals'",
                           timeout=60_000)
    page.locator("strong", has_text="Smallest change that flips the decision").first.wait_for(timeout=60_000)


def rejected_rows() -> int:
    """German credit's rows the default model does not predict as good, computed here from the model."""
    import datasets
    from training import TrainingParams
    from training.shipped import load_shipped

    data = datasets.load_builtin("german-credit")
    model = load_shipped(data, TrainingParams.default_for(data.kind)).model
    return int((model.predict(data.X) != 1).sum())


def test_the_audit_runs_in_the_browser_without_an_error(app_url, page):
    page.goto(f"{app_url}/audit{CREDIT}")
    wait_until_idle(page)
    assert page.locator("h1").first.inner_text() == "Audit recourse over the whole dataset"
    run_audit(page)
    assert exceptions(page) == []
    assert metric_value(page, "rows summarised") == f"{rejected_rows():,}"
    assert metric_value(page, "with recourse").endswith("%")
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 3  # ECDF, rows without recourse, changes
    assert page.locator('[data-testid="stDataFrame"]').count() >= 3

    with page.expect_download() as download:
        page.get_by_role("button", name="Rows (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == 1000 and {"row", "status", "distance", "message"} <= set(rows[0])
    assert exceptions(page) == []


def test_a_row_opens_on_explore_in_this_session_and_by_its_link(app_url, page):
    page.goto(f"{app_url}/audit{CREDIT}")
    wait_until_idle(page)
    run_audit(page)
    picker = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Open a row on Explore"))
    picker.locator("input").click()
    page.keyboard.type("#4 ")
    page.keyboard.press("Enter")
    wait_until_idle(page)
    page.get_by_role("button", name="Open on Explore").click()
    explore_answer(page)
    wait_until_idle(page)
    assert page.locator("h1").first.inner_text() == "Explore counterfactuals"
    assert exceptions(page) == []
    assert "i=4" in page.url and "q=flip" in page.url

    audit_url = f"{app_url}/audit{CREDIT}"
    link = urljoin(audit_url, "./?dataset=german-credit&i=9&target=1&q=flip")  # the form of the table's links
    assert link.startswith(f"{app_url}/?")
    page.goto(link)
    explore_answer(page)
    wait_until_idle(page)
    assert exceptions(page) == [] and "i=9" in page.url


def test_what_may_change_edited_on_the_audit_page_reruns_the_audit_and_carries_to_explore(app_url, page):
    page.goto(f"{app_url}/audit{CREDIT}")
    wait_until_idle(page)
    run_audit(page)
    page.get_by_text("What may change (the same settings as Explore", exact=False).first.click()
    grid = page.locator('[data-testid="stExpander"] [data-testid="stDataFrame"]').first
    grid.wait_for(state="visible", timeout=30_000)
    grid.scroll_into_view_if_needed()
    time.sleep(1.0)  # the expander's animation
    type_duration_max(page, grid, "12")
    page.get_by_text("The last audit was run before what may change changed", exact=False).wait_for(timeout=30_000)
    wait_until_idle(page)
    assert page.get_by_text("rows summarised", exact=True).count() == 0  # no stale numbers
    run_audit(page)
    assert page.get_by_text("1 cell edited", exact=False).count() == 1
    assert exceptions(page) == []
    page.get_by_role("link", name="Explore").click()  # the sidebar: the same session
    page.wait_for_function("() => decodeURIComponent(location.search).includes('duration_months:max=12')",
                           timeout=60_000)
    wait_until_idle(page)
    assert exceptions(page) == []
