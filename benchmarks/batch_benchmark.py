"""Whole-dataset throughput: the batched solvers against the per-row loop, in one run, interleaved.

Problems: digits (K = 10, D = 64), MNIST-5k (K = 10, D = 784; also with every pixel in [0, 1]), German
credit (K = 2, D = 61, one-hot groups frozen, costs in standard deviations) and an RCV1-sized synthetic
model (K = 51, D = 47236, TF-IDF-like rows from datasets.make_text_like). Each row gets a random target other than its predicted
class and, for invert, lam log-uniform in [1e-3, 1]. Per question and problem, the batch solves every
row and the loop calls the single-row function on a subset; the two are timed in alternating rounds
and the best round of each is kept (the machine is shared: its speed drifts within seconds). Every
batched answer in the subset is checked against the loop's (strong-convexity bound for invert, the
same answer for the questions). BLAS runs on one thread for both (``--threads``).

    python benchmarks/batch_benchmark.py            # full run (a few minutes)
    python benchmarks/batch_benchmark.py --smoke    # small sizes (used by the tests)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402
from solver import (  # noqa: E402
    SoftmaxModel,
    closest_with_probability,
    closest_with_probability_batch,
    invert,
    invert_batch,
    minimal_flip,
    minimal_flip_batch,
)
from training import train_softmax  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def problem(name: str, smoke: bool, rng):
    """``(label, model, X, constraints)``; X holds the candidate source rows."""
    if name == "digits":
        data = datasets.load_builtin("digits")
        return "digits (D=64, K=10)", train_softmax(data.X, data.y, data.class_names).model, data.X, {}
    if name == "mnist":
        data = datasets.load_builtin("mnist-5k")
        rows = rng.choice(data.n_samples, 1000, replace=False) if smoke else slice(None)
        model = train_softmax(data.X[rows], data.y[rows], data.class_names, standardize=False,
                              max_iter=50 if smoke else 300).model
        return "MNIST-5k (D=784, K=10)", model, data.X, {}
    if name == "mnist-ranges":
        data = datasets.load_builtin("mnist-5k")
        rows = rng.choice(data.n_samples, 1000, replace=False) if smoke else slice(None)
        model = train_softmax(data.X[rows], data.y[rows], data.class_names, standardize=False,
                              max_iter=50 if smoke else 300).model
        return "MNIST-5k, pixels in [0, 1]", model, data.X, dict(bounds=(0.0, 1.0))
    if name == "german":
        data = datasets.load_builtin("german-credit")
        model = train_softmax(data.X, data.y, data.class_names, feature_names=data.feature_names).model
        constraints = dict(categorical=[g.columns for g in data.encoding.categorical],
                           cost=1.0 / np.maximum(data.X.std(axis=0), 1e-3) ** 2)
        return "German credit (D=61, K=2; one-hot frozen, costs)", model, data.X, constraints
    n_features, n_classes = (3000, 11) if smoke else (47236, 51)
    coef = 0.1 * rng.standard_normal((n_classes, n_features))
    X, _ = datasets.make_text_like(60 if smoke else 400, n_features, n_classes, seed=1)
    return f"RCV1-sized synthetic (D={n_features}, K={n_classes})", SoftmaxModel(coef, rng.standard_normal(n_classes)), X, {}


def draw(model, X, n_rows, rng):
    rows = rng.integers(0, X.shape[0], n_rows)
    X0 = np.ascontiguousarray(X[rows])
    predicted = model.predict(X0)
    targets = (predicted + rng.integers(1, model.n_classes, n_rows)) % model.n_classes
    return X0, targets, 10.0 ** rng.uniform(-3, 0, n_rows)


def interleaved(solves: dict, rounds: int):
    """Best wall and CPU (process) time of each solve over ``rounds`` alternating rounds, and the first
    round's results. CPU time does not count the time this process waits for a core on a shared machine."""
    wall, cpu, results = {}, {}, {}
    for round_ in range(rounds):
        for name, solve in solves.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            out = solve()
            wall[name] = min(wall.get(name, np.inf), time.perf_counter() - start)
            cpu[name] = min(cpu.get(name, np.inf), time.process_time() - start_cpu)
            if round_ == 0:
                results[name] = out
    return wall, cpu, results


