"""Built-in data, uploads and the hostile-file corpus."""

import io
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datasets
from datasets import DataError, MissingValuesError, parse_upload

CORPUS = Path(__file__).resolve().parent / "corpus"


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@pytest.mark.parametrize("name", datasets.list_builtin())
def test_every_builtin_loads_offline_with_consistent_shapes(name):
    data = datasets.load_builtin(name)
    assert data.X.dtype == np.float64 and data.X.ndim == 2 and np.all(np.isfinite(data.X))
    assert data.y.shape == (data.n_samples,) and data.y.min() == 0 and data.y.max() == data.n_classes - 1
    assert len(data.feature_names) == data.n_features
    assert np.all(np.bincount(data.y) >= 2)
    if data.kind == "image":
        h, w = data.image_shape
        assert h * w == data.n_features and data.X.min() >= 0 and data.X.max() <= 1
    else:
        assert data.encoding is not None
    assert data.content_hash == datasets.load_builtin(name).content_hash


def test_builtin_shapes_match_their_sources():
    assert datasets.load_builtin("mnist-5k").X.shape == (5000, 784)
    assert datasets.load_builtin("fashion-mnist-2k").class_names[9] == "Ankle boot"
    credit = datasets.load_builtin("german-credit")
    assert credit.n_samples == 1000 and credit.class_names == ("bad", "good")
    assert np.bincount(credit.y).tolist() == [300, 700]
    assert len(credit.encoding.numeric) == 7 and len(credit.encoding.categorical) == 13
    raw = pd.read_csv(datasets._builtin.DATA_DIR / "german_credit.csv")
    decoded = credit.encoding.decode(credit.X[5])
    for column in raw.columns.drop("credit_risk"):
        expected = raw.loc[5, column]
        assert decoded[column] == (float(expected) if np.issubdtype(type(expected), np.number) else expected)


def test_one_hot_groups_are_exact_indicators():
    credit = datasets.load_builtin("german-credit")
    for group in credit.encoding.categorical:
        block = credit.X[:, list(group.columns)]
        assert set(np.unique(block)) <= {0.0, 1.0} and np.all(block.sum(axis=1) == 1)


def test_text_like_generator_is_seeded_sparse_nonnegative_and_unit_norm():
    X1, y1 = datasets.make_text_like(50, 3000, 11, seed=3, dense=False)
    X2, y2 = datasets.make_text_like(50, 3000, 11, seed=3, dense=False)
    assert (X1 != X2).nnz == 0 and np.array_equal(y1, y2)
    assert X1.nnz < 0.05 * 50 * 3000 and X1.min() >= 0
    np.testing.assert_allclose(np.sqrt(X1.multiply(X1).sum(axis=1)).A.ravel(), 1.0, rtol=1e-12)
    with pytest.raises(DataError):
        datasets.make_text_like(10, 50000, 10)


def test_unknown_builtin_is_a_clear_error():
    with pytest.raises(DataError, match="unknown built-in dataset 'nope'"):
        datasets.load_builtin("nope")


# -- uploads ----------------------------------------------------------------------------------
def test_german_credit_csv_upload_equals_the_builtin():
    data = parse_upload((datasets._builtin.DATA_DIR / "german_credit.csv").read_bytes(), "credit.csv")
    builtin = datasets.load_builtin("german-credit")
    assert data.feature_names == builtin.feature_names
    np.testing.assert_array_equal(data.X, builtin.X)
    np.testing.assert_array_equal(data.y, builtin.y)


def test_semicolon_latin1_csv_loads_with_categories():
    data = parse_upload(corpus("semicolon_latin1.csv"), "odd.csv")
    assert data.n_samples == 6 and data.class_names == ("ja", "nein")
    assert "größe" in data.feature_names and "farbe=grün" in data.feature_names
    assert data.encoding.decode(data.X[1])["farbe"] == "grün"


def test_tsv_and_explicit_target():
    data = parse_upload(corpus("tabs.tsv"), "t.tsv", target="class")
    assert data.X.shape == (4, 2) and data.class_names == ("a", "b")
    with pytest.raises(DataError, match="no column named 'nope'"):
        parse_upload(corpus("tabs.tsv"), "t.tsv", target="nope")


