"""Counterfactuals in the user's terms: a table of changes and a one-sentence reading (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from datasets import Dataset


def _format(value: float) -> str:
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def size_column(unit: str) -> str:
    """The change table's column of each row's share of the distance."""
    return f"change ({unit})"


def change_table(dataset: Dataset, x0: np.ndarray, x: np.ndarray, cost: np.ndarray, unit: str,
                 min_change: float = 1e-9) -> pd.DataFrame:
    """One row per original column: value at the source, at the counterfactual, and the change.

    Numeric columns are compared in their own units; a one-hot group shows its strongest level before
    and after. The size column is each row's part of the problem's distance,
    ``sqrt(sum_{j in row} cost_j (x_j - x0_j)^2)``, so the root of the sum of its squares is the
    distance shown in the metrics; rows are sorted by it.
    """
    cost = np.asarray(cost, dtype=float)
    delta = np.asarray(x, dtype=float) - np.asarray(x0, dtype=float)
    rows = []
    encoding = dataset.encoding
    numeric = encoding.numeric if encoding is not None else tuple((n, i) for i, n in enumerate(dataset.feature_names))
    for name, index in numeric:
        rows.append(dict(feature=name, source=_format(float(x0[index])), counterfactual=_format(float(x[index])),
                         change=f"{delta[index]:+.4g}", size=float(np.sqrt(cost[index]) * abs(delta[index])),
                         kind="numeric"))
    for group in (encoding.categorical if encoding is not None else ()):
        columns = list(group.columns)
        before = group.levels[int(np.argmax(x0[columns]))]
        after = group.levels[int(np.argmax(x[columns]))]
        moved = float(np.abs(delta[columns]).sum())
        shown = "no change" if moved <= min_change else (f"{before} → {after}" if before != after else f"weights moved by {moved:.3g}")
        rows.append(dict(feature=group.name, source=before, counterfactual=after, change=shown,
                         size=float(np.sqrt(np.sum(cost[columns] * delta[columns] ** 2))), kind="categorical"))
    table = pd.DataFrame(rows).sort_values("size", ascending=False, kind="stable")
    return table.rename(columns={"size": size_column(unit)}).reset_index(drop=True)


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
