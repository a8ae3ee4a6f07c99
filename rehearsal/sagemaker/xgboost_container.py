"""What SageMaker's built-in XGBoost container does inside a training job and behind an endpoint, run in
this process with the installed xgboost.

The target is the image `sagemaker-xgboost:3.0-5` (aws/sagemaker-xgboost-container, tag release-3.0.5,
xgboost 3.0.5 per docker/3.0-5/base/Dockerfile.cpu:33, scikit-learn 1.5.2 per requirements.txt). Citations
`file:line` are into that tag's `src/sagemaker_xgboost_container/` unless they name another root;
`sagemaker-containers` is amazon-archives/sagemaker-containers at v2.8.6.post2 (requirements.txt), the
framework that runs the container's entry points.

Training (`train`) follows algorithm_mode/train.py `sagemaker_train` and `train_job`:

- the hyperparameters are validated as the container declares them (algorithm_mode/
  hyperparameter_validation.py with sagemaker_algorithm_toolkit/hyperparameter_validation.py): `num_round`
  required, types, ranges, objectives, eval_metric, aliases (learning_rate -> eta, ...), extraneous names;
- each channel directory is read as data_utils.py does: hidden files refused, the first line of every data
  file sniffed with csv.Sniffer, all files (to a depth of 3) symlinked into one directory and loaded with
  `DMatrix("<dir>?format=csv&label_column=0&delimiter=<d>")`; a header line is read as a data row (xgboost
  parses its words as missing values, label 0);
- xgboost trains `num_round` rounds on the watchlist `train`/`validation`, with eval_metric as given (or
  xgboost's default for the objective), the container's scikit-learn metrics (accuracy, f1, mse, rmse,
  mae, ...) passed as `custom_metric`, and `early_stopping_rounds` on the validation channel keeping the
  best iteration (callback.py:112-121, save_best);
- the metrics are those SageMaker reads from the log lines xgboost's EvaluationMonitor prints
  (`[3]\ttrain-auc:0.91234\tvalidation-auc:0.88000`), with the metric definitions of the built-in
  algorithm: `train:<m>` and `validation:<m>` for every metric the container knows, the value as printed
  (5 decimals);
- the model is saved as `/opt/ml/model/xgboost-model` (train.py:478-480) in xgboost 3.0.5's default
  format for a name without extension, UBJSON, and SageMaker uploads that directory as model.tar.gz.

Serving (`HostedModel`) follows algorithm_mode/serve.py `invocations` and serve_utils.py: text/csv and
text/libsvm bodies, the 204/415/400/406/500 answers with the container's messages, and JSON or CSV scores.

Where the older images differ in what is emulated here:

- 1.7-1 validates the same hyperparameters; 1.2-2 lacks reg:absoluteerror, sampling_method,
  prob_buffer_row and use_dask_gpu_training and accepts single_precision_histogram;

- 1.2-2 pickles the booster (train.py:327-329 on that branch) and lets xgboost 1.2's own
  `early_stopping_rounds` keep every tree (serving then predicts with `best_ntree_limit`); 1.3-1 to 1.7-1
  save xgboost's binary format (the default of `save_model` without an extension before xgboost 2.1);
- 1.2-2 to 1.7-1 hand the scikit-learn metrics to xgboost as `feval`, which receives margins, so binary
  accuracy/f1 threshold margins at 0 correctly; 3.0-5 passes them as `custom_metric` (train.py:372), which
  in xgboost 3 receives probabilities, so every binary prediction counts as positive.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import json
import os
import pickle
import re
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import xgboost
from scipy import stats  # type: ignore[import-untyped]
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
)

# constants/xgb_constants.py:14-51: the metrics the container knows, and which way each is better.
XGB_MAXIMIZE_METRICS = (
    "accuracy",
    "auc",
    "aucpr",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "map",
    "ndcg",
    "precision",
    "r2",
    "recall",
    "precision_macro",
    "precision_micro",
    "recall_macro",
    "recall_micro",
)
XGB_MINIMIZE_METRICS = (
    "aft-nloglik",
    "cox-nloglik",
    "error",
    "gamma-deviance",
    "gamma-nloglik",
    "interval-regression-accuracy",
    "logloss",
    "mae",
    "mape",
    "merror",
    "mlogloss",
    "mphe",
    "mse",
    "poisson-nloglik",
    "rmse",
    "rmsle",
    "tweedie-nloglik",
)
# xgb_constants.py:53-77: xgboost errors the container reports as the user's (UserError), not its own.
CUSTOMER_ERRORS = (
    "label must be in [0,1] for logistic regression",
    "label must be in [0, num_class)",
    "Target is multiclass but average='binary'",
    "feature_names mismatch",
    "Check failed: preds.size() == info.labels_.size()",
    "Check failed: !auc_error AUC: the dataset only contains pos or neg samples",
    "Check failed: base_score > 0.0f && base_score < 1.0f base_score must be in (0,1) for logistic loss",
    "Check failed: label_correct PoissonRegression: label must be nonnegative",
    "Check failed: label_correct TweedieRegression: label must be nonnegative",
    "Parameter reg_lambda should be greater equal to 0",
)
MODEL_NAME = "xgboost-model"  # xgb_constants.py:96

# Where the container sees what this module keeps in a temporary directory, so messages read as in AWS:
# SageMaker downloads channel <name> to /opt/ml/input/data/<name> and uploads /opt/ml/model; the
# container links the channel's files into one directory (data_utils.py:586) and runs Python 3.10 from
# /miniconda3 (docker/3.0-5/base/Dockerfile.cpu:30,138).
CONTAINER_CHANNEL_DIR = "/opt/ml/input/data"
CONTAINER_MODEL_DIR = "/opt/ml/model"
CONTAINER_INPUT_LINKS = "/tmp/sagemaker_xgboost_input_data"  # noqa: S108 - the container's own path
CONTAINER_SITE_PACKAGES = "/miniconda3/lib/python3.10/site-packages"
# DescribeTrainingJob FailureReason holds at most 1024 characters (botocore sagemaker service model,
# shape FailureReason).
FAILURE_REASON_LENGTH = 1024

CSV = "csv"
LIBSVM = "libsvm"
PARQUET = "parquet"
RECORDIO_PROTOBUF = "recordio-protobuf"
# data_utils.py:43-53, with the content types of sagemaker_containers/_content_types.py and
# constants/xgb_content_types.py.
VALID_CONTENT_TYPES = (
    CSV,
    LIBSVM,
    PARQUET,
    RECORDIO_PROTOBUF,
    "text/csv",
    "text/libsvm",
    "text/x-libsvm",
    "application/x-parquet",
    "application/x-recordio-protobuf",
)
MAX_FOLDER_DEPTH = 3  # data_utils.py:41


# --- the container's errors and the job's FailureReason ---------------------------------------------


class _ToolkitError(Exception):
    """sagemaker_algorithm_toolkit/exceptions.py:16-71: the message, with the cause's class appended."""

    kind: ClassVar[str] = "BaseToolkitError"

    def __init__(self, message: str | None = None, caused_by: BaseException | None = None) -> None:
        if message:
            text = message
        elif caused_by is not None:
            text = str(caused_by)
        else:
            text = "unknown error occurred"
        if caused_by is not None:
            text += f" (caused by {type(caused_by).__name__})"
        super().__init__(text)
        self.message = text


