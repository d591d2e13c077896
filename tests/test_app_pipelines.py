"""A user's scikit-learn pipeline in the dashboard, through Streamlit's AppTest: uploaded as .skops on the
Model page, reading the table loaded on the Data page, answering on Explore in the table's own columns.

The reference throughout is the pipeline itself (``predict``/``predict_proba`` on rows built here from
the CSV file, independently of the app's own reading of it).
"""

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, PolynomialFeatures, StandardScaler
from test_app import button, fresh_app, metric

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PENGUINS_CSV = ROOT / "datasets" / "data" / "penguins.csv"
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
TIMEOUT = 180


@functools.cache
def penguins() -> pd.DataFrame:
    return pd.read_csv(PENGUINS_CSV)


@functools.cache
def scaled_one_hot() -> Pipeline:
    """The pipeline of issue 10: ColumnTransformer(StandardScaler, OneHotEncoder) + LogisticRegression,
    fitted on the complete rows (it imputes nothing)."""
    complete = penguins().dropna()
    pre = ColumnTransformer([("num", StandardScaler(), NUMBERS), ("cat", OneHotEncoder(), ["island", "sex"])])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=2000))]).fit(
        complete.drop(columns="species"), complete.species)


@functools.cache
def imputing_drop_first() -> Pipeline:
    """Imputers before the scaler and the encoder, drop='first': it reads every row of the table."""
    table = penguins()
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMBERS),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(drop="first")), ["island", "sex"]),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=2000))]).fit(
        table.drop(columns="species"), table.species)


def upload_model(at, raw: bytes, name: str) -> None:
    at.switch_page("pages/model.py").run()
    at.file_uploader[0].set_value((name, raw, "application/octet-stream")).run()
    button(at, "Use this model").click().run()
    assert not at.exception, at.exception


def snapshot(at) -> tuple:
    """What a failed upload must leave as it was."""
    state = at.session_state
    pipeline = state["pipeline"]
    return (state["dataset_name"], state["dataset"].content_hash, state["model"].fingerprint, state["model_label"],
            None if pipeline is None else pipeline.pipeline.sha256)


def row_of(x, feature_names, source: pd.Series) -> pd.DataFrame:
    """The answer ``x`` written into the source row, decoded here from the feature names alone:
    numeric columns by name, a categorical column by its 'column=level' feature that is 1."""
    row = source.to_frame().T.infer_objects()
    index = {name: j for j, name in enumerate(feature_names)}
    for column in NUMBERS:
        row[column] = float(x[index[column]])
    for column in ("island", "sex"):
        levels = {name.split("=", 1)[1]: j for name, j in index.items() if name.startswith(column + "=")}
        on = [level for level, j in levels.items() if x[j] == 1.0]
        assert len(on) == 1 and all(x[j] == 0.0 for level, j in levels.items() if level != on[0])
        row[column] = on[0]
    return row.drop(columns="species")


def test_a_penguin_pipeline_shows_what_it_understood_and_its_answers_are_the_pipelines_own():
    pipe = scaled_one_hot()
    at = fresh_app({"dataset": "penguins"})
    upload_model(at, sio.dumps(pipe), "penguins.skops")
    assert not at.error, at.error[0].value
    assert at.session_state["model_label"] == "your pipeline (penguins.skops)"

    # what it understood: steps, columns by kind, encoded features, the fold check on the loaded rows
    complete = penguins().dropna()
    assert at.session_state["dataset"].table_rows.tolist() == complete.index.tolist()
    markdown = "\n".join(m.value for m in at.markdown)
    assert "StandardScaler" in markdown and "OneHotEncoder(drop=None, handle_unknown='error')" in markdown
    assert "numeric (4): bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g" in markdown
    assert "categorical (2): island, sex" in markdown and "unused (1): year" in markdown
    assert metric(at, "encoded features") == "9"
    reported = float(metric(at, "fold check: max |Δp|"))
    model = at.session_state["model"]
    independent = np.max(np.abs(model.predict_proba(at.session_state["dataset"].X)
                                - pipe.predict_proba(complete.drop(columns="species"))))
    assert reported <= 1e-12 and independent <= 1e-12
    assert metric(at, "pipeline accuracy") == f"{np.mean(pipe.predict(complete.drop(columns='species')) == complete.species):.1%}"
    assert any("11 of 344 rows left out" in c.value and "sex: 11" in c.value for c in at.caption)

    # Explore: an Adelie asked to become a Gentoo, the smallest flip
    at.switch_page("pages/explore.py").run()
    dataset = at.session_state["dataset"]
    gentoo = [str(c) for c in model.classes].index("Gentoo")
    at.selectbox(key="_widget_target").set_value(gentoo).run()
    button(at, "Smallest change that flips").click().run()
    assert not at.exception, at.exception
    answer = at.session_state["answer"]
    assert answer.result.success
    source = complete.iloc[at.session_state["instance"]]
    row = row_of(answer.result.x, dataset.feature_names, source)
    assert pipe.predict(row)[0] == "Gentoo"  # the pipeline itself, on a row decoded here
    assert row.island.iloc[0] == source.island and row.sex.iloc[0] == source.sex  # categorical columns locked
    # the answer is shown in the table's own columns and levels, and judged by the pipeline
    table = next(d.value for d in at.dataframe if "counterfactual" in d.value.columns)
    assert set(table.feature) == {*NUMBERS, "island", "sex"}
    assert table.set_index("feature").loc["island", "counterfactual"] == source.island
    reading = at.info[0].value
    assert reading.startswith("To be classified as Gentoo") and any(n in reading for n in NUMBERS)
    assert any(c.value.startswith("Checked with your pipeline (penguins.skops): it predicts Gentoo") for c in at.caption)
    p = pipe.predict_proba(row)[0][list(pipe.classes_).index("Gentoo")]
    assert metric(at, "p(Gentoo)") == f"{p:.4f}" or math.isclose(float(metric(at, "p(Gentoo)")), p, abs_tol=1e-4)


