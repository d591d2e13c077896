"""Share links: the whole question as query parameters, and reading a link back (pure functions).

A link carries the built-in dataset, the instance, the target, lambda, the question asked (and its
alpha; for the recourse question its budget and metric), the distance/pixel-range flag, the edits of
the what-may-change table and the training parameters of a model trained here. Uploaded data and
uploaded model files cannot travel in a link. Reading a link never fails: what is invalid is skipped and described in a warning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from training import TrainingParams
from ui.constraints import CHOICES, EDITABLE, LOCKED, MAY_CHANGE, Edit

KNOWN = ("dataset", "i", "target", "lam", "q", "alpha", "std", "px", "edits", "C", "scale", "test", "seed", "s",
         "metric")
QUESTIONS = ("flip", "alpha", "recourse")
METRICS = ("l2", "l1")
ALPHA_RANGE = (0.01, 0.9999)
TEST_FRACTION_RANGE = (0.1, 0.5)
SEED_RANGE = (0, 10_000)
_COLUMN_CODES = {"may change": "change", "whole numbers": "int", "min": "min", "max": "max", "cost": "cost"}
_CODE_COLUMNS = {code: column for column, code in _COLUMN_CODES.items()}
_CHOICE_CODES = dict(zip(CHOICES, ("free", "rise", "fall", "lock")))
_CODE_CHOICES = {code: choice for choice, code in _CHOICE_CODES.items()}
# Links written before "may change" was one choice: lock=1/0 and levels=1/0 (a categorical feature).
_LEGACY_FLAGS = {"lock": (LOCKED, MAY_CHANGE), "levels": (MAY_CHANGE, LOCKED)}
_NAME_SAFE = " _-./()'[]"  # kept readable in a feature name; ':', ';', ',', '=' and '%' are escaped


@dataclass(frozen=True)
class LinkRequest:
    """What a link asks for; None where the link says nothing (or something invalid)."""

    dataset: str
    instance: int | None = None
    target: int | None = None
    log_lam: float | None = None
    question: str | None = None
    alpha: float | None = None
    budget: int | None = None  # the recourse question's "change at most s features" (pixels for images)
    metric: str | None = None  # the recourse question's metric, "l2" or "l1" (tables)
    standardised: bool | None = None
    pixel_range: bool | None = None
    edits: tuple[Edit, ...] = ()
    training: TrainingParams | None = None


def _shown(text: str, limit: int = 40) -> str:
    """A piece of a link quoted in a warning: cut to ``limit`` characters and with markdown's
    punctuation escaped, so a crafted link cannot put links, images or colours on the page."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&])", r"\\\1", text)


def _flag(value: str) -> bool | None:
    return {"1": True, "0": False, "true": True, "false": False}.get(value.strip().lower())


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _integer(value: str) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def dataset_name(params: Mapping[str, str], builtin: Sequence[str], default: str) -> tuple[str, list[str]]:
    """The built-in dataset a link names, or the default with a warning."""
    name = params.get("dataset")
    if name is None:
        return default, []
    if name in builtin:
        return name, []
    return default, [f"dataset '{_shown(name)}' is not a built-in dataset (opened {default})"]


def encode_edits(edits: Sequence[Edit]) -> str:
    """``feature:change=rise,min=30;other:cost=2`` (feature names percent-escaped where needed)."""
    by_feature: dict[str, list[str]] = {}
    for edit in edits:
        if isinstance(edit.value, bool):
            value = "1" if edit.value else "0"
        elif isinstance(edit.value, str):
            value = _CHOICE_CODES[edit.value]
        else:
            value = "none" if math.isnan(edit.value) else repr(float(edit.value))
        by_feature.setdefault(edit.feature, []).append(f"{_COLUMN_CODES[edit.column]}={value}")
    return ";".join(f"{quote(name, safe=_NAME_SAFE)}:{','.join(parts)}" for name, parts in by_feature.items())