class _UserError(_ToolkitError):
    kind = "UserError"


class _AlgorithmError(_ToolkitError):
    kind = "AlgorithmError"


class NotEmulated(NotImplementedError):
    """A container feature this module does not reproduce (it never fakes one)."""


class TrainingFailed(Exception):
    """The training job failed; `str()` is the FailureReason SageMaker shows for it.

    The container's errors (UserError, AlgorithmError) are not sagemaker-containers' ClientError, so its
    trainer reports every one as `"framework error: \\n%s\\n%s" % (traceback.format_exc(), str(e))`
    (sagemaker-containers _trainer.py:113-116) and SageMaker prefixes `AlgorithmError: `: a bad
    hyperparameter reads "AlgorithmError: framework error: \\nTraceback (most recent call last): ...",
    as in aws/amazon-sagemaker-examples#1740 and #4555. The traceback's frames are elided here ("  ...");
    its last line and the message after it are the container's. The whole is cut at 1024 characters.

    `exception_type` is the exception's qualified class name as the traceback prints it, `message` the
    container's message.
    """

    def __init__(self, exception_type: str, message: str) -> None:
        self.exception_type = exception_type
        self.message = message
        last_line = f"{exception_type}: {message}" if message else exception_type
        reason = (
            "AlgorithmError: framework error: \nTraceback (most recent call last):\n  ...\n"
            f"{last_line}\n\n{message}"
        )
        super().__init__(reason[:FAILURE_REASON_LENGTH])


