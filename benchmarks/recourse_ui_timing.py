"""What the recourse question costs on the Explore page, and what plausible-by-default ranges cost the slider:
German credit, the first 30 rows asked for their runner-up class, measured interleaved in one run.

- "ask": what the button does without Streamlit's cache: the arguments from the what-may-change table (age
  locked, duration and credit amount may only fall, savings and checking status may change level, whole
  numbers and observed ranges from the data), ``recourse(max_changes=2, n_alternatives=3)`` and
  ``recourse_front(max_changes=5)``.
- "slider": one warm-started ``invert`` at lambda = 0.1 with the default table's observed ranges against the
  same solve with no ranges (the table before this change), as a ratio.

    python benchmarks/recourse_ui_timing.py [--rows 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datasets  # noqa: E402
from solver import invert, recourse, recourse_front  # noqa: E402
from training import TrainingParams, train  # noqa: E402
from ui import constraints  # noqa: E402

CHOICES = {"age_years": constraints.LOCKED, "duration_months": constraints.FALL, "credit_amount": constraints.FALL,
           "savings": constraints.MAY_CHANGE, "checking_status": constraints.MAY_CHANGE}


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args(argv)
    data = datasets.load_builtin("german-credit")
    model = train(data, TrainingParams.default_for(data.kind)).model
    table = constraints.default_table(data, True)
    for feature, choice in CHOICES.items():
        table.loc[table.feature == feature, "may change"] = choice
    settings = constraints.what_may_change(data, table, True)
    ranged = constraints.what_may_change(data, constraints.default_table(data, True), True).arguments
    unranged = dict(ranged, bounds=None)
    ask, answer, front, with_ranges, without_ranges, rows = [], [], [], [], [], []
    for row in range(args.rows):
        x0 = data.X[row]
        target = int(np.argsort(model.predict_proba(x0))[-2])
        start = time.perf_counter()
        what = constraints.for_instance(settings, x0)
        arguments, _ = constraints.recourse_arguments(data, what, "l2", x0)
        result = recourse(model, x0, target, max_changes=2, n_alternatives=3, time_limit=2.0, **arguments)
        middle = time.perf_counter()
        points = recourse_front(model, x0, target, max_changes=5, time_limit=2.0, **arguments)
        end = time.perf_counter()
        ask.append(end - start)
        answer.append(middle - start)
        front.append(end - middle)
        rows.append((result.success, result.optimal, result.n_changes, sum(p is not None for p in points)))
        for arguments, times in ((ranged, with_ranges), (unranged, without_ranges)):
            warm = invert(model, x0, target, 0.12, **arguments)
            start = time.perf_counter()
            invert(model, x0, target, 0.1, x_init=warm, **arguments)
            times.append(time.perf_counter() - start)
    ok = sum(s for s, _, _, _ in rows)
    optimal = sum(o for _, o, _, _ in rows)
    print(f"{args.rows} German-credit rows, runner-up class; {ok} answered, {optimal} certified optimal")
    print(f"ask (arguments + answer with 2 alternatives + front s=1..5): median {np.median(ask) * 1e3:.0f} ms, "
          f"max {np.max(ask) * 1e3:.0f} ms")
    print(f"  answer with alternatives: median {np.median(answer) * 1e3:.0f} ms; front: median "
          f"{np.median(front) * 1e3:.0f} ms")
    ratio = np.array(with_ranges) / np.array(without_ranges)
    print(f"slider solve with observed ranges: median {np.median(with_ranges) * 1e3:.2f} ms, without "
          f"{np.median(without_ranges) * 1e3:.2f} ms (median ratio {np.median(ratio):.1f})")
    return rows


if __name__ == "__main__":
    main()
