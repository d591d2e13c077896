"""Memory (issue 13): shared caches are bounded in entries and bytes and hold only built-in data; a
session's upload, its models and its answers are its own and go when the session does."""

import gc
import threading
import time
import urllib.request
import weakref
from dataclasses import dataclass
from pathlib import Path

import browser_harness
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import datasets
from ui import memory, state

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 180


def table_csv(rows: int = 200, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4))
    labels = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")
    lines = ["a,b,c,d,label"] + [",".join(f"{v:.6f}" for v in x) + f",{y}" for x, y in zip(X, labels)]
    return "\n".join(lines).encode()


# -- sizes and the shared cache ----------------------------------------------------------------------
@dataclass(frozen=True)
class Holder:
    array: np.ndarray
    extra: object = None


def test_deep_nbytes_counts_every_array_once_and_a_view_as_its_base():
    a = np.zeros((100, 10))
    b = np.ones(7, dtype=np.float32)
    obj = {"a": a, "again": a, "row": a[3], "nested": [b, (b, Holder(b))], "text": "abc", "raw": b"12345"}
    assert memory.deep_nbytes(obj) == 8000 + 28 + 3 + 5 + len("a") + len("again") + len("row") + len("nested") + \
        len("text") + len("raw")
    iris = datasets.load_builtin("iris")
    assert iris.X.nbytes + iris.y.nbytes <= memory.deep_nbytes(iris) <= iris.X.nbytes + iris.y.nbytes + 10_000


def test_shared_cache_evicts_the_least_recently_used_to_stay_within_entries_and_bytes():
    cache = memory.SharedCache("test", max_entries=3, max_bytes=100, sizeof=len)
    made = []

    def make(key, size):
        return lambda: made.append(key) or "x" * size

    for key in "abc":
        cache.get(key, make(key, 10))
    cache.get("a", make("a", 10))  # a hit: a becomes the most recently used
    cache.get("d", make("d", 10))  # four entries: b, the least recently used, goes
    assert made == ["a", "b", "c", "d"] and [k for k in "abcd" if k in cache] == ["a", "c", "d"]
    cache.get("e", make("e", 85))  # 4 entries and 115 bytes: c goes (entries), then a (bytes)
    assert [k for k in "abcde" if k in cache] == ["d", "e"] and cache.nbytes == 95
    assert cache.usage() == memory.CacheUsage("test", 2, 3, 95, 100)
    cache.get("a", make("a", 10))
    assert made[-1] == "a" and "d" not in cache  # made again; d, now the least recently used, goes


def test_an_object_larger_than_the_byte_bound_is_returned_but_not_kept():
    cache = memory.SharedCache("test", max_entries=4, max_bytes=10, sizeof=len)
    assert cache.get("big", lambda: "y" * 11) == "y" * 11
    assert "big" not in cache and cache.nbytes == 0


def test_a_make_that_raises_keeps_nothing_and_leaves_no_lock_behind():
    cache = memory.SharedCache("test", max_entries=4, max_bytes=10**6)

    def fails():
        raise ValueError("cannot be posed")

    for _ in range(3):
        with pytest.raises(ValueError, match="cannot be posed"):
            cache.get(("question", 1), fails)
    assert len(cache) == 0 and cache._making == {}
    assert cache.get(("question", 1), lambda: "answer") == "answer" and cache._making == {}


def test_deep_nbytes_counts_a_dataframes_columns():
    import pandas as pd

    frame = pd.DataFrame(np.zeros((1000, 5)), columns=list("abcde"))
    frame["text"] = ["level %d" % (i % 7) for i in range(1000)]
    # 5 float64 columns, and at least one byte per character of each text cell
    assert memory.deep_nbytes(frame) >= 1000 * 5 * 8 + sum(len(t) for t in frame["text"])
    assert memory.deep_nbytes({"frame": frame}) == memory.deep_nbytes(frame) + len("frame")  # keys count too


