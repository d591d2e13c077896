"""Session state: every key, the small frozen objects kept under them, defaults, and the cached
loaders every page shares.

Each session keeps its own dataset and model under its own keys. The caches shared by all sessions
hold only immutable objects shared by content, bounded in entries and bytes (ui/memory.py): here the
built-in datasets by name and the models trained on them by (data hash, parameters); in ui/recourse.py
and ui/live_slider.py what is derived from those (:func:`shared_by_content`). A model trained on an
upload is the session's own: it is kept in a session-scoped cache and goes when the session does, as do
the answers derived from an upload or a model file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

import datasets
from datasets import Dataset
from solver import CounterfactualResult, InversionPath, InversionResult, RecourseResult, SoftmaxModel
from training import TrainedModel, TrainingParams
from training import train as train_model
from ui import links, memory, pipeline
from ui.constraints import WhatMayChange

DEFAULT_DATASET = "mnist-5k"
LOG_LAM_RANGE = (-4.0, 2.0)
LOG_LAM_STEP = 0.02
DEFAULT_LOG_LAM = -1.0
DEFAULT_ALPHA = 0.9

# -- every session-state key, declared once ------------------------------------------------------
DATASET = "dataset"  # Dataset
DATASET_NAME = "dataset_name"  # str: a built-in name, or "upload:<file name>", either + READ_BY + a pipeline's file
READ_BY = " · read by "
TRAINED = "trained"  # TrainedModel, or None for a loaded model file
MODEL = "model"  # SoftmaxModel
MODEL_LABEL = "model_label"  # str
TRAIN_PARAMS = "train_params"  # TrainingParams of the last model trained here
PIPELINE = "pipeline"  # pipeline.PipelineTable or None: the user's scikit-learn pipeline and what it read of the table
PIPELINE_CHECK = "pipeline_check"  # PipelineCheck or None: the pipeline's own verdict on the last answer checked
INSTANCE = "instance"  # int: row of the dataset
TARGET = "target"  # int: class index
CHOSEN_TARGET = "chosen_target"  # int or None: the target the user picked (kept when the instance changes)
INSTANCE_NOTE = "instance_note"  # str or None: why the target changed with the instance
LOG_LAM = "log_lam"  # float: the slider, log10 lambda
ALPHA = "alpha"  # float: the alpha of "closest with p >= alpha"
PIXEL_RANGE = "pixel_range"  # bool: images stay in [0, 1]
STANDARDISED = "standardised"  # bool: tabular distances in standard deviations
CONSTRAINTS = "constraints"  # WhatMayChange or None (made on first use)
LINK_EDITS = "link_edits"  # tuple of constraints.Edit: what a shared link changed in the what-may-change table
WARM = "warm_start"  # WarmSolve or None
PATH = "path"  # CachedPath or None
ANSWER = "answer"  # Answer or None: the question's answer on screen
PENDING_QUESTION = "pending_question"  # PendingQuestion or None: a shared link's question, asked once set up
LINK_WARNINGS = "link_warnings"  # tuple of str: what a shared link asked for that could not be done
DISMISS_LINK_WARNINGS = "_dismiss_link_warnings"  # the button that clears them
RECOURSE_BUDGET = "recourse_budget"  # int: "change at most s features" (tables)
RECOURSE_PIXELS = "recourse_pixels"  # int: "change at most s pixels" (images)
RECOURSE_METRIC = "recourse_metric"  # str: "l2" or "l1" (tables; images always use l1)
RECOURSE_ALPHA = "recourse_alpha"  # bool: the recourse question also asks p(target) >= ALPHA
PENDING_RECOURSE = "pending_recourse"  # bool: a shared link asked the recourse question; asked once set up
RECOURSE_PICKED = "recourse_picked"  # bool: a point of the front was picked inside the fragment; rerun the page
QUESTION_ERROR = "question_error"  # str or None: why the last question button could not ask its question
EDITOR_BASE = "editor_base"  # EditorBase or None: the table the what-may-change editor was created with
AUDIT = "audit"  # ui.audit.Audit or None: this session's last audit, shown only while its key is the session's
AUDIT_QUESTION = "audit_question"  # str: "flip", "probability" or "lam" (ui.audit.QUESTIONS)
AUDIT_TARGET = "audit_target"  # int: the audit's target class, or ui.audit.RUNNER_UP
AUDIT_LOG_LAM = "audit_log_lam"  # float: log10 lambda of the audit's fixed-lambda question
AUDIT_GROUP = "audit_group"  # str: the column the audit is split by (display only)
AUDIT_ROWS = "audit_rows"  # str: ui.audit.NEED_ROWS or ALL_ROWS, the rows summarised (display only)
AUDIT_OPEN = "audit_open"  # int or None: the row picked to open on Explore
AUDIT_DEFAULTS_FOR = "audit_defaults_for"  # str: the data hash the audit's target and group defaults were set for
DEFAULT_RECOURSE_BUDGET = 2
DEFAULT_RECOURSE_PIXELS = 10
LIVE_SLIDER = "live_lambda"  # the live slider component's own state ({"released": ..., "missing": ...})
SESSION_ANSWERS = "session_answers"  # memory.SharedCache: recourse answers about an upload or a model file
LIVE_PAYLOAD = "live_payload"  # live_slider.CachedPayload or None: the question as the live slider ships it


def widget_key(key: str) -> str:
    """The widget's own key for canonical state ``key`` (see :func:`bind`)."""
    return f"_widget_{key}"


