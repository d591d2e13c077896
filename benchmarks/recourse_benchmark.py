"""Exact recourse (issue 9), measured against DiCE (random, genetic) and our own minimal_flip.

Four tables, 30 instances each: German credit, breast cancer, wine (K = 3) and an uploaded-style table (a seeded
CSV parsed by ``datasets.parse_upload``). Every method gets the same plausible question, built from the data as the
dashboard will build it (``plausible_arguments``): whole-number columns are integer features, ranges are the
observed min/max, one-hot groups may change level, a few columns are locked. Each answer is checked independently:
predicted as the target, locks, ranges, whole numbers, one level per group, features changed, distance (l1 with
1/MAD weights, l2 with 1/std^2 weights), time. At equal sparsity (ours with ``max_changes`` = the number of features
DiCE changed) the ratio DiCE distance / ours is reported; an exact optimum cannot be beaten, so it is >= 1 whenever
DiCE's answer is itself admissible (valid, locks, ranges and whole numbers held).

    python benchmarks/recourse_benchmark.py                         # full run (DiCE from /work/venvs/dice)
    python benchmarks/recourse_benchmark.py --dice-python PATH      # another interpreter with dice-ml
    python benchmarks/recourse_benchmark.py --smoke --no-dice       # a few instances (used by the tests)

DiCE (dice-ml on PyPI) pulls in xgboost and lightgbm, so it lives in its own virtualenv and runs in a subprocess
(benchmarks/dice_runner.py); its times are measured inside that process, per answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402
from solver import minimal_flip, recourse, recourse_front  # noqa: E402
from training import train_softmax  # noqa: E402

DEFAULT_DICE = Path("/work/venvs/dice/bin/python")
LOCKED_COLUMNS = {"german-credit": ("personal_status_sex", "foreign_worker", "age_years"),
                  "applicants": ("age",), "breast-cancer": (), "wine": ()}


# -- the question, from the data (the dashboard's defaults) ------------------------------------------------------
def plausible_arguments(data, metric: str, locked_columns=()) -> dict:
    """recourse() arguments from the data: integer columns, observed ranges, 1/std^2 (l2) or 1/MAD (l1) costs,
    one-hot groups that may change level, locked columns (by user column name)."""
    X = data.X
    groups = [g.columns for g in data.encoding.categorical] if data.encoding else []
    one_hot = np.zeros(X.shape[1], dtype=bool)
    for g in groups:
        one_hot[list(g)] = True
    integer = np.all(X == np.round(X), axis=0) & ~one_hot
    std = X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    if metric == "l2":
        cost = 1.0 / std**2
    else:
        mad = np.median(np.abs(X - np.median(X, axis=0)), axis=0)
        mad = np.where(mad > 0, mad, std)  # a column that is mostly one value: its std instead
        cost = np.where(one_hot, 0.5, 1.0 / mad)  # a change of level costs 1, like one MAD
    locked = []
    names = {name: index for name, index in data.encoding.numeric} if data.encoding else {}
    for g in data.encoding.categorical if data.encoding else []:
        if g.name in locked_columns:
            locked += list(g.columns)
    locked += [names[c] for c in locked_columns if c in names]
    return dict(metric=metric, cost=cost, immutable=np.array(sorted(locked), dtype=int),
                bounds=(X.min(axis=0), X.max(axis=0)), integer=integer, categorical=groups, change_levels=True)


def applicants_table(seed=0, n=600) -> bytes:
    """An uploaded-style CSV: text categories, whole-number counts, money amounts, a yes/no outcome."""
    rng = np.random.default_rng(seed)
    employment = rng.choice(["salaried", "self-employed", "unemployed", "retired"], n, p=[0.6, 0.2, 0.1, 0.1])
    housing = rng.choice(["own", "rent", "with family"], n, p=[0.4, 0.45, 0.15])
    age = rng.integers(19, 75, n)
    dependents = rng.poisson(1.2, n)
    years_at_address = rng.integers(0, 30, n)
    income = np.round(rng.lognormal(8.0, 0.5, n), 2)
    loan = np.round(rng.lognormal(9.0, 0.6, n), 2)
    score = (0.8 * np.log(income) - 0.7 * np.log(loan) + 0.02 * years_at_address - 0.3 * dependents
             + (employment == "salaried") * 0.8 - (employment == "unemployed") * 1.5 + (housing == "own") * 0.5)
    approved = np.where(score + rng.normal(0, 0.7, n) > np.median(score), "yes", "no")
    frame = pd.DataFrame({"age": age, "employment": employment, "housing": housing, "dependents": dependents,
                          "years_at_address": years_at_address, "monthly_income": income, "loan_amount": loan,
                          "approved": approved})
    return frame.to_csv(index=False).encode()


def load(name):
    if name == "applicants":
        return datasets.parse_upload(applicants_table(), "applicants.csv", target="approved")
    return datasets.load_builtin(name)


# -- independent checks ---------------------------------------------------------------------------------------------
def changed_items(x, x0, groups):
    in_group = {j for g in groups for j in g}
    items = [j for j in np.flatnonzero(x != x0) if j not in in_group]
    items += [g for g in groups if not np.array_equal(x[list(g)], x0[list(g)])]
    return len(items)


def check(model, x, x0, target, args_l1, args_l2):
    """Validity, violations and both distances of one answer, computed from x alone."""
    if x is None:
        return dict(found=False, valid=False, locks_violated=False, ranges_violated=False, not_whole=False,
                    not_one_hot=False, changes=np.nan, l1=np.nan, l2=np.nan)
    locked = args_l2["immutable"]
    free = np.setdiff1d(np.arange(x.size), locked)
    lower, upper = args_l2["bounds"]
    groups = args_l2["categorical"]
    integer = args_l2["integer"]
    dx = x - x0
    return dict(found=True, valid=bool(model.predict(x) == target),
                locks_violated=not np.array_equal(x[locked], x0[locked]),
                ranges_violated=bool(np.any(x[free] < lower[free] - 1e-12) or np.any(x[free] > upper[free] + 1e-12)),
                not_whole=bool(np.any(x[integer] != np.round(x[integer]))),
                not_one_hot=any(not (set(np.unique(x[list(g)])) <= {0.0, 1.0} and x[list(g)].sum() == 1)
                                for g in groups),
                changes=changed_items(x, x0, groups), l1=float(np.sum(args_l1["cost"] * np.abs(dx))),
                l2=float(np.sqrt(np.sum(args_l2["cost"] * dx * dx))))


def admissible(row) -> bool:
    return bool(row["valid"] and not row["locks_violated"] and not row["ranges_violated"] and not row["not_whole"]
                and not row["not_one_hot"])


# -- DiCE in its own virtualenv ---------------------------------------------------------------------------------------
def raw_frame(data, X):
    """The user's columns back from feature vectors (one-hot groups as their level names)."""
    columns = {}
    for name, index in data.encoding.numeric:
        columns[name] = X[:, index]
    for g in data.encoding.categorical:
        columns[g.name] = np.array(g.levels)[np.argmax(X[:, list(g.columns)], axis=1)]
    return pd.DataFrame(columns)[list(data.encoding.column_order)]