def decode_edits(text: str, features: Sequence[str]) -> tuple[tuple[Edit, ...], list[str]]:
    """The edits of :func:`encode_edits` that name a known feature and column with a valid value."""
    edits, problems = [], []
    known = set(features)
    for item in filter(None, text.split(";")):
        name, _, fields = item.partition(":")
        name = unquote(name)
        if name not in known:
            problems.append(f"'{_shown(name)}' is not a feature of this dataset")
            continue
        for field in filter(None, fields.split(",")):
            code, _, raw = field.partition("=")
            if code in _LEGACY_FLAGS:
                flag = _flag(raw)
                if flag is None:
                    problems.append(f"{_shown(name)} {code} = '{_shown(raw)}' is not a valid value")
                else:
                    edits.append(Edit(name, "may change", _LEGACY_FLAGS[code][0 if flag else 1]))
                continue
            column = _CODE_COLUMNS.get(code)
            if column is None:
                problems.append(f"'{_shown(code)}' is not a column of the what-may-change table")
                continue
            if EDITABLE[column] is str:
                value = _CODE_CHOICES.get(raw.strip().lower())
            elif EDITABLE[column] is bool:
                value = _flag(raw)
            elif raw.strip().lower() == "none":
                value = math.nan
            else:
                value = _number(raw)
                if value is not None and column == "cost" and value < 0:
                    value = None
            if value is None:
                problems.append(f"{_shown(name)} {column} = '{_shown(raw)}' is not a valid value")
                continue
            edits.append(Edit(name, column, value))
    return tuple(edits), problems


def _training(params: Mapping[str, str], kind: str) -> tuple[TrainingParams | None, list[str]]:
    if not any(name in params for name in ("C", "scale", "test", "seed")):
        return None, []
    default = TrainingParams.default_for(kind)
    values, problems = {}, []
    if "C" in params:
        C = _number(params["C"])
        if C is None or C <= 0:
            problems.append(f"C = '{_shown(params['C'])}' is not a positive number")
        else:
            values["C"] = C
    if "scale" in params:
        scale = _flag(params["scale"])
        if scale is None:
            problems.append(f"scale = '{_shown(params['scale'])}' is not 0 or 1")
        else:
            values["standardize"] = scale
    if "test" in params:
        fraction = _number(params["test"])
        if fraction is None or not TEST_FRACTION_RANGE[0] <= fraction <= TEST_FRACTION_RANGE[1]:
            problems.append(f"test fraction '{_shown(params['test'])}' is not between {TEST_FRACTION_RANGE[0]} and "
                            f"{TEST_FRACTION_RANGE[1]}")
        else:
            values["test_fraction"] = fraction
    if "seed" in params:
        seed = _integer(params["seed"])
        if seed is None or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
            problems.append(f"split seed '{_shown(params['seed'])}' is not a whole number from {SEED_RANGE[0]} to "
                            f"{SEED_RANGE[1]}")
        else:
            values["seed"] = seed
    if problems:
        return None, problems + ["the default model was trained instead"]
    return TrainingParams(**{**default.__dict__, **values}), []


def budget_range(dataset) -> tuple[int, int]:
    """The recourse question's budget: 1 to the number of features a change can count (a one-hot
    group counts once; pixels for images)."""
    encoding = dataset.encoding
    if dataset.kind == "image" or encoding is None:
        return 1, dataset.n_features
    return 1, len(encoding.numeric) + len(encoding.categorical)


def _recourse(params: Mapping[str, str], dataset) -> tuple[dict, list[str]]:
    """The recourse question of a link: its budget, metric and optional alpha (each checked)."""
    low, high = budget_range(dataset)
    budget = _integer(params.get("s", ""))
    if budget is None or not low <= budget <= high:
        return {}, [f"budget s = '{_shown(params.get('s', ''))}' is not a whole number from {low} to {high}; the "
                    "recourse question was not asked"]
    request, problems = {"question": "recourse", "budget": budget}, []
    if "metric" in params:
        if params["metric"] not in METRICS or (dataset.kind == "image" and params["metric"] != "l1"):
            allowed = "l1" if dataset.kind == "image" else "l2 or l1"
            problems.append(f"metric '{_shown(params['metric'])}' is not {allowed} (using the default)")
        else:
            request["metric"] = params["metric"]
    if "alpha" in params:
        alpha = _number(params["alpha"])
        if alpha is None or not ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]:
            problems.append(f"α = '{_shown(params['alpha'])}' is not between {ALPHA_RANGE[0]} and {ALPHA_RANGE[1]}; "
                            "asked without it")
        else:
            request["alpha"] = alpha
    return request, problems


