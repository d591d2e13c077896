"""The questions the live-slider harness shows (tests/test_browser_live.py, benchmarks/live_slider_benchmark.py).

Each scenario is built the same way in the harness app and in the test process, so the test can solve
with Python's :func:`solver.invert` exactly the problem the browser solves (the app prints its model's
fingerprint to prove it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

import datasets
from solver import SoftmaxModel
from training import train_softmax

SCENARIOS = ("mnist", "mnist-free", "german", "german-ranges", "text", "text-ranges")


@dataclass(frozen=True, eq=False)
class Scenario:
    name: str
    model: SoftmaxModel
    x0: np.ndarray
    target: int
    arguments: dict
    class_names: tuple
    image_shape: tuple | None


@lru_cache(maxsize=4)
def _trained(dataset_name: str):
    data = datasets.load_builtin(dataset_name)
    # The Explore page's defaults (ui/state.default_train_params): C = 1, standardised for tabular data.
    trained = train_softmax(data.X, data.y, data.class_names, data.feature_names, C=1.0,
                            standardize=data.kind != "image", test_fraction=0.2, seed=0)
    return data, trained.model


def runner_up(model: SoftmaxModel, x0: np.ndarray) -> int:
    return int(np.argsort(model.predict_proba(x0))[-2])


def german_arguments(data, x0: np.ndarray, ranges: bool) -> dict:
    """Costs 1/std^2 (standardised units); one-hot groups, age and residence locked; with ``ranges`` the
    credit amount at most its current value and the duration between 6 and 48 months."""
    n = data.n_features
    std = data.X.std(axis=0)
    cost = np.where(std > 0, 1.0 / np.maximum(std, 1e-12) ** 2, 1.0)
    immutable = np.zeros(n, dtype=bool)
    for group in data.encoding.categorical:
        immutable[list(group.columns)] = True
    index = dict(data.encoding.numeric)
    immutable[index["age_years"]] = True
    immutable[index["residence_since_years"]] = True
    arguments = dict(immutable=immutable, cost=cost)
    if ranges:
        lower, upper = np.full(n, -np.inf), np.full(n, np.inf)
        upper[index["credit_amount"]] = x0[index["credit_amount"]]
        lower[index["duration_months"]], upper[index["duration_months"]] = 6.0, 48.0
        arguments["bounds"] = (lower, upper)
    return arguments


@lru_cache(maxsize=8)
def build(name: str, n_features: int = 47236, instance: int = 0) -> Scenario:
    """``text`` scenarios take ``n_features`` (K = 51, like RCV1)."""
    if name.startswith("mnist"):
        data, model = _trained("mnist-5k")
        x0 = data.X[instance]
        arguments = dict(bounds=(0.0, 1.0)) if name == "mnist" else {}
        return Scenario(name, model, x0, runner_up(model, x0), arguments, data.class_names, data.image_shape)
    if name.startswith("german"):
        data, model = _trained("german-credit")
        x0 = data.X[instance]
        return Scenario(name, model, x0, runner_up(model, x0), german_arguments(data, x0, name == "german-ranges"),
                        data.class_names, None)
    if name.startswith("text"):
        n_classes = 51
        rng = np.random.default_rng(0)
        coef = 0.1 * rng.standard_normal((n_classes, n_features))  # as benchmarks/solver_benchmark.py
        model = SoftmaxModel(coef, rng.standard_normal(n_classes))
        X, _ = datasets.make_text_like(20, n_features, n_classes, seed=0)
        x0 = X[instance]
        arguments = dict(bounds=(0.0, np.inf)) if name == "text-ranges" else {}
        names = tuple(f"topic {c:02d}" for c in range(n_classes))
        return Scenario(name, model, x0, runner_up(model, x0), arguments, names, None)
    raise ValueError(f"unknown scenario {name!r}; one of {', '.join(SCENARIOS)}")
