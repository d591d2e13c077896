"""Real scikit-learn pipelines in, pandas rows out: folding, the feature schema, counterfactual().

The reference throughout is the pipeline itself: folded probabilities against ``predict_proba``, every
answer against ``predict``.
"""

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, SGDClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

import datasets
import solver
from solver import SoftmaxModel, UnsupportedEstimatorError, counterfactual

DATA = datasets._builtin.DATA_DIR
PENGUIN_NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
EMPLOYMENT = ["unemployed", "... < 1 year", "1 <= ... < 4 years", "4 <= ... < 7 years", ".. >= 7 years"]


@functools.cache
def penguins():
    frame = pd.read_csv(DATA / "penguins.csv")
    return frame.drop(columns="species"), frame["species"]


@functools.cache
def penguins_complete():
    X, y = penguins()
    keep = X.notna().all(axis=1)
    return X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)


@functools.cache
def german():
    frame = pd.read_csv(DATA / "german_credit.csv")
    return frame.drop(columns="credit_risk"), frame["credit_risk"]


def german_columns():
    X, _ = german()
    numbers = [c for c in X.columns if X[c].dtype.kind in "if"]
    return numbers, [c for c in X.columns if c not in numbers]


@functools.cache
def german_with_gaps():
    """German credit with 5% of some numeric and text entries blanked (seeded): a table with missing values."""
    X, y = german()
    X = X.copy()
    rng = np.random.default_rng(0)
    for column in ["duration_months", "credit_amount", "age_years", "purpose", "savings"]:
        X.loc[rng.random(len(X)) < 0.05, column] = np.nan
    return X, y


@functools.cache
def breast_cancer_frame():
    bunch = load_breast_cancer(as_frame=True)
    return bunch.data, bunch.target


def _penguin_impute_onehot_lr():
    X, y = penguins()
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), PENGUIN_NUMBERS),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         ["island", "sex"]),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=2000))]), X, y


def _penguin_drop_first_lda():
    X, y = penguins_complete()
    pre = ColumnTransformer([("num", StandardScaler(), PENGUIN_NUMBERS), ("cat", OneHotEncoder(drop="first"),
                                                                          ["island", "sex"])])
    return Pipeline([("pre", pre), ("clf", LinearDiscriminantAnalysis())]), X, y


def _penguin_minmax_if_binary_lrcv():
    X, y = penguins_complete()
    pre = ColumnTransformer([("num", MinMaxScaler(), PENGUIN_NUMBERS),
                             ("cat", OneHotEncoder(drop="if_binary", sparse_output=False), ["island", "sex"])],
                            remainder="passthrough")
    return Pipeline([("pre", pre), ("clf", LogisticRegressionCV(Cs=2, cv=3, max_iter=3000))]), X, y


def _penguin_infrequent_sgd():
    X, y = penguins_complete()
    y = y.where(y == "Gentoo", "other")
    pre = ColumnTransformer([("num", MaxAbsScaler(), PENGUIN_NUMBERS),
                             ("cat", OneHotEncoder(min_frequency=60, handle_unknown="infrequent_if_exist"),
                              ["island"])])
    return Pipeline([("pre", pre), ("clf", SGDClassifier(loss="log_loss", random_state=0, alpha=1e-3))]), X, y


def _penguin_scaled_after_columns_lr():
    X, y = penguins_complete()
    pre = ColumnTransformer([("num", "passthrough", slice("bill_length_mm", "body_mass_g")),
                             ("cat", OneHotEncoder(sparse_output=False), ["island", "sex"])])
    return Pipeline([("pre", pre), ("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=2000))]), X, y


def _penguin_chained_pandas_output_lr():
    """Two ColumnTransformers, the second selecting the first's pandas output by name; one column
    feeds two scalers (their weights add up)."""
    X, y = penguins_complete()
    first = ColumnTransformer([("num", SimpleImputer(), PENGUIN_NUMBERS),
                               ("cat", OneHotEncoder(sparse_output=False), ["island", "sex"])]).set_output(
        transform="pandas")
    second = ColumnTransformer([("s", StandardScaler(), ["num__bill_length_mm", "num__body_mass_g"]),
                                ("m", MinMaxScaler(), ["num__bill_length_mm", "num__flipper_length_mm"])],
                               remainder="passthrough")
    return Pipeline([("first", first), ("second", second), ("clf", LogisticRegression(max_iter=3000))]), X, y


def _german_onehot_lr():
    X, y = german()
    numbers, texts = german_columns()
    pre = ColumnTransformer([("num", StandardScaler(), numbers), ("cat", OneHotEncoder(), texts)])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=3000))]), X, y


