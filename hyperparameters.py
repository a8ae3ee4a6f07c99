"""What a stack may tune of SageMaker's built-in XGBoost, and on which metric.

The tunable hyperparameters, their recommended ranges and the metrics a tuning job can optimise come from
the SageMaker developer guide, "Tune an XGBoost model" (tunable hyperparameters; metrics computed by the
algorithm). A stack overrides the default ranges with the `tuningRanges` config object:

    {"eta": {"min": 0.05, "max": 0.3, "scaling": "Logarithmic"},   # a continuous or integer range
     "max_depth": {"values": [4, 6, 8]},                             # a categorical range
     "alpha": null}                                                  # not tuned

`parse_ranges` reports every problem naming the parameter, and `parameter_ranges` renders the result in the
`ParameterRanges` shape of CreateHyperParameterTuningJob.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CONTINUOUS = "Continuous"
INTEGER = "Integer"
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
NUM_ROUND = "num_round"
# SageMaker developer guide, "Hyperparameter tuning quotas": a grid search may have at most 750 distinct
# combinations of categorical values.
GRID_MAX_COMBINATIONS = 750
# ParameterRanges: at most 30 values in a categorical range (SageMaker API reference, CategoricalParameter
# Range, Values).
MAX_CATEGORICAL_VALUES = 30


@dataclass(frozen=True)
class Tunable:
    """A hyperparameter the built-in algorithm lets a tuning job search, with XGBoost's own bounds."""

    kind: str
    lowest: float
    highest: float


# Kind and XGBoost's valid interval of each tunable hyperparameter (XGBoost parameter docs: eta, subsample
# and the colsample ratios are in (0, 1]; penalties and weights are non-negative). The kinds are the
# built-in container's own declarations, the same in every version: all Continuous but max_depth and
# num_round (aws/sagemaker-xgboost-container, src/sagemaker_xgboost_container/algorithm_mode/
# hyperparameter_validation.py, e.g. 1.0-1 lines 117-169, release-3.0.5 lines 143-225). SageMaker sends an
# Integer range's values as integer strings, which the container parses with int().
TUNABLE: dict[str, Tunable] = {
    "alpha": Tunable(CONTINUOUS, 0, math.inf),
    "colsample_bylevel": Tunable(CONTINUOUS, 0, 1),
    "colsample_bynode": Tunable(CONTINUOUS, 0, 1),
    "colsample_bytree": Tunable(CONTINUOUS, 0, 1),
    "eta": Tunable(CONTINUOUS, 0, 1),
    "gamma": Tunable(CONTINUOUS, 0, math.inf),
    "lambda": Tunable(CONTINUOUS, 0, math.inf),
    # ContinuousHyperparameter(name="max_delta_step", ...): 1.0-1:src/sagemaker_xgboost_container/
    # algorithm_mode/hyperparameter_validation.py:145, release-3.0.5:(same path):183.
    "max_delta_step": Tunable(CONTINUOUS, 0, math.inf),
    "max_depth": Tunable(INTEGER, 0, math.inf),
    "min_child_weight": Tunable(CONTINUOUS, 0, math.inf),
    "num_round": Tunable(INTEGER, 1, math.inf),
    "subsample": Tunable(CONTINUOUS, 0, 1),
}
# Parameters whose lower bound XGBoost excludes (a rate or a share of 0 would train nothing).
_OPEN_BELOW = frozenset({"eta", "subsample", "colsample_bylevel", "colsample_bynode", "colsample_bytree"})


@dataclass(frozen=True)
class Range:
    """One tuned hyperparameter: a numeric interval, or a list of values to choose from."""

    name: str
    minimum: float | None = None
    maximum: float | None = None
    scaling: str = "Auto"
    values: tuple[str, ...] = ()

    @property
    def categorical(self) -> bool:
        return bool(self.values)


DEFAULT_RANGES: dict[str, Range] = {
    r.name: r
    for r in (
        Range("eta", 0.01, 0.5, "Logarithmic"),
        Range("min_child_weight", 1, 10),
        Range("subsample", 0.5, 1, "Linear"),
        Range("colsample_bytree", 0.5, 1, "Linear"),
        Range("alpha", 0, 2),
        Range("lambda", 0, 2),
        Range("max_depth", 3, 10),
        Range("num_round", 50, 500),
    )
}


@dataclass(frozen=True)
class Metric:
    """A metric the algorithm computes on the validation channel, and which way is better."""

    name: str
    direction: str

    @property
    def eval_metric(self) -> str:
        """The `eval_metric` hyperparameter that makes the algorithm compute it."""
        return self.name.removeprefix("validation:")


# Metrics a tuning job may optimise for each problem type ("Tune an XGBoost model", metrics table); the
# first of each is the default.
METRICS_BY_PROBLEM: dict[str, tuple[Metric, ...]] = {
    "binary": (
        Metric("validation:auc", "Maximize"),
        Metric("validation:logloss", "Minimize"),
        Metric("validation:error", "Minimize"),
        Metric("validation:f1", "Maximize"),
        Metric("validation:accuracy", "Maximize"),
    ),
    "multiclass": (
        Metric("validation:mlogloss", "Minimize"),
        Metric("validation:merror", "Minimize"),
        Metric("validation:accuracy", "Maximize"),
    ),
    "regression": (
        Metric("validation:rmse", "Minimize"),
        Metric("validation:mae", "Minimize"),
        Metric("validation:mse", "Minimize"),
    ),
}
METRIC_NAMES = tuple(sorted({m.name for metrics in METRICS_BY_PROBLEM.values() for m in metrics}))


