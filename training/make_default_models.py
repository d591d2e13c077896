"""Train every built-in dataset's default model and ship it as ``datasets/data/models/<name>.npz``.

    python -m training.make_default_models            # all built-in datasets
    python -m training.make_default_models iris wine  # some

Run it again whenever a built-in dataset or the default training parameters change: the app
detects a stale file (another data hash or other parameters) and trains instead, which is correct
but slow (MNIST-5k takes tens of seconds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datasets  # noqa: E402
from training import TrainingParams, train  # noqa: E402
from training.shipped import MODELS_DIR, save_shipped, shipped_path  # noqa: E402


def make(name: str, directory: Path = MODELS_DIR) -> Path:
    dataset = datasets.load_builtin(name)
    params = TrainingParams.default_for(dataset.kind)
    trained = train(dataset, params)
    path = shipped_path(name, directory)
    save_shipped(path, dataset, params, trained)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=datasets.list_builtin())
    args = parser.parse_args(argv)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        start = time.perf_counter()
        path = make(name)
        print(f"{name}: {path.relative_to(MODELS_DIR.parents[2])} ({path.stat().st_size / 1024:.0f} KiB, "
              f"{time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
