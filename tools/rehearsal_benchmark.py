"""The rehearsal's figures: the whole path on the bundled sample with 8 trials, step by step, against
its 30-second target on a 2-core machine, and the tuned model against plain XGBoost on the same split.

    python -m tools.rehearsal_benchmark [--runs 3] [--trials 8]

Each run is a fresh stack (program under mocks, emulators, functions, tuning, deployment, a prediction);
the figures are the median of the runs, so one slow start does not decide them.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from tools.mockrun import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR / "functions"))

from rehearsal.flows import RehearsalOptions, run_rehearsal
from rehearsal.report import best_trial

TARGET_SECONDS = 30.0
STEPS = ("start-up", "stack", "transform", "tuning", "deployment", "first prediction")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args(argv)
    runs = [
        run_rehearsal(RehearsalOptions(trials=args.trials), progress=lambda _: None) for _ in range(args.runs)
    ]
    print(f"rehearsal of the bundled sample, {args.trials} trials, median of {args.runs} runs")
    for step in STEPS:
        print(f"  {step:<18} {statistics.median(r.timings[step] for r in runs):6.2f} s")
    whole = statistics.median(r.timings["whole rehearsal"] for r in runs)
    share = whole / TARGET_SECONDS
    print(f"  {'whole rehearsal':<18} {whole:6.2f} s   ({share:.2f}x the {TARGET_SECONDS:.0f} s target)")
    last = runs[-1]
    first = last.first
    best = best_trial(first.trials, first.objective_direction)
    assert best is not None and best.objective is not None and last.baseline is not None
    better = (
        best.objective >= last.baseline
        if first.objective_direction == "Maximize"
        else best.objective <= last.baseline
    )
    print(
        f"  tuned {first.objective_metric} {best.objective:.4f} vs plain XGBoost {last.baseline:.4f} "
        f"(xgboost {last.xgboost_version}): {'matches or beats' if better else 'WORSE THAN'} the baseline"
    )
    return 0 if better else 1


if __name__ == "__main__":
    sys.exit(main())
