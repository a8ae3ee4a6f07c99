"""Hyperparameter tuning in the local SageMaker: CreateHyperParameterTuningJob runs the tuning job on a
thread of its own, which launches training jobs as the search proposes them, up to
MaxParallelTrainingJobs at once, each on a thread that does what a SageMaker training job does with the
built-in XGBoost container:

1. Starting, Downloading: every object under each channel's S3Prefix, or every object its ManifestFile
   lists, is downloaded, as the job's RoleArn, into a directory per channel (the container's
   /opt/ml/input/data/<channel>), at its key relative to the prefix. A ShardedByS3Key channel is read
   whole: the local job is every instance at once, and the instances' shards together are the channel.
2. Training: the container trains on StaticHyperParameters, the trial's values and
   `_tuning_objective_metric` (the hyperparameter SageMaker adds for a tuning job's objective,
   sagemaker-xgboost-container train_utils.py). After each round the tuner sees the objective; with early
   stopping on, a job the search gives up on stops there (status Stopped, its model as it was then).
   StopHyperParameterTuningJob stops the running jobs the same way; a job past its
   StoppingCondition.MaxRuntimeInSeconds (compressed by the rehearsal's time scale) stops with
   SecondaryStatus MaxRuntimeExceeded.
3. Uploading: model.tar.gz goes to `<S3OutputPath>/<training job>/output/model.tar.gz`, encrypted with the
   OutputDataConfig's KmsKeyId (SSE-KMS) when one is given.

Training jobs are named as SageMaker names a tuning job's jobs: the tuning job's name, a three-digit
sequence number and eight random hex digits ("dev-6147-0001-003-1a2b3c4d"; CreateHyperParameterTuningJob:
"This name is the prefix for the names of all training jobs that this tuning job launches").
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from rehearsal.clock import TimeScale
from rehearsal.sagemaker.api import ServiceError
from rehearsal.sagemaker.container.errors import TrainingFailed
from rehearsal.sagemaker.container.training import train
from rehearsal.sagemaker.events import (
    TRAINING_JOB_STATE_CHANGE,
    TUNING_JOB_STATE_CHANGE,
    epoch_millis,
    tag_object,
)
from rehearsal.sagemaker.search import Trial, TuningSearch
from rehearsal.sagemaker.state import Context, validation

logger = logging.getLogger(__name__)

OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
# ParameterRanges: "the sum of the number of hyperparameters for all the ranges can't exceed the maximum"
# (30, the Array Members maximum of each range list).
MAX_TUNED_HYPERPARAMETERS = 30
FINISHED = frozenset({"Completed", "Failed", "Stopped"})
# xgboost threads per training job: the rehearsal runs MaxParallelTrainingJobs jobs side by side on a few
# cores, where each SageMaker job had an instance of its own.
TRAINING_THREADS = 1
# Called as a training job starts and ends: (tuning job, training job, status, objective value or None).
OnTrial = Callable[[str, str, str, float | None], None]


@dataclass
class TrainingJob:
    name: str
    arn: str
    tuning_job: str
    tuning_job_arn: str
    definition: dict[str, Any]
    hyperparameters: dict[str, str]
    tuned: dict[str, str]
    creation_time: datetime
    status: str = "InProgress"
    secondary_status: str = "Starting"
    transitions: list[dict[str, Any]] = field(default_factory=list)
    failure_reason: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    last_modified: datetime | None = None
    final_metrics: list[dict[str, Any]] = field(default_factory=list)
    objective_metric: str = ""
    objective: float | None = None
    objective_status: str = "Pending"
    # Each metric per round, as the container logged it.
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def artifact(self) -> str:
        output = self.definition["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{output}/{self.name}/output/model.tar.gz"

    def describe(self) -> dict[str, Any]:
        definition = self.definition
        answer: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TuningJobArn": self.tuning_job_arn,
            "ModelArtifacts": {"S3ModelArtifacts": self.artifact},
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary_status,
            "HyperParameters": dict(self.hyperparameters),
            "AlgorithmSpecification": definition["AlgorithmSpecification"],
            "RoleArn": definition["RoleArn"],
            "InputDataConfig": definition.get("InputDataConfig", []),
            "OutputDataConfig": definition["OutputDataConfig"],
            "ResourceConfig": definition.get("ResourceConfig", {}),
            "StoppingCondition": definition["StoppingCondition"],
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified or self.creation_time,
            "SecondaryStatusTransitions": self.transitions,
            "FinalMetricDataList": self.final_metrics,
            "EnableNetworkIsolation": bool(definition.get("EnableNetworkIsolation", False)),
            "EnableInterContainerTrafficEncryption": bool(
                definition.get("EnableInterContainerTrafficEncryption", False)
            ),
            "EnableManagedSpotTraining": bool(definition.get("EnableManagedSpotTraining", False)),
        }
        for member, value in (
            ("FailureReason", self.failure_reason),
            ("TrainingStartTime", self.start_time),
            ("TrainingEndTime", self.end_time),
            ("VpcConfig", definition.get("VpcConfig")),
        ):
            if value is not None:
                answer[member] = value
        if self.start_time and self.end_time:
            seconds = max(1, round((self.end_time - self.start_time).total_seconds()))
            answer["TrainingTimeInSeconds"] = answer["BillableTimeInSeconds"] = seconds
        return answer

    def summary(self) -> dict[str, Any]:
        """HyperParameterTrainingJobSummary."""
        answer: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TuningJobName": self.tuning_job,
            "CreationTime": self.creation_time,
            "TrainingJobStatus": self.status,
            "TunedHyperParameters": dict(self.tuned),
            "ObjectiveStatus": self.objective_status,
        }
        for member, value in (
            ("TrainingStartTime", self.start_time),
            ("TrainingEndTime", self.end_time),
            ("FailureReason", self.failure_reason),
        ):
            if value is not None:
                answer[member] = value
        if self.objective is not None:
            answer["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "MetricName": self.objective_metric,
                "Value": self.objective,
            }
        return answer


@dataclass
class TuningJob:
    name: str
    arn: str
    config: dict[str, Any]
    definition: dict[str, Any]
    tags: list[dict[str, str]]
    creation_time: datetime
    status: str = "InProgress"
    failure_reason: str | None = None
    end_time: datetime | None = None
    last_modified: datetime | None = None
    training_jobs: list[str] = field(default_factory=list)
    # The search's trial number -> the training job that ran it.
    trials: dict[int, str] = field(default_factory=dict)
    best: str | None = None
    # The tuning job's own record of its best job as it ended, which DescribeHyperParameterTuningJob shows
    # apart from the training job's record (DescribeTrainingJob).
    best_summary: dict[str, Any] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    runner: threading.Thread | None = None

    @property
    def objective(self) -> dict[str, str]:
        return dict(self.config.get("HyperParameterTuningJobObjective", {}))

    def counters(self, jobs: Mapping[str, TrainingJob]) -> tuple[dict[str, int], dict[str, int]]:
        """TrainingJobStatusCounters and ObjectiveStatusCounters."""
        mine = [jobs[name] for name in self.training_jobs if name in jobs]
        status = {
            "Completed": sum(j.status == "Completed" for j in mine),
            "InProgress": sum(j.status in ("InProgress", "Stopping") for j in mine),
            "RetryableError": 0,
            "NonRetryableError": sum(j.status == "Failed" for j in mine),
            "Stopped": sum(j.status == "Stopped" for j in mine),
        }
        objective = {
            name: sum(j.objective_status == name for j in mine) for name in ("Succeeded", "Pending", "Failed")
        }
        return status, objective

    def describe(self, jobs: Mapping[str, TrainingJob]) -> dict[str, Any]:
        status_counters, objective_counters = self.counters(jobs)
        answer: dict[str, Any] = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobConfig": self.config,
            "TrainingJobDefinition": self.definition,
            "HyperParameterTuningJobStatus": self.status,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified or self.creation_time,
            "TrainingJobStatusCounters": status_counters,
            "ObjectiveStatusCounters": objective_counters,
        }
        if self.end_time is not None:
            answer["HyperParameterTuningEndTime"] = self.end_time
        if self.failure_reason:
            answer["FailureReason"] = self.failure_reason
        if self.best is not None and self.best in jobs:
            answer["BestTrainingJob"] = jobs[self.best].summary()
        elif self.best_summary is not None:
            answer["BestTrainingJob"] = self.best_summary
        return answer

    def summary(self, jobs: Mapping[str, TrainingJob]) -> dict[str, Any]:
        status_counters, objective_counters = self.counters(jobs)
        answer: dict[str, Any] = {
            "HyperParameterTuningJobName": self.name,
            "HyperParameterTuningJobArn": self.arn,
            "HyperParameterTuningJobStatus": self.status,
            "Strategy": self.config["Strategy"],
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified or self.creation_time,
            "TrainingJobStatusCounters": status_counters,
            "ObjectiveStatusCounters": objective_counters,
            "ResourceLimits": self.config["ResourceLimits"],
        }
        if self.end_time is not None:
            answer["HyperParameterTuningEndTime"] = self.end_time
        return answer


class ChannelUnreadable(Exception):
    """A channel's data could not be downloaded; str() is the FailureReason."""


