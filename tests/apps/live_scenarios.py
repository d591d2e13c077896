"""The questions the live slider is tested on: in the harness (tests/apps/live_slider_app.py) and on the
Explore page, opened by a share link (tests/test_browser.py, benchmarks/live_slider_benchmark.py).

Each scenario is built the same way in the app and in the test process, so the test can solve with Python's
:func:`solver.invert` exactly the problem the browser solves: the models are the Explore page's defaults
(the shipped file when it matches, as ui/state.train loads them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

import datasets
from solver import SoftmaxModel
from training import TrainingParams, train
from training.shipped import load_shipped

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
    """The Explore page's default model, loaded as ui/state.train loads it."""
    data = datasets.load_builtin(dataset_name)
    params = TrainingParams.default_for(data.kind)
    trained = load_shipped(data, params) or train(data, params)
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


# -- the Explore page, opened by a share link (ui/links.py) ------------------------------------------------
GERMAN_LOCKS = "age_years:lock=1;residence_since_years:lock=1;existing_credits:lock=1"


@dataclass(frozen=True, eq=False)
class ExploreScenario:
    """A question on the Explore page: its share link's query, and the problem the page poses from it."""

    name: str
    query: dict
    scenario: Scenario
    dataset: object
    what: object  # ui.constraints.WhatMayChange, as the page builds it from the link


@lru_cache(maxsize=8)
def explore(name: str, instance: int = 0, log_lam: float = 1.2) -> ExploreScenario:
    """``mnist`` (pixel range on), ``mnist-free`` (off), ``german`` (the default locks of the one-hot groups,
    plus age, residence and existing credits locked; standardised costs), ``german-ranges`` (and the
    credit amount at most its current value, the duration between 6 and 48 months)."""
    from ui import constraints, links

    dataset_name = "mnist-5k" if name.startswith("mnist") else "german-credit"
    data, model = _trained(dataset_name)
    x0 = data.X[instance]
    target = runner_up(model, x0)
    query = dict(dataset=dataset_name, i=str(instance), target=str(target), lam=repr(10.0 ** log_lam))
    if data.kind == "image":
        query["px"] = "1" if name == "mnist" else "0"
        what = constraints.image_constraints(data, name == "mnist")
    else:
        text = GERMAN_LOCKS
        if name == "german-ranges":
            index = dict(data.encoding.numeric)
            text += f";credit_amount:max={float(x0[index['credit_amount']])!r};duration_months:min=6.0,max=48.0"
        edits, problems = links.decode_edits(text, [n for n, _ in data.encoding.numeric])
        assert not problems, problems
        query.update(std="1", edits=links.encode_edits(edits))
        table = constraints.apply_edits(constraints.default_table(data, True), edits)
        what = constraints.what_may_change(data, table, True)
    scenario = Scenario(name, model, x0, target, dict(what.arguments), data.class_names,
                        data.image_shape if data.kind == "image" else None)
    return ExploreScenario(name, query, scenario, data, what)
