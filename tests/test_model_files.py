"""Model files: round trips, trusted skops types only, hostile files; and the training helper."""

from pathlib import Path

import numpy as np
import pytest

import datasets
import solver
from solver import ModelFileError, SoftmaxModel, load_model
from training import compatibility_error, train_softmax

CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture(scope="module")
def iris():
    return datasets.load_builtin("iris")


@pytest.fixture(scope="module")
def trained(iris):
    return train_softmax(iris.X, iris.y, iris.class_names, iris.feature_names, C=1.0, standardize=True)


@pytest.mark.parametrize("fmt", solver.FORMATS)
def test_round_trip_keeps_predictions(trained, iris, fmt):
    model = trained.model
    loaded = load_model(model.to_bytes(fmt), f"model.{fmt}")
    np.testing.assert_array_equal(loaded.predict(iris.X), model.predict(iris.X))
    np.testing.assert_allclose(loaded.predict_proba(iris.X), model.predict_proba(iris.X), atol=1e-14)
    assert list(loaded.classes) == list(iris.class_names)
    assert loaded.feature_names == iris.feature_names


@pytest.mark.parametrize("fmt", solver.FORMATS)
def test_binary_round_trip(fmt):
    data = datasets.load_builtin("breast-cancer")
    model = train_softmax(data.X, data.y, data.class_names, standardize=True).model
    loaded = load_model(model.to_bytes(fmt), f"b.{fmt}")
    np.testing.assert_allclose(loaded.predict_proba(data.X), model.predict_proba(data.X), atol=1e-13)


def test_skops_pipeline_from_sklearn_is_folded(iris):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(iris.X, iris.y)
    model = load_model(sio.dumps(pipeline), "pipe.skops")
    np.testing.assert_allclose(model.predict_proba(iris.X), pipeline.predict_proba(iris.X), atol=1e-12)


def test_skops_with_other_estimators_is_refused(iris):
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    data = sio.dumps(DecisionTreeClassifier().fit(iris.X, iris.y))
    with pytest.raises(ModelFileError, match="not trusted here: sklearn.tree"):
        load_model(data, "tree.skops")


HOSTILE_MODELS = [
    ("pickled_model.pkl", "never opened"),
    ("pickle_named.skops", "pickle/joblib"),
    ("truncated.skops", "not a valid skops file"),
    ("model_wrong_shapes.npz", "intercept has 2 entries but coef has 3 rows"),
    ("model_nan.json", "non-finite"),
    ("model_ragged.json", "rectangular"),
    ("object_array.npz", "must contain arrays 'coef' and 'intercept'"),
    ("garbage.csv", "unsupported model file type"),
    ("empty.csv", "is empty"),
]


@pytest.mark.parametrize("name,fragment", HOSTILE_MODELS)
def test_hostile_model_files(name, fragment):
    with pytest.raises(ModelFileError, match=fragment):
        load_model((CORPUS / name).read_bytes(), name)


def test_npz_with_object_arrays_is_refused():
    import io

    buffer = io.BytesIO()
    np.savez(buffer, coef=np.array([[1, 2], [3, 4]], dtype=object), intercept=np.zeros(2))
    with pytest.raises(ModelFileError, match="object arrays"):
        load_model(buffer.getvalue(), "obj.npz")


def test_binary_weight_row_is_accepted():
    import io

    buffer = io.BytesIO()
    np.savez(buffer, coef=np.array([[1.0, -2.0]]), intercept=np.array([0.5]))
    model = load_model(buffer.getvalue(), "lr.npz")
    assert model.n_classes == 2
    x = np.array([0.3, 0.1])
    assert model.predict_proba(x)[1] == pytest.approx(1 / (1 + np.exp(-(0.3 - 0.2 + 0.5))), rel=1e-14)


def test_to_bytes_rejects_unknown_format(trained):
    with pytest.raises(ValueError, match="fmt must be one of"):
        trained.model.to_bytes("pickle")


def test_training_reports_accuracy_and_confusion(trained, iris):
    assert 0.85 <= trained.test_accuracy <= 1 and 0.85 <= trained.train_accuracy <= 1
    assert trained.confusion.sum() == len(trained.test_index) == 30
    assert np.trace(trained.confusion) == round(trained.test_accuracy * 30)
    # standardisation is folded in: the model acts on raw features
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = np.setdiff1d(np.arange(150), trained.test_index)
    scaler = StandardScaler().fit(iris.X[train])
    reference = LogisticRegression(max_iter=300).fit(scaler.transform(iris.X[train]), iris.y[train])
    np.testing.assert_allclose(trained.model.predict_proba(iris.X), reference.predict_proba(scaler.transform(iris.X)), atol=1e-6)


