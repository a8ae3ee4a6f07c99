"""The transform handler on events that moto produces from real uploads, and on malformed ones."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.functions.conftest import DATA_BUCKET, UploadPath
from tests.support.lambda_events import LambdaContext, sqs_event_from_messages, sqs_record

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:uploads"  # only named in records, never called
EVENTS = Path(__file__).parent / "events"


def drain(path: UploadPath) -> list[dict[str, Any]]:
    """Every message waiting on the queue: the s3:TestEvent first, then the uploads' notifications."""
    messages, batch = [], path.receive()
    while batch:
        messages += batch
        batch = path.receive()
    return messages


def invoke(handler: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    return handler.lambda_handler(event, LambdaContext())


def accepted_keys(lines: list[dict[str, Any]]) -> list[str]:
    """Keys the transform took up (whatever became of them: rejected, transformed, gone)."""
    return [line["key"] for line in lines if str(line.get("message")).startswith("upload ")]


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


@pytest.mark.parametrize(
    "key", ["raw/sales/jan.csv", "raw/sales/Q1 report+final (2) 100%.csv", "raw/ünï/日本.csv"]
)
def test_upload_through_s3_sns_sqs_reaches_the_handler_with_its_exact_key(
    upload_path: UploadPath, transform_handler: ModuleType, log_lines: Any, key: str
) -> None:
    upload_path.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=b"a,b\n1,2\n")
    messages = drain(upload_path)
    envelopes = [json.loads(m["Body"]) for m in messages]
    assert all(e["Type"] == "Notification" for e in envelopes), "moto delivers SNS envelopes"

    response = invoke(transform_handler, sqs_event_from_messages(messages, queue_arn=upload_path.queue_arn))

    assert response == {"batchItemFailures": []}
    lines = log_lines()
    assert accepted_keys(lines) == [key]
    assert any(line["message"] == "s3:TestEvent skipped" for line in lines)


def test_raw_message_delivery_bodies_are_read_too(
    raw_upload_path: UploadPath, transform_handler: ModuleType, log_lines: Any
) -> None:
    raw_upload_path.s3.put_object(Bucket=DATA_BUCKET, Key="raw/d/x y.csv", Body=b"a\n1\n")
    messages = drain(raw_upload_path)
    assert "Records" in json.loads(messages[-1]["Body"]), "raw delivery carries the S3 event itself"

    response = invoke(
        transform_handler, sqs_event_from_messages(messages, queue_arn=raw_upload_path.queue_arn)
    )

    assert response == {"batchItemFailures": []}
    assert accepted_keys(log_lines()) == ["raw/d/x y.csv"]


def test_uploads_that_do_not_match_the_filter_never_reach_the_queue(upload_path: UploadPath) -> None:
    drain(upload_path)  # the test event
    upload_path.s3.put_object(Bucket=DATA_BUCKET, Key="processed/d/out.csv", Body=b"x")
    upload_path.s3.put_object(Bucket=DATA_BUCKET, Key="raw/d/notes.txt", Body=b"x")
    assert drain(upload_path) == []


def test_event_for_another_bucket_is_skipped_with_a_reason(
    upload_path: UploadPath, transform_handler: ModuleType, log_lines: Any
) -> None:
    upload_path.s3.create_bucket(
        Bucket="someone-else", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    upload_path.notify_from("someone-else")
    upload_path.s3.put_object(Bucket="someone-else", Key="raw/d/a.csv", Body=b"a\n1\n")
    messages = drain(upload_path)

    response = invoke(transform_handler, sqs_event_from_messages(messages, queue_arn=upload_path.queue_arn))

    assert response == {"batchItemFailures": []}, "retrying cannot make another bucket's event ours"
    lines = log_lines()
    assert accepted_keys(lines) == []
    skipped = [line for line in lines if line["message"] == "object skipped"]
    assert skipped and "someone-else" in skipped[0]["reason"] and skipped[0]["level"] == "WARNING"


def documented_s3_event(**object_fields: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / "s3-put.json").read_text())
    event["Records"][0]["s3"]["bucket"]["name"] = DATA_BUCKET
    event["Records"][0]["s3"]["object"].update(object_fields)
    return event


def sns_envelope(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:uploads",
            "Subject": "Amazon S3 Notification",
            "Message": message,
            "Timestamp": "2026-11-25T12:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem",
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
        }
    )


def test_documented_s3_event_decodes_plus_and_percent_escapes(
    transform_handler: ModuleType, log_lines: Any
) -> None:
    record = sqs_record(sns_envelope(json.dumps(documented_s3_event())), queue_arn=QUEUE_ARN)
    assert invoke(transform_handler, {"Records": [record]}) == {"batchItemFailures": []}
    (taken,) = [line for line in log_lines() if str(line.get("message")).startswith("upload ")]
    assert taken["key"] == "raw/sales/Q1 report(2).csv"
    assert taken["version_id"] == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert taken["message"] == "upload gone", "the documented version is not in the bucket: nothing to read"


def test_event_outside_the_prefix_is_skipped(transform_handler: ModuleType, log_lines: Any) -> None:
    event = documented_s3_event(key="landing/x.csv")
    response = invoke(
        transform_handler, {"Records": [sqs_record(sns_envelope(json.dumps(event)), queue_arn=QUEUE_ARN)]}
    )
    assert response == {"batchItemFailures": []}
    (skipped,) = [line for line in log_lines() if line.get("message") == "object skipped"]
    assert "outside the upload prefix" in skipped["reason"]


MALFORMED = {
    "body is not JSON": "this is not json",
    "body is a JSON list": "[1, 2]",
    "SNS message is not JSON": sns_envelope("<xml/>"),
    "SNS message without S3 records": sns_envelope(json.dumps({"hello": "world"})),
    "S3 records list is empty": sns_envelope(json.dumps({"Records": []})),
    "record from another service": sns_envelope(json.dumps({"Records": [{"eventSource": "aws:dynamodb"}]})),
    "S3 record without object": sns_envelope(
        json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "b"}},
                    }
                ]
            }
        )
    ),
    "SNS subscription confirmation": json.dumps({"Type": "SubscriptionConfirmation", "Message": "confirm"}),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_message_fails_alone_and_the_rest_of_the_batch_goes_on(
    transform_handler: ModuleType, log_lines: Any, case: str
) -> None:
    good = sqs_record(sns_envelope(json.dumps(documented_s3_event())), queue_arn=QUEUE_ARN)
    bad = sqs_record(MALFORMED[case], queue_arn=QUEUE_ARN)

    response = invoke(transform_handler, {"Records": [bad, good]})

    assert failed_ids(response) == {bad["messageId"]}
    lines = log_lines()
    assert accepted_keys(lines) == ["raw/sales/Q1 report(2).csv"]
    (error,) = [line for line in lines if line.get("message") == "message is not an S3 upload notification"]
    assert error["level"] == "ERROR" and error["message_id"] == bad["messageId"] and error["reason"]


def test_a_batch_of_only_bad_messages_fails_the_invocation_so_sqs_redelivers_it(
    transform_handler: ModuleType,
) -> None:
    with pytest.raises(BatchProcessingError):
        invoke(transform_handler, {"Records": [sqs_record("nope", queue_arn=QUEUE_ARN)]})