def unsupported_pipelines():
    complete = penguins().dropna()
    X, y = complete.drop(columns="species"), complete.species
    poly = Pipeline([("pre", ColumnTransformer([("num", make_pipeline(StandardScaler(), PolynomialFeatures()), NUMBERS),
                                                ("cat", OneHotEncoder(), ["island", "sex"])])),
                     ("clf", LogisticRegression(max_iter=2000))]).fit(X, y)
    clipped = Pipeline([("pre", ColumnTransformer([("num", MinMaxScaler(clip=True), NUMBERS)])),
                        ("clf", LogisticRegression(max_iter=2000))]).fit(X, y)
    return [(sio.dumps(poly), "'pre' > 'num' > 'polynomialfeatures'", "PolynomialFeatures"),
            (sio.dumps(clipped), "step 'pre' > 'num' (MinMaxScaler)", "clip=True")]


@pytest.mark.parametrize("case", [0, 1], ids=["untrusted step", "step that does not fold"])
def test_an_unsupported_pipeline_is_refused_in_words_and_changes_nothing(case):
    raw, step, reason = unsupported_pipelines()[case]
    at = fresh_app({"dataset": "penguins"})
    before = snapshot(at)
    upload_model(at, raw, "mine.skops")
    message = at.error[0].value
    assert step in message and reason in message  # names the step ...
    assert "StandardScaler" in message and "OneHotEncoder" in message and "LogisticRegression" in message  # ... and what is
    assert snapshot(at) == before


def test_a_pipeline_needs_its_table_and_says_where_to_get_it():
    at = fresh_app()  # MNIST: no table
    before = snapshot(at)
    upload_model(at, sio.dumps(scaled_one_hot()), "penguins.skops")
    message = at.error[0].value
    assert "reads the columns island, bill_length_mm" in message and "Data page" in message
    assert snapshot(at) == before