def _german_ordinal_sgd():
    X, y = german()
    numbers, texts = german_columns()
    pre = ColumnTransformer([
        ("num", MaxAbsScaler(), numbers),
        ("ord", make_pipeline(OrdinalEncoder(categories=[EMPLOYMENT]), StandardScaler()), ["employment_since"]),
        ("cat", OneHotEncoder(drop="first"), [c for c in texts if c != "employment_since"]),
    ])
    return Pipeline([("pre", pre), ("clf", SGDClassifier(loss="log_loss", random_state=0, alpha=1e-3))]), X, y


def _german_robust_lda():
    X, y = german()
    numbers, texts = german_columns()
    pre = ColumnTransformer([("num", RobustScaler(), numbers),
                             ("cat", OneHotEncoder(drop="if_binary", handle_unknown="ignore"), texts)])
    return Pipeline([("pre", pre), ("clf", LinearDiscriminantAnalysis())]), X, y


def _cancer_array_lr():
    X, y = load_breast_cancer(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)), X, y


def _cancer_indices_lr():
    X, y = load_breast_cancer(return_X_y=True)
    pre = ColumnTransformer([("a", StandardScaler(with_mean=False), slice(0, 10)),
                             ("b", RobustScaler(with_centering=False), [10, 11, 12]), ("c", "drop", [13])],
                            remainder=StandardScaler(), transformer_weights={"a": 2.0})
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=3000))]), X, y


def _cancer_frame_lda():
    X, y = breast_cancer_frame()
    return LinearDiscriminantAnalysis(), X, y


def _cancer_mask_lrcv():
    X, y = breast_cancer_frame()
    means = np.array([c.startswith("mean") for c in X.columns])
    pre = ColumnTransformer([("mm", MinMaxScaler(), means),
                             ("std", StandardScaler(), [c for c in X.columns if c.endswith("error")])])
    return Pipeline([("pre", pre), ("clf", LogisticRegressionCV(Cs=2, cv=3, max_iter=3000))]), X, y


def _gaps_impute_constant_lr():
    X, y = german_with_gaps()
    numbers, texts = german_columns()
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), texts),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=3000))]), X, y


def _gaps_scale_then_impute_lr():
    """Imputation after scaling (its fill is in scaled units) and NaN kept as a category of its own."""
    X, y = german_with_gaps()
    numbers, texts = german_columns()
    pre = ColumnTransformer([("num", make_pipeline(StandardScaler(), SimpleImputer(strategy="median")), numbers),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), texts)])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=3000))]), X, y


def _wine_lrcv():
    bunch = load_wine(as_frame=True)
    return make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=2, cv=3, max_iter=3000)), bunch.data, bunch.target


PIPELINES = {
    "penguins-impute-onehot-lr": _penguin_impute_onehot_lr,
    "penguins-drop-first-lda": _penguin_drop_first_lda,
    "penguins-minmax-if-binary-passthrough-lrcv": _penguin_minmax_if_binary_lrcv,
    "penguins-infrequent-maxabs-sgd": _penguin_infrequent_sgd,
    "penguins-scaled-after-columns-lr": _penguin_scaled_after_columns_lr,
    "penguins-chained-pandas-output-lr": _penguin_chained_pandas_output_lr,
    "german-onehot-lr": _german_onehot_lr,
    "german-ordinal-drop-first-sgd": _german_ordinal_sgd,
    "german-robust-if-binary-lda": _german_robust_lda,
    "breast-cancer-array-lr": _cancer_array_lr,
    "breast-cancer-indices-weights-lr": _cancer_indices_lr,
    "breast-cancer-frame-lda": _cancer_frame_lda,
    "breast-cancer-mask-minmax-lrcv": _cancer_mask_lrcv,
    "gaps-impute-constant-lr": _gaps_impute_constant_lr,
    "gaps-scale-then-impute-lr": _gaps_scale_then_impute_lr,
    "wine-lrcv": _wine_lrcv,
}


