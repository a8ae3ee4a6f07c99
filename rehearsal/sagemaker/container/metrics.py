"""A training job's metrics: those the container knows (constants/xgb_constants.py), its scikit-learn
metrics (metrics/custom_metrics.py: accuracy, f1, mse, rmse, mae, ...) handed to xgboost as
`custom_metric`, their union with the tuning objective's (algorithm_mode/train_utils.py), and what
SageMaker reads from the log.

The metrics are those SageMaker reads from the log lines xgboost's EvaluationMonitor prints
(`[3]\ttrain-auc:0.91234\tvalidation-auc:0.88000`), with the metric definitions of the built-in
algorithm: `train:<m>` and `validation:<m>` for every metric the container knows, the value as printed
(5 decimals).

Where the older images differ: 1.2-2 to 1.7-1 hand the scikit-learn metrics to xgboost as `feval`, which
receives margins, so binary accuracy/f1 threshold margins at 0 correctly; 3.0-5 passes them as
`custom_metric` (algorithm_mode/train.py:372), which in xgboost 3 receives probabilities, so every binary
prediction counts as positive.

Citations are into release-3.0.5 as the package docstring says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
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


def eval_metrics_and_feval(
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
