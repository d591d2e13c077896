"""The Dask path against the in-memory batch, row for row, on a real two-process LocalCluster; the
command line on a small file; SoftmaxModel's pickling for Dask's transport."""

import contextlib
import pickle
import sys

import numpy as np
import pandas as pd
import pytest

import datasets
from solver import SoftmaxModel, minimal_flip_batch
from solver.distributed import audit_dask, audit_frame, class_indices, read_rows
from training import train_softmax

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def german():
    data = datasets.load_builtin("german-credit")
    model = train_softmax(data.X, data.y, data.class_names, feature_names=data.feature_names).model
    groups = [group.columns for group in data.encoding.categorical]
    rng = np.random.default_rng(0)
    rows = rng.choice(data.n_samples, 240, replace=False)
    frame = pd.DataFrame(data.X[rows], columns=data.feature_names, index=pd.Index(rows * 10 + 7, name="applicant"))
    frame["wanted"] = np.where(rng.random(240) < 0.5, "good", "bad")
    return model, frame, groups, data


@contextlib.contextmanager
def spawnable_main():
    """Worker processes are spawned, and a spawned child re-runs ``__main__`` from its file unless the module
    has a name to import. Streamlit's AppTest (test_app.py) leaves its temporary script as ``__main__``;
    hide that file while workers start, so they do not run the script."""
    main = sys.modules["__main__"]
    hidden = {}
    if getattr(main, "__spec__", None) is None and "__file__" in main.__dict__:
        hidden["__file__"] = main.__dict__.pop("__file__")
    try:
        yield
    finally:
        main.__dict__.update(hidden)


@pytest.fixture(scope="module")
def client():
    with spawnable_main():
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def in_memory(model, frame, target, question, **kwargs):
    X0 = frame[list(model.feature_names)].to_numpy()
    targets = class_indices(model, frame[target] if target in frame else [target] * len(frame))
    return audit_frame(model, X0, targets, question, index=frame.index, **kwargs)


def test_the_model_travels_to_workers_with_its_bases_and_a_fresh_lock():
    """As Dask sends it between processes (its serializer, pickle, for our own in-memory object)."""
    from distributed.protocol import deserialize, serialize

    model = SoftmaxModel(np.arange(12.0).reshape(3, 4) % 5, [0.0, 1.0, -1.0], classes=["a", "b", "c"])
    basis = model.reduced_basis()
    twin = deserialize(*serialize(model))
    assert np.array_equal(twin.coef, model.coef) and twin.fingerprint == model.fingerprint
    assert np.array_equal(twin.reduced_basis().M, basis.M) and not twin.coef.flags.writeable
    assert twin._lock is not model._lock and twin._lock.acquire(blocking=False)  # a working, unheld lock


def test_dask_audit_equals_the_in_memory_audit_row_for_row(german, client):
    model, frame, groups, data = german
    cost = 1.0 / data.X.std(axis=0).clip(1e-3) ** 2
    ddf = dd.from_pandas(frame, npartitions=4, sort=False)
    cases = [("wanted", "flip", dict(categorical=groups, cost=cost)),
             ("good", "probability", dict(alpha=0.8, categorical=groups)),
             ("bad", "lam", dict(lam=0.5, immutable=[0, 1]))]
    for target, question, kwargs in cases:
        lazy = audit_dask(model, ddf, target, question=question, **kwargs)
        keys = [k for k in dict(lazy.__dask_graph__()) if "softmax-model" in str(k)]
        assert len(keys) == 1  # one model object in the graph, shared by every partition
        result = client.compute(lazy).result()
        pd.testing.assert_frame_equal(result, in_memory(model, frame, target, question, **kwargs))
        assert result.index.equals(frame.index) and result.success.any()
    flips = minimal_flip_batch(model, frame[list(model.feature_names)].to_numpy(),
                               class_indices(model, frame["wanted"]), categorical=groups, cost=cost)
    first = client.compute(audit_dask(model, ddf, "wanted", question="flip", categorical=groups, cost=cost)).result()
    np.testing.assert_array_equal(first.distance.to_numpy(), flips.distance)
    assert (first.n_changed[first.distance > 0] > 0).all()
    assert (first.n_changed <= model.n_features - sum(len(g) for g in groups)).all()  # one-hot groups stay frozen


def test_parquet_and_csv_directories_in_parquet_out(german, client, tmp_path):
    model, frame, groups, _ = german
    source = tmp_path / "rows"
    source.mkdir()
    for part in range(3):
        frame.iloc[part * 80:(part + 1) * 80].to_parquet(source / f"part{part}.parquet")
    audit = audit_dask(model, read_rows(source), "good", question="flip", categorical=groups)
    client.compute(audit.to_parquet(tmp_path / "audit.parquet", compute=False)).result()
    written = pd.read_parquet(tmp_path / "audit.parquet")
    pd.testing.assert_frame_equal(written, in_memory(model, frame, "good", "flip", categorical=groups),
                                  check_index_type=False)
    csv = tmp_path / "csv"
    csv.mkdir()
    for part in range(2):
        frame.iloc[part * 120:(part + 1) * 120].to_csv(csv / f"part{part}.csv", index=False)
    rows = read_rows(csv, model)
    with dask.config.set(scheduler="synchronous"):
        result = audit_dask(model, rows, "wanted", question="flip", categorical=groups).compute()
    expected = in_memory(model, frame.reset_index(drop=True), "wanted", "flip", categorical=groups)
    np.testing.assert_allclose(result.distance.to_numpy(), expected.distance.to_numpy(), rtol=1e-12)


