"""Harness: the live slider alone on one scenario (``?scenario=mnist&log_lam=-1``; text ones take ``d``, and
``work_limit`` lifts the live view's limit for the benchmark), and below it the server's
answer at the lambda the server holds, in full precision, for tests/test_browser_live.py and
benchmarks/live_slider_benchmark.py.

    streamlit run tests/apps/live_slider_app.py
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for folder in (ROOT, ROOT / "tests" / "apps"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import live_scenarios  # noqa: E402
import streamlit as st  # noqa: E402

from solver import invert  # noqa: E402
from ui import live_slider  # noqa: E402

RANGE, STEP = (-4.0, 2.0), 0.02

st.set_page_config(page_title="live slider harness", layout="wide")
st.title("Live slider harness")
name = st.query_params.get("scenario", "mnist")
n_features = int(st.query_params.get("d", 47236))
work_limit = float(st.query_params.get("work_limit", live_slider.MAX_PROJECTED_WORK))  # the benchmark lifts it
scenario = live_scenarios.build(name, n_features)
if "log_lam" not in st.session_state:
    st.session_state["log_lam"] = float(st.query_params.get("log_lam", -1.0))


@st.fragment
def panel():
    model, x0, target = scenario.model, scenario.x0, scenario.target
    payload = live_slider.build_payload(model, x0, target, st.session_state["log_lam"], log_lam_range=RANGE,
                                        log_lam_step=STEP, class_names=scenario.class_names,
                                        image_shape=scenario.image_shape, max_projected_work=work_limit,
                                        **scenario.arguments)
    live = live_slider.render(payload, "log_lam", log_lam_range=RANGE)
    if not live:
        st.slider("log₁₀ λ", *RANGE, step=STEP, key="log_lam")
        st.caption(payload.reason or "the live view cannot run here")
    lam = 10.0 ** st.session_state["log_lam"]
    result = invert(model, x0, target, lam, **scenario.arguments)
    st.text(json.dumps(dict(lam=lam, log_lam=st.session_state["log_lam"], proba=result.proba.tolist(),
                            mode=payload.mode, payload_bytes=payload.n_bytes, fingerprint=model.fingerprint)),
            help="the server's answer")


panel()
