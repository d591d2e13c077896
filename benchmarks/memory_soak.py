"""Server memory across sessions that upload, train and leave (issue 13), in headless Chromium.

Sessions run one after another against one fresh server on loopback. Each opens the app, uploads a
generated CSV on the Data page, gets a model, moves the lambda slider ``--moves`` times on the
Explore page and closes its tab. The server's resident memory (VmRSS) is read after each session
has closed. Two scenarios, each on its own fresh server:

- ``data``: the upload is trained on (the default model), then retrained on the Model page with C = 0.1;
- ``model``: the upload gets a model file (``.npz``, fitted beforehand on the same table) loaded on
  the Model page.

Target: after the last session, RSS within 300 MB of its value after the first. A closed tab's
session is kept for ``server.disconnectedSessionTTL`` seconds (30 in .streamlit/config.toml) in case
it reconnects, so the sessions closed within that window are still in memory at each reading; with
``--linger S`` the server is left alone for S seconds at the end and read again.

With ``--concurrent`` every tab stays open until the last one is done (RSS is read with 1, 2, ...
tabs open, then after all close): the memory a server needs per concurrent user. Scenario
``default`` uploads nothing: the built-in default dataset (MNIST-5k) and its shipped model.

    python benchmarks/memory_soak.py                       # both scenarios, 20 sessions each
    python benchmarks/memory_soak.py --scenario data --sessions 5 --env MALLOC_ARENA_MAX=2
    python benchmarks/memory_soak.py --scenario data --sessions 8 --concurrent --linger 140

Bounded: ``--sessions`` sessions per scenario and ``--max-minutes`` for the whole run; the file is
written to a temporary directory and nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import browser_harness  # noqa: E402
from browser_harness import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    errors,
    free_port,
    go_to,
    sidebar_shows,
    stop,
    streamlit_command,
    upload,
    wait_until_idle,
)

SLIDER = '[data-testid="stSlider"] input[type="range"], [data-testid="stSlider"] [role="slider"]'
LIVE_THUMB = ".live-slider input[type=range]"
SERVER_LINE = '.st-key-slider_answer [data-testid="stCaptionContainer"]'  # "The server's solve at ..."
SERVER_LINE_CHANGED = f"(before) => document.querySelector('{SERVER_LINE}')?.innerText !== before"
TARGET_MB = 300.0
N_FEATURES = 20
N_CLASSES = 3


def make_table(path: Path, megabytes: float, seed: int = 0) -> tuple[int, int]:
    """A CSV of about ``megabytes`` MB: N_FEATURES numeric columns in full precision and a label
    that depends on them. Returns (rows, columns)."""
    rng = np.random.default_rng(seed)
    header = ",".join([f"f{j}" for j in range(N_FEATURES)] + ["label"]) + "\n"
    bytes_per_row = N_FEATURES * 19 + 3
    n = int(megabytes * 1e6 / bytes_per_row)
    X = rng.normal(size=(n, N_FEATURES)) * rng.uniform(0.5, 100.0, size=N_FEATURES)
    W = rng.normal(size=(N_FEATURES, N_CLASSES))
    y = np.argmax((X / X.std(axis=0)) @ W + rng.gumbel(size=(n, N_CLASSES)), axis=1)
    with open(path, "w") as handle:
        handle.write(header)
        for row, label in zip(X, y):
            handle.write(",".join(repr(float(v)) for v in row) + f",c{label}\n")
    return n, N_FEATURES + 1


def make_model_file(table: Path, path: Path) -> None:
    """A softmax model fitted on ``table`` with scikit-learn, saved as a plain ``.npz`` model file."""
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from training import train_softmax

    frame = pd.read_csv(table)
    labels = frame.pop("label").to_numpy()
    classes, y = np.unique(labels, return_inverse=True)
    trained = train_softmax(frame.to_numpy(dtype=float), y, [str(c) for c in classes], list(frame.columns), C=0.5)
    path.write_bytes(trained.model.to_bytes("npz"))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_session(browser, url: str, scenario: str, table: Path, model_file: Path, moves: int):
    """A tab that has done the scenario and is left open; returns its browser context."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url)
        wait_until_idle(page)
        if scenario != "default":
            go_to(page, "Data")
            upload(page, "Upload", table, "Use this upload")
            sidebar_shows(page, f"upload:{table.name}")
            go_to(page, "Model")
        if scenario == "data":
            page.locator(SLIDER).first.focus()  # C, a select slider
            page.keyboard.press("ArrowLeft")  # C = 1 -> 0.1
            page.get_by_role("button", name="Train").click()
            wait_until_idle(page)
            sidebar_shows(page, "C=0.1")
        elif scenario == "model":
            upload(page, "Load a model file", model_file, "Use this model")
            sidebar_shows(page, f"loaded from {model_file.name}")
        if scenario != "default":
            go_to(page, "Explore")
        page.locator(LIVE_THUMB).first.focus()  # Explore's lambda slider solves in the browser ...
        line = page.locator(SERVER_LINE).first
        for _ in range(moves):
            before = line.inner_text()
            page.keyboard.press("ArrowLeft")
            page.wait_for_function(SERVER_LINE_CHANGED, arg=before, timeout=60_000)  # ... and on the server
        wait_until_idle(page)
        problems = errors(page)
        if problems:
            raise RuntimeError(f"the Explore page shows an error: {problems}")
    except BaseException:
        context.close()
        raise
    return context


