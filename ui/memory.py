"""What the server keeps in memory, for how long, and when it gives memory back.

Two lifetimes:

- **Shared by content** (:class:`SharedCache`): built-in datasets and the models trained on them, the
  same for every user. Least recently used first out, bounded in entries *and* in bytes.
- **One session's own** (an upload, its models, its answers): in ``st.session_state`` or in a
  session-scoped cache, never in a shared one. :func:`watch_session` makes sure it goes when the
  session does. Streamlit keeps a closed tab's session for ``server.disconnectedSessionTTL`` seconds
  in case it reconnects, but only drops it from that store when some *other* session later
  disconnects, and then only frees it (and the upload's bytes, and the deferred downloads that hold its
  data) when a full garbage collection finds the session's reference cycles, which
  ``runner.postScriptGC = false`` makes rare. So just before the reconnect window ends this module
  closes the session itself (``Runtime.close_session``), empties its state and collects.

:func:`collect` is a full collection followed by glibc's ``malloc_trim``, which hands freed heap pages
back to the operating system; it runs when a session ends and after an upload, never on a slider move.
:func:`tune_malloc` keeps glibc from holding on to large freed blocks and from spreading freed heap
over one arena per thread.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
import sys
import threading
import time
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields, is_dataclass
from typing import Generic, TypeVar

import numpy as np

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

# A disconnected session is closed here at this fraction of Streamlit's reconnect window: once the
# window has passed, Streamlit's store reports the session absent (so it cannot be closed) while still
# holding it.
CLOSE_AT = 0.9
COLLECT_DELAY_S = 1.0  # sessions closed within this delay share one collection


# -- sizes -------------------------------------------------------------------------------------------
def deep_nbytes(obj, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """Bytes of the numpy arrays, bytes and strings reachable from ``obj`` through containers,
    dataclass fields and instance attributes, each counted once (a view counts its base).

    An estimate of what keeping ``obj`` costs: the arrays dominate everything this app caches;
    Python object headers are not counted.
    """
    seen = set() if _seen is None else _seen
    if _depth > 12 or id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if base is not obj:
            return deep_nbytes(base, seen, _depth + 1)
        return int(obj.nbytes) + (deep_nbytes(obj.base, seen, _depth + 1) if obj.base is not None else 0)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return len(obj)
    if isinstance(obj, str):
        return len(obj)
    if type(obj).__module__.startswith("pandas") and hasattr(obj, "memory_usage"):
        usage = obj.memory_usage(deep=True)  # a DataFrame's or Series' blocks (no __dict__ to follow)
        return int(usage.sum() if hasattr(usage, "sum") else usage)
    if isinstance(obj, (int, float, complex, bool, type(None), types.ModuleType)) or callable(obj):
        return 0  # functions, classes and locks hold no data of their own here
    if isinstance(obj, dict):
        return sum(deep_nbytes(k, seen, _depth + 1) + deep_nbytes(v, seen, _depth + 1) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(deep_nbytes(item, seen, _depth + 1) for item in obj)
    if is_dataclass(obj):
        values = [getattr(obj, f.name, None) for f in fields(obj)]
    else:
        values = list(getattr(obj, "__dict__", {}).values())  # attribute values; their names are not data
    return sum(deep_nbytes(value, seen, _depth + 1) for value in values)


# -- shared by content ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CacheUsage:
    name: str
    entries: int
    max_entries: int
    nbytes: int
    max_bytes: int


class SharedCache(Generic[T]):
    """Immutable objects keyed by content (a dataset name, a content hash and training parameters),
    shared by every session (or, kept in session state, one session's own): least recently used evicted
    first, to at most ``max_entries`` entries and ``max_bytes`` bytes (measured once per entry with
    ``sizeof``). An object larger than ``max_bytes`` on its own is returned but not kept. Thread-safe;
    concurrent misses on one key make the object once when it is kept (a waiting caller then finds it).
    """

    def __init__(self, name: str, max_entries: int, max_bytes: int, sizeof: Callable[[object], int] = deep_nbytes):
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"max_entries and max_bytes must be >= 1, got {max_entries} and {max_bytes}")
        self.name = name
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes)
        self._sizeof = sizeof
        self._entries: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The object under ``key``, made with ``make()`` (and kept, if it fits) on a miss."""
        with self._lock:
            hit = self._hit(key)
            if hit is not None:
                return hit[0]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            try:
                with self._lock:
                    hit = self._hit(key)
                if hit is not None:
                    return hit[0]
                value = make()
                size = int(self._sizeof(value))
                with self._lock:
                    if size <= self.max_bytes and key not in self._entries:
                        self._entries[key] = (value, size)
                        self._nbytes += size
                        self._evict()
                return value
            finally:  # also when make() raises: no lock is left behind for the key
                with self._lock:
                    if self._making.get(key) is making:
                        del self._making[key]

    def _hit(self, key):
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def _evict(self) -> None:
        while len(self._entries) > self.max_entries or self._nbytes > self.max_bytes:
            _, (_, size) = self._entries.popitem(last=False)
            self._nbytes -= size

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def values(self) -> list[T]:
        with self._lock:
            return [value for value, _ in self._entries.values()]

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes

    def usage(self) -> CacheUsage:
        with self._lock:
            return CacheUsage(self.name, len(self._entries), self.max_entries, self._nbytes, self.max_bytes)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._nbytes = 0


# -- giving memory back ------------------------------------------------------------------------------
def _glibc_function(name: str, argtypes):
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


_MALLOC_TRIM = _glibc_function("malloc_trim", [ctypes.c_size_t])
_MALLOPT = _glibc_function("mallopt", [ctypes.c_int, ctypes.c_int])
# glibc's malloc.h: mallopt parameters, and the environment variables that set them at start-up.
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
MALLOC_SETTINGS = {
    "MALLOC_MMAP_THRESHOLD_": (_M_MMAP_THRESHOLD, 256 * 2**10),
    "MALLOC_ARENA_MAX": (_M_ARENA_MAX, 2),
}
_COLLECT_LOCK = threading.Lock()


def tune_malloc() -> dict[str, int]:
    """Keep glibc from holding on to freed heap; returns the settings made (those the environment
    does not set already, by their environment variable's name).

    - ``M_MMAP_THRESHOLD`` fixed at 256 KiB: every larger block (an upload's bytes, pandas' parse
      buffers, feature matrices) is its own mapping, returned to the system when freed. Left alone,
      glibc raises this threshold to the largest block freed so far (up to 32 MiB), after which such
      blocks come from the heap and their pages stay with the process.
    - ``M_ARENA_MAX`` 2: glibc gives threads arenas of their own, up to 8 per core, and every
      Streamlit script run is a thread; heap freed in one arena serves only the threads on it.

    Set at the first script run, after the server's own threads have made their arenas, so
    ``MALLOC_ARENA_MAX=2`` in the server's environment limits arenas better (README, Memory).
    """
    if _MALLOPT is None:
        return {}
    made = {}
    for variable, (parameter, value) in MALLOC_SETTINGS.items():
        if variable not in os.environ and _MALLOPT(parameter, value):
            made[variable] = value
    return made


def collect() -> float:
    """A full garbage collection, then ``malloc_trim(0)`` (glibc): what was freed goes back to the
    operating system instead of staying in the process's heap. Returns the seconds it took.

    Holds the interpreter for tens of milliseconds: call it when a session ends or after an upload,
    never on the slider's path.
    """
    start = time.perf_counter()
    unpin_import_threads()
    with _COLLECT_LOCK:
        gc.collect()
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)
    return time.perf_counter() - start


