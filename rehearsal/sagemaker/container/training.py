"""A training job of the built-in algorithm (`train`), following algorithm_mode/train.py
`sagemaker_train` and `train_job`: the hyperparameters validated and the channels read as the container
does (`hyperparameters`, `channels`), then xgboost trains `num_round` rounds on the watchlist
`train`/`validation`, with eval_metric as given (or xgboost's default for the objective), the container's
scikit-learn metrics (`metrics`) passed as `custom_metric`, and `early_stopping_rounds` on the validation
channel keeping the best iteration (callback.py:112-121, save_best).

The model is saved as `/opt/ml/model/xgboost-model` (algorithm_mode/train.py:478-480) in xgboost 3.0.5's
default format for a name without extension, UBJSON, and SageMaker uploads that directory as
model.tar.gz. Where the older images differ: 1.2-2 pickles the booster (algorithm_mode/train.py:327-329
on that branch) and lets xgboost 1.2's own `early_stopping_rounds` keep every tree (serving then predicts
with `best_ntree_limit`); 1.3-1 to 1.7-1 save xgboost's binary format (the default of `save_model` without
an extension before xgboost 2.1).

Citations are into release-3.0.5 as the package docstring says; a bare `train.py` is
algorithm_mode/train.py.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xgboost

from rehearsal.sagemaker.container.callbacks import InOrder, RoundReporter, Stop
from rehearsal.sagemaker.container.channels import (
    data_size,
    read_channel,
    validate_channels,
    validate_data_files,
)
from rehearsal.sagemaker.container.content_types import CSV, PARQUET, get_content_type
from rehearsal.sagemaker.container.errors import (
    AlgorithmError,
    NotEmulated,
    ToolkitError,
    TrainingFailed,
    UserError,
    toolkit_name,
    traceback_name,
)
from rehearsal.sagemaker.container.hyperparameters import validate_hyperparameters
from rehearsal.sagemaker.container.metrics import XGB_MAXIMIZE_METRICS, eval_metrics_and_feval
from rehearsal.sagemaker.container.paths import (
    CONTAINER_CHANNEL_DIR,
    CONTAINER_INPUT_LINKS,
    CONTAINER_MODEL_DIR,
    CONTAINER_SITE_PACKAGES,
)

# constants/xgb_constants.py:53-77: xgboost errors the container reports as the user's (UserError), not
# its own.
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
MODEL_NAME = "xgboost-model"  # constants/xgb_constants.py:96


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
        except ToolkitError as error:
            raise TrainingFailed(toolkit_name(error), workspace.container_text(error.message)) from error
        except Exception as error:
            raise TrainingFailed(traceback_name(type(error)), workspace.container_text(str(error))) from error


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
    validate_channels(channels, content_type)
    file_type = get_content_type(content_type)
    csv_weights = config.get("csv_weights", 0)
    if config.pop("use_dask_gpu_training", "false") == "true":
        # validate_gpu_train_configuration (distributed_gpu/distributed_gpu_training.py:48-85) on an
        # instance without a GPU, in File mode on one host.
        problems = ["Dask training is only available for `gpu_hist` training on GPU instances."]
        if file_type not in (CSV, PARQUET):
            problems.append("Dask training is only supported for CSV and Parquet input.")
        raise UserError(
            f"Some configurations unsuitable for Dask GPU training were found: {'. '.join(problems)}"
        )
    if "_kfold" in config:
        raise NotEmulated("_kfold cross-validation training is not emulated")
    train_path = Path(channels["train"])
    validation_path = Path(channels["validation"]) if "validation" in channels else None
    # get_validated_dmatrices (train.py:54-113).
    train_size = data_size(train_path)
    validation_size = data_size(validation_path) if validation_path is not None else 0
    if train_size > 0:
        validate_data_files(train_path, file_type)
    if validation_path is not None and validation_size > 0:
        validate_data_files(validation_path, file_type)
    train_matrix = (
        read_channel(train_path, file_type, csv_weights, workspace.links, threads) if train_size > 0 else None
    )
    validation_matrix = (
        read_channel(validation_path, file_type, csv_weights, workspace.links, threads)
        if validation_path is not None and validation_size > 0
        else None
    )
    # Single node (train.py:270-280).
    if train_matrix is None:
        raise UserError(f"No data in training channel path {CONTAINER_CHANNEL_DIR}/train")
    if validation_path is not None and validation_matrix is None:
        raise UserError(f"No data in validation channel path {CONTAINER_CHANNEL_DIR}/validation")
    return _train_job(config, train_matrix, validation_matrix, on_round, threads, workspace)


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
    cleaned, feval, tuning_objective_metric = eval_metrics_and_feval(
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
    reporter = RoundReporter(
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
    callbacks.append(Stop(reporter))
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
            callbacks=[InOrder(callbacks)],
            verbose_eval=False,
        )
    except Exception as error:
        if reporter.error is not None:
            raise _CallerError(reporter.error) from None
        # train.py:461-467.
        if any(known in str(error) for known in CUSTOMER_ERRORS):
            raise UserError(str(error)) from error
        raise AlgorithmError(f"XGB train call failed with exception:\n {error}") from error
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
