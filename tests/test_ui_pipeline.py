"""ui/pipeline.py without Streamlit: a pipeline reading a table in the pages' features, and answers written
back as rows. The reference is the pipeline itself: ``predict_proba`` on the table's rows, on rows with
every level written in, and on what the CSV download holds."""

import functools
import io
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

import datasets
from ui import pipeline

DATA = datasets._builtin.DATA_DIR
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@functools.cache
def penguin_table() -> datasets.RawTable:
    return datasets.read_table((DATA / "penguins.csv").read_bytes(), "penguins.csv")


def fitted(pre, frame, target, final=None):
    model = Pipeline([("pre", pre), ("clf", final or LogisticRegression(max_iter=3000))])
    return model.fit(frame.drop(columns=target), frame[target])


def loaded(estimator, name="p.skops") -> pipeline.LoadedPipeline:
    return pipeline.load(sio.dumps(estimator), name)


def _scaled_one_hot():
    frame = penguin_table().frame.dropna()
    return fitted(ColumnTransformer([("num", StandardScaler(), NUMBERS), ("cat", OneHotEncoder(), ["island", "sex"])]),
                  frame, "species"), penguin_table()


def _imputed_drop_first():
    frame = penguin_table().frame
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMBERS),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(drop="first")), ["island", "sex"]),
    ])
    return fitted(pre, frame, "species"), penguin_table()


def _ordinal_infrequent_minmax():
    frame = penguin_table().frame.dropna()
    pre = ColumnTransformer([
        ("num", MinMaxScaler(), NUMBERS),
        ("isl", OneHotEncoder(min_frequency=60, handle_unknown="infrequent_if_exist"), ["island"]),
        ("sex", OrdinalEncoder(), ["sex"]),
    ])
    return fitted(pre, frame, "species"), penguin_table()


def _unseen_level_ignored():
    """Fitted without Torgersen; the table has it: a level only the table has, encoded as all zeros."""
    frame = penguin_table().frame.dropna()
    frame = frame[frame.island != "Torgersen"]
    pre = ColumnTransformer([("num", StandardScaler(), NUMBERS),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["island", "sex"])])
    return fitted(pre, frame, "species"), penguin_table()


def _constant_column_and_binary_classes():
    """A one-level column (a constant of the model) and a two-class target."""
    frame = penguin_table().frame.dropna().assign(colony="Palmer")
    frame["gentoo"] = np.where(frame.species == "Gentoo", "yes", "no")
    frame = frame.drop(columns="species")
    pre = ColumnTransformer([("num", StandardScaler(), NUMBERS), ("cat", OneHotEncoder(), ["island", "colony"])])
    table = datasets.check_table(frame, target="gentoo", name="gentoo.csv")
    return fitted(pre, frame, "gentoo"), table


