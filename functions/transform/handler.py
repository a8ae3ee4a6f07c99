"""Lambda entry point of the transform function (SQS event source, partial batch responses).

Each queue record is one upload notification. A record that cannot be understood fails alone and, after
the queue's maxReceiveCount deliveries, lands in the dead-letter queue; the rest of the batch goes on.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.s3_events import MalformedMessage, S3ObjectRef, parse_queue_message
from transform.environment import load_environment

logger = Logger(service="transform")
processor = BatchProcessor(event_type=EventType.SQS)
environment = load_environment()


def accept_upload(ref: S3ObjectRef) -> None:
    """Take one uploaded CSV into the pipeline."""
    logger.info("upload accepted", bucket=ref.bucket, key=ref.key, version_id=ref.version_id, size=ref.size)


def handle_record(record: SQSRecord) -> None:
    try:
        notification = parse_queue_message(record.body)
    except MalformedMessage as error:
        logger.error(
            "message is not an S3 upload notification", message_id=record.message_id, reason=str(error)
        )
        raise
    if notification.is_test_event:
        logger.info("s3:TestEvent skipped", message_id=record.message_id)
        return
    for ref in notification.objects:
        reason = environment.uploads.reason_to_skip(ref)
        if reason is not None:
            logger.warning(
                "object skipped", message_id=record.message_id, bucket=ref.bucket, key=ref.key, reason=reason
            )
            continue
        accept_upload(ref)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=context
    )
