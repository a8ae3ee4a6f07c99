"""Act on one tuning request: read the dataset's runs, decide (plan.py), then write the channels, start
the job and record it, or record the deferral and send the request back for when the budget renews.

Outcomes are permanent or raised: a request that is superseded, early, a duplicate or over budget
succeeds (and says so in its record and the log); an AWS error raises, so SQS delivers the message again
and, after the queue's maxReceiveCount, keeps it in the dead-letter queue.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.aws import S3Client, SageMakerClient
from shared.dataset_schema import DatasetSchema
from shared.dataset_store import (
    MANIFEST_FILE,
    RUN_ID,
    DatasetStore,
    RunLocation,
    dataset_prefix,
    dataset_schema_key,
)
from shared.tuning_requests import MAX_DELAY_SECONDS, TuningRequest
from tune.environment import TuneEnvironment
from tune.plan import (
    Excluded,
    RunSummary,
    TrainingSet,
    channel_manifest,
    newer_run,
    next_utc_day,
    training_set,
    tuning_job_name,
    utc_day,
)
from tune.tuning import start_tuning, tuning_request


class Outcome(StrEnum):
    STARTED = "started"
    # A run completed after the request's own: that run's request speaks for the burst.
    SUPERSEDED = "superseded"
    # The job of exactly these runs was started before (a redelivery, a duplicate).
    ALREADY_STARTED = "already started"
    DEFERRED = "deferred"
    # A deferred request whose time has not come: sent back, delayed again.
    WAITING = "waiting"
    # No run has the dataset's schema.
    NOTHING_TO_TUNE = "nothing to tune"


@dataclass(frozen=True)
class TuneResult:
    outcome: Outcome
    detail: str
    runs: tuple[str, ...] = ()
    tuning_job: str | None = None
    excluded: tuple[Excluded, ...] = ()


class RunNotFound(RuntimeError):
    """The request names a run that has no manifest: nothing the pipeline wrote. Retried, then kept in the
    dead-letter queue."""


def ledger_prefix(dataset: str, day: str) -> str:
    """One object per tuning job started for the dataset on that UTC day."""
    return f"{dataset_prefix(dataset)}tuning/{day}/"


def job_prefix(dataset: str, job: str) -> str:
    return f"{dataset_prefix(dataset)}{job}/"


def record_key(dataset: str, job: str) -> str:
    return f"{job_prefix(dataset, job)}tuning.json"


class DatasetTuner:
    def __init__(
        self,
        environment: TuneEnvironment,
        *,
        s3: S3Client,
        sagemaker: SageMakerClient,
        sqs: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.environment = environment
        self.s3 = s3
        self.store = DatasetStore(s3, environment.bucket)
        self.sagemaker = sagemaker
        self.sqs = sqs
        # Public, as its clients are: the tests move it across a UTC day.
        self.clock = clock

    def handle(self, request: TuningRequest) -> TuneResult:
        now = self.clock()
        if request.not_before is not None and now < request.not_before:
            self._send_back(request, request.not_before, now)
            return TuneResult(Outcome.WAITING, f"deferred until {request.not_before.isoformat()}")
        dataset = request.dataset
        completed = self.completed_runs(dataset)
        if request.run not in completed:
            raise RunNotFound(f"run {request.run} of dataset {dataset!r} has no manifest.json")
        newer = newer_run(request.run, completed)
        if newer is not None:
            return TuneResult(
                Outcome.SUPERSEDED,
                f"run {newer} completed after it, within the quiet period: its request tunes both",
            )
        runs = [self._run_summary(dataset, run) for run in sorted(completed)]
        schema = self.store.read_schema(dataset)
        if schema is None:
            raise RuntimeError(f"dataset {dataset!r} has runs but no {dataset_schema_key(dataset)}")
        chosen = training_set(dataset, runs, schema.digest)
        if not chosen.runs:
            return TuneResult(Outcome.NOTHING_TO_TUNE, "every run was left out", excluded=chosen.excluded)
        job = tuning_job_name(self.environment.tuning_job_prefix, dataset, chosen.run_ids)
        covered = tuple(chosen.run_ids)
        started_today = self.store.listing(ledger_prefix(dataset, utc_day(now)))
        earlier = self.store.read_json(record_key(dataset, job))
        if f"{job}.json" in started_today or (earlier is not None and earlier["status"] == "started"):
            return TuneResult(
                Outcome.ALREADY_STARTED, "the job of these runs exists", covered, job, chosen.excluded
            )
        if len(started_today) >= self.environment.jobs_per_day:
            return self._defer(request, chosen, job, now, len(started_today))
        return self._start(request, chosen, job, schema, now)

    def completed_runs(self, dataset: str) -> dict[str, datetime]:
        """Every run of the dataset with a manifest (the transform writes it last), and when it was
        stored: one paginated listing of the dataset's folder, not a read per run."""
        completed = {}
        for key, stored in self.store.listing(dataset_prefix(dataset)).items():
            folder, _, name = key.partition("/")
            if name == MANIFEST_FILE and RUN_ID.fullmatch(folder):
                completed[folder] = stored
        return completed

    def _run_summary(self, dataset: str, run: str) -> RunSummary:
        key = RunLocation(dataset, run).manifest_key
        manifest = self.store.read_json(key)
        if manifest is None:
            raise RuntimeError(f"{key} was listed but cannot be read")
        return RunSummary(
            run=run,
            schema_digest=manifest["schema"]["sha256"],
            train_files=tuple(manifest["files"]["train"]),
            validation_files=tuple(manifest["files"]["validation"]),
        )

    def _start(
        self, request: TuningRequest, chosen: TrainingSet, job: str, schema: DatasetSchema, now: datetime
    ) -> TuneResult:
        dataset, bucket = chosen.dataset, self.environment.bucket
        folder = job_prefix(dataset, job)
        channels = {}
        # Keys relative to the dataset's folder: `<run>/<channel>/part-*.csv`. Kept under the channel's
        # directory as for an S3Prefix channel, a file is then three levels deep, the most the built-in
        # container reads (sagemaker-xgboost-container release-3.0.5 data_utils.py:41, MAX_FOLDER_DEPTH).
        for channel, keys in (("train", chosen.train_files), ("validation", chosen.validation_files)):
            key = f"{folder}{channel}.manifest"
            document = channel_manifest(bucket, dataset_prefix(dataset), keys)
            self.store.write_json(key, document)
            channels[channel] = f"s3://{bucket}/{key}"
        # The deploy function and the predict function read the schema beside the train channel.
        self.store.write_schema(f"{folder}schema.json", schema)
        started = start_tuning(
            self.sagemaker,
            tuning_request(
                self.environment.tuning_template,
                job_name=job,
                schema=schema,
                train_manifest_uri=channels["train"],
                validation_manifest_uri=channels["validation"],
                train_files=len(chosen.train_files),
                tags={"dataset": dataset, "runs": str(len(chosen.runs)), "lastRun": chosen.run_ids[-1]},
            ),
        )
        # Recorded after the job exists: a crash in between is redelivered, answered ResourceInUse
        # (started False), and recorded then, so the budget still counts the job.
        self.store.write_json(
            f"{ledger_prefix(dataset, utc_day(now))}{job}.json", {"tuningJob": job, "at": now.isoformat()}
        )
        record = _record(request, chosen, job, now, status="started")
        record |= {"channels": channels, "createdNow": started}
        self.store.write_json(record_key(dataset, job), record)
        detail = f"{len(chosen.train_files)} training and {len(chosen.validation_files)} validation files"
        return TuneResult(Outcome.STARTED, detail, tuple(chosen.run_ids), job, chosen.excluded)

    def _defer(
        self, request: TuningRequest, chosen: TrainingSet, job: str, now: datetime, started: int
    ) -> TuneResult:
        run_at = next_utc_day(now)
        reason = (
            f"{started} tuning jobs of dataset {chosen.dataset!r} started on {utc_day(now)} (UTC), the "
            f"stack's tuningJobsPerDay: it runs after {run_at.isoformat()}"
        )
        record = _record(request, chosen, job, now, status="deferred") | {
            "runAt": run_at.isoformat(),
            "reason": reason,
        }
        self.store.write_json(record_key(chosen.dataset, job), record)
        self._send_back(request, run_at, now)
        return TuneResult(Outcome.DEFERRED, reason, tuple(chosen.run_ids), job, chosen.excluded)

    def _send_back(self, request: TuningRequest, until: datetime, now: datetime) -> None:
        """SQS delays a message by at most 15 minutes: a request deferred longer comes back every 15
        minutes until its time (at most 96 small messages a day)."""
        wait = math.ceil((until - now).total_seconds())
        self.sqs.send_message(
            QueueUrl=self.environment.queue_url,
            MessageBody=TuningRequest(request.dataset, request.run, until).to_json(),
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, wait)),
        )


def _record(
    request: TuningRequest, chosen: TrainingSet, job: str, now: datetime, *, status: str
) -> dict[str, Any]:
    """`processed/<dataset>/<job>/tuning.json`: what the job covers, what it leaves out and why."""
    return {
        "dataset": chosen.dataset,
        "tuningJob": job,
        "status": status,
        "decidedAt": now.isoformat(),
        "requestedByRun": request.run,
        "runs": chosen.run_ids,
        "excluded": [{"run": e.run, "reason": e.reason} for e in chosen.excluded],
        "trainFiles": len(chosen.train_files),
        "validationFiles": len(chosen.validation_files),
    }
