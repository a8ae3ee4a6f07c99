"""Take one uploaded CSV through the pipeline: transform it, record the run, ask for tuning.

The run's tuning request goes to the tune function's queue delayed by the quiet period
(`tuningQuietSeconds`): the tune function starts one job for a burst of uploads, not one per file.

Outcomes are permanent or raised: a file that cannot become training data gets a rejection report and
the message succeeds (retrying cannot fix data); an AWS error (throttling, a timeout) raises, so SQS
delivers the message again and, after the queue's maxReceiveCount, keeps it in the dead-letter queue.
The upload itself is only ever read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import S3Client, error_code, require_parameters
from shared.dataset_schema import DatasetSchema
from shared.dataset_store import DatasetStore, LayoutError, RunLocation, dataset_of, rejection_key
from shared.s3_events import S3ObjectRef
from shared.tuning_requests import TuningRequest
from transform.dataset_settings import (
    DatasetSettings,
    InvalidDatasetSettings,
    parse_dataset_settings,
    settings_key,
)
from transform.environment import TransformEnvironment
from transform.identity import UploadIdentity
from transform.part_files import PartFiles
from transform.pipeline import (
    DeadlineReached,
    FileRejected,
    RejectedRow,
    TransformOutcome,
    transform_csv,
)

# Throughput of one pass over an upload that the size limit assumes with one full vCPU: about half of what
# `tools/benchmark.py` measures on one core for a later upload (one pass), leaving room for wide text
# columns and a slower vCPU. A dataset's first upload is read twice (profile, then encoding).
ASSUMED_BYTES_PER_SECOND = 12 * 1000 * 1000
FIRST_UPLOAD_PASSES = 2
# Lambda gives a function CPU in proportion to its memory, one full vCPU at 1,769 MB (Lambda developer
# guide, "Configure Lambda function memory").
ONE_VCPU_MB = 1769
# Time kept back from the function timeout to complete the uploads and write the results.
RESERVE_SECONDS = 30.0
# An invocation that begins with less than this share of the timeout left (a later message of a batch)
# retries a file that runs out of time instead of refusing it.
LATE_START = 0.9


class NotEnoughTimeLeft(RuntimeError):
    """This invocation has too little time left for the file; a fresh one has enough. SQS redelivers."""


class Status(StrEnum):
    TRANSFORMED = "transformed"
    ALREADY_TRANSFORMED = "already transformed"
    REJECTED = "rejected"
    GONE = "gone"


@dataclass(frozen=True)
class UploadResult:
    status: Status
    detail: str
    run: str | None = None
    tuning_requested: bool = False


def max_object_bytes(seconds_left: float, memory_mb: int, *, passes: int = 1) -> int:
    """The largest object one invocation can read `passes` times in the time it has left, on the CPU its
    memory buys."""
    cpu_share = min(1.0, memory_mb / ONE_VCPU_MB)
    return max(0, int((seconds_left - RESERVE_SECONDS) * ASSUMED_BYTES_PER_SECOND * cpu_share / passes))


class UploadVersion:
    """Opens one version of an upload for each pass over it: the body of the read in hand first, then new
    reads of the same version, IfMatch its ETag (S3 answers 412 PreconditionFailed should the bytes have
    changed, and the message is retried)."""

    def __init__(self, s3: S3Client, ref: S3ObjectRef, response: dict[str, Any]) -> None:
        self._s3 = s3
        self._ref = ref
        self._etag = response["ETag"]
        self._version = {"VersionId": response["VersionId"]} if response.get("VersionId") else {}
        self._unread: Any = response["Body"]
        self._bodies = [response["Body"]]

    def open(self) -> Any:
        if self._unread is not None:
            body, self._unread = self._unread, None
            return body
        response = self._s3.get_object(
            Bucket=self._ref.bucket, Key=self._ref.key, IfMatch=self._etag, **self._version
        )
        self._bodies.append(response["Body"])
        return response["Body"]

    def close(self) -> None:
        for body in self._bodies:
            body.close()


class UploadTransformer:
    def __init__(self, environment: TransformEnvironment, s3: S3Client, sqs: Any) -> None:
        # Conditional writes (If-None-Match) keep a dataset's first schema; botocore has them since 1.35.
        require_parameters(s3, "PutObject", "IfNoneMatch")
        self._env = environment
        self._s3 = s3
        self._sqs = sqs
        self._store = DatasetStore(s3, environment.bucket)

    def run(self, ref: S3ObjectRef, seconds_left: float, memory_mb: int) -> UploadResult:
        deadline = time.monotonic() + seconds_left - RESERVE_SECONDS
        try:
            dataset = dataset_of(ref.key, self._env.uploads.prefix)
        except LayoutError as error:
            return self._reject(ref, None, FileRejected(str(error)))
        try:
            # The notification of a versioned bucket names the version; without one, the current version.
            version = {"VersionId": ref.version_id} if ref.version_id else {}
            response = self._s3.get_object(Bucket=ref.bucket, Key=ref.key, **version)
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "NoSuchVersion"):
                return UploadResult(Status.GONE, "the object version was deleted before it could be read")
            raise
        source = UploadVersion(self._s3, ref, response)
        try:
            identity = UploadIdentity(
                bucket=ref.bucket,
                key=ref.key,
                version_id=response.get("VersionId", ref.version_id),
                etag=response["ETag"].strip('"'),
                last_modified=response["LastModified"],
            )
            location = RunLocation(dataset, identity.run_id)
            if self._store.read_json(location.manifest_key) is not None:
                # A redelivery: the first delivery may have stopped before its request was sent, and a
                # request twice starts nothing twice.
                return self._request_tuning(location, Status.ALREADY_TRANSFORMED, "the run exists")
            stored = self._store.read_schema(location.dataset)
            passes = 1 if stored is not None else FIRST_UPLOAD_PASSES
            size = int(response["ContentLength"])
            timeout = self._env.timeout_seconds
            most = max_object_bytes(timeout, memory_mb, passes=passes)
            if size > most:
                first = (
                    f"; a dataset's first upload is read twice, for its schema, and a later one may take "
                    f"{max_object_bytes(timeout, memory_mb):,}"
                    if stored is None
                    else ""
                )
                reason = (
                    f"the file has {size:,} bytes; one run of the transform can take {most:,} in its "
                    f"{timeout} s timeout with {memory_mb} MB of memory{first}: split it into smaller files "
                    "under the same dataset folder"
                )
                return self._reject(ref, identity, FileRejected(reason))
            if size > max_object_bytes(seconds_left, memory_mb, passes=passes):
                # Fits a whole invocation, not what is left of this one (a batch's later message).
                raise NotEnoughTimeLeft(f"{seconds_left:.0f} s left is too little for {size:,} bytes: retry")
            started_late = seconds_left < LATE_START * self._env.timeout_seconds
            return self._transform(ref, identity, location, source, stored, deadline, started_late)
        finally:
            source.close()

    def _transform(
        self,
        ref: S3ObjectRef,
        identity: UploadIdentity,
        location: RunLocation,
        source: UploadVersion,
        stored: DatasetSchema | None,
        deadline: float,
        started_late: bool,
    ) -> UploadResult:
        try:
            settings = self._dataset_settings(location.dataset)
            options = settings.applied_to(self._env.options)
            if stored is not None:
                _check_settings_fit(settings, stored)
        except (InvalidDatasetSettings, FileRejected) as error:
            return self._reject(ref, identity, FileRejected(str(error)))
        train = PartFiles(
            self._s3, self._env.bucket, location.train_prefix, file_bytes=self._env.part_file_bytes
        )
        validation = PartFiles(
            self._s3, self._env.bucket, location.validation_prefix, file_bytes=self._env.part_file_bytes
        )
        try:
            outcome = transform_csv(
                source.open,
                stored_schema=stored,
                options=options,
                train=train,
                validation=validation,
                deadline=deadline,
            )
            self._check_objective(outcome.schema)
            if outcome.schema_learned:
                self._store.create_schema(location.dataset, outcome.schema)
            train_files = train.complete()
            validation_files = validation.complete()
        except FileRejected as rejection:
            _abort(train, validation)
            if isinstance(rejection, DeadlineReached) and started_late:
                # A whole invocation may still do it: let SQS deliver it again.
                raise NotEnoughTimeLeft(rejection.reason) from None
            return self._reject(ref, identity, rejection)
        except BaseException:
            _abort(train, validation)
            raise
        self._store.write_schema(location.schema_key, outcome.schema)
        if outcome.rejected_row_count or outcome.unlabeled_rows:
            left_out = outcome.rejected_row_count + outcome.unlabeled_rows
            reason = (
                f"{left_out} of {outcome.rows_read} rows were left out ({outcome.rejected_row_count} "
                f"refused, {outcome.unlabeled_rows} without a target); the rest was transformed (run "
                f"{location.run})"
            )
            report = rejection_report(
                _source(ref, identity),
                reason,
                outcome.rejected_rows,
                outcome.rejected_row_count,
                unlabeled_rows=outcome.unlabeled_rows,
            )
            self._store.write_json(rejection_key(ref.key), report)
        manifest = run_manifest(
            _source(ref, identity), location, outcome, train_files, validation_files, settings
        )
        self._store.write_json(location.manifest_key, manifest)
        detail = f"{outcome.train_rows} training and {outcome.validation_rows} validation rows"
        return self._request_tuning(location, Status.TRANSFORMED, detail)

    def _dataset_settings(self, dataset: str) -> DatasetSettings:
        data = self._store.read_bytes(settings_key(self._env.uploads.prefix, dataset))
        return DatasetSettings() if data is None else parse_dataset_settings(data)

    def _check_objective(self, schema: DatasetSchema) -> None:
        """A stack's tuningObjectiveMetric is checked against the stack's problemType; a dataset of another
        problem type (its dataset.json, or what auto found) cannot be tuned on it."""
        metric = self._env.tuning_objective_metric
        stack_problem = self._env.options.inference.problem_type
        problem = schema.target.problem_type
        if metric is not None and stack_problem is not None and problem is not stack_problem:
            raise FileRejected(
                f"the dataset is a {problem} problem, but the stack tunes every dataset on "
                f"{metric}, a {stack_problem} metric (tuningObjectiveMetric): set "
                f"problemType {stack_problem.value} in its dataset.json, or deploy it to a stack of its kind"
            )

    def _request_tuning(self, location: RunLocation, status: Status, detail: str) -> UploadResult:
        """Ask the tune function to consider the dataset once the quiet period has passed without a newer
        run (SQS DelaySeconds; the message is invisible until then)."""
        request = TuningRequest(location.dataset, location.run)
        self._sqs.send_message(
            QueueUrl=self._env.tuning_queue_url,
            MessageBody=request.to_json(),
            DelaySeconds=self._env.tuning_quiet_seconds,
        )
        return UploadResult(status, detail, location.run, tuning_requested=True)

    def _reject(
        self, ref: S3ObjectRef, identity: UploadIdentity | None, rejection: FileRejected
    ) -> UploadResult:
        report = rejection_report(
            _source(ref, identity), rejection.reason, rejection.rejected_rows, rejection.rejected_row_count
        )
        self._store.write_json(rejection_key(ref.key), report)
        return UploadResult(Status.REJECTED, rejection.reason)


def _abort(*outputs: PartFiles) -> None:
    for output in outputs:
        output.abort()


def _source(ref: S3ObjectRef, identity: UploadIdentity | None) -> dict[str, Any]:
    source: dict[str, Any] = {"bucket": ref.bucket, "key": ref.key, "versionId": ref.version_id}
    if identity is not None:
        source |= {"versionId": identity.version_id, "etag": identity.etag}
        source["lastModified"] = identity.last_modified.isoformat()
    return source


def _check_settings_fit(settings: DatasetSettings, schema: DatasetSchema) -> None:
    """A dataset keeps the schema of its first upload: a dataset.json that asks for another target or
    problem type refuses later uploads rather than being silently ignored."""
    target = schema.target
    if settings.target_column is not None and settings.target_column != target.name:
        raise FileRejected(
            f"dataset.json sets targetColumn {settings.target_column!r}, but the dataset's schema (from its "
            f"first upload) predicts {target.name!r}: a dataset keeps its schema, so upload to a new dataset "
            "folder to predict another column"
        )
    problem = settings.problem_type
    if problem not in (None, "auto") and problem != target.problem_type.value:
        raise FileRejected(
            f"dataset.json sets problemType {problem!r}, but the dataset's schema (from its first upload) is "
            f"{target.problem_type.value}: upload to a new dataset folder to change it"
        )


def rejection_report(
    source: dict[str, Any],
    reason: str,
    rows: tuple[RejectedRow, ...],
    rejected_row_count: int,
    *,
    unlabeled_rows: int = 0,
) -> dict[str, Any]:
    """`rejected/<upload key>.json`: what was refused and why, row by row where rows are the reason."""
    return {
        "source": source,
        "reason": reason,
        "rejectedRowCount": rejected_row_count,
        "unlabeledRowCount": unlabeled_rows,
        "rows": [{"row": row.row, "line": row.line, "reason": row.reason} for row in rows],
        "rowsListed": len(rows),
    }


def run_manifest(
    source: dict[str, Any],
    location: RunLocation,
    outcome: TransformOutcome,
    train_files: list[str],
    validation_files: list[str],
    settings: DatasetSettings,
) -> dict[str, Any]:
    """`processed/<dataset>/<run>/manifest.json`: what the run read and wrote."""
    return {
        "dataset": location.dataset,
        "run": location.run,
        "source": source,
        "schema": {
            "key": location.schema_key,
            "sha256": outcome.schema.digest,
            "inferred": outcome.schema_learned,
        },
        "rows": {
            "read": outcome.rows_read,
            "train": outcome.train_rows,
            "validation": outcome.validation_rows,
            "rejected": outcome.rejected_row_count,
            "unlabeled": outcome.unlabeled_rows,
        },
        "datasetSettings": settings.to_document(),
        "classCounts": outcome.class_counts,
        "unknownCategoryCounts": outcome.unknown_categories,
        "files": {"train": train_files, "validation": validation_files},
    }
