"""The built-in XGBoost container as the local SageMaker runs it: training on the part files the transform
writes, the metrics SageMaker records, the failures it reports, and the endpoint's answers.

The data are real tables scikit-learn ships (breast cancer: binary, iris: multiclass, diabetes:
regression), written by the transform itself, so the channels are what a tuning job reads in AWS.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.metrics import accuracy_score

from rehearsal.sagemaker.container.errors import TrainingFailed
from rehearsal.sagemaker.container.serving import HostedModel, ModelLoadFailed
from rehearsal.sagemaker.container.training import TrainingOutcome, train
from shared.dataset_schema import DatasetSchema
from tests.support.sinks import Lines
from transform.pipeline import TransformOptions, transform_csv
from transform.schema_inference import InferenceOptions

OPTIONS = TransformOptions(
    validation_fraction=0.2,
    max_rejected_fraction=0.01,
    inference=InferenceOptions("target", None, max_categories=1000, numeric_tolerance=0.01),
    min_labeled_rows=50,
)
USER_ERROR = "sagemaker_algorithm_toolkit.exceptions.UserError"
ALGORITHM_ERROR = "sagemaker_algorithm_toolkit.exceptions.AlgorithmError"


@dataclass(frozen=True)
class Channels:
    schema: DatasetSchema
    train: Path
    validation: Path
    validation_lines: list[bytes]

    @property
    def paths(self) -> dict[str, Path]:
        return {"train": self.train, "validation": self.validation}

    def hyperparameters(self, **extra: str) -> dict[str, str]:
        """What the transform's tuning request gives every job, plus `extra`."""
        xgb = self.schema.xgboost
        given = {"num_round": "20", "objective": xgb.objective, "eval_metric": xgb.eval_metric}
        if xgb.num_class is not None:
            given["num_class"] = str(xgb.num_class)
        return {**given, **extra}

    def records(self, count: int) -> list[bytes]:
        """Validation rows as the predict function sends them: without the target."""
        return [line.split(b",", 1)[1] for line in self.validation_lines[:count]]


def _write_channels(root: Path, name: str, dataset: Any, labels: list[str]) -> Channels:
    header = [f"x{i}" for i in range(dataset.data.shape[1])] + ["target"]
    lines = [",".join(header)]
    lines += [
        ",".join(f"{v:g}" for v in row) + f",{label}" for row, label in zip(dataset.data, labels, strict=True)
    ]
    train_sink, validation_sink = Lines(), Lines()
    outcome = transform_csv(
        lambda: io.BytesIO(("\n".join(lines) + "\n").encode()),
        stored_schema=None,
        options=OPTIONS,
        train=train_sink,
        validation=validation_sink,
    )
    channels = Channels(outcome.schema, root / name / "train", root / name / "validation", [])
    for path, sink in ((channels.train, train_sink), (channels.validation, validation_sink)):
        path.mkdir(parents=True)
        (path / "part-00000.csv").write_bytes(bytes(sink.data))
    return Channels(
        outcome.schema, channels.train, channels.validation, bytes(validation_sink.data).splitlines()
    )


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Channels:
    data = load_breast_cancer()
    return _write_channels(
        tmp_path_factory.mktemp("data"), "binary", data, [data.target_names[t] for t in data.target]
    )


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory: pytest.TempPathFactory) -> Channels:
    data = load_iris()
    return _write_channels(
        tmp_path_factory.mktemp("data"), "multi", data, [data.target_names[t] for t in data.target]
    )


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Channels:
    data = load_diabetes()
    return _write_channels(
        tmp_path_factory.mktemp("data"), "regression", data, [f"{t:g}" for t in data.target]
    )


def _reference(channels: Channels, params: dict[str, Any], rounds: int) -> tuple[dict[str, Any], Any]:
    """xgboost's own evaluation of `params` on the same files, read the same way."""
    matrices = {
        name: xgboost.DMatrix(f"{path}?format=csv&label_column=0&delimiter=,")
        for name, path in channels.paths.items()
    }
    evals: dict[str, Any] = {}
    booster = xgboost.train(
        {"nthread": 1, **params},
        matrices["train"],
        num_boost_round=rounds,
        evals=[(matrices["train"], "train"), (matrices["validation"], "validation")],
        evals_result=evals,
        verbose_eval=False,
    )
    return evals, booster