class Training:
    def __init__(self, context: Context, *, time_scale: TimeScale, on_trial: OnTrial | None = None) -> None:
        self._ctx = context
        self._scale = time_scale
        self._on_trial = on_trial
        self.tuning_jobs: dict[str, TuningJob] = {}
        self.training_jobs: dict[str, TrainingJob] = {}
        # Defects met while running jobs (a training job then fails with an internal error): for tests.
        self.failures: list[Exception] = []

    # ------------------------------------------------------------------------------------- operations

    def create_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["HyperParameterTuningJobName"]
        config = request["HyperParameterTuningJobConfig"]
        arn = self._ctx.arn("hyper-parameter-tuning-job", name)
        definition = self._definition(request)
        search = self._search(name, config, definition)
        with self._ctx.lock:
            self._refuse_duplicate(name, arn)
            now = self._ctx.now()
            job = TuningJob(
                name, arn, config, definition, list(request.get("Tags", [])), now, last_modified=now
            )
            self.tuning_jobs[name] = job
            self._ctx.tag(arn, job.tags)
            self._emit_tuning(job)
            job.runner = threading.Thread(
                target=self._run, args=(job, search), name=f"tuning-{name}", daemon=True
            )
            job.runner.start()
        return {"HyperParameterTuningJobArn": arn}

    def describe_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            return self._tuning_job(request["HyperParameterTuningJobName"]).describe(self.training_jobs)

    def list_hyper_parameter_tuning_jobs(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            items = [job.summary(self.training_jobs) for job in self.tuning_jobs.values()]
        return self._ctx.page(
            items,
            "HyperParameterTuningJobSummaries",
            request,
            name_member="HyperParameterTuningJobName",
            status_member="HyperParameterTuningJobStatus",
            sort_keys={
                "Name": "HyperParameterTuningJobName",
                "Status": "HyperParameterTuningJobStatus",
                "CreationTime": "CreationTime",
            },
            default_sort="Name",
            default_order="Ascending",
        )

    def stop_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            job = self._tuning_job(request["HyperParameterTuningJobName"])
            if job.status != "InProgress":
                raise validation(f"The job {job.name} is not in progress.")
            job.stop.set()
            self._set_tuning_status(job, "Stopping")
        return {}

    def list_training_jobs_for_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            job = self._tuning_job(request["HyperParameterTuningJobName"])
            summaries = [
                self.training_jobs[n].summary() for n in job.training_jobs if n in self.training_jobs
            ]
        if request.get("SortBy") == "FinalObjectiveMetricValue":
            # "any training jobs that did not return an objective metric are not listed"
            summaries = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            for summary in summaries:
                summary["_objective"] = summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        answer = self._ctx.page(
            summaries,
            "TrainingJobSummaries",
            request,
            name_member="TrainingJobName",
            status_member="TrainingJobStatus",
            sort_keys={
                "Name": "TrainingJobName",
                "CreationTime": "CreationTime",
                "Status": "TrainingJobStatus",
                "FinalObjectiveMetricValue": "_objective",
            },
            default_sort="Name",
            default_order="Ascending",
        )
        for summary in answer["TrainingJobSummaries"]:
            summary.pop("_objective", None)
        return answer

    def describe_training_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TrainingJobName"]
        with self._ctx.lock:
            if name not in self.training_jobs:
                raise validation(f"Requested resource not found: {name}")
            return self.training_jobs[name].describe()

    def _tuning_job(self, name: str) -> TuningJob:
        job = self.tuning_jobs.get(name) or next(
            (j for j in self.tuning_jobs.values() if j.name.lower() == name.lower()), None
        )
        if job is None:
            raise ServiceError("ResourceNotFound", f"Amazon SageMaker can't find a tuning job called {name}.")
        return job

    def _refuse_duplicate(self, name: str, arn: str) -> None:
        # Tuning job names are unique per account and region and not case-sensitive (API reference).
        if any(j.name.lower() == name.lower() for j in self.tuning_jobs.values()):
            raise ServiceError(
                "ResourceInUse",
                "Hyperparameter tuning job names must be unique within an AWS account and region, and a "
                f"hyperparameter tuning job with this name already exists ({arn})",
            )

    # ------------------------------------------------------------------------------- request checks

    def _definition(self, request: dict[str, Any]) -> dict[str, Any]:
        """The one TrainingJobDefinition, checked against SageMaker's documented rules."""
        if request.get("TrainingJobDefinitions"):
            raise validation(
                "TrainingJobDefinitions (several algorithms in one tuning job) is not run by the local "
                "SageMaker: give one TrainingJobDefinition."
            )
        definition = request.get("TrainingJobDefinition")
        if definition is None:
            raise validation("Either TrainingJobDefinition or TrainingJobDefinitions must be specified.")
        config = request["HyperParameterTuningJobConfig"]
        if "HyperParameterTuningJobObjective" not in config and "TuningObjective" not in definition:
            raise validation("The tuning job must have an objective: HyperParameterTuningJobObjective.")
        ranges = config.get("ParameterRanges") or definition.get("HyperParameterRanges") or {}
        tuned = [r["Name"] for kind in ranges.values() if isinstance(kind, list) for r in kind]
        if len(tuned) > MAX_TUNED_HYPERPARAMETERS:
            raise validation(
                f"The tuning job searches {len(tuned)} hyperparameters; at most "
                f"{MAX_TUNED_HYPERPARAMETERS} may be given ranges."
            )
        overlap = sorted(set(tuned) & set(definition.get("StaticHyperParameters", {})))
        if overlap:
            raise validation(
                f"Hyperparameters {', '.join(overlap)} are both static and tunable: give each one either a "
                "static value or a range."
            )
        algorithm = definition["AlgorithmSpecification"]
        image = algorithm.get("TrainingImage", "")
        if "sagemaker-xgboost" not in image:
            what = image or "an AlgorithmName"
            raise validation(
                f"The local SageMaker runs the built-in XGBoost algorithm's image only, not {what}."
            )
        for channel in definition.get("InputDataConfig", []):
            source = channel["DataSource"].get("S3DataSource")
            if source is None or source["S3DataType"] not in ("S3Prefix", "ManifestFile"):
                raise validation(
                    f"Channel {channel['ChannelName']}: the local SageMaker reads S3Prefix and ManifestFile "
                    "data sources only."
                )
        return dict(definition)

    def _search(self, name: str, config: dict[str, Any], definition: dict[str, Any]) -> TuningSearch:
        search_config = dict(config)
        if "ParameterRanges" not in search_config and "HyperParameterRanges" in definition:
            search_config["ParameterRanges"] = definition["HyperParameterRanges"]
        if "HyperParameterTuningJobObjective" not in search_config:
            search_config["HyperParameterTuningJobObjective"] = definition["TuningObjective"]
        seed = zlib.crc32(name.lower().encode())
        try:
            return TuningSearch(
                search_config, seed=seed, static_hyperparameters=definition.get("StaticHyperParameters", {})
            )
        except (ValueError, NotImplementedError) as error:
            # The search's InvalidTuningConfig and NotEmulated: SageMaker's rules, or what is not run here.
            raise validation(str(error)) from None

    # ------------------------------------------------------------------------------------ the run

    def _run(self, job: TuningJob, search: TuningSearch) -> None:
        limit = int(job.config["ResourceLimits"]["MaxParallelTrainingJobs"])
        slots = threading.Semaphore(limit)
        workers: list[threading.Thread] = []
        number = 0
        try:
            while not job.stop.is_set():
                if not slots.acquire(timeout=0.05):
                    continue
                trial = search.ask()
                if trial is None:
                    slots.release()
                    break
                number += 1
                worker = threading.Thread(
                    target=self._train_trial,
                    args=(job, search, trial, number, slots),
                    name=f"training-{job.name}-{number:03d}",
                    daemon=True,
                )
                worker.start()
                workers.append(worker)
        except Exception as error:  # a defect in the search: the tuning job fails, loudly
            logger.exception("the tuning search failed", extra={"tuning_job": job.name})
            self.failures.append(error)
            job.stop.set()
        for worker in workers:
            worker.join()
        best = search.best()
        with self._ctx.lock:
            if best is not None:
                job.best = job.trials.get(best[0].number)
                if job.best in self.training_jobs:
                    job.best_summary = self.training_jobs[job.best].summary()
            if job.status == "Stopping":
                self._set_tuning_status(job, "Stopped")
            elif best is None:
                job.failure_reason = "All training jobs failed. Please check the training job logs."
                self._set_tuning_status(job, "Failed")
            else:
                self._set_tuning_status(job, "Completed")

    def _train_trial(
        self,
        tuning: TuningJob,
        search: TuningSearch,
        trial: Trial,
        number: int,
        slots: threading.Semaphore,
    ) -> None:
        try:
            self._train(tuning, search, trial, number)
        finally:
            slots.release()

    def _train(self, tuning: TuningJob, search: TuningSearch, trial: Trial, number: int) -> None:
        metric = search.objective_metric
        definition = tuning.definition
        static = dict(definition.get("StaticHyperParameters", {}))
        hyperparameters = {**static, **trial.hyperparameters, OBJECTIVE_HYPERPARAMETER: metric}
        name = f"{tuning.name}-{number:03d}-{secrets.token_hex(4)}"
        with self._ctx.lock:
            now = self._ctx.now()
            job = TrainingJob(
                name,
                self._ctx.arn("training-job", name),
                tuning.name,
                tuning.arn,
                definition,
                hyperparameters,
                dict(trial.hyperparameters),
                now,
                objective_metric=metric,
                start_time=now,
                last_modified=now,
            )
            self._transition(job, "Starting", "Preparing the instances for training")
            self.training_jobs[name] = job
            tuning.training_jobs.append(name)
            tuning.trials[trial.number] = name
            self._ctx.tag(job.arn, tuning.tags)
            self._emit_training(job)
        self._report(tuning, job)
        stopped = ""  # why training stopped early: "" (it did not), "Stopped", "MaxRuntimeExceeded"
        deadline = self._deadline(definition)

        def on_round(round_: int, metrics: Mapping[str, float]) -> bool:
            nonlocal stopped
            for metric_name, reported in metrics.items():
                job.history.setdefault(metric_name, []).append(float(reported))
            if tuning.stop.is_set():
                stopped = "Stopped"
                return False
            if deadline is not None and time.monotonic() > deadline:
                stopped = "MaxRuntimeExceeded"
                return False
            value = metrics.get(metric)
            if value is not None and not search.report(trial, round_, float(value)):
                stopped = "Stopped"
                return False
            return True

        try:
            with tempfile.TemporaryDirectory(prefix=f"{name}-") as workdir:
                with self._ctx.lock:
                    self._transition(job, "Downloading", "Downloading input data")
                channels = self._download_channels(job, Path(workdir))
                with self._ctx.lock:
                    self._transition(
                        job, "Training", "Training image download completed. Training in progress."
                    )
                outcome = train(
                    hyperparameters,
                    channels,
                    on_round=on_round,
                    content_type=self._content_type(definition),
                    threads=TRAINING_THREADS,
                )
            with self._ctx.lock:
                self._transition(job, "Uploading", "Uploading generated training model")
            self._upload(job, outcome.model_archive)
        except (TrainingFailed, ChannelUnreadable) as failed:
            self._tell(search, trial, None)
            self._end(tuning, job, "Failed", "Failed", failure=str(failed))
            return
        except Exception as error:  # a defect of the stand-in or the container emulation: loud, and Failed
            logger.exception("training job failed inside the local SageMaker", extra={"training_job": name})
            self.failures.append(error)
            self._tell(search, trial, None)
            self._end(tuning, job, "Failed", "Failed", failure=f"InternalServerError: {error}")
            return
        value = outcome.final_metrics.get(metric)
        self._tell(search, trial, None if value is None else float(value))
        with self._ctx.lock:
            end = self._ctx.now()
            job.final_metrics = [
                {"MetricName": metric_name, "Value": float(v), "Timestamp": end}
                for metric_name, v in outcome.final_metrics.items()
            ]
            job.history = {k: list(v) for k, v in outcome.history.items()}
            job.objective = None if value is None else float(value)
            job.objective_status = "Failed" if value is None else "Succeeded"
        status = "Stopped" if stopped else "Completed"
        self._end(tuning, job, status, stopped or "Completed")

    def _tell(self, search: TuningSearch, trial: Trial, value: float | None) -> None:
        """The trial's outcome to the search; a failure of the search's is a defect, kept and logged, and
        the training job still ends as it did."""
        try:
            search.tell(trial, value)
        except Exception as error:
            logger.exception("the tuning search failed on a finished trial")
            self.failures.append(error)

    @staticmethod
    def _content_type(definition: Mapping[str, Any]) -> str:
        """The train channel's ContentType, which the container reads all channels as (train.py:155); a
        channel without one is libsvm to the container (data_utils.py:86-122)."""
        for channel in definition.get("InputDataConfig", []):
            if channel["ChannelName"] == "train":
                return str(channel.get("ContentType") or "libsvm")
        return "libsvm"

    def _deadline(self, definition: Mapping[str, Any]) -> float | None:
        seconds = definition.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        if seconds is None or self._ctx.scheduler.manual:
            return None
        return time.monotonic() + self._scale.seconds(float(seconds))

    def _end(
        self, tuning: TuningJob, job: TrainingJob, status: str, secondary: str, failure: str | None = None
    ) -> None:
        with self._ctx.lock:
            job.failure_reason = failure
            if failure is not None:
                job.objective_status = "Failed"
            self._transition(job, secondary, failure or f"Training job {secondary.lower()}")
            job.status = status
            job.end_time = self._ctx.now()
            self._emit_training(job)
            tuning.last_modified = job.end_time
        self._report(tuning, job)

    def _report(self, tuning: TuningJob, job: TrainingJob) -> None:
        if self._on_trial is not None:
            self._on_trial(tuning.name, job.name, job.status, job.objective)

    def _transition(self, job: TrainingJob, status: str, message: str) -> None:
        now = self._ctx.now()
        if job.transitions:
            job.transitions[-1]["EndTime"] = now
        job.transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
        job.secondary_status = status
        job.last_modified = now

    # ------------------------------------------------------------------------------------------ S3

    def _download_channels(self, job: TrainingJob, workdir: Path) -> dict[str, Path]:
        s3 = self._ctx.s3_for_role(job.definition["RoleArn"])
        channels: dict[str, Path] = {}
        for channel in job.definition.get("InputDataConfig", []):
            name = channel["ChannelName"]
            source = channel["DataSource"]["S3DataSource"]
            uri = source["S3Uri"]
            target = workdir / name
            target.mkdir(parents=True)
            try:
                listed = channel_objects(s3, source)
                for bucket, key, relative in listed:
                    local = target / relative.lstrip("/")
                    local.parent.mkdir(parents=True, exist_ok=True)
                    local.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            except ClientError as error:
                raise ChannelUnreadable(
                    f"ClientError: Data download failed:Failed to download data. {error}"
                ) from None
            if not listed:
                bucket = uri.removeprefix("s3://").partition("/")[0]
                # The message SageMaker fails a job with when a channel's prefix holds nothing.
                raise ChannelUnreadable(
                    f'ClientError: Data download failed:No S3 objects found under S3 URL "{uri}" given in '
                    f"input data source. Please ensure that the bucket exists in the selected region "
                    f"({self._ctx.region}), that objects exist under that S3 prefix, and that the role "
                    f'"{job.definition["RoleArn"]}" has "s3:ListBucket" permissions on bucket "{bucket}".'
                )
            channels[name] = target
        return channels

    def _upload(self, job: TrainingJob, archive: bytes) -> None:
        bucket, _, key = job.artifact.removeprefix("s3://").partition("/")
        encryption: dict[str, str] = {}
        key_id = job.definition["OutputDataConfig"].get("KmsKeyId")
        if key_id:
            encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
        s3 = self._ctx.s3_for_role(job.definition["RoleArn"])
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=archive, **encryption)
        except ClientError as error:
            raise ChannelUnreadable(f"ClientError: Failed to upload the model artifacts: {error}") from None

    # -------------------------------------------------------------------------------------- events

    def _set_tuning_status(self, job: TuningJob, status: str) -> None:
        job.status = status
        job.last_modified = self._ctx.now()
        if status in FINISHED:
            job.end_time = job.last_modified
        self._emit_tuning(job)

    def _emit_tuning(self, job: TuningJob) -> None:
        status_counters, objective_counters = job.counters(self.training_jobs)
        detail: dict[str, Any] = {
            "HyperParameterTuningJobName": job.name,
            "HyperParameterTuningJobArn": job.arn,
            "TrainingJobDefinition": job.definition,
            "HyperParameterTuningJobStatus": job.status,
            "CreationTime": str(epoch_millis(job.creation_time)),
            "LastModifiedTime": str(epoch_millis(job.last_modified or job.creation_time)),
            "TrainingJobStatusCounters": status_counters,
            "ObjectiveStatusCounters": objective_counters,
            "Tags": tag_object(job.tags),
        }
        if job.failure_reason:
            detail["FailureReason"] = job.failure_reason
        self._ctx.emit(TUNING_JOB_STATE_CHANGE, job.arn, detail)

    def _emit_training(self, job: TrainingJob) -> None:
        described = job.describe()
        detail: dict[str, Any] = {
            key: described[key]
            for key in (
                "TrainingJobName",
                "TrainingJobArn",
                "TrainingJobStatus",
                "SecondaryStatus",
                "HyperParameters",
                "AlgorithmSpecification",
                "RoleArn",
                "InputDataConfig",
                "OutputDataConfig",
                "ResourceConfig",
                "StoppingCondition",
            )
        }
        detail["CreationTime"] = str(epoch_millis(job.creation_time))
        for member, moment in (
            ("TrainingStartTime", job.start_time),
            ("TrainingEndTime", job.end_time),
            ("LastModifiedTime", job.last_modified),
        ):
            if moment is not None:
                detail[member] = str(epoch_millis(moment))
        detail["SecondaryStatusTransitions"] = [
            {k: str(epoch_millis(v)) if isinstance(v, datetime) else v for k, v in t.items()}
            for t in job.transitions
        ]
        if job.failure_reason:
            detail["FailureReason"] = job.failure_reason
        detail["Tags"] = tag_object(self._ctx.tags.get(job.arn, []))
        self._ctx.emit(TRAINING_JOB_STATE_CHANGE, job.arn, detail)


