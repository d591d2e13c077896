"""``python -m solver.audit``: a whole-dataset recourse audit from the command line, on Dask.

    python -m solver.audit --model m.skops --data rows.parquet --target good --out audit.parquet \\
        [--question flip|probability|lam] [--alpha 0.8] [--lam 0.1] [--immutable age,sex] \\
        [--scheduler tcp://host:8786 | --workers 2]

The model file is read by :func:`solver.load_model` (``.skops`` restricted to trusted scikit-learn types,
``.npz``, ``.json``; never a pickle). The rows are a Parquet or CSV file, or a directory of them, with
the model's feature columns. The audit is written as Parquet (a directory of part files), one row per
input row, indexed like the input: ``distance``, ``success``, ``n_changed``, ``proba_target`` (and
``lam`` for ``--question probability``). A progress bar shows the partitions as they finish.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._io import ModelFileError, load_model
from .distributed import QUESTIONS, audit_dask, compute, read_rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m solver.audit", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model file: .skops, .npz or .json")
    parser.add_argument("--data", required=True, help="rows: a .parquet or .csv file, or a directory of them")
    parser.add_argument("--target", required=True,
                        help="the class to reach (a label or index), or the name of a column holding each row's")
    parser.add_argument("--out", required=True, help="where to write the audit (Parquet)")
    parser.add_argument("--question", choices=QUESTIONS, default="flip",
                        help="flip: smallest change to the target; probability: smallest change to p >= alpha; "
                             "lam: the penalised answer for one trade-off (default: flip)")
    parser.add_argument("--margin", type=float, default=None, help="flip: logit margin (default 1e-6)")
    parser.add_argument("--alpha", type=float, default=None, help="probability: the probability to reach")
    parser.add_argument("--lam", type=float, default=None, help="lam: the trade-off")
    parser.add_argument("--immutable", default="", help="comma-separated feature names that must not change")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, tcp://host:8786")
    parser.add_argument("--workers", type=int, default=None,
                        help="without --scheduler: worker processes of a local cluster (default: CPU count); "
                             "0 runs in this process")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _immutable(model, names: str):
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return None
    if model.feature_names is None:
        raise ValueError("--immutable needs a model with feature names")
    unknown = [n for n in wanted if n not in model.feature_names]
    if unknown:
        raise ValueError(f"--immutable names unknown features: {', '.join(unknown)}")
    return [model.feature_names.index(n) for n in wanted]


def run(args) -> int:
    """Run the audit described by parsed ``args``; returns the process exit code."""
    model_path = Path(args.model)
    try:
        model = load_model(model_path.read_bytes(), model_path.name)
    except OSError as exc:
        print(f"error: cannot read the model file {model_path}: {exc.strerror}", file=sys.stderr)
        return 2
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        rows = read_rows(args.data, model)
        audit = audit_dask(model, rows, args.target, question=args.question, margin=args.margin, alpha=args.alpha,
                           lam=args.lam, immutable=_immutable(model, args.immutable))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if audit.index.name is None:
        audit = audit.rename_axis("row")
    writing = audit.to_parquet(args.out, compute=False)
    try:
        compute(writing, scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress)
    except ValueError as exc:  # raised in a partition: a row with bad values or an unknown target
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote the audit of {rows.npartitions} partition(s) to {args.out}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    return run(_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
