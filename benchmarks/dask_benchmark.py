"""A 1,000,000-row recourse audit on Dask: rows/s and peak memory per worker.

The rows are synthetic German-credit-like applicants, made on the workers partition by partition (the
data is never all in one process): each is a real applicant of the shipped German credit data, drawn
at random, with its numeric columns jittered by 10% of their standard deviation (and kept within the
observed range), its one-hot groups intact. The model is trained on the real data; the question is the
minimal flip to "good" in standardised units (cost 1/std^2) with the one-hot groups frozen. The audit
is written to Parquet. Reported: wall time and rows/s of the whole run on a
``LocalCluster(n_workers, threads_per_worker=1, processes=True)``, the same rows per second for one
partition in this process (the batched kernel alone), and each worker's peak resident memory.

    python benchmarks/dask_benchmark.py                   # 1,000,000 rows, 2 workers
    python benchmarks/dask_benchmark.py --rows 20000      # a quick run
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402
from solver.distributed import audit_dask, audit_frame, class_indices  # noqa: E402
from training import train_softmax  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def synthetic_partition(seed: int, rows: int, X: np.ndarray, numeric: np.ndarray, names) -> pd.DataFrame:
    """``rows`` German-credit-like applicants: real rows, numeric columns jittered within their range."""
    rng = np.random.default_rng(seed)
    picked = X[rng.integers(0, X.shape[0], rows)].copy()
    spread = X[:, numeric].std(axis=0)
    jitter = picked[:, numeric] + 0.1 * spread * rng.standard_normal((rows, numeric.size))
    picked[:, numeric] = np.clip(jitter, X[:, numeric].min(axis=0), X[:, numeric].max(axis=0))
    index = pd.RangeIndex(seed * rows, (seed + 1) * rows, name="applicant")
    return pd.DataFrame(picked, columns=list(names), index=index)


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partition", type=int, default=50_000, help="rows per partition")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    data = datasets.load_builtin("german-credit")
    model = train_softmax(data.X, data.y, data.class_names, feature_names=data.feature_names).model
    groups = [g.columns for g in data.encoding.categorical]
    numeric = np.array([index for _, index in data.encoding.numeric])
    constraints = dict(categorical=groups, cost=1.0 / np.maximum(data.X.std(axis=0), 1e-3) ** 2)
    n_parts = -(-args.rows // args.partition)
    X = data.X.copy()

    # The batched kernel alone, in this process, on one partition (the reference rate).
    one = synthetic_partition(0, args.partition, X, numeric, data.feature_names)
    start = time.perf_counter()
    alone = audit_frame(model, one.to_numpy(), class_indices(model, ["good"] * len(one)), "flip",
                        index=one.index, **constraints)
    kernel_s = time.perf_counter() - start

    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        idle = client.run(peak_rss_mb)
        shipped_X = dask.delayed(X, name="german-credit-rows", pure=True)  # shipped once, like the model
        make = dask.delayed(synthetic_partition, pure=True)
        rows = dd.from_delayed([make(seed, args.partition, shipped_X, numeric, data.feature_names)
                                for seed in range(n_parts)],
                               meta=synthetic_partition(0, 0, X, numeric, data.feature_names),
                               divisions=[p * args.partition for p in range(n_parts)] + [n_parts * args.partition - 1])
        audit = audit_dask(model, rows, "good", question="flip", **constraints)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            client.compute(audit.to_parquet(Path(folder) / "audit.parquet", compute=False)).result()
            wall = time.perf_counter() - start
            written = pd.read_parquet(Path(folder) / "audit.parquet", columns=["distance", "success"])
            first = pd.read_parquet(Path(folder) / "audit.parquet").loc[one.index]
        peaks = client.run(peak_rss_mb)
    finally:
        client.close()
        cluster.close()
    assert len(written) == n_parts * args.partition and written.success.all()
    np.testing.assert_allclose(first.distance.to_numpy(), alone.distance.to_numpy(), rtol=1e-12)
    summary = pd.DataFrame([dict(
        rows=len(written), partitions=n_parts, workers=args.workers, wall_s=wall, rows_per_s=len(written) / wall,
        kernel_rows_per_s=args.partition / kernel_s,
        peak_rss_mb_per_worker=" / ".join(f"{peaks[w]:.0f}" for w in sorted(peaks)),
        idle_rss_mb_per_worker=" / ".join(f"{idle[w]:.0f}" for w in sorted(idle)),
        median_distance=float(written.distance.median()),
        machine=f"{platform.machine()}, {platform.python_version()}, numpy {np.__version__}",
    )])
    print(summary.T.to_string(header=False))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out / ("dask_audit.csv" if args.rows >= 1_000_000 else "dask_audit_small.csv"), index=False)
    return summary


if __name__ == "__main__":
    main()