def check_invert(model, batch, loop, X0, lams, constraints):
    """Largest ``||x_batch - x_loop|| / ((g_b + g_l) / lam + round-off)``: at most 1 means within the bound."""
    cost = constraints.get("cost")
    worst = 0.0
    for i, single in enumerate(loop):
        gap = batch.X[i] - single.x
        if cost is not None:
            gap = np.sqrt(cost) * gap
        bound = (batch.grad_norm[i] + single.grad_norm) / lams[i] + 1e3 * np.finfo(float).eps * (
            1.0 + np.linalg.norm(single.x))
        worst = max(worst, float(np.linalg.norm(gap)) / bound)
    return worst


def check_same(batch, loop):
    """Largest difference between batched and single-row answers (max-norm), and whether successes agree."""
    agree = all(bool(batch.success[i]) == bool(s.success) for i, s in enumerate(loop))
    gaps = [float(np.abs(batch.X[i] - s.x).max()) for i, s in enumerate(loop) if s.success and batch.success[i]]
    return max(gaps, default=0.0), agree


def run(name, sizes, smoke, rounds, rng):
    label, model, X, constraints = problem(name, smoke, rng)
    model.reduced_basis()
    n_batch, n_loop = sizes
    X0, targets, lams = draw(model, X, n_batch, rng)
    frozen = single_kw = constraints
    rows = []
    questions = {
        "invert": (lambda: invert_batch(model, X0, targets, lams, **frozen),
                   lambda: [invert(model, X0[i], int(targets[i]), float(lams[i]), **_single(single_kw))
                            for i in range(n_loop)]),
        "minimal_flip": (lambda: minimal_flip_batch(model, X0, targets, **frozen),
                         lambda: [minimal_flip(model, X0[i], int(targets[i]), **single_kw) for i in range(n_loop)]),
        "closest_with_probability (alpha=0.9)": (
            lambda: closest_with_probability_batch(model, X0, targets, 0.9, **frozen),
            lambda: [closest_with_probability(model, X0[i], int(targets[i]), 0.9, **single_kw)
                     for i in range(n_loop)]),
    }
    for question, (batch_solve, loop_solve) in questions.items():
        best, cpu, results = interleaved({"batch": batch_solve, "loop": loop_solve}, rounds)
        batch, loop = results["batch"], results["loop"]
        batch_rate, loop_rate = n_batch / best["batch"], n_loop / best["loop"]
        cpu_ratio = (n_batch / cpu["batch"]) / (n_loop / cpu["loop"])
        if question == "invert":
            check = f"within the bound: worst ratio {check_invert(model, batch, loop, X0, lams, frozen):.2f} (<= 1)"
        else:
            gap, agree = check_same(batch, loop)
            check = f"max |x_batch - x_loop| = {gap:.1e}; success agrees: {agree}"
        rows.append(dict(problem=label, question=question, rows_batch=n_batch, rows_loop=n_loop,
                         batch_per_s=batch_rate, loop_per_s=loop_rate, speedup=batch_rate / loop_rate,
                         batch_per_cpu_s=n_batch / cpu["batch"], speedup_cpu=cpu_ratio,
                         success=float(batch.success.mean()), mean_iterations=float(batch.n_iter.mean()),
                         check=check))
        print(f"{label:52s} {question:38s} batch {batch_rate:9.0f}/s  loop {loop_rate:7.0f}/s  "
              f"x{batch_rate / loop_rate:5.1f} (CPU time x{cpu_ratio:5.1f})  {check}", flush=True)
    return rows


def _single(kwargs):
    """invert takes immutable, cost, bounds: one-hot groups frozen become immutable columns."""
    out = {k: v for k, v in kwargs.items() if k != "categorical"}
    if "categorical" in kwargs:
        out["immutable"] = sorted(j for group in kwargs["categorical"] for j in group)
    return out


SIZES = {"digits": (20000, 1000), "mnist": (5000, 500), "mnist-ranges": (2000, 40), "german": (10000, 1000),
         "rcv1": (400, 40)}
SMOKE_SIZES = {"digits": (300, 30), "mnist": (100, 10), "mnist-ranges": (40, 4), "german": (200, 20), "rcv1": (20, 4)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (both sides)")
    parser.add_argument("--problems", default="digits,mnist,mnist-ranges,german,rcv1")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    sizes = SMOKE_SIZES if args.smoke else SIZES
    rounds = args.rounds or (1 if args.smoke else 5)
    rows = []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name in args.problems.split(","):
            rows.extend(run(name, sizes[name], args.smoke, rounds, rng))
    frame = pd.DataFrame(rows)
    frame["machine"] = f"{platform.machine()}, {platform.python_version()}, numpy {np.__version__}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / ("smoke_batch.csv" if args.smoke else "batch_throughput.csv"), index=False)
    return frame


if __name__ == "__main__":
    main()