def metric_for(problem_type: str, name: str) -> Metric | None:
    """The metric `name` for `problem_type`, or None when it does not measure that kind of problem."""
    return next((m for m in METRICS_BY_PROBLEM.get(problem_type, ()) if m.name == name), None)


def metric_direction(name: str) -> str:
    """Which way `name` is better (Maximize or Minimize): the same for every problem type that lists it."""
    directions = {m.direction for metrics in METRICS_BY_PROBLEM.values() for m in metrics if m.name == name}
    if not directions:
        raise ValueError(f"{name!r} is not a metric the algorithm computes ({', '.join(METRIC_NAMES)})")
    if len(directions) > 1:
        raise ValueError(
            f"{name!r} is better {' or '.join(sorted(directions))} depending on the problem type"
        )
    return directions.pop()


class InvalidRanges(ValueError):
    """`tuningRanges` is not what the tuning job can search; the message names each bad parameter."""


def parse_ranges(text: str) -> dict[str, Range]:
    """The default ranges overridden by the config object `text`; raises `InvalidRanges`."""
    try:
        given = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRanges(f"not JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(given, dict):
        raise InvalidRanges("must be a JSON object of hyperparameter name -> range")
    ranges = dict(DEFAULT_RANGES)
    problems = []
    for name, spec in given.items():
        if name not in TUNABLE:
            problems.append(f"{name!r} is not a tunable XGBoost hyperparameter ({', '.join(TUNABLE)})")
        elif spec is None:
            ranges.pop(name, None)
        else:
            try:
                ranges[name] = _range(name, spec)
            except ValueError as error:
                problems.append(f"{name}: {error}")
    if not ranges and not problems:
        problems.append("leaves nothing to tune")
    if problems:
        raise InvalidRanges("; ".join(problems))
    return ranges


def _range(name: str, spec: Any) -> Range:
    tunable = TUNABLE[name]
    if not isinstance(spec, dict):
        raise ValueError('must be {"min": .., "max": ..[, "scaling": ..]} or {"values": [..]}')
    unknown = set(spec) - {"min", "max", "scaling", "values"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    if "values" in spec:
        if set(spec) != {"values"}:
            raise ValueError("takes either values or min/max, not both")
        values = spec["values"]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_CATEGORICAL_VALUES:
            raise ValueError(f"values must be a list of 1 to {MAX_CATEGORICAL_VALUES} numbers")
        for value in values:
            _check_value(name, tunable, value)
        return Range(name, values=tuple(_number_text(v) for v in values))
    if "min" not in spec or "max" not in spec:
        raise ValueError("needs both min and max")
    low, high = spec["min"], spec["max"]
    _check_value(name, tunable, low)
    _check_value(name, tunable, high)
    if low >= high:
        raise ValueError(f"min {low} must be below max {high}")
    scaling = spec.get("scaling", "Auto")
    if scaling not in SCALING_TYPES:
        raise ValueError(f"scaling {scaling!r} must be one of {', '.join(SCALING_TYPES)}")
    # Scaling rules of the SageMaker developer guide, "Define hyperparameter ranges": logarithmic needs
    # positive values; reverse logarithmic only continuous values in [0, 1).
    if scaling == "Logarithmic" and low <= 0:
        raise ValueError("Logarithmic scaling needs min > 0")
    if scaling == "ReverseLogarithmic" and (tunable.kind != CONTINUOUS or high >= 1):
        raise ValueError("ReverseLogarithmic scaling needs a continuous range with max < 1")
    return Range(name, float(low), float(high), scaling)


def _check_value(name: str, tunable: Tunable, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number")
    if tunable.kind == INTEGER and value != int(value):
        raise ValueError(f"{value} is not a whole number")
    below = value <= tunable.lowest if name in _OPEN_BELOW else value < tunable.lowest
    if below or value > tunable.highest:
        opening = "(" if name in _OPEN_BELOW else "["
        raise ValueError(f"{value} is outside XGBoost's {opening}{tunable.lowest:g}, {tunable.highest:g}]")


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(float(value))


def grid_combinations(ranges: Mapping[str, Range]) -> int:
    """Training jobs of a grid search: every combination of the categorical values."""
    return math.prod(len(r.values) for r in ranges.values() if r.categorical)


def parameter_ranges(ranges: dict[str, Range]) -> dict[str, list[dict[str, Any]]]:
    """`ranges` in CreateHyperParameterTuningJob's ParameterRanges shape (all bounds are strings)."""
    rendered: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(ranges.values(), key=lambda r: r.name):
        if r.categorical:
            rendered.setdefault("CategoricalParameterRanges", []).append(
                {"Name": r.name, "Values": list(r.values)}
            )
            continue
        kind = TUNABLE[r.name].kind
        assert r.minimum is not None and r.maximum is not None
        rendered.setdefault(f"{kind}ParameterRanges", []).append(
            {
                "Name": r.name,
                "MinValue": _number_text(r.minimum) if kind == INTEGER else repr(r.minimum),
                "MaxValue": _number_text(r.maximum) if kind == INTEGER else repr(r.maximum),
                "ScalingType": r.scaling,
            }
        )
    return rendered
