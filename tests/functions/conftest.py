"""Function tests run the handlers in-process against moto, with the environment the program sets.

The transform's and the tune function's environments are the ones the Pulumi program gives them in the
dev stack (run under mocks), bucket name, tuning-request queue and tuning request template included: moto
gets a bucket and a queue of those names. SageMaker (tuning, training, hosting, its runtime) and
Application Auto Scaling, which moto does not emulate as the functions need, are the rehearsal's local
SageMaker over HTTP (`local_sagemaker`), reading and writing moto's S3: the one stand-in for SageMaker, for
the tune function's tuning jobs as for the deploy function.

The transform delays each tuning request by the quiet period, and moto keeps a delayed message invisible
for as long: the function tests run the transform with a quiet period of 0 (`QUIET_SECONDS`), except the
test that the delay is the program's.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

import shared.aws
from rehearsal.sagemaker.server import SageMakerServer
from rehearsal.sagemaker.service import LocalSageMaker
from tests.support.aws_requests import Request, recording_requests
from tests.support.lambda_events import LambdaContext, sqs_event_from_messages
from tests.support.stacks import synth

PROGRAM = synth("dev")
REGION = PROGRAM.config["aws:region"]
TRANSFORM_ENVIRONMENT: dict[str, str] = PROGRAM.named("transform-function").inputs["environment"]["variables"]
DATA_BUCKET = TRANSFORM_ENVIRONMENT["DATA_BUCKET"]
RAW_PREFIX = TRANSFORM_ENVIRONMENT["RAW_PREFIX"]
RAW_SUFFIX = TRANSFORM_ENVIRONMENT["RAW_SUFFIX"]
TARGET = TRANSFORM_ENVIRONMENT["TARGET_COLUMN"]
TUNE_ENVIRONMENT: dict[str, str] = PROGRAM.named("tune-function").inputs["environment"]["variables"]
TUNING_QUEUE_NAME = PROGRAM.named("tuning-requests-queue").outputs["name"]
QUIET_SECONDS = "0"


# Every request the functions' own clients made in this session's tests, for the IAM-exactness tests.
FUNCTION_REQUESTS: list[Request] = []
FUNCTION_CALLER = f"{shared.aws.USER_AGENT_APP}/"


@dataclass
class RecordingCoverage:
    """How many recording tests the session collected, and how many have run: unused permissions can be
    judged only once all of them have."""

    collected: int = 0
    ran: int = 0

    @property
    def complete(self) -> bool:
        return self.ran >= self.collected


COVERAGE = RecordingCoverage()


@pytest.fixture(autouse=True)
def record_function_requests(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("after_function_tests"):
        yield
        return
    with recording_requests() as requests:
        yield
    FUNCTION_REQUESTS.extend(r for r in requests if FUNCTION_CALLER in r.caller)
    COVERAGE.ran += 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `after_function_tests` judge what the other function tests recorded: run them last."""
    items.sort(key=lambda item: item.get_closest_marker("after_function_tests") is not None)
    here = Path(__file__).parent
    COVERAGE.collected = sum(
        1
        for item in items
        if here in item.path.parents and not item.get_closest_marker("after_function_tests")
    )


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    # The two functions agree on what they share (bucket, queue); each also has its own variables.
    common = TRANSFORM_ENVIRONMENT.keys() & TUNE_ENVIRONMENT.keys() - {"POWERTOOLS_SERVICE_NAME"}
    assert all(TRANSFORM_ENVIRONMENT[k] == TUNE_ENVIRONMENT[k] for k in common), common
    # The transform's service name: its clients' user agent names it (the tune handler sets its own).
    for name, value in (credentials | TUNE_ENVIRONMENT | TRANSFORM_ENVIRONMENT).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TUNING_QUIET_SECONDS", QUIET_SECONDS)
    # One attempt per request: a test of a failing call sees the failure without the SDK's back-off.
    monkeypatch.setattr(
        shared.aws, "CLIENT_CONFIG", shared.aws.CLIENT_CONFIG.merge(Config(retries={"max_attempts": 1}))
    )
    shared.aws.client.cache_clear()


@pytest.fixture
def transform_handler(aws: None, tuning_queue: str) -> ModuleType:
    """The handler module imported afresh inside moto, so its clients talk to moto."""
    shared.aws.client.cache_clear()
    import transform.handler

    return importlib.reload(transform.handler)