def _integer_classes_builtin_table():
    """scikit-learn's own breast-cancer frame, classes 0 and 1: the built-in's table as the pipeline saw it."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    return (make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(bunch.data, bunch.target),
            datasets.load_builtin("breast-cancer").table)


def _german_with_gaps():
    frame = pd.read_csv(DATA / "german_credit.csv")
    rng = np.random.default_rng(0)
    for column in ["duration_months", "credit_amount", "purpose", "savings"]:
        frame.loc[rng.random(len(frame)) < 0.05, column] = np.nan
    numbers = [c for c in frame.columns if frame[c].dtype.kind in "if"]
    texts = [c for c in frame.columns if c not in numbers and c != "credit_risk"]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), texts),
    ])
    return fitted(pre, frame, "credit_risk"), datasets.check_table(frame, target="credit_risk", name="gaps.csv")


CASES = {f.__name__.lstrip("_"): f for f in (_scaled_one_hot, _imputed_drop_first, _ordinal_infrequent_minmax,
                                              _unseen_level_ignored, _constant_column_and_binary_classes,
                                              _integer_classes_builtin_table, _german_with_gaps)}


@functools.cache
def case(name):
    estimator, table = CASES[name]()
    return estimator, table, pipeline.read_table(loaded(estimator), table)


def scorable_rows(estimator, table, rows=None) -> list[int]:
    """The rows the pipeline itself scores (the reference for which rows are read): a block it scores
    whole is kept, a block it refuses is halved until single rows are judged."""
    inputs = table.frame[list(estimator.feature_names_in_)]
    rows = list(range(len(inputs))) if rows is None else rows
    try:
        if np.all(np.isfinite(estimator.predict_proba(inputs.iloc[rows]))):
            return rows
    except ValueError:
        pass
    if len(rows) == 1:
        return []
    middle = len(rows) // 2
    return scorable_rows(estimator, table, rows[:middle]) + scorable_rows(estimator, table, rows[middle:])


@pytest.mark.parametrize("name", CASES)
def test_the_pages_model_is_the_pipeline_on_every_row_it_reads(name):
    estimator, table, read = case(name)
    dataset, model = read.dataset, read.model
    inputs = table.frame.iloc[dataset.table_rows][list(estimator.feature_names_in_)]
    np.testing.assert_allclose(model.predict_proba(dataset.X), estimator.predict_proba(inputs), rtol=0, atol=1e-12)
    assert read.fold_error <= 1e-12 and read.encoded_fold_error <= 1e-12
    labels = table.frame[table.target].iloc[dataset.table_rows].astype(str).tolist()
    assert [dataset.class_names[k] for k in dataset.y] == labels
    assert read.accuracy == pytest.approx(np.mean(estimator.predict(inputs).astype(str) == np.array(labels)))
    for group in dataset.encoding.categorical:  # exactly one level per column, every row
        block = dataset.X[:, list(group.columns)]
        assert set(np.unique(block)) <= {0.0, 1.0} and np.all(block.sum(axis=1) == 1)


@pytest.mark.parametrize("name", ["scaled_one_hot", "ordinal_infrequent_minmax", "german_with_gaps"])
def test_the_rows_left_out_are_the_rows_the_pipeline_cannot_score(name):
    estimator, table, read = case(name)
    assert read.dataset.table_rows.tolist() == scorable_rows(estimator, table)
    if len(read.dataset.table_rows) < len(table.frame):
        assert read.notes and read.notes[0].startswith(f"{len(table.frame) - len(read.dataset.table_rows)} of ")


@pytest.mark.parametrize("name", CASES)
def test_every_level_of_every_column_is_a_real_row(name):
    """Switch each categorical/ordinal column of a row to each of its levels (dropped, pooled, unseen ones
    included): the row written back is scored by the pipeline exactly as the pages' model scores x."""
    estimator, table, read = case(name)
    dataset, model = read.dataset, read.model
    for index in (dataset.n_samples // 2,):
        for column in read.columns:
            if column.kind == "numeric":
                continue
            for level in range(len(column.levels)):
                x = dataset.X[index].copy()
                x[list(column.features)] = 0.0
                x[column.features[level]] = 1.0
                row, changed = pipeline.answer_row(read, index, x)
                assert changed == (() if np.array_equal(x, dataset.X[index]) else (column.name,))
                np.testing.assert_allclose(estimator.predict_proba(row)[0], model.predict_proba(x), rtol=0, atol=1e-12)


def test_an_answer_row_keeps_what_did_not_change_and_says_what_is_imputed():
    estimator, table, read = case("imputed_drop_first")
    dataset = read.dataset
    index = int(np.flatnonzero(dataset.source_rows().sex.isna() & dataset.source_rows().bill_depth_mm.isna())[0])
    x = dataset.X[index].copy()
    j = dataset.feature_names.index("bill_length_mm")
    x[j] += 7.25
    check = pipeline.check_answer(read, index, x)
    source = dataset.source_rows([index])
    assert check.changed == ("bill_length_mm",)
    assert check.row.bill_length_mm.iloc[0] == source.bill_length_mm.iloc[0] + 7.25 if not np.isnan(
        source.bill_length_mm.iloc[0]) else check.row.bill_length_mm.iloc[0] == x[j]
    assert check.row.sex.isna().all() and check.row.bill_depth_mm.isna().all()  # still missing, still imputed
    imputed = dict(check.imputed)
    assert imputed["sex"] == estimator.named_steps["pre"].named_transformers_["cat"][0].statistics_[1]
    assert imputed["bill_depth_mm"] == estimator.named_steps["pre"].named_transformers_["num"][0].statistics_[1]
    assert check.predicted == estimator.predict(check.row)[0]
    np.testing.assert_allclose(check.proba, read.model.predict_proba(x), rtol=0, atol=1e-12)
    line, agrees = pipeline.check_sentence(read, check, int(read.model.predict(x)))
    assert agrees and f"it predicts {check.predicted}" in line and "sex = " in line


def test_the_csv_holds_rows_the_pipeline_reads_back():
    estimator, table, read = case("scaled_one_hot")
    dataset = read.dataset
    x = dataset.X[3].copy()
    gentoo = dataset.feature_names.index("island=Biscoe")
    x[[dataset.feature_names.index(f"island={i}") for i in ("Biscoe", "Dream", "Torgersen")]] = 0.0
    x[gentoo] = 1.0
    x[dataset.feature_names.index("flipper_length_mm")] = 221.123456789012
    x[dataset.feature_names.index("body_mass_g")] += 1e-9  # however small, a change is written, to the last digit
    frame = pd.read_csv(io.BytesIO(pipeline.answer_csv(read, 3, x)))
    assert frame.row.tolist() == ["source", "counterfactual"]
    rows = frame.drop(columns=["row", "predicted by the pipeline"])
    assert rows.columns.tolist() == list(estimator.feature_names_in_)
    assert rows.flipper_length_mm[1] == 221.123456789012 and rows.island[1] == "Biscoe"
    assert rows.body_mass_g[1] == x[dataset.feature_names.index("body_mass_g")] != rows.body_mass_g[0]
    assert frame["predicted by the pipeline"].tolist() == estimator.predict(rows).tolist()
    np.testing.assert_allclose(estimator.predict_proba(rows.iloc[[1]])[0], read.model.predict_proba(x), atol=1e-12)


def test_what_the_model_page_lists():
    _, _, read = case("imputed_drop_first")
    table = pipeline.columns_table(read).set_index("column")
    assert table.loc["island", "encoded features"] == 2 and "Biscoe (dropped by the encoder" in table.loc["island", "levels / range"]
    assert table.loc["year", "kind"] == "unused" and "SimpleImputer(strategy='median')" in table.loc["body_mass_g", "missing values"]
    assert pipeline.columns_by_kind(read) == {"numeric": NUMBERS, "categorical": ["island", "sex"], "unused": ["year"]}
    _, _, constant = case("constant_column_and_binary_classes")
    assert constant.constant == (("colony", "Palmer"),) and pipeline.columns_by_kind(constant)["constant"] == ["colony"]
    _, _, unseen = case("unseen_level_ignored")
    assert "Torgersen (not seen by the encoder)" in pipeline.columns_table(unseen).set_index("column").loc[
        "island", "levels / range"]


def test_loading_is_safe_and_refusals_say_why():
    with pytest.raises(pipeline.PipelineError, match="never opened"):
        pipeline.load(pickle.dumps({"a": 1}), "model.pkl")
    with pytest.raises(pipeline.PipelineError, match="PolynomialFeatures"):
        pipeline.load((DATA.parents[1] / "tests" / "corpus" / "skops_polynomial.skops").read_bytes(), "poly.skops")
    estimator, table, _ = case("scaled_one_hot")
    raw = sio.dumps(estimator)
    first = pipeline.load(raw, "dir/p.skops")
    assert first.filename == "p.skops" and first.sha256 == __import__("hashlib").sha256(raw).hexdigest()
    assert pipeline.missing_columns(first, None) is None and pipeline.missing_columns(first, table) == []
    with pytest.raises(pipeline.PipelineError, match="lacks the pipeline's input column"):
        pipeline.read_table(first, datasets.check_table(table.frame.drop(columns="sex"), target="species"))
    with pytest.raises(pipeline.PipelineError, match="reads the class column 'island'"):
        pipeline.read_table(first, datasets.check_table(table.frame, target="island"))
    renamed = table.frame.assign(species="Emperor")
    with pytest.raises(pipeline.PipelineError, match="reads none of the table's 344 rows"):
        pipeline.read_table(first, datasets.check_table(renamed, target="species"))
    array_fitted = make_pipeline(StandardScaler(), LogisticRegression()).fit(table.frame.dropna()[NUMBERS].to_numpy(),
                                                                             table.frame.dropna().species)
    assert pipeline.missing_columns(loaded(array_fitted), table) is None
