"""A small run of the solver benchmark, so the script cannot rot (no timing is asserted)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_benchmark_smoke_run(tmp_path):
    import solver_benchmark

    frame, summary, goals = solver_benchmark.main(["--smoke", "--out", str(tmp_path)])
    assert (tmp_path / "smoke_summary.csv").exists() and (tmp_path / "smoke_runs.csv").exists()
    newton = frame[frame.method.str.startswith("newton")]
    assert newton.success.all() and (newton.grad_norm < 1e-8).all()
    assert set(frame.problem.unique()) == {summary.problem.unique()[0], summary.problem.unique()[1],
                                           summary.problem.unique()[2]}
    equal = goals[goals.target.str.startswith("K=2 closed form equals Newton")]
    assert bool(equal.met.iloc[0])


def test_questions_overhead_smoke_run(tmp_path):
    import questions_overhead

    frame, summary = questions_overhead.main(["--smoke", "--out", str(tmp_path)])
    assert (tmp_path / "smoke_questions_overhead.csv").exists()
    assert len(summary) == len(questions_overhead.MODELS) and (frame["warm invert us"] > 0).all()
