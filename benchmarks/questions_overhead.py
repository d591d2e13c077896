"""Per-call cost of the two questions against one warm ``invert`` on the same model (issue 8's target:
without constraints, ``minimal_flip`` and ``closest_with_probability`` within 3x of a warm invert).

For each model, 30 instances not predicted as their target; per instance the three calls are timed side
by side in interleaved rounds (the machines drift 2-5x within seconds), minimum of 7. The warm invert is
a slider step: lam moved by 0.02 decades from a previous result. Ratios are medians over instances.

    python benchmarks/questions_overhead.py            # writes benchmarks/results/questions_overhead.csv
    python benchmarks/questions_overhead.py --smoke    # 3 instances per model (used by the tests)
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
from solver import closest_with_probability, invert, minimal_flip  # noqa: E402
from training import train_softmax  # noqa: E402

MODELS = {"breast-cancer (K=2, D=30)": ("breast-cancer", True), "german-credit (K=2, D=61)": ("german-credit", True),
          "wine (K=3, D=13)": ("wine", True), "digits (K=10, D=64)": ("digits", False)}
ALPHA = 0.9
LAM = 0.1
GOAL = 3.0


def interleaved(calls: dict, rounds: int = 7, repeat: int = 20) -> dict:
    """Minimum seconds per call over ``rounds`` interleaved rounds of ``repeat`` calls each."""
    best = {name: np.inf for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(repeat):
                call()
            best[name] = min(best[name], (time.perf_counter() - start) / repeat)
    return best


def rows_for(label, name, standardize, n_instances, rng):
    data = datasets.load_builtin(name)
    model = train_softmax(data.X, data.y, data.class_names, data.feature_names, standardize=standardize).model
    predicted = model.predict(data.X)
    rows = []
    for i in rng.choice(data.n_samples, size=n_instances, replace=False):
        x0 = data.X[i]
        target = int(np.argsort(model.predict_proba(x0))[-2])  # the runner-up: 'what would make it ...'
        assert target != predicted[i]
        previous = invert(model, x0, target, LAM)
        calls = {
            "warm invert": lambda: invert(model, x0, target, LAM * 10**0.02, x_init=previous),
            "minimal_flip": lambda: minimal_flip(model, x0, target),
            "closest_with_probability": lambda: closest_with_probability(model, x0, target, ALPHA),
        }
        flip, sure = calls["minimal_flip"](), calls["closest_with_probability"]()
        assert flip.success and sure.success and model.predict(flip.x) == target and sure.proba[target] >= ALPHA
        best = interleaved(calls)
        rows.append({"model": label, "instance": int(i), **{f"{k} us": 1e6 * v for k, v in best.items()}})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=30)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    n = 3 if args.smoke else args.instances
    rng = np.random.default_rng(0)
    frame = pd.DataFrame([row for label, (name, std) in MODELS.items() for row in rows_for(label, name, std, n, rng)])
    frame["flip / warm invert"] = frame["minimal_flip us"] / frame["warm invert us"]
    frame["probability / warm invert"] = frame["closest_with_probability us"] / frame["warm invert us"]
    summary = frame.drop(columns="instance").groupby("model", sort=False).median()
    summary["flip within 3x"] = summary["flip / warm invert"] <= GOAL
    summary["probability within 3x"] = summary["probability / warm invert"] <= GOAL
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / ("smoke_questions_overhead.csv" if args.smoke else "questions_overhead.csv"), index=False)
    print(f"Machine: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}; "
          f"{n} instances per model, medians of per-instance minima over 7 interleaved rounds\n")
    print(summary.reset_index().to_markdown(index=False, floatfmt=".3g"))
    return frame, summary


if __name__ == "__main__":
    main()