def editor_key(dataset: Dataset) -> str:
    """The what-may-change table editor's key: its edits belong to one dataset (the editor adds a
    generation to it, see ``panels.what_may_change``)."""
    return f"constraints_{dataset.content_hash[:12]}"


# -- what is kept under those keys ----------------------------------------------------------------
@dataclass(frozen=True)
class ProblemKey:
    """What a solve depends on besides lambda and the target."""

    model: str  # the model's fingerprint
    data: str  # the dataset's content hash
    instance: int
    constraints: str  # WhatMayChange.signature


@dataclass(frozen=True, eq=False)
class WarmSolve:
    """The slider's last solve, the warm start of the next one with the same key."""

    key: ProblemKey
    result: InversionResult


@dataclass(frozen=True, eq=False)
class CachedPath:
    """The lambda path of one question (key and target)."""

    key: ProblemKey
    target: int
    path: InversionPath


@dataclass(frozen=True, eq=False)
class PipelineCheck:
    """The user's pipeline's verdict on one answer (a scikit-learn call costs milliseconds: made once)."""

    key: tuple  # (pipeline file hash, data hash, instance, sha256 of the answer's x)
    check: pipeline.RowCheck


@dataclass(frozen=True)
class PendingQuestion:
    """The question a shared link asked ("flip" or "alpha", with its alpha)."""

    question: str
    alpha: float | None


@dataclass(frozen=True)
class AnswerKey:
    """Everything a question's answer depends on."""

    problem: ProblemKey
    target: int
    question: str  # "flip" or "alpha"
    alpha: float | None


@dataclass(frozen=True, eq=False)
class Answer:
    """The answer to one of the two questions, shown instead of the slider's until the slider moves.

    Attributes
    ----------
    key : AnswerKey
    result : CounterfactualResult
    lam : float or None
        The lambda whose penalised minimiser is this very answer, or None when it is not on the
        lambda path (``lam_note`` says why).
    lam_note : str
    arguments : dict
        The solver arguments the question was asked with.
    """

    key: AnswerKey
    result: CounterfactualResult
    lam: float | None
    lam_note: str
    arguments: dict

    @property
    def question(self) -> str:
        return self.key.question

    @property
    def alpha(self) -> float | None:
        return self.key.alpha


@dataclass(frozen=True, eq=False)
class EditorBase:
    """The data a live what-may-change editor was created with: the editor keeps the user's edits on
    top of it, so it must not change while the editor lives (see ``panels.what_may_change``)."""

    key: tuple | None  # WhatMayChange.key: (data hash, standardised)
    table: object  # DataFrame
    edits: tuple  # of constraints.Edit: what the table holds beyond the default
    generation: int = 0  # part of the editor's key: a new editor when the settings changed elsewhere
    returned: object = None  # DataFrame: what the editor returned last run