def _model(outcome: TrainingOutcome) -> xgboost.Booster:
    with tarfile.open(fileobj=io.BytesIO(outcome.model_archive)) as archive:
        member = archive.extractfile(archive.getmember("xgboost-model"))
        assert member is not None
        raw = member.read()
    booster = xgboost.Booster()
    booster.load_model(bytearray(raw))
    return booster


def _validation_matrix(channels: Channels) -> xgboost.DMatrix:
    return xgboost.DMatrix(f"{channels.validation}?format=csv&label_column=0&delimiter=,")


# --- metrics ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "metric", "params"),
    [
        ("binary", "auc", {"objective": "binary:logistic", "eval_metric": "auc"}),
        (
            "multiclass",
            "mlogloss",
            {"objective": "multi:softprob", "num_class": 3, "eval_metric": "mlogloss"},
        ),
        # rmse is also one of the container's own metrics; xgboost's default for the objective is rmse too,
        # and the log shows the one value.
        ("regression", "rmse", {"objective": "reg:squarederror"}),
    ],
)
def test_the_metrics_are_xgboosts_evaluation_on_both_channels_as_the_log_prints_them(
    request: pytest.FixtureRequest, problem: str, metric: str, params: dict[str, Any]
) -> None:
    channels: Channels = request.getfixturevalue(problem)
    outcome = train(channels.hyperparameters(num_round="12"), channels.paths)
    evals, _ = _reference(channels, params, rounds=12)

    assert set(outcome.final_metrics) == {f"train:{metric}", f"validation:{metric}"}
    for data in ("train", "validation"):
        # As printed, to 5 decimals (the container's rmse and xgboost's may straddle a rounding step).
        expected = evals[data][metric]
        assert outcome.history[f"{data}:{metric}"] == pytest.approx(expected, abs=1.0001e-5)
        assert all(v == float(f"{v:.5f}") for v in outcome.history[f"{data}:{metric}"]), "5 decimals"
        assert outcome.final_metrics[f"{data}:{metric}"] == outcome.history[f"{data}:{metric}"][-1]
    assert outcome.rounds == 12
    assert outcome.log[0].startswith(f"[0]\ttrain-{metric}:")
    assert outcome.xgboost_version == xgboost.__version__


def test_multiclass_accuracy_is_the_containers_own_metric_beside_xgboosts_default(
    multiclass: Channels,
) -> None:
    outcome = train(multiclass.hyperparameters(eval_metric="accuracy", num_round="8"), multiclass.paths)

    # The container computes accuracy itself and drops it from eval_metric, so xgboost adds its default.
    assert set(outcome.final_metrics) == {
        "train:accuracy",
        "validation:accuracy",
        "train:mlogloss",
        "validation:mlogloss",
    }
    validation = _validation_matrix(multiclass)
    predicted = _model(outcome).predict(validation).argmax(axis=1)
    expected = accuracy_score(validation.get_label(), predicted)
    assert outcome.final_metrics["validation:accuracy"] == pytest.approx(round(expected, 5), abs=1e-12)


def test_binary_accuracy_counts_every_probability_as_positive_as_3_0_5_does(binary: Channels) -> None:
    """The defect the stack refuses these metrics for: custom_metric gets probabilities, thresholded at 0."""
    outcome = train(binary.hyperparameters(eval_metric="accuracy", num_round="5"), binary.paths)

    positives = float(np.mean(_validation_matrix(binary).get_label() == 1))
    assert outcome.history["validation:accuracy"] == [round(positives, 5)] * 5
    assert outcome.final_metrics["validation:logloss"] > 0, "xgboost's default binary metric is kept"


def test_the_tuning_objective_metric_is_computed_and_early_stopping_watches_it(binary: Channels) -> None:
    outcome = train(
        binary.hyperparameters(
            eval_metric="logloss", _tuning_objective_metric="validation:auc", early_stopping_rounds="3"
        ),
        binary.paths,
    )
    assert {"validation:auc", "validation:logloss"} <= set(outcome.final_metrics)
    aucs = outcome.history["validation:auc"]
    best = aucs.index(max(aucs))
    # Stopped `early_stopping_rounds` after the last improvement of validation:auc, not of logloss.
    assert outcome.rounds == min(best + 1 + 3, 20)


