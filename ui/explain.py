"""Counterfactuals in the user's terms: a table of changes and a one-sentence reading (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from datasets import Dataset


def _format(value: float) -> str:
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def change_table(dataset: Dataset, x0: np.ndarray, x: np.ndarray, min_change: float = 1e-9) -> pd.DataFrame:
    """One row per original column: value at the source, at the counterfactual, and the change.

    Numeric columns are compared in their own units; a one-hot group shows its strongest level before
    and after. Rows are sorted by the size of the change in standard deviations of the data.
    """
    scale = dataset.X.std(axis=0)
    scale[scale == 0] = 1.0
    rows = []
    encoding = dataset.encoding
    numeric = encoding.numeric if encoding is not None else tuple((n, i) for i, n in enumerate(dataset.feature_names))
    for name, index in numeric:
        change = float(x[index] - x0[index])
        rows.append(dict(feature=name, source=_format(float(x0[index])), counterfactual=_format(float(x[index])),
                         change=f"{change:+.4g}", size=abs(change) / scale[index], kind="numeric"))
    for group in (encoding.categorical if encoding is not None else ()):
        columns = list(group.columns)
        before = group.levels[int(np.argmax(x0[columns]))]
        after = group.levels[int(np.argmax(x[columns]))]
        moved = float(np.abs(x[columns] - x0[columns]).sum())
        shown = "no change" if moved <= min_change else (f"{before} → {after}" if before != after else f"weights moved by {moved:.3g}")
        rows.append(dict(feature=group.name, source=before, counterfactual=after, change=shown,
                         size=float(np.max(np.abs(x[columns] - x0[columns]) / scale[columns])), kind="categorical"))
    table = pd.DataFrame(rows).sort_values("size", ascending=False, kind="stable")
    table["size"] = table["size"].round(4)
    return table.rename(columns={"size": "change (std)"}).reset_index(drop=True)


def reading(dataset: Dataset, x0: np.ndarray, x: np.ndarray, target_name: str, target_proba: float,
            max_items: int = 3, min_std: float = 0.01) -> str:
    """'To be classified as good (p = 0.71), duration_months would fall from 48 to 31 and ...'."""
    table = change_table(dataset, x0, x)
    moved = table[table["change (std)"] >= min_std].head(max_items)
    if moved.empty:
        return f"The instance is already classified as {target_name} with p = {target_proba:.2f}; nothing needs to change."
    parts = []
    for row in moved.itertuples():
        if row.kind == "numeric":
            direction = "rise" if row.change.startswith("+") else "fall"
            parts.append(f"{row.feature} would {direction} from {row.source} to {row.counterfactual}")
        elif row.source != row.counterfactual:
            parts.append(f"{row.feature} would change from '{row.source}' to '{row.counterfactual}'")
        else:
            parts.append(f"{row.feature} would lean away from '{row.source}'")
    rest = len(table[table["change (std)"] >= min_std]) - len(moved)
    tail = f", plus {rest} smaller change{'s' if rest > 1 else ''}" if rest > 0 else ""
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"To be classified as {target_name} (p = {target_proba:.2f}), {joined}{tail}."