@dataclass(frozen=True)
class RecourseKey:
    """Everything a recourse answer depends on."""

    problem: ProblemKey  # its constraints signature is the instance's (rise/fall applied)
    target: int
    budget: int  # at most this many features (pixels) change
    metric: str  # "l2" or "l1"
    alpha: float | None  # also p(target) >= alpha, or None


@dataclass(frozen=True, eq=False)
class RecourseAnswer:
    """The exact recourse answer on screen (``ui.recourse``), one of its alternatives when picked.

    Attributes
    ----------
    key : RecourseKey
    result : RecourseResult
        The cheapest answer with at most ``key.budget`` changes; ``result.alternatives`` the next ones.
    front : tuple of (RecourseResult or None)
        ``recourse_front`` for s = 1 .. len(front) (empty for images).
    choice : int
        0 shows ``result``, i > 0 its alternative i.
    arguments : dict
        The solver arguments it was asked with.
    notes : tuple of str
        What of the table could not be honoured for this applicant.
    """

    key: RecourseKey
    result: RecourseResult
    front: tuple
    arguments: dict
    choice: int = 0
    notes: tuple = ()

    question = "recourse"

    @property
    def alpha(self) -> float | None:
        return self.key.alpha

    @property
    def shown(self) -> RecourseResult:
        """The answer on screen: the cheapest, or the alternative picked."""
        return (self.result, *self.result.alternatives)[self.choice]


# -- cached loaders --------------------------------------------------------------------------------
# Every built-in dataset fits (about 75 MB of features in all); a model is measured as stored: its K x D
# weights (the solver's per-model bases are built later, on first use).
SHARED_DATASETS = memory.SharedCache("built-in datasets", max_entries=12, max_bytes=160 * 2**20)
SHARED_MODELS = memory.SharedCache("models of built-in datasets", max_entries=32, max_bytes=64 * 2**20)
SESSION_MODELS_MAX = 4  # models trained on one session's upload, kept for retraining with the same settings


def builtin_dataset(name: str) -> Dataset:
    """A built-in dataset, loaded once for every session."""
    return SHARED_DATASETS.get(name, lambda: _load_builtin(name))


def _load_builtin(name: str) -> Dataset:
    with st.spinner("Loading dataset…"):
        return datasets.load_builtin(name)


def shared_by_content() -> bool:
    """Whether this session's data and model are ones every session may hold (built-in data and a model
    trained here on it), so that what is derived from them may go in a shared cache."""
    return st.session_state.get(TRAINED) is not None and is_builtin(st.session_state[DATASET])


def is_builtin(dataset: Dataset) -> bool:
    """Whether ``dataset`` is a built-in dataset, by content (an upload never is, whatever its name)."""
    return (dataset.name in datasets.list_builtin()
            and builtin_dataset(dataset.name).content_hash == dataset.content_hash)


def _shipped_or_trained(dataset: Dataset, params: TrainingParams) -> TrainedModel:
    """The shipped file when one matches the data and the parameters, else a fit."""
    from training.shipped import load_shipped

    with st.spinner("Loading or training the softmax model…"):
        return load_shipped(dataset, params) or train_model(dataset, params)


@st.cache_resource(scope="session", max_entries=SESSION_MODELS_MAX, show_spinner="Training the softmax model…")
def _session_model(data_hash: str, params: TrainingParams, _dataset: Dataset) -> TrainedModel:
    """A model of this session's upload: cleared with the session's other caches when its tab goes."""
    trained = train_model(_dataset, params)
    memory.track_upload("trained model", trained)
    return trained


def train(dataset: Dataset, params: TrainingParams) -> TrainedModel:
    """The model of ``dataset`` trained with ``params``: shared by every session for a built-in
    dataset, this session's own for an upload."""
    if is_builtin(dataset):
        return SHARED_MODELS.get((dataset.content_hash, params), lambda: _shipped_or_trained(dataset, params))
    return _session_model(dataset.content_hash, params, dataset)


