"""Counterfactuals in the user's terms: a table of changes, a one-sentence reading, and for the exact
recourse answer plain sentences in the applicant's units and category names (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from datasets import Dataset

# Units a built-in dataset's documentation gives that its column names do not say (Statlog German
# credit: amounts in Deutsche Mark).
KNOWN_UNITS = {"german-credit": {"credit_amount": "DM"}}
# A last word of a column name that is its unit ("duration_months", "body_mass_g").
SUFFIX_UNITS = {"months": "months", "month": "months", "years": "years", "year": "years", "days": "days",
                "weeks": "weeks", "hours": "hours", "mm": "mm", "cm": "cm", "m": "m", "km": "km", "g": "g",
                "kg": "kg", "dm": "DM", "eur": "EUR", "usd": "USD"}
CURRENCIES = {"DM", "EUR", "USD"}  # written after each amount: "from 5,951 DM to 4,200 DM"
_TIME_SPANS = ("duration", "term", "period")  # these shorten and extend rather than fall and rise


def _format(value: float) -> str:
    """A value in the user's units: whole numbers with thousands separators (5,951), others with two
    decimals (3,591.87; 12.85), or three significant digits below 1 (0.515)."""
    if float(value).is_integer():
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def size_column(unit: str) -> str:
    """The change table's column of each row's share of the distance."""
    return f"change ({unit})"


def change_table(dataset: Dataset, x0: np.ndarray, x: np.ndarray, cost: np.ndarray, unit: str,
                 min_change: float = 1e-9, metric: str = "l2", choices: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per original column: value at the source, at the counterfactual, and the change.

    Numeric columns are compared in their own units; a one-hot group shows its strongest level before
    and after. The size column is each row's part of the problem's distance: for ``metric="l2"``
    ``sqrt(sum_{j in row} cost_j (x_j - x0_j)^2)``, so the root of the sum of its squares is the
    distance shown in the metrics; for ``"l1"`` ``sum_{j in row} cost_j |x_j - x0_j|``, so the sizes add
    up to it. Rows are sorted by it. ``choices`` (feature -> "may change", "locked", ...) adds the
    user's choice for each row as a column "may change".
    """
    cost = np.asarray(cost, dtype=float)
    delta = np.asarray(x, dtype=float) - np.asarray(x0, dtype=float)

    def size(columns):
        if metric == "l1":
            return float(np.sum(cost[columns] * np.abs(delta[columns])))
        return float(np.sqrt(np.sum(cost[columns] * delta[columns] ** 2)))

    rows = []
    encoding = dataset.encoding
    numeric = encoding.numeric if encoding is not None else tuple((n, i) for i, n in enumerate(dataset.feature_names))
    for name, index in numeric:
        rows.append(dict(feature=name, source=_format(float(x0[index])), counterfactual=_format(float(x[index])),
                         change=f"{delta[index]:+.4g}", size=size([index]), kind="numeric"))
    for group in (encoding.categorical if encoding is not None else ()):
        columns = list(group.columns)
        before = group.levels[int(np.argmax(x0[columns]))]
        after = group.levels[int(np.argmax(x[columns]))]
        moved = float(np.abs(delta[columns]).sum())
        shown = "no change" if moved <= min_change else (f"{before} → {after}" if before != after else f"weights moved by {moved:.3g}")
        rows.append(dict(feature=group.name, source=before, counterfactual=after, change=shown, size=size(columns),
                         kind="categorical"))
    table = pd.DataFrame(rows).sort_values("size", ascending=False, kind="stable")
    if choices is not None:
        table.insert(len(table.columns) - 1, "may change", [choices.get(name, "") for name in table.feature])
    return table.rename(columns={"size": size_column(unit)}).reset_index(drop=True)


def table_csv(table: pd.DataFrame) -> bytes:
    """The change table exactly as the page shows it, one row per original column."""
    return table.to_csv(index=False).encode()


# -- the stakeholder's words -------------------------------------------------------------------------
def plain_name(column: str, dataset_name: str = "") -> tuple[str, str]:
    """A column name in words, and its unit: ("duration", "months") for duration_months, ("credit
    amount", "DM") for German credit's credit_amount, ("alcohol", "") for a name without one."""
    unit = KNOWN_UNITS.get(dataset_name, {}).get(column, "")
    words = column.replace("_", " ").split()
    if not unit and len(words) > 1 and words[-1].lower() in SUFFIX_UNITS:
        unit = SUFFIX_UNITS[words[-1].lower()]
        words = words[:-1]
    return " ".join(words) or column, unit


def _amount(value: float, unit: str) -> str:
    return f"{_format(value)} {unit}".rstrip()


def change_words(column: str, before: float, after: float, dataset_name: str = "") -> str:
    """'reduce the credit amount from 5,951 DM to 4,200 DM', 'shorten the duration from 48 to 36 months'."""
    name, unit = plain_name(column, dataset_name)
    span = any(word in name.lower() for word in _TIME_SPANS)
    if after < before:
        verb = "shorten" if span else "reduce"
    else:
        verb = "extend" if span else "increase"
    first = _amount(before, unit) if unit in CURRENCIES else _format(before)
    return f"{verb} the {name} from {first} to {_amount(after, unit)}"


def level_words(group: str, before: str, after: str) -> str:
    """"change the savings from '... < 100 DM' to '500 <= ... < 1000 DM'"."""
    return f"change the {plain_name(group)[0]} from '{before}' to '{after}'"


