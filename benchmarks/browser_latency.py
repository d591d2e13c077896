"""Time from a slider key press to the updated view, in headless Chromium: the Explore page on MNIST-5k
(pixel range on) against a bare Streamlit app whose fragment only echoes a slider, in the same run.

On Explore the lambda slider solves in the browser (ui/live_slider.py): a press redraws the live view at
once (measured: key down -> the component's next frame), and the server's part of the page (its own solve,
downloads, the address) follows the release (measured: key down -> the server's line shows the new lambda
and the main area has been quiet for 400 ms). The bare app: key down -> its metric shows the new value and
the main area has been quiet for 400 ms. Presses alternate between the two apps.

    python benchmarks/browser_latency.py [--presses 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from browser_harness import CHROMIUM, CHROMIUM_ARGS, free_port, start, stop, streamlit_command  # noqa: E402

LIVE_ROOT = ("document.querySelector('.stBidiComponent [data-testid=\"stBidiComponentIsolated\"]')"
             ".shadowRoot.querySelector('.live-slider')")
SERVER_LINE = '.st-key-slider_answer [data-testid="stCaptionContainer"]'
INSTRUMENT = """(live) => {
  window.__lastChange = performance.now();
  const main = document.querySelector('[data-testid="stMain"]');
  new MutationObserver(() => { window.__lastChange = performance.now(); })
    .observe(main, {subtree: true, childList: true, characterData: true, attributes: true});
  document.addEventListener('keydown', () => { window.__keyDown = performance.now(); window.__frame = null; }, true);
  if (live) {
    const root = %s;
    new MutationObserver(() => { if (window.__frame === null) window.__frame = performance.now(); })
      .observe(root, {attributes: true, attributeFilter: ['data-frames']});
  }
}""" % LIVE_ROOT
QUIET = """(args) => {
  const node = document.querySelector(args.selector);
  return node && node.innerText !== args.before && performance.now() - window.__lastChange > args.quiet;
}"""


def open_page(browser, url, live: bool):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    if live:
        page.wait_for_selector(".live-slider[data-frames]", timeout=180_000)
        page.wait_for_selector(SERVER_LINE, timeout=180_000)
    else:
        page.wait_for_selector('[data-testid="stMetricValue"]', timeout=180_000)
    time.sleep(3)
    page.evaluate(INSTRUMENT, live)
    thumb = (".live-slider input[type=range]" if live else
             '[data-testid="stSlider"] input[type="range"], [data-testid="stSlider"] [role="slider"]')
    page.locator(thumb).first.focus()
    return page


def press(page, key: str, selector: str, quiet_ms: int = 400) -> tuple[float, float | None]:
    before = page.locator(selector).first.inner_text()
    page.keyboard.press(key)
    page.wait_for_function(QUIET, arg={"selector": selector, "before": before, "quiet": quiet_ms}, timeout=60_000,
                           polling=50)
    return page.evaluate("() => [window.__lastChange - window.__keyDown, "
                         "window.__frame === null ? null : window.__frame - window.__keyDown]")


def main(argv=None):
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presses", type=int, default=40)
    args = parser.parse_args(argv)
    ports = free_port(), free_port()
    servers = [start(streamlit_command("app.py"), ports[0], quiet=True),
               start(streamlit_command("benchmarks/bare_app/app.py"), ports[1], quiet=True)]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            app = open_page(browser, f"http://127.0.0.1:{ports[0]}/?dataset=mnist-5k&px=1", live=True)
            bare = open_page(browser, f"http://127.0.0.1:{ports[1]}/", live=False)
            times = {"explore": [], "explore_view": [], "bare": []}
            for i in range(args.presses):
                key = "ArrowLeft" if (i // 5) % 2 == 0 else "ArrowRight"
                app.bring_to_front()
                page_ms, view_ms = press(app, key, SERVER_LINE)
                times["explore"].append(page_ms)
                times["explore_view"].append(view_ms)
                bare.bring_to_front()
                times["bare"].append(press(bare, key, '[data-testid="stMetricValue"]')[0])
            browser.close()
    finally:
        for server in servers:
            stop(server)
    explore, reference = np.median(times["explore"]), np.median(times["bare"])
    view = np.median(times["explore_view"])
    print(f"presses: {args.presses} per app; median key press -> live view redrawn on Explore {view:.1f} ms; "
          f"key press -> fully updated page: Explore {explore:.0f} ms, bare {reference:.0f} ms, ratio "
          f"{explore / reference:.2f} (target <= 1.5)")
    print(f"p90: live view {np.percentile(times['explore_view'], 90):.1f} ms; fully updated page: Explore "
          f"{np.percentile(times['explore'], 90):.0f} ms, bare {np.percentile(times['bare'], 90):.0f} ms")
    return times


if __name__ == "__main__":
    main()
