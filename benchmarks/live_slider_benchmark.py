"""The live slider in headless Chromium: per-frame solve+draw time and frame rate while dragging, and the
time from the end of a drag to the fully updated page against a bare Streamlit slider, in one run.

First the Explore page itself (``streamlit run app.py``, opened by a share link on MNIST-5k with the pixel
range, tests/apps/live_scenarios.explore): drag and frame rate, then the end of a drag to the fully updated
page (the server's solve, downloads) and the bytes the server sends for it, interleaved with the bare app
(benchmarks/bare_app/app.py: a fragment that only echoes a slider) and the harness.

Harness scenarios (tests/apps/live_scenarios.py, shown by tests/apps/live_slider_app.py):
MNIST-5k (K = 10, D = 784) with the pixel range (projected Newton) and without (reduced Newton), German
credit with locks and costs (reduced) and with ranges too (projected), an RCV1-sized synthetic model
(K = 51, D = 47236, reduced), and the same synthetic model with non-negative features (projected, where
the work grows with D) at several D, with the live view's limit lifted, to show where frames slow down.

A drag is ``--moves`` mouse moves of a few pixels, back and forth, sent as fast as the browser takes them.
The page records, for every frame it draws, the solve+draw time (performance.now() around the handler),
and a requestAnimationFrame loop records which display frames showed a new solution: frames per second
while dragging = display frames with a new solution / drag duration.

    python benchmarks/live_slider_benchmark.py [--moves 400] [--releases 20] [--quick]
        [--explore-url URL] [--harness-url URL]

``--quick`` (a smoke run): the Explore page and the bare app only, a few moves, one release per app
unless ``--releases`` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _folder in (ROOT, ROOT / "tests" / "apps", ROOT / "benchmarks"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))
from browser_harness import CHROMIUM, CHROMIUM_ARGS, free_port, start, stop, streamlit_command  # noqa: E402

EXPLORE_SERVER_LINE = '.st-key-slider_answer [data-testid="stCaptionContainer"]'  # "The server's solve at ..."
ROOT_JS = ("document.querySelector('.stBidiComponent [data-testid=\"stBidiComponentIsolated\"]')"
           ".shadowRoot.querySelector('.live-slider')")
RAF_LOOP = f"""() => {{
  const root = {ROOT_JS};
  window.__ticks = [];
  const loop = (t) => {{ window.__ticks.push([t, Number(root.dataset.frames)]); requestAnimationFrame(loop); }};
  requestAnimationFrame(loop);
}}"""
INSTRUMENT_RELEASE = """() => {
  window.__lastChange = performance.now();
  const main = document.querySelector('[data-testid="stMain"]');
  new MutationObserver(() => { window.__lastChange = performance.now(); })
    .observe(main, {subtree: true, childList: true, characterData: true, attributes: true});
  document.addEventListener('pointerup', () => { window.__up = performance.now(); }, true);
}"""
QUIET = """(args) => {
  const node = document.querySelector(args.selector);
  return node && node.innerText !== args.before && performance.now() - window.__lastChange > args.quiet;
}"""


async def thumb_position(page):
    slider = page.locator(".live-slider input[type=range]")
    box = await slider.bounding_box()
    low, high, value = await slider.evaluate("i => [Number(i.min), Number(i.max), Number(i.value)]")
    x = box["x"] + 8 + (value - low) / (high - low) * (box["width"] - 16)
    return x, box["y"] + box["height"] / 2, box


async def measure_drag(page, moves: int, step_px: float = 3.0, interval_s: float = 0.004) -> dict:
    """One drag of ``moves`` mouse moves (left, then back right), one every ``interval_s`` (a 250 Hz mouse),
    dispatched without waiting for the browser's acknowledgement; the page's own timings of it."""
    await page.evaluate(RAF_LOOP)
    x, y, box = await thumb_position(page)
    await page.mouse.move(x, y)
    await page.mouse.down()
    cdp = await page.context.new_cdp_session(page)
    frames_before = int(await page.evaluate(f"() => {ROOT_JS}.dataset.frames"))
    started = await page.evaluate("() => performance.now()")
    direction, sent = -1.0, []
    for i in range(moves):
        if i == moves // 2:
            direction = 1.0
        x = min(max(x + direction * step_px, box["x"] + 2), box["x"] + box["width"] - 2)
        sent.append(asyncio.ensure_future(cdp.send("Input.dispatchMouseEvent", {
            "type": "mouseMoved", "x": x, "y": y, "button": "left", "buttons": 1})))
        await asyncio.sleep(interval_s)
    await asyncio.gather(*sent)
    ended = await page.evaluate("() => performance.now()")
    stats = await page.evaluate(f"""() => {{
        const s = {ROOT_JS}.liveStats;
        return {{frameMs: s.frameMs, stamps: s.stamps, ticks: window.__ticks, frames: Number({ROOT_JS}.dataset.frames)}};
    }}""")
    await page.mouse.move(x, y)
    await page.mouse.up()
    await cdp.detach()
    stamps = np.array(stats["stamps"])
    inside = (stamps >= started) & (stamps <= ended)
    frame_ms = np.array(stats["frameMs"])[inside]
    ticks = np.array(stats["ticks"], dtype=float)
    ticks = ticks[(ticks[:, 0] >= started) & (ticks[:, 0] <= ended)]
    fresh = int(np.sum(np.diff(ticks[:, 1]) > 0)) if len(ticks) > 1 else 0
    span_s = (ticks[-1, 0] - ticks[0, 0]) / 1e3 if len(ticks) > 1 else float("nan")
    return dict(frames=int(inside.sum()), frames_counted=stats["frames"] - frames_before,
                median_ms=float(np.median(frame_ms)), p99_ms=float(np.percentile(frame_ms, 99)),
                max_ms=float(frame_ms.max()), fps=fresh / span_s, display_fps=(len(ticks) - 1) / span_s,
                fresh_share=fresh / max(len(ticks) - 1, 1), renders_per_s=int(inside.sum()) / ((ended - started) / 1e3))


IN_PAGE_DRIVE = f"""async (n) => {{
  const root = {ROOT_JS};
  const input = root.querySelector('input[type=range]');
  const low = Number(input.min), high = Number(input.max), step = Number(input.step);
  const last = Math.round((high - low) / step);
  let index = Math.round((Number(input.value) - low) / step), direction = -1;
  const idle = await new Promise((resolve) => {{  // the display's own rate, nothing to draw
    const stamps = [];
    const tick = (t) => {{ stamps.push(t); if (stamps.length > 30) resolve(stamps); else requestAnimationFrame(tick); }};
    requestAnimationFrame(tick);
  }});
  const before = Number(root.dataset.frames);
  // A message posted from a requestAnimationFrame callback runs after that frame's style, layout and paint:
  // the time between the two is the main thread's whole work for the frame.
  const channel = new MessageChannel();
  const work = [];
  let frameStart = 0;
  channel.port1.onmessage = () => {{ work.push(performance.now() - frameStart); }};
  const stamps = await new Promise((resolve) => {{
    const stamps = [];
    const tick = (t) => {{
      stamps.push(t);
      if (stamps.length > n) {{ resolve(stamps); return; }}
      frameStart = performance.now();
      if (index + direction < 0 || index + direction > last) direction = -direction;
      index += direction;
      input.value = String(low + index * step);
      input.dispatchEvent(new Event('input', {{bubbles: true}}));  // the handler solves and draws at once
      channel.port2.postMessage(null);
      requestAnimationFrame(tick);
    }};
    requestAnimationFrame(tick);
  }});
  const s = root.liveStats;
  return {{idle, stamps, work, frames: Number(root.dataset.frames) - before, frameMs: s.frameMs.slice(-n)}};
}}"""


async def measure_frame_rate(page, frames: int) -> dict:
    """One new lambda per display frame, from a requestAnimationFrame loop in the page: the frame rate the
    page holds while solving and drawing every frame (style, layout and paint included), against its idle rate."""
    result = await page.evaluate(IN_PAGE_DRIVE, frames)
    idle, stamps = np.diff(result["idle"]), np.diff(result["stamps"])
    return dict(paced_fps=1e3 / float(np.mean(stamps)), idle_fps=1e3 / float(np.mean(idle)),
                work_median_ms=float(np.median(result["work"])), work_p99_ms=float(np.percentile(result["work"], 99)),
                paced_p99_frame_ms=float(np.percentile(stamps, 99)), paced_median_ms=float(np.median(result["frameMs"])),
                paced_frames=result["frames"])


async def open_harness(browser, base: str, query: str):
    page = await browser.new_page(viewport={"width": 1200, "height": 1000})
    page.received = count_received(page)
    await page.goto(f"{base}/?{query}")
    await page.wait_for_selector('[data-testid="stText"]', timeout=600_000)
    server = json.loads(await page.locator('[data-testid="stText"]').inner_text())
    live = server["mode"] != "off"
    if live:
        await page.wait_for_selector(".live-slider[data-frames]", timeout=120_000)
    return page, server, live


async def drag_scenario(browser, base: str, label: str, query: str, moves: int) -> dict:
    page, server, live = await open_harness(browser, base, query)
    row = dict(scenario=label, mode=server["mode"], payload_kB=server["payload_bytes"] / 1e3)
    if live:
        await measure_drag(page, max(20, moves // 10))  # warm-up: the JIT compiles the solver on the first frames
        row.update(await measure_drag(page, moves))
        row.update(await measure_frame_rate(page, moves))
    await page.close()
    return row


async def release_latency(page, selector: str, thumb, traffic: Traffic, steps: int = 8, step_px: float = 5.0,
                          quiet_ms: int = 400) -> tuple[float, int]:
    """Mouse up after a short drag (left and right in turn, so never stuck at an end) -> the server's part of
    the page updated and quiet; the page's clock. Also the bytes the server sent over the WebSocket for it."""
    before = await page.locator(selector).first.inner_text()
    x, y = await thumb()
    await page.mouse.move(x, y)
    await page.mouse.down()
    traffic.direction = -traffic.direction
    for _ in range(steps):
        x += traffic.direction * step_px
        await page.mouse.move(x, y)
    traffic.received = 0
    await page.mouse.up()
    await page.wait_for_function(QUIET, arg={"selector": selector, "before": before, "quiet": quiet_ms},
                                 timeout=60_000, polling=50)
    return await page.evaluate("() => window.__lastChange - window.__up"), traffic.received


