"""Default models shipped as plain ``.npz`` files, so a server start does not retrain them.

One file per built-in dataset, ``datasets/data/models/<dataset name>.npz``, made by
``python -m training.make_default_models``. A file holds the model's parameters and its held-out
evaluation as plain arrays (read with ``allow_pickle=False``), together with the content hash of the
data it was trained on and the training parameters. :func:`load_shipped` returns the model only when
both match the dataset and parameters asked for; anything else (no file, another hash, other
parameters, an older format, a damaged file) returns None and the caller trains.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from solver import SoftmaxModel

from . import TrainedModel, TrainingParams

MODELS_DIR = Path(__file__).resolve().parents[1] / "datasets" / "data" / "models"
FORMAT_VERSION = 1
_PARAM_FIELDS = tuple(asdict(TrainingParams()))


def shipped_path(dataset_name: str, directory: Path | None = None) -> Path:
    return (MODELS_DIR if directory is None else Path(directory)) / f"{dataset_name}.npz"


def save_shipped(path: Path, dataset, params: TrainingParams, trained: TrainedModel) -> None:
    """Write ``trained`` (fitted on ``dataset`` with ``params``) as plain arrays."""
    import sklearn

    model = trained.model
    arrays = dict(
        format_version=np.int64(FORMAT_VERSION),
        dataset_name=np.str_(dataset.name),
        data_hash=np.str_(dataset.content_hash),
        coef=model.coef,
        intercept=model.intercept,
        classes=np.array([str(c) for c in model.classes], dtype=np.str_),
        train_accuracy=np.float64(trained.train_accuracy),
        test_accuracy=np.float64(trained.test_accuracy),
        confusion=np.asarray(trained.confusion, dtype=np.int64),
        test_index=np.asarray(trained.test_index, dtype=np.int64),
        fit_seconds=np.float64(trained.fit_seconds),
        sklearn_version=np.str_(sklearn.__version__),
        numpy_version=np.str_(np.__version__),
        **{f"param_{name}": np.asarray(value) for name, value in asdict(params).items()},
    )
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    Path(path).write_bytes(buffer.getvalue())


def _params_of(archive) -> TrainingParams:
    return TrainingParams(**{name: archive[f"param_{name}"].item() for name in _PARAM_FIELDS})


def read_header(path: Path) -> dict:
    """The dataset name, data hash, format version and training parameters recorded in a file."""
    with np.load(path, allow_pickle=False) as archive:
        return dict(format_version=int(archive["format_version"]), dataset_name=str(archive["dataset_name"]),
                    data_hash=str(archive["data_hash"]), params=_params_of(archive))


def load_shipped(dataset, params: TrainingParams, directory: Path | None = None) -> TrainedModel | None:
    """The shipped model for ``dataset`` trained with ``params``, or None when there is none that
    matches (then train it)."""
    path = shipped_path(dataset.name, directory)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if int(archive["format_version"]) != FORMAT_VERSION or str(archive["data_hash"]) != dataset.content_hash:
                return None
            if _params_of(archive) != params:
                return None
            coef, intercept = archive["coef"], archive["intercept"]
            classes = [str(c) for c in archive["classes"]]
            confusion, test_index = archive["confusion"], archive["test_index"]
            train_accuracy, test_accuracy = float(archive["train_accuracy"]), float(archive["test_accuracy"])
            fit_seconds = float(archive["fit_seconds"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # damaged or foreign: training makes a fresh one
    K, D = dataset.n_classes, dataset.n_features
    if coef.shape != (K, D) or confusion.shape != (K, K) or classes != list(dataset.class_names):
        return None
    model = SoftmaxModel(coef, intercept, classes=classes, feature_names=dataset.feature_names)
    return TrainedModel(model=model, train_accuracy=train_accuracy, test_accuracy=test_accuracy, confusion=confusion,
                        test_index=test_index, C=params.C, standardize=params.standardize, fit_seconds=fit_seconds,
                        origin=f"shipped file datasets/data/models/{path.name}")