def test_compatibility_names_both_numbers(trained):
    assert compatibility_error(trained.model, 4, 3) is None
    message = compatibility_error(trained.model, 784, 10)
    assert "expects 4 features" in message and "has 784" in message


def test_model_invariants():
    model = SoftmaxModel(np.eye(3), np.zeros(3), classes=["a", "b", "c"])
    with pytest.raises(ValueError):
        model.coef[0, 0] = 5.0  # read-only: shared across sessions safely
    assert model.fingerprint == SoftmaxModel(np.eye(3), np.zeros(3)).fingerprint
    assert model.fingerprint != SoftmaxModel(2 * np.eye(3), np.zeros(3)).fingerprint


# -- pipelines in .skops files; hostile ones are refused before anything runs ----------------------------
HOSTILE_SKOPS = [
    ("skops_untrusted_in_column_transformer.skops", "canary_payload.CanaryTransformer (in 'pre' > 'evil')"),
    ("skops_function_transformer_lambda.skops", "canary_payload.<lambda> (in 'pre' > 'shout')"),
    ("skops_function_transformer_numpy.skops", "numpy.log1p (in 'pre' > 'log')"),
    ("skops_polynomial.skops", "sklearn.preprocessing._polynomial.PolynomialFeatures (in 'pre' > 'poly')"),
]


@pytest.mark.parametrize("name,fragment", HOSTILE_SKOPS)
@pytest.mark.parametrize("loader", [load_model, solver.load_estimator])
def test_hostile_pipelines_are_refused_and_nothing_runs(name, fragment, loader, tmp_path, monkeypatch):
    import sys

    canary = tmp_path / "canary.txt"
    monkeypatch.setenv("CANARY_PATH", str(canary))
    monkeypatch.syspath_prepend(str(CORPUS))  # the payload is importable: only the loader's refusal stops it
    assert "canary_payload" not in sys.modules
    with pytest.raises(ModelFileError) as info:
        loader((CORPUS / name).read_bytes(), name)
    message = str(info.value)
    assert "not trusted here" in message and fragment in message and "Nothing in it was loaded" in message
    assert "refit the pipeline" in message  # says what to do
    assert not canary.exists(), canary.read_text()
    assert "canary_payload" not in sys.modules


@pytest.mark.parametrize("name,events", [("skops_untrusted_in_column_transformer.skops", {"imported", "setstate"}),
                                         ("skops_function_transformer_lambda.skops", {"imported"})])
def test_the_hostile_files_do_run_code_when_trusted(name, events, tmp_path):
    """Control: skops with its own trust list imports the payload (and restores its object), so the
    refusal above is what keeps the canary silent."""
    import os
    import subprocess
    import sys

    canary = tmp_path / "canary.txt"
    script = ("import sys, skops.io as sio\n"
              f"data = open({str(CORPUS / name)!r}, 'rb').read()\n"
              "try:\n    sio.loads(data, trusted=sio.get_untrusted_types(data=data))\n"
              "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    env = {**os.environ, "CANARY_PATH": str(canary), "PYTHONPATH": str(CORPUS)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120, capture_output=True)
    assert events <= set(canary.read_text().split())


def test_skops_column_transformer_pipeline_loads_with_its_schema():
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(datasets._builtin.DATA_DIR / "penguins.csv")
    y = frame.pop("species")
    numbers = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    pipeline = Pipeline([
        ("pre", ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
                                   ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()),
                                    ["island", "sex"])])),
        ("clf", LogisticRegression(max_iter=2000)),
    ]).fit(frame, y)
    model = load_model(sio.dumps(pipeline), "penguins.skops")  # the pipeline refused in issue 10
    schema = model.schema
    assert [c.kind for c in schema.columns] == ["categorical", "numeric", "numeric", "numeric", "numeric",
                                                "categorical", "unused"]
    X = np.array([schema.encode(list(row)).x for row in frame.itertuples(index=False)])
    np.testing.assert_allclose(model.predict_proba(X), pipeline.predict_proba(frame), rtol=0, atol=1e-10)
    assert list(model.classes) == ["Adelie", "Chinstrap", "Gentoo"]