def test_bad_rows_and_arguments_raise_value_error_naming_them(german):
    model, frame, _, _ = german
    broken = frame.copy()
    broken.iloc[5, 3] = np.nan
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(ValueError, match=f"index {frame.index[5]}"):
            audit_dask(model, dd.from_pandas(broken, npartitions=2, sort=False), "good").compute()
        unknown = frame.assign(wanted="excellent")
        with pytest.raises(ValueError, match="'excellent'"):
            audit_dask(model, dd.from_pandas(unknown, npartitions=2, sort=False), "wanted").compute()
    with pytest.raises(ValueError, match="feature columns"):
        audit_dask(model, dd.from_pandas(frame.iloc[:, 3:], npartitions=2, sort=False), "good")
    with pytest.raises(ValueError, match="needs alpha"):
        audit_dask(model, dd.from_pandas(frame, npartitions=2, sort=False), "good", question="probability")
    with pytest.raises(ValueError, match="question must be"):
        audit_dask(model, dd.from_pandas(frame, npartitions=2, sort=False), "good", question="cheapest")


def test_command_line_audits_a_small_file(german, tmp_path, capsys):
    from solver import audit as cli

    model, frame, _, _ = german
    (tmp_path / "m.skops").write_bytes(model.to_bytes("skops"))
    frame.iloc[:60].to_parquet(tmp_path / "rows.parquet")
    code = cli.main(["--model", str(tmp_path / "m.skops"), "--data", str(tmp_path / "rows.parquet"), "--target", "good",
                     "--out", str(tmp_path / "audit.parquet"), "--workers", "0"])
    assert code == 0 and "100% Completed" in capsys.readouterr().err
    written = pd.read_parquet(tmp_path / "audit.parquet")
    pd.testing.assert_frame_equal(written, in_memory(model, frame.iloc[:60], "good", "flip"), check_exact=False,
                                  rtol=1e-12)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(model))
    code = cli.main(["--model", str(tmp_path / "m.pkl"), "--data", str(tmp_path / "rows.parquet"), "--target", "good",
                     "--out", str(tmp_path / "never.parquet"), "--workers", "0"])
    assert code == 2 and "pickle" in capsys.readouterr().err and not (tmp_path / "never.parquet").exists()


def test_dask_benchmark_smoke_run(tmp_path):
    """A small run of benchmarks/dask_benchmark.py (its own two-worker cluster); no timing is asserted."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import dask_benchmark

    with spawnable_main():
        summary = dask_benchmark.main(["--rows", "3000", "--partition", "1000", "--out", str(tmp_path)])
    assert int(summary.rows.iloc[0]) == 3000 and (tmp_path / "dask_audit_small.csv").exists()


def test_a_dask_array_and_the_lam_question(german):
    model, frame, groups, _ = german
    da = pytest.importorskip("dask.array")
    X = frame[list(model.feature_names)].to_numpy()
    rows = da.from_array(X, chunks=(70, 20))  # split along the features too: rechunked to whole rows
    with dask.config.set(scheduler="synchronous"):
        result = audit_dask(model, rows, "good", question="lam", lam=0.3, categorical=groups).compute()
    expected = audit_frame(model, X, class_indices(model, ["good"] * len(X)), "lam", lam=0.3, categorical=groups)
    np.testing.assert_array_equal(result.index.to_numpy(), np.arange(len(X)))
    np.testing.assert_allclose(result.distance.to_numpy(), expected.distance.to_numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        audit_dask(model, da.from_array(X[:, :5]), "good")


def test_dask_is_imported_only_by_solver_distributed():
    import ast
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[1] / "solver").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        if any(name.split(".")[0] in ("dask", "distributed") for name in names):
            assert path.name == "distributed.py", path


def test_command_line_on_a_running_scheduler(german, client, tmp_path):
    from solver import audit as cli

    model, frame, _, _ = german
    (tmp_path / "m.npz").write_bytes(model.to_bytes("npz"))
    frame.iloc[:50].to_csv(tmp_path / "rows.csv", index=False)
    code = cli.main(["--model", str(tmp_path / "m.npz"), "--data", str(tmp_path / "rows.csv"), "--target", "wanted",
                     "--out", str(tmp_path / "audit.parquet"), "--question", "probability", "--alpha", "0.8",
                     "--scheduler", client.scheduler.address, "--no-progress"])
    assert code == 0
    written = pd.read_parquet(tmp_path / "audit.parquet")
    expected = in_memory(model, frame.iloc[:50].reset_index(drop=True), "wanted", "probability", alpha=0.8)
    np.testing.assert_allclose(written.distance.to_numpy(), expected.distance.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(written.lam.to_numpy(), expected.lam.to_numpy(), rtol=1e-12)
    assert client.scheduler_info()["workers"]  # the shared cluster is still up