def unpin_import_threads() -> None:
    """Forget the script thread a library recorded when it was first imported during a script run.

    ``dask.threaded`` keeps ``main_thread = current_thread()`` from its import, and scikit-learn's
    estimator discovery (which ``skops`` runs on import) imports dask when it is installed. Imported on
    the Model page, that thread is a script thread: its run context holds its session's state, upload
    included, for the life of the server. dask means the process's main thread.
    """
    threaded = sys.modules.get("dask.threaded")
    if threaded is not None and getattr(threaded, "main_thread", None) is not threading.main_thread():
        threaded.main_thread = threading.main_thread()


# -- one session's own ---------------------------------------------------------------------------------
class _SessionUploads:
    """Weak references to every session's uploaded datasets and models: what is still alive, and of
    which session (for the test that a closed session's upload is gone, and for the metrics)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._refs: list[tuple[str, str, weakref.ref]] = []

    def add(self, session_id: str, what: str, obj) -> None:
        with self._lock:
            self._refs = [entry for entry in self._refs if entry[2]() is not None]
            self._refs.append((session_id, what, weakref.ref(obj)))

    def alive(self) -> list[tuple[str, str, object]]:
        """(session id, kind, object) of every tracked object not yet freed."""
        with self._lock:
            entries = [(sid, what, ref()) for sid, what, ref in self._refs]
        return [(sid, what, obj) for sid, what, obj in entries if obj is not None]


SESSION_UPLOADS = _SessionUploads()


def current_session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def track_upload(what: str, obj) -> None:
    """Remember (weakly) that ``obj`` belongs to the current session only."""
    session_id = current_session_id()
    SESSION_UPLOADS.add(session_id or "", what, obj)


@dataclass(frozen=True)
class _Watch:
    session_id: str
    session: weakref.ref  # to the AppSession, so that watching it does not keep it alive


# The disconnect each session's pending close belongs to: a reconnect and a new disconnect replace it.
_PENDING_CLOSE: dict[str, object] = {}


def _disconnect_ttl() -> float:
    from streamlit import config

    return float(config.get_option("server.disconnectedSessionTTL"))


def _close_if_still_disconnected(watch: _Watch, token: object) -> None:
    """On Streamlit's event loop, near the end of the reconnect window after a disconnect: close the
    session unless it came back, empty its state, then collect.

    Emptying matters because Streamlit's message loop keeps the last session it served in a local
    variable until it serves another one; an emptied session holds nothing of its upload.
    """
    session_id = watch.session_id
    if _PENDING_CLOSE.get(session_id) is not token:
        return  # reconnected and disconnected again since: that disconnect's timer decides
    del _PENDING_CLOSE[session_id]
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return
    runtime = Runtime.instance()
    if runtime.is_active_session(session_id):
        return
    runtime.close_session(session_id)
    session = watch.session()
    if session is not None:
        _empty(session.session_state)
        del session
    _LOGGER.debug("closed session %s %.0f s after it disconnected", session_id, CLOSE_AT * _disconnect_ttl())
    _collect_soon(asyncio.get_running_loop())


_COLLECT_PENDING = False


def _collect_soon(loop) -> None:
    """One collection for all the sessions closed within a second (a class leaving at once)."""
    global _COLLECT_PENDING
    if _COLLECT_PENDING:
        return
    _COLLECT_PENDING = True

    def run():
        global _COLLECT_PENDING
        _COLLECT_PENDING = False
        _LOGGER.debug("collected in %.3f s", collect())

    loop.call_later(COLLECT_DELAY_S, run)


def _empty(session_state) -> None:
    """Empty a closed session's state. ``SessionState.clear()`` drops the values but keeps every
    widget's metadata, whose format and callback functions may hold the session's data (the instance
    picker's labels hold the dataset): those go too."""
    session_state.clear()
    metadata = getattr(getattr(session_state, "_new_widget_state", None), "widget_metadata", None)
    if isinstance(metadata, dict):
        metadata.clear()


def _on_session_release(watch: _Watch) -> None:
    """Streamlit clears a session's session-scoped caches when its tab disconnects (on the event loop)
    and when the session shuts down; either way, arrange for the session to go."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a shutdown outside the event loop (the session is going anyway)
        threading.Timer(1.0, collect).start()
        return
    token = object()
    _PENDING_CLOSE[watch.session_id] = token
    loop.call_later(CLOSE_AT * _disconnect_ttl(), _close_if_still_disconnected, watch, token)


def _session_watch_cache():
    import streamlit as st

    @st.cache_resource(scope="session", on_release=_on_session_release, show_spinner=False, max_entries=1)
    def session_watch(session_id: str) -> _Watch:
        from streamlit.runtime import Runtime

        session = Runtime.instance().get_app_session(session_id) if Runtime.exists() else None
        return _Watch(session_id, weakref.ref(session) if session is not None else lambda: None)

    return session_watch


_SESSION_WATCH = None
_INSTALL_LOCK = threading.Lock()


def watch_session(shared: tuple[SharedCache, ...] = ()) -> None:
    """Call on every script run: when this session's tab disconnects and does not come back within
    ``server.disconnectedSessionTTL`` seconds, the session is closed and its memory collected. The
    first call also tunes glibc's malloc (:func:`tune_malloc`) and adds the
    ``shared`` caches and the sessions' live uploads to the server's ``/_stcore/metrics`` (family
    ``cache_memory_bytes``); every call lets go of script threads pinned by imports
    (:func:`unpin_import_threads`)."""
    global _SESSION_WATCH
    session_id = current_session_id()
    if session_id is None:
        return
    if _SESSION_WATCH is None:
        with _INSTALL_LOCK:
            if _SESSION_WATCH is None:
                tune_malloc()
                _register_metrics(shared)
                _SESSION_WATCH = _session_watch_cache()
    unpin_import_threads()
    _SESSION_WATCH(session_id)


# -- metrics -------------------------------------------------------------------------------------------
UPLOADS_CATEGORY = "inverse_classification_session_uploads"
SHARED_CATEGORY = "inverse_classification_shared_cache"


class _MemoryStats:
    """A Streamlit StatsProvider: bytes in each shared cache, and the bytes of every session's uploads
    still alive (one entry per kind: "dataset", "model", "trained model")."""

    def __init__(self, shared: tuple[SharedCache, ...]):
        self._shared = shared

    @property
    def stats_families(self):
        from streamlit.runtime.stats import CACHE_MEMORY_FAMILY

        return (CACHE_MEMORY_FAMILY,)

    def get_stats(self, family_names=None):
        from streamlit.runtime.stats import CACHE_MEMORY_FAMILY, CacheStat, group_cache_stats

        stats = [CacheStat(SHARED_CATEGORY, cache.name, cache.nbytes) for cache in self._shared]
        stats += [CacheStat(UPLOADS_CATEGORY, what, max(1, deep_nbytes(obj))) for _, what, obj in SESSION_UPLOADS.alive()]
        return {CACHE_MEMORY_FAMILY: group_cache_stats(stats)}


def _register_metrics(shared: tuple[SharedCache, ...]) -> None:
    from streamlit.runtime import Runtime

    if Runtime.exists():
        stats_mgr = getattr(Runtime.instance(), "stats_mgr", None)
        if stats_mgr is not None:
            stats_mgr.register_provider(_MemoryStats(shared))