def training_label(params: TrainingParams) -> str:
    """How the sidebar names a model trained by the app (a shipped file is a model trained the same way)."""
    return f"trained here (C={params.C:g}{', standardised' if params.standardize else ''})"


# -- changing the question -------------------------------------------------------------------------
def set_dataset(name: str, dataset: Dataset, params: TrainingParams | None = None) -> None:
    """Make ``dataset`` current and train its model (the default one unless ``params``); the
    instance, target and what may change reset."""
    params = params or TrainingParams.default_for(dataset.kind)
    trained = train(dataset, params)
    st.session_state[TRAIN_PARAMS] = params
    new_question(name, dataset, trained.model, training_label(params), trained)


def new_question(name: str, dataset: Dataset, model: SoftmaxModel, label: str, trained: TrainedModel | None = None
                 ) -> None:
    """Make ``dataset`` and ``model`` current; the instance, target and what may change reset."""
    st.session_state[DATASET_NAME] = name
    st.session_state[DATASET] = dataset
    set_model(model, label, trained)
    st.session_state[INSTANCE] = 0
    st.session_state[TARGET] = default_target(model, dataset.X[0])
    st.session_state[CHOSEN_TARGET] = None
    st.session_state[INSTANCE_NOTE] = None
    st.session_state[CONSTRAINTS] = None
    st.session_state[LINK_EDITS] = ()
    st.session_state[PATH] = None
    st.session_state[ANSWER] = None
    if is_upload(name):
        memory.track_upload("dataset", dataset)
        memory.collect()  # parsing the upload left freed heap behind: give it back now, not on a slider move


def is_upload(name: str) -> bool:
    """Whether a DATASET_NAME names an upload."""
    return name.startswith("upload:")


def set_model(model: SoftmaxModel, label: str, trained: TrainedModel | None = None) -> None:
    """Make ``model`` current; a pipeline it replaces is dropped (:func:`use_pipeline` sets it after)."""
    if trained is None:
        memory.track_upload("model", model)  # a model file: this session's own
    st.session_state[MODEL] = model
    st.session_state[MODEL_LABEL] = label
    st.session_state[TRAINED] = trained
    st.session_state[PIPELINE] = None
    st.session_state[WARM] = None
    if TARGET in st.session_state:
        st.session_state[TARGET] = min(st.session_state[TARGET], model.n_classes - 1)


def default_target(model: SoftmaxModel, x0: np.ndarray) -> int:
    """The runner-up class: the most natural 'what would make it ...' question."""
    return int(np.argsort(model.predict_proba(x0))[-2])


def choose_target(target: int) -> None:
    """The user picked ``target``: it stays when the instance changes."""
    st.session_state[TARGET] = int(target)
    st.session_state[CHOSEN_TARGET] = int(target)
    st.session_state[INSTANCE_NOTE] = None


def choose_instance(index: int) -> None:
    """Show row ``index``. A target the user picked stays, unless the model already predicts it for
    this row: then the runner-up is asked, and a note says so."""
    dataset, model = st.session_state[DATASET], st.session_state[MODEL]
    index = int(index)
    x0 = dataset.X[index]
    predicted = int(model.predict(x0))
    chosen = st.session_state.get(CHOSEN_TARGET)
    st.session_state[INSTANCE] = index
    st.session_state[INSTANCE_NOTE] = None
    if chosen is not None and chosen != predicted:
        st.session_state[TARGET] = chosen
        return
    st.session_state[TARGET] = default_target(model, x0)
    if chosen is not None:
        names = [str(c) for c in model.classes]
        st.session_state[INSTANCE_NOTE] = (f"#{index} is already predicted as {names[chosen]}, your target; asking "
                                           f"about the runner-up, {names[st.session_state[TARGET]]}, instead.")


def upload_columns(raw: bytes, filename: str) -> list[str]:
    """Header of an uploaded table. Not cached: it reads the first MiB, which costs less than hashing
    the whole upload for a cache key, and keeps nothing of the upload beyond the run."""
    return datasets.table_columns(raw, filename)