@functools.cache
def fitted(name):
    pipeline, X, y = PIPELINES[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of the small CV grids
        pipeline.fit(X, y)
    return pipeline, X, y


def as_frame(X):
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])


def encoded(model, X):
    """The schema's features of every row of the table."""
    frame = as_frame(X)[list(model.schema.column_names)]
    return np.array([model.schema.encode(list(row)).x for row in frame.itertuples(index=False)])


def for_pipeline(model, row):
    return row if model.schema.named_columns else row.to_numpy()


def same(a, b) -> bool:
    return (pd.isna(a) and pd.isna(b)) if (pd.isna(a) or pd.isna(b)) else a == b


@pytest.mark.parametrize("name", PIPELINES)
def test_folded_probabilities_equal_predict_proba(name):
    pipeline, X, _ = fitted(name)
    model = SoftmaxModel.from_estimator(pipeline)
    reference = pipeline.predict_proba(X)
    folded = model.predict_proba(encoded(model, X))
    np.testing.assert_allclose(folded, reference, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(np.asarray(model.classes)[model.predict(encoded(model, X))], pipeline.predict(X))
    assert list(model.classes) == list(pipeline.classes_)
    assert model.feature_names == model.schema.feature_names and model.n_features == model.schema.n_features


def rows_to_ask(X):
    """The first row, and a row with missing values when the table has any."""
    frame = as_frame(X)
    rows = [0]
    gaps = np.flatnonzero(frame.isna().any(axis=1).to_numpy())
    if gaps.size:
        rows.append(int(gaps[0]))
    return rows


def check_answer(pipeline, model, cf, source, target, locked=()):
    """What every answer must satisfy, checked against the pipeline itself."""
    assert list(cf.row.columns) == list(source.columns)
    assert list(cf.row.dtypes) == list(source.dtypes), (cf.row.dtypes, source.dtypes)
    predicted = pipeline.predict(for_pipeline(model, cf.row))[0]
    assert predicted == cf.predicted
    if cf.success:
        assert predicted == target, cf.message
    np.testing.assert_allclose(cf.proba.to_numpy(), pipeline.predict_proba(for_pipeline(model, cf.row))[0], atol=0)
    assert list(cf.proba.index) == list(pipeline.classes_)
    for column in model.schema.columns:
        after, before = cf.row[column.name].iloc[0], source[column.name].iloc[0]
        if column.name in locked or column.kind == "unused":
            assert same(after, before), (column.name, before, after)
        if column.kind in ("categorical", "ordinal") and not same(after, before):
            assert any(same(after, level) for level in column.levels), (column.name, after)
    assert set(cf.changed) == {c for c in source.columns if not same(cf.row[c].iloc[0], source[c].iloc[0])}


@pytest.mark.parametrize("name", PIPELINES)
def test_counterfactual_rows_are_predicted_as_the_target_by_the_pipeline(name):
    pipeline, X, _ = fitted(name)
    model = SoftmaxModel.from_estimator(pipeline)
    frame = as_frame(X)
    for i in rows_to_ask(X):
        source = frame.iloc[[i]]
        current = pipeline.predict(for_pipeline(model, source))[0]
        for target in [c for c in pipeline.classes_ if c != current]:
            cf = counterfactual(pipeline, source, target)
            assert cf.success, cf.message
            check_answer(pipeline, model, cf, source, target)
            assert cf.changed and cf.distance > 0
    source = frame.iloc[[rows_to_ask(X)[-1]]]
    target = [c for c in pipeline.classes_ if c != pipeline.predict(for_pipeline(model, source))[0]][0]
    high = counterfactual(pipeline, source, target, question="probability", alpha=0.8)
    assert high.success, high.message
    check_answer(pipeline, model, high, source, target)
    assert high.proba[target] >= 0.8 - 1e-9
    flip = counterfactual(pipeline, source, target)
    assert flip.distance <= high.distance + 1e-9  # a higher probability costs at least as much as the flip
    penalised = counterfactual(pipeline, source, target, question="lam", lam=1e-3)
    check_answer(pipeline, model, penalised, source, target)


@pytest.mark.parametrize("name", PIPELINES)
def test_locked_columns_stay_as_they_were(name):
    pipeline, X, _ = fitted(name)
    model = SoftmaxModel.from_estimator(pipeline)
    schema = model.schema
    numeric = [c.name for c in schema.of_kind("numeric")]
    categorical = [c.name for c in schema.of_kind("categorical")]
    locked = numeric[:2] + categorical[:1]
    frame = as_frame(X)
    source = frame.iloc[[rows_to_ask(X)[-1]]]
    target = [c for c in pipeline.classes_ if c != pipeline.predict(for_pipeline(model, source))[0]][-1]
    cf = counterfactual(pipeline, source, target, immutable=locked)
    check_answer(pipeline, model, cf, source, target, locked=locked)
    assert not set(cf.changed) & set(locked)


@pytest.mark.parametrize("name", PIPELINES)
def test_skops_round_trip_keeps_the_fold_and_the_schema(name):
    import skops.io as sio

    pipeline, X, _ = fitted(name)
    data = sio.dumps(pipeline)
    model = solver.load_model(data, f"{name}.skops")
    direct = SoftmaxModel.from_estimator(pipeline)
    np.testing.assert_array_equal(model.coef, direct.coef)
    np.testing.assert_array_equal(model.intercept, direct.intercept)
    assert model.schema.column_names == direct.schema.column_names
    assert [c.kind for c in model.schema.columns] == [c.kind for c in direct.schema.columns]
    np.testing.assert_allclose(model.predict_proba(encoded(model, X)), pipeline.predict_proba(X), rtol=0, atol=1e-10)
    loaded = solver.load_estimator(data, f"{name}.skops")
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    source = as_frame(X).iloc[[0]]
    target = [c for c in pipeline.classes_ if c != pipeline.predict(for_pipeline(model, source))[0]][0]
    cf = counterfactual(loaded, source, target)
    assert cf.success and pipeline.predict(for_pipeline(model, cf.row))[0] == target


# -- the schema ------------------------------------------------------------------------------------------
def test_schema_of_a_column_transformer_pipeline():
    pipeline, X, _ = fitted("german-ordinal-drop-first-sgd")
    schema = SoftmaxModel.from_estimator(pipeline).schema
    assert schema.column_names == tuple(X.columns)
    employment = schema.column("employment_since")
    assert employment.kind == "ordinal" and employment.integer and employment.levels == tuple(EMPLOYMENT)
    assert (employment.lower, employment.upper) == (0, len(EMPLOYMENT) - 1)
    purpose = schema.column("purpose")
    levels = sorted(X["purpose"].unique())
    assert purpose.kind == "categorical" and purpose.levels == tuple(levels)
    assert purpose.baseline_levels == (levels[0],) and len(purpose.features) == len(levels) - 1
    assert [schema.feature_names[f] for f in purpose.features] == [f"purpose={v}" for v in levels[1:]]
    assert schema.column("duration_months").kind == "numeric"
    assert schema.column("duration_months").scale == pytest.approx(X["duration_months"].abs().max())
    assert sorted(f for group in schema.groups for f in group) == sorted(
        f for c in schema.of_kind("categorical") for f in c.features)
    summary = schema.summary()
    assert summary["n_features"] == schema.n_features and "employment_since" in summary["ordinal"]


def test_minmax_ranges_are_pulled_back_to_the_column_units():
    X, y = load_breast_cancer(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), MinMaxScaler(), LogisticRegression(max_iter=3000)).fit(X, y)
    schema = SoftmaxModel.from_estimator(pipeline).schema
    lower, upper = schema.bounds()
    np.testing.assert_allclose(lower, X.min(axis=0), rtol=1e-12)
    np.testing.assert_allclose(upper, X.max(axis=0), rtol=1e-12)
    np.testing.assert_allclose([c.scale for c in schema.columns], X.std(axis=0), rtol=1e-12)  # the first scaler's


