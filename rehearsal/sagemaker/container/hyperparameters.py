"""A training job's hyperparameters as the container validates and converts them: declared in
algorithm_mode/hyperparameter_validation.py with the classes of sagemaker_algorithm_toolkit/
hyperparameter_validation.py (which a bare `hyperparameter_validation.py` cites here): `num_round`
required, types, ranges, objectives, eval_metric, aliases (learning_rate -> eta, ...), extraneous names.

Where the older images differ: 1.7-1 validates the same hyperparameters; 1.2-2 lacks reg:absoluteerror,
sampling_method, prob_buffer_row and use_dask_gpu_training and accepts single_precision_histogram.

Citations are into release-3.0.5 as the package docstring says.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rehearsal.sagemaker.container.errors import (
    AlgorithmError,
    ToolkitError,
    TrainingFailed,
    UserError,
    toolkit_name,
    traceback_name,
)
from rehearsal.sagemaker.container.metrics import XGB_MAXIMIZE_METRICS, XGB_MINIMIZE_METRICS


@dataclass(frozen=True)
class _Interval:
    """Interval (hyperparameter_validation.py:332-389): membership and its printed form."""

    min_open: float | None = None
    min_closed: float | None = None
    max_open: float | None = None
    max_closed: float | None = None

    def __contains__(self, value: Any) -> bool:
        return not (
            (self.min_open is not None and value <= self.min_open)
            or (self.min_closed is not None and value < self.min_closed)
            or (self.max_open is not None and value >= self.max_open)
            or (self.max_closed is not None and value > self.max_closed)
        )

    def __str__(self) -> str:
        if self.min_open is not None:
            text = f"({self.min_open}, "
        elif self.min_closed is not None:
            text = f"[{self.min_closed}, "
        else:
            text = "(-inf, "
        if self.max_open is not None:
            return text + f"{self.max_open})"
        if self.max_closed is not None:
            return text + f"{self.max_closed}]"
        return text + "+inf)"


class _RangeValidator:
    """`range_validator` (hyperparameter_validation.py:392-409): membership by a predicate."""

    def __init__(self, values: list[str], predicate: Callable[[list[str], Any], bool]) -> None:
        self.values = values
        self._predicate = predicate

    def __contains__(self, value: Any) -> bool:
        return self._predicate(self.values, value)

    def __str__(self) -> str:
        return str(self.values)


@dataclass(frozen=True)
class _Dependencies:
    """`dependencies_validator` (hyperparameter_validation.py:412-432)."""

    names: tuple[str, ...]
    check: Callable[[Any, dict[str, Any]], None]


class _Hyperparameter:
    """Hyperparameter (hyperparameter_validation.py:19-56): a FreeText value, checked against `range`."""

    def __init__(self, name: str, range_: Any, dependencies: _Dependencies | None = None) -> None:
        self.name = name
        self.range = range_
        self.dependencies = dependencies

    def parse(self, value: Any) -> Any:
        return value

    def validate_range(self, value: Any) -> None:
        if self.range is not None and value not in self.range:
            raise UserError(f"Hyperparameter {self.name}: {value} is not in {self.range}")


class _Integer(_Hyperparameter):
    def parse(self, value: Any) -> Any:
        return int(value)


class _Continuous(_Hyperparameter):
    def parse(self, value: Any) -> Any:
        return float(value)


class _Categorical(_Hyperparameter):
    pass


class _CommaSeparatedList(_Hyperparameter):
    def parse(self, value: Any) -> Any:
        return value.split(",")

    def validate_range(self, value: Any) -> None:
        if any(v not in self.range for v in value):
            raise UserError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")


class _Literal(_Hyperparameter):
    def parse(self, value: Any) -> Any:
        # The container evaluates the text with eval() (hyperparameter_validation.py:210); a literal
        # reader gives the same list or tuple for every well-formed value without running code.
        if isinstance(value, str):
            return ast.literal_eval(value)
        return value


class _NestedList(_Literal):
    def validate_range(self, value: Any) -> None:
        if any(element not in self.range for outer in value for element in outer):
            raise UserError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")


class _Tuple(_Literal):
    def validate_range(self, value: Any) -> None:
        if any(element not in self.range for element in value):
            raise UserError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")


class _Hyperparameters:
    """Hyperparameters (hyperparameter_validation.py:222-310)."""

    def __init__(self, *hyperparameters: _Hyperparameter) -> None:
        self.hyperparameters = {hp.name: hp for hp in hyperparameters}
        self.aliases: dict[str, str] = {}
        # Declared required, in declaration order (only num_round is; none has a default).
        self.required = ("num_round",)

    def declare_alias(self, key_name: str, alias_name: str) -> None:
        self.aliases[alias_name] = key_name

    def _sort_dependencies(self, names: Iterable[str]) -> list[str]:
        stack: list[str] = []
        visited = dict.fromkeys(names, False)

        def visit(name: str) -> None:
            visited[name] = True
            dependencies = self.hyperparameters[name].dependencies
            if dependencies is not None:
                for dependency in dependencies.names:
                    if dependency in visited and not visited[dependency]:
                        visit(dependency)
            stack.insert(0, name)

        for name in list(visited):
            if not visited[name]:
                visit(name)
        return stack

    def validate(self, given: Mapping[str, Any]) -> dict[str, Any]:
        # 0. aliases, 1. required, 2. parse, 3. ranges, 4. dependencies (lines 260-310).
        user = {self.aliases.get(name, name): value for name, value in given.items()}
        for name in self.hyperparameters:
            if name not in user and name in self.required:
                raise UserError(f"Missing required hyperparameter: {name}")
        converted: dict[str, Any] = {}
        for name, value in user.items():
            spec = self.hyperparameters.get(name)
            if spec is None:
                raise UserError(f"Extraneous hyperparameter found: {name}")
            try:
                converted[name] = spec.parse(value)
            except ValueError as error:
                raise UserError(f"Hyperparameter {name}: could not parse value", caused_by=error) from error
        for name, value in converted.items():
            try:
                self.hyperparameters[name].validate_range(value)
            except UserError:
                raise
            except Exception as error:
                raise AlgorithmError(
                    f"Hyperparameter {name}: unexpected failure when validating {value}", caused_by=error
                ) from error
        ordered = self._sort_dependencies(converted)
        validated: dict[str, Any] = {}
        while ordered:
            name = ordered.pop()
            value = converted[name]
            dependencies = self.hyperparameters[name].dependencies
            if dependencies is not None:
                known = {d: validated[d] for d in dependencies.names if d in validated}
                dependencies.check(value, known)
            validated[name] = value
        return validated


def _tree_method_in(categories: list[str], value: Any) -> bool:
    return value in categories


def _check_updater(value: Any, dependencies: dict[str, Any]) -> None:
    # algorithm_mode/hyperparameter_validation.py:26-76, messages as the container writes them.
    tree_plugins = [
        "grow_colmaker",
        "distcol",
        "grow_histmaker",
        "grow_skmaker",
        "sync",
        "refresh",
        "prune",
        "grow_quantile_histmaker",
    ]
    tree_build_plugins = [
        "grow_colmaker",
        "distcol",
        "grow_histmaker",
        "grow_colmaker",
        "grow_quantile_histmaker",
    ]
    linear_plugins = ["shotgun", "coord_descent"]
    if dependencies.get("booster") == "gblinear":
        if not (len(value) == 1 and value[0] in linear_plugins):
            # The container formats a generator into this message (line 53), so it reads garbled; so it
            # does here.
            options = ", ".join("'{0}'".format(u for u in linear_plugins))  # noqa: UP030, UP032
            raise UserError(f"Linear updater should be one of these options: {options}.")
    elif dependencies.get("process_type") == "update":
        if not all(x in ("refresh", "prune") for x in value):
            raise UserError("process_type 'update' can only be used with updater 'refresh' and 'prune'")
    else:
        if not all(x in tree_plugins for x in value):
            raise UserError(
                "Tree updater should be selected from these options: 'grow_colmaker', 'distcol', "
                "'grow_histmaker', 'grow_skmaker', 'grow_quantile_histmaker', 'sync', 'refresh', 'prune', "
                "'shortgun', 'coord_descent'."
            )
        if sum(1 for x in value if x in tree_build_plugins) > 1:
            raise UserError(
                "Only one tree grow plugin can be selected. Choose one from thefollowing: 'grow_colmaker', "
                "'distcol', 'grow_histmaker', 'grow_skmaker'"
            )


def _check_objective(value: Any, dependencies: dict[str, Any]) -> None:
    # Lines 82-90.
    num_class = dependencies.get("num_class")
    if value in ("multi:softmax", "multi:softprob") and num_class is None:
        raise UserError("Require input for parameter 'num_class' for multi-classification")
    if value is None and num_class is not None:
        raise UserError(
            "Do not need to setup parameter 'num_class' for learning task other than multi-classification."
        )


def _eval_metric_in(supported: list[str], metric: Any) -> bool:
    # Lines 92-111.
    if "<function" in metric:
        raise UserError(f"User defined evaluation metric {metric} is not supported yet.")
    if "@" in metric:
        name, threshold = metric.split("@")[0].strip(), metric.split("@")[1].strip()
        if name not in ("error", "ndcg", "map"):
            raise UserError(
                f"Metric '{metric}' is not supported. Parameter 'eval_metric' with customized threshold "
                "should be one of these options: 'error', 'ndcg', 'map'."
            )
        try:
            float(threshold)
        except ValueError:
            raise UserError(f"Threshold value 't' in '{name}@t' expects float input.") from None
        return True
    return metric in supported


def _check_eval_metric(value: Any, dependencies: dict[str, Any]) -> None:
    # Lines 113-121. Without an objective `dependencies["objective"]` is a KeyError in the container too:
    # the job fails with "KeyError: 'objective'".
    objective = dependencies["objective"]
    if "auc" in value and not any(objective.startswith(kind) for kind in ("binary:", "rank:")):
        raise UserError("Metric 'auc' can only be applied for classification and ranking problems.")
    if "aft-nloglik" in value and objective not in ("survival:aft",):
        raise UserError("Metric 'aft-nloglik' can only be applied for 'survival:aft' objective.")


def _check_monotone_constraints(value: Any, dependencies: dict[str, Any]) -> None:
    if value is not None and dependencies.get("tree_method") not in ("exact", "hist"):
        raise UserError(
            "monotone_constraints can be used only when the tree_method parameter is set to either 'exact' "
            "or 'hist'."
        )


def _check_interaction_constraints(value: Any, dependencies: dict[str, Any]) -> None:
    if value is not None and dependencies.get("tree_method") not in ("exact", "hist", "approx"):
        raise UserError(
            "interaction_constraints can be used only when the tree_method parameter is set to either "
            "'exact', 'hist' or 'approx'."
        )


# The objective metric names the container accepts in _tuning_objective_metric: its metric definitions
# (algorithm_mode/metrics.py:21-42), maximised ones first.
TUNING_METRIC_NAMES = tuple(f"validation:{m}" for m in XGB_MAXIMIZE_METRICS + XGB_MINIMIZE_METRICS)


def _container_hyperparameters() -> _Hyperparameters:
    """algorithm_mode/hyperparameter_validation.py:141-346, every declaration in its order."""
    unit = _Interval(min_closed=0, max_closed=1)
    share = _Interval(min_open=0, max_closed=1)
    non_negative = _Interval(min_closed=0)
    updaters = [
        "grow_colmaker",
        "distcol",
        "grow_histmaker",
        "grow_skmaker",
        "sync",
        "refresh",
        "prune",
        "grow_colmaker",
        "distcol",
        "grow_histmaker",
        "grow_colmaker",
        "shotgun",
        "coord_descent",
        "refresh",
        "prune",
    ]
    objectives = [
        "aft_loss_distribution",
        "binary:logistic",
        "binary:logitraw",
        "binary:hinge",
        "count:poisson",
        "multi:softmax",
        "multi:softprob",
        "rank:pairwise",
        "rank:ndcg",
        "rank:map",
        "reg:linear",
        "reg:squarederror",
        "reg:logistic",
        "reg:gamma",
        "reg:pseudohubererror",
        "reg:squaredlogerror",
        "reg:absoluteerror",
        "reg:tweedie",
        "survival:aft",
        "survival:cox",
    ]
    hyperparameters = _Hyperparameters(
        _Integer("num_round", _Interval(min_closed=1)),
        _Integer("csv_weights", _Interval(min_closed=0, max_closed=1)),
        _Integer("early_stopping_rounds", _Interval(min_closed=1)),
        _Categorical("booster", ["gbtree", "gblinear", "dart"]),
        _Integer("verbosity", _Interval(min_closed=0, max_closed=3)),
        _Integer("nthread", _Interval(min_closed=1)),
        _Continuous("eta", unit),
        _Continuous("gamma", non_negative),
        _Integer("max_depth", non_negative),
        _Continuous("min_child_weight", non_negative),
        _Continuous("max_delta_step", non_negative),
        _Continuous("subsample", share),
        _Continuous("colsample_bytree", share),
        _Continuous("colsample_bylevel", share),
        _Continuous("colsample_bynode", share),
        _Continuous("lambda", non_negative),
        _Continuous("alpha", non_negative),
        _Categorical(
            "tree_method", _RangeValidator(["auto", "exact", "approx", "hist", "gpu_hist"], _tree_method_in)
        ),
        _Continuous("sketch_eps", _Interval(min_open=0, max_open=1)),
        _Continuous("scale_pos_weight", _Interval(min_open=0)),
        _CommaSeparatedList("updater", updaters, _Dependencies(("booster", "process_type"), _check_updater)),
        _Categorical("dsplit", ["row", "col"]),
        _Integer("refresh_leaf", _Interval(min_closed=0, max_closed=1)),
        _Categorical("process_type", ["default", "update"]),
        _Categorical("grow_policy", ["depthwise", "lossguide"]),
        _Integer("max_leaves", non_negative),
        _Integer("max_bin", non_negative),
        _Categorical(
            "predictor", _RangeValidator(["auto", "cpu_predictor", "gpu_predictor"], _tree_method_in)
        ),
        _Tuple(
            "monotone_constraints", [-1, 0, 1], _Dependencies(("tree_method",), _check_monotone_constraints)
        ),
        _NestedList(
            "interaction_constraints",
            _Interval(min_closed=1),
            _Dependencies(("tree_method",), _check_interaction_constraints),
        ),
        _Categorical("sample_type", ["uniform", "weighted"]),
        _Categorical("normalize_type", ["tree", "forest"]),
        _Continuous("rate_drop", unit),
        _Integer("one_drop", _Interval(min_closed=0, max_closed=1)),
        _Continuous("skip_drop", unit),
        _Continuous("lambda_bias", unit),
        _Continuous("tweedie_variance_power", _Interval(min_open=1, max_open=2)),
        _Categorical("objective", objectives, _Dependencies(("num_class",), _check_objective)),
        _Integer("num_class", _Interval(min_closed=2)),
        _Continuous("base_score", non_negative),
        _Integer("_kfold", _Interval(min_closed=2)),
        _Integer("_num_cv_round", _Interval(min_closed=1)),
        _Categorical("_tuning_objective_metric", list(TUNING_METRIC_NAMES)),
        _CommaSeparatedList(
            "eval_metric",
            _RangeValidator(list(XGB_MAXIMIZE_METRICS + XGB_MINIMIZE_METRICS), _eval_metric_in),
            _Dependencies(("objective",), _check_eval_metric),
        ),
        _Integer("seed", _Interval(min_open=-(2**31), max_open=2**31 - 1)),
        _Integer("num_parallel_tree", _Interval(min_closed=1)),
        _Categorical("save_model_on_termination", ["true", "false"]),
        _Categorical("aft_loss_distribution", ["normal", "logistic", "extreme"]),
        _Continuous("aft_loss_distribution_scale", non_negative),
        _Categorical("deterministic_histogram", ["true", "false"]),
        _Categorical("sampling_method", ["uniform", "gradient_based"]),
        _Integer("prob_buffer_row", _Interval(min_open=1.0)),
        _Categorical("use_dask_gpu_training", ["true", "false"]),
    )
    hyperparameters.declare_alias("eta", "learning_rate")
    hyperparameters.declare_alias("gamma", "min_split_loss")
    hyperparameters.declare_alias("lambda", "reg_lambda")
    hyperparameters.declare_alias("alpha", "reg_alpha")
    return hyperparameters


def validate_hyperparameters(hyperparameters: Mapping[str, str]) -> dict[str, Any]:
    """The job's hyperparameters as the container validates and converts them (train.py:143-146);
    raises TrainingFailed with the container's message."""
    try:
        validated = _container_hyperparameters().validate(hyperparameters)
    except ToolkitError as error:
        raise TrainingFailed(toolkit_name(error), error.message) from error
    except Exception as error:
        raise TrainingFailed(traceback_name(type(error)), str(error)) from error
    if validated.get("updater"):
        validated["updater"] = ",".join(validated["updater"])
    return validated
