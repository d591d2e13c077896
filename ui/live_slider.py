"""The live lambda slider (issue 11): a Streamlit components-v2 element that solves in the browser.

The server poses the question once (model, instance, target, what may change) and ships it to the page as
raw float64 bytes; the page then solves exactly at every input event while the thumb moves, with ports of
the solver's reduced Newton (MATH.md section 2) and projected Newton (section 6) in
``live_slider_web/component.js``, and redraws the counterfactual, the difference, the probability bars and
the metrics. Only on release does it send the lambda back, and the rest of the page follows on the server.

Two forms of the problem, as :func:`solver.invert` poses them:

* ``"reduced"`` (no feature ranges): Newton on the K-1 margins. The page gets ``M = A P`` (K x r) and the
  source logits; with locks or costs the column-scaled model of MATH.md section 6 (free features
  ``y = sqrt(cost) x[free]``, fixed ones folded into the intercept). For images it also gets the lift
  ``L`` (r x D, ``x = x0 + L^T u`` in the user's features) to draw pixels; otherwise the payload does not
  grow with D at all.
* ``"projected"`` (feature ranges, e.g. pixels in [0, 1]): the free-feature weights ``A`` (K x D'), the
  intercept, ``y0`` and the ranges; projected Newton costs O(D' K^2) per iteration, so the live view turns
  itself off beyond :data:`MAX_PROJECTED_WORK` and the page falls back to the server slider.

The distance shown is the problem's own, ``sqrt(sum_j cost_j (x_j - x0_j)^2) = ||y - y0||`` (``= ||u||`` in
reduced form, the basis being orthonormal), as the Explore page measures it.

Sending: the header (the slider's value, the question's answer on screen, the echo of the last release) goes
with every rerun; the float64 arrays only when the page does not hold them yet (:func:`render`).

``build_payload`` is pure (numpy and the solver's public API); ``render`` mounts the component.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from solver import SoftmaxModel, pose_problem
from ui import memory

WEB = Path(__file__).with_name("live_slider_web")
COMPONENT_NAME = "inverse_classification.live_slider"
DEFAULT_LABEL = "log₁₀ λ  (left: bolder change, right: closer to the source)"
DEFAULT_DISTANCE_LABEL = "distance ‖x − x₀‖"
# Largest payload sent to the page (MNIST with the pixel range: about 190 kB).
MAX_PAYLOAD_BYTES = 8 * 2**20
# Largest K^2 D' (multiply-adds of one projected Newton iteration's K x K system) the page solves live.
# benchmarks/live_slider_benchmark.py in Chromium, K = 51: 1.3e6 (D = 500) holds 58 of 60 frames per second
# at a median 2.5 ms solve+draw; 2.6e6 (D = 1000) drops to 53 fps, 5.2e6 to 43. MNIST (K = 10, D = 784) is 7.8e4.
MAX_PROJECTED_WORK = 1_500_000
TOL = 1e-10
MAX_ITER = {"reduced": 200, "projected": 500}  # solver.invert's defaults for newton and projected-newton


@dataclass(frozen=True, eq=False)
class LivePayload:
    """What the page needs, or why the live view cannot run.

    Attributes
    ----------
    header : dict or None
        The question and the slider (None when the live view is off for this question).
    arrays : bytes
        The float64 arrays the header lists, packed.
    mode : str
        ``"reduced"``, ``"projected"``, or ``"off"``.
    reason : str
        Why the live view is off ("" when it is on).
    """

    header: dict | None
    arrays: bytes = b""
    mode: str = "off"
    reason: str = ""

    @property
    def live(self) -> bool:
        return self.header is not None

    @property
    def key(self) -> str | None:
        """Content key of the question (not of the slider's value)."""
        return None if self.header is None else self.header["key"]

    def to_bytes(self, echo=None, *, log_lam: float | None = None, answer: dict | None = None,
                 with_arrays: bool = True, module: tuple[str, str] | None = None) -> bytes:
        """uint32 header length, UTF-8 JSON header, zero padding to 8 bytes, then the float64 arrays.

        ``echo`` is the nonce of the last release the server has taken in: the page ignores a value that
        predates a release still on its way (fast arrow-key presses), instead of jumping back to it.
        ``log_lam`` moves the slider (default: the value the payload was built with). ``answer``
        (``{"title": ..., "box": CSS selector}``) says a question's answer is on screen: the page then shows
        the slider alone, and hides that box when the thumb moves. Without ``with_arrays`` only the header
        goes (a few hundred bytes): the page already holds the arrays of this key, or asks for them.
        ``module`` (key, source): the page's module (component.js) for the loader; its source goes with the
        arrays only."""
        if self.header is None:
            raise ValueError(f"the live view is off: {self.reason}")
        header = dict(self.header, echo=echo, answer=answer, with_arrays=bool(with_arrays))
        if module is not None:
            header["module_key"] = module[0]
            if with_arrays:
                header["module"] = module[1]
        if log_lam is not None:
            slider = header["log_lam"]
            header["log_lam"] = dict(slider, value=float(np.clip(log_lam, slider["min"], slider["max"])))
        text = json.dumps(header, allow_nan=False).encode()
        head = struct.pack("<I", len(text)) + text
        if not with_arrays:
            return head
        return head + b"\0" * (-len(head) % 8) + self.arrays

    @property
    def data(self) -> bytes | None:
        return self.to_bytes() if self.live else None

    @property
    def n_bytes(self) -> int:
        return len(self.to_bytes()) if self.live else 0


@dataclass(frozen=True, eq=False)
class CachedPayload:
    """A session's payload with the key of the question it poses (kept so that a move builds nothing)."""

    key: tuple
    payload: LivePayload


@dataclass(frozen=True, eq=False)
class _Posed:
    """The problem as :func:`solver.invert` poses it: a model on the free features ``y``, ``y0``, ranges."""

    model: SoftmaxModel
    y0: np.ndarray
    free: np.ndarray
    scale: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    base_key: tuple  # content key of the column scaling (not of x0)


def pose(model: SoftmaxModel, x0: np.ndarray, immutable=None, cost=None, bounds=None) -> _Posed:
    """The problem exactly as the solver poses it (:func:`solver.pose_problem`), with a content key for the
    column scaling: free features ``y = sqrt(cost) x[free]``, the fixed ones folded into the intercept."""
    problem = pose_problem(model, x0, immutable, cost, bounds)
    n = model.n_features
    constraints = problem.constraints
    free = np.arange(n) if constraints is None else constraints.free
    scale = np.ones(n) if constraints is None else constraints.scale
    if not problem.rescaled:
        base_key = (model.fingerprint, "plain")
    else:
        base_key = (model.fingerprint, hashlib.sha256(constraints.key).hexdigest())
    return _Posed(problem.model, problem.x0, free, scale, problem.lower, problem.upper, base_key)


# A lift is r x D floats: 0.06 MB for MNIST, a few MB for the widest text tables.
SHARED_LIFTS = memory.SharedCache("live slider lifts", max_entries=8, max_bytes=32 * 2**20)


def _lift(posed: _Posed, n_features: int, cache: memory.SharedCache | None) -> np.ndarray:
    """``L`` (r x D) with ``x - x0 = L^T u`` in the user's features (images draw pixels with it); O(D K r)
    once per model and column scaling, kept in ``cache`` (if given) keyed by content (model fingerprint,
    free set, costs)."""
    def make():
        basis = posed.model.reduced_basis()
        P_rows = basis.lift(np.eye(basis.rank))  # rows P^T (r x D')
        lift = np.zeros((basis.rank, n_features))
        lift[:, posed.free] = P_rows / posed.scale
        return lift

    return make() if cache is None else cache.get((posed.base_key, n_features), make)


def _pack_arrays(arrays: dict) -> tuple[dict, bytes]:
    """Offsets and lengths (in float64s) of the arrays, and their little-endian bytes end to end."""
    offsets, chunks, position = {}, [], 0
    for name, values in arrays.items():
        flat = np.ascontiguousarray(values, dtype="<f8").ravel()
        offsets[name] = [position, int(flat.size)]
        chunks.append(flat.tobytes())
        position += flat.size
    return offsets, b"".join(chunks)


def build_payload(model: SoftmaxModel, x0, target: int, log_lam: float, *, log_lam_range=(-4.0, 2.0),
                  log_lam_step: float = 0.02, class_names=None, image_shape=None, immutable=None, cost=None,
                  bounds=None, label: str = DEFAULT_LABEL, target_colour: str = "#1f77b4",
                  distance_label: str = DEFAULT_DISTANCE_LABEL,
                  max_projected_work: float = MAX_PROJECTED_WORK,
                  lifts: memory.SharedCache | None = SHARED_LIFTS) -> LivePayload:
    """Pose the question for the page and pack it, or say why the live view cannot run.

    Parameters
    ----------
    model : SoftmaxModel
    x0 : array_like (D,)
    target : int
    log_lam : float
        The slider's value, log10 of lambda.
    log_lam_range, log_lam_step
        The slider's ends and step (log10 units).
    class_names : sequence of str, optional
    image_shape : (height, width), optional
        Draw the source, counterfactual and difference on canvases (requires ``height * width == D``).
    immutable, cost, bounds
        As in :func:`solver.invert`.
    label, distance_label, target_colour
        The slider's label, the distance metric's label, the target's bar colour.
    max_projected_work : float
        With ranges, the largest ``K^2 D'`` solved live (benchmarks lift it to find where frames slow down).
    lifts : memory.SharedCache or None
        Where an image's lift is kept; None for a session's own model (computed for each payload).

    Returns
    -------
    LivePayload
        O(K r) floats in reduced form (plus r D for an image's lift); O(K D') in projected form.
        Its ``key`` hashes the question and the arrays, not the slider's value.
    """
    if not isinstance(model, SoftmaxModel):
        raise ValueError(f"model must be a solver.SoftmaxModel, got {type(model).__name__}")
    x0 = np.asarray(x0, dtype=np.float64)
    n_classes, n_features = model.n_classes, model.n_features
    if x0.shape != (n_features,) or not np.all(np.isfinite(x0)):
        raise ValueError(f"x0 must be a finite vector of {n_features} features")
    if not (isinstance(target, (int, np.integer)) and 0 <= target < n_classes):
        raise ValueError(f"target must be a class index in 0..{n_classes - 1}, got {target!r}")
    target = int(target)
    if image_shape is not None and int(np.prod(image_shape)) != n_features:
        raise ValueError(f"image_shape {tuple(image_shape)} does not hold {n_features} features")
    names = [str(c) for c in (model.classes if class_names is None else class_names)]
    posed = pose(model, x0, immutable, cost, bounds)
    scaled = posed.model
    n_free = posed.free.size
    low, high = map(float, log_lam_range)
    header = dict(version=1, target=target, n_classes=n_classes, n_features=n_features, class_names=names,
                  target_colour=target_colour, tol=TOL, label=label, distance_label=distance_label,
                  image_shape=None if image_shape is None else [int(s) for s in image_shape])
    arrays = {"proba0": model.predict_proba(x0)}
    if posed.lower is None:
        basis = scaled.reduced_basis()
        arrays.update(logits=scaled.coef @ posed.y0 + scaled.intercept, M=basis.M)
        if image_shape is not None:
            arrays.update(x0=x0, lift=_lift(posed, n_features, lifts))
        header.update(mode="reduced", rank=basis.rank, max_iter=MAX_ITER["reduced"],
                      note=_note("reduced", posed, n_features, basis.rank))
    else:
        work = n_classes**2 * n_free
        if work > max_projected_work:
            return LivePayload(None, mode="off", reason=f"the live view is off: with feature ranges each Newton iteration "
                               f"costs K²·D = {work:.2g} operations here (limit {max_projected_work:.1g}); "
                               "the slider solves on the server when released")
        arrays.update(coef=scaled.coef, intercept=scaled.intercept, y0=posed.y0, lower=posed.lower,
                      upper=posed.upper, scale=posed.scale, free=posed.free.astype(np.float64), x0=x0)
        header.update(mode="projected", n_free=n_free, max_iter=MAX_ITER["projected"],
                      note=_note("projected", posed, n_features, None))
    offsets, packed = _pack_arrays(arrays)
    if len(packed) > MAX_PAYLOAD_BYTES:
        return LivePayload(None, mode="off", reason=f"the live view is off: this question needs {len(packed) / 2**20:.1f}"
                           f" MB in the browser (limit {MAX_PAYLOAD_BYTES / 2**20:.0f} MB); the slider solves on the server")
    header["arrays"] = offsets
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    digest.update(packed)
    # The slider's value and ends are not part of the key: moving them keeps the page's problem and warm start.
    header.update(key=digest.hexdigest()[:32],
                  log_lam=dict(value=float(np.clip(log_lam, low, high)), min=low, max=high, step=float(log_lam_step)))
    return LivePayload(header, packed, header["mode"])


def _note(mode: str, posed: _Posed, n_features: int, rank: int | None) -> str:
    held = n_features - posed.free.size
    parts = [f"{held} feature(s) held"] if held else []
    if not np.all(posed.scale == 1.0):
        parts.append("per-feature costs")
    if mode == "reduced":
        method = f"exact Newton in the {rank} direction(s) the model can see"
    else:
        method = f"exact projected Newton on {posed.free.size} feature(s), each kept in its range"
    constraints = f" ({', '.join(parts)})" if parts else ""
    return (f"Solved in your browser at every move of the thumb: {method}{constraints}. "
            "The server takes over when you let go.")


# -- Streamlit ------------------------------------------------------------------------------------------
_COMPONENT = None
_MODULE = None


def _component():
    """The component, whose JavaScript is the small loader.js: Streamlit sends it with every rerun."""
    global _COMPONENT
    if _COMPONENT is None:
        import streamlit as st

        _COMPONENT = st.components.v2.component(
            COMPONENT_NAME, html=(WEB / "component.html").read_text(), css=(WEB / "component.css").read_text(),
            js=(WEB / "loader.js").read_text())
    return _COMPONENT


def _module() -> tuple[str, str]:
    """component.js (the solvers and the view) and a hash of it: sent to the page inside full payloads only."""
    global _MODULE
    if _MODULE is None:
        source = (WEB / "component.js").read_text()
        _MODULE = (hashlib.sha256(source.encode()).hexdigest()[:16], source)
    return _MODULE


def can_run_in_browser() -> bool:
    """False under Streamlit's AppTest, which runs no JavaScript (the page then shows the server slider)."""
    from streamlit import config  # AppTest patches config.get_option itself, not the st.get_option alias

    return not config.get_option("global.appTest")


def released_log_lam(value, log_lam_range) -> float | None:
    """The log10 lambda the page sent on release, validated (it comes from the browser), or None."""
    if not isinstance(value, dict):
        return None
    log_lam = value.get("log_lam")
    if isinstance(log_lam, bool) or not isinstance(log_lam, (int, float)) or not np.isfinite(log_lam):
        return None
    low, high = log_lam_range
    return float(np.clip(log_lam, low, high))


def sent_key(key: str) -> str:
    """The session-state key under which :func:`render` keeps the payload key the page holds the arrays of."""
    return f"{key}_sent"


def forget_sent(key: str = "live_lambda") -> None:
    """The page may not hold the arrays any more (it was rebuilt): the next render sends them."""
    import streamlit as st

    st.session_state.pop(sent_key(key), None)


def render(payload: LivePayload, state_key: str, *, log_lam_range=(-4.0, 2.0), key: str = "live_lambda",
           answer: dict | None = None, on_change=None) -> bool:
    """Mount the live slider for ``payload`` at ``st.session_state[state_key]`` (log10 lambda); on release
    its lambda goes there and ``on_change()`` runs (also for a release at the same value).

    The float64 arrays and the page's module (component.js; Streamlit itself sends only loader.js with every
    rerun) go to the page only when it does not hold those of ``payload.key`` already (as far as the server
    knows: ``st.session_state[sent_key(key)]``); a page that lacks them asks with the "missing" state value,
    and the next run sends them. A rerun that only moves lambda sends a header of a few hundred bytes.
    ``answer`` (``{"title", "box"}``): a question's answer is on screen (see :meth:`LivePayload.to_bytes`).

    Returns False, rendering nothing, where the live view cannot run (the payload says it is off, or the
    script runs under AppTest): the caller then shows its server slider instead.
    """
    import streamlit as st

    if not payload.live or not can_run_in_browser():
        st.session_state.pop(sent_key(key), None)  # the component is not on the page: it holds nothing
        return False

    def copy_back():
        log_lam = released_log_lam(st.session_state[key].get("released"), log_lam_range)
        if log_lam is not None:
            st.session_state[state_key] = log_lam
            if on_change is not None:
                on_change()

    def resend():
        st.session_state.pop(sent_key(key), None)

    released = (st.session_state.get(key) or {}).get("released")
    echo = released.get("nonce") if isinstance(released, dict) else None
    echo = echo if isinstance(echo, (int, float)) and not isinstance(echo, bool) and np.isfinite(echo) else None
    with_arrays = st.session_state.get(sent_key(key)) != payload.key
    data = payload.to_bytes(echo, log_lam=st.session_state[state_key], answer=answer, with_arrays=with_arrays,
                            module=_module())
    _component()(key=key, data=data, on_released_change=copy_back, on_missing_change=resend, width="stretch",
                 height="content")
    st.session_state[sent_key(key)] = payload.key
    return True
