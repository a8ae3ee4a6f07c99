"""Lambda entry point of the tune function (SQS event source, partial batch responses).

Each queue record is one tuning request (shared/tuning_requests.py). A record that cannot be understood
or acted on fails alone and, after the queue's maxReceiveCount deliveries, lands in the dead-letter queue;
the rest of the batch goes on. Every log line of a request carries its `dataset` and `run`, and, once
decided, the `runs` its job covers and the `tuning_job`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.aws import client
from shared.tuning_requests import MalformedRequest, parse_request
from tune.environment import load_environment
from tune.tuner import DatasetTuner, Outcome

logger = Logger(service="tune")
processor = BatchProcessor(event_type=EventType.SQS)
tuner = DatasetTuner(load_environment(), s3=client("s3"), sagemaker=client("sagemaker"), sqs=client("sqs"))
# Outcomes someone should see: nothing was started for a dataset that has data.
NOTEWORTHY = (Outcome.DEFERRED, Outcome.NOTHING_TO_TUNE)


def handle_record(record: SQSRecord) -> None:
    # Keys of the previous record must not leak onto this one's lines.
    logger.remove_keys(["dataset", "run", "runs", "tuning_job"])
    try:
        request = parse_request(record.body)
    except MalformedRequest as error:
        logger.error("message is not a tuning request", message_id=record.message_id, reason=str(error))
        raise
    logger.append_keys(dataset=request.dataset, run=request.run)
    result = tuner.handle(request)
    if result.tuning_job is not None:
        logger.append_keys(runs=list(result.runs), tuning_job=result.tuning_job)
    log = logger.warning if result.outcome in NOTEWORTHY or result.excluded else logger.info
    log(
        f"tuning {result.outcome}",
        detail=result.detail,
        excluded=[{"run": e.run, "reason": e.reason} for e in result.excluded],
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=handle_record, processor=processor, context=context
    )
