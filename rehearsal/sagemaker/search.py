"""SageMaker's hyperparameter tuning search, done with Optuna: which training jobs a tuning job starts and
with which values, which it stops early, when it starts no more, and which job is best.

It reads the request's HyperParameterTuningJobConfig as CreateHyperParameterTuningJob receives it
(botocore sagemaker service model, shape HyperParameterTuningJobConfig) and follows the SageMaker developer
guide:

- Strategy ("Understand the hyperparameter tuning strategies"): `Bayesian` is Optuna's TPE sampler,
  `Random` its random sampler, `Grid` its grid sampler over every combination of the categorical values
  (grid search takes categorical ranges only; it runs one job per distinct combination, and a given
  MaxNumberOfTrainingJobs must equal their number), `Hyperband` Optuna's Hyperband pruner with
  HyperbandStrategyConfig's MinResource and MaxResource in boosting rounds (a job is not stopped before
  MinResource; once it reaches MaxResource it is), sampling with TPE.
- ParameterRanges ("Define hyperparameter ranges", API ContinuousParameterRange/IntegerParameterRange):
  Linear samples uniformly, Logarithmic uniformly in log space (ranges above 0 only), ReverseLogarithmic
  uniformly in log(1 - x) (continuous ranges within [0, 1) only), so values crowd towards 1. Auto is
  "SageMaker chooses the best scale", by a rule AWS does not publish; it is Linear here, the scale the
  built-in XGBoost declares for every tunable hyperparameter (aws/sagemaker-xgboost-container,
  release-3.0.5, algorithm_mode/hyperparameter_validation.py:147-229, `tunable_recommended_range`).
  Values are passed as SageMaker passes them, as strings: integers in decimal, continuous values in
  Python's shortest round-trip form, categorical values as listed.
- TrainingJobEarlyStoppingType ("Stop Training Jobs Early"): `Auto` stops a job when its objective at a
  round is worse than the median of the running averages, up to that round, of the objective of the
  previously completed jobs; `Off` (the default) never does.
- ResourceLimits.MaxNumberOfTrainingJobs; TuningJobCompletionCriteria: TargetObjectiveMetricValue (no job
  starts once one reached it) and BestObjectiveNotImproving (no job starts once that many jobs in a row
  failed to improve the best objective by 1% or more). ConvergenceDetected is AMT's own undisclosed
  test, not emulated. RandomSeed seeds the samplers.
- HyperParameterTuningJobObjective: its Type says whether the best job has the highest or lowest value.

SageMaker also refuses configurations at CreateHyperParameterTuningJob; the rules the guide states raise
InvalidTuningConfig here (the wording of AWS's ValidationException messages is not published).
MaxParallelTrainingJobs and MaxRuntimeInSeconds are the caller's to enforce: `max_parallel_jobs`,
`max_runtime_seconds`.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hyperparameters import GRID_MAX_COMBINATIONS

# Optuna logs every trial at INFO; the tuning job's own records say what happened.
optuna.logging.set_verbosity(optuna.logging.WARNING)

STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
# HyperbandStrategyConfig.MaxResource: without one, SageMaker looks for these static hyperparameters.
HYPERBAND_EPOCH_KEYS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")
# BestObjectiveNotImproving.MaxNumberOfTrainingJobsNotImproving: jobs that "failed to improve model
# performance by 1% or greater over prior training jobs".
IMPROVEMENT = 0.01
NUM_ROUND = "num_round"


class InvalidTuningConfig(ValueError):
    """A HyperParameterTuningJobConfig SageMaker refuses; the message says which part and why."""


class NotEmulated(NotImplementedError):
    """A part of the tuning configuration this module does not reproduce."""


@dataclass(frozen=True)
class Trial:
    """One training job of the tuning job: its number and the tuned hyperparameters' values."""

    number: int
    hyperparameters: dict[str, str]


@dataclass(frozen=True)
class ParameterRange:
    """One entry of ParameterRanges."""

    name: str
    kind: str  # Continuous, Integer or Categorical
    minimum: float = 0.0
    maximum: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()

    def suggest(self, trial: optuna.Trial) -> str:
        """This range's value for `trial`, as SageMaker passes it."""
        if self.kind == "Categorical":
            return str(trial.suggest_categorical(self.name, list(self.values)))
        log = self.scaling == "Logarithmic"
        if self.kind == "Integer":
            return str(trial.suggest_int(self.name, int(self.minimum), int(self.maximum), log=log))
        if self.scaling == "ReverseLogarithmic":
            # Log-uniform in 1 - x: Optuna holds 1 - x, the job gets x.
            distance = trial.suggest_float(f"1-{self.name}", 1 - self.maximum, 1 - self.minimum, log=True)
            return repr(min(max(1 - distance, self.minimum), self.maximum))
        return repr(trial.suggest_float(self.name, self.minimum, self.maximum, log=log))