@dataclass
class Traffic:
    """Bytes of the WebSocket frames a page received since the last reset, and its last drag's direction."""

    received: int = 0
    direction: int = 1


def count_received(page) -> Traffic:
    """Count the bytes of every WebSocket frame the page receives from now on."""
    traffic = Traffic()

    def on_socket(socket):
        def on_frame(payload):
            traffic.received += len(payload)
        socket.on("framereceived", on_frame)
    page.on("websocket", on_socket)
    return traffic


def bare_thumb(page):
    async def locate():  # Streamlit's slider: a react-aria thumb around a hidden range input
        box = await page.locator('[data-testid="stSlider"] input[type="range"]').locator("xpath=../..").bounding_box()
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    return locate


def live_thumb(page):
    async def locate():
        x, y, _ = await thumb_position(page)
        return x, y
    return locate


EXPLORE_LABEL = "Explore page: MNIST, pixels in [0, 1] (K=10, D=784)"
SCENARIOS = [("MNIST, pixels in [0, 1] (K=10, D=784)", "scenario=mnist"),
             ("MNIST, no range (K=10, D=784)", "scenario=mnist-free"),
             ("German credit, locks + costs (K=2, D=61)", "scenario=german"),
             ("German credit, locks + costs + ranges", "scenario=german-ranges"),
             ("RCV1-sized synthetic (K=51, D=47236)", "scenario=text&d=47236")]
