"""Constrained questions, measured.

(a) Pixel ranges on MNIST (D = 784, K = 10): our projected Newton against scipy's L-BFGS-B, both from
    x0 on  lam/2 ||x - x0||^2 - log p_k(x)  with 0 <= x <= 1, lam log-uniform in [1e-3, 1]. Times are
    minima over interleaved repeats; objectives are compared.
(b) Minimal flips on breast cancer and German credit (standardised units, categorical features frozen)
    against a counterfactual search written for this benchmark: growing spheres (Laugel et al. 2018),
    random points in shells of growing radius around x0, keeping the closest valid one. Distance,
    validity and time per counterfactual.

    python benchmarks/constraints_benchmark.py            # full run
    python benchmarks/constraints_benchmark.py --smoke    # a few instances (used by the tests)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.optimize
from scipy.special import log_softmax

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402
from solver import invert, minimal_flip  # noqa: E402
from training import train_softmax  # noqa: E402

TOL = 1e-8


def scipy_lbfgsb(model, x0, target, lam):
    """scipy's L-BFGS-B as a user would call it: its own stopping rule (projected gradient <= 1e-8)."""
    A, b = model.coef, model.intercept

    def fun(x):
        z = A @ x + b
        log_p = log_softmax(z)
        p = np.exp(log_p)
        p[target] -= 1.0
        return 0.5 * lam * np.sum((x - x0) ** 2) - log_p[target], lam * (x - x0) + A.T @ p

    return scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * x0.size,
                                   options={"ftol": 0.0, "gtol": TOL, "maxiter": 1000})


def energy(model, x0, target, lam, x):
    return 0.5 * lam * np.sum((x - x0) ** 2) - log_softmax(model.decision_function(x))[target]


def pixel_bounds(n, rng, smoke):
    data = datasets.load_builtin("mnist-5k")
    rows = rng.choice(data.n_samples, 1000, replace=False) if smoke else slice(None)
    model = train_softmax(data.X[rows], data.y[rows], data.class_names, standardize=False,
                          max_iter=50 if smoke else 300).model
    model.reduced_basis()
    out = []
    for i in range(n):
        x0 = data.X[rng.integers(data.n_samples)]
        target = int(rng.choice([k for k in range(10) if k != model.predict(x0)]))
        lam = float(10 ** rng.uniform(-3, 0))
        ours_fn = lambda: invert(model, x0, target, lam, bounds=(0.0, 1.0), tol=TOL)  # noqa: E731
        theirs_fn = lambda: scipy_lbfgsb(model, x0, target, lam)  # noqa: E731
        best = {"ours": np.inf, "scipy": np.inf}
        for _ in range(5):
            for name, fn in (("ours", ours_fn), ("scipy", theirs_fn)):
                start = time.perf_counter()
                result = fn()
                best[name] = min(best[name], time.perf_counter() - start)
                if name == "ours":
                    ours = result
                else:
                    theirs = result
        out.append(dict(instance=i, lam=lam, ours_ms=1e3 * best["ours"], scipy_ms=1e3 * best["scipy"],
                        ours_iter=ours.n_iter, scipy_iter=theirs.nit, ours_success=ours.success,
                        ours_pg=ours.grad_norm, energy_gap=energy(model, x0, target, lam, ours.x) - theirs.fun))
    return pd.DataFrame(out)


def growing_spheres(model, x0, target, scale, frozen, rng, n_per_shell=500, max_shells=60):
    """Random points in shells of growing radius (in standardised units) until some are classified
    as the target; the closest valid one. Frozen features (categorical) stay as they are."""
    free = ~frozen
    radius = 0.1
    for _ in range(max_shells):
        directions = rng.standard_normal((n_per_shell, int(free.sum())))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        radii = rng.uniform(radius / 2, radius, n_per_shell)
        candidates = np.tile(x0, (n_per_shell, 1))
        candidates[:, free] += directions * radii[:, None] * scale[free]
        valid = model.predict(candidates) == target
        if valid.any():
            distances = np.sqrt(np.sum(((candidates[valid] - x0) / scale) ** 2, axis=1))
            best = int(np.argmin(distances))
            return candidates[valid][best], float(distances[best])
        radius *= 1.5
    return None, np.inf