def parameter_ranges(ranges: Mapping[str, Any]) -> list[ParameterRange]:
    """ParameterRanges as the tuning job searches them; raises InvalidTuningConfig."""
    if ranges.get("AutoParameters"):
        raise NotEmulated("AutoParameters (Autotune) are not emulated")
    parsed = []
    for spec in ranges.get("CategoricalParameterRanges", []):
        values = tuple(spec["Values"])
        if not values:
            raise InvalidTuningConfig(f"categorical range {spec['Name']} has no values")
        parsed.append(ParameterRange(spec["Name"], "Categorical", values=values))
    for kind in ("Continuous", "Integer"):
        for spec in ranges.get(f"{kind}ParameterRanges", []):
            parsed.append(_numeric_range(kind, spec))
    names = [r.name for r in parsed]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InvalidTuningConfig(f"hyperparameters given more than one range: {', '.join(duplicated)}")
    if not parsed:
        raise InvalidTuningConfig("ParameterRanges has no range to search")
    return parsed


def _numeric_range(kind: str, spec: Mapping[str, Any]) -> ParameterRange:
    name = spec["Name"]
    scaling = spec.get("ScalingType", "Auto")
    parse = int if kind == "Integer" else float
    try:
        low, high = parse(spec["MinValue"]), parse(spec["MaxValue"])
    except ValueError:
        raise InvalidTuningConfig(
            f"{kind.lower()} range {name}: MinValue {spec['MinValue']!r} and MaxValue {spec['MaxValue']!r} "
            f"must be {'integers' if kind == 'Integer' else 'numbers'}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise InvalidTuningConfig(
            f"{kind.lower()} range {name}: MinValue {low} must not exceed MaxValue {high}"
        )
    if scaling not in SCALING_TYPES:
        raise InvalidTuningConfig(
            f"{kind.lower()} range {name}: ScalingType {scaling!r} is not one of {SCALING_TYPES}"
        )
    # API reference, ContinuousParameterRange/IntegerParameterRange ScalingType.
    if scaling == "Logarithmic" and low <= 0:
        raise InvalidTuningConfig(
            f"{kind.lower()} range {name}: Logarithmic scaling works only for ranges of values above 0"
        )
    if scaling == "ReverseLogarithmic" and (kind == "Integer" or low < 0 or high >= 1):
        raise InvalidTuningConfig(
            f"{kind.lower()} range {name}: ReverseLogarithmic scaling works only for continuous ranges "
            "within 0 <= x < 1.0"
        )
    return ParameterRange(name, kind, float(low), float(high), "Linear" if scaling == "Auto" else scaling)


class RunningAverageMedianRule(optuna.pruners.BasePruner):
    """SageMaker's Auto early stopping ("Stop Training Jobs Early", How Early Stopping Works): after each
    round, compute each previously completed job's running average of the objective up to that round and
    the median of those averages; stop the job if its objective at the round is worse.

    Optuna's MedianPruner compares with the others' values at the round, not their running averages,
    hence this rule of its own. Only completed jobs that reached the round take part (AWS names no warm-up
    and no minimum number of jobs): with none, nothing is stopped.
    """

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        value = trial.intermediate_values[step]
        averages = []
        for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if step not in other.intermediate_values:
                continue
            upto = [v for s, v in other.intermediate_values.items() if s <= step]
            averages.append(sum(upto) / len(upto))
        if not averages:
            return False
        median = statistics.median(averages)
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return bool(value < median)
        return bool(value > median)


@dataclass(frozen=True)
class _Completion:
    target: float | None
    not_improving: int | None


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, driven by ask and tell: it stops its study once the grid is used up
    (optuna/samplers/_grid.py `after_trial`), which only `Study.optimize` allows and a told study raises
    for. Here `ask` itself ends the search when no grid point is left."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