def _traceback_name(kind: type[BaseException]) -> str:
    """How a traceback's last line names the class: builtins bare, others with their module."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


# --- hyperparameters: sagemaker_algorithm_toolkit/hyperparameter_validation.py ---------------------


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
            raise _UserError(f"Hyperparameter {self.name}: {value} is not in {self.range}")


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
            raise _UserError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")


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
            raise _UserError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")


class _Tuple(_Literal):
    def validate_range(self, value: Any) -> None:
        if any(element not in self.range for element in value):
            raise _UserError(f"Hyperparameter {self.name}: value {value} not in range {self.range}")


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
                raise _UserError(f"Missing required hyperparameter: {name}")
        converted: dict[str, Any] = {}
        for name, value in user.items():
            spec = self.hyperparameters.get(name)
            if spec is None:
                raise _UserError(f"Extraneous hyperparameter found: {name}")
            try:
                converted[name] = spec.parse(value)
            except ValueError as error:
                raise _UserError(f"Hyperparameter {name}: could not parse value", caused_by=error) from error
        for name, value in converted.items():
            try:
                self.hyperparameters[name].validate_range(value)
            except _UserError:
                raise
            except Exception as error:
                raise _AlgorithmError(
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
            raise _UserError(f"Linear updater should be one of these options: {options}.")
    elif dependencies.get("process_type") == "update":
        if not all(x in ("refresh", "prune") for x in value):
            raise _UserError("process_type 'update' can only be used with updater 'refresh' and 'prune'")
    else:
        if not all(x in tree_plugins for x in value):
            raise _UserError(
                "Tree updater should be selected from these options: 'grow_colmaker', 'distcol', "
                "'grow_histmaker', 'grow_skmaker', 'grow_quantile_histmaker', 'sync', 'refresh', 'prune', "
                "'shortgun', 'coord_descent'."
            )
        if sum(1 for x in value if x in tree_build_plugins) > 1:
            raise _UserError(
                "Only one tree grow plugin can be selected. Choose one from thefollowing: 'grow_colmaker', "
                "'distcol', 'grow_histmaker', 'grow_skmaker'"
            )


def _check_objective(value: Any, dependencies: dict[str, Any]) -> None:
    # Lines 82-90.
    num_class = dependencies.get("num_class")
    if value in ("multi:softmax", "multi:softprob") and num_class is None:
        raise _UserError("Require input for parameter 'num_class' for multi-classification")
    if value is None and num_class is not None:
        raise _UserError(
            "Do not need to setup parameter 'num_class' for learning task other than multi-classification."
        )


def _eval_metric_in(supported: list[str], metric: Any) -> bool:
    # Lines 92-111.
    if "<function" in metric:
        raise _UserError(f"User defined evaluation metric {metric} is not supported yet.")
    if "@" in metric:
        name, threshold = metric.split("@")[0].strip(), metric.split("@")[1].strip()
        if name not in ("error", "ndcg", "map"):
            raise _UserError(
                f"Metric '{metric}' is not supported. Parameter 'eval_metric' with customized threshold "
                "should be one of these options: 'error', 'ndcg', 'map'."
            )
        try:
            float(threshold)
        except ValueError:
            raise _UserError(f"Threshold value 't' in '{name}@t' expects float input.") from None
        return True
    return metric in supported


def _check_eval_metric(value: Any, dependencies: dict[str, Any]) -> None:
    # Lines 113-121. Without an objective `dependencies["objective"]` is a KeyError in the container too:
    # the job fails with "KeyError: 'objective'".
    objective = dependencies["objective"]
    if "auc" in value and not any(objective.startswith(kind) for kind in ("binary:", "rank:")):
        raise _UserError("Metric 'auc' can only be applied for classification and ranking problems.")
    if "aft-nloglik" in value and objective not in ("survival:aft",):
        raise _UserError("Metric 'aft-nloglik' can only be applied for 'survival:aft' objective.")


def _check_monotone_constraints(value: Any, dependencies: dict[str, Any]) -> None:
    if value is not None and dependencies.get("tree_method") not in ("exact", "hist"):
        raise _UserError(
            "monotone_constraints can be used only when the tree_method parameter is set to either 'exact' "
            "or 'hist'."
        )


def _check_interaction_constraints(value: Any, dependencies: dict[str, Any]) -> None:
    if value is not None and dependencies.get("tree_method") not in ("exact", "hist", "approx"):
        raise _UserError(
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
    except _ToolkitError as error:
        raise TrainingFailed(_toolkit_name(error), error.message) from error
    except Exception as error:
        raise TrainingFailed(_traceback_name(type(error)), str(error)) from error
    if validated.get("updater"):
        validated["updater"] = ",".join(validated["updater"])
    return validated


def _toolkit_name(error: _ToolkitError) -> str:
    return f"sagemaker_algorithm_toolkit.exceptions.{error.kind}"


# --- metrics: metrics/custom_metrics.py and algorithm_mode/train_utils.py ------------------------------


def _margin_to_class_label(preds: Any) -> Any:
    # custom_metrics.py:37-43: argmax for multiclass rows, else "margin > 0".
    if type(preds[0]) is np.ndarray:
        return np.argmax(preds, axis=-1)
    return (preds > 0.0).astype(int)


def _classification(metric: Callable[[Any, Any], float]) -> Callable[[Any, Any], float]:
    def compute(preds: Any, dtrain: Any) -> float:
        # compute_multiclass_and_binary_metrics, custom_metrics.py:218-229.
        score = 0.0
        if preds.size > 0:
            score = metric(dtrain.get_label(), _margin_to_class_label(preds))
        return float(score)

    return compute


def _regression(metric: Callable[[Any, Any], float]) -> Callable[[Any, Any], float]:
    def compute(preds: Any, dtrain: Any) -> float:
        return float(metric(dtrain.get_label(), preds))

    return compute


def _rmse(labels: Any, preds: Any) -> float:
    # The container calls mean_squared_error(..., squared=False) (custom_metrics.py:136), which its
    # scikit-learn 1.5.2 computes as this square root; later scikit-learn removed the argument.
    return float(np.sqrt(mean_squared_error(labels, preds)))


# CUSTOM_METRICS, custom_metrics.py:232-248: computed by the container, not by xgboost.
CUSTOM_METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": _classification(accuracy_score),
    "balanced_accuracy": _classification(balanced_accuracy_score),
    "f1": _classification(lambda x, y: f1_score(x, y, average="macro")),
    "f1_binary": _classification(lambda x, y: f1_score(x, y, average="binary")),
    "f1_macro": _classification(lambda x, y: f1_score(x, y, average="macro")),
    "mse": _regression(mean_squared_error),
    "rmse": _regression(_rmse),
    "mae": _regression(mean_absolute_error),
    "precision": _classification(precision_score),
    "precision_macro": _classification(lambda x, y: precision_score(x, y, average="macro")),
    "precision_micro": _classification(lambda x, y: precision_score(x, y, average="micro")),
    "r2": _regression(r2_score),
    "recall": _classification(recall_score),
    "recall_macro": _classification(lambda x, y: recall_score(x, y, average="macro")),
    "recall_micro": _classification(lambda x, y: recall_score(x, y, average="micro")),
}


def _configure_feval(names: list[str]) -> Callable[[Any, Any], list[tuple[str, float]]]:
    # configure_feval, custom_metrics.py:260-279.
    def custom_feval(preds: Any, dtrain: Any) -> list[tuple[str, float]]:
        return [(name, CUSTOM_METRICS[name](preds, dtrain)) for name in names]

    return custom_feval


def _eval_metrics_and_feval(
    tuning_objective_metric_param: str | None, eval_metric: list[str] | None
) -> tuple[list[str] | None, Callable[[Any, Any], list[tuple[str, float]]] | None, list[str] | None]:
    """get_eval_metrics_and_feval (train_utils.py:45-76): xgboost's metrics, the container's, and the
    tuning objective's metric names."""
    tuning_objective_metric = None
    configured = None
    cleaned = None
    if tuning_objective_metric_param is not None:
        # MetricNameComponents.decode (train_utils.py:109-112): "validation:auc" -> ["auc"].
        tuning_objective_metric = tuning_objective_metric_param.split(":")[1].split(",")
    # get_union_metrics (train_utils.py:25-42).
    if tuning_objective_metric is None:
        union = eval_metric
    elif eval_metric is None:
        union = tuning_objective_metric
    else:
        union = sorted(set(tuning_objective_metric).union(eval_metric))
    if union is not None:
        custom = [m for m in union if m in CUSTOM_METRICS]
        if custom:
            configured = _configure_feval(custom)
            cleaned = list(set(union) - set(custom))
        else:
            cleaned = union
    return cleaned, configured, tuning_objective_metric


def _metric_patterns() -> dict[str, re.Pattern[str]]:
    """The built-in algorithm's metric definitions, as DescribeTrainingJob shows them
    (aws/sagemaker-xgboost-container#121): `.*\\[[0-9]+\\].*#011train-mae:(<number>).*` for every metric
    of the container on `train` and `validation`. `#011` is how SageMaker's log capture writes the tab
    that EvaluationMonitor prints; the lines here are read before that, with the tab itself."""
    number = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    return {
        f"{data}:{metric}": re.compile(rf".*\[[0-9]+\].*\t{re.escape(data)}-{re.escape(metric)}:{number}.*")
        for data in ("train", "validation")
        for metric in XGB_MAXIMIZE_METRICS + XGB_MINIMIZE_METRICS
    }


METRIC_PATTERNS = _metric_patterns()


def parse_metrics(line: str) -> dict[str, float]:
    """The metrics SageMaker reads from one evaluation line of the training log."""
    found = {}
    for name, pattern in METRIC_PATTERNS.items():
        match = pattern.match(line)
        if match:
            found[name] = float(match.group(1))
    return found


# --- data: data_utils.py ---------------------------------------------------------------------------


