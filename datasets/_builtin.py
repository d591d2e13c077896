"""Built-in datasets: shipped files and scikit-learn's bundled data; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._dataset import DataError, Dataset, RawTable, TabularEncoding, make_dataset
from ._tabular import tabular_from_frame

DATA_DIR = Path(__file__).resolve().parent / "data"

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _images(name, file, class_names, description) -> Dataset:
    with np.load(DATA_DIR / file, allow_pickle=False) as archive:
        images, labels = archive["X"], archive["y"]
    n, h, w = images.shape
    X = images.reshape(n, h * w).astype(np.float64) / 255.0
    names = [f"pixel_{r}_{c}" for r in range(h) for c in range(w)]
    return Dataset(name=name, X=X, y=labels.astype(np.int64), class_names=class_names, feature_names=tuple(names),
                   kind="image", image_shape=(h, w), description=description)


def _sklearn_table(name, loader, description) -> Dataset:
    """scikit-learn's bundled table; its table is ``loader(as_frame=True).frame``, the class codes in
    ``target``, as a pipeline trained on it sees them."""
    bunch = loader(as_frame=True)
    names = tuple(str(f) for f in bunch.feature_names)
    table = RawTable(name=name, frame=bunch.frame, target="target", description=description)
    return Dataset(name=name, X=bunch.data.to_numpy(dtype=np.float64), y=bunch.target.to_numpy(dtype=np.int64),
                   class_names=tuple(str(c) for c in bunch.target_names), feature_names=names, kind="tabular",
                   encoding=TabularEncoding(tuple((f, i) for i, f in enumerate(names)), (), names),
                   description=description, table=table, table_rows=np.arange(len(bunch.frame)))


def _mnist() -> Dataset:
    return _images("mnist-5k", "mnist_5k.npz", tuple(str(d) for d in range(10)),
                   "MNIST handwritten digits, 500 per class (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0).")


def _fashion() -> Dataset:
    return _images("fashion-mnist-2k", "fashion_mnist_2k.npz", FASHION_CLASSES,
                   "Fashion-MNIST, 200 per class (Zalando SE, MIT licence).")


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    names = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    return Dataset(name="digits", X=bunch.data / 16.0, y=bunch.target.astype(np.int64),
                   class_names=tuple(str(d) for d in range(10)), feature_names=names, kind="image",
                   image_shape=(8, 8), description="scikit-learn's 8x8 digits (UCI, CC BY 4.0); pixels scaled to [0, 1].")


def _breast_cancer() -> Dataset:
    from sklearn.datasets import load_breast_cancer

    return _sklearn_table("breast-cancer", load_breast_cancer, "Wisconsin diagnostic breast cancer (UCI, CC BY 4.0), via scikit-learn.")


def _wine() -> Dataset:
    from sklearn.datasets import load_wine

    return _sklearn_table("wine", load_wine, "Wine recognition (UCI, CC BY 4.0), via scikit-learn.")


def _iris() -> Dataset:
    from sklearn.datasets import load_iris

    return _sklearn_table("iris", load_iris, "Fisher's iris (UCI, CC BY 4.0), via scikit-learn.")


def _german_credit() -> Dataset:
    frame = pd.read_csv(DATA_DIR / "german_credit.csv")
    return tabular_from_frame(
        frame, target="credit_risk", name="german-credit",
        description="Statlog German Credit (H. Hofmann, UCI, CC BY 4.0): 1000 applicants, good/bad credit risk.",
    )


def _penguins() -> Dataset:
    frame = pd.read_csv(DATA_DIR / "penguins.csv")
    return tabular_from_frame(
        frame, target="species", name="penguins", drop_missing=True,
        description="Palmer penguins (K. B. Gorman, Palmer Station LTER; CC0), from the palmerpenguins package: "
                    "344 penguins of 3 species on 3 islands.",
    )


def make_toy_2d(n_per_class: int = 100, seed: int = 0) -> Dataset:
    """Three seeded Gaussian blobs in the plane, for the teaching view."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]])
    X = np.vstack([c + rng.standard_normal((n_per_class, 2)) * 0.9 for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    names = ("x1", "x2")
    return Dataset(name="toy-2d", X=X, y=y, class_names=("A", "B", "C"), feature_names=names, kind="tabular",
                   encoding=TabularEncoding(tuple((f, i) for i, f in enumerate(names)), (), names),
                   description=f"Three Gaussian blobs, {n_per_class} points each, seed {seed}.")


def make_text_like(n_samples: int = 1000, n_features: int = 2000, n_classes: int = 20, seed: int = 0,
                   words_per_doc: int = 60, dense: bool = True):
    """Seeded bag-of-words data standing in for RCV1: TF-IDF-like, non-negative, unit-norm rows.

    Each class boosts its own set of topic words; a document draws ``~words_per_doc`` words from a
    mixture of its class's topic and the background (Zipf) distribution. Counts are weighted by
    ``log(1 + tf) * idf`` and each row is scaled to unit length. Returns ``(X, y)``; ``X`` is a
    ``scipy.sparse.csr_matrix`` unless ``dense``.
    """
    import scipy.sparse

    if not (2 <= n_classes <= 51 and n_classes <= n_features <= 47236):
        raise DataError("text-like data needs 2 <= n_classes <= 51 and n_classes <= n_features <= 47236")
    rng = np.random.default_rng(seed)
    background = 1.0 / np.arange(1, n_features + 1) ** 1.1
    background /= background.sum()
    topic_size = max(5, n_features // (4 * n_classes))
    y = rng.integers(0, n_classes, n_samples)
    rows, cols, vals = [], [], []
    topics = [rng.choice(n_features, topic_size, replace=False) for _ in range(n_classes)]
    for i in range(n_samples):
        length = max(5, rng.poisson(words_per_doc))
        n_topic = rng.binomial(length, 0.4)
        words = np.concatenate([rng.choice(topics[y[i]], n_topic), rng.choice(n_features, length - n_topic, p=background)])
        ids, counts = np.unique(words, return_counts=True)
        rows.append(np.full(ids.size, i))
        cols.append(ids)
        vals.append(np.log1p(counts))
    X = scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(n_samples, n_features))
    df = np.bincount(X.indices, minlength=n_features)
    X = X @ scipy.sparse.diags(np.log((1 + n_samples) / (1 + df)) + 1.0)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = scipy.sparse.diags(1.0 / np.maximum(norms, 1e-300)) @ X
    X = scipy.sparse.csr_matrix(X)
    return (X.toarray() if dense else X), y


def _text_sparse(n_features: int = 2000, n_classes: int = 20, seed: int = 0) -> Dataset:
    n_samples = int(min(2000, 2e7 // n_features))  # keeps the dense matrix under ~160 MB
    X, y = make_text_like(n_samples, n_features, n_classes, seed)
    return make_dataset("text-sparse", X, np.array([f"topic {c:02d}" for c in y]),
                        [f"word_{j}" for j in range(n_features)], "tabular",
                        encoding=TabularEncoding(tuple((f"word_{j}", j) for j in range(n_features))),
                        description=f"Synthetic TF-IDF bag of words standing in for RCV1: D={n_features}, K={n_classes}, seed {seed}.")


BUILTIN = {
    "mnist-5k": _mnist,
    "fashion-mnist-2k": _fashion,
    "digits": _digits,
    "german-credit": _german_credit,
    "penguins": _penguins,
    "breast-cancer": _breast_cancer,
    "wine": _wine,
    "iris": _iris,
    "toy-2d": make_toy_2d,
    "text-sparse": _text_sparse,
}


def list_builtin() -> list[str]:
    """Names of the built-in datasets, the default (MNIST-5k) first."""
    return list(BUILTIN)


def load_builtin(name: str, **options) -> Dataset:
    """Load a built-in dataset by name; ``text-sparse`` takes ``n_features``, ``n_classes``, ``seed``."""
    if name not in BUILTIN:
        raise DataError(f"unknown built-in dataset {name!r}; choose one of {', '.join(BUILTIN)}")
    return BUILTIN[name](**options)