@pytest.fixture
def tune_handler(
    aws: None, tuning_queue: str, local_sagemaker: SageMakerServer, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    """The tune function's handler imported afresh inside moto, its SageMaker client on the local
    SageMaker for the tuning jobs it starts."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", local_sagemaker.url)
    # Its clients are made at import, and name the function by POWERTOOLS_SERVICE_NAME.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", TUNE_ENVIRONMENT["POWERTOOLS_SERVICE_NAME"])
    shared.aws.client.cache_clear()
    import tune.handler

    module = importlib.reload(tune.handler)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", TRANSFORM_ENVIRONMENT["POWERTOOLS_SERVICE_NAME"])
    shared.aws.client.cache_clear()
    return module


@pytest.fixture
def tuning_queue(aws: None) -> str:
    """The tuning-request queue in moto, under the program's name (so the functions' URL is its URL)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url: str = sqs.create_queue(QueueName=TUNING_QUEUE_NAME)["QueueUrl"]
    assert url == TUNE_ENVIRONMENT["TUNING_QUEUE_URL"]
    return url


@dataclass
class UploadPath:
    """Bucket -> SNS -> SQS, wired in moto the way the event bus wires it in AWS."""

    s3: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    topic_arn: str

    def receive(self) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        return response.get("Messages", [])

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.receive()]

    def notify_from(self, bucket: str) -> None:
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "TopicConfigurations": [
                    {
                        "TopicArn": self.topic_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": "prefix", "Value": RAW_PREFIX},
                                    {"Name": "suffix", "Value": RAW_SUFFIX},
                                ]
                            }
                        },
                    }
                ]
            },
        )


