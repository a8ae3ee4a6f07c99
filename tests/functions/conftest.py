"""Function tests run the handlers in-process against moto, with the environment the program sets.

The transform's environment is the one the Pulumi program gives the function in the dev stack (run under
mocks), bucket name and tuning request template included: moto gets a bucket of that name.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

import shared.aws
from tests.support.aws_requests import Request, recording_requests
from tests.support.stacks import synth

PROGRAM = synth("dev")
REGION = PROGRAM.config["aws:region"]
TRANSFORM_ENVIRONMENT: dict[str, str] = PROGRAM.named("transform-function").inputs["environment"]["variables"]
DATA_BUCKET = TRANSFORM_ENVIRONMENT["DATA_BUCKET"]
RAW_PREFIX = TRANSFORM_ENVIRONMENT["RAW_PREFIX"]
RAW_SUFFIX = TRANSFORM_ENVIRONMENT["RAW_SUFFIX"]


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
    for name, value in (credentials | TRANSFORM_ENVIRONMENT).items():
        monkeypatch.setenv(name, value)
    # One attempt per request: a test of a failing call sees the failure without the SDK's back-off.
    monkeypatch.setattr(
        shared.aws, "CLIENT_CONFIG", shared.aws.CLIENT_CONFIG.merge(Config(retries={"max_attempts": 1}))
    )
    shared.aws.client.cache_clear()


@pytest.fixture
def transform_handler(aws: None) -> ModuleType:
    """The handler module imported afresh inside moto, so its clients talk to moto."""
    import transform.handler

    return importlib.reload(transform.handler)


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