def encode_raw(data, record) -> np.ndarray:
    x = np.zeros(data.n_features)
    for name, index in data.encoding.numeric:
        x[index] = float(record[name])
    for g in data.encoding.categorical:
        value = str(record[g.name])
        for level, column in zip(g.levels, g.columns):
            x[column] = float(value == level)
    return x


def run_dice(dice_python, data, model, rows, targets, args_l2, locked_columns, methods, seed, workdir):
    train = raw_frame(data, data.X)
    train["outcome"] = data.y
    train_csv, queries_csv = workdir / "train.csv", workdir / "queries.csv"
    train.to_csv(train_csv, index=False)
    raw_frame(data, data.X[rows]).to_csv(queries_csv, index=False)
    numeric = [name for name, _ in data.encoding.numeric]
    lower, upper = args_l2["bounds"]
    permitted = {name: [float(lower[i]), float(upper[i])] for name, i in data.encoding.numeric}
    vary = [c for c in data.encoding.column_order if c not in locked_columns]
    permitted = {k: v for k, v in permitted.items() if k in vary}
    job = dict(train_csv=str(train_csv), queries_csv=str(queries_csv), outcome="outcome", continuous_names=numeric,
               categorical_names=[g.name for g in data.encoding.categorical], targets=[int(t) for t in targets],
               features_to_vary=vary, permitted_range=permitted, methods=methods, seed=seed,
               model=dict(coef=model.coef.tolist(), intercept=model.intercept.tolist(), numeric=data.encoding.numeric,
                          groups=[(g.name, g.levels, g.columns) for g in data.encoding.categorical]))
    job_path, out_path = workdir / "job.json", workdir / "out.json"
    job_path.write_text(json.dumps(job))
    subprocess.run([str(dice_python), str(ROOT / "benchmarks" / "dice_runner.py"), str(job_path), str(out_path)],
                   check=True, timeout=3600, env={**os.environ, "TQDM_DISABLE": "1"})
    answers = json.loads(out_path.read_text())
    for answer in answers:
        answer["x"] = None if answer["cf"] is None else encode_raw(data, answer["cf"])
    return answers