def test_early_stopping_keeps_the_best_round_in_the_model_but_reports_the_last(regression: Channels) -> None:
    outcome = train(regression.hyperparameters(num_round="60", early_stopping_rounds="4"), regression.paths)

    rmse = outcome.history["validation:rmse"]
    best = rmse.index(min(rmse))
    assert outcome.rounds == best + 1 + 4 < 60, "the job ends four rounds after its best"
    assert outcome.final_metrics["validation:rmse"] == rmse[-1] > rmse[best]
    assert _model(outcome).num_boosted_rounds() == best + 1


# --- model artifact --------------------------------------------------------------------------------


def test_the_archive_holds_xgboost_model_as_save_model_writes_it(binary: Channels, tmp_path: Path) -> None:
    outcome = train(binary.hyperparameters(num_round="3"), binary.paths)
    with tarfile.open(fileobj=io.BytesIO(outcome.model_archive), mode="r:gz") as archive:
        assert archive.getnames() == ["xgboost-model"]
        member = archive.extractfile("xgboost-model")
        assert member is not None
        stored = member.read()

    _, reference = _reference(binary, {"objective": "binary:logistic", "eval_metric": "auc"}, rounds=3)
    with pytest.warns(UserWarning, match="UBJSON"):
        reference.save_model(tmp_path / "xgboost-model")
    assert stored == (tmp_path / "xgboost-model").read_bytes()
    assert stored.startswith(b"{"), "UBJSON, not xgboost's old binary format"


# --- the tuner's early stopping ---------------------------------------------------------------------


def test_on_round_sees_each_rounds_metrics_and_false_stops_the_job(binary: Channels) -> None:
    seen: list[tuple[int, dict[str, float]]] = []

    def on_round(round_: int, metrics: Any) -> bool:
        seen.append((round_, dict(metrics)))
        return round_ < 3

    outcome = train(binary.hyperparameters(), binary.paths, on_round=on_round)

    assert [r for r, _ in seen] == [1, 2, 3]
    assert [m["validation:auc"] for _, m in seen] == outcome.history["validation:auc"]
    assert outcome.stopped and outcome.rounds == 3
    assert outcome.final_metrics == seen[-1][1]
    with tarfile.open(fileobj=io.BytesIO(outcome.model_archive)) as archive:
        assert archive.getnames() == [], "SIGTERM ends the container before it saves a model"


def test_a_stopped_job_keeps_the_model_so_far_with_save_model_on_termination(binary: Channels) -> None:
    outcome = train(
        binary.hyperparameters(save_model_on_termination="true", early_stopping_rounds="5"),
        binary.paths,
        on_round=lambda round_, _: round_ < 1,
    )
    assert outcome.stopped and outcome.rounds == 1
    assert _model(outcome).num_boosted_rounds() == 1


def test_an_exception_of_on_round_reaches_the_caller_unchanged(binary: Channels) -> None:
    class Interrupted(Exception):
        pass

    def on_round(round_: int, metrics: Any) -> bool:
        raise Interrupted("the service went away")

    with pytest.raises(Interrupted, match="the service went away"):
        train(binary.hyperparameters(), binary.paths, on_round=on_round)


# --- failures --------------------------------------------------------------------------------------


def _failure(hyperparameters: dict[str, str], channels: dict[str, Path]) -> TrainingFailed:
    with pytest.raises(TrainingFailed) as failed:
        train(hyperparameters, channels)
    return failed.value


