"""Lambda events built the way the Lambda service builds them from real service messages."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

_counter = itertools.count(1)


def sqs_record(
    body: str, *, queue_arn: str, message_id: str | None = None, receipt: str = "rh"
) -> dict[str, Any]:
    """One record of the SQS event Lambda passes to a function (Lambda developer guide, with-sqs)."""
    region = queue_arn.split(":")[3]
    return {
        "messageId": message_id or f"m-{next(_counter)}",
        "receiptHandle": receipt,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event_from_messages(messages: list[dict[str, Any]], *, queue_arn: str) -> dict[str, Any]:
    """The SQS event for messages as `ReceiveMessage` returned them."""
    return {
        "Records": [
            sqs_record(m["Body"], queue_arn=queue_arn, message_id=m["MessageId"], receipt=m["ReceiptHandle"])
            for m in messages
        ]
    }


@dataclass
class LambdaContext:
    function_name: str = "transform"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:transform"
    aws_request_id: str = "6f4e5c3a-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000
