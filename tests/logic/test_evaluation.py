"""The deploy function's metrics against xgboost's own evaluation, and the container's scikit-learn
metrics, of the same predictions.

Each model is trained shallow on coarse features so that many rows share a prediction (AUC's ties);
some rows get a base margin that saturates their probability to 0 or 1 (logloss's clipping). The
predictions reach the metrics as the batch transform writes them: `str()` of each row of
`predict(...).tolist()`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import xgboost
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
)

from deploy.evaluation import ACCUMULATORS, InvalidPredictions, evaluate, parse_prediction
from hyperparameters import METRIC_NAMES

ROWS = 400


def served(booster: Any, matrix: Any) -> list[Any]:
    """The predictions as the deploy function reads them from the transform's output lines."""
    return [parse_prediction(str(row)) for row in booster.predict(matrix).tolist()]


def xgboost_metric(booster: Any, matrix: Any, metric: str) -> float:
    """xgboost's value of `metric` for `booster` on `matrix`, from its evaluation string."""
    booster.set_param("eval_metric", metric)
    text = booster.eval(matrix, "validation")
    return float(text.split(f"validation-{metric}:")[1].split()[0])


def features(seed: int) -> Any:
    rng = np.random.RandomState(seed)
    # Few distinct values per feature and shallow trees: many rows share a prediction.
    return rng.randint(0, 4, size=(ROWS, 3)).astype(float)


@pytest.fixture(scope="module")
def binary() -> tuple[Any, Any, list[float]]:
    x = features(1)
    rng = np.random.RandomState(2)
    labels = ((x[:, 0] + rng.normal(0, 1.5, ROWS)) > 1.5).astype(float)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3}, xgboost.DMatrix(x, label=labels), 3
    )
    matrix = xgboost.DMatrix(x, label=labels)
    # Saturated rows: probability 1.0 (float32) and about 4e-18, beyond logloss's clip on both sides.
    margin = np.zeros(ROWS)
    margin[:10], margin[10:20] = 40.0, -40.0
    matrix.set_base_margin(margin)
    return booster, matrix, labels.tolist()


@pytest.mark.parametrize("metric", ["auc", "logloss", "error"])
def test_binary_metrics_match_xgboost_with_ties_and_saturated_probabilities(
    binary: tuple[Any, Any, list[float]], metric: str
) -> None:
    booster, matrix, labels = binary
    predictions = served(booster, matrix)
    assert len(set(predictions)) < ROWS / 10, "the model should tie many rows"
    assert 1.0 in predictions and min(p for p in predictions if isinstance(p, float)) < 1e-16
    [ours] = evaluate(f"validation:{metric}", zip(labels, predictions, strict=True))
    assert ours.rows == ROWS
    assert ours.value == pytest.approx(xgboost_metric(booster, matrix, metric), rel=1e-6, abs=1e-9)


def test_error_counts_a_prediction_of_exactly_one_half_as_class_zero() -> None:
    matrix = xgboost.DMatrix(np.zeros((4, 1)), label=[0.0, 1.0, 0.0, 1.0])
    # No trees' worth of signal: base_score 0.5 makes every prediction exactly 0.5.
    booster = xgboost.train({"objective": "binary:logistic", "base_score": 0.5}, matrix, 0)
    predictions = served(booster, matrix)
    assert predictions == [0.5] * 4
    [ours] = evaluate("validation:error", zip([0.0, 1.0, 0.0, 1.0], predictions, strict=True))
    assert ours.value == xgboost_metric(booster, matrix, "error") == 0.5


def test_auc_of_one_class_is_undefined_as_in_xgboost() -> None:
    [ours] = evaluate("validation:auc", [(1.0, 0.2), (1.0, 0.7)])
    assert math.isnan(ours.value)


@pytest.mark.parametrize(
    ("metric", "sklearn_metric"),
    [
        ("accuracy", accuracy_score),
        ("f1", lambda y, p: f1_score(y, p, average="macro")),
    ],
)
def test_binary_class_metrics_match_the_containers_on_margins(
    binary: tuple[Any, Any, list[float]], metric: str, sklearn_metric: Any
) -> None:
    booster, matrix, labels = binary
    # The container's margin_to_class_label on the margins the 1.x images pass: margin > 0.
    classes = (booster.predict(matrix, output_margin=True) > 0.0).astype(int)
    [ours] = evaluate(f"validation:{metric}", zip(labels, served(booster, matrix), strict=True))
    assert ours.value == pytest.approx(sklearn_metric(labels, classes), rel=1e-12)


@pytest.fixture(scope="module")
def multiclass() -> tuple[Any, Any, list[float]]:
    x = features(3)
    labels = ((x[:, 0] + x[:, 1]) % 3).astype(float)
    labels[:40] = 0.0  # noise, so no class is predicted perfectly
    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "eta": 0.3},
        xgboost.DMatrix(x, label=labels),
        3,
    )
    return booster, xgboost.DMatrix(x, label=labels), labels.tolist()


