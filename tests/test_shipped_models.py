"""The default models shipped in datasets/data/models/: they belong to the data as it is now, their
evaluation is their own, a stale or damaged file is never used, and retraining reproduces them."""

import shutil

import numpy as np
import pytest
from scipy.special import softmax

import datasets
from training import TrainingParams, train
from training.make_default_models import make
from training.shipped import FORMAT_VERSION, MODELS_DIR, load_shipped, read_header, shipped_path


@pytest.fixture(scope="module")
def iris():
    return datasets.load_builtin("iris")


@pytest.mark.parametrize("name", datasets.list_builtin())
def test_every_built_in_dataset_ships_a_model_for_its_current_content(name):
    dataset = datasets.load_builtin(name)
    header = read_header(shipped_path(name))
    assert header["format_version"] == FORMAT_VERSION and header["dataset_name"] == name
    assert header["data_hash"] == dataset.content_hash, (
        f"{name} changed since its model was shipped: run `python -m training.make_default_models {name}`")
    assert header["params"] == TrainingParams.default_for(dataset.kind)
    trained = load_shipped(dataset, header["params"])
    assert trained is not None and trained.origin == f"shipped file datasets/data/models/{name}.npz"
    # the evaluation in the file is the shipped model's own, on the split the seed makes
    from sklearn.model_selection import train_test_split

    index = np.arange(dataset.n_samples)
    _, test_index = train_test_split(index, test_size=header["params"].test_fraction, random_state=header["params"].seed,
                                     stratify=dataset.y)
    np.testing.assert_array_equal(trained.test_index, np.sort(test_index))
    predicted = trained.model.predict(dataset.X)
    test = np.zeros(dataset.n_samples, dtype=bool)
    test[trained.test_index] = True
    assert trained.test_accuracy == np.mean(predicted[test] == dataset.y[test])
    assert trained.train_accuracy == np.mean(predicted[~test] == dataset.y[~test])
    confusion = np.zeros((dataset.n_classes, dataset.n_classes), dtype=int)
    np.add.at(confusion, (dataset.y[test], predicted[test]), 1)
    np.testing.assert_array_equal(trained.confusion, confusion)