# -- one dataset -------------------------------------------------------------------------------------------------------
def timed(fn):
    """(result, wall seconds, CPU seconds of this process): the machine is shared, so both are kept."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - start, time.process_time() - cpu


def run_dataset(name, n, rng, dice_python, workdir, front_max=5):
    data = load(name)
    model = train_softmax(data.X, data.y, data.class_names, data.feature_names, standardize=True).model
    locked_columns = LOCKED_COLUMNS.get(name, ())
    args = {m: plausible_arguments(data, m, locked_columns) for m in ("l1", "l2")}
    rows = rng.choice(data.n_samples, n, replace=False)
    targets = []
    for i in rows:
        predicted = int(model.predict(data.X[i]))
        targets.append(int(rng.choice([k for k in range(model.n_classes) if k != predicted])))
    records, ratios, fronts = [], [], []

    def add(method, i, target, x, seconds, extra=None, cpu=np.nan):
        row = dict(dataset=name, method=method, instance=int(i), target=int(target), ms=1e3 * seconds,
                   cpu_ms=1e3 * cpu)
        row.update(check(model, x, data.X[rows[i]], target, args["l1"], args["l2"]))
        row.update(extra or {})
        records.append(row)
        return row

    for i, (index, target) in enumerate(zip(rows, targets)):
        x0 = data.X[index]
        for metric in ("l2", "l1"):
            res, seconds, cpu = timed(lambda: recourse(model, x0, target, **args[metric]))
            add(f"ours ({metric})", i, target, res.x if res.success else None, seconds,
                dict(optimal=res.optimal, solves=res.n_solves), cpu)
        front, seconds, cpu = timed(lambda: recourse_front(model, x0, target, max_changes=front_max, **args["l2"]))
        distances = [np.inf if r is None else r.distance for r in front]
        fronts.append(dict(dataset=name, instance=i, front_ms=1e3 * seconds, front_cpu_ms=1e3 * cpu,
                           monotone=all(a >= b - 1e-12 for a, b in zip(distances, distances[1:])),
                           all_optimal=all(r is None or r.optimal for r in front),
                           **{f"s{s + 1}": d for s, d in enumerate(distances)}))
        flip_args = {k: v for k, v in args["l2"].items() if k not in ("metric", "integer")}
        flip, seconds, cpu = timed(lambda: minimal_flip(model, x0, target, margin=1e-6, **flip_args))
        add("minimal_flip", i, target, flip.x if flip.success else None, seconds, cpu=cpu)

    if dice_python is not None:
        answers = run_dice(dice_python, data, model, rows, targets, args["l2"], locked_columns,
                           ["random", "genetic"], 0, workdir)
        for answer in answers:
            i = answer["query"]
            x0, target = data.X[rows[i]], targets[answer["query"]]
            row = add(f"DiCE {answer['method']}", i, target, answer["x"], answer["time_s"])
            if not (row["found"] and admissible(row)) or row["changes"] == 0:
                continue
            for metric in ("l1", "l2"):
                ours = recourse(model, x0, target, max_changes=int(row["changes"]), **args[metric])
                ratios.append(dict(dataset=name, method=f"DiCE {answer['method']}", metric=metric, instance=i,
                                   changes=int(row["changes"]), dice=row[metric], ours=ours.distance,
                                   ours_optimal=ours.optimal, ratio=row[metric] / ours.distance))
    return pd.DataFrame(records), pd.DataFrame(ratios), pd.DataFrame(fronts)


def summarise(runs):
    grouped = runs.groupby(["dataset", "method"], sort=False)
    summary = grouped.agg(answers=("found", "sum"), valid=("valid", "mean"), locks_violated=("locks_violated", "sum"),
                          ranges_violated=("ranges_violated", "sum"), not_whole=("not_whole", "sum"),
                          median_changes=("changes", "median"), median_l2=("l2", "median"),
                          median_l1=("l1", "median"), median_ms=("ms", "median"),
                          median_cpu_ms=("cpu_ms", "median")).reset_index()
    summary["admissible"] = grouped.apply(lambda g: np.mean([admissible(r) for _, r in g.iterrows()]),
                                          include_groups=False).values
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--no-dice", action="store_true")
    parser.add_argument("--dice-python", type=Path, default=DEFAULT_DICE)
    parser.add_argument("--datasets", default="german-credit,breast-cancer,wine,applicants")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    n = 2 if args.smoke else args.instances
    names = ["german-credit"] if args.smoke else args.datasets.split(",")
    dice_python = None if args.no_dice or not args.dice_python.exists() else args.dice_python
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = "smoke_" if args.smoke else ""
    all_runs, all_ratios, all_fronts = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            runs, ratios, fronts = run_dataset(name, n, rng, dice_python, Path(tmp))
            all_runs.append(runs)
            all_ratios.append(ratios)
            all_fronts.append(fronts)
    runs = pd.concat(all_runs, ignore_index=True)
    ratios = pd.concat(all_ratios, ignore_index=True)
    fronts = pd.concat(all_fronts, ignore_index=True)
    summary = summarise(runs)
    runs.to_csv(args.out / f"{prefix}recourse_runs.csv", index=False)
    summary.to_csv(args.out / f"{prefix}recourse_summary.csv", index=False)
    ratios.to_csv(args.out / f"{prefix}recourse_ratios.csv", index=False)
    fronts.to_csv(args.out / f"{prefix}recourse_front.csv", index=False)

    print(f"\nMachine: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"{n} instances per dataset{'' if dice_python else ' (DiCE not run)'}\n")
    print(summary.to_markdown(index=False, floatfmt=".3g"))
    if len(ratios):
        table = ratios.groupby(["dataset", "method", "metric"]).ratio.agg(["count", "min", "median", "max"])
        print("\nAt equal sparsity, DiCE distance / ours (>= 1: an exact optimum cannot be beaten):\n")
        print(table.reset_index().to_markdown(index=False, floatfmt=".3g"))
    front_table = fronts.groupby("dataset").agg(median_front_ms=("front_ms", "median"),
                                                max_front_ms=("front_ms", "max"),
                                                median_front_cpu_ms=("front_cpu_ms", "median"),
                                                monotone=("monotone", "mean"),
                                                all_optimal=("all_optimal", "mean")).reset_index()
    print("\nThe whole front s = 1..5 (l2):\n")
    print(front_table.to_markdown(index=False, floatfmt=".3g"))
    ours = runs[runs.method.str.startswith("ours")]
    print(f"\nours: {ours.valid.mean():.0%} valid, {ours.locks_violated.sum()} locks and {ours.ranges_violated.sum()} "
          f"ranges violated, {ours.not_whole.sum()} non-whole integers, "
          f"{(ours.optimal == True).mean():.0%} certified optimal")  # noqa: E712
    return runs, summary, ratios, fronts


if __name__ == "__main__":
    main()
