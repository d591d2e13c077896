"""The Audit page's own run, timed through Streamlit's AppTest (the page as a user runs it: the button, the
progress bar, every answer checked, the tables and charts rendered).

For German credit (1,000 rows; target good; the default what-may-change table, observed ranges) and MNIST-5k
(5,000 rows; each row's runner-up class; with and without the [0, 1] pixel range), each question (smallest
flip, p >= 0.9, fixed lam = 0.1) is run ``--repeats`` times, the configurations interleaved (the machine is
shared: its speed drifts within seconds). Reported per configuration: the audit's own time as the page shows
it (solves + checks + tables, ``Audit.time_s``), the solves alone (``Audit.solve_s``), and the wall time of
the whole script run after the click (the audit plus rendering every element), best and median.

    python benchmarks/audit_page.py                 # 3 repeats (about two minutes)
    python benchmarks/audit_page.py --repeats 1     # one of each
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

TARGETS_S = {"german-credit": 2.0, "mnist-5k": 5.0}
QUESTIONS = (("flip", {}), ("probability", {"alpha": 0.9}), ("lam", {"log_lam": -1.0}))
CONFIGS = [("german-credit", True), ("mnist-5k", False), ("mnist-5k", True)]  # (dataset, ranges)


def page_for(dataset: str, ranges: bool, question: str, settings: dict) -> AppTest:
    """A fresh session on the Audit page with ``question`` chosen, ready to run."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params.update({"dataset": dataset, **({"px": "0"} if dataset == "mnist-5k" and not ranges else {})})
    at.run()
    at.switch_page("pages/audit.py").run()
    at.radio(key="_widget_audit_question").set_value(question).run()
    if "alpha" in settings:
        at.number_input(key="_widget_alpha").set_value(settings["alpha"]).run()
    if "log_lam" in settings:
        at.slider(key="_widget_audit_log_lam").set_value(settings["log_lam"]).run()
    assert not at.exception, at.exception
    return at


def run_once(at: AppTest) -> tuple[float, float, float]:
    start = time.perf_counter()
    next(b for b in at.button if b.key == "audit_run").click().run()
    wall = time.perf_counter() - start
    assert not at.exception, at.exception
    kept = at.session_state["audit"]
    return kept.time_s, kept.solve_s, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    records = []
    for repeat in range(args.repeats):
        for dataset, ranges in CONFIGS:
            for question, settings in QUESTIONS:
                at = page_for(dataset, ranges, question, settings)
                audit_s, solve_s, wall_s = run_once(at)
                records.append(dict(dataset=dataset, ranges=ranges, question=question, repeat=repeat,
                                    audit_s=audit_s, solve_s=solve_s, wall_s=wall_s))
                print(f"{dataset:14s} ranges={ranges!s:5s} {question:11s} audit {audit_s:6.2f} s  solves {solve_s:6.2f} s  "
                      f"script run {wall_s:6.2f} s", flush=True)
    frame = pd.DataFrame(records)
    summary = frame.groupby(["dataset", "ranges", "question"], sort=False).agg(
        audit_best=("audit_s", "min"), audit_median=("audit_s", "median"), solve_median=("solve_s", "median"),
        run_best=("wall_s", "min"), run_median=("wall_s", "median")).reset_index()
    summary["target_s"] = summary["dataset"].map(TARGETS_S)
    summary["within"] = summary["audit_median"] < summary["target_s"]
    print(f"\n{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d %H:%M %Z')}, "
          f"{args.repeats} repeats interleaved\n")
    print(summary.to_markdown(index=False, floatfmt=".2f"))
    out = ROOT / "benchmarks" / "results" / "audit_page.csv"
    frame.assign(measured=time.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(out, index=False)
    print(f"\nper run: {out.relative_to(ROOT)}; load average {np.round(__import__('os').getloadavg(), 1).tolist()}")


if __name__ == "__main__":
    main()
