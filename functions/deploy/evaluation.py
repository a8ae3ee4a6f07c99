"""The tuning objective computed outside SageMaker: one model's predictions on labelled rows, scored the
way the training job would have scored them.

Pure Python (the deploy function carries no numpy) and streaming: each metric is an accumulator fed one
(label, prediction) pair at a time, keeping counts, sums, or for AUC one pair of counts per distinct
prediction value (about 100 bytes each), never the rows.

Each metric follows what computes it in a training job of the 3.0-5 container: xgboost's own metrics
(`auc`, `logloss`, `error`, `mlogloss`, `merror`; xgboost src/metric/elementwise_metric.cu,
multiclass_metric.cu, auc.cc) or the container's scikit-learn ones, which replace xgboost's of the same
name (metrics/custom_metrics.py:232-248 and algorithm_mode/train_utils.py:45-76: `accuracy`, `f1`,
`rmse`, `mae`, `mse`). tests/logic/test_evaluation.py checks every one against xgboost's and
scikit-learn's evaluation of the same predictions.

Binary `accuracy` and `f1` threshold the probability at 0.5, which is the container's "margin > 0"
(custom_metrics.py:37-43) on the margin the 1.x images hand it; 3.0-5 hands it probabilities, so every row
counts as positive there, which is why settings.py refuses those objectives on 3.0-5 (BROKEN_BINARY_METRICS).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

# A served prediction: a probability or value, or one probability per class (multi:softprob).
Prediction = float | tuple[float, ...]
# xgboost clips probabilities at 1e-16 before taking logs (EvalRowLogLoss, EvalMultiLogLoss).
LOG_EPS = 1e-16
# EvalError's default threshold: a prediction above it is class 1.
ERROR_THRESHOLD = 0.5


class InvalidPredictions(ValueError):
    """A prediction or label that the metric cannot score; the message says which and why."""


def parse_prediction(line: str) -> Prediction:
    """One line of a batch transform's output: the container writes `str()` of each row of
    `predictions.tolist()` (algorithm_mode/serve.py:241-242, SAGEMAKER_BATCH), so a float for binary and
    regression objectives, a Python list such as `[0.1, 0.2, 0.7]` for multi:softprob."""
    text = line.strip()
    try:
        if text.startswith("[") and text.endswith("]"):
            values: Prediction = tuple(float(x) for x in text[1:-1].split(","))
        else:
            values = float(text)
    except ValueError:
        values = math.nan
    if all(map(math.isfinite, values if isinstance(values, tuple) else (values,))):
        return values
    raise InvalidPredictions(f"prediction {text[:60]!r} is neither a number nor a list of numbers")


class Accumulator(Protocol):
    def add(self, label: float, prediction: Prediction) -> None: ...

    def value(self) -> float: ...


def _scalar(prediction: Prediction) -> float:
    if isinstance(prediction, tuple):
        raise InvalidPredictions(f"expected one value per row, got {len(prediction)} class probabilities")
    return prediction


def _probabilities(prediction: Prediction) -> tuple[float, ...]:
    if not isinstance(prediction, tuple):
        raise InvalidPredictions("expected one probability per class, got a single value")
    return prediction


def _class(label: float, classes: int | None = None) -> int:
    index = int(label)
    if index != label or index < 0 or (classes is not None and index >= classes):
        allowed = f"0-{classes - 1}" if classes is not None else "a non-negative integer"
        raise InvalidPredictions(f"label {label:g} is not a class index ({allowed})")
    return index


def _binary(label: float) -> float:
    if label not in (0.0, 1.0):
        raise InvalidPredictions(f"label {label:g} is not 0 or 1")
    return label


def _argmax(probabilities: tuple[float, ...]) -> int:
    """The first largest, as xgboost's FindMaxIndex and numpy's argmax pick it."""
    best = 0
    for index, p in enumerate(probabilities):
        if p > probabilities[best]:
            best = index
    return best


class Mean:
    """The mean of a per-row quantity; `finish` turns the mean into the metric (a square root for RMSE)."""

    def __init__(self, row: Callable[[float, Prediction], float], finish: Callable[[float], float]) -> None:
        self._row = row
        self._finish = finish
        self._total = 0.0
        self._count = 0

    def add(self, label: float, prediction: Prediction) -> None:
        self._total += self._row(label, prediction)
        self._count += 1

    def value(self) -> float:
        if self._count == 0:
            raise InvalidPredictions("no rows to score")
        return self._finish(self._total / self._count)


def _logloss(label: float, prediction: Prediction) -> float:
    # Each side clipped on its own, as EvalRowLogLoss does: clipping p to 1 - 1e-16 instead would round
    # to the double below 1.0, 1.1e-16 away, and log that.
    y, p = _binary(label), _scalar(prediction)
    return -y * math.log(max(p, LOG_EPS)) - (1.0 - y) * math.log(max(1.0 - p, LOG_EPS))


def _error(label: float, prediction: Prediction) -> float:
    return float((_scalar(prediction) > ERROR_THRESHOLD) != bool(_binary(label)))


def _mlogloss(label: float, prediction: Prediction) -> float:
    probabilities = _probabilities(prediction)
    return -math.log(max(probabilities[_class(label, len(probabilities))], LOG_EPS))


def _merror(label: float, prediction: Prediction) -> float:
    probabilities = _probabilities(prediction)
    return float(_argmax(probabilities) != _class(label, len(probabilities)))


def _squared(label: float, prediction: Prediction) -> float:
    return (label - _scalar(prediction)) ** 2


def _absolute(label: float, prediction: Prediction) -> float:
    return abs(label - _scalar(prediction))


def _predicted_class(prediction: Prediction) -> int:
    """custom_metrics.py margin_to_class_label: argmax of class probabilities, else the binary threshold."""
    if isinstance(prediction, tuple):
        return _argmax(prediction)
    return int(prediction > ERROR_THRESHOLD)


def _true_class(label: float, prediction: Prediction) -> int:
    if isinstance(prediction, tuple):
        return _class(label, len(prediction))
    return int(_binary(label))


def _accuracy(label: float, prediction: Prediction) -> float:
    return float(_predicted_class(prediction) == _true_class(label, prediction))


class MacroF1:
    """scikit-learn's f1_score(average="macro"): the unweighted mean of each class's F1 over every class
    seen in the labels or the predictions, a class with no true or predicted row scoring 0
    (zero_division)."""

    def __init__(self) -> None:
        # class -> [true positives, false positives, false negatives]
        self._counts: dict[int, list[int]] = {}

    def add(self, label: float, prediction: Prediction) -> None:
        truth, predicted = _true_class(label, prediction), _predicted_class(prediction)
        self._counts.setdefault(truth, [0, 0, 0])
        self._counts.setdefault(predicted, [0, 0, 0])
        if truth == predicted:
            self._counts[truth][0] += 1
        else:
            self._counts[predicted][1] += 1
            self._counts[truth][2] += 1

    def value(self) -> float:
        if not self._counts:
            raise InvalidPredictions("no rows to score")
        scores = [
            2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0 for tp, fp, fn in self._counts.values()
        ]
        return sum(scores) / len(scores)


class BinaryAuc:
    """xgboost's binary ROC AUC (auc.cc BinaryROCAUC): rows sorted by prediction, tied predictions one step
    of the curve (the trapezoid), NaN when the rows hold only one class."""

    # Both counts of a prediction in one int (positives above the shift): one object per distinct value.
    _SHIFT = 40

    def __init__(self) -> None:
        self._counts: dict[float, int] = {}

    def add(self, label: float, prediction: Prediction) -> None:
        key = _scalar(prediction)
        self._counts[key] = self._counts.get(key, 0) + (1 << self._SHIFT if _binary(label) else 1)

    def value(self) -> float:
        if not self._counts:
            raise InvalidPredictions("no rows to score")
        area = 0.0
        fp = tp = 0
        mask = (1 << self._SHIFT) - 1
        for prediction in sorted(self._counts, reverse=True):
            counts = self._counts[prediction]
            negatives, positives = counts & mask, counts >> self._SHIFT
            area += negatives * (tp + positives / 2)
            fp += negatives
            tp += positives
        if fp == 0 or tp == 0:
            return math.nan
        return area / (fp * tp)


def _identity(mean: float) -> float:
    return mean


# Every metric a stack may tune on (hyperparameters.py METRICS_BY_PROBLEM), by its eval_metric name.
ACCUMULATORS: dict[str, Callable[[], Accumulator]] = {
    "auc": BinaryAuc,
    "logloss": lambda: Mean(_logloss, _identity),
    "error": lambda: Mean(_error, _identity),
    "f1": MacroF1,
    "accuracy": lambda: Mean(_accuracy, _identity),
    "mlogloss": lambda: Mean(_mlogloss, _identity),
    "merror": lambda: Mean(_merror, _identity),
    "rmse": lambda: Mean(_squared, math.sqrt),
    "mse": lambda: Mean(_squared, _identity),
    "mae": lambda: Mean(_absolute, _identity),
}


@dataclass(frozen=True)
class Evaluated:
    metric: str  # the tuning objective's name, e.g. validation:auc
    value: float  # NaN when the metric is undefined on these rows (AUC of one class)
    rows: int


def evaluate(metric: str, rows: Iterable[tuple[float, *tuple[Prediction, ...]]]) -> list[Evaluated]:
    """The tuning objective `metric` (`validation:<eval_metric>`) of each model whose predictions the rows
    carry: (label, first model's prediction, second model's, ...), so every model is scored on the same
    rows by the same accumulator."""
    name = metric.split(":", 1)[-1]
    factory = ACCUMULATORS.get(name)
    if factory is None:
        known = ", ".join(ACCUMULATORS)
        raise InvalidPredictions(f"{metric!r} is not a metric this function computes ({known})")
    accumulators: list[Accumulator] = []
    count = 0
    for label, *predictions in rows:
        if not accumulators:
            accumulators = [factory() for _ in predictions]
        for accumulator, prediction in zip(accumulators, predictions, strict=True):
            accumulator.add(label, prediction)
        count += 1
    if not accumulators:
        raise InvalidPredictions("no rows to score")
    return [Evaluated(metric, accumulator.value(), count) for accumulator in accumulators]