@pytest.mark.parametrize(
    ("change", "kind", "message"),
    [
        ({"num_round": None}, USER_ERROR, "Missing required hyperparameter: num_round"),
        ({"num_round": "0"}, USER_ERROR, "Hyperparameter num_round: 0 is not in [1, +inf)"),
        (
            {"num_round": "ten"},
            USER_ERROR,
            "Hyperparameter num_round: could not parse value (caused by ValueError)",
        ),
        (
            {"num_round": "2.5"},
            USER_ERROR,
            "Hyperparameter num_round: could not parse value (caused by ValueError)",
        ),
        ({"eta": "2"}, USER_ERROR, "Hyperparameter eta: 2.0 is not in [0, 1]"),
        ({"learning_rate": "1.5"}, USER_ERROR, "Hyperparameter eta: 1.5 is not in [0, 1]"),
        ({"subsample": "0"}, USER_ERROR, "Hyperparameter subsample: 0.0 is not in (0, 1]"),
        ({"max_depth": "-1"}, USER_ERROR, "Hyperparameter max_depth: -1 is not in [0, +inf)"),
        ({"silent": "0"}, USER_ERROR, "Extraneous hyperparameter found: silent"),
        (
            {"booster": "forest"},
            USER_ERROR,
            "Hyperparameter booster: forest is not in ['gbtree', 'gblinear', 'dart']",
        ),
        (
            {"objective": "multi:softprob"},
            USER_ERROR,
            "Require input for parameter 'num_class' for multi-classification",
        ),
        (
            {"objective": "reg:squarederror"},
            USER_ERROR,
            "Metric 'auc' can only be applied for classification and ranking problems.",
        ),
        ({"eval_metric": "error@x"}, USER_ERROR, "Threshold value 't' in 'error@t' expects float input."),
        # Without an objective the container's eval_metric check looks it up and fails.
        ({"objective": None}, "KeyError", "'objective'"),
    ],
)
def test_a_bad_hyperparameter_fails_the_job_with_the_containers_message(
    binary: Channels, change: dict[str, str | None], kind: str, message: str
) -> None:
    given: dict[str, str | None] = {**binary.hyperparameters(), **change}
    failed = _failure({k: v for k, v in given.items() if v is not None}, binary.paths)

    assert (failed.exception_type, failed.message) == (kind, message)
    assert str(failed).startswith("AlgorithmError: framework error: \nTraceback (most recent call last):\n")
    assert str(failed).endswith(f"{kind}: {message}\n\n{message}")


def test_an_unknown_eval_metric_is_refused_naming_every_metric_the_container_knows(binary: Channels) -> None:
    failed = _failure(binary.hyperparameters(eval_metric="auc,f2"), binary.paths)
    assert failed.message.startswith(
        "Hyperparameter eval_metric: value ['auc', 'f2'] not in range ['accuracy', "
    )
    assert "'tweedie-nloglik']" in failed.message


def test_the_failure_reason_is_cut_at_sagemakers_1024_characters(binary: Channels) -> None:
    failed = _failure(binary.hyperparameters(eval_metric=",".join(["f2"] * 100)), binary.paths)
    assert len(failed.message) > 1024
    assert len(str(failed)) == 1024


def test_xgboost_errors_the_container_knows_are_the_users_and_others_the_algorithms(
    regression: Channels,
) -> None:
    labels = _failure(
        regression.hyperparameters(objective="binary:logistic", eval_metric="logloss", base_score="0.5"),
        regression.paths,
    )
    assert labels.exception_type == USER_ERROR
    assert "label must be in [0,1] for logistic regression" in labels.message

    # Without a base_score xgboost 3 estimates one from the labels and words its refusal differently from
    # the container's list (xgb_constants.py:59-61): the algorithm's error, then.
    estimated = _failure(
        regression.hyperparameters(objective="binary:logistic", eval_metric="logloss"), regression.paths
    )
    assert estimated.exception_type == ALGORITHM_ERROR
    assert estimated.message.startswith("XGB train call failed with exception:\n ")
    assert "base_score must be in (0,1) for logistic loss" in estimated.message

    # xgboost 3 no longer knows the tree method the container still accepts.
    gpu = _failure(regression.hyperparameters(tree_method="gpu_hist"), regression.paths)
    assert gpu.exception_type == ALGORITHM_ERROR


# --- channels --------------------------------------------------------------------------------------


def _channel(root: Path, name: str, files: dict[str, bytes]) -> Path:
    path = root / name
    path.mkdir()
    for file, data in files.items():
        (path / file).write_bytes(data)
    return path


def test_empty_channels_fail_as_the_container_reports_them(binary: Channels, tmp_path: Path) -> None:
    empty = _channel(tmp_path, "empty", {})
    failed = _failure(binary.hyperparameters(), {"train": empty, "validation": binary.validation})
    assert failed.message == "No data in training channel path /opt/ml/input/data/train"

    failed = _failure(binary.hyperparameters(), {"train": binary.train, "validation": empty})
    assert failed.message == "No data in validation channel path /opt/ml/input/data/validation"

    failed = _failure(binary.hyperparameters(), {"validation": binary.validation})
    assert failed.message == "Missing required channel: train"


