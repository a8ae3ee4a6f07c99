"""Lambda entry point of the transform function (SQS event source, partial batch responses).

Each queue record is one upload notification. A record that cannot be understood fails alone and, after
the queue's maxReceiveCount deliveries, lands in the dead-letter queue; the rest of the batch goes on.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.aws import client
from shared.dataset_store import LayoutError, dataset_of
from shared.s3_events import MalformedMessage, S3ObjectRef, parse_queue_message
from transform.environment import load_environment
from transform.upload import Status, UploadTransformer

logger = Logger(service="transform")
processor = BatchProcessor(event_type=EventType.SQS)
environment = load_environment()
transformer = UploadTransformer(environment, s3=client("s3"), sqs=client("sqs"))


def accept_upload(ref: S3ObjectRef, context: LambdaContext) -> None:
    """Take one uploaded CSV into the pipeline."""
    seconds_left = context.get_remaining_time_in_millis() / 1000
    # A key that names no dataset is the transformer's to reject, saying why.
    with contextlib.suppress(LayoutError):
        logger.append_keys(dataset=dataset_of(ref.key, environment.uploads.prefix))
    result = transformer.run(ref, seconds_left, int(context.memory_limit_in_mb))
    logger.append_keys(run=result.run)
    log = logger.warning if result.status in (Status.REJECTED, Status.GONE) else logger.info
    log(
        f"upload {result.status}",
        bucket=ref.bucket,
        key=ref.key,
        version_id=ref.version_id,
        detail=result.detail,
        tuning_requested=result.tuning_requested,
    )


def handle_record(record: SQSRecord, lambda_context: LambdaContext) -> None:
    # Keys of the previous record must not leak onto this one's lines.
    logger.remove_keys(["dataset", "run"])
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
        accept_upload(ref, lambda_context)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=context
    )
