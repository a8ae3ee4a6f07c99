"""The local tuning search: the training jobs a tuning job of the stack starts, their values, the jobs it
stops early, when it stops starting them, and the job it calls best."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from rehearsal.sagemaker.search import InvalidTuningConfig, Trial, TuningSearch
from tests.support.stacks import synth


def config(
    *ranges: dict[str, Any],
    strategy: str = "Random",
    jobs: int | None = 50,
    direction: str = "Maximize",
    **extra: Any,
) -> dict[str, Any]:
    """A HyperParameterTuningJobConfig of `ranges` (each with a "kind": Continuous, Integer, Categorical)."""
    parameter_ranges: dict[str, list[dict[str, Any]]] = {}
    for spec in ranges:
        kind = spec["kind"]
        parameter_ranges.setdefault(f"{kind}ParameterRanges", []).append(
            {k: v for k, v in spec.items() if k != "kind"}
        )
    limits: dict[str, Any] = {"MaxParallelTrainingJobs": 2}
    if jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = jobs
    return {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": direction, "MetricName": "validation:auc"},
        "ResourceLimits": limits,
        "ParameterRanges": parameter_ranges,
        **extra,
    }


def continuous(name: str, low: str, high: str, scaling: str = "Auto") -> dict[str, Any]:
    return {"kind": "Continuous", "Name": name, "MinValue": low, "MaxValue": high, "ScalingType": scaling}


def integer(name: str, low: str, high: str, scaling: str = "Auto") -> dict[str, Any]:
    return {"kind": "Integer", "Name": name, "MinValue": low, "MaxValue": high, "ScalingType": scaling}


def categorical(name: str, *values: str) -> dict[str, Any]:
    return {"kind": "Categorical", "Name": name, "Values": list(values)}


def all_trials(search: TuningSearch) -> list[Trial]:
    trials = []
    while (trial := search.ask()) is not None:
        trials.append(trial)
        search.tell(trial, 0.5)
    return trials


def values(search: TuningSearch, name: str) -> list[float]:
    return [float(t.hyperparameters[name]) for t in all_trials(search)]


@pytest.fixture(scope="module")
def dev_request() -> dict[str, Any]:
    environment = synth("dev").named("tune-function").inputs["environment"]["variables"]
    request: dict[str, Any] = json.loads(environment["TUNING_REQUEST_TEMPLATE"])
    # The tune function adds the objective of the dataset's problem type.
    request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] = {
        "Type": "Maximize",
        "MetricName": "validation:auc",
    }
    return request


def test_the_dev_stacks_tuning_job_starts_its_job_limit_with_every_value_in_its_range(
    dev_request: dict[str, Any],
) -> None:
    tuning = dev_request["HyperParameterTuningJobConfig"]
    search = TuningSearch(
        tuning, static_hyperparameters=dev_request["TrainingJobDefinition"]["StaticHyperParameters"]
    )
    trials = all_trials(search)

    assert len(trials) == tuning["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    ranges = tuning["ParameterRanges"]
    for trial in trials:
        assert set(trial.hyperparameters) == {
            r["Name"] for kind in ("Continuous", "Integer") for r in ranges[f"{kind}ParameterRanges"]
        }
        for spec in ranges["ContinuousParameterRanges"]:
            value = float(trial.hyperparameters[spec["Name"]])
            assert float(spec["MinValue"]) <= value <= float(spec["MaxValue"])
        for spec in ranges["IntegerParameterRanges"]:
            text = trial.hyperparameters[spec["Name"]]
            assert text == str(int(text)), "integers are passed as integer strings"
            assert int(spec["MinValue"]) <= int(text) <= int(spec["MaxValue"])
    assert len({json.dumps(t.hyperparameters, sort_keys=True) for t in trials}) == len(trials)


# --- scaling ---------------------------------------------------------------------------------------


def share(found: list[float], test: Callable[[float], bool]) -> float:
    return sum(1 for v in found if test(v)) / len(found)


@pytest.mark.parametrize("kind", [continuous, integer])
def test_logarithmic_scaling_spreads_values_evenly_over_orders_of_magnitude(kind: Any) -> None:
    found = values(TuningSearch(config(kind("x", "1", "1000", "Logarithmic"), jobs=600)), "x")
    assert all(1 <= v <= 1000 for v in found)
    # A third of a log-uniform [1, 1000] lies below 10; a linear one would put 1% there.
    assert 0.25 < share(found, lambda v: v < 10) < 0.42


def test_reverse_logarithmic_scaling_crowds_values_towards_1() -> None:
    found = values(TuningSearch(config(continuous("x", "0", "0.999", "ReverseLogarithmic"), jobs=600)), "x")
    assert all(0 <= v <= 0.999 for v in found)
    # 1 - x is log-uniform over [0.001, 1]: a third of the values lie above 0.99.
    assert 0.25 < share(found, lambda v: v > 0.99) < 0.42


@pytest.mark.parametrize("scaling", ["Linear", "Auto"])
def test_linear_and_auto_scaling_spread_values_evenly(scaling: str) -> None:
    found = values(TuningSearch(config(continuous("x", "0.001", "1", scaling), jobs=600)), "x")
    assert all(0.001 <= v <= 1 for v in found)
    assert share(found, lambda v: v < 0.01) < 0.03
    assert 0.4 < share(found, lambda v: v < 0.5) < 0.6


def test_categorical_values_are_passed_as_listed() -> None:
    found = {
        t.hyperparameters["booster"]
        for t in all_trials(TuningSearch(config(categorical("booster", "gbtree", "dart"))))
    }
    assert found == {"gbtree", "dart"}


@pytest.mark.parametrize("strategy", ["Bayesian", "Random", "Hyperband"])
def test_each_strategy_keeps_to_the_ranges(strategy: str) -> None:
    extra = {"StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 10}}}
    search = TuningSearch(
        config(
            continuous("eta", "0.01", "0.5", "Logarithmic"),
            integer("max_depth", "3", "10"),
            categorical("booster", "gbtree", "dart"),
            strategy=strategy,
            jobs=30,
            **(extra if strategy == "Hyperband" else {}),
        )
    )
    trials = []
    while (trial := search.ask()) is not None:
        trials.append(trial)
        # A landscape the model-based strategies can learn from: higher eta is better.
        search.tell(trial, float(trial.hyperparameters["eta"]))
    assert len(trials) == 30
    for trial in trials:
        assert 0.01 <= float(trial.hyperparameters["eta"]) <= 0.5
        assert 3 <= int(trial.hyperparameters["max_depth"]) <= 10
        assert trial.hyperparameters["booster"] in ("gbtree", "dart")


def test_grid_search_runs_every_combination_once_then_no_more() -> None:
    search = TuningSearch(
        config(
            categorical("max_depth", "3", "6"),
            categorical("eta", "0.1", "0.2", "0.3"),
            strategy="Grid",
            jobs=None,
        )
    )
    trials = [search.ask() for _ in range(6)]  # all started before any finishes
    assert search.ask() is None
    combinations = {
        (t.hyperparameters["max_depth"], t.hyperparameters["eta"]) for t in trials if t is not None
    }
    assert combinations == {(d, e) for d in ("3", "6") for e in ("0.1", "0.2", "0.3")}
    # Telling the last grid point's result is no error: Optuna's grid sampler would stop the study there.
    for number, trial in enumerate(trials):
        assert trial is not None
        search.tell(trial, 0.5 + number / 100)
    best = search.best()
    assert best is not None and best[1] == 0.55


def test_the_same_random_seed_asks_for_the_same_jobs() -> None:
    ranges = (continuous("eta", "0.01", "0.5"), integer("max_depth", "3", "10"))

    def run(**extra: Any) -> list[dict[str, str]]:
        return [t.hyperparameters for t in all_trials(TuningSearch(config(*ranges, jobs=5, **extra)))]

    assert run(RandomSeed=7) == run(RandomSeed=7)
    assert run(RandomSeed=7) != run(RandomSeed=8)


# --- what SageMaker refuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_config", "refusal"),
    [
        (
            config(continuous("eta", "0", "1", "Logarithmic")),
            "Logarithmic scaling works only for ranges of values above 0",
        ),
        (
            config(integer("depth", "0", "10", "Logarithmic")),
            "Logarithmic scaling works only for ranges of values above 0",
        ),
        (config(continuous("subsample", "0.5", "1", "ReverseLogarithmic")), "within 0 <= x < 1.0"),
        (
            config(integer("depth", "0", "0", "ReverseLogarithmic")),
            "ReverseLogarithmic scaling works only for continuous",
        ),
        (config(continuous("eta", "0.5", "0.1")), "MinValue 0.5 must not exceed MaxValue 0.1"),
        (config(integer("depth", "3.5", "10")), "must be integers"),
        (config(continuous("eta", "0.1", "0.5"), strategy="Grid", jobs=None), "categorical parameters only"),
        (config(categorical("depth", "3", "6"), strategy="Grid", jobs=3), "must equal the grid's 2"),
        (config(continuous("eta", "0.1", "0.5"), jobs=None), "MaxNumberOfTrainingJobs is required"),
        (
            config(
                continuous("eta", "0.1", "0.5"), strategy="Hyperband", TrainingJobEarlyStoppingType="Auto"
            ),
            "must be Off with the Hyperband strategy",
        ),
        (config(continuous("eta", "0.1", "0.5"), strategy="Hyperband"), "MaxResource is required"),
        (
            config(
                continuous("eta", "0.1", "0.5"),
                StrategyConfig={"HyperbandStrategyConfig": {"MaxResource": 9}},
            ),
            "StrategyConfig is only for the Hyperband strategy",
        ),
        (
            {**config(continuous("eta", "0.1", "0.5")), "HyperParameterTuningJobObjective": None},
            "Objective is required",
        ),
    ],
)
def test_configurations_sagemaker_refuses_are_refused(request_config: dict[str, Any], refusal: str) -> None:
    with pytest.raises(InvalidTuningConfig, match=refusal.replace("(", r"\(").replace(".", r"\.")):
        TuningSearch(request_config)


def test_hyperband_takes_max_resource_from_an_epochs_static_hyperparameter() -> None:
    search = TuningSearch(
        config(continuous("eta", "0.1", "0.5"), strategy="Hyperband"), static_hyperparameters={"epochs": "30"}
    )
    assert (search.min_resource, search.max_resource) == (1, 30)


# --- early stopping --------------------------------------------------------------------------------


def finish(search: TuningSearch, curve: list[float]) -> Trial:
    """Run one job to its end with the objective `curve`, round by round."""
    trial = search.ask()
    assert trial is not None
    for round_, value in enumerate(curve, start=1):
        assert search.report(trial, round_, value)
    search.tell(trial, curve[-1])
    return trial


def test_auto_early_stopping_stops_a_job_worse_than_the_median_of_earlier_jobs_running_averages() -> None:
    search = TuningSearch(config(continuous("eta", "0.1", "0.5"), TrainingJobEarlyStoppingType="Auto"))
    running = search.ask()
    assert running is not None
    assert search.report(running, 1, 0.1), "no completed job yet: nothing to compare with"
    for curve in ([0.80, 0.82], [0.84, 0.86], [0.88, 0.90]):
        finish(search, curve)

    better = search.ask()
    assert better is not None
    assert search.report(better, 1, 0.85), "above the median 0.84 of the first rounds"
    worse = search.ask()
    assert worse is not None
    assert not search.report(worse, 1, 0.83), "below the median 0.84: stopped"
    # Round 2: running averages 0.81, 0.85, 0.89, median 0.85, below the jobs' own round-2 median 0.86.
    assert search.report(better, 2, 0.855), "better than the median running average, if not the median value"
    assert not search.report(running, 2, 0.84)


def test_a_minimised_objective_stops_jobs_above_the_median() -> None:
    search = TuningSearch(
        config(continuous("eta", "0.1", "0.5"), TrainingJobEarlyStoppingType="Auto", direction="Minimize")
    )
    for curve in ([0.5], [0.4], [0.3]):
        finish(search, curve)
    low, high = search.ask(), search.ask()
    assert low is not None and high is not None
    assert search.report(low, 1, 0.35)
    assert not search.report(high, 1, 0.45)


def test_without_auto_early_stopping_no_job_is_stopped() -> None:
    search = TuningSearch(config(continuous("eta", "0.1", "0.5")))
    for curve in ([0.8, 0.9], [0.85, 0.95]):
        finish(search, curve)
    trial = search.ask()
    assert trial is not None
    assert search.report(trial, 1, 0.01) and search.report(trial, 2, 0.01)


def test_a_job_is_not_stopped_at_its_last_round() -> None:
    search = TuningSearch(
        config(continuous("eta", "0.1", "0.5"), TrainingJobEarlyStoppingType="Auto"),
        static_hyperparameters={"num_round": "2"},
    )
    finish(search, [0.9, 0.95])
    trial = search.ask()
    assert trial is not None
    assert search.report(trial, 2, 0.1), "the job has printed its last round and completes"


def test_hyperband_stops_jobs_between_its_min_and_max_resource() -> None:
    hyperband = {"HyperbandStrategyConfig": {"MinResource": 3, "MaxResource": 27}}
    search = TuningSearch(
        config(continuous("eta", "0.01", "0.5"), strategy="Hyperband", jobs=40, StrategyConfig=hyperband),
        static_hyperparameters={"num_round": "40"},
    )
    stopped_at: dict[int, int] = {}
    quality: dict[int, float] = {}
    while (trial := search.ask()) is not None:
        quality[trial.number] = value = float(trial.hyperparameters["eta"])
        for round_ in range(1, 41):
            if not search.report(trial, round_, value):
                stopped_at[trial.number] = round_
                break
        search.tell(trial, value)

    assert len(stopped_at) == 40, "every job is stopped, at MaxResource if not before"
    assert all(3 <= r <= 27 for r in stopped_at.values()), stopped_at
    early = [n for n, r in stopped_at.items() if r < 27]
    assert early, "Hyperband stops some jobs before MaxResource"
    kept = [n for n, r in stopped_at.items() if r == 27]
    assert sum(quality[n] for n in early) / len(early) < sum(quality[n] for n in kept) / len(kept)


# --- limits and completion -------------------------------------------------------------------------


def test_no_more_jobs_start_than_max_number_of_training_jobs_even_in_parallel() -> None:
    search = TuningSearch(config(continuous("eta", "0.1", "0.5"), jobs=5))
    started: list[Trial] = []

    def worker() -> None:
        while (trial := search.ask()) is not None:
            started.append(trial)
            search.tell(trial, 0.5)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t.number for t in started) == [0, 1, 2, 3, 4]


def test_reaching_the_target_objective_value_starts_no_more_jobs() -> None:
    search = TuningSearch(
        config(
            continuous("eta", "0.1", "0.5"), TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 0.9}
        )
    )
    first = search.ask()
    assert first is not None
    search.tell(first, 0.89)
    second = search.ask()
    assert second is not None
    search.tell(second, 0.91)
    assert search.target_reached and search.ask() is None


def test_jobs_that_do_not_improve_the_best_by_one_percent_end_the_search() -> None:
    criteria = {"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 2}}
    search = TuningSearch(config(continuous("eta", "0.1", "0.5"), TuningJobCompletionCriteria=criteria))
    for value, not_improving in ((0.80, 0), (0.805, 1), (0.82, 0), (0.821, 1)):
        trial = search.ask()
        assert trial is not None
        search.tell(trial, value)
        assert search.jobs_not_improving == not_improving
    trial = search.ask()
    assert trial is not None
    search.tell(trial, 0.5)
    assert search.ask() is None


@pytest.mark.parametrize(("direction", "best"), [("Maximize", 0.9), ("Minimize", 0.2)])
def test_the_best_job_follows_the_objectives_direction(direction: str, best: float) -> None:
    search = TuningSearch(
        config(continuous("eta", "0.1", "0.5"), direction=direction, TrainingJobEarlyStoppingType="Auto")
    )
    assert search.best() is None
    outcome: dict[int, float | None] = {}
    for value in (0.5, 0.9, None, 0.2, 0.7):
        trial = search.ask()
        assert trial is not None
        search.tell(trial, value)
        outcome[trial.number] = value
    found = search.best()
    assert found is not None
    assert found[1] == best and outcome[found[0].number] == best
    assert search.objective_metric == "validation:auc" and search.direction == direction


def test_a_stopped_job_can_be_the_best_and_a_failed_one_never_is() -> None:
    search = TuningSearch(config(continuous("eta", "0.1", "0.5"), TrainingJobEarlyStoppingType="Auto"))
    finish(search, [0.6, 0.7])
    stopped = search.ask()
    assert stopped is not None
    assert not search.report(stopped, 1, 0.5)
    search.tell(stopped, 0.95)
    failed = search.ask()
    assert failed is not None
    search.tell(failed, None)
    assert search.best() == (stopped, 0.95)


def test_reports_for_a_job_that_is_not_running_are_refused() -> None:
    search = TuningSearch(config(continuous("eta", "0.1", "0.5")))
    trial = finish(search, [0.5])
    with pytest.raises(ValueError, match="not running"):
        search.report(trial, 2, 0.6)
    with pytest.raises(ValueError, match="not running"):
        search.tell(trial, 0.6)
    assert search.best() == (trial, 0.5)