def load_upload(raw: bytes, filename: str, target: str | None, drop_missing: bool) -> str | None:
    """Make an upload the current dataset. Returns an error message, or None on success.

    A table with every input column of the session's pipeline is read by that pipeline (it stays the
    model); any other upload gets the default model. Nothing in the session changes unless reading
    and training both succeed.
    """
    try:
        if datasets.is_table_file(filename):
            table = datasets.read_table(raw, filename, target)
            if use_pipeline_on(table, f"upload:{table.name}"):
                return None
            dataset = datasets.tabular_from_table(table, drop_missing)
        else:
            dataset = datasets.parse_upload(raw, filename, target=target, drop_missing=drop_missing)
        set_dataset(f"upload:{dataset.name}", dataset)
    except datasets.MissingValuesError as exc:
        return f"{exc}. Tick 'Drop rows with missing or non-finite values' to load the rest."
    except ValueError as exc:  # DataError, PipelineError, and training's own checks
        return str(exc)
    return None


def load_builtin(name: str) -> str | None:
    """Make a built-in dataset current: read by the session's pipeline when its table has the
    pipeline's columns, else with its default model. Returns an error message, or None."""
    dataset = builtin_dataset(name)
    try:
        if dataset.table is not None and use_pipeline_on(dataset.table, name):
            return None
    except pipeline.PipelineError as exc:
        return (f"{exc}. Train a model on the Model page (or load another model file) to use {name} without "
                f"the pipeline.")
    set_dataset(name, dataset)
    return None


def current_pipeline() -> pipeline.PipelineTable | None:
    """The session's pipeline, if it is the current model on the current data."""
    read = st.session_state.get(PIPELINE)
    if read is None or read.model is not st.session_state.get(MODEL) or read.dataset is not st.session_state.get(DATASET):
        return None
    return read


def check_with_pipeline(read: pipeline.PipelineTable, index: int, x: np.ndarray) -> pipeline.RowCheck:
    """The answer ``x`` for row ``index`` written as a row and judged by the pipeline, kept for this
    session until another answer is checked."""
    key = (read.pipeline.sha256, read.dataset.content_hash, int(index),
           hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest())
    kept = st.session_state.get(PIPELINE_CHECK)
    if kept is None or kept.key != key:
        kept = PipelineCheck(key=key, check=pipeline.check_answer(read, index, x))
        st.session_state[PIPELINE_CHECK] = kept
    return kept.check


def use_pipeline_on(table: datasets.RawTable, name: str) -> bool:
    """Read ``table`` with the session's pipeline and make that the question, if there is a pipeline
    and the table has its input columns; False (nothing changes) otherwise. Raises PipelineError."""
    read = st.session_state.get(PIPELINE)
    if read is None or pipeline.missing_columns(read.pipeline, table) != []:
        return False
    try:
        use_pipeline(pipeline.read_table(read.pipeline, table, table.name), name)
    except pipeline.PipelineError as exc:
        raise pipeline.PipelineError(f"{table.name} has the columns of your pipeline ({read.pipeline.filename}), "
                                     f"which cannot read it: {exc}") from None
    return True


def use_pipeline(read: pipeline.PipelineTable, name: str) -> None:
    """The pipeline and the rows it read become the question (the model explained is the pipeline)."""
    new_question(f"{name}{READ_BY}{read.pipeline.filename}", read.dataset, read.model,
                 f"your pipeline ({read.pipeline.filename})")
    st.session_state[PIPELINE] = read