def _parse_header(line: str) -> tuple[str, dict[str, str]]:
    """cgi.parse_header (Python 3.10, which the container runs; the module is gone from 3.13)."""

    def params(text: str) -> Iterator[str]:
        while text[:1] == ";":
            text = text[1:]
            end = text.find(";")
            while end > 0 and (text.count('"', 0, end) - text.count('\\"', 0, end)) % 2:
                end = text.find(";", end + 1)
            if end < 0:
                end = len(text)
            yield text[:end].strip()
            text = text[end:]

    parts = params(";" + line)
    key = next(parts)
    found = {}
    for part in parts:
        i = part.find("=")
        if i >= 0:
            name = part[:i].strip().lower()
            value = part[i + 1 :].strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace("\\\\", "\\").replace('\\"', '"')
            found[name] = value
    return key, found


def get_content_type(content_type: str | None) -> str:
    """data_utils.py:86-122: csv, libsvm, parquet or recordio-protobuf; no content type is libsvm."""
    if content_type is None:
        return LIBSVM
    kind, params = _parse_header(content_type.lower())
    if kind in (CSV, "text/csv"):
        if params and "label_size" in params and params["label_size"] != "1":
            raise _UserError(
                f"{kind} is not an accepted csv ContentType. Optional parameter label_size must be equal to 1"
            )
        return CSV
    if kind in (LIBSVM, "text/libsvm", "text/x-libsvm"):
        return LIBSVM
    if kind in (PARQUET, "application/x-parquet"):
        return PARQUET
    if kind in (RECORDIO_PROTOBUF, "application/x-recordio-protobuf"):
        return RECORDIO_PROTOBUF
    raise _UserError(
        f"{content_type} is not an accepted ContentType: " + ", ".join(VALID_CONTENT_TYPES) + "."
    )


def _is_data_file(directory: str, name: str) -> bool:
    # data_utils.py:125-144.
    if not os.path.isfile(os.path.join(directory, name)):
        return False
    if name.startswith((".", "_")):
        return False
    return not (".cache" in name and ("dtrain" in name or "dval" in name))


def _csv_delimiter(sample_line: str) -> str:
    # data_utils.py:147-153.
    try:
        return csv.Sniffer().sniff(sample_line).delimiter
    except Exception as error:
        raise _UserError(f"Could not determine delimiter on line {sample_line[:50]}:\n{error}") from error


def _libsvm_features(line: str) -> int:
    # _get_num_valid_libsvm_features and _is_valid_libsvm_label, data_utils.py:156-206.
    split = line.split(" ")
    label = split[0].split(":")
    if len(label) > 2:
        return -1
    for part in label:
        try:
            float(part)
        except ValueError:
            return -1
    if len(split) <= 1:
        return 0
    count = 0
    for item in split[1:]:
        # The container checks the first feature's shape on every iteration (split[1], line 177).
        if ":" not in item or len(split[1].split(":")) != 2:
            return -1
        count += 1
    return count


def _validate_data_files(path: Path, file_type: str) -> None:
    """validate_data_file_path (data_utils.py:256-291): the first line of each data file of the first
    directory without subdirectories."""
    if not path.exists():
        raise _UserError(f"{path} is not a valid path!")
    if path.is_file():
        files = [str(path)]
    else:
        leaf = str(path)
        for root, dirs, _ in os.walk(path):
            if dirs == []:
                leaf = root
                break
        files = [os.path.join(leaf, name) for name in os.listdir(leaf) if _is_data_file(leaf, name)]
    for name in files:
        if file_type == CSV:
            with open(name, encoding="utf-8", errors="ignore") as handle:
                _csv_delimiter(handle.readline())
        elif file_type == LIBSVM:
            _validate_libsvm(name)


def _validate_libsvm(name: str) -> None:
    with open(name, encoding="utf-8", errors="ignore") as handle:
        for line in handle:
            features = _libsvm_features(line)
            if features > 1:
                return
            if features < 0:
                raise _UserError(
                    f"First line '{line[:50]}...' of file '{name.split('/')[-1]}' is not 'LIBSVM' format. "
                    "Please ensure the file is in 'LIBSVM' format."
                )


