import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT, ROOT / "benchmarks"):  # benchmarks/browser_harness.py serves the browser tests
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

os.environ.setdefault("OMP_NUM_THREADS", "2")


def reference_energy(A, b, x0, k, lam, x):
    """E(x) computed independently of the solver: scipy's log_softmax."""
    from scipy.special import log_softmax

    return 0.5 * lam * np.sum((x - x0) ** 2) - log_softmax(A @ x + b)[k]


def reference_gradient(A, b, x0, k, lam, x):
    """grad E(x) = lam (x - x0) + A^T (p - e_k), from scipy's softmax."""
    from scipy.special import softmax

    p = softmax(A @ x + b)
    p[k] -= 1.0
    return lam * (x - x0) + A.T @ p


def gradient_scale(A, lam, x, x0):
    """Scale of the gradient's terms, for relative stopping checks."""
    return lam * np.linalg.norm(x - x0) + np.linalg.norm(A, 2) + 1.0


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def random_model(rng, n_classes, n_features, scale=1.0):
    from solver import SoftmaxModel

    return SoftmaxModel(rng.standard_normal((n_classes, n_features)) * scale, rng.standard_normal(n_classes))


@pytest.fixture(scope="module")
def credit():
    import datasets

    return datasets.load_builtin("german-credit")


@pytest.fixture(scope="module")
def credit_model(credit):
    """German credit's default model, trained here (not the shipped file)."""
    from training import TrainingParams, train

    return train(credit, TrainingParams.default_for(credit.kind)).model


# -- real browser tests -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app_url():
    """A fresh server for the test module, started the way the README does (``make run``)."""
    import browser_harness

    with browser_harness.serving() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium (Playwright cannot download browsers here)."""
    import browser_harness

    sync_api = pytest.importorskip("playwright.sync_api")
    assert Path(browser_harness.CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it with apt"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=browser_harness.CHROMIUM,
                                              args=browser_harness.CHROMIUM_ARGS)
        yield chromium
        chromium.close()
