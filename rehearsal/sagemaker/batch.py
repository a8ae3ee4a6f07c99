"""Batch transform in the local SageMaker: CreateTransformJob runs the job's model over its input in S3,
DescribeTransformJob, ListTransformJobs and StopTransformJob show and end it.

What a job does, as the SageMaker developer guide ("Batch transform", "Associate Prediction Results with
Input Records") and API reference (CreateTransformJob, TransformInput, TransformOutput, DataProcessing)
describe it, with the built-in XGBoost container serving the model:

1. After its instance starts (STARTUP_SECONDS of AWS time), the job lists its input (S3Prefix: every
   object under the prefix; ManifestFile: the manifest's `prefix` and relative keys) as the model's
   ExecutionRoleArn, and reads each object.
2. SplitType Line splits an object into records, one per non-empty line; DataProcessing.InputFilter
   selects each CSV record's columns (`$`, or a `$[start:end]` slice of its fields); BatchStrategy
   MultiRecord packs as many records into one request as MaxPayloadInMB allows, SingleRecord one each.
3. Each request goes to the model's serving container started as hosting starts it (container.serving
   `HostedModel`, the same code InvokeEndpoint runs) with SAGEMAKER_BATCH set, as batch transform sets
   it, so the container answers one line per record (algorithm_mode/serve.py:241-242).
4. AssembleWith Line writes each answer's lines, one per record; the output of every input object goes to
   `<S3OutputPath>/<key relative to the input prefix>.out`, under TransformOutput.KmsKeyId (SSE-KMS) when
   given, and only once the whole object succeeded. A request the container refuses fails the job.

JoinSource Input, OutputFilter other than `$`, and compressed or non-line-split input are not emulated and
fail the request with a NotEmulated error naming them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rehearsal.sagemaker.api import ServiceError
from rehearsal.sagemaker.container.errors import NotEmulated
from rehearsal.sagemaker.container.serving import HostedModel, ModelLoadFailed
from rehearsal.sagemaker.events import TRANSFORM_JOB_STATE_CHANGE, epoch_millis, tag_object
from rehearsal.sagemaker.hosting import Hosting, ProvisioningFailed
from rehearsal.sagemaker.state import Context, validation

# A transform job provisions its instance and starts the container before it reads any input: minutes in
# AWS (billed from then on); four here, compressed by the rehearsal's time scale.
STARTUP_SECONDS = 240.0
STOP_SECONDS = 30.0
# CreateTransformJob MaxPayloadInMB default (API reference: "The default value is 6 MB").
DEFAULT_MAX_PAYLOAD_MB = 6
_SLICE = re.compile(r"^\$\[(?P<start>-?\d*):(?P<end>-?\d*)\]$")


class TransformFailed(Exception):
    """The job fails with this FailureReason."""


@dataclass
class TransformJob:
    name: str
    arn: str
    request: dict[str, Any]
    creation_time: datetime
    tags: list[dict[str, str]]
    status: str = "InProgress"
    failure_reason: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    last_modified: datetime | None = None
    stop_requested: bool = False
    timers: list[Any] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        answer = {k: v for k, v in self.request.items() if k != "Tags"}
        answer.update(
            TransformJobArn=self.arn,
            TransformJobStatus=self.status,
            CreationTime=self.creation_time,
        )
        for member, moment in (("TransformStartTime", self.start_time), ("TransformEndTime", self.end_time)):
            if moment is not None:
                answer[member] = moment
        if self.failure_reason:
            answer["FailureReason"] = self.failure_reason
        return answer

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "TransformJobName": self.name,
            "TransformJobArn": self.arn,
            "CreationTime": self.creation_time,
            "TransformJobStatus": self.status,
        }
        if self.end_time is not None:
            summary["TransformEndTime"] = self.end_time
        if self.last_modified is not None:
            summary["LastModifiedTime"] = self.last_modified
        if self.failure_reason:
            summary["FailureReason"] = self.failure_reason
        return summary


@dataclass(frozen=True)
class _Input:
    bucket: str
    key: str
    relative: str


class BatchTransform:
    def __init__(self, context: Context, hosting: Hosting) -> None:
        self._ctx = context
        self._hosting = hosting
        self.transform_jobs: dict[str, TransformJob] = {}

    # ------------------------------------------------------------------------------------- operations

    def create_transform_job(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TransformJobName"]
        arn = self._ctx.arn("transform-job", name)
        self._refuse_unemulated(request)
        with self._ctx.lock:
            if name in self.transform_jobs:
                raise ServiceError(
                    "ResourceInUse",
                    "Job name must be unique within an AWS account and region, and a job with this name "
                    f"already exists ({arn})",
                )
            if request["ModelName"] not in self._hosting.models:
                raise validation(f'Could not find model "{self._ctx.arn("model", request["ModelName"])}".')
            now = self._ctx.now()
            job = TransformJob(
                name, arn, dict(request), now, list(request.get("Tags", [])), last_modified=now
            )
            self.transform_jobs[name] = job
            self._ctx.tag(arn, job.tags)
            self._emit(job)
            job.timers.append(self._ctx.scheduler.after(STARTUP_SECONDS, lambda: self._run(job)))
        return {"TransformJobArn": arn}

    def describe_transform_job(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            return self._job(request["TransformJobName"]).describe()

    def list_transform_jobs(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            items = [job.summary() for job in self.transform_jobs.values()]
        return self._ctx.page(
            items,
            "TransformJobSummaries",
            request,
            name_member="TransformJobName",
            status_member="TransformJobStatus",
            sort_keys={
                "Name": "TransformJobName",
                "Status": "TransformJobStatus",
                "CreationTime": "CreationTime",
            },
            default_sort="CreationTime",
            default_order="Descending",
        )

    def stop_transform_job(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            job = self._job(request["TransformJobName"])
            if job.status != "InProgress":
                return {}  # StopTransformJob of a finished job changes nothing
            for timer in job.timers:
                timer.cancel()
            job.stop_requested = True
            self._set_status(job, "Stopping")
            job.timers.append(self._ctx.scheduler.after(STOP_SECONDS, lambda: self._stopped(job)))
        return {}

    def _job(self, name: str) -> TransformJob:
        if name not in self.transform_jobs:
            raise ServiceError(
                "ResourceNotFound", f"Could not find job {self._ctx.arn('transform-job', name)}."
            )
        return self.transform_jobs[name]

    @staticmethod
    def _refuse_unemulated(request: Mapping[str, Any]) -> None:
        processing = request.get("DataProcessing", {})
        source = request["TransformInput"]["DataSource"]
        unemulated = [
            what
            for what, present in (
                ("DataProcessing.JoinSource Input", processing.get("JoinSource", "None") != "None"),
                ("an OutputFilter other than $", processing.get("OutputFilter", "$") != "$"),
                (
                    "an InputFilter other than $ or a $[start:end] slice",
                    processing.get("InputFilter", "$") != "$" and not _SLICE.match(processing["InputFilter"]),
                ),
                ("compressed input", request["TransformInput"].get("CompressionType", "None") != "None"),
                ("input not split by line", request["TransformInput"].get("SplitType", "None") != "Line"),
                ("a data source other than S3", "S3DataSource" not in source),
                (
                    "AugmentedManifestFile or Converse input",
                    source.get("S3DataSource", {}).get("S3DataType") not in ("S3Prefix", "ManifestFile"),
                ),
            )
            if present
        ]
        if unemulated:
            raise NotEmulated(f"the local batch transform does not emulate {', '.join(unemulated)}")

    # --------------------------------------------------------------------------------------------- run

    def _run(self, job: TransformJob) -> None:
        with self._ctx.lock:
            if job.status != "InProgress":
                return
            job.start_time = self._ctx.now()
            model = self._hosting.models.get(job.request["ModelName"])
        try:
            if model is None:
                raise TransformFailed(f"ClientError: Could not find model {job.request['ModelName']}.")
            environment = {**job.request.get("Environment", {}), "SAGEMAKER_BATCH": "true"}
            try:
                container = self._hosting.serving_container(model, environment)
            except (ProvisioningFailed, ModelLoadFailed) as error:
                raise TransformFailed(f"ClientError: {error}") from None
            s3 = self._ctx.s3_for_role(model.role)
            for item in self._inputs(s3, job):
                self._transform_object(s3, job, container, item)
        except TransformFailed as failure:
            self._finish(job, "Failed", str(failure))
            return
        self._finish(job, "Completed")

    def _inputs(self, s3: Any, job: TransformJob) -> list[_Input]:
        source = job.request["TransformInput"]["DataSource"]["S3DataSource"]
        bucket, prefix = _location(source["S3Uri"])
        try:
            if source["S3DataType"] == "ManifestFile":
                manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix)["Body"].read())
                base_bucket, base = _location(manifest[0]["prefix"])
                return [_Input(base_bucket, f"{base}{relative}", relative) for relative in manifest[1:]]
            folder = prefix[: prefix.rfind("/") + 1]
            found = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        found.append(_Input(bucket, item["Key"], item["Key"][len(folder) :]))
        except ClientError as error:
            raise TransformFailed(
                f"ClientError: Failed to read the input data at {source['S3Uri']}: {error}"
            ) from None
        if not found:
            raise TransformFailed(
                f'ClientError: No S3 objects found under S3 URL "{source["S3Uri"]}" given in input data '
                "source."
            )
        return found

    def _transform_object(self, s3: Any, job: TransformJob, container: HostedModel, item: _Input) -> None:
        try:
            body = s3.get_object(Bucket=item.bucket, Key=item.key)["Body"].read().decode("utf-8")
        except ClientError as error:
            raise TransformFailed(
                f"ClientError: Failed to download s3://{item.bucket}/{item.key}: {error}"
            ) from None
        records = [
            _filtered(line, job.request.get("DataProcessing", {}))
            for line in body.split("\n")
            if line.strip()
        ]
        transform_input = job.request["TransformInput"]
        output = job.request["TransformOutput"]
        answers: list[str] = []
        for batch in _batches(records, job.request):
            if job.stop_requested:
                return
            status, _, answer = container.invoke(
                "\n".join(batch).encode(), transform_input.get("ContentType"), output.get("Accept")
            )
            if not 200 <= status < 300:
                raise TransformFailed(
                    f"ClientError: the model container answered {status} for s3://{item.bucket}/{item.key}: "
                    f"{answer.decode('utf-8', 'replace')[:500]}"
                )
            text = answer.decode("utf-8")
            answers += text.splitlines() if output.get("AssembleWith") == "Line" else [text]
        separator = "\n" if output.get("AssembleWith") == "Line" else ""
        payload = "".join(f"{a}{separator}" for a in answers).encode()
        out_bucket, out_prefix = _location(output["S3OutputPath"])
        key = f"{out_prefix.rstrip('/')}/{item.relative}.out" if out_prefix else f"{item.relative}.out"
        encryption = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": output["KmsKeyId"]}
            if output.get("KmsKeyId")
            else {}
        )
        try:
            s3.put_object(Bucket=out_bucket, Key=key, Body=payload, **encryption)
        except ClientError as error:
            raise TransformFailed(f"ClientError: Failed to upload s3://{out_bucket}/{key}: {error}") from None

    # ---------------------------------------------------------------------------------------- status

    def _finish(self, job: TransformJob, status: str, failure: str | None = None) -> None:
        with self._ctx.lock:
            if job.status != "InProgress":
                return
            job.failure_reason = failure
            job.end_time = self._ctx.now()
            self._set_status(job, status)

    def _stopped(self, job: TransformJob) -> None:
        with self._ctx.lock:
            job.end_time = self._ctx.now()
            self._set_status(job, "Stopped")

    def _set_status(self, job: TransformJob, status: str) -> None:
        job.status = status
        job.last_modified = self._ctx.now()
        self._emit(job)

    def _emit(self, job: TransformJob) -> None:
        described = job.describe()
        detail: dict[str, Any] = {
            key: (str(epoch_millis(value)) if isinstance(value, datetime) else value)
            for key, value in described.items()
        }
        detail["Tags"] = tag_object(self._ctx.tags.get(job.arn, []))
        self._ctx.emit(TRANSFORM_JOB_STATE_CHANGE, job.arn, detail)


def _location(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _filtered(line: str, processing: Mapping[str, Any]) -> str:
    """InputFilter on one CSV record: `$` keeps it, `$[start:end]` keeps those fields (JSONPath slices)."""
    record = line.rstrip("\r")
    match = _SLICE.match(processing.get("InputFilter", "$"))
    if match is None:
        return record
    start, end = (int(v) if v else None for v in (match["start"], match["end"]))
    return ",".join(record.split(",")[start:end])


def _batches(records: list[str], request: Mapping[str, Any]) -> Iterator[list[str]]:
    """MultiRecord: as many records per request as fit in MaxPayloadInMB; SingleRecord: one each."""
    if request.get("BatchStrategy") != "MultiRecord":
        yield from ([record] for record in records)
        return
    limit = int(request.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB)) * 1024 * 1024
    batch: list[str] = []
    size = 0
    for record in records:
        length = len(record.encode()) + 1
        if batch and size + length > limit:
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += length
    if batch:
        yield batch