def _data_size(path: Path) -> int:
    """get_size (data_utils.py:654-678); a hidden file anywhere in the channel fails the job."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            if name.startswith("."):
                raise _UserError("Hidden file found in the data path! Remove that before training.")
            total += os.path.getsize(os.path.join(root, name))
    return total


class _TooDeep(Exception):
    pass


def _link_channel(links: Path, path: Path) -> None:
    """_make_symlinks_from_a_folder_with_warning (data_utils.py:549-574): a folder deeper than
    MAX_FOLDER_DEPTH ends the linking where it is met (the container only logs a warning), so the files
    listed after it, at every level above, are not read either."""
    with contextlib.suppress(_TooDeep):
        _link_files(links, path, 1)


def _link_files(links: Path, path: Path, depth: int) -> None:
    """_make_symlinks_from_a_folder (data_utils.py:533-546): each file linked as `<name><hash(path)>`
    (_make_symlink, 681-685)."""
    if depth > MAX_FOLDER_DEPTH:
        raise _TooDeep
    if path.is_file():
        os.symlink(path, links / f"{path.name}{hash(str(path))}")
        return
    for item in os.scandir(path):
        if item.is_file():
            os.symlink(item.path, links / f"{item.name}{hash(item.path)}")
        elif item.is_dir():
            _link_files(links, Path(item.path), depth + 1)


def _read_channel(path: Path, file_type: str, csv_weights: int, links: Path, threads: int) -> Any:
    """get_dmatrix (data_utils.py:605-651) in file mode, for CSV and LIBSVM."""
    if links.exists():
        for entry in links.iterdir():
            entry.unlink()
    else:
        links.mkdir()
    _link_channel(links, path)
    if file_type == CSV:
        # _get_csv_dmatrix_file_mode (294-323): the delimiter of the first line of the first file listed.
        # Indexing, as the container does (an IndexError when every file was too deep to link).
        listed = [name for name in os.listdir(links) if os.path.isfile(links / name)]
        first = listed[0]
        with open(links / first, encoding="utf-8") as handle:
            delimiter = _csv_delimiter(handle.readline())
        uri = f"{links}?format=csv&label_column=0&delimiter={delimiter}"
        if csv_weights == 1:
            uri += "&weight_column=1"
        try:
            matrix = xgboost.DMatrix(uri, nthread=threads)
        except Exception as error:
            raise _UserError(f"Failed to load csv data with exception:\n{error}") from error
    elif file_type == LIBSVM:
        try:
            matrix = xgboost.DMatrix(f"{links}?format=libsvm", nthread=threads)
        except Exception as error:
            raise _UserError(f"Failed to load libsvm data with exception:\n{error}") from error
    else:
        raise NotEmulated(f"reading {file_type} channels is not emulated (CSV and LIBSVM are)")
    if matrix.get_label().size == 0:
        raise _UserError(
            "Got input data without labels. Please check the input data set. If training job is running on "
            "multiple instances, please switch to using single instance if number of records in the data set "
            "is less than number of workers (16 * number of instance) in the cluster."
        )
    return matrix


# --- training: algorithm_mode/train.py ---------------------------------------------------------------


@dataclass(frozen=True)
class TrainingOutcome:
    """What a training job leaves: its metrics as SageMaker records them, and its model artifact.

    `final_metrics` are the last evaluation line's (SageMaker's FinalMetricDataList: the latest value of
    each metric, so after `early_stopping_rounds` the last round trained, not the best), `history` each
    metric per round. `model_archive` is model.tar.gz of /opt/ml/model. `stopped` says `on_round` stopped
    the job, `rounds` how many rounds were trained, `log` the evaluation lines the container printed.
    """

    final_metrics: dict[str, float]
    history: dict[str, list[float]]
    model_archive: bytes
    xgboost_version: str
    stopped: bool = False
    rounds: int = 0
    log: tuple[str, ...] = field(default=())


@dataclass
class _Workspace:
    """Local stand-ins for the container's directories, and the translation of messages back."""

    root: Path
    channels: Mapping[str, Path]

    @property
    def links(self) -> Path:
        return self.root / "sagemaker_xgboost_input_data"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    def container_text(self, text: str) -> str:
        replacements = [
            (str(self.links), CONTAINER_INPUT_LINKS),
            (str(self.model_dir), CONTAINER_MODEL_DIR),
            (str(Path(xgboost.__file__).parent.parent), CONTAINER_SITE_PACKAGES),
        ]
        for name, path in self.channels.items():
            container = f"{CONTAINER_CHANNEL_DIR}/{name}"
            replacements += [(str(Path(path).resolve()), container), (str(path), container)]
        for local, container in replacements:
            text = text.replace(local, container)
        return text


