"""What the browser tests and the browser benchmarks share: a Streamlit server on a free loopback port,
Debian's Chromium, and waiting until a page has gone quiet.

    with serving(["make", "--no-print-directory", "run"]) as url:   # the README's command, PORT appended
        ...
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
MAKE_RUN = ["make", "--no-print-directory", "run"]  # the README's command; the port goes in as PORT=...
BUSY = '[data-testid="stSpinner"], [data-testid="stSkeleton"], [data-testid="stStatusWidget"]'
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def streamlit_command(script: str | Path = "app.py", *extra: str) -> list[str]:
    """``python -m streamlit run script`` with this interpreter, headless, on loopback."""
    return [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
            "--server.address", "127.0.0.1", *extra]


def start(command: list[str], port: int, env: dict[str, str] | None = None, quiet: bool = False,
          timeout_s: float = 120.0) -> subprocess.Popen:
    """Start ``command`` on ``port`` from the repository's root (``PORT=port`` for make, else
    ``--server.port port``) in its own process group; return once ``/_stcore/health`` answers."""
    port_argument = [f"PORT={port}"] if command[0] == "make" else ["--server.port", str(port)]
    # A file, not a pipe: nobody reads the server's output while it runs, and a full pipe would block it.
    output = subprocess.DEVNULL if quiet else tempfile.TemporaryFile()
    process = subprocess.Popen([*command, *port_argument], cwd=ROOT, env={**os.environ, **(env or {})},
                               stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return process
        except OSError:
            time.sleep(0.3)
        if process.poll() is not None:
            tail = "" if quiet else _tail(output)
            raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}: {tail}")
    stop(process)
    raise RuntimeError(f"{' '.join(command)} did not answer its health check within {timeout_s:.0f} s")


def _tail(output, n_bytes: int = 2000) -> str:
    output.seek(0)
    return output.read().decode(errors="replace")[-n_bytes:]


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    process.wait(timeout=30)


@contextmanager
def serving(command: list[str] | None = None, env: dict[str, str] | None = None,
            quiet: bool = False) -> Iterator[str]:
    """The URL of a fresh server started with ``command`` (default ``make run``), stopped on exit."""
    port = free_port()
    process = start(command or MAKE_RUN, port, env, quiet)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def wait_until_idle(page, timeout_s: float = 120.0) -> None:
    """Until the page has a title and Streamlit shows no spinner or running indicator for a second."""
    page.wait_for_selector("h1", timeout=timeout_s * 1000)
    deadline, quiet_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if page.locator(BUSY).count() > 0:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        time.sleep(0.2)
    raise AssertionError("the page kept running")


def errors(page) -> list[str]:
    """Tracebacks and st.error boxes on the page (Streamlit renders st.error as stAlertContentError)."""
    return page.locator(ERRORS).all_inner_texts()


# -- this app's pages ------------------------------------------------------------------------------------
def go_to(page, title: str) -> None:
    """Open the sidebar's page ``title`` (Explore, Data or Model) and wait until it has run."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
    wait_until_idle(page)
    page.wait_for_function("(t) => document.querySelector('h1') && document.querySelector('h1').innerText.includes(t)",
                           arg={"Explore": "Explore", "Data": "Data", "Model": "Model"}[title], timeout=60_000)


def upload(page, tab: str, path: Path, button: str) -> None:
    """Put ``path`` in the uploader of tab ``tab`` and press ``button``; raise if the page shows an error."""
    page.locator('[data-testid="stTab"]', has_text=tab).click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.get_by_role("button", name=button).wait_for(timeout=120_000)
    wait_until_idle(page)
    page.get_by_role("button", name=button).click()
    wait_until_idle(page)
    problems = errors(page)
    if problems:
        raise RuntimeError(f"{path.name}: {problems}")


def sidebar_shows(page, text: str) -> None:
    """Wait until the sidebar's summary of the data and model shows ``text``."""
    try:
        page.wait_for_function("(text) => document.querySelector('[data-testid=\"stSidebarUserContent\"]')"
                               ".innerText.includes(text)", arg=text, timeout=120_000)
    except Exception as exc:
        raise RuntimeError(f"the sidebar never showed {text!r}; errors on the page: {errors(page)}") from exc
