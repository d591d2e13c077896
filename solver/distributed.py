"""Whole-dataset recourse audits on Dask: the batched kernels over partitions, on one machine or many.

The same code runs on a laptop's ``LocalCluster`` and on a cluster started with ``dask scheduler`` /
``dask worker``. Each partition calls :func:`solver.minimal_flip_batch`,
:func:`solver.closest_with_probability_batch` or :func:`solver.invert_batch`; the model, with its reduced
basis (and that of the column-scaled model the constraints pose) already built, is one object in the
task graph, shipped to each worker once rather than with every task. Dask is imported only here.

>>> from solver.distributed import audit_dask, read_rows            # doctest: +SKIP
>>> rows = read_rows("applicants/")                                  # Parquet or CSV files  # doctest: +SKIP
>>> audit = audit_dask(model, rows, "good", question="flip")         # lazy              # doctest: +SKIP
>>> audit.to_parquet("audit.parquet")                                # doctest: +SKIP
"""

from __future__ import annotations

import numbers
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ._batch import check_margins, invert_batch, pose_batch
from ._batch_flip import minimal_flip_batch
from ._batch_probability import closest_with_probability_batch
from ._flip import DEFAULT_MARGIN
from ._model import SoftmaxModel
from ._problem import check_model
from ._validation import check_lam, check_probability

QUESTIONS = ("flip", "probability", "lam")
# A feature counts as changed when it moves by more than this, relative to its size.
CHANGE_RTOL = 1e-9


def _columns(question: str) -> dict[str, str]:
    columns = {"distance": "float64", "success": "bool", "n_changed": "int64", "proba_target": "float64"}
    if question == "probability":
        columns["lam"] = "float64"
    return columns


def audit_frame(model: SoftmaxModel, X0: np.ndarray, targets: np.ndarray, question: str, *, margin=None, alpha=None,
                lam=None, index=None, **constraints) -> pd.DataFrame:
    """The audit of rows ``X0`` (n, D) in memory: the per-partition kernel of :func:`audit_dask`, and the
    reference it is tested against.

    Columns: ``distance`` (the problem's own metric; ``inf`` without an answer), ``success``,
    ``n_changed`` (features that move by more than ``1e-9 (1 + |x0_j|)``), ``proba_target`` (the target's
    probability at the answer) and, for ``question="probability"``, ``lam``.
    """
    if question == "flip":
        result = minimal_flip_batch(model, X0, targets, DEFAULT_MARGIN if margin is None else margin, **constraints)
    elif question == "probability":
        result = closest_with_probability_batch(model, X0, targets, alpha, **constraints)
    else:
        result = invert_batch(model, X0, targets, lam, **constraints)
    changed = np.abs(result.X - X0) > CHANGE_RTOL * (1.0 + np.abs(X0))
    changed[~result.success] = False
    frame = pd.DataFrame({
        "distance": result.distance,
        "success": result.success,
        "n_changed": changed.sum(axis=1).astype(np.int64),
        "proba_target": result.proba[np.arange(len(result)), result.target],
    }, index=index)
    if question == "probability":
        frame["lam"] = result.lam
    return frame


def class_indices(model: SoftmaxModel, values) -> np.ndarray:
    """Class indices for target values given as labels of ``model.classes`` (compared as text) or as
    indices 0..K-1; ValueError naming the first value that is neither."""
    labels = {str(c): i for i, c in enumerate(model.classes)}
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object).ravel()), use_na_sentinel=False)
    mapped = np.empty(len(uniques), dtype=np.int64)
    for slot, value in enumerate(uniques):  # each distinct value once
        index = labels.get(str(value))
        if index is None and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            index = int(value) if 0 <= int(value) < model.n_classes else None
        if index is None:
            position = int(np.argmax(codes == slot))
            raise ValueError(f"target {value!r} (row {position}) is neither a class of the model "
                             f"({', '.join(labels)}) nor a class index 0..{model.n_classes - 1}")
        mapped[slot] = index
    return mapped[codes]


def _partition(frame: pd.DataFrame, model, features, target_column, target_index, question, params, constraints):
    """One partition's audit; errors name the row by its index label."""
    X0 = frame[list(features)].to_numpy(dtype=np.float64)
    finite = np.isfinite(X0)
    if not finite.all():
        row, column = np.argwhere(~finite)[0]
        label = frame.index[row]
        label = label.item() if isinstance(label, np.generic) else label
        raise ValueError(f"row with index {label!r} has a non-finite value in column "
                         f"{features[column]!r}; clean the data (or drop such rows) before the audit")
    if target_column is None:
        targets = np.full(len(frame), target_index, dtype=np.int64)
    else:
        try:
            targets = class_indices(model, frame[target_column].to_numpy())
        except ValueError as exc:
            raise ValueError(f"column {target_column!r}: {exc}") from None
    return audit_frame(model, X0, targets, question, index=frame.index, **params, **constraints)