class _CallerError(Exception):
    """An exception of `on_round`'s, carried out of xgboost's training loop unchanged."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _RoundReporter(xgboost.callback.TrainingCallback):
    """After EvaluationMonitor has printed a round: the round's metrics as SageMaker reads them, handed
    to `on_round`; a False answer is the tuner stopping the job (SIGTERM in AWS)."""

    def __init__(
        self,
        lines: list[str],
        on_round: Callable[[int, Mapping[str, float]], bool] | None,
        save_on_stop: Callable[[Any], None] | None,
    ) -> None:
        super().__init__()
        self.lines = lines
        self.on_round = on_round
        self.save_on_stop = save_on_stop
        self.history: dict[str, list[float]] = {}
        self.last: dict[str, float] = {}
        self.stopped = False
        self.error: BaseException | None = None

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        metrics = parse_metrics(self.lines[-1]) if self.lines else {}
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(value)
        self.last = metrics
        if self.on_round is None:
            return False
        try:
            carry_on = self.on_round(epoch + 1, dict(metrics))
        except BaseException as error:
            self.error = error
            return False
        if not carry_on:
            self.stopped = True
            if self.save_on_stop is not None:
                self.save_on_stop(model)
        # The stop itself is _Stop's, after EarlyStopping has seen this round: stopping here would keep
        # EarlyStopping from recording a best round, which its save_best needs at the end.
        return False


class _InOrder(xgboost.callback.TrainingCallback):
    """The container's callbacks, run in its list's order. xgboost 3.0.5 keeps a set of them
    (callback.py:162 of the xgboost package) and stops at the first that asks to stop, so in the
    container the log may lack the line of the round EarlyStopping ends on; here the monitor always
    prints first."""

    def __init__(self, callbacks: list[Any]) -> None:
        super().__init__()
        self.callbacks = callbacks

    def before_training(self, model: Any) -> Any:
        for callback in self.callbacks:
            model = callback.before_training(model)
        return model

    def after_training(self, model: Any) -> Any:
        for callback in self.callbacks:
            model = callback.after_training(model)
        return model

    def before_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return any(callback.before_iteration(model, epoch, evals_log) for callback in self.callbacks)

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return any(callback.after_iteration(model, epoch, evals_log) for callback in self.callbacks)


class _Stop(xgboost.callback.TrainingCallback):
    def __init__(self, reporter: _RoundReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return self.reporter.stopped or self.reporter.error is not None


def train(
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, Path],
    *,
    on_round: Callable[[int, Mapping[str, float]], bool] | None = None,
    content_type: str = "text/csv",
    threads: int = 1,
) -> TrainingOutcome:
    """Run a training job of the built-in algorithm on `channels` ("train", optionally "validation": the
    directories SageMaker downloads an S3Prefix channel into) with the job's `hyperparameters` (strings, as
    SageMaker passes them); raises TrainingFailed as the job would fail.

    `on_round(round, metrics)` is called after each boosting round (`round` counts from 1: the log line
    `[0]` is round 1) with the metrics SageMaker reads from that round's line; False stops the job there,
    as the tuner's early stopping does with StopTrainingJob. The container keeps a model of a stopped job
    only with `save_model_on_termination=true` (callback.py:99-106: the model after every round, in
    /opt/ml/model); otherwise SIGTERM ends the process before train.py:480 saves anything, and the
    archive holds no file, as the job's model.tar.gz does in AWS.

    `content_type` is every channel's ContentType (the container reads the train channel's, train.py:155).
    `threads` is xgboost's nthread when the hyperparameters do not set one: the container leaves it unset
    (all of the instance's cores), the rehearsal runs jobs side by side on few cores.
    """
    with tempfile.TemporaryDirectory(prefix="sagemaker-xgboost-") as root:
        workspace = _Workspace(Path(root), channels)
        try:
            return _sagemaker_train(hyperparameters, channels, content_type, on_round, threads, workspace)
        except _CallerError as carried:
            raise carried.error from None
        except TrainingFailed:
            raise
        except NotImplementedError:
            raise
        except _ToolkitError as error:
            raise TrainingFailed(_toolkit_name(error), workspace.container_text(error.message)) from error
        except Exception as error:
            raise TrainingFailed(
                _traceback_name(type(error)), workspace.container_text(str(error))
            ) from error


def _sagemaker_train(
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, Path],
    content_type: str,
    on_round: Callable[[int, Mapping[str, float]], bool] | None,
    threads: int,
    workspace: _Workspace,
) -> TrainingOutcome:
    """sagemaker_train (train.py:116-284) on one host."""
    config = validate_hyperparameters(hyperparameters)
    _validate_channels(channels, content_type)
    file_type = get_content_type(content_type)
    csv_weights = config.get("csv_weights", 0)
    if config.pop("use_dask_gpu_training", "false") == "true":
        # validate_gpu_train_configuration (distributed_gpu/distributed_gpu_training.py:48-85) on an
        # instance without a GPU, in File mode on one host.
        problems = ["Dask training is only available for `gpu_hist` training on GPU instances."]
        if file_type not in (CSV, PARQUET):
            problems.append("Dask training is only supported for CSV and Parquet input.")
        raise _UserError(
            f"Some configurations unsuitable for Dask GPU training were found: {'. '.join(problems)}"
        )
    if "_kfold" in config:
        raise NotEmulated("_kfold cross-validation training is not emulated")
    train_path = Path(channels["train"])
    validation_path = Path(channels["validation"]) if "validation" in channels else None
    # get_validated_dmatrices (train.py:54-113).
    train_size = _data_size(train_path)
    validation_size = _data_size(validation_path) if validation_path is not None else 0
    if train_size > 0:
        _validate_data_files(train_path, file_type)
    if validation_path is not None and validation_size > 0:
        _validate_data_files(validation_path, file_type)
    train_matrix = (
        _read_channel(train_path, file_type, csv_weights, workspace.links, threads)
        if train_size > 0
        else None
    )
    validation_matrix = (
        _read_channel(validation_path, file_type, csv_weights, workspace.links, threads)
        if validation_path is not None and validation_size > 0
        else None
    )
    # Single node (train.py:270-280).
    if train_matrix is None:
        raise _UserError(f"No data in training channel path {CONTAINER_CHANNEL_DIR}/train")
    if validation_path is not None and validation_matrix is None:
        raise _UserError(f"No data in validation channel path {CONTAINER_CHANNEL_DIR}/validation")
    return _train_job(config, train_matrix, validation_matrix, on_round, threads, workspace)


def _validate_channels(channels: Mapping[str, Path], content_type: str) -> None:
    """Channels.validate (sagemaker_algorithm_toolkit/channel_validation.py:71-104) for File mode,
    FullyReplicated, with the channels of algorithm_mode/channel_validation.py:20-43."""
    if "train" not in channels:
        raise _UserError("Missing required channel: train")
    for name in channels:
        if name not in ("train", "validation", "code"):
            raise _UserError(f"Extraneous channel found: {name}")
        supported = ("text/python",) if name == "code" else VALID_CONTENT_TYPES
        if content_type not in supported:
            value = {
                "ContentType": content_type,
                "TrainingInputMode": "File",
                "S3DistributionType": "FullyReplicated",
            }
            raise _UserError(f"Channel configuration for '{name}' channel is not supported: {value}")


def _train_job(
    config: dict[str, Any],
    train_matrix: Any,
    validation_matrix: Any,
    on_round: Callable[[int, Mapping[str, float]], bool] | None,
    threads: int,
    workspace: _Workspace,
) -> TrainingOutcome:
    """train_job (train.py:287-486) on the master node, without cross-validation or checkpoints."""
    num_round = config.pop("num_round")
    save_model_on_termination = config.pop("save_model_on_termination", "false")
    tuning_objective_metric_param = config.pop("_tuning_objective_metric", None)
    eval_metric = config.get("eval_metric")
    cleaned, feval, tuning_objective_metric = _eval_metrics_and_feval(
        tuning_objective_metric_param, eval_metric
    )
    if cleaned:
        config["eval_metric"] = cleaned
    else:
        config.pop("eval_metric", None)
    early_stopping_rounds = config.pop("early_stopping_rounds", None)
    early_stopping_data = "validation" if validation_matrix else None
    early_stopping_metric = None
    if early_stopping_rounds:
        if tuning_objective_metric:
            early_stopping_metric = tuning_objective_metric[-1]
        elif eval_metric:
            early_stopping_metric = eval_metric[-1]
    config.setdefault("nthread", threads)

    workspace.model_dir.mkdir()
    model_path = workspace.model_dir / MODEL_NAME
    lines: list[str] = []
    # get_callbacks (callback.py:63-123): EvaluationMonitor first, EarlyStopping last. The reporter sits
    # between them, where SaveIntermediateModelCallBack does: xgboost stops calling callbacks after the
    # first that asks to stop, and EarlyStopping's round must be reported too.
    reporter = _RoundReporter(
        lines,
        on_round,
        (lambda model: _save_model(model, model_path)) if save_model_on_termination == "true" else None,
    )
    callbacks: list[Any] = [xgboost.callback.EvaluationMonitor(logger=lines.append), reporter]
    if early_stopping_data and early_stopping_metric and early_stopping_rounds:
        callbacks.append(
            xgboost.callback.EarlyStopping(
                rounds=early_stopping_rounds,
                data_name=early_stopping_data,
                metric_name=early_stopping_metric,
                maximize=early_stopping_metric in XGB_MAXIMIZE_METRICS,
                save_best=True,
            )
        )
    callbacks.append(_Stop(reporter))
    watchlist = [(train_matrix, "train")]
    if validation_matrix is not None:
        watchlist.append((validation_matrix, "validation"))
    try:
        booster = xgboost.train(
            config,
            train_matrix,
            num_boost_round=num_round,
            evals=watchlist,
            custom_metric=feval,
            callbacks=[_InOrder(callbacks)],
            verbose_eval=False,
        )
    except Exception as error:
        if reporter.error is not None:
            raise _CallerError(reporter.error) from None
        # train.py:461-467.
        if any(known in str(error) for known in CUSTOMER_ERRORS):
            raise _UserError(str(error)) from error
        raise _AlgorithmError(f"XGB train call failed with exception:\n {error}") from error
    if reporter.error is not None:
        raise _CallerError(reporter.error)
    if not reporter.stopped:
        _save_model(booster, model_path)
    return TrainingOutcome(
        final_metrics=dict(reporter.last),
        history=reporter.history,
        model_archive=_archive(workspace.model_dir),
        xgboost_version=xgboost.__version__,
        stopped=reporter.stopped,
        rounds=len(lines),
        log=tuple(line.rstrip("\n") for line in lines),
    )


def _save_model(booster: Any, path: Path) -> None:
    """`booster.save_model(path)` for the container's file name: xgboost 3.0.5 writes UBJSON for a name
    without extension (and warns so, c_api.cc:1427); these are those bytes, without the warning."""
    path.write_bytes(bytes(booster.save_raw("ubj")))


def _archive(model_dir: Path) -> bytes:
    """model.tar.gz of the model directory, its files at the archive's root, as SageMaker uploads it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)
    return buffer.getvalue()


# --- serving: algorithm_mode/serve.py, serve_utils.py, encoder.py -------------------------------------

PKL_FORMAT = "pkl_format"
XGB_FORMAT = "xgb_format"
# serve.py:31.
SUPPORTED_ACCEPTS = (
    "application/json",
    "application/jsonlines",
    "application/x-recordio-protobuf",
    "text/csv",
)
# flask.Response's default mimetype, with the charset werkzeug 0.15 adds to text/* types.
HTML = "text/html; charset=utf-8"
# werkzeug 0.15 InternalServerError, the answer Flask 1.1 gives for an exception the view lets through.
INTERNAL_SERVER_ERROR = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
    b"<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n"
    b"<p>The server encountered an internal error and was unable to complete your request. Either the "
    b"server is overloaded or there is an error in the application.</p>\n"
)
# The objectives whose ensembles vote instead of averaging (serve_utils.py:252).
VOTING_OBJECTIVES = ("multi:softmax", "binary:hinge")