@pytest.fixture
def aws() -> Iterator[None]:
    """moto, with the stack's data bucket (versioned, as the program makes it)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield


# The account the program's mocks report (tools/mockrun.py), and when the local SageMaker's clock starts.
ACCOUNT = "123456789012"
SAGEMAKER_CLOCK_START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sagemaker_events() -> list[dict[str, Any]]:
    """The EventBridge events the local SageMaker published, in order."""
    return []


@pytest.fixture
def alarm_states() -> dict[str, str]:
    """CloudWatch alarm name -> its state as the local SageMaker reads it while an update bakes (OK
    unless a test says otherwise)."""
    return {}


@pytest.fixture
def local_sagemaker(
    aws: None, sagemaker_events: list[dict[str, Any]], alarm_states: dict[str, str]
) -> Iterator[SageMakerServer]:
    """The local SageMaker on 127.0.0.1, on a manual clock (a test moves time or finishes changes itself),
    with List pages of two items so callers must follow NextToken. A test points the functions' clients at
    `.url` through the standard endpoint variables. A defect of the stand-in (an answer that breaks the
    service model, a failure on its threads) fails the test that met it."""
    s3 = boto3.client("s3", region_name=REGION)
    service = LocalSageMaker(
        region=REGION,
        account_id=ACCOUNT,
        s3_for_role=lambda role_arn: s3,
        publish=sagemaker_events.append,
        alarm_state=lambda name: alarm_states.get(name, "OK"),
        manual_clock=SAGEMAKER_CLOCK_START,
        page_size=2,
    )
    server = SageMakerServer(service).start()
    try:
        yield server
    finally:
        server.stop()
        service.close()
    assert server.defects == [] and service.failures == [], (server.defects, service.failures)


def _upload_path(raw_delivery: bool) -> Iterator[UploadPath]:
    s3 = boto3.client("s3", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="uploads")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true" if raw_delivery else "false"},
    )
    path = UploadPath(s3=s3, sqs=sqs, queue_url=queue_url, queue_arn=queue_arn, topic_arn=topic_arn)
    path.notify_from(DATA_BUCKET)
    yield path


@pytest.fixture
def upload_path(aws: None) -> Iterator[UploadPath]:
    yield from _upload_path(raw_delivery=False)


@pytest.fixture
def raw_upload_path(aws: None) -> Iterator[UploadPath]:
    yield from _upload_path(raw_delivery=True)


CITIES = ["Berlin", "New York, NY", 'The "Big" Apple', "Zürich", "São Paulo"]
PLANS = ["basic", "pro", "NA", ""]


def churn_csv(rows: int, *, seed: int = 1, cities: list[str] = CITIES) -> bytes:
    """A messy but valid CSV: quoted commas and quotes, unicode, missing markers, CRLF line ends."""
    generator = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["customer_age", "monthly_spend", "city", "plan", TARGET])
    for _ in range(rows):
        writer.writerow(
            [
                generator.randint(18, 90),
                f"{generator.uniform(5, 500):.2f}",
                generator.choice(cities),
                generator.choice(PLANS),
                generator.choice(["yes", "no"]),
            ]
        )
    return buffer.getvalue().encode()


@dataclass
class Pipeline:
    path: UploadPath
    handler: ModuleType
    sagemaker: Any
    tune_handler: ModuleType
    tuning_queue: str

    def upload(self, key: str, body: bytes) -> list[dict[str, Any]]:
        """Put the object and return the queue messages its notification produced."""
        self.path.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)
        messages, batch = [], self.path.receive()
        while batch:
            messages += batch
            batch = self.path.receive()
        return messages

    def deliver(self, messages: list[dict[str, Any]], context: Any = None) -> dict[str, Any]:
        event = sqs_event_from_messages(messages, queue_arn=self.path.queue_arn)
        return self.handler.lambda_handler(event, context or LambdaContext())

    def keys(self, prefix: str) -> list[str]:
        pages = self.path.s3.get_paginator("list_objects_v2").paginate(Bucket=DATA_BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def read(self, key: str) -> bytes:
        return bytes(self.path.s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read())

    def json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def tuning_requests(self) -> list[dict[str, Any]]:
        """The tuning requests waiting in the queue (received: the next `tune` does not see them)."""
        messages = []
        while batch := self.path.sqs.receive_message(QueueUrl=self.tuning_queue, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            messages += batch
        return messages

    def tune(self, messages: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Deliver tuning requests to the tune function, ten at a time as its trigger does: `messages`, or
        every visible one of the queue (the quiet period has passed); as the trigger does, delete those it
        did not report failed. Its answers, in order."""
        pending = self.tuning_requests() if messages is None else messages
        answers = []
        for start in range(0, len(pending), 10):
            batch = pending[start : start + 10]
            event = sqs_event_from_messages(batch, queue_arn=self._tuning_queue_arn)
            answer = self.tune_handler.lambda_handler(event, LambdaContext())
            failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
            for message in batch:
                if message["MessageId"] not in failed:
                    # A duplicate of a message deleted already: SQS accepts a stale handle.
                    self.path.sqs.delete_message(
                        QueueUrl=self.tuning_queue, ReceiptHandle=message["ReceiptHandle"]
                    )
            answers.append(answer)
        return answers

    @property
    def _tuning_queue_arn(self) -> str:
        attributes = self.path.sqs.get_queue_attributes(
            QueueUrl=self.tuning_queue, AttributeNames=["QueueArn"]
        )
        return str(attributes["Attributes"]["QueueArn"])

    def tuning_jobs(self) -> list[str]:
        """The tuning jobs started once the tuning requests sent so far have been handled."""
        self.tune()
        summaries = self.sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
        return [job["HyperParameterTuningJobName"] for job in summaries]

    def unfinished_uploads(self) -> list[str]:
        return [u["Key"] for u in self.path.s3.list_multipart_uploads(Bucket=DATA_BUCKET).get("Uploads", [])]

    def versions(self, key: str) -> list[dict[str, Any]]:
        response = self.path.s3.list_object_versions(Bucket=DATA_BUCKET, Prefix=key)
        return [v for v in response.get("Versions", []) if v["Key"] == key]


@pytest.fixture
def pipeline(
    upload_path: UploadPath,
    transform_handler: ModuleType,
    tune_handler: ModuleType,
    tuning_queue: str,
    local_sagemaker: SageMakerServer,
) -> Pipeline:
    upload_path.receive()  # the s3:TestEvent of the notification configuration
    # The test's own client, not the function's: what the test reads is not the function's requests.
    sagemaker = boto3.client("sagemaker", region_name=REGION, endpoint_url=local_sagemaker.url)
    return Pipeline(upload_path, transform_handler, sagemaker, tune_handler, tuning_queue)


_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> Any:
    """The log records written so far, as the structured lines Powertools emits: message, level, keys."""
    caplog.set_level(logging.DEBUG)

    def read() -> list[dict[str, Any]]:
        return [
            {"message": r.getMessage(), "level": r.levelname}
            | {k: v for k, v in vars(r).items() if k not in _RECORD_FIELDS}
            for r in caplog.records
        ]

    return read