class TuningSearch:
    """The search of one tuning job. `ask` for the next training job, `report` its objective after each
    round, `tell` its final objective (None: the job failed), `best` for the best job so far.

    `static_hyperparameters` are the TrainingJobDefinition's: SageMaker reads Hyperband's MaxResource from
    their epochs keys when StrategyConfig does not give it, and `report` reads the job's num_round from
    them (or from the trial) so that it does not stop a job at its last round: SageMaker decides from the
    metrics it has read, and a job that has printed its last round saves its model and completes before a
    stop can reach it. The methods are safe to call from several threads.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        seed: int = 0,
        static_hyperparameters: Mapping[str, str] | None = None,
    ) -> None:
        self._static = dict(static_hyperparameters or {})
        self.strategy: str = config.get("Strategy", "")
        if self.strategy not in STRATEGIES:
            raise InvalidTuningConfig(f"Strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        objective = config.get("HyperParameterTuningJobObjective")
        if not objective:
            raise InvalidTuningConfig(
                "HyperParameterTuningJobObjective is required for the built-in algorithm"
            )
        self.objective_metric: str = objective["MetricName"]
        self.direction: str = objective["Type"]
        if self.direction not in ("Maximize", "Minimize"):
            raise InvalidTuningConfig(f"objective Type {self.direction!r} is not Maximize or Minimize")
        self.ranges = parameter_ranges(config.get("ParameterRanges", {}))
        limits = config["ResourceLimits"]
        self.max_parallel_jobs: int = limits["MaxParallelTrainingJobs"]
        self.max_runtime_seconds: int | None = limits.get("MaxRuntimeInSeconds")
        self.early_stopping: str = config.get("TrainingJobEarlyStoppingType", "Off")
        if self.early_stopping not in ("Off", "Auto"):
            raise InvalidTuningConfig(
                f"TrainingJobEarlyStoppingType {self.early_stopping!r} is not Off or Auto"
            )
        self.max_jobs = self._max_jobs(limits.get("MaxNumberOfTrainingJobs"))
        self.min_resource, self.max_resource = self._hyperband(config.get("StrategyConfig"))
        self._completion = self._completion_criteria(config.get("TuningJobCompletionCriteria") or {})
        seed = int(config.get("RandomSeed", seed))

        self._study = optuna.create_study(
            direction="maximize" if self.direction == "Maximize" else "minimize",
            sampler=self._sampler(seed),
            pruner=self._pruner(),
        )
        self._lock = threading.Lock()
        self._running: dict[int, optuna.Trial] = {}
        self._stopped: set[int] = set()
        self._results: list[tuple[Trial, float]] = []
        self._started = 0
        self._best_so_far: float | None = None
        self.jobs_not_improving = 0
        self.target_reached = False

    def _max_jobs(self, given: int | None) -> int:
        if self.strategy == "Grid":
            numeric = sorted(r.name for r in self.ranges if r.kind != "Categorical")
            if numeric:
                raise InvalidTuningConfig(
                    f"the Grid strategy supports categorical parameters only, not {', '.join(numeric)}"
                )
            combinations = math.prod(len(r.values) for r in self.ranges)
            if combinations > GRID_MAX_COMBINATIONS:
                raise InvalidTuningConfig(
                    f"a grid of {combinations} combinations exceeds the {GRID_MAX_COMBINATIONS} training "
                    "jobs of a grid search"
                )
            if given is not None and given != combinations:
                raise InvalidTuningConfig(
                    f"MaxNumberOfTrainingJobs {given} must equal the grid's {combinations} distinct "
                    "categorical combinations"
                )
            return combinations
        if given is None:
            raise InvalidTuningConfig(
                f"ResourceLimits.MaxNumberOfTrainingJobs is required with {self.strategy}"
            )
        return int(given)

    def _hyperband(self, strategy_config: Mapping[str, Any] | None) -> tuple[int, int]:
        if self.strategy != "Hyperband":
            if strategy_config:
                raise InvalidTuningConfig("StrategyConfig is only for the Hyperband strategy")
            return 0, 0
        if self.early_stopping != "Off":
            raise InvalidTuningConfig("TrainingJobEarlyStoppingType must be Off with the Hyperband strategy")
        hyperband = (strategy_config or {}).get("HyperbandStrategyConfig", {})
        maximum = hyperband.get("MaxResource")
        if maximum is None:
            inferred = [self._static[k] for k in HYPERBAND_EPOCH_KEYS if k in self._static]
            if not inferred:
                raise InvalidTuningConfig(
                    "HyperbandStrategyConfig.MaxResource is required when no static hyperparameter "
                    f"({', '.join(HYPERBAND_EPOCH_KEYS)}) gives it"
                )
            maximum = inferred[0]
        minimum = int(hyperband.get("MinResource", 1))
        if not 1 <= minimum <= int(maximum):
            raise InvalidTuningConfig(f"MinResource {minimum} must be between 1 and MaxResource {maximum}")
        return minimum, int(maximum)

    @staticmethod
    def _completion_criteria(criteria: Mapping[str, Any]) -> _Completion:
        if criteria.get("ConvergenceDetected", {}).get("CompleteOnConvergence") == "Enabled":
            raise NotEmulated("TuningJobCompletionCriteria.ConvergenceDetected is not emulated")
        not_improving = criteria.get("BestObjectiveNotImproving", {}).get(
            "MaxNumberOfTrainingJobsNotImproving"
        )
        target = criteria.get("TargetObjectiveMetricValue")
        return _Completion(
            None if target is None else float(target), None if not_improving is None else int(not_improving)
        )

    def _sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        if self.strategy == "Grid":
            return _AskTellGridSampler({r.name: list(r.values) for r in self.ranges}, seed=seed)
        if self.strategy == "Random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def _pruner(self) -> optuna.pruners.BasePruner:
        if self.strategy == "Hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=self.min_resource, max_resource=self.max_resource
            )
        if self.early_stopping == "Auto":
            return RunningAverageMedianRule()
        return optuna.pruners.NopPruner()

    @property
    def maximize(self) -> bool:
        return self.direction == "Maximize"

    def ask(self) -> Trial | None:
        """The next training job to start, or None once no more may start: MaxNumberOfTrainingJobs (a
        grid's combinations) started, or a completion criterion met."""
        with self._lock:
            if self._started >= self.max_jobs or self._complete():
                return None
            trial = self._study.ask()
            hyperparameters = {r.name: r.suggest(trial) for r in self.ranges}
            self._running[trial.number] = trial
            self._started += 1
            return Trial(trial.number, hyperparameters)

    def _complete(self) -> bool:
        limit = self._completion.not_improving
        return self.target_reached or (limit is not None and self.jobs_not_improving >= limit)

    def report(self, trial: Trial, round: int, value: float) -> bool:
        """The job's objective after boosting round `round` (counted from 1); False: stop the job now."""
        with self._lock:
            running = self._running.get(trial.number)
            if running is None:
                raise ValueError(f"trial {trial.number} is not running")
            if math.isnan(value):
                return True
            running.report(value, round)
            if round >= self._last_round(trial):
                return True
            stop = (self.strategy == "Hyperband" and round >= self.max_resource) or running.should_prune()
            if stop:
                self._stopped.add(trial.number)
            return not stop

    def _last_round(self, trial: Trial) -> float:
        rounds = trial.hyperparameters.get(NUM_ROUND, self._static.get(NUM_ROUND))
        return math.inf if rounds is None else int(rounds)

    def tell(self, trial: Trial, value: float | None) -> None:
        """The job's final objective (the last value it emitted), or None when it failed."""
        with self._lock:
            running = self._running.pop(trial.number, None)
            if running is None:
                raise ValueError(f"trial {trial.number} is not running")
            if value is None or math.isnan(value):
                self._study.tell(running, state=TrialState.FAIL)
                return
            if trial.number in self._stopped:
                # A stopped job keeps the objective it reached; Optuna learns from its rounds.
                self._study.tell(running, state=TrialState.PRUNED)
            else:
                self._study.tell(running, value)
            self._results.append((trial, value))
            self._account(value)

    def _account(self, value: float) -> None:
        target = self._completion.target
        if target is not None and (value >= target if self.maximize else value <= target):
            self.target_reached = True
        best = self._best_so_far
        if best is None:
            self._best_so_far = value
            return
        gain = value - best if self.maximize else best - value
        if gain > 0 and gain >= IMPROVEMENT * abs(best):
            self.jobs_not_improving = 0
        else:
            self.jobs_not_improving += 1
        if gain > 0:
            self._best_so_far = value

    def best(self) -> tuple[Trial, float] | None:
        """The job with the best final objective so far (stopped jobs included), the first of equals."""
        with self._lock:
            return _best(self._results, maximize=self.maximize)


def _best(results: Sequence[tuple[Trial, float]], *, maximize: bool) -> tuple[Trial, float] | None:
    best: tuple[Trial, float] | None = None
    for trial, value in results:
        if best is None or (value > best[1] if maximize else value < best[1]):
            best = (trial, value)
    return best
