"""Reproduce the seed paper's Figure 1 comparison, plus the slider case and the K = 2 closed form.

Problems: (a) a softmax model trained on MNIST-5k (D = 784, K = 10); (b) an RCV1-sized synthetic model
(D = 47236, K = 51) with sparse, non-negative, unit-norm TF-IDF-like instances. lam log-uniform in
[1e-3, 1]; every method stops at ||grad|| < 1e-8 or 1000 iterations. All ratios come from one run.

    python benchmarks/solver_benchmark.py              # full run (minutes)
    python benchmarks/solver_benchmark.py --smoke      # a few small instances (used by the tests)
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
from solver import SoftmaxModel, invert, invert_path  # noqa: E402
from training import train_softmax  # noqa: E402

TOL = 1e-8
MAX_ITER = 1000
SLIDER_STEP_DECADES = 0.02


def timed_together(solves: dict, rounds=7, fast_s=0.05):
    """Run every solve once, then the fast ones in interleaved rounds; minimum time per solve.

    Interleaving matters on a shared virtual machine: its speed drifts by 2-5x within seconds (seen
    here), so solves compared as a ratio must be timed side by side, not one batch after another.
    """
    results, best = {}, {}
    for name, solve in solves.items():
        start = time.perf_counter()
        results[name] = solve()
        best[name] = time.perf_counter() - start
    fast = [name for name in solves if best[name] < fast_s]
    for _ in range(rounds - 1):
        for name in fast:
            start = time.perf_counter()
            solves[name]()
            best[name] = min(best[name], time.perf_counter() - start)
    return results, best


def mnist_problem(smoke: bool):
    data = datasets.load_builtin("mnist-5k")
    rows = np.random.default_rng(0).choice(data.n_samples, 1000, replace=False) if smoke else slice(None)
    trained = train_softmax(data.X[rows], data.y[rows], data.class_names, standardize=False,
                            max_iter=50 if smoke else 300)
    return "MNIST (D=784, K=10)", trained.model.coef, trained.model.intercept, data.X


def rcv1_problem(smoke: bool, n_instances: int, seed: int):
    n_features, n_classes = (3000, 11) if smoke else (47236, 51)
    rng = np.random.default_rng(seed)
    coef = 0.1 * rng.standard_normal((n_classes, n_features))
    intercept = rng.standard_normal(n_classes)
    X, _ = datasets.make_text_like(max(n_instances, 20), n_features, n_classes, seed=seed)
    return f"RCV1-sized synthetic (D={n_features}, K={n_classes})", coef, intercept, X


def draw_instances(coef, intercept, X, n_instances, rng):
    model = SoftmaxModel(coef, intercept)
    picks = []
    for index in rng.choice(X.shape[0], n_instances, replace=False):
        predicted = int(model.predict(X[index]))
        target = int(rng.choice([k for k in range(model.n_classes) if k != predicted]))
        picks.append((int(index), target, float(10 ** rng.uniform(-3, 0))))
    return picks


def run_problem(name, coef, intercept, X, picks, methods):
    shared = SoftmaxModel(coef, intercept)
    shared.reduced_basis()
    rows = []
    for i, (index, target, lam) in enumerate(picks):
        x0 = X[index]
        solves = {}
        for method in methods:
            if method == "newton cold":  # a fresh model: its O(D K^2) basis is included in the time
                solves[method] = lambda: invert(SoftmaxModel(coef, intercept), x0, target, lam, tol=TOL, method="newton")
            elif method == "newton":  # from x0, on a model whose basis exists (computed once per model)
                solves[method] = lambda: invert(shared, x0, target, lam, tol=TOL, method="newton")
            else:
                solves[method] = lambda m=method: invert(shared, x0, target, lam, tol=TOL, method=m, max_iter=MAX_ITER)
        # The slider case: lam moves one step; re-solve from the previous result on the shared model.
        new_lam = lam * 10**SLIDER_STEP_DECADES
        previous = invert(shared, x0, target, lam, tol=TOL)
        slider = {"newton warm (slider step)": lambda: invert(shared, x0, target, new_lam, x_init=previous, tol=TOL),
                  "newton-full cold (slider step)": lambda: invert(shared, x0, target, new_lam, tol=TOL,
                                                                   method="newton-full")}
        # Each compared pair is timed in its own interleaved group, so a slow neighbour (BFGS allocates
        # a D x D matrix) cannot skew one side of a ratio.
        cold_pair = {m: solves.pop(m) for m in ("newton cold", "newton-full")}
        results, seconds = {}, {}
        for group in (cold_pair, slider, solves):
            group_results, group_seconds = timed_together(group)
            results.update(group_results)
            seconds.update(group_seconds)
        for method, res in results.items():
            rows.append(dict(problem=name, instance=i, method=method, lam=res.lam, n_iter=res.n_iter,
                             ms=1e3 * seconds[method], grad_norm=res.grad_norm, energy=res.energy, success=res.success))
        print(f"  {name}: instance {i + 1}/{len(picks)} done", file=sys.stderr, flush=True)
    return rows


def logistic_rows(smoke: bool, n_instances: int, rng):
    data = datasets.load_builtin("mnist-5k")
    keep = np.isin(data.y, [3, 8])
    X, y = data.X[keep], (data.y[keep] == 8).astype(int)
    trained = train_softmax(X, y, ("3", "8"), standardize=False, max_iter=50 if smoke else 300)
    model = trained.model
    model.reduced_basis()
    rows, name = [], "MNIST 3 vs 8 (K=2)"
    for i in range(n_instances):
        x0 = X[rng.integers(X.shape[0])]
        target = 1 - int(model.predict(x0))
        lam = float(10 ** rng.uniform(-3, 0))
        results, seconds = timed_together({m: (lambda m=m: invert(model, x0, target, lam, method=m, tol=TOL))
                                           for m in ("closed-form", "newton", "newton-full")})
        closed, newton, full = results["closed-form"], results["newton"], results["newton-full"]
        t_closed, t_newton, t_full = seconds["closed-form"], seconds["newton"], seconds["newton-full"]
        # Strong convexity: ||x_a - x_b|| <= (||grad_a|| + ||grad_b||) / lam; a ratio <= 1 means "equal".
        gap = max(np.linalg.norm(closed.x - other.x) / ((closed.grad_norm + other.grad_norm) / lam + 1e-15)
                  for other in (newton, full))
        for method, res, seconds in [("closed-form", closed, t_closed), ("newton", newton, t_newton),
                                     ("newton-full", full, t_full)]:
            rows.append(dict(problem=name, instance=i, method=method, lam=lam, n_iter=res.n_iter, ms=1e3 * seconds,
                             grad_norm=res.grad_norm, energy=res.energy, success=res.success, x_gap=gap))
        lams = np.logspace(-3, 1, 200)
        paths, seconds = timed_together({m: (lambda m=m: invert_path(model, x0, target, lams, method=m, tol=TOL))
                                         for m in ("closed-form", "newton")})
        for method, path in paths.items():
            rows.append(dict(problem=name, instance=i, method=f"{method} path (200 lams)", lam=np.nan,
                             n_iter=int(path.n_iter.sum()), ms=1e3 * seconds[method], grad_norm=float(path.grad_norm.max()),
                             energy=np.nan, success=bool(path.success.all()), x_gap=np.nan))
    return rows


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    best = frame[~frame.method.str.contains("slider|path")].groupby(["problem", "instance"]).energy.min()
    frame = frame.join(best.rename("best"), on=["problem", "instance"])
    frame["gap"] = (frame.energy - frame.best).clip(lower=0)
    return frame.groupby(["problem", "method"], sort=False).agg(
        median_iter=("n_iter", "median"), median_ms=("ms", "median"), worst_grad=("grad_norm", "max"),
        median_E_gap=("gap", "median"), converged=("success", "mean")).reset_index()


def ratio(frame, problem, slow, fast):
    """Median over instances of time(slow) / time(fast), paired per instance."""
    pivot = frame[frame.problem == problem].pivot_table(index="instance", columns="method", values="ms")
    return float(np.median(pivot[slow] / pivot[fast]))


def targets(frame, problems):
    mnist, rcv1, logistic = problems
    med = frame.groupby(["problem", "method"]).n_iter.median()
    rows = [
        ("reduced Newton median iterations (MNIST) <= 15", med[(mnist, "newton")], med[(mnist, "newton")] <= 15),
        ("reduced Newton median iterations (RCV1) <= 15", med[(rcv1, "newton")], med[(rcv1, "newton")] <= 15),
    ]
    for problem, label, need in [(mnist, "MNIST", 5.0), (rcv1, "RCV1", 20.0)]:
        speed = ratio(frame, problem, "newton-full", "newton cold")
        rows.append((f"cold reduced Newton speed / cold full-space Newton ({label}) >= 2/3", speed, speed >= 2 / 3))
        slider = ratio(frame, problem, "newton-full cold (slider step)", "newton warm (slider step)")
        rows.append((f"warm slider re-solve vs cold full-space Newton ({label}) >= {need:g}x", slider, slider >= need))
    for baseline in ["lbfgs", "cg"]:
        speed = ratio(frame, rcv1, baseline, "newton")
        rows.append((f"reduced Newton (model ready) vs {baseline} (RCV1) >= 10x", speed, speed >= 10))
        speed = ratio(frame, rcv1, baseline, "newton cold")
        rows.append((f"reduced Newton (cold, basis included) vs {baseline} (RCV1), no target", speed, None))
    speed = ratio(frame, logistic, "newton", "closed-form")
    rows.append(("K=2 closed form vs reduced Newton, one solve, no target", speed, None))
    speed = ratio(frame, logistic, "newton path (200 lams)", "closed-form path (200 lams)")
    rows.append(("K=2 closed-form path vs Newton path (200 lams), no target", speed, None))
    gap = float(frame[frame.problem == logistic].x_gap.max())
    rows.append(("K=2 closed form equals Newton: ||x_cf - x_newton|| / strong-convexity bound <= 1", gap, gap <= 1))
    return pd.DataFrame(rows, columns=["target", "measured", "met"])


def figure(frame, path):
    import plotly.express as px

    fig = px.box(frame, x="method", y="ms", color="method", facet_row="problem", log_y=True, points="all",
                 title="Time per solve to ||grad|| < 1e-8 (log scale)", height=1100)
    fig.update_yaxes(matches=None)
    fig.write_html(path, include_plotlyjs="cdn")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="3 small instances per problem; for the tests")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    n = 3 if args.smoke else args.instances
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    name_m, coef, intercept, X = mnist_problem(args.smoke)
    rows += run_problem(name_m, coef, intercept, X, draw_instances(coef, intercept, X, n, rng),
                        ["newton cold", "newton", "newton-full", "cg", "lbfgs", "bfgs", "gd"])
    name_r, coef, intercept, X = rcv1_problem(args.smoke, n, args.seed)
    rows += run_problem(name_r, coef, intercept, X, draw_instances(coef, intercept, X, n, rng),
                        ["newton cold", "newton", "newton-full", "cg", "lbfgs", "gd"])
    rows += logistic_rows(args.smoke, n, rng)
    frame = pd.DataFrame(rows)
    name_l = frame.problem.iloc[-1]

    summary = summarise(frame)
    goals = targets(frame, (name_m, name_r, name_l))
    frame.to_csv(args.out / ("smoke_runs.csv" if args.smoke else "solver_runs.csv"), index=False)
    summary.to_csv(args.out / ("smoke_summary.csv" if args.smoke else "solver_summary.csv"), index=False)
    if not args.smoke:
        figure(frame, args.out / "solver_benchmark.html")
    print(f"\nMachine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, {n} instances per problem\n")
    print(summary.to_markdown(index=False, floatfmt=".3g"))
    print()
    print(goals.to_markdown(index=False, floatfmt=".3g"))
    return frame, summary, goals


if __name__ == "__main__":
    main()