def read(params: Mapping[str, str], name: str, dataset, log_lam_range: tuple[float, float],
         log_lam_step: float) -> tuple[LinkRequest, list[str]]:
    """Everything a link asks of ``dataset`` (already chosen by :func:`dataset_name`), and a warning
    for each part that is invalid (that part keeps its default)."""
    warnings = [f"unknown parameter '{_shown(key)}' ignored" for key in params if key not in KNOWN]
    request: dict = {}
    if "i" in params:
        index = _integer(params["i"])
        if index is None or not 0 <= index < dataset.n_samples:
            warnings.append(f"instance '{_shown(params['i'])}' is not a row of {name} (0 to {dataset.n_samples - 1}; "
                            "showing #0)")
        else:
            request["instance"] = index
    if "target" in params:
        target = _integer(params["target"])
        if target is None or not 0 <= target < dataset.n_classes:
            warnings.append(f"target '{_shown(params['target'])}' is not a class of {name} (0 to {dataset.n_classes - 1}; "
                            "showing the runner-up class)")
        else:
            request["target"] = target
    if "lam" in params:
        lam = _number(params["lam"])
        if lam is None or lam <= 0:
            warnings.append(f"λ = '{_shown(params['lam'])}' is not a positive number (showing the default)")
        else:
            log_lam = round(math.log10(lam) / log_lam_step) * log_lam_step
            low, high = log_lam_range
            if not low - log_lam_step / 2 <= math.log10(lam) <= high + log_lam_step / 2:
                warnings.append(f"λ = {lam:g} is outside the slider's range ({10 ** low:g} to {10 ** high:g}); "
                                "using the nearest end")
            request["log_lam"] = min(max(log_lam, low), high)
    if "q" in params:
        if params["q"] not in QUESTIONS:
            warnings.append(f"question '{_shown(params['q'])}' is not one of {', '.join(QUESTIONS)}")
        elif params["q"] == "alpha":
            alpha = _number(params.get("alpha", ""))
            if alpha is None or not ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]:
                warnings.append(f"α = '{_shown(params.get('alpha', ''))}' is not between {ALPHA_RANGE[0]} and "
                                f"{ALPHA_RANGE[1]}; the question was not asked")
            else:
                request.update(question="alpha", alpha=alpha)
        elif params["q"] == "recourse":
            recourse, problems = _recourse(params, dataset)
            warnings += problems
            request.update(recourse)
        else:
            request["question"] = "flip"
    flag_name = "px" if dataset.kind == "image" else "std"
    if flag_name in params:
        flag = _flag(params[flag_name])
        if flag is None:
            warnings.append(f"{flag_name} = '{_shown(params[flag_name])}' is not 0 or 1")
        else:
            request["pixel_range" if dataset.kind == "image" else "standardised"] = flag
    if "edits" in params:
        if dataset.kind == "image":
            warnings.append("image data has no what-may-change table; the link's edits were ignored")
        else:
            features = [column for column, _ in dataset.encoding.numeric] + [g.name for g in dataset.encoding.categorical]
            edits, problems = decode_edits(params["edits"], features)
            request["edits"] = edits
            warnings += [f"what may change: {problem}" for problem in problems]
    training, problems = _training(params, dataset.kind)
    warnings += problems
    if training is not None:
        request["training"] = training
    return LinkRequest(dataset=name, **request), warnings


def encode(*, dataset: str, instance: int, target: int, log_lam: float, kind: str, flag: bool,
           question: str | None = None, alpha: float | None = None, edits: Sequence[Edit] = (),
           training: TrainingParams | None = None, budget: int | None = None,
           metric: str | None = None) -> dict[str, str]:
    """The query parameters of a question (the inverse of :func:`read`)."""
    params = {"dataset": dataset, "i": str(int(instance)), "target": str(int(target)), "lam": f"{10 ** log_lam:.4g}",
              ("px" if kind == "image" else "std"): "1" if flag else "0"}
    if question == "flip":
        params["q"] = "flip"
    elif question == "alpha":
        params.update(q="alpha", alpha=repr(float(alpha)))
    elif question == "recourse":
        params.update(q="recourse", s=str(int(budget)))
        if kind != "image" and metric is not None:
            params["metric"] = metric
        if alpha is not None:
            params["alpha"] = repr(float(alpha))
    if edits:
        params["edits"] = encode_edits(edits)
    if training is not None and training != TrainingParams.default_for(kind):
        params.update(C=repr(training.C), scale="1" if training.standardize else "0", test=repr(training.test_fraction),
                      seed=str(training.seed))
    return params