def audit_dask(model, data, target, question="flip", *, margin=None, alpha=None, lam=None, **constraints):
    """Audit every row of ``data`` with one of the three questions, partition by partition on Dask.

    Parameters
    ----------
    model : SoftmaxModel
    data : dask DataFrame, dask array (n, D), or a path (Parquet or CSV file or directory)
        A DataFrame needs the model's feature columns (``model.feature_names``; without names, exactly D
        columns besides a target column). An array needs D columns.
    target : int, label, or str
        A class index or label (``model.classes``), or the name of a column holding each row's target.
    question : {"flip", "probability", "lam"}
        :func:`solver.minimal_flip_batch` (``margin``, default 1e-6), :func:`solver.closest_with_probability_batch`
        (``alpha``, required) or :func:`solver.invert_batch` (``lam``, required).
    **constraints
        ``immutable``, ``cost``, ``bounds``, ``categorical`` (frozen one-hot groups) as in the batched
        functions, the same for every row.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy, indexed like the input, with columns ``distance``, ``success``, ``n_changed``,
        ``proba_target`` (and ``lam`` for ``question="probability"``); see :func:`audit_frame`.

    Raises
    ------
    ValueError
        For invalid arguments (at once) and, when computed, for rows with non-finite features or unknown
        targets (naming the row's index label).
    """
    import dask
    import dask.array as da
    import dask.dataframe as dd

    model = check_model(model)
    if question not in QUESTIONS:
        raise ValueError(f"question must be one of {', '.join(QUESTIONS)}; got {question!r}")
    params = {}
    if question == "flip":
        check_margins(DEFAULT_MARGIN if margin is None else margin, 1)
        params["margin"] = DEFAULT_MARGIN if margin is None else float(margin)
    elif question == "probability":
        if alpha is None:
            raise ValueError("question='probability' needs alpha, the probability to reach (0 < alpha < 1)")
        params["alpha"] = check_probability(alpha)
    else:
        if lam is None:
            raise ValueError("question='lam' needs lam, the trade-off (> 0)")
        params["lam"] = check_lam(lam)
    pose_batch(model, **constraints)  # validates the constraints now, and builds the bases that ship with the model
    model.reduced_basis()
    if isinstance(data, (str, Path)):
        data = read_rows(data, model)
    if isinstance(data, da.Array):
        if data.ndim != 2 or data.shape[1] != model.n_features:
            raise ValueError(f"data must have shape (n, {model.n_features}), got {data.shape}")
        names = model.feature_names or tuple(f"x{j}" for j in range(model.n_features))
        data = dd.from_dask_array(data.rechunk({1: -1}), columns=list(names))
    if not isinstance(data, dd.DataFrame):
        raise ValueError(f"data must be a dask DataFrame, a dask array or a path, got {type(data).__name__}")
    target_column = target if isinstance(target, str) and target in data.columns else None
    target_index = None
    if target_column is None:
        target_index = int(class_indices(model, [target])[0])
    features = _feature_columns(model, data.columns, target_column)
    shipped = dask.delayed(model, name=f"softmax-model-{model.fingerprint}", pure=True)
    meta = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _columns(question).items()},
                        index=data._meta.index)
    return data.map_partitions(_partition, shipped, features, target_column, target_index, question, params,
                               constraints, meta=meta)


def compute(collection, scheduler=None, workers=None, progress=True, out=None):
    """Compute a dask collection with a progress bar: on the scheduler at ``scheduler`` (an address such as
    ``tcp://host:8786``), else on a local cluster of ``workers`` processes (default: the CPU count), or in
    this process with ``workers=0``. Returns the computed result."""
    import dask

    out = sys.stderr if out is None else out
    if scheduler is None and workers == 0:
        from dask.diagnostics import ProgressBar
        from threadpoolctl import threadpool_limits

        # one BLAS thread, as Dask's workers have (distributed.nanny.pre-spawn-environ): the kernels are many
        # small BLAS calls, slower with a second thread on a shared machine
        with dask.config.set(scheduler="synchronous"), threadpool_limits(limits=1, user_api="blas"):
            if not progress:
                return dask.compute(collection)[0]
            with ProgressBar(out=out):
                return dask.compute(collection)[0]
    from distributed import Client, LocalCluster
    from distributed import progress as progress_bar

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    client = Client(cluster if cluster is not None else scheduler)
    try:
        future = client.compute(collection)
        if progress:
            progress_bar(future)
            print(file=out)
        return future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _feature_columns(model: SoftmaxModel, columns, target_column) -> tuple:
    names = [c for c in columns if c != target_column]
    if model.feature_names is not None:
        missing = [f for f in model.feature_names if f not in set(map(str, names))]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ValueError(f"the data lacks {len(missing)} of the model's feature columns: {shown}")
        by_text = {str(c): c for c in names}
        return tuple(by_text[f] for f in model.feature_names)
    if len(names) != model.n_features:
        raise ValueError(f"the model has no feature names and {model.n_features} features, but the data has "
                         f"{len(names)} columns besides the target")
    return tuple(names)


def read_rows(path, model: SoftmaxModel | None = None, blocksize="64MB"):
    """A lazy dask DataFrame of the rows in a Parquet or CSV file, or a directory of them.

    With a model, its feature columns are read as float64 (CSV), so a column that looks integer in
    the first block cannot break a later one.
    """
    import dask.dataframe as dd

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if path.is_dir():
        parquet = sorted(path.glob("*.parquet"))
        csv = sorted(path.glob("*.csv"))
        if not parquet and not csv:
            raise ValueError(f"{path} holds no .parquet or .csv files")
        kind, source = ("parquet", str(path)) if parquet else ("csv", [str(p) for p in csv])
    else:
        suffix = path.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise ValueError(f"{path.name}: rows must be in .parquet or .csv files, not '{suffix}'")
        kind, source = suffix.lstrip("."), str(path)
    if kind == "parquet":
        return dd.read_parquet(source)
    dtype = None if model is None or model.feature_names is None else {f: "float64" for f in model.feature_names}
    return dd.read_csv(source, dtype=dtype, blocksize=blocksize)