def channel_objects(s3: Any, source: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(bucket, key, path relative to the prefix) of every object a channel's S3DataSource names."""
    if source["S3DataType"] == "ManifestFile":
        return _manifest_objects(s3, source["S3Uri"])
    return _prefix_objects(s3, source["S3Uri"])


def _prefix_objects(s3: Any, uri: str) -> list[tuple[str, str, str]]:
    """(bucket, key, path relative to the prefix) of every object under an S3Prefix channel's URI."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                found.append((bucket, item["Key"], item["Key"][len(prefix) :]))
    return found


def _manifest_objects(s3: Any, uri: str) -> list[tuple[str, str, str]]:
    """(bucket, key, path relative to the prefix) of every object a ManifestFile channel lists: a JSON
    list whose first element is {"prefix": <S3 URI>}, each other element a key relative to it (SageMaker
    API reference, S3DataSource, S3Uri: "SageMaker appends the suffix elements to the prefix")."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if not (isinstance(manifest, list) and manifest and isinstance(manifest[0], dict)):
        raise ChannelUnreadable(f"ClientError: the manifest {uri} is not a list starting with a prefix")
    prefix_uri = manifest[0].get("prefix", "")
    if not prefix_uri.startswith("s3://"):
        raise ChannelUnreadable(f"ClientError: the manifest {uri} has no valid prefix: {prefix_uri!r}")
    prefix_bucket, _, prefix = prefix_uri.removeprefix("s3://").partition("/")
    return [(prefix_bucket, f"{prefix}{relative}", relative) for relative in manifest[1:]]