def test_missing_values_are_reported_then_droppable():
    with pytest.raises(MissingValuesError, match=r"2 of 8 rows have missing or non-finite values \(a: 1, b: 1\)") as info:
        parse_upload(corpus("missing_values.csv"), "m.csv")
    assert info.value.rows.tolist() == [1, 3]
    data = parse_upload(corpus("missing_values.csv"), "m.csv", drop_missing=True)
    assert data.n_samples == 6 and "dropped 2 row(s)" in data.description


def test_image_zip_of_class_folders_loads():
    data = parse_upload(corpus("class_folders.zip"), "shapes.zip")
    assert data.kind == "image" and data.image_shape == (10, 10)
    assert data.class_names == ("circle", "square") and data.n_samples == 7
    assert 0 <= data.X.min() and data.X.max() <= 1
    assert data.X[data.y == 0].mean() > data.X[data.y == 1].mean()


def test_image_npz_with_channels_becomes_grayscale():
    data = parse_upload(corpus("images_nhwc.npz"), "imgs.npz")
    assert data.image_shape == (6, 5) and data.X.shape == (12, 30) and data.X.max() <= 1


def test_flat_npz_with_image_shape():
    buffer = io.BytesIO()
    np.savez(buffer, X=np.random.default_rng(0).random((8, 12)), y=np.array([0, 1] * 4), image_shape=np.array([3, 4]))
    data = parse_upload(buffer.getvalue(), "flat.npz")
    assert data.kind == "image" and data.image_shape == (3, 4)


HOSTILE = [
    ("empty.csv", "is empty"),
    ("garbage.csv", "binary file"),
    ("header_only.csv", "no data rows"),
    ("one_class.csv", "only 'x'"),
    ("all_nan.csv", "missing or non-finite"),
    ("object_array.npz", "object arrays"),
    ("mismatched_lengths.npz", "X has 10 rows but y has 9"),
    ("pickled_model.pkl", "pickle"),
    ("zip_bomb.zip", "would unpack to 320 MB"),
    ("no_images.zip", "no PNG or JPEG images"),
    ("truncated.skops", "unsupported file type"),
]