def test_standard_scaler_with_mean_false_is_not_centred():
    """Regression: the fold subtracted mean_ even when with_mean=False (mean_ is still fitted)."""
    X, y = load_breast_cancer(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(max_iter=3000)).fit(X, y)
    model = SoftmaxModel.from_estimator(pipeline)
    np.testing.assert_allclose(model.predict_proba(X), pipeline.predict_proba(X), rtol=0, atol=1e-10)


def test_unseen_and_pooled_categories_encode_as_the_encoder_does():
    pipeline, X, _ = fitted("penguins-infrequent-maxabs-sgd")
    model = SoftmaxModel.from_estimator(pipeline)
    island = model.schema.column("island")
    assert island.level_features.count(island.unknown) == 1  # Torgersen is pooled as infrequent
    odd = X.iloc[[0, 1, 2]].copy()
    odd["island"] = ["Torgersen", "Atlantis", "Dream"]  # pooled, unseen (goes to the pooled column), frequent
    np.testing.assert_allclose(model.predict_proba(encoded(model, odd)), pipeline.predict_proba(odd), atol=1e-12)
    ignore, Xi, _ = fitted("german-onehot-lr")
    row = Xi.iloc[[3]].copy()
    with pytest.raises(ValueError, match="has not seen"):
        SoftmaxModel.from_estimator(ignore).schema.encode(["nowhere" if c == "purpose" else v
                                                           for c, v in zip(row.columns, row.iloc[0])])