@pytest.mark.parametrize("metric", ["mlogloss", "merror"])
def test_multiclass_metrics_match_xgboost(multiclass: tuple[Any, Any, list[float]], metric: str) -> None:
    booster, matrix, labels = multiclass
    predictions = served(booster, matrix)
    assert all(isinstance(p, tuple) and len(p) == 3 for p in predictions)
    [ours] = evaluate(f"validation:{metric}", zip(labels, predictions, strict=True))
    assert ours.value == pytest.approx(xgboost_metric(booster, matrix, metric), rel=1e-6)


@pytest.mark.parametrize(
    ("metric", "sklearn_metric"),
    [
        ("accuracy", accuracy_score),
        ("f1", lambda y, p: f1_score(y, p, average="macro")),
    ],
)
def test_multiclass_class_metrics_match_the_containers(
    multiclass: tuple[Any, Any, list[float]], metric: str, sklearn_metric: Any
) -> None:
    booster, matrix, labels = multiclass
    classes = np.argmax(booster.predict(matrix), axis=-1)
    [ours] = evaluate(f"validation:{metric}", zip(labels, served(booster, matrix), strict=True))
    assert ours.value == pytest.approx(sklearn_metric(labels, classes), rel=1e-12)


def test_macro_f1_counts_a_class_only_predicted_as_zero() -> None:
    labels, predicted = [0, 0, 1, 1], [0, 2, 1, 1]
    probabilities = [tuple(float(c == k) for k in range(3)) for c in predicted]
    [ours] = evaluate("validation:f1", zip(map(float, labels), probabilities, strict=True))
    assert ours.value == pytest.approx(f1_score(labels, predicted, average="macro"))


@pytest.fixture(scope="module")
def regression() -> tuple[Any, Any, list[float]]:
    x = features(4)
    labels = 3 * x[:, 0] - x[:, 1] + np.random.RandomState(5).normal(0, 1, ROWS)
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 2}, xgboost.DMatrix(x, label=labels), 4
    )
    return booster, xgboost.DMatrix(x, label=labels), labels.astype(np.float32).tolist()


@pytest.mark.parametrize(
    ("metric", "sklearn_metric"),
    [
        ("rmse", lambda y, p: math.sqrt(mean_squared_error(y, p))),
        ("mse", mean_squared_error),
        ("mae", mean_absolute_error),
    ],
)
def test_regression_metrics_match_xgboost_and_the_container(
    regression: tuple[Any, Any, list[float]], metric: str, sklearn_metric: Any
) -> None:
    booster, matrix, labels = regression
    predictions = served(booster, matrix)
    [ours] = evaluate(f"validation:{metric}", zip(labels, predictions, strict=True))
    assert ours.value == pytest.approx(sklearn_metric(labels, predictions), rel=1e-9)
    if metric != "mse":  # xgboost has no mse metric; the container's scikit-learn one is the only one
        assert ours.value == pytest.approx(xgboost_metric(booster, matrix, metric), rel=1e-5)


@pytest.mark.parametrize(
    ("metric", "rows", "message"),
    [
        ("validation:auc", [(2.0, 0.4)], "label 2 is not 0 or 1"),
        ("validation:mlogloss", [(3.0, (0.2, 0.8))], "label 3 is not a class index (0-1)"),
        ("validation:mlogloss", [(1.0, 0.3)], "one probability per class"),
        ("validation:rmse", [(1.0, (0.5, 0.5))], "one value per row"),
        ("validation:rmse", [], "no rows"),
        ("validation:ndcg", [(1.0, 0.5)], "not a metric this function computes"),
    ],
)
def test_what_cannot_be_scored_says_why(metric: str, rows: list[Any], message: str) -> None:
    with pytest.raises(InvalidPredictions, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(metric, rows)


@pytest.mark.parametrize(
    ("line", "parsed"),
    [("0.8234567046165466\n", 0.8234567046165466), ("[0.1, 0.2, 0.7]", (0.1, 0.2, 0.7)), ("3", 3.0)],
)
def test_transform_output_lines_parse(line: str, parsed: Any) -> None:
    assert parse_prediction(line) == parsed


@pytest.mark.parametrize("line", ["", "abc", "[]", '"0.5"', "true", "[0.1, null]", "nan", "[0.5, inf]"])
def test_a_line_that_is_no_prediction_is_refused(line: str) -> None:
    with pytest.raises(InvalidPredictions, match="neither a number nor a list"):
        parse_prediction(line)


def test_every_metric_a_stack_may_tune_on_is_computed() -> None:
    assert {name.removeprefix("validation:") for name in METRIC_NAMES} <= set(ACCUMULATORS)


def test_two_models_are_scored_on_the_same_rows_each_as_if_alone(
    binary: tuple[Any, Any, list[float]],
) -> None:
    booster, matrix, labels = binary
    better, worse = served(booster, matrix), [0.5] * ROWS
    both = evaluate("validation:logloss", zip(labels, better, worse, strict=True))
    assert [e.rows for e in both] == [ROWS, ROWS]
    assert both == [
        *evaluate("validation:logloss", zip(labels, better, strict=True)),
        *evaluate("validation:logloss", zip(labels, worse, strict=True)),
    ]
    assert both[1].value == pytest.approx(math.log(2))
