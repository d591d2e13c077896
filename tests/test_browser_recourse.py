"""A real browser on what may change and the recourse question: a number typed fast into a cell of the
what-may-change table keeps every key (Streamlit's number-cell editor lost the first: "48" became 8), the
edit survives a visit to another page, and a click on a point of the front shows that point's answer."""

import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from browser_harness import errors as exceptions
from browser_harness import wait_until_idle

ROOT = Path(__file__).resolve().parents[1]
CREDIT = "/?dataset=german-credit&i=1&target=1"
EDITS = "&edits=age_years:change=lock;duration_months:change=fall;credit_amount:change=fall;savings:change=free"
KEY_GAP_MS = 20  # a fast typist; the number-cell editor kept 0 of 8 such entries in a bare app


@pytest.fixture(scope="module")
def page(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    yield page
    page.close()


def edits(page) -> str:
    return unquote(page.url).partition("edits=")[2].partition("&")[0]


def editor(page):
    return page.locator('[data-testid="stExpander"] [data-testid="stDataFrame"]').first


def open_what_may_change(page):
    page.get_by_text("What may change", exact=True).click()
    grid = editor(page)
    grid.wait_for(state="visible", timeout=30_000)
    grid.scroll_into_view_if_needed()
    time.sleep(1.0)  # the expander's animation
    return grid


def type_duration_max(page, grid, text: str) -> None:
    """Type ``text`` into duration_months's max cell of the what-may-change table, keys KEY_GAP_MS apart."""
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 30, box["y"] + 35 + 17)  # duration_months's name (row 0, column 0)
    page.wait_for_timeout(500)
    for _ in range(5):  # feature, kind, may change, whole numbers, min -> max
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(100)
    page.keyboard.type(text, delay=KEY_GAP_MS)
    page.keyboard.press("Enter")


def test_a_number_typed_fast_into_the_table_keeps_every_key_and_survives_another_page(app_url, page):
    page.goto(app_url + CREDIT)
    wait_until_idle(page)
    grid = open_what_may_change(page)
    type_duration_max(page, grid, "45")
    page.wait_for_function("() => decodeURIComponent(location.search).includes('duration_months:max=45')",
                           timeout=30_000)
    wait_until_idle(page)
    assert edits(page) == "duration_months:max=45.0"
    assert exceptions(page) == []
    # to another page and back (the sidebar, so the session is the same): the edit is still there
    page.get_by_role("link", name="Data").click()
    wait_until_idle(page)
    page.get_by_role("link", name="Explore").click()
    wait_until_idle(page)
    open_what_may_change(page)
    assert editor(page).locator("td#glide-cell-5-0").inner_text() == "45"
    assert edits(page) == "duration_months:max=45.0"


def test_a_click_on_a_point_of_the_front_shows_that_answer(app_url, page):
    page.goto(app_url + CREDIT + EDITS)
    wait_until_idle(page)
    page.get_by_role("button", name="Cheapest change of at most 2 features").click()
    wait_until_idle(page)
    points = page.locator('.js-plotly-plot .scatterlayer .trace').first.locator("path.point")
    points.first.wait_for(state="visible", timeout=30_000)
    assert points.count() == 5  # s = 1 .. 5 all have an answer here
    assert "s=2" in page.url
    points.nth(0).click(force=True)
    page.wait_for_function("() => location.search.includes('s=1')", timeout=30_000)
    wait_until_idle(page)
    assert page.locator('[data-testid="stNumberInput"] input').nth(1).input_value() == "1"  # the control agrees
    assert page.locator("strong", has_text="Cheapest change of at most 1 feature").count() == 1  # the card
    metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert metrics[0] == "1" and metrics[2] == "good"  # one feature changed, predicted good
    assert exceptions(page) == []
