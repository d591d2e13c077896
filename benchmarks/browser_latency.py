"""Time from a slider key press to the updated view, in headless Chromium: the Explore page on
MNIST-5k against a bare Streamlit app whose fragment only echoes a slider, in the same run.

The page records, with its own clock, when the key goes down and when the main area last changed;
a press counts as done once the lambda metric shows the new value and the main area has been quiet
for 400 ms. Latency = last change - key down. Presses alternate between the two apps.

    python benchmarks/browser_latency.py [--presses 40]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
INSTRUMENT = """() => {
  window.__lastChange = performance.now();
  const main = document.querySelector('[data-testid="stMain"]');
  new MutationObserver(() => { window.__lastChange = performance.now(); })
    .observe(main, {subtree: true, childList: true, characterData: true, attributes: true});
  document.addEventListener('keydown', () => { window.__keyDown = performance.now(); }, true);
}"""
QUIET = """(args) => {
  const metric = document.querySelector('[data-testid="stMetricValue"]');
  return metric && metric.innerText !== args.before && performance.now() - window.__lastChange > args.quiet;
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(script: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
                                "--server.port", str(port)], cwd=script.parent, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return process
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{script} did not start")


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector('[data-testid="stMetricValue"]', timeout=180_000)
    time.sleep(3)
    page.evaluate(INSTRUMENT)
    page.locator('[data-testid="stSlider"] input[type="range"], [data-testid="stSlider"] [role="slider"]').first.focus()
    return page


def press(page, key: str, quiet_ms: int = 400) -> float:
    before = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    page.keyboard.press(key)
    page.wait_for_function(QUIET, arg={"before": before, "quiet": quiet_ms}, timeout=60_000, polling=50)
    return page.evaluate("() => window.__lastChange - window.__keyDown")


def main(argv=None):
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presses", type=int, default=40)
    args = parser.parse_args(argv)
    ports = free_port(), free_port()
    servers = [start(ROOT / "app.py", ports[0]), start(ROOT / "benchmarks" / "bare_app" / "app.py", ports[1])]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            app = open_page(browser, f"http://127.0.0.1:{ports[0]}/?dataset=mnist-5k")
            bare = open_page(browser, f"http://127.0.0.1:{ports[1]}/")
            times = {"explore": [], "bare": []}
            for i in range(args.presses):
                key = "ArrowLeft" if (i // 5) % 2 == 0 else "ArrowRight"
                for name, page in (("explore", app), ("bare", bare)):
                    page.bring_to_front()
                    times[name].append(press(page, key))
            browser.close()
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
    explore, reference = np.median(times["explore"]), np.median(times["bare"])
    print(f"presses: {args.presses} per app; median key-to-view: Explore {explore:.0f} ms, bare {reference:.0f} ms, "
          f"ratio {explore / reference:.2f} (target <= 1.5)")
    print(f"p90: Explore {np.percentile(times['explore'], 90):.0f} ms, bare {np.percentile(times['bare'], 90):.0f} ms")
    return times


if __name__ == "__main__":
    main()