def load_model_file(raw: bytes, filename: str) -> str | None:
    """Make an uploaded model file the current model. Returns an error message, or None on success.

    A ``.skops`` pipeline reads the current data's table when that has its input columns (the data
    becomes the rows it reads, in its columns); otherwise, like a ``.npz``/``.json`` file, it must
    act on the current features. Nothing in the session changes unless it loads and fits.
    """
    from solver import ModelFileError, load_model
    from training import compatibility_error

    dataset = st.session_state[DATASET]
    if filename.lower().endswith(".skops"):
        try:
            loaded = pipeline.load(raw, filename)
        except pipeline.PipelineError as exc:
            return str(exc)
        # An estimator fitted on this dataset's own features (an array, or these feature names) also
        # works as a model of them, as a .npz file does.
        on_features = not loaded.schema.named_columns or tuple(loaded.schema.column_names) == dataset.feature_names
        missing = pipeline.missing_columns(loaded, dataset.table)
        if missing == []:
            base = st.session_state[DATASET_NAME].split(READ_BY)[0]
            try:
                use_pipeline(pipeline.read_table(loaded, dataset.table, dataset.table.name), base)
                return None
            except pipeline.PipelineError as exc:
                if not on_features:
                    return f"{loaded.filename} was not loaded: {exc}"
        elif not on_features:
            return _table_hint(loaded, dataset, missing)
        model = loaded.folded
    else:
        try:
            model = load_model(raw, filename)
        except ModelFileError as exc:
            return str(exc)
    problem = compatibility_error(model, dataset.n_features, dataset.n_classes)
    if problem:
        return f"{filename} was not loaded: {problem}"
    classes = list(model.classes)
    if [str(c) for c in classes] == [str(k) for k in range(model.n_classes)]:
        classes = list(dataset.class_names)  # unnamed classes: use the dataset's names
    model = SoftmaxModel(model.coef, model.intercept, classes=classes, feature_names=dataset.feature_names)
    set_model(model, f"loaded from {filename}")
    st.session_state[ANSWER] = None
    return None


def _table_hint(loaded: pipeline.LoadedPipeline, dataset: Dataset, missing: list[str] | None) -> str:
    """Why a pipeline that reads named columns cannot explain the current data, and what to do."""
    columns = loaded.schema.column_names
    shown = ", ".join(columns[:12]) + (" ..." if len(columns) > 12 else "")
    where = (f"the current data ({st.session_state[DATASET_NAME]}) is not a table" if dataset.table is None else
             f"the current data ({st.session_state[DATASET_NAME]}) lacks {', '.join(map(repr, missing[:8]))}")
    return (f"{loaded.filename} was not loaded: the pipeline reads the columns {shown}, but {where}. Load the table "
            "it was trained on on the Data page first (penguins and german-credit are built in), then load the "
            "pipeline again.")