def test_the_streamlit_internals_this_app_relies_on_are_there():
    """ui/memory.py empties a closed session's widget metadata and ui/state.py clears Streamlit's older
    multipage flag: a Streamlit release without them must fail here, not silently leak or misroute."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.state.session_state import SessionState

    assert hasattr(PagesManager, "uses_pages_directory")
    assert isinstance(SessionState()._new_widget_state.widget_metadata, dict)


def test_concurrent_misses_on_one_key_make_the_object_once():
    cache = memory.SharedCache("test", max_entries=4, max_bytes=10**6)
    calls, barrier = [], threading.Barrier(6)

    def make():
        calls.append(1)
        time.sleep(0.05)
        return np.arange(10)

    results = []
    threads = [threading.Thread(target=lambda: (barrier.wait(), results.append(cache.get("k", make))))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 6 and all(r is results[0] for r in results)


def test_the_shared_caches_fit_every_built_in_dataset():
    total = sum(memory.deep_nbytes(datasets.load_builtin(name)) for name in datasets.list_builtin())
    assert total <= state.SHARED_DATASETS.max_bytes
    assert len(datasets.list_builtin()) <= state.SHARED_DATASETS.max_entries


def test_malloc_tuning_leaves_what_the_operator_set_in_the_environment_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    made = memory.tune_malloc()
    if memory._MALLOPT is None:  # not glibc
        assert made == {}
    else:
        assert made == {"MALLOC_MMAP_THRESHOLD_": 256 * 2**10}


# -- a session's upload is its own -------------------------------------------------------------------
def test_a_closed_sessions_upload_and_its_models_are_unreachable_from_every_cache():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/data.py").run()
    at.file_uploader[0].set_value(("mine.csv", table_csv(), "text/csv")).run()
    next(b for b in at.button if b.label == "Use this upload").click().run()
    assert not at.exception and at.session_state["dataset_name"] == "upload:mine.csv"
    default_model = weakref.ref(at.session_state["trained"])
    at.switch_page("pages/model.py").run()
    at.select_slider[0].set_value(0.1)
    at.button[0].click().run()  # train again with C = 0.1
    at.switch_page("pages/explore.py").run()
    at.slider(key="_widget_log_lam").set_value(-2.0).run()
    assert not at.exception and "C=0.1" in at.session_state["model_label"]
    upload = weakref.ref(at.session_state["dataset"])
    retrained = weakref.ref(at.session_state["trained"])
    builtin = weakref.ref(state.builtin_dataset("mnist-5k"))
    shared = state.SHARED_DATASETS.values() + state.SHARED_MODELS.values()
    assert not any(value is upload() or value is default_model() or value is retrained() for value in shared)
    alive = [what for _, what, obj in memory.SESSION_UPLOADS.alive() if obj in (upload(), retrained())]
    assert sorted(alive) == ["dataset", "trained model"]
    del shared, alive

    # The session ends: Streamlit clears its session-scoped caches and drops its state.
    from streamlit.runtime import caching

    caching.clear_session_resource_cache("test session id")
    caching.clear_session_data_cache("test session id")
    del at
    gc.collect()
    assert upload() is None, gc.get_referrers(upload())
    assert default_model() is None and retrained() is None
    assert builtin() is not None and "mnist-5k" in state.SHARED_DATASETS  # what is shared stays


def test_an_upload_replaced_by_another_is_freed_while_the_session_goes_on():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/data.py").run()
    at.file_uploader[0].set_value(("first.csv", table_csv(seed=1), "text/csv")).run()
    next(b for b in at.button if b.label == "Use this upload").click().run()
    at.switch_page("pages/explore.py").run()
    first = weakref.ref(at.session_state["dataset"])
    first_model = weakref.ref(at.session_state["trained"])
    at.switch_page("pages/data.py").run()
    at.file_uploader[0].set_value(("second.csv", table_csv(seed=2), "text/csv")).run()
    next(b for b in at.button if b.label == "Use this upload").click().run()
    at.switch_page("pages/explore.py").run()
    assert not at.exception and at.session_state["dataset_name"] == "upload:second.csv"
    gc.collect()
    assert first() is None, [type(r).__name__ for r in gc.get_referrers(first())]
    # the first upload's model stays in the session's own cache (retraining it is free) until the session ends
    assert first_model() is not None and first_model().model.n_features == 4


# -- the same in a real server, after a real tab closes ------------------------------------------------
def metrics(url: str) -> dict[tuple[str, str], int]:
    with urllib.request.urlopen(f"{url}/_stcore/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("cache_memory_bytes{"):
            labels, value = line[len("cache_memory_bytes{"):].rsplit("} ", 1)
            fields = dict(item.split("=", 1) for item in labels.split(","))
            found[(fields["cache_type"].strip('"'), fields["cache"].strip('"'))] = int(float(value))
    return found


@pytest.fixture(scope="module")
def short_ttl_server():
    with browser_harness.serving(browser_harness.streamlit_command("app.py", "--server.disconnectedSessionTTL", "2"),
                                 quiet=True) as url:
        yield url


def test_a_closed_tabs_upload_is_released_by_the_server_soon_after_the_reconnect_window(short_ttl_server, browser,
                                                                                          tmp_path):
    url = short_ttl_server
    table = tmp_path / "mine.csv"
    table.write_bytes(table_csv(rows=2000))
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    browser_harness.wait_until_idle(page)
    browser_harness.go_to(page, "Data")
    browser_harness.upload(page, "Upload", table, "Use this upload")
    browser_harness.sidebar_shows(page, "upload:mine.csv")
    browser_harness.go_to(page, "Explore")
    open_tab = metrics(url)
    context.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = metrics(url)
        if not any(category == memory.UPLOADS_CATEGORY or category == "UploadedFileManager" for category, _ in after):
            break
        time.sleep(0.5)
    assert open_tab.get((memory.UPLOADS_CATEGORY, "dataset"), 0) >= 2000 * 4 * 8  # the upload, alive in its session
    assert open_tab.get((memory.UPLOADS_CATEGORY, "trained model"), 0) > 0
    assert open_tab.get(("UploadedFileManager", ""), 0) >= len(table.read_bytes())
    assert (memory.UPLOADS_CATEGORY, "dataset") not in after, after  # freed: no weak reference is alive
    assert (memory.UPLOADS_CATEGORY, "trained model") not in after, after
    assert ("UploadedFileManager", "") not in after, after  # the upload's bytes, gone with the session
    assert after.get((memory.SHARED_CATEGORY, "built-in datasets"), 0) >= datasets.load_builtin("mnist-5k").X.nbytes