class ModelLoadFailed(Exception):
    """The serving container cannot load the model: its workers exit and /ping fails, so SageMaker fails
    the endpoint's creation (serve.py:93-107)."""


class _BoosterUnpickler(pickle.Unpickler):
    """The container unpickles model files first (serve_utils.py:177). Unpickling runs whatever code the
    file names, so only a pickled Booster's own classes are let through; any other file fails to unpickle
    with pickle's own message, as there."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {("xgboost.core", "Booster"), ("builtins", "bytearray")}
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is forbidden")
        return super().find_class(module, name)


def _load_booster(path: Path) -> tuple[Any, str]:
    """get_loaded_booster's loading of one file (serve_utils.py:176-190)."""
    try:
        with open(path, "rb") as handle:
            booster = _BoosterUnpickler(handle).load()
        model_format = PKL_FORMAT
    except Exception as pickle_error:
        try:
            booster = xgboost.Booster()
            booster.load_model(str(path))
            model_format = XGB_FORMAT
        except Exception as xgb_error:
            raise ModelLoadFailed(
                f"Model {CONTAINER_MODEL_DIR}/{path.name} cannot be loaded:"
                f"\nPickle load error={pickle_error}"
                f"\nXGB load model error={xgb_error}"
            ) from xgb_error
    booster.set_param("nthread", 1)
    return booster, model_format


def _csv_to_dmatrix(text: str) -> Any:
    """csv_to_dmatrix (encoder.py:39-56): the first line's delimiter (a letter or digit means comma), one
    row per line, an empty field missing."""
    sniffed = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
    delimiter = "," if sniffed.isalnum() else sniffed
    rows = [["nan" if x == "" else x for x in line.split(delimiter)] for line in text.split("\n")]
    return xgboost.DMatrix(np.array(rows).astype(float))


def _libsvm_to_matrix(text: str) -> Any:
    """_get_sparse_matrix_from_libsvm (serve_utils.py:94-115)."""
    rows, cols, data = [], [], []
    for row_index, line in enumerate(text.split("\n")):
        for item in line.split(" "):
            if ":" in item:
                rows.append(row_index)
                cols.append(item.split(":")[0])
                data.append(item.split(":")[1])
    row = np.array(rows)
    col = np.array(cols).astype(int)
    values = np.array(data).astype(float)
    if not (len(row) == len(col) and len(col) == len(values)):
        raise RuntimeError("Dimension checking failed when transforming sparse matrix.")
    return csr_matrix((values, (row, col)))


def _parse_content(body: bytes, content_type: str | None) -> tuple[Any, str]:
    """parse_content_data (serve_utils.py:118-152)."""
    kind = get_content_type(content_type)
    if kind == CSV:
        try:
            return _csv_to_dmatrix(body.strip().decode("utf-8")), kind
        except Exception as error:
            raise RuntimeError(
                "Loading csv data failed with Exception, please ensure data is in csv format:"
                f"\n {type(error)}\n {error}"
            ) from error
    if kind == LIBSVM:
        try:
            return xgboost.DMatrix(_libsvm_to_matrix(body.strip().decode("utf-8"))), kind
        except Exception as error:
            raise RuntimeError(
                "Loading libsvm data failed with Exception, please ensure data is in libsvm format:"
                f"\n {type(error)}\n {error}"
            ) from error
    if kind == RECORDIO_PROTOBUF:
        raise NotEmulated("recordio-protobuf request bodies are not emulated")
    raise RuntimeError(f"Content-type {content_type} is not supported.")


