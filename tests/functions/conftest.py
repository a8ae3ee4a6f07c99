"""Function tests run the handlers in-process against moto, with the environment the program sets."""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "eu-west-1"
DATA_BUCKET = "pipeline-data"
RAW_PREFIX = "raw/"
RAW_SUFFIX = ".csv"


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "DATA_BUCKET": DATA_BUCKET,
        "RAW_PREFIX": RAW_PREFIX,
        "RAW_SUFFIX": RAW_SUFFIX,
        "POWERTOOLS_SERVICE_NAME": "transform",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def transform_handler() -> ModuleType:
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


def _upload_path(raw_delivery: bool) -> Iterator[UploadPath]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        s3.create_bucket(Bucket=DATA_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
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
def upload_path() -> Iterator[UploadPath]:
    yield from _upload_path(raw_delivery=False)


@pytest.fixture
def raw_upload_path() -> Iterator[UploadPath]:
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