SCENARIOS += [(f"synthetic K=51, x >= 0 (projected), D={d}, limit lifted", f"scenario=text-ranges&d={d}&work_limit=1e12")
              for d in (250, 500, 1000, 2000, 4000)]
SCENARIOS += [("synthetic K=51, x >= 0, D=4000, default limit", "scenario=text-ranges&d=4000")]


def explore_query() -> tuple[str, float]:
    """The share link of the Explore scenario, and its payload's size (the same question posed in Python)."""
    from urllib.parse import urlencode

    import live_scenarios

    from ui import live_slider

    case = live_scenarios.explore("mnist")
    s = case.scenario
    payload = live_slider.build_payload(s.model, s.x0, s.target, 1.2, image_shape=s.image_shape, **s.arguments)
    return urlencode(case.query), payload.n_bytes


async def open_explore(browser, base: str, query: str):
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    page.received = count_received(page)
    await page.goto(f"{base}/?{query}")
    await page.wait_for_selector(".live-slider[data-frames]", timeout=600_000)
    await page.wait_for_selector(EXPLORE_SERVER_LINE, timeout=120_000)
    await asyncio.sleep(2)
    return page


async def explore_drag(page, moves: int) -> dict:
    row = dict(scenario=EXPLORE_LABEL, mode="projected", payload_kB=explore_query()[1] / 1e3)
    await measure_drag(page, max(20, moves // 10))  # warm-up
    row.update(await measure_drag(page, moves))
    row.update(await measure_frame_rate(page, moves))
    await asyncio.sleep(1)  # the release at the end of the drag reaches the server
    return row


async def run(args):
    from playwright.async_api import async_playwright

    ports = free_port(), free_port(), free_port()
    servers = [start(streamlit_command("benchmarks/bare_app/app.py"), ports[1], quiet=True)]
    if args.explore_url is None:
        servers.append(start(streamlit_command("app.py"), ports[2], quiet=True))
    if args.harness_url is None and not args.quick:
        servers.append(start(streamlit_command("tests/apps/live_slider_app.py"), ports[0], quiet=True))
    base = args.harness_url or f"http://127.0.0.1:{ports[0]}"
    explore_base = args.explore_url or f"http://127.0.0.1:{ports[2]}"
    bare_base = f"http://127.0.0.1:{ports[1]}"
    names = ("explore", "server-slider", "harness", "bare")
    rows, latency, received = [], {name: [] for name in names}, {name: [] for name in names}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            explore_page = await open_explore(browser, explore_base, explore_query()[0])
            rows.append(await explore_drag(explore_page, args.moves))
            print(rows[-1], flush=True)
            for label, query in ([] if args.quick else SCENARIOS):
                rows.append(await drag_scenario(browser, base, label, query, args.moves))
                print(rows[-1], flush=True)
            pages = {"explore": (explore_page, EXPLORE_SERVER_LINE, explore_page.received)}
            if args.server_slider_url:  # an Explore page with Streamlit's slider: its λ metric is the first
                old = await browser.new_page(viewport={"width": 1400, "height": 1000})
                pages["server-slider"] = (old, '[data-testid="stMetricValue"]', count_received(old))
                await old.goto(f"{args.server_slider_url}/?{explore_query()[0]}")
                await old.wait_for_selector('[data-testid="stMetricValue"]', timeout=600_000)
            if not args.quick:
                harness_page, _, _ = await open_harness(browser, base, "scenario=mnist")
                pages["harness"] = (harness_page, '[data-testid="stText"]', harness_page.received)
            bare_page = await browser.new_page(viewport={"width": 1200, "height": 1000})
            pages["bare"] = (bare_page, '[data-testid="stMetricValue"]', count_received(bare_page))
            await bare_page.goto(bare_base)
            await bare_page.wait_for_selector('[data-testid="stMetricValue"]', timeout=120_000)
            await asyncio.sleep(2)
            for page, _, _ in pages.values():
                await page.evaluate(INSTRUMENT_RELEASE)
            for _ in range(args.releases):
                for name, (page, selector, counter) in pages.items():
                    await page.bring_to_front()
                    thumb = bare_thumb(page) if name in ("bare", "server-slider") else live_thumb(page)
                    ms, n_bytes = await release_latency(page, selector, thumb, counter)
                    latency[name].append(ms)
                    received[name].append(n_bytes)
            await browser.close()
    finally:
        for server in servers:
            stop(server)
    return rows, latency, received


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=int, default=400)
    parser.add_argument("--releases", type=int, help="releases per app (default 20; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="the Explore page only, a few moves and one release per app (a smoke run)")
    parser.add_argument("--explore-url", help="the dashboard already running (make run)")
    parser.add_argument("--harness-url", help="a harness already running (tests/apps/live_slider_app.py)")
    parser.add_argument("--server-slider-url", help="a dashboard whose Explore page has Streamlit's slider (e.g. the "
                        "commit before the live slider), measured the same way, by its λ metric")
    args = parser.parse_args(argv)
    if args.quick:
        args.moves = min(args.moves, 60)
    args.releases = args.releases or (1 if args.quick else 20)
    rows, latency, received = asyncio.run(run(args))
    print_table(rows)
    bare = np.median(latency["bare"])
    print(f"\nend of drag -> fully updated page (median of {len(latency['bare'])} releases each, interleaved; "
          f"p90 in brackets; kB the server sent per release):")
    for name, label in (("explore", "Explore page (MNIST, pixel range)"),
                        ("server-slider", "Explore page with Streamlit's slider (--server-slider-url)"),
                        ("harness", "live slider harness (MNIST, pixel range)"), ("bare", "bare Streamlit slider")):
        if latency[name]:
            median = np.median(latency[name])
            print(f"  {label}: {median:.0f} ms ({np.percentile(latency[name], 90):.0f}), "
                  f"{np.median(received[name]) / 1e3:.1f} kB; ratio to bare {median / bare:.2f} (target <= 1.5)")
    explore = rows[0]
    print(f"targets on the Explore page, MNIST with the pixel range: median solve+draw {explore['median_ms']:.2f} ms "
          f"(<= 2); {explore['paced_fps']:.1f} fps with a new lambda every frame (>= 55; idle {explore['idle_fps']:.1f}); "
          f"mouse at 250 Hz: {explore['fps']:.1f} frames with a new solution per s")
    return rows, latency


def print_table(rows) -> None:
    print("\n| scenario | mode | payload kB | solve+draw median ms | p99 ms | max ms | whole frame (script, style, "
          "layout, paint) median / p99 ms | fps, a new λ every frame (idle fps) | mouse at 250 Hz: frames with a new "
          "solution per s (display fps) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "median_ms" not in r:
            print(f"| {r['scenario']} | live view off: server slider | – | – | – | – | – | – | – |")
            continue
        print(f"| {r['scenario']} | {r['mode']} | {r['payload_kB']:.1f} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['max_ms']:.1f} | {r['work_median_ms']:.2f} / {r['work_p99_ms']:.2f} | {r['paced_fps']:.1f} "
              f"({r['idle_fps']:.1f}) | {r['fps']:.1f} ({r['display_fps']:.1f}) |")


if __name__ == "__main__":
    main()