def one_session(browser, url: str, scenario: str, table: Path, model_file: Path, moves: int) -> None:
    open_session(browser, url, scenario, table, model_file, moves).close()


def soak(browser, scenario: str, args, table: Path, model_file: Path, env: dict[str, str], deadline: float) -> list:
    port = free_port()
    server = browser_harness.start(streamlit_command("app.py", *args.server_arg), port, env, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    readings, tabs = [], []
    try:
        print(f"\n{scenario}: server pid {server.pid}, RSS at start {rss_mb(server.pid):.0f} MB", flush=True)
        for i in range(1, args.sessions + 1):
            if time.monotonic() > deadline:
                print(f"stopped after {i - 1} sessions: --max-minutes reached")
                break
            start = time.monotonic()
            tab = open_session(browser, url, scenario, table, model_file, args.moves)
            if args.concurrent:
                tabs.append(tab)
            else:
                tab.close()
            time.sleep(args.settle)
            readings.append(rss_mb(server.pid))
            print(f"  session {i:2d}: {time.monotonic() - start:5.1f} s, RSS after "
                  f"{f'{i} tabs open' if args.concurrent else 'close'} {readings[-1]:6.0f} MB", flush=True)
        if tabs:
            for tab in tabs:
                tab.close()
            time.sleep(args.settle)
            print(f"  all {len(tabs)} tabs closed: RSS {rss_mb(server.pid):6.0f} MB", flush=True)
        if args.linger and readings:
            time.sleep(args.linger)
            print(f"  after {args.linger:.0f} s with no session: RSS {rss_mb(server.pid):6.0f} MB", flush=True)
    finally:
        stop(server)
    if len(readings) >= 2 and args.concurrent:
        per_tab = np.polyfit(np.arange(1, len(readings) + 1), readings, 1)[0]
        print(f"  {scenario}: RSS with 1 tab open {readings[0]:.0f} MB, with {len(readings)} "
              f"{readings[-1]:.0f} MB: {per_tab:.0f} MB per open tab (least squares)", flush=True)
    elif len(readings) >= 2:
        growth = readings[-1] - readings[0]
        verdict = "met" if growth <= TARGET_MB else "NOT met"
        print(f"  {scenario}: RSS after session 1 {readings[0]:.0f} MB, after session {len(readings)} "
              f"{readings[-1]:.0f} MB, growth {growth:+.0f} MB, peak {max(readings):.0f} MB "
              f"(target: growth <= {TARGET_MB:.0f} MB, {verdict})", flush=True)
    return readings


def main(argv=None) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["data", "model", "both", "default"], default="both",
                        help="default: no upload, the built-in default dataset and model")
    parser.add_argument("--concurrent", action="store_true",
                        help="keep every tab open (memory per concurrent user) instead of closing each")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--csv-mb", type=float, default=17.0)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between closing a tab and reading RSS")
    parser.add_argument("--linger", type=float, default=0.0, help="seconds to wait after the last session")
    parser.add_argument("--max-minutes", type=float, default=40.0)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment of the server, e.g. MALLOC_ARENA_MAX=2 (repeatable)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="extra argument to `streamlit run`, e.g. --server-arg=--runner.postScriptGC=true")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 100 or not 0 <= args.moves <= 100 or not 0.01 <= args.csv_mb <= 45:
        parser.error("--sessions must be 1..100, --moves 0..100, --csv-mb 0.01..45")
    env = dict(item.split("=", 1) for item in args.env)
    deadline = time.monotonic() + 60 * args.max_minutes
    scenarios = ["data", "model"] if args.scenario == "both" else [args.scenario]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        table, model_file = Path(tmp) / "soak.csv", Path(tmp) / "soak_model.npz"
        rows, columns = make_table(table, args.csv_mb)
        make_model_file(table, model_file)
        print(f"table: {table.stat().st_size / 1e6:.1f} MB, {rows:,} rows x {columns} columns "
              f"({rows * columns:,} cells); {args.sessions} sessions per scenario, {args.moves} slider moves each; "
              f"server environment {env or '(unchanged)'} {' '.join(args.server_arg)}", flush=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for scenario in scenarios:
                    results[scenario] = soak(browser, scenario, args, table, model_file, env, deadline)
            finally:
                browser.close()
    return results


if __name__ == "__main__":
    main()