def flips(name, n, rng):
    data = datasets.load_builtin(name)
    model = train_softmax(data.X, data.y, data.class_names, data.feature_names, standardize=True).model
    scale = data.X.std(axis=0)
    scale[scale == 0] = 1.0
    frozen = np.zeros(data.n_features, dtype=bool)
    groups = []
    if data.encoding is not None:
        for group in data.encoding.categorical:
            frozen[list(group.columns)] = True
            groups.append(group.columns)
    out = []
    for i, index in enumerate(rng.choice(data.n_samples, n, replace=False)):
        x0 = data.X[index]
        target = 1 - int(model.predict(x0))
        start = time.perf_counter()
        ours = minimal_flip(model, x0, target, margin=1e-6, cost=1.0 / scale**2, immutable=frozen)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs, their_distance = growing_spheres(model, x0, target, scale, frozen, rng)
        theirs_s = time.perf_counter() - start
        out.append(dict(dataset=name, instance=i, ours_distance=ours.distance, ours_valid=bool(model.predict(ours.x) == target),
                        ours_ms=1e3 * ours_s, spheres_distance=their_distance,
                        spheres_valid=theirs is not None and bool(model.predict(theirs) == target),
                        spheres_ms=1e3 * theirs_s, frozen_unchanged=bool(np.array_equal(ours.x[frozen], x0[frozen]))))
    return pd.DataFrame(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    n = 3 if args.smoke else args.instances
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = "smoke_" if args.smoke else ""

    bounds = pixel_bounds(n, rng, args.smoke)
    flip = pd.concat([flips("breast-cancer", n, rng), flips("german-credit", n, rng)], ignore_index=True)
    bounds.to_csv(args.out / f"{prefix}pixel_bounds.csv", index=False)
    flip.to_csv(args.out / f"{prefix}minimal_flip.csv", index=False)

    ratio = float(np.median(bounds.scipy_ms / bounds.ours_ms))
    summary_bounds = pd.DataFrame([{
        "instances": len(bounds), "projected Newton median ms": f"{bounds.ours_ms.median():.3g}",
        "L-BFGS-B median ms": f"{bounds.scipy_ms.median():.3g}", "median speed-up": f"{ratio:.3g}",
        "median iterations (ours / L-BFGS-B)": f"{bounds.ours_iter.median():g} / {bounds.scipy_iter.median():g}",
        "worst E_ours - E_scipy": f"{bounds.energy_gap.max():.1e}",
        "worst projected gradient (ours)": f"{bounds.ours_pg.max():.1e}",
        "ours converged": f"{bounds.ours_success.mean():.0%}"}])
    summary_flip = flip.groupby("dataset").agg(
        ours_valid=("ours_valid", "mean"), spheres_valid=("spheres_valid", "mean"),
        median_distance_ours=("ours_distance", "median"), median_distance_spheres=("spheres_distance", "median"),
        median_ms_ours=("ours_ms", "median"), median_ms_spheres=("spheres_ms", "median"),
        categorical_untouched=("frozen_unchanged", "mean")).reset_index()
    summary_flip["spheres / ours distance (median)"] = (flip.spheres_distance / flip.ours_distance).groupby(flip.dataset).median().values
    print(f"\nMachine: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, {n} instances\n")
    print("Pixel ranges [0, 1] on MNIST, to projected gradient <= 1e-8:\n")
    print(summary_bounds.T.to_markdown(headers=["", "value"], floatfmt=".3g"))
    print("\nMinimal flips (standardised units, categorical frozen) vs growing spheres:\n")
    print(summary_flip.to_markdown(index=False, floatfmt=".3g"))
    return bounds, flip


if __name__ == "__main__":
    main()