# -- a page opened by its address ------------------------------------------------------------------
def run_through_app() -> None:
    """Call first on every page: a page opened by its address as a server's first request runs
    without ``app.py``, so with no session set up.

    Streamlit decides before the first script run whether the app is a multipage app of the older
    kind (a ``pages/`` folder beside the main script, no ``st.navigation`` seen yet); if so, it runs
    the page asked for on its own. The flag is cleared by the first ``st.navigation`` call, which
    such a run never reaches. So the flag is cleared here, and a page reached with its session not set up
    reruns: the rerun runs ``app.py``, which sets the session up and routes to this page. (Deciding by the
    session, not by the flag, covers two first requests at once, both started in the older mode. AppTest
    sets the flag before every run and runs a switched-to page on its own, its session set up: that run
    goes on, and its reruns go through app.py as a server's do.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False  # from now on every run goes through app.py
    if DATASET not in st.session_state:  # app.py sets the session up before it routes to a page
        st.rerun()


# -- a new session, and share links -----------------------------------------------------------------
def init_session() -> None:
    """Fill defaults once per session, honouring a shared link's query parameters; whatever the
    link asks that cannot be done is kept as a warning for the page to show."""
    from ui import live_slider, recourse

    memory.watch_session((SHARED_DATASETS, SHARED_MODELS, recourse.SHARED_ANSWERS, live_slider.SHARED_LIFTS))
    if DATASET in st.session_state:
        return
    params = {key: st.query_params.get(key) for key in st.query_params}
    name, warnings = links.dataset_name(params, datasets.list_builtin(), DEFAULT_DATASET)
    dataset = builtin_dataset(name)
    request, problems = links.read(params, name, dataset, LOG_LAM_RANGE, LOG_LAM_STEP)
    warnings += problems
    set_dataset(name, dataset, request.training)
    st.session_state[LOG_LAM] = DEFAULT_LOG_LAM if request.log_lam is None else request.log_lam
    st.session_state[ALPHA] = request.alpha if request.alpha is not None else DEFAULT_ALPHA
    st.session_state[PIXEL_RANGE] = True if request.pixel_range is None else request.pixel_range
    st.session_state[STANDARDISED] = True if request.standardised is None else request.standardised
    st.session_state[RECOURSE_METRIC] = request.metric or "l2"
    st.session_state[RECOURSE_BUDGET] = DEFAULT_RECOURSE_BUDGET
    st.session_state[RECOURSE_PIXELS] = DEFAULT_RECOURSE_PIXELS
    if request.budget is not None:
        st.session_state[RECOURSE_PIXELS if dataset.kind == "image" else RECOURSE_BUDGET] = request.budget
    recourse = request.question == "recourse"
    st.session_state[RECOURSE_ALPHA] = recourse and request.alpha is not None
    st.session_state[PENDING_RECOURSE] = recourse
    st.session_state[LINK_EDITS] = request.edits
    if request.instance is not None:
        choose_instance(request.instance)
    if request.target is not None:
        choose_target(request.target)
    st.session_state[PENDING_QUESTION] = (PendingQuestion(request.question, request.alpha)
                                          if request.question and not recourse else None)
    st.session_state[LINK_WARNINGS] = tuple(warnings)
    st.session_state[WARM] = None


def link_params(what: WhatMayChange, question: str | None = None, alpha: float | None = None) -> dict[str, str] | None:
    """The query parameters of the question on screen; None when it cannot travel (uploaded data)."""
    name = st.session_state[DATASET_NAME]
    if name not in datasets.list_builtin():
        return None
    dataset = st.session_state[DATASET]
    image = dataset.kind == "image"
    trained_here = st.session_state[TRAINED] is not None
    budget = st.session_state.get(RECOURSE_PIXELS if image else RECOURSE_BUDGET) if question == "recourse" else None
    return links.encode(dataset=name, instance=st.session_state[INSTANCE], target=st.session_state[TARGET],
                        log_lam=st.session_state[LOG_LAM], kind=dataset.kind,
                        flag=st.session_state[PIXEL_RANGE] if image else st.session_state[STANDARDISED],
                        question=question, alpha=alpha, edits=what.edits,
                        training=st.session_state[TRAIN_PARAMS] if trained_here else None, budget=budget,
                        metric=st.session_state.get(RECOURSE_METRIC) if question == "recourse" else None)


def write_link(params: dict[str, str] | None) -> None:
    """Mirror ``params`` into the address bar, touching only the entries that changed (each write
    is a message to the browser)."""
    params = params or {}
    current = {key: st.query_params.get(key) for key in st.query_params}
    if current == params:
        return
    for key in set(current) - set(params):
        del st.query_params[key]
    changed = {key: value for key, value in params.items() if current.get(key) != value}
    if changed:
        st.query_params.update(changed)


def link_limits() -> str:
    """What the address bar's link does not carry, in words (empty when it carries everything)."""
    name = st.session_state[DATASET_NAME]
    if name not in datasets.list_builtin():
        return ("This question cannot be shared as a link: uploaded data and pipelines stay in your session (the "
                "address bar holds no question).")
    if st.session_state[TRAINED] is None:
        return (f"The link carries the dataset, instance, target, λ, the question and what may change, but not the "
                f"model ({st.session_state[MODEL_LABEL]}): model files stay in your session, so whoever opens it gets "
                "the default model, which may answer differently.")
    return ""


def bind(widget, label: str, key: str, on_change=None, **kwargs):
    """Render ``widget`` for the canonical state ``key``; the value survives page switches.
    ``on_change(value)`` runs after the new value is stored."""
    widget_state = widget_key(key)
    # Write the widget's state only when it differs: a write makes Streamlit send the value back to
    # the browser, which redraws the widget after every move of a slider.
    if st.session_state.get(widget_state) != st.session_state[key]:
        st.session_state[widget_state] = st.session_state[key]

    def copy_back():
        st.session_state[key] = st.session_state[widget_state]
        if on_change is not None:
            on_change(st.session_state[key])

    return widget(label, key=widget_state, on_change=copy_back, **kwargs)