@pytest.mark.parametrize("name,fragment", HOSTILE)
def test_hostile_uploads_get_a_clear_error_in_bounded_memory(name, fragment):
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=fragment):
            parse_upload(corpus(name), name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 30 * 2**20  # the 320 MB bomb is refused from its directory, never inflated


def test_size_limits_are_enforced_before_parsing():
    with pytest.raises(DataError, match="the limit is 50 MB"):
        parse_upload(b"a,b\n" + b"1,2\n" * (14 * 2**20), "big.csv")
    wide = ",".join(f"c{i}" for i in range(1200)) + "\n" + ",".join("1" for _ in range(1200)) + "\n"
    with pytest.raises(DataError, match="1,200 columns"):
        parse_upload(wide.encode(), "wide.csv")


def test_image_not_in_a_folder_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("loose.png", corpus("class_folders.zip")[:10])
    with pytest.raises(DataError, match="is not in a folder"):
        parse_upload(buffer.getvalue(), "loose.zip")


def test_corrupt_image_in_zip_is_named():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/1.png", b"not a png")
        archive.writestr("b/1.png", b"not a png either")
    with pytest.raises(DataError, match="a/1.png is not a readable image"):
        parse_upload(buffer.getvalue(), "bad.zip")


def test_identifier_columns_are_dropped_and_regression_targets_refused():
    rows = "\n".join(f"id{i},{i % 7},{'a' if i % 2 else 'b'}" for i in range(300))
    data = parse_upload(("id,x,label\n" + rows).encode(), "ids.csv")
    assert data.feature_names == ("x",) and "dropped column 'id'" in data.description
    measurements = "\n".join(f"{i},{i * 1.37}" for i in range(300))
    with pytest.raises(DataError, match="looks like a measurement"):
        parse_upload(("x,y\n" + measurements).encode(), "reg.csv")


# -- the raw table reader (a pipeline encodes the table itself) ---------------------------------
def test_read_table_keeps_text_as_text_and_missing_as_missing():
    raw = (datasets._builtin.DATA_DIR / "penguins.csv").read_bytes()
    table = datasets.read_table(raw, "penguins.csv")
    reference = pd.read_csv(io.BytesIO(raw))  # what a user's own pd.read_csv gives, and trained on
    pd.testing.assert_frame_equal(table.frame, reference)
    assert table.target == "species" and table.feature_columns == [c for c in reference.columns if c != "species"]
    assert table.frame.sex.isna().sum() == 11 and table.frame.island.dtype == reference.island.dtype


def test_read_table_allows_what_the_encoder_refuses():
    table = datasets.read_table(corpus("missing_values.csv"), "m.csv")  # a NaN and an inf: kept as read
    assert np.isnan(table.frame.a[1]) and np.isinf(table.frame.b[3])
    with pytest.raises(MissingValuesError):
        datasets.tabular_from_table(table)
    assert datasets.read_table(corpus("all_nan.csv"), "all_nan.csv").frame.shape[0] > 0


@pytest.mark.parametrize("name,fragment", [
    ("empty.csv", "is empty"),
    ("garbage.csv", "binary file"),
    ("header_only.csv", "no data rows"),
    ("pickled_model.pkl", "pickle"),
    ("object_array.npz", "a table is a .csv, .tsv or .txt file"),
    ("zip_bomb.zip", "a table is a .csv, .tsv or .txt file"),
])
def test_read_table_refuses_what_parse_upload_refuses(name, fragment):
    with pytest.raises(DataError, match=fragment):
        datasets.read_table(corpus(name), name)


def test_read_table_checks_sizes_header_and_target():
    with pytest.raises(DataError, match="the limit is 50 MB"):
        datasets.read_table(b"a,b\n" + b"1,2\n" * (14 * 2**20), "big.csv")
    wide = ",".join(f"c{i}" for i in range(1200)) + "\n" + ",".join("1" for _ in range(1200)) + "\n"
    with pytest.raises(DataError, match="1,200 columns"):
        datasets.read_table(wide.encode(), "wide.csv")
    with pytest.raises(DataError, match="duplicate column names"):
        datasets.read_table(b"a,a ,label\n1,2,x\n", "dup.csv")
    with pytest.raises(DataError, match="no column named 'nope'"):
        datasets.read_table(corpus("tabs.tsv"), "t.tsv", target="nope")
    assert datasets.read_table(b" a ,b,label\n1,2,x\n", "spaces.csv").frame.columns.tolist() == ["a", "b", "label"]


def test_an_encoded_table_keeps_its_table_and_which_rows_it_holds():
    data = parse_upload(corpus("missing_values.csv"), "m.csv", drop_missing=True)
    reference = pd.read_csv(CORPUS / "missing_values.csv")
    assert data.table.frame.shape == reference.shape and data.table_rows.tolist() == [0, 2, 4, 5, 6, 7]
    np.testing.assert_array_equal(data.X, reference.iloc[[0, 2, 4, 5, 6, 7]][["a", "b"]].to_numpy(dtype=float))
    assert data.source_rows([1]).label.tolist() == ["x"] and not data.table_rows.flags.writeable
    with pytest.raises(ValueError, match="one row of the table per row"):
        datasets.Dataset(name="t", X=np.zeros((2, 1)), y=np.array([0, 1]), class_names=("a", "b"),
                         feature_names=("f",), kind="tabular", table=data.table, table_rows=np.array([0, 99]))


@pytest.mark.parametrize("name", ["german-credit", "penguins", "iris", "wine", "breast-cancer"])
def test_tabular_builtins_keep_their_whole_table(name):
    data = datasets.load_builtin(name)
    frame = data.table.frame
    if name == "penguins":
        assert len(frame) == 344 and data.table_rows.tolist() == np.flatnonzero(frame.notna().all(axis=1)).tolist()
    else:
        assert data.table_rows.tolist() == list(range(len(frame)))
    for column, index in data.encoding.numeric:
        np.testing.assert_array_equal(data.X[:, index], frame[column].to_numpy(dtype=float)[data.table_rows])
    for group in data.encoding.categorical:
        levels = np.array(group.levels)[np.argmax(data.X[:, list(group.columns)], axis=1)]
        assert levels.tolist() == frame[group.name].astype(str).str.strip().to_numpy()[data.table_rows].tolist()