def test_a_hidden_file_or_an_empty_file_in_a_channel_fails_the_job(binary: Channels, tmp_path: Path) -> None:
    data = (binary.train / "part-00000.csv").read_bytes()
    hidden = _channel(tmp_path, "hidden", {"part-00000.csv": data, ".part-00001.csv.crc": b"x"})
    failed = _failure(binary.hyperparameters(), {"train": hidden})
    assert failed.message == "Hidden file found in the data path! Remove that before training."

    empty_file = _channel(tmp_path, "empty-file", {"part-00000.csv": data, "part-00001.csv": b""})
    failed = _failure(binary.hyperparameters(), {"train": empty_file})
    assert failed.message == "Could not determine delimiter on line :\nCould not determine delimiter"


def test_every_file_of_a_channel_is_read(multiclass: Channels, tmp_path: Path) -> None:
    lines = (multiclass.train / "part-00000.csv").read_bytes().splitlines(keepends=True)
    split = _channel(
        tmp_path,
        "split",
        {
            "part-00000.csv": b"".join(lines[: len(lines) // 2]),
            "part-00001.csv": b"".join(lines[len(lines) // 2 :]),
        },
    )
    whole = train(multiclass.hyperparameters(num_round="5"), multiclass.paths)
    parts = train(
        multiclass.hyperparameters(num_round="5"), {"train": split, "validation": multiclass.validation}
    )
    assert parts.history == whole.history


def test_a_header_line_is_read_as_a_row_labelled_0_with_every_feature_missing(
    regression: Channels, tmp_path: Path
) -> None:
    data = (regression.train / "part-00000.csv").read_bytes()
    width = data.split(b"\n", 1)[0].count(b",")
    header = _channel(
        tmp_path, "header", {"part-00000.csv": b"target," + b",".join([b"x"] * width) + b"\n" + data}
    )
    missing = _channel(tmp_path, "missing", {"part-00000.csv": b"0" + b"," * width + b"\n" + data})

    with_header = train(regression.hyperparameters(num_round="5"), {"train": header})
    assert with_header.history == train(regression.hyperparameters(num_round="5"), {"train": missing}).history
    assert (
        with_header.history
        != train(regression.hyperparameters(num_round="5"), {"train": regression.train}).history
    )


# --- serving ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hosted(binary: Channels, multiclass: Channels, regression: Channels) -> dict[str, HostedModel]:
    return {
        name: HostedModel.from_archive(
            train(channels.hyperparameters(num_round="10"), channels.paths).model_archive
        )
        for name, channels in (("binary", binary), ("multiclass", multiclass), ("regression", regression))
    }


def _scores(answer: tuple[int, str, bytes]) -> list[Any]:
    status, content_type, body = answer
    assert (status, content_type) == (200, "application/json"), body
    return [item["score"] for item in json.loads(body)["predictions"]]


def _predictions(model: HostedModel, rows: list[bytes]) -> np.ndarray:
    """The booster's own predictions of `rows`, an empty field missing."""
    values = [[math.nan if v == b"" else float(v) for v in row.split(b",")] for row in rows]
    return np.asarray(model.boosters[0].predict(xgboost.DMatrix(np.array(values))))


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
def test_json_answers_hold_the_boosters_predictions_per_record(
    request: pytest.FixtureRequest, hosted: dict[str, HostedModel], problem: str
) -> None:
    channels: Channels = request.getfixturevalue(problem)
    model = hosted[problem]
    rows = channels.records(5)

    scores = _scores(model.invoke(b"\n".join(rows) + b"\n", "text/csv", "application/json"))

    assert np.allclose(np.array(scores), _predictions(model, rows))
    if problem == "multiclass":
        assert all(len(score) == 3 and math.isclose(sum(score), 1, rel_tol=1e-6) for score in scores)
    else:
        assert all(isinstance(score, float) for score in scores)
    if problem == "binary":
        assert all(0 < score < 1 for score in scores)


def test_csv_answers_are_one_line_per_record(
    hosted: dict[str, HostedModel], multiclass: Channels, binary: Channels
) -> None:
    status, content_type, body = hosted["multiclass"].invoke(
        b"\n".join(multiclass.records(2)), "text/csv", "text/csv"
    )
    assert (status, content_type) == (200, "text/csv; charset=utf-8")
    lines = body.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 3
    answered = [float(p) for line in lines[:-1] for p in line.split(",")]
    assert answered == pytest.approx(
        _predictions(hosted["multiclass"], multiclass.records(2)).ravel().tolist()
    )
    # No Accept, or */*, is the container's default, text/csv.
    for accept in (None, "*/*"):
        status, content_type, body = hosted["binary"].invoke(binary.records(1)[0], "text/csv", accept)
        assert (status, content_type) == (200, "text/csv; charset=utf-8")
        assert float(body.decode().strip()) == pytest.approx(
            float(_predictions(hosted["binary"], binary.records(1))[0])
        )


def test_the_default_accept_comes_from_the_models_environment(binary: Channels) -> None:
    outcome = train(binary.hyperparameters(num_round="2"), binary.paths)
    model = HostedModel.from_archive(
        outcome.model_archive, environment={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"}
    )
    assert len(_scores(model.invoke(binary.records(1)[0], "text/csv", None))) == 1


def test_missing_and_absent_values_are_missing_and_more_columns_than_the_model_are_refused(
    hosted: dict[str, HostedModel], binary: Channels
) -> None:
    model = hosted["binary"]
    row = binary.records(1)[0].split(b",")
    blanked = b",".join([row[0], b"", *row[2:]])
    shorter = b",".join(row[:-3])

    assert _scores(model.invoke(blanked, "text/csv", "application/json")) == pytest.approx(
        _predictions(model, [blanked]).tolist()
    )
    # Fewer columns: the missing ones are missing values.
    assert _scores(model.invoke(shorter, "text/csv", "application/json")) == pytest.approx(
        _predictions(model, [shorter + b"," * 3]).tolist()
    )
    status, content_type, body = model.invoke(b",".join([*row, b"1"]), "text/csv", "application/json")
    assert (status, content_type) == (400, "text/html; charset=utf-8")
    assert body.startswith(b"Unable to evaluate payload provided: ")
    assert b"Number of columns does not match number of features in booster" in body
    assert b"/miniconda3/lib/python3.10/site-packages/xgboost" in body, (
        "the container's paths, not this machine's"
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"1,abc,3", b"could not convert string to float"),
        (b"1,inf,3", b"Input data contains `inf`"),
        # Beyond float32's range: infinite once the DMatrix holds it.
        (b"1,1e39,3", b"Input data contains `inf`"),
        (b"1,2,3\n1,2", b"inhomogeneous shape"),
        (b"1,2,3\n\n1,2,3", b"inhomogeneous shape"),
    ],
)
def test_a_body_that_is_not_numeric_csv_is_refused_with_415(
    hosted: dict[str, HostedModel], body: bytes, detail: bytes
) -> None:
    status, content_type, answer = hosted["regression"].invoke(body, "text/csv", "application/json")
    assert (status, content_type) == (415, "text/html; charset=utf-8")
    assert answer.startswith(
        b"Loading csv data failed with Exception, please ensure data is in csv format:\n <class "
    )
    assert detail in answer


def test_surrounding_line_ends_are_stripped_and_an_empty_body_has_no_content(
    hosted: dict[str, HostedModel], regression: Channels
) -> None:
    model = hosted["regression"]
    row = regression.records(1)[0]
    assert _scores(model.invoke(b"\n" + row + b"\r\n\n", "text/csv", "application/json")) == pytest.approx(
        _predictions(model, [row]).tolist()
    )
    assert model.invoke(b"", "text/csv", "application/json") == (204, "text/html; charset=utf-8", b"")


def test_content_types_other_than_csv_and_libsvm_are_refused_and_libsvm_is_read(
    hosted: dict[str, HostedModel], regression: Channels
) -> None:
    model = hosted["regression"]
    row = regression.records(1)[0]
    status, _, body = model.invoke(row, "application/json", "application/json")
    assert status == 415
    assert body.startswith(b"application/json is not an accepted ContentType: csv, libsvm, parquet, ")

    libsvm = " ".join(f"{i}:{v.decode()}" for i, v in enumerate(row.split(b","))).encode()
    # No Content-Type header is libsvm to the container.
    for content_type in ("text/libsvm", None):
        assert _scores(model.invoke(libsvm, content_type, "application/json")) == pytest.approx(
            _predictions(model, [row]).tolist()
        )


def test_an_unsupported_accept_is_406_after_prediction_and_jsonlines_a_500(
    hosted: dict[str, HostedModel], regression: Channels
) -> None:
    model = hosted["regression"]
    row = regression.records(1)[0]
    status, _, body = model.invoke(row, "text/csv", "application/xml")
    assert status == 406
    assert body.startswith(
        b"Accept type application/xml is not supported. Please use supported accept types: ["
    )
    # A body the container cannot read is refused before the Accept is looked at.
    assert model.invoke(b"x", "text/csv", "application/xml")[0] == 415

    status, content_type, body = model.invoke(row, "text/csv", "application/jsonlines")
    assert (status, content_type) == (500, "text/html; charset=utf-8")
    assert b"<title>500 Internal Server Error</title>" in body


def test_softmax_models_answer_the_class_index(multiclass: Channels) -> None:
    outcome = train(multiclass.hyperparameters(objective="multi:softmax", num_round="5"), multiclass.paths)
    model = HostedModel.from_archive(outcome.model_archive)
    scores = _scores(model.invoke(b"\n".join(multiclass.records(4)), "text/csv", "application/json"))
    assert all(score in (0.0, 1.0, 2.0) for score in scores)


# --- loading the model -----------------------------------------------------------------------------


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_model_that_is_neither_a_pickle_nor_an_xgboost_model_fails_to_load() -> None:
    with pytest.raises(ModelLoadFailed) as failed:
        HostedModel.from_archive(_archive({"xgboost-model": b"{not a model"}))
    assert str(failed.value).startswith(
        "Model /opt/ml/model/xgboost-model cannot be loaded:\nPickle load error=invalid load key, '{'.\n"
        "XGB load model error="
    )
    with pytest.raises(ModelLoadFailed, match="list index out of range"):
        HostedModel.from_archive(_archive({}))


def test_a_pickled_booster_loads_and_a_pickle_that_runs_code_does_not(
    binary: Channels, tmp_path: Path
) -> None:
    booster = _model(train(binary.hyperparameters(num_round="3"), binary.paths))
    model = HostedModel.from_archive(_archive({"xgboost-model": pickle.dumps(booster, protocol=4)}))
    rows = binary.records(2)
    assert _scores(model.invoke(b"\n".join(rows), "text/csv", "application/json")) == pytest.approx(
        booster.predict(xgboost.DMatrix(np.array([[float(v) for v in r.split(b",")] for r in rows]))).tolist()
    )
    # A pickled model is checked for its width (serve_utils.py:200-222): two columns short is refused.
    status, _, body = model.invoke(b",".join(rows[0].split(b",")[:-2]), "text/csv", "application/json")
    assert status == 400
    assert b"Feature size of csv inference data" in body

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
            return (Path.touch, (marker,))

    with pytest.raises(ModelLoadFailed):
        HostedModel.from_archive(_archive({"xgboost-model": pickle.dumps(Payload())}))
    assert not marker.exists()


def test_every_model_file_of_the_archive_answers_together_averaged(regression: Channels) -> None:
    first = train(regression.hyperparameters(num_round="2"), regression.paths)
    second = train(regression.hyperparameters(num_round="6"), regression.paths)
    raw = [bytes(_model(o).save_raw("ubj")) for o in (first, second)]
    model = HostedModel.from_archive(_archive({"xgboost-model-0": raw[0], "xgboost-model-1": raw[1]}))
    rows = regression.records(3)

    single = [HostedModel.from_archive(o.model_archive) for o in (first, second)]
    expected = np.mean([_predictions(m, rows) for m in single], axis=0)
    assert _scores(model.invoke(b"\n".join(rows), "text/csv", "application/json")) == pytest.approx(
        expected.tolist()
    )

    alone = HostedModel.from_archive(
        _archive({"xgboost-model-0": raw[0], "xgboost-model-1": raw[1]}),
        environment={"SAGEMAKER_INFERENCE_ENSEMBLE": "false"},
    )
    assert len(alone.boosters) == 1