def test_handle_unknown_warn_sends_unseen_values_to_the_pooled_column():
    X, y = penguins_complete()
    try:
        encoder = OneHotEncoder(handle_unknown="warn", min_frequency=60)
        pipeline = make_pipeline(ColumnTransformer([("c", encoder, ["island"]), ("n", StandardScaler(),
                                                                                  PENGUIN_NUMBERS)]),
                                 LogisticRegression(max_iter=2000)).fit(X, y)
    except ValueError:
        pytest.skip("this scikit-learn has no handle_unknown='warn'")
    model = SoftmaxModel.from_estimator(pipeline)
    odd = X.iloc[[0, 1]].copy()
    odd["island"] = ["Atlantis", "Torgersen"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(model.predict_proba(encoded(model, odd)), pipeline.predict_proba(odd), atol=1e-12)
    island = list(model.schema.column("island").features)
    np.testing.assert_array_equal(*encoded(model, odd)[:, island])  # unseen and infrequent share the pooled column


def test_an_unseen_value_stays_when_its_column_is_locked():
    pipeline, X, _ = fitted("german-robust-if-binary-lda")  # handle_unknown="ignore"
    model = SoftmaxModel.from_estimator(pipeline)
    source = X.iloc[[1]].copy()
    source["purpose"] = "spaceship"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about the unknown category
        np.testing.assert_allclose(model.predict_proba(encoded(model, source)), pipeline.predict_proba(source),
                                   atol=1e-12)
        target = [c for c in pipeline.classes_ if c != pipeline.predict(source)[0]][0]
        cf = counterfactual(pipeline, source, target, immutable=["purpose"])
        check_answer(pipeline, model, cf, source, target, locked=["purpose"])
    assert cf.success and cf.row["purpose"].iloc[0] == "spaceship"
    assert any("spaceship" in note for note in cf.notes)


def test_the_dropped_level_is_a_real_choice():
    """With drop="first" the first level has no column; an answer may still move to it (all zeros)."""
    rng = np.random.default_rng(1)
    colour = rng.choice(["amber", "blue", "cyan"], 300)
    noise = rng.standard_normal(300)
    X = pd.DataFrame({"colour": colour, "noise": noise})
    y = np.where((colour == "amber") ^ (rng.random(300) < 0.05), "yes", "no")
    pipeline = make_pipeline(ColumnTransformer([("c", OneHotEncoder(drop="first"), ["colour"]),
                                                ("n", StandardScaler(), ["noise"])]), LogisticRegression()).fit(X, y)
    model = SoftmaxModel.from_estimator(pipeline)
    assert model.schema.column("colour").baseline_levels == ("amber",)
    source = X[X.colour == "blue"].iloc[[0]]
    cf = counterfactual(pipeline, source, "yes", immutable=["noise"])
    assert cf.success, cf.message
    assert cf.row["colour"].iloc[0] == "amber" and pipeline.predict(cf.row)[0] == "yes"
    assert cf.changed == ("colour",) and cf.distance == pytest.approx(np.sqrt(2))  # one level off, one on


def test_missing_values_are_imputed_and_said_so():
    pipeline, X, _ = fitted("gaps-impute-constant-lr")
    model = SoftmaxModel.from_estimator(pipeline)
    i = int(np.flatnonzero(X["credit_amount"].isna().to_numpy())[0])
    source = X.iloc[[i]]
    imputer = pipeline.named_steps["pre"].named_transformers_["num"][0]
    fill = imputer.statistics_[german_columns()[0].index("credit_amount")]
    assert model.schema.column("credit_amount").fill == pytest.approx(fill)
    target = [c for c in pipeline.classes_ if c != pipeline.predict(source)[0]][0]
    cf = counterfactual(pipeline, source, target, immutable=["credit_amount"])
    assert cf.success
    assert pd.isna(cf.row["credit_amount"].iloc[0])  # locked: still missing, still imputed the same way
    line = cf.changes.set_index("column").loc["credit_amount"]
    assert "imputed" in line["note"] and not line["changed"]
    assert any("credit_amount is missing" in note for note in cf.notes)
    free = counterfactual(pipeline, source, target)
    changes = free.changes.set_index("column")
    if free.changes.set_index("column").loc["credit_amount", "changed"]:  # the change counts from the imputed value
        assert changes.loc["credit_amount", "change"] == pytest.approx(free.row["credit_amount"].iloc[0] - fill)


def test_whole_numbers_and_ranges_from_the_data():
    pipeline, X, _ = fitted("german-onehot-lr")
    model = SoftmaxModel.from_estimator(pipeline)
    numbers, _ = german_columns()
    for i in [1, 4]:
        source = X.iloc[[i]]
        target = [c for c in pipeline.classes_ if c != pipeline.predict(source)[0]][0]
        cf = counterfactual(pipeline, source, target, immutable=["age_years"], data=X)
        check_answer(pipeline, model, cf, source, target, locked=["age_years"])
        assert cf.success, cf.message
        for column in numbers:
            value = cf.row[column].iloc[0]
            assert value == round(value) and cf.row[column].dtype == X[column].dtype
            assert min(X[column].min(), source[column].iloc[0]) <= value <= max(X[column].max(),
                                                                                source[column].iloc[0])


def test_bounds_by_column_name_hold():
    pipeline, X, _ = fitted("penguins-drop-first-lda")
    model = SoftmaxModel.from_estimator(pipeline)
    source = X.iloc[[0]]
    bounds = {"bill_length_mm": (None, source["bill_length_mm"].iloc[0]), "body_mass_g": (3000, 3900)}
    cf = counterfactual(pipeline, source, "Chinstrap", bounds=bounds, immutable=["island", "sex"])
    check_answer(pipeline, model, cf, source, "Chinstrap", locked=["island", "sex"])
    assert cf.success, cf.message
    assert cf.row["bill_length_mm"].iloc[0] <= source["bill_length_mm"].iloc[0]
    assert 3000 <= cf.row["body_mass_g"].iloc[0] <= 3900
    free = counterfactual(pipeline, source, "Chinstrap", immutable=["island", "sex"])
    assert free.distance <= cf.distance + 1e-12


def test_ordinal_bounds_take_levels():
    pipeline, X, _ = fitted("german-ordinal-drop-first-sgd")
    source = X[X.employment_since == "1 <= ... < 4 years"].iloc[[0]]
    target = [c for c in pipeline.classes_ if c != pipeline.predict(source)[0]][0]
    cf = counterfactual(pipeline, source, target, bounds={"employment_since": ("1 <= ... < 4 years", None)})
    assert EMPLOYMENT.index(cf.row["employment_since"].iloc[0]) >= 2


def test_arguments_are_checked_by_name():
    pipeline, X, _ = fitted("penguins-drop-first-lda")
    row = X.iloc[[0]]
    with pytest.raises(ValueError, match="'Emperor' is not a class.*'Adelie'"):
        counterfactual(pipeline, row, "Emperor")
    with pytest.raises(ValueError, match="no input column 'beak'"):
        counterfactual(pipeline, row, "Gentoo", immutable=["beak"])
    with pytest.raises(ValueError, match="bounds: column 'island' is categorical"):
        counterfactual(pipeline, row, "Gentoo", bounds={"island": (0, 1)})
    with pytest.raises(ValueError, match="needs alpha"):
        counterfactual(pipeline, row, "Gentoo", question="probability")
    with pytest.raises(ValueError, match="needs lam"):
        counterfactual(pipeline, row, "Gentoo", question="lam")
    with pytest.raises(ValueError, match="question must be one of"):
        counterfactual(pipeline, row, "Gentoo", question="why")
    with pytest.raises(ValueError, match="single row"):
        counterfactual(pipeline, X.iloc[:2], "Gentoo")
    with pytest.raises(ValueError, match="lacks the pipeline's input column"):
        counterfactual(pipeline, row.drop(columns="sex"), "Gentoo")


def test_a_series_or_a_wider_row_is_accepted():
    pipeline, X, _ = fitted("penguins-impute-onehot-lr")
    wide = pd.read_csv(DATA / "penguins.csv").iloc[[5]]  # with the species column too
    cf = counterfactual(pipeline, wide, "Gentoo")
    assert cf.success and list(cf.row.columns) == list(X.columns)
    from_series = counterfactual(pipeline, X.iloc[5], "Gentoo")
    assert from_series.success and from_series.distance == pytest.approx(cf.distance, rel=1e-9)


def test_max_changes_goes_to_recourse():
    pipeline, X, _ = fitted("german-onehot-lr")
    source = X.iloc[[1]]
    if not hasattr(solver, "recourse"):
        with pytest.raises(NotImplementedError, match="solver.recourse"):
            counterfactual(pipeline, source, "good", max_changes=2)
        pytest.skip("solver.recourse (issue 9) is not merged yet")
    model = SoftmaxModel.from_estimator(pipeline)
    cf = counterfactual(pipeline, source, "good", max_changes=2, immutable=["age_years"], data=X)
    check_answer(pipeline, model, cf, source, "good", locked=["age_years"])
    assert cf.success, cf.message
    assert 1 <= len(cf.changed) <= 2
    for column in german_columns()[0]:
        assert cf.row[column].iloc[0] == round(cf.row[column].iloc[0])


# -- refusals ----------------------------------------------------------------------------------------------
class HomemadeScaler(StandardScaler):
    def transform(self, X, copy=None):
        return super().transform(X, copy=copy) ** 3


def _refusals():
    from sklearn.decomposition import PCA
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import FeatureUnion
    from sklearn.preprocessing import FunctionTransformer, KBinsDiscretizer, PolynomialFeatures
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    numbers = ColumnTransformer([("num", StandardScaler(), PENGUIN_NUMBERS)])

    def columns(step):
        return ColumnTransformer([("num", step, PENGUIN_NUMBERS), ("cat", OneHotEncoder(), ["island"])])

    def final(step):
        return Pipeline([("pre", numbers), ("clf", step)])

    def pre(step):
        return Pipeline([("pre", columns(step)), ("clf", LogisticRegression(max_iter=50))])  # fit quality is irrelevant

    return [
        (pre(PolynomialFeatures()), "step 'pre' > 'num' (PolynomialFeatures)"),
        (pre(FunctionTransformer(np.log1p)), "step 'pre' > 'num' (FunctionTransformer)"),
        (pre(make_pipeline(StandardScaler(), PCA(2))), "step 'pre' > 'num' > 'pca' (PCA)"),
        (pre(KBinsDiscretizer(n_bins=3)), "step 'pre' > 'num' (KBinsDiscretizer)"),
        (pre(MinMaxScaler(clip=True)), "step 'pre' > 'num' (MinMaxScaler)"),
        (pre(SimpleImputer(add_indicator=True)), "step 'pre' > 'num' (SimpleImputer)"),
        (pre(SimpleImputer(missing_values=0.0)), "step 'pre' > 'num' (SimpleImputer)"),
        (pre(make_pipeline(StandardScaler(), OneHotEncoder())), "step 'pre' > 'num' > 'onehotencoder' (OneHotEncoder)"),
        (pre(OrdinalEncoder(min_frequency=5)), "step 'pre' > 'num' (OrdinalEncoder)"),
        (pre(HomemadeScaler()), "step 'pre' > 'num' (HomemadeScaler)"),
        (pre(FeatureUnion([("a", StandardScaler())])), "step 'pre' > 'num' (FeatureUnion)"),
        (final(DecisionTreeClassifier()), "step 'clf' (DecisionTreeClassifier)"),
        (final(SVC(probability=True)), "step 'clf' (SVC)"),
        (final(OneVsRestClassifier(LogisticRegression())), "step 'clf' (OneVsRestClassifier)"),
        (final(SGDClassifier(loss="hinge")), "step 'clf' (SGDClassifier)"),
        (final(SGDClassifier(loss="log_loss")), "step 'clf' (SGDClassifier)"),  # three classes: one-vs-rest
        (DecisionTreeClassifier(), "the estimator (DecisionTreeClassifier)"),
        (Pipeline([("pre", ColumnTransformer([("a", StandardScaler(), ["year"]), ("b", OneHotEncoder(), ["year"])])),
                   ("clf", LogisticRegression())]), "step 'pre' > 'b' (OneHotEncoder)"),  # numeric and one-hot
    ]


@pytest.mark.parametrize("pipeline,step", _refusals(), ids=[step for _, step in _refusals()])
def test_refusals_name_the_step_and_what_is_supported(pipeline, step):
    X, y = penguins_complete()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(X if type(pipeline).__name__ != "DecisionTreeClassifier" else X[PENGUIN_NUMBERS], y)
    with pytest.raises(UnsupportedEstimatorError) as info:
        SoftmaxModel.from_estimator(pipeline)
    message = str(info.value)
    assert message.startswith(step), message
    assert info.value.step == step.rsplit(" (", 1)[0]
    assert "supported:" in message and "OneHotEncoder" in message and "LinearDiscriminantAnalysis" in message


def test_an_unfitted_pipeline_is_refused():
    with pytest.raises(UnsupportedEstimatorError, match="step 'clf' .*not fitted"):
        SoftmaxModel.from_estimator(Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]))


