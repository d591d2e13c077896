"""Session state: canonical keys, defaults, and the cached loaders every page shares.

Each session keeps its own dataset and model under its own keys. The caches below are shared by all
sessions, so they hold only immutable objects keyed by content: built-in datasets by name, trained
models by (data hash, parameters).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import datasets
from datasets import Dataset
from solver import SoftmaxModel
from training import TrainedModel, train_softmax

DEFAULT_DATASET = "mnist-5k"
LOG_LAM_RANGE = (-4.0, 2.0)
LOG_LAM_STEP = 0.02
DEFAULT_LOG_LAM = -1.0

DATASET, DATASET_NAME, TRAINED, MODEL, MODEL_LABEL = "dataset", "dataset_name", "trained", "model", "model_label"
INSTANCE, TARGET, LOG_LAM, WARM = "instance", "target", "log_lam", "warm_start"
TRAIN_PARAMS = "train_params"
CONSTRAINTS, PIXEL_RANGE, STANDARDISED, ANSWER = "constraints", "pixel_range", "standardised", "answer"


@st.cache_resource(max_entries=12, show_spinner="Loading dataset…")
def builtin_dataset(name: str) -> Dataset:
    return datasets.load_builtin(name)


@st.cache_resource(max_entries=16, ttl=6 * 3600, show_spinner="Training the softmax model…")
def trained_model(data_hash: str, C: float, standardize: bool, test_fraction: float, seed: int,
                  _dataset: Dataset) -> TrainedModel:
    """Shared across sessions, keyed by the data's content hash and the parameters."""
    return train_softmax(_dataset.X, _dataset.y, _dataset.class_names, _dataset.feature_names, C=C,
                         standardize=standardize, test_fraction=test_fraction, seed=seed)


def default_train_params(dataset: Dataset) -> dict:
    return dict(C=1.0, standardize=dataset.kind != "image", test_fraction=0.2, seed=0)


def train(dataset: Dataset, params: dict) -> TrainedModel:
    return trained_model(dataset.content_hash, float(params["C"]), bool(params["standardize"]),
                         float(params["test_fraction"]), int(params["seed"]), dataset)


def training_label(params: dict) -> str:
    return f"trained here (C={params['C']:g}{', standardised' if params['standardize'] else ''})"


def set_dataset(name: str, dataset: Dataset) -> None:
    """Make ``dataset`` current and train its default model; the instance and target reset."""
    params = default_train_params(dataset)
    trained = train(dataset, params)
    st.session_state[DATASET_NAME] = name
    st.session_state[DATASET] = dataset
    st.session_state[TRAIN_PARAMS] = params
    set_model(trained.model, training_label(params), trained)
    st.session_state[INSTANCE] = 0
    st.session_state[TARGET] = default_target(trained.model, dataset.X[0])
    st.session_state[CONSTRAINTS] = None
    st.session_state[ANSWER] = None


def set_model(model: SoftmaxModel, label: str, trained: TrainedModel | None = None) -> None:
    st.session_state[MODEL] = model
    st.session_state[MODEL_LABEL] = label
    st.session_state[TRAINED] = trained
    st.session_state[WARM] = None
    if TARGET in st.session_state:
        st.session_state[TARGET] = min(st.session_state[TARGET], model.n_classes - 1)


def default_target(model: SoftmaxModel, x0: np.ndarray) -> int:
    """The runner-up class: the most natural 'what would make it ...' question."""
    return int(np.argsort(model.predict_proba(x0))[-2])


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def upload_columns(raw: bytes, filename: str) -> list[str]:
    """Header of an uploaded table; keyed by the bytes themselves, so only the uploader can hit it."""
    return datasets.table_columns(raw, filename)


def load_upload(raw: bytes, filename: str, target: str | None, drop_missing: bool) -> str | None:
    """Make an upload the current dataset. Returns an error message, or None on success.

    Nothing in the session changes unless parsing and training both succeed.
    """
    try:
        dataset = datasets.parse_upload(raw, filename, target=target, drop_missing=drop_missing)
        set_dataset(f"upload:{dataset.name}", dataset)
    except datasets.MissingValuesError as exc:
        return f"{exc}. Tick 'Drop rows with missing or non-finite values' to load the rest."
    except ValueError as exc:  # DataError, and training's own checks
        return str(exc)
    return None


def load_model_file(raw: bytes, filename: str) -> str | None:
    """Make an uploaded model file the current model, if it fits the current dataset."""
    from solver import ModelFileError, load_model
    from training import compatibility_error

    try:
        model = load_model(raw, filename)
    except ModelFileError as exc:
        return str(exc)
    dataset = st.session_state[DATASET]
    problem = compatibility_error(model, dataset.n_features, dataset.n_classes)
    if problem:
        return f"{filename} was not loaded: {problem}"
    classes = list(model.classes)
    if [str(c) for c in classes] == [str(k) for k in range(model.n_classes)]:
        classes = list(dataset.class_names)  # unnamed classes: use the dataset's names
    model = SoftmaxModel(model.coef, model.intercept, classes=classes, feature_names=dataset.feature_names)
    set_model(model, f"loaded from {filename}")
    return None


def init_session() -> None:
    """Fill defaults once per session, honouring a shared link's query parameters."""
    if DATASET in st.session_state:
        return
    params = st.query_params
    name = params.get("dataset", DEFAULT_DATASET)
    if name not in datasets.list_builtin():
        name = DEFAULT_DATASET
    set_dataset(name, builtin_dataset(name))
    dataset, model = st.session_state[DATASET], st.session_state[MODEL]
    st.session_state[LOG_LAM] = DEFAULT_LOG_LAM
    st.session_state[PIXEL_RANGE] = True
    st.session_state[STANDARDISED] = True
    try:
        if "i" in params:
            st.session_state[INSTANCE] = int(np.clip(int(params["i"]), 0, dataset.n_samples - 1))
            st.session_state[TARGET] = default_target(model, dataset.X[st.session_state[INSTANCE]])
        if "target" in params:
            st.session_state[TARGET] = int(np.clip(int(params["target"]), 0, model.n_classes - 1))
        if "lam" in params:
            st.session_state[LOG_LAM] = float(np.clip(round(np.log10(float(params["lam"])) / LOG_LAM_STEP) * LOG_LAM_STEP,
                                                      *LOG_LAM_RANGE))
    except (ValueError, OverflowError):
        pass  # a hand-edited link with junk keeps the defaults


def share_link_params() -> None:
    """Mirror the current question into the URL (built-in datasets only; uploads cannot travel in a link)."""
    name = st.session_state[DATASET_NAME]
    if name in datasets.list_builtin():
        st.query_params.update({"dataset": name, "i": str(st.session_state[INSTANCE]),
                                "target": str(st.session_state[TARGET]),
                                "lam": f"{10 ** st.session_state[LOG_LAM]:.4g}"})
    else:
        st.query_params.clear()


def bind(widget, label: str, key: str, **kwargs):
    """Render ``widget`` for the canonical state ``key``; the value survives page switches."""
    widget_key = f"_widget_{key}"
    # Write the widget's state only when it differs: a write makes Streamlit send the value back to
    # the browser, which redraws the widget after every move of a slider.
    if st.session_state.get(widget_key) != st.session_state[key]:
        st.session_state[widget_key] = st.session_state[key]

    def copy_back():
        st.session_state[key] = st.session_state[widget_key]

    return widget(label, key=widget_key, on_change=copy_back, **kwargs)