def recourse_changes(dataset: Dataset, x0: np.ndarray, x: np.ndarray, changed: Sequence) -> list[str]:
    """One plain phrase per changed feature (an int: a numeric column; a tuple: a one-hot group), in the
    order given."""
    encoding = dataset.encoding
    if dataset.kind == "image" or encoding is None:
        return []
    numeric = {index: name for name, index in encoding.numeric}
    groups = {tuple(group.columns): group for group in encoding.categorical}
    phrases = []
    for item in changed:
        if isinstance(item, tuple):
            group = groups[tuple(item)]
            columns = list(group.columns)
            phrases.append(level_words(group.name, group.levels[int(np.argmax(x0[columns]))],
                                       group.levels[int(np.argmax(x[columns]))]))
        else:
            phrases.append(change_words(numeric[int(item)], float(x0[item]), float(x[item]), dataset.name))
    return phrases


def _joined(parts: Sequence[str]) -> str:
    if len(parts) <= 2:
        return " and ".join(parts)
    return "; ".join(parts[:-1]) + "; and " + parts[-1]


def recourse_reading(dataset: Dataset, x0: np.ndarray, x: np.ndarray, changed: Sequence, target_name: str,
                     p_before: str, p_after: str, predicted_name: str) -> str:
    """The answer in a stakeholder's words: 'To be classified as good (p from 0.3786 to 0.5000), reduce
    the credit amount from 5,951 DM to 3,675 DM; and shorten the duration from 48 to 39 months.'

    Says "to be classified as" only when the target is predicted at ``x``. Probabilities come formatted
    as the page shows them."""
    reached = predicted_name == target_name
    odds = f"p({target_name}) from {p_before} to {p_after}"
    if not changed:
        return (f"Already classified as {target_name} ({odds}): nothing needs to change." if reached else
                f"Nothing changes; the model predicts {predicted_name} ({odds}).")
    if dataset.kind == "image" or dataset.encoding is None:
        count = f"{len(changed)} pixel{'s' if len(changed) != 1 else ''}" if dataset.kind == "image" else \
            f"{len(changed)} feature{'s' if len(changed) != 1 else ''}"
        return (f"Changing {count} makes the model predict {predicted_name} ({odds})." if reached else
                f"Changing {count} moves towards {target_name} ({odds}); the model still predicts {predicted_name}.")
    phrases = _joined(recourse_changes(dataset, x0, x, changed))
    if reached:
        return f"To be classified as {target_name} ({odds}): {phrases}."
    return f"Moving towards {target_name} ({odds}): {phrases}; the model still predicts {predicted_name} there."


def held_fixed(dataset: Dataset, choices: Mapping[str, str], changed_names: Sequence[str]) -> str:
    """What the answer did not touch: the locked features by name, then how many others stayed as they are
    although they could have changed."""
    names = dataset.name
    locked = [plain_name(feature, names)[0] for feature, choice in choices.items() if choice == "locked"]
    free = [feature for feature, choice in choices.items() if choice != "locked" and feature not in changed_names]
    parts = []
    if locked:
        parts.append(f"held fixed (locked): {', '.join(locked)}")
    if free:
        shown = ", ".join(plain_name(feature, names)[0] for feature in free[:8]) + (" …" if len(free) > 8 else "")
        parts.append(f"unchanged although free to change: {shown}")
    if not parts:
        return ""
    sentence = "; ".join(parts) + "."
    return sentence[0].upper() + sentence[1:]


def reading(table: pd.DataFrame, target_name: str, target_proba: str, predicted_name: str,
            max_items: int = 3, min_share: float = 0.01) -> str:
    """'To be classified as good (p = 0.7100), duration_months would fall from 48 to 31 and ...'.

    Says "to be classified as" only when the target is the class predicted at the counterfactual;
    otherwise that the change moves towards it while the model still predicts another class.
    ``target_proba`` is the probability already formatted as the page shows it. Rows whose share
    of the distance is below ``min_share`` of the largest are not named.
    """
    size = next(column for column in table.columns if column.startswith("change ("))
    sizes = table[size].to_numpy(dtype=float)
    largest = float(sizes.max()) if len(sizes) else 0.0
    moved_all = table[sizes > max(min_share * largest, 1e-12)]
    moved = moved_all.head(max_items)
    reached = predicted_name == target_name
    if moved.empty:
        if reached:
            return f"The instance is already classified as {target_name} (p = {target_proba}); nothing needs to change."
        return (f"Nothing changes noticeably: the model still predicts {predicted_name} "
                f"(p({target_name}) = {target_proba}).")
    parts = []
    for row in moved.itertuples():
        if row.kind == "numeric":
            direction = "rise" if row.change.startswith("+") else "fall"
            parts.append(f"{row.feature} would {direction} from {row.source} to {row.counterfactual}")
        elif row.source != row.counterfactual:
            parts.append(f"{row.feature} would change from '{row.source}' to '{row.counterfactual}'")
        else:
            parts.append(f"{row.feature} would lean away from '{row.source}'")
    rest = len(moved_all) - len(moved)
    tail = f", plus {rest} smaller change{'s' if rest > 1 else ''}" if rest > 0 else ""
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    if reached:
        return f"To be classified as {target_name} (p = {target_proba}), {joined}{tail}."
    return (f"Moving towards {target_name} (p = {target_proba}), {joined}{tail}; the model still predicts "
            f"{predicted_name} there.")
