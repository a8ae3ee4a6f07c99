"""The rehearsal's figures: the whole path on the bundled sample with 8 trials, step by step, against
its 30-second target on a 2-core machine, and the tuned model against plain XGBoost on the same split.

    python -m tools.rehearsal_benchmark [--runs 3] [--trials 8]

Each run is what `make rehearse` does, in a fresh Python process (imports, the program under mocks, the
emulators, the functions' cold starts, tuning, deployment, a prediction, teardown); the figures are the
median of the runs. The comparison with plain XGBoost (the tuning job's static hyperparameters, the
others at XGBoost's defaults) is given for every run: the split is the same in each (it is a function of
the rows), the trials are not.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass

TARGET_SECONDS = 30.0
STEPS = ("start-up", "stack", "transform", "tuning", "deployment", "first prediction", "whole rehearsal")


@dataclass(frozen=True)
class RunFigures:
    timings: dict[str, float]
    metric: str
    tuned: float
    plain: float
    maximize: bool

    @property
    def tuned_holds(self) -> bool:
        return self.tuned >= self.plain if self.maximize else self.tuned <= self.plain


def _one_run(trials: int) -> RunFigures:
    """In a fresh interpreter: the imports count towards start-up, as they do for `make rehearse`."""
    began = time.perf_counter()
    from tools.mockrun import PROJECT_DIR

    sys.path.insert(0, str(PROJECT_DIR / "functions"))
    from rehearsal.flows import RehearsalOptions, run_rehearsal
    from rehearsal.report import best_trial

    imports = time.perf_counter() - began
    result = run_rehearsal(RehearsalOptions(trials=trials), progress=lambda _: None)
    timings = dict(result.timings)
    timings["start-up"] += imports
    timings["whole rehearsal"] += imports
    first = result.first
    best = best_trial(first.trials, first.objective_direction)
    assert best is not None and best.objective is not None and result.baseline is not None
    return RunFigures(
        timings,
        str(first.objective_metric),
        best.objective,
        result.baseline,
        first.objective_direction == "Maximize",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    runs = []
    for _ in range(args.runs):
        with context.Pool(1) as pool:
            runs.append(pool.apply(_one_run, (args.trials,)))
    print(f"rehearsal of the bundled sample, {args.trials} trials, median of {args.runs} fresh processes")
    for step in STEPS:
        print(f"  {step:<18} {statistics.median(r.timings[step] for r in runs):6.2f} s")
    whole = statistics.median(r.timings["whole rehearsal"] for r in runs)
    print(f"  target: whole rehearsal under {TARGET_SECONDS:.0f} s: {whole / TARGET_SECONDS:.2f}x the target")
    for number, run in enumerate(runs, 1):
        verdict = "matches or beats" if run.tuned_holds else "below"
        print(f"  run {number}: tuned {run.metric} {run.tuned:.4f}, plain XGBoost {run.plain:.4f}: {verdict}")
    held = sum(r.tuned_holds for r in runs)
    print(f"  target: tuned matches or beats plain XGBoost on the same split: {held} of {len(runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
