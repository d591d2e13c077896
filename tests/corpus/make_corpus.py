"""Regenerate the hostile and odd files in this folder: python tests/corpus/make_corpus.py"""

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def write(name, data: bytes):
    (HERE / name).write_bytes(data)


def png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def main():
    rng = np.random.default_rng(0)
    write("empty.csv", b"")
    write("garbage.csv", bytes(rng.integers(0, 256, 4096, dtype=np.uint8)))
    write("header_only.csv", b"a,b,label\n")
    write("one_class.csv", b"a,b,label\n1,2,x\n3,4,x\n5,6,x\n")
    write("all_nan.csv", b"a,b,label\nnan,,x\nNaN,nan,y\n,,x\n")
    write("missing_values.csv", b"a,b,label\n1,2,x\n,4,y\n5,6,x\n7,inf,y\n8,9,x\n10,11,y\n12,13,x\n14,15,y\n")
    write("semicolon_latin1.csv", "größe;farbe;klasse\n1,5;rot;ja\n2,5;grün;nein\n3,0;rot;ja\n4,5;grün;nein\n"
          "5,0;blau;ja\n6,5;grün;nein\n".replace(",", ".").encode("latin-1"))
    write("tabs.tsv", b"x\ty\tclass\n1\t2\ta\n2\t1\tb\n3\t3\ta\n0\t1\tb\n")
    write("pickled_model.pkl", pickle.dumps({"coef": [[1.0, 2.0]], "intercept": [0.0]}))
    write("pickle_named.skops", pickle.dumps({"coef": [[1.0, 2.0]]}))
    write("object_array.npz", npz(X=np.array([[1, 2], [3, 4]], dtype=object), y=np.array([0, 1])))
    write("mismatched_lengths.npz", npz(X=np.zeros((10, 4)), y=np.zeros(9, dtype=int)))
    write("images_nhwc.npz", npz(X=rng.integers(0, 256, (12, 6, 5, 3), dtype=np.uint8), y=np.repeat([0, 1, 2], 4)))
    write("model_wrong_shapes.npz", npz(coef=np.zeros((3, 4)), intercept=np.zeros(2)))
    write("model_nan.json", json.dumps({"coef": [[1.0, float("nan")], [0.0, 1.0]], "intercept": [0, 0]}).replace("NaN", "NaN").encode())
    write("model_ragged.json", b'{"coef": [[1.0, 2.0], [3.0]], "intercept": [0, 0]}')

    buffer = io.BytesIO()  # zip bomb: 320 MB of zeros, about 310 kB packed
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("class_a/bomb.png", "w", force_zip64=True) as handle:
            block = bytes(2**20)
            for _ in range(320):
                handle.write(block)
    write("zip_bomb.zip", buffer.getvalue())

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes/readme.txt", "no images here")
        archive.writestr("data.csv", "a,b\n1,2\n")
    write("no_images.zip", buffer.getvalue())

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, value in [("circle", 200), ("square", 40)]:
            for i in range(3):
                archive.writestr(f"shapes/{label}/{i}.png", png(np.full((10, 10), value) + rng.integers(0, 20, (10, 10))))
        archive.writestr("shapes/square/odd_size.png", png(np.zeros((14, 12)) + 30))
        archive.writestr("__MACOSX/shapes/._0.png", b"junk")
    write("class_folders.zip", buffer.getvalue())

    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    data = sio.dumps(LogisticRegression(max_iter=500).fit(X, y))
    write("truncated.skops", data[: len(data) // 2])
    hostile_pipelines(X, y)


def hostile_pipelines(X, y):
    """Pipelines that would run code on loading or predicting: an untrusted type smuggled inside a
    ColumnTransformer, FunctionTransformers with a lambda or a numpy function, and a scikit-learn step
    (trusted by skops's defaults) that cannot be folded. They refer to canary_payload.py beside this
    script, so the tests can see whether anything ran."""
    import canary_payload
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, PolynomialFeatures, StandardScaler

    def dump(name, preprocess):
        pipeline = Pipeline([("pre", preprocess), ("clf", LogisticRegression(max_iter=500))]).fit(X, y)
        write(name, sio.dumps(pipeline))

    dump("skops_untrusted_in_column_transformer.skops", ColumnTransformer(
        [("num", StandardScaler(), [0, 1]), ("evil", canary_payload.CanaryTransformer(), [2, 3])]))
    dump("skops_function_transformer_lambda.skops", ColumnTransformer(
        [("num", StandardScaler(), [0, 1]), ("shout", FunctionTransformer(canary_payload.shout), [2, 3])]))
    dump("skops_function_transformer_numpy.skops", ColumnTransformer(
        [("num", StandardScaler(), [0, 1]), ("log", FunctionTransformer(np.log1p), [2, 3])]))
    dump("skops_polynomial.skops", ColumnTransformer([("poly", PolynomialFeatures(), [0, 1, 2, 3])]))


if __name__ == "__main__":
    main()
