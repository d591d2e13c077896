"""The live slider without a browser: the payload Python builds, and component.js's solvers run under node
on it, against Python's solver.invert (reduced and projected Newton, locks, costs, ranges, K = 2..51)."""

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from solver import SoftmaxModel, invert
from ui import constraints, figures, live_slider

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "apps"))
NODE = shutil.which("node")
PROBA_TOL = 1e-9  # the bar: what the page shows equals invert's probabilities to 1e-9

# Runs component.js's exported functions on payload files; one JSON line of results per job.
RUNNER = r"""
import { readFileSync } from "node:fs";
const live = await import(process.argv[2]);
const jobs = JSON.parse(readFileSync(process.argv[3], "utf8"));
const results = [];
for (const job of jobs) {
  if (job.kind === "negLogProba") {
    results.push(job.rows.map(([w, target]) => {
      const proba = new Float64Array(w.length);
      return { value: live.negLogProba(Float64Array.from(w), target, proba), proba: Array.from(proba) };
    }));
    continue;
  }
  if (job.kind === "format") {
    results.push(job.values.map((v) => live.formatG(v, job.precision)));
    continue;
  }
  if (job.kind === "header") {
    const parsed = live.parsePayload(new Uint8Array(readFileSync(job.payload)));
    results.push({ header: parsed.header, arrays: parsed.arrays === null ? null : Object.keys(parsed.arrays) });
    continue;
  }
  if (job.kind === "pixels") {
    const x = Float64Array.from(job.x), x0 = Float64Array.from(job.x0);
    const grey = new Uint8Array(4 * x.length), diff = new Uint8Array(4 * x.length);
    live.greyPixels(x, grey);
    const bound = live.differencePixels(x, x0, diff);
    results.push({ grey: Array.from(grey), diff: Array.from(diff), bound });
    continue;
  }
  const problem = new live.LiveProblem(live.parsePayload(new Uint8Array(readFileSync(job.payload))));
  const frames = [];
  for (const lam of job.lams) {
    const f = problem.solve(lam, job.cold);
    frames.push({ lam, proba: Array.from(f.proba), x: f.x ? Array.from(f.x) : null, distance: f.distance,
                  status: f.status, nIter: f.nIter, gradNorm: f.gradNorm });
  }
  results.push({ header: problem.header, frames });
}
console.log(JSON.stringify(results));
"""


@pytest.fixture(scope="module")
def node_run(tmp_path_factory):
    """``run(jobs)``: component.js (copied as an ES module) on a list of jobs, under node."""
    if NODE is None:
        pytest.skip("node is not installed")
    folder = tmp_path_factory.mktemp("live_js")
    module = folder / "component.mjs"
    shutil.copy(live_slider.WEB / "component.js", module)
    runner = folder / "runner.mjs"
    runner.write_text(RUNNER)
    counter = iter(range(10**6))

    def run(jobs):
        prepared = []
        for job in jobs:
            if "payload" in job:
                path = folder / f"payload_{next(counter)}.bin"
                data = job["payload"]
                path.write_bytes(data if isinstance(data, bytes) else data.data)
                job = dict(job, payload=str(path))
            prepared.append(job)
        jobs_file = folder / f"jobs_{next(counter)}.json"
        jobs_file.write_text(json.dumps(prepared))
        done = subprocess.run([NODE, str(runner), module.as_uri(), str(jobs_file)], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout)

    return run