def test_the_data_page_takes_the_raw_table_the_pipeline_reads_and_a_bad_upload_changes_nothing():
    pipe = imputing_drop_first()
    at = fresh_app({"dataset": "german-credit"})
    at.switch_page("pages/data.py").run()  # first the raw penguins table, with its missing values, as an upload
    at.file_uploader[0].set_value(("penguins.csv", PENGUINS_CSV.read_bytes(), "text/csv")).run()
    button(at, "Use this upload").click().run()
    assert "11 of 344 rows have missing" in at.error[0].value  # no pipeline yet: the app's own encoding ...
    at.checkbox[0].check().run()
    button(at, "Use this upload").click().run()
    assert at.session_state["dataset"].n_samples == 333  # ... with the default model, on the complete rows
    upload_model(at, sio.dumps(pipe), "imputing.skops")
    assert not at.error, at.error[0].value
    dataset = at.session_state["dataset"]
    assert dataset.n_samples == 344 and at.session_state["dataset_name"] == "upload:penguins.csv · read by imputing.skops"
    table = penguins()
    np.testing.assert_allclose(at.session_state["model"].predict_proba(dataset.X),
                               pipe.predict_proba(table.drop(columns="species")), rtol=0, atol=1e-12)
    assert "Biscoe (dropped by the encoder: all its columns 0)" in at.dataframe[0].value.to_string()

    # the same table uploaded again on the Data page is read by the pipeline, which stays the model
    at.switch_page("pages/data.py").run()
    assert any("Your pipeline (imputing.skops) is the model" in i.value for i in at.info)
    at.file_uploader[0].set_value(("again.csv", PENGUINS_CSV.read_bytes(), "text/csv")).run()
    button(at, "Use this upload").click().run()
    assert not at.error and at.session_state["dataset_name"] == "upload:again.csv · read by imputing.skops"
    assert at.session_state["pipeline"] is not None and at.session_state["dataset"].n_samples == 344
    preview = at.dataframe[0].value
    assert preview.sex.isna().sum() == table.sex.head(50).isna().sum() > 0  # text stays text, missing stays missing

    # a row with missing values is explained as imputed, and the answer is the pipeline's own
    row = int(np.flatnonzero(table.drop(columns="species").isna().any(axis=1))[0])
    at.switch_page("pages/explore.py").run()
    at.selectbox(key="_widget_instance").set_value(row).run()
    button(at, "Smallest change that flips").click().run()
    answer = at.session_state["answer"]
    assert answer.result.success
    target = str(at.session_state["model"].classes[answer.result.target])
    check = next(c.value for c in at.caption if c.value.startswith("Checked with your pipeline"))
    assert f"it predicts {target}" in check and "imputed by the pipeline: " in check

    # levels may change, the dropped level (Biscoe) included: the answer is still a row the pipeline scores so
    from ui import constraints

    edited = at.session_state["constraints"].table.copy()
    edited.loc[edited.feature.isin(["island", "sex"]), "may change"] = constraints.MAY_CHANGE
    at.session_state["constraints"] = constraints.what_may_change(dataset, edited, True)
    at.run()
    at.selectbox(key="_widget_instance").set_value(0).run()  # a Torgersen Adelie, asked to be a Chinstrap
    at.selectbox(key="_widget_target").set_value(list(pipe.classes_).index("Chinstrap")).run()
    at.number_input(key="_widget_alpha").set_value(0.95).run()
    button(at, "Closest with p(").click().run()
    answer = at.session_state["answer"]
    assert answer.result.success and answer.result.level_changes  # cheaper on another island
    k = answer.result.target
    written = pd.DataFrame([table.drop(columns="species").iloc[0]])  # the source row, decoded here
    names = dataset.feature_names
    for column in NUMBERS:
        written[column] = answer.result.x[names.index(column)]
    for column in ("island", "sex"):
        on = [n.split("=", 1)[1] for n in names if n.startswith(column + "=") and answer.result.x[names.index(n)] == 1]
        written[column] = on[0]
    assert pipe.predict(written)[0] == at.session_state["model"].classes[k]
    assert pipe.predict_proba(written)[0][k] >= 0.95 - 1e-12
    for page in ("pages/trajectories.py", "pages/race.py"):  # every page works on a pipeline's rows
        at.switch_page(page).run()
        assert not at.exception, at.exception

    before = snapshot(at)
    at.switch_page("pages/data.py").run()
    at.file_uploader[0].set_value(("broken.csv", b"\x00\x01garbage" * 100, "text/csv")).run()
    button(at, "Use this upload").click().run()
    assert "binary file" in at.error[0].value and snapshot(at) == before
    strange = table.assign(species=table.species.replace({"Adelie": "Emperor", "Gentoo": "King", "Chinstrap": "Rockhopper"}))
    at.file_uploader[0].set_value(("strange.csv", strange.to_csv(index=False).encode(), "text/csv")).run()
    button(at, "Use this upload").click().run()
    assert "not one of the pipeline's" in at.error[0].value and snapshot(at) == before


def test_one_sessions_pipeline_is_not_visible_to_another():
    first = fresh_app({"dataset": "penguins"})
    upload_model(first, sio.dumps(scaled_one_hot()), "mine.skops")
    assert first.session_state["pipeline"] is not None
    second = fresh_app({"dataset": "penguins"})
    assert second.session_state["pipeline"] is None and second.session_state["trained"] is not None
    second.switch_page("pages/model.py").run()
    assert not any("mine.skops" in m.value for m in [*second.markdown, *second.subheader, *second.caption])