class HostedModel:
    """The serving container of an endpoint: the model SageMaker extracted from ModelDataUrl into
    /opt/ml/model, answering POST /invocations.

    `environment` is the model container's Environment: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (the answer's
    type when the request names none or */*, default text/csv), SAGEMAKER_INFERENCE_ENSEMBLE (default
    "true": every model file is loaded and their predictions combined), SAGEMAKER_BATCH (one score per
    line, as batch transform sets). Selectable inference output (SAGEMAKER_INFERENCE_OUTPUT) is not
    emulated.
    """

    def __init__(self, boosters: list[Any], formats: list[str], environment: Mapping[str, str]) -> None:
        self._boosters = boosters
        self._formats = formats
        self._environment = dict(environment)
        # get_config_json (serve.py:80-90): the objective of the first model.
        config = json.loads(boosters[0].save_config())
        self.objective: str = config["learner"]["objective"]["name"]
        self.num_features: int = boosters[0].num_features()
        # The container loads the model per worker process because prediction is not thread safe
        # (serve.py:98-99); here one model answers every thread, one prediction at a time.
        self._lock = threading.Lock()

    @property
    def boosters(self) -> tuple[Any, ...]:
        """The loaded model files' boosters (several for an ensemble)."""
        return tuple(self._boosters)

    @classmethod
    def from_archive(cls, archive: bytes, *, environment: Mapping[str, str] | None = None) -> HostedModel:
        """The model of a model.tar.gz, loaded as the container does at start-up; raises ModelLoadFailed."""
        environment = dict(environment or {})
        if "SAGEMAKER_INFERENCE_OUTPUT" in environment:
            raise NotEmulated("selectable inference output (SAGEMAKER_INFERENCE_OUTPUT) is not emulated")
        ensemble = environment.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true") == "true"
        with tempfile.TemporaryDirectory(prefix="sagemaker-model-") as root:
            model_dir = Path(root)
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
                tar.extractall(model_dir, filter="data")
            # _get_full_model_paths (serve_utils.py:155-165): files at the top, dotfiles ignored.
            paths = [
                model_dir / name
                for name in os.listdir(model_dir)
                if (model_dir / name).is_file() and not name.startswith(".")
            ]
            if not ensemble:
                paths = paths[:1]
            if not paths:
                # models[0] of an empty list (serve_utils.py:194).
                raise ModelLoadFailed("list index out of range")
            loaded = [_load_booster(path) for path in paths]
        return cls([b for b, _ in loaded], [f for _, f in loaded], environment)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, str, bytes]:
        """The container's answer to POST /invocations (serve.py:207-249): HTTP status, Content-Type, body.
        `content_type` and `accept` are the request's headers (None when absent)."""
        if len(body) == 0:
            return 204, HTML, b""
        try:
            matrix, kind = _parse_content(body, content_type)
        except NotImplementedError:
            raise
        except Exception as error:
            return 415, HTML, self._container_text(str(error))
        try:
            with self._lock:
                predictions = self._predict(matrix, kind)
        except Exception as error:
            return 400, HTML, self._container_text(f"Unable to evaluate payload provided: {error}")
        try:
            answer_type = self._parse_accept(accept)
        except ValueError as error:
            return 406, HTML, str(error).encode()
        try:
            return self._encode(predictions, answer_type)
        except Exception:
            # The view lets the exception through and Flask answers 500 (e.g. encoding a lone vote of a
            # voting ensemble, or encoders.encode's UnsupportedFormatError for jsonlines/recordio).
            return 500, HTML, INTERNAL_SERVER_ERROR

    def _predict(self, matrix: Any, content_type: str) -> Any:
        """serve_utils.predict (serve_utils.py:197-259)."""
        if self._formats[0] == PKL_FORMAT:
            x = self._boosters[0].num_features()
            y = len(matrix.feature_names) if matrix.feature_names is not None else matrix.num_col()
            if content_type == LIBSVM and y > x + 1:
                raise ValueError(
                    f"Feature size of libsvm inference data {y} is larger than feature size of trained "
                    f"model {x}."
                )
            if content_type == CSV and not (x == y or x == y + 1):
                raise ValueError(
                    f"Feature size of {content_type} inference data {y} is not consistent with feature size "
                    f"of trained model {x}."
                )

        def predict(booster: Any) -> Any:
            # _predict_with_compat: xgboost 3 boosters have no best_ntree_limit, so every tree predicts.
            limit = int(getattr(booster, "best_ntree_limit", 0) or 0)
            if limit > 0:
                return booster.predict(matrix, iteration_range=(0, limit), validate_features=False)
            return booster.predict(matrix, validate_features=False)

        if len(self._boosters) == 1:
            return predict(self._boosters[0])
        ensemble = [predict(booster) for booster in self._boosters]
        if self.objective in VOTING_OBJECTIVES:
            return stats.mode(ensemble).mode[0]
        return np.mean(ensemble, axis=0)

    def _parse_accept(self, accept: str | None) -> str:
        """_parse_accept (serve.py:163-179)."""
        kind, _ = _parse_header(accept or "")
        if not kind or kind == "*/*":
            return self._environment.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
        if kind.lower() not in SUPPORTED_ACCEPTS:
            raise ValueError(
                f"Accept type {kind} is not supported. Please use supported accept types: "
                f"{list(SUPPORTED_ACCEPTS)}."
            )
        return kind.lower()

    def _encode(self, predictions: Any, accept: str) -> tuple[int, str, bytes]:
        """serve.py:240-249 and sagemaker-containers' encoders.encode (_encoders.py:216-234)."""
        scores = predictions.tolist()
        content_type = accept + "; charset=utf-8" if accept.startswith("text/") else accept
        if "SAGEMAKER_BATCH" in self._environment:
            return 200, content_type, ("\n".join(map(str, scores)) + "\n").encode()
        if accept == "application/json":
            # encode_predictions_as_json (serve_utils.py:533-545).
            answer = json.dumps({"predictions": [{"score": score} for score in scores]})
            return 200, content_type, answer.encode()
        if accept == "text/csv":
            return 200, content_type, _array_to_csv(scores).encode()
        # encoders.encode knows only JSON, CSV and NPY (_encoders.py:186-190).
        raise ValueError(f"Content type {accept} is not supported by this framework.")

    @staticmethod
    def _container_text(text: str) -> bytes:
        return text.replace(str(Path(xgboost.__file__).parent.parent), CONTAINER_SITE_PACKAGES).encode()


def _array_to_csv(scores: Any) -> str:
    """array_to_csv (sagemaker-containers _encoders.py:129-152): one row per record, class scores
    comma-separated."""
    array = np.array(scores)
    if len(array.shape) == 1:
        array = np.reshape(array, (array.shape[0], 1))
    stream = io.StringIO()
    csv.writer(
        stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True
    ).writerows(array)
    return stream.getvalue()