def test_a_stale_or_foreign_file_is_not_used(iris, tmp_path):
    params = TrainingParams.default_for(iris.kind)
    shutil.copy(shipped_path("iris"), tmp_path / "iris.npz")
    assert load_shipped(iris, params, tmp_path) is not None
    assert load_shipped(iris, TrainingParams(C=0.5), tmp_path) is None  # other training parameters
    other = datasets.make_toy_2d(seed=1)
    shutil.copy(shipped_path("toy-2d"), tmp_path / "toy-2d.npz")
    assert load_shipped(other, TrainingParams.default_for(other.kind), tmp_path) is None  # other data, same name
    with np.load(shipped_path("iris"), allow_pickle=False) as archive:
        arrays = dict(archive)
    for change in ({"data_hash": np.str_("0" * 64)}, {"format_version": np.int64(FORMAT_VERSION + 1)},
                   {"coef": np.zeros((3, 5))}, {"param_seed": np.asarray(1)}):
        np.savez(tmp_path / "iris.npz", **{**arrays, **change})
        assert load_shipped(iris, params, tmp_path) is None, change
    np.savez(tmp_path / "iris.npz", **{**arrays, "classes": np.array([object()], dtype=object)})  # needs pickle
    assert load_shipped(iris, params, tmp_path) is None
    (tmp_path / "iris.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert load_shipped(iris, params, tmp_path) is None


def test_the_script_writes_a_file_the_loader_reads_back(iris, tmp_path):
    path = make("iris", tmp_path)
    params = TrainingParams.default_for(iris.kind)
    shipped = load_shipped(iris, params, tmp_path)
    fresh = train(iris, params)
    np.testing.assert_array_equal(shipped.model.coef, fresh.model.coef)
    np.testing.assert_array_equal(shipped.model.intercept, fresh.model.intercept)
    assert shipped.test_accuracy == fresh.test_accuracy
    with np.load(path, allow_pickle=False) as archive:  # plain arrays only
        assert all(archive[name].dtype != object for name in archive.files)


def _standardised_training_problem(dataset, trained, params):
    """The problem scikit-learn's lbfgs solved: standardised training rows S (with a column of ones),
    labels, and the penalty 1/(C n) on the weights (not the intercepts)."""
    from sklearn.preprocessing import StandardScaler

    train_rows = np.setdiff1d(np.arange(dataset.n_samples), trained.test_index)
    scaler = StandardScaler().fit(dataset.X[train_rows])
    S = np.hstack([(dataset.X[train_rows] - scaler.mean_) / scaler.scale_, np.ones((len(train_rows), 1))])
    S_all = np.hstack([(dataset.X - scaler.mean_) / scaler.scale_, np.ones((dataset.n_samples, 1))])
    return S, dataset.y[train_rows], 1.0 / (params.C * len(train_rows)), scaler, S_all


def _gradient_and_hessian(theta, S, y, l2, K):
    """Gradient and Hessian of mean cross-entropy + l2/2 ||W||^2 at theta = [W | c] (K x (D+1))."""
    n, width = S.shape
    penalty = np.r_[np.ones(width - 1), 0.0]
    P = softmax(S @ theta.T, axis=1)
    gradient = ((P - np.eye(K)[y]).T @ S / n + l2 * theta * penalty).ravel()
    hessian = np.zeros((K * width, K * width))
    for p, s in zip(P, S):
        hessian += np.kron(np.diag(p) - np.outer(p, p), np.outer(s, s))
    hessian = hessian / n + l2 * np.kron(np.eye(K), np.diag(penalty))
    return gradient, hessian


def test_retraining_iris_reproduces_the_shipped_probabilities_within_the_stopping_rule(iris):
    """lbfgs stops near, not at, the minimiser theta* of the strongly convex training objective f.
    With H = hess f and the Newton decrement nu(theta) = sqrt(g^T H^-1 g), a quadratic model gives
    ||theta - theta*||_H = nu(theta), so two stopping points differ by at most nu_1 + nu_2 in that
    norm, doubled for the change of H across a ball this small (nu ~ 1e-3). The logits of row s move
    by at most that times ||(I_K kron s^T) H^-1/2||, and softmax is 1/2-Lipschitz. Adding the same
    vector to every class's parameters changes no probability, so those directions are projected out.
    """
    params = TrainingParams.default_for(iris.kind)
    shipped = load_shipped(iris, params)
    fresh = train(iris, params)
    S, y, l2, scaler, S_all = _standardised_training_problem(iris, shipped, params)
    K, width = iris.n_classes, S.shape[1]

    def theta(model):  # unfold the scaler that training folded into the weights
        return np.hstack([model.coef * scaler.scale_, (model.intercept + model.coef @ scaler.mean_)[:, None]])

    g_shipped, H = _gradient_and_hessian(theta(shipped.model), S, y, l2, K)
    g_fresh, _ = _gradient_and_hessian(theta(fresh.model), S, y, l2, K)
    centre = np.kron(np.eye(K) - 1.0 / K, np.eye(width))
    values, vectors = np.linalg.eigh(centre @ H @ centre)
    keep = values > 1e-10 * values.max()
    H_inverse_root = vectors[:, keep] / np.sqrt(values[keep])
    decrement = [np.linalg.norm(H_inverse_root.T @ (centre @ g)) for g in (g_shipped, g_fresh)]
    assert max(decrement) < 1e-2  # both are near the optimum: the bound below is a local one
    reach = np.array([np.linalg.norm(np.kron(np.eye(K), s[None, :]) @ H_inverse_root, 2) for s in S_all])
    bound = 0.5 * reach * 2.0 * sum(decrement)
    difference = np.abs(shipped.model.predict_proba(iris.X) - fresh.model.predict_proba(iris.X)).max(axis=1)
    print(f"iris retrained: largest probability change {difference.max():.1e}, bound {bound.min():.2e} to {bound.max():.2e}")
    assert np.all(difference <= bound), (difference.max(), bound.min())
    # the bound is tight enough to notice a model trained another way (here C = 1.5 instead of 1)
    other = train(iris, TrainingParams(C=1.5))
    moved = np.abs(shipped.model.predict_proba(iris.X) - other.model.predict_proba(iris.X)).max(axis=1)
    assert np.any(moved > bound)


def test_the_training_objectives_derivatives_match_finite_differences():
    """The gradient formula the bound above relies on, against central differences."""
    rng = np.random.default_rng(0)
    S = np.hstack([rng.standard_normal((30, 3)), np.ones((30, 1))])
    y = rng.integers(0, 3, 30)
    theta = rng.standard_normal((3, 4))
    l2 = 0.1

    def f(t):
        t = t.reshape(3, 4)
        Z = S @ t.T
        logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        return -logp[np.arange(30), y].mean() + 0.5 * l2 * np.sum(t[:, :-1] ** 2)

    g, H = _gradient_and_hessian(theta, S, y, l2, 3)
    h = 1e-6
    numeric = np.array([(f(theta.ravel() + h * e) - f(theta.ravel() - h * e)) / (2 * h) for e in np.eye(12)])
    np.testing.assert_allclose(g, numeric, atol=1e-8)
    numeric_h = np.array([(_gradient_and_hessian((theta.ravel() + h * e).reshape(3, 4), S, y, l2, 3)[0] -
                           _gradient_and_hessian((theta.ravel() - h * e).reshape(3, 4), S, y, l2, 3)[0]) / (2 * h)
                          for e in np.eye(12)])
    np.testing.assert_allclose(H, numeric_h, atol=1e-7)


def test_the_models_directory_holds_one_file_per_built_in_dataset():
    names = {path.stem for path in MODELS_DIR.glob("*.npz")}
    assert names == set(datasets.list_builtin())