def decode(data: bytes):
    """An independent reader of the payload format: header length, JSON, padding, float64 arrays."""
    (length,) = struct.unpack("<I", data[:4])
    header = json.loads(data[4:4 + length].decode())
    base = 8 * -(-(4 + length) // 8)
    arrays = {name: np.frombuffer(data, "<f8", count=size, offset=base + 8 * offset)
              for name, (offset, size) in header["arrays"].items()}
    return header, arrays


def random_problem(seed, n_classes, n_features, scale=1.0):
    rng = np.random.default_rng(seed)
    model = SoftmaxModel(scale * rng.standard_normal((n_classes, n_features)), rng.standard_normal(n_classes))
    return model, rng.random(n_features), rng


REDUCED_BYTES_K51 = 8 * (51 * 50 + 2 * 51) + 4096  # M, logits, proba0, and a header
SWEEP = [float(v) for v in 10.0 ** np.concatenate([np.linspace(-1, -4, 46), np.linspace(-4, 2, 31)])]


def constraint_cases(rng, n_features):
    locked = np.zeros(n_features, dtype=bool)
    locked[: max(1, n_features // 6)] = True
    cost = rng.uniform(0.3, 3.0, n_features)
    lower, upper = np.full(n_features, -np.inf), np.full(n_features, np.inf)
    lower[::3], upper[1::4] = 0.0, 0.9
    return {
        "plain": {},
        "locks+costs": dict(immutable=locked, cost=cost),
        "unit range": dict(bounds=(0.0, 1.0)),
        "locks+costs+ranges": dict(immutable=locked, cost=cost, bounds=(lower, upper)),
    }


def projected_gradient_norm(model, x0, target, lam, arguments, x):
    """``||y - P(y - grad_y E)||`` in the solver's coordinates ``y = sqrt(cost) x[free]``, from scipy's softmax:
    a certificate of optimality for ``x`` that does not depend on how it was found."""
    from scipy.special import softmax

    n = model.n_features
    fixed = np.zeros(n, dtype=bool) if arguments.get("immutable") is None else np.asarray(arguments["immutable"])
    cost = np.ones(n) if arguments.get("cost") is None else np.asarray(arguments["cost"])
    free = ~fixed & (cost > 0)
    scale = np.sqrt(cost[free])
    residual = softmax(model.coef @ x + model.intercept)
    residual[target] -= 1.0
    gradient = lam * scale * (x - x0)[free] + (model.coef.T @ residual)[free] / scale
    y = scale * x[free]
    low, high = arguments.get("bounds") or (-np.inf, np.inf)
    low, high = np.broadcast_to(low, (n,))[free] * scale, np.broadcast_to(high, (n,))[free] * scale
    return float(np.linalg.norm(y - np.clip(y - gradient, low, high)))


def assert_frames_match(model, x0, target, arguments, frames, cold, label=""):
    same_method = "bounds" in arguments or model.n_classes > 2  # Python's K = 2 default is the closed form
    for frame in frames:
        reference = invert(model, x0, target, frame["lam"], **arguments)
        assert frame["status"] in (0, 4), frame  # CONVERGED or ROUND_OFF, as Python's success
        assert np.abs(np.array(frame["proba"]) - reference.proba).max() <= PROBA_TOL, (label, frame["lam"])
        assert abs(sum(frame["proba"]) - 1.0) < 1e-12
        if frame["x"] is None:
            continue
        x = np.array(frame["x"])
        # optimal by Python's own evaluation: tol 1e-10 plus the round-off of evaluating it elsewhere
        assert projected_gradient_norm(model, x0, target, frame["lam"], arguments, x) <= 1e-9, (label, frame["lam"])
        if cold and same_method:  # from x0 both take the same iterations: equal to round-off
            assert np.abs(x - reference.x).max() <= 1e-12 * (1 + np.abs(x).max())
        # the problem's own distance, as the Explore page measures it: sqrt(sum_j cost_j (x_j - x0_j)^2)
        cost = arguments.get("cost", np.ones(model.n_features))
        assert frame["distance"] == pytest.approx(constraints.distance(x, x0, cost), rel=1e-12)
        if arguments.get("immutable") is not None:  # locks hold bit for bit
            assert np.array_equal(x[arguments["immutable"]], x0[arguments["immutable"]])


@pytest.mark.parametrize("n_classes", [2, 6, 12])
def test_node_solver_equals_invert_with_and_without_constraints(node_run, n_classes):
    model, x0, rng = random_problem(n_classes, n_classes, 30)
    target = 1
    jobs, cases = [], []
    for name, arguments in constraint_cases(rng, 30).items():
        payload = live_slider.build_payload(model, x0, target, -1.0, image_shape=(5, 6), **arguments)
        assert payload.mode == ("projected" if "bounds" in arguments else "reduced")
        for cold in (True, False):
            jobs.append(dict(payload=payload, lams=SWEEP, cold=cold))
            cases.append((name, arguments, cold))
    for (name, arguments, cold), result in zip(cases, node_run(jobs)):
        assert_frames_match(model, x0, target, arguments, result["frames"], cold, label=name)


def test_node_warm_start_takes_fewer_iterations_than_cold(node_run):
    model, x0, _ = random_problem(3, 10, 50)
    lams = [float(v) for v in 10.0 ** np.arange(-1.0, -3.0, -0.02)]  # a drag, one slider step per frame
    payloads = [live_slider.build_payload(model, x0, 4, -1.0, **a) for a in ({}, dict(bounds=(0.0, 1.0)))]
    results = node_run([dict(payload=p, lams=lams, cold=c) for p in payloads for c in (True, False)])
    for cold, warm in (results[0:2], results[2:4]):
        cold_its = np.mean([f["nIter"] for f in cold["frames"]])
        warm_its = np.mean([f["nIter"] for f in warm["frames"]])
        assert warm_its < 0.6 * cold_its, (warm_its, cold_its)


def test_node_solver_on_mnist_and_german_credit_as_the_browser_sees_them(node_run):
    import live_scenarios

    jobs, scenarios = [], []
    for name in ("mnist", "mnist-free", "german", "german-ranges"):
        s = live_scenarios.build(name)
        payload = live_slider.build_payload(s.model, s.x0, s.target, -1.0, image_shape=s.image_shape,
                                            **s.arguments)
        jobs.append(dict(payload=payload, lams=SWEEP[::2], cold=False))
        scenarios.append(s)
    for s, result in zip(scenarios, node_run(jobs)):
        assert_frames_match(s.model, s.x0, s.target, s.arguments, result["frames"], cold=False, label=s.name)


def test_node_solver_on_an_rcv1_sized_model_needs_no_d_sized_payload(node_run):
    model, x0, _ = random_problem(5, 51, 4000, scale=0.1)
    payload = live_slider.build_payload(model, x0, 7, -1.0)
    header, arrays = decode(payload.data)
    assert header["rank"] == 50 and "lift" not in arrays and "x0" not in arrays
    assert payload.n_bytes <= REDUCED_BYTES_K51  # K r + r^2 + 2 K floats, whatever D is
    frames = node_run([dict(payload=payload, lams=SWEEP[::3], cold=False)])[0]["frames"]
    for frame in frames:
        reference = invert(model, x0, 7, frame["lam"])
        assert np.abs(np.array(frame["proba"]) - reference.proba).max() <= PROBA_TOL
        # ||u|| in the reduced space equals ||x - x0|| in the user's features (the basis is orthonormal)
        assert frame["distance"] == pytest.approx(np.linalg.norm(reference.x - x0), rel=1e-6)


def test_node_distance_is_the_problems_own_under_costs(node_run):
    """The distance shown is the one the Explore page shows, sqrt(sum_j cost_j (x_j - x0_j)^2), in both forms."""
    model, x0, rng = random_problem(8, 5, 40)
    arguments = dict(cost=rng.uniform(0.1, 10.0, 40), immutable=np.arange(40) < 4)
    lower = np.full(40, -np.inf)
    lower[10:20] = x0[10:20]  # these may only rise: projected Newton
    payloads = [live_slider.build_payload(model, x0, 2, -1.0, **arguments),  # no image, no D-sized array
                live_slider.build_payload(model, x0, 2, -1.0, bounds=(lower, np.inf), **arguments)]
    assert [p.mode for p in payloads] == ["reduced", "projected"]
    results = node_run([dict(payload=p, lams=[1e-3, 0.1, 10.0], cold=True) for p in payloads])
    for result, bounds in zip(results, [None, (lower, np.inf)]):
        for frame in result["frames"]:
            reference = invert(model, x0, 2, frame["lam"], bounds=bounds, **arguments)
            expected = constraints.distance(reference.x, x0, arguments["cost"])
            assert frame["distance"] == pytest.approx(expected, rel=1e-9)
            assert abs(frame["distance"] - np.linalg.norm(reference.x - x0)) > 1e-3 * expected  # not the plain one


def test_node_neg_log_proba_keeps_the_digits_when_the_target_dominates(node_run):
    import math

    from scipy.special import logsumexp, softmax

    rng = np.random.default_rng(9)
    rows = []
    for shift in (-60.0, -30.0, -12.0, -1.0, 0.5, 3.0, 40.0):
        w = rng.normal(shift, 2.0, 7)
        w[3] = 0.0  # relative logits: the target's is zero
        rows.append((w.tolist(), 3))
    results = node_run([dict(kind="negLogProba", rows=rows)])[0]
    for (w, target), result in zip(rows, results):
        w = np.array(w)
        others = [math.exp(v) for i, v in enumerate(w) if i != target]
        # -log p_k = log1p(sum of the others) when the target dominates: tiny, and exact to the last digits
        reference = math.log1p(math.fsum(others)) if w.max() <= 0 else float(logsumexp(w))
        assert result["value"] == pytest.approx(reference, rel=1e-14, abs=0.0)
        assert np.allclose(result["proba"], softmax(w), rtol=1e-13, atol=0.0)


def test_node_pixels_equal_the_servers_triptych(node_run):
    rng = np.random.default_rng(4)
    x0 = rng.random(48)
    x = np.clip(x0 + rng.normal(0, 0.4, 48), -0.2, 1.3)
    x[:3] = x0[:3]
    result = node_run([dict(kind="pixels", x=x.tolist(), x0=x0.tolist())])[0]
    (_, grey, diff), bound = figures.triptych_images(x0, x, (6, 8), pixel=1)
    rgba = lambda image: np.concatenate([image.reshape(-1, 3), np.full((48, 1), 255)], axis=1).ravel()  # noqa: E731
    assert np.array_equal(np.array(result["grey"]), rgba(grey))
    assert np.array_equal(np.array(result["diff"]), rgba(diff))
    assert result["bound"] == bound


def test_payload_round_trips_as_raw_float64_bytes():
    model, x0, _ = random_problem(1, 4, 12)
    payload = live_slider.build_payload(model, x0, 3, -0.5, log_lam_range=(-3.0, 1.0), log_lam_step=0.05,
                                        class_names=list("abcd"), image_shape=(3, 4))
    header, arrays = decode(payload.data)
    assert header["mode"] == "reduced" and header["target"] == 3 and header["class_names"] == list("abcd")
    assert header["log_lam"] == dict(value=-0.5, min=-3.0, max=1.0, step=0.05)
    basis = model.reduced_basis()
    assert np.array_equal(arrays["M"].reshape(4, basis.rank), basis.M)
    assert np.array_equal(arrays["x0"], x0)
    assert np.array_equal(arrays["logits"], model.coef @ x0 + model.intercept)
    lift = arrays["lift"].reshape(basis.rank, 12)
    assert np.allclose(lift @ lift.T, np.eye(basis.rank), atol=1e-12)  # orthonormal without costs
    # the question's key ignores the slider's value, so moving it keeps the page's problem and warm start
    moved = live_slider.build_payload(model, x0, 3, 0.5, log_lam_range=(-3.0, 1.0), log_lam_step=0.05,
                                      class_names=list("abcd"), image_shape=(3, 4))
    assert decode(moved.data)[0]["key"] == header["key"]
    other = live_slider.build_payload(model, x0, 2, 0.5, image_shape=(3, 4))
    assert decode(other.data)[0]["key"] != header["key"]


def test_live_view_turns_off_where_the_browser_would_struggle():
    model, x0, _ = random_problem(2, 51, 47236 // 4, scale=0.1)
    bounded = live_slider.build_payload(model, x0, 0, -1.0, bounds=(0.0, np.inf))
    assert not bounded.live and bounded.mode == "off" and "server" in bounded.reason
    assert bounded.n_bytes == 0
    free = live_slider.build_payload(model, x0, 0, -1.0)
    assert free.live and free.n_bytes <= REDUCED_BYTES_K51
    small = SoftmaxModel(model.coef[:, :500], model.intercept)
    assert live_slider.build_payload(small, x0[:500], 0, -1.0, bounds=(0.0, np.inf)).live  # 51^2 * 500 = 1.3e6


def test_bad_arguments_raise_value_errors_naming_them():
    model, x0, _ = random_problem(1, 3, 5)
    with pytest.raises(ValueError, match="x0"):
        live_slider.build_payload(model, np.full(5, np.nan), 0, -1.0)
    with pytest.raises(ValueError, match="target"):
        live_slider.build_payload(model, x0, 3, -1.0)
    with pytest.raises(ValueError, match="image_shape"):
        live_slider.build_payload(model, x0, 0, -1.0, image_shape=(2, 2))
    with pytest.raises(ValueError, match="immutable"):
        live_slider.build_payload(model, x0, 0, -1.0, immutable=np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match="immutable"):
        live_slider.build_payload(model, x0, 0, -1.0, immutable=[7])
    with pytest.raises(ValueError, match="cost"):
        live_slider.build_payload(model, x0, 0, -1.0, cost=-np.ones(5))


def test_released_values_from_the_browser_are_validated():
    low_high = (-4.0, 2.0)
    assert live_slider.released_log_lam({"log_lam": -1.3, "nonce": 0.2}, low_high) == -1.3
    assert live_slider.released_log_lam({"log_lam": 9.0}, low_high) == 2.0
    for junk in (None, "x", {"log_lam": "1"}, {"log_lam": float("nan")}, {"log_lam": True}, {}):
        assert live_slider.released_log_lam(junk, low_high) is None


def test_under_apptest_the_harness_falls_back_to_the_server_slider():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "tests" / "apps" / "live_slider_app.py"), default_timeout=120)
    at.query_params["scenario"] = "german"
    at.run()
    assert not at.exception, at.exception
    assert len(at.slider) == 1  # no JavaScript here: the component is not mounted, the server slider is
    shown = json.loads(at.text[0].value)
    at.slider[0].set_value(-2.0).run()
    after = json.loads(at.text[0].value)
    assert after["log_lam"] == -2.0 and after["proba"] != shown["proba"]


def test_node_formats_numbers_as_the_page_does(node_run):
    """Lambda and distances in the component read exactly as the server's f"{value:.4g}" (ui/view.py)."""
    rng = np.random.default_rng(3)
    values = [0.0, 1.0, 0.1, 1e-4, 10 ** -3.98, 99.99, 100.0, 123456.0, 0.00012345, 1.5e-5, 2.5, 0.0631,
              10 ** 1.2, 1e16, 9.99995, 0.099995] + list(10.0 ** rng.uniform(-6, 6, 200))
    for precision in (3, 4):
        shown = node_run([dict(kind="format", values=values, precision=precision)])[0]
        assert shown == [f"{v:.{precision}g}" for v in values]


def test_header_only_payloads_carry_the_slider_and_the_answer_but_no_arrays(node_run):
    model, x0, _ = random_problem(6, 4, 9)
    payload = live_slider.build_payload(model, x0, 1, -1.0, class_names=list("abcd"))
    answer = {"title": "Smallest change that flips the decision", "box": ".st-key-question_answer"}
    short = payload.to_bytes(0.25, log_lam=7.0, answer=answer, with_arrays=False, module=("k1", "// source"))
    full = payload.to_bytes(0.25, log_lam=-2.5, module=("k1", "// source"))
    assert full.endswith(payload.arrays) and len(short) == 4 + struct.unpack("<I", short[:4])[0] < 1000  # no arrays
    short_header, full_header = decode_header(short), decode_header(full)
    assert short_header["log_lam"]["value"] == 2.0  # clipped to the slider's range
    assert full_header["log_lam"]["value"] == -2.5 and full_header["module"] == "// source"
    assert "module" not in short_header and short_header["module_key"] == full_header["module_key"] == "k1"
    assert short_header["answer"] == answer and full_header["answer"] is None and short_header["echo"] == 0.25
    shown = node_run([dict(kind="header", payload=short), dict(kind="header", payload=full)])
    assert shown[0]["arrays"] is None and shown[0]["header"]["key"] == payload.key
    assert sorted(shown[1]["arrays"]) == sorted(full_header["arrays"])


def decode_header(data: bytes) -> dict:
    (length,) = struct.unpack("<I", data[:4])
    return json.loads(data[4:4 + length].decode())