def test_encode_rows_and_fold_error_serve_a_whole_table():
    pipeline, X, _ = fitted("gaps-impute-constant-lr")
    model = SoftmaxModel.from_estimator(pipeline)
    np.testing.assert_array_equal(solver.encode_rows(model, X), encoded(model, X))
    assert solver.fold_error(pipeline, X) <= 1e-10
    assert solver.fold_error(*fitted("breast-cancer-array-lr")[:2]) <= 1e-10  # fitted on an array
    bad = X.iloc[:3].copy()
    bad["duration_months"] = bad["duration_months"].astype(object)
    bad.iloc[2, bad.columns.get_loc("duration_months")] = "soon"
    with pytest.raises(ValueError, match="row 2: column 'duration_months' must be a number"):
        solver.encode_rows(model, bad)


def test_a_folded_model_can_be_reused():
    pipeline, X, _ = fitted("penguins-drop-first-lda")
    model = SoftmaxModel.from_estimator(pipeline)
    once = counterfactual(pipeline, X.iloc[[7]], "Gentoo", model=model)
    again = counterfactual(pipeline, X.iloc[[7]], "Gentoo")
    assert once.success and once.row.equals(again.row) and once.model is model
    with pytest.raises(ValueError, match="feature schema"):
        counterfactual(pipeline, X.iloc[[7]], "Gentoo", model=SoftmaxModel(model.coef, model.intercept))
