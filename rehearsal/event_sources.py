"""What drives the functions: the SQS event source mapping's poller, and EventBridge's default bus routing
service events to the rules' targets.

QueuePoller follows the Lambda developer guide, "Using Lambda with Amazon SQS" and "Handling errors for an
SQS event source in Lambda" (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html,
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): Lambda long-polls the
queue, invokes the function synchronously with a batch, deletes the batch when the function succeeds,
deletes all but the reported items with ReportBatchItemFailures, and otherwise leaves the messages to
come back after the queue's visibility timeout, the queue's redrive policy moving a message to its
dead-letter queue after maxReceiveCount receives.

EventRouter follows the EventBridge user guide: a rule's targets get each event its pattern matches;
EventBridge invokes a Lambda target asynchronously, which needs the function's resource-based policy to
allow events.amazonaws.com from the rule; a delivery that fails for a missing permission or a missing
target is not retried but goes straight to the target's dead-letter queue, with the error in its message
attributes ("Event retry policy and using dead-letter queues",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from botocore.exceptions import ClientError
from moto.events.models import EventPattern

from rehearsal.clock import TimeScale
from rehearsal.lambda_service import FunctionNotFound, LambdaService

_log = logging.getLogger(__name__)

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
# CreateEventSourceMapping defaults for an SQS source (with-sqs.html, "Amazon SQS configuration parameters").
DEFAULT_BATCH_SIZE = 10
# "Lambda processes up to five batches at a time" until it scales up; without a maximumConcurrency the
# rehearsal keeps to those five.
DEFAULT_POLLERS = 5
# ReceiveMessage takes at most 10 messages and waits at most 20 seconds (botocore sqs/2012-11-05).
RECEIVE_MAX_MESSAGES = 10
# Lambda long-polls with the 20-second maximum. A long poll answers as soon as a message arrives, so its
# length changes only how long a stopping poller takes to notice; the rehearsal's pollers wait 1 second.
POLL_WAIT_SECONDS = 1
_QUEUE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
_BATCH_LIMIT = 10  # entries per DeleteMessageBatch / ChangeMessageVisibilityBatch


@dataclass(frozen=True)
class _Received:
    message: dict[str, Any]
    at: float  # time.monotonic() of the ReceiveMessage that returned it


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's MessageAttributes as the Lambda event carries them: camel-cased keys, binary
    values base64-encoded, the list fields always present (with-sqs.html, event with attributes)."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        entry: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            entry["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
        converted[name] = entry
    return converted


class QueuePoller:
    """The event source mapping of one SQS queue (aws:lambda/eventSourceMapping:EventSourceMapping inputs)."""

    def __init__(
        self,
        mapping: Mapping[str, Any],
        *,
        sqs: Any,
        queue_url: str,
        lambda_: LambdaService,
        time_scale: TimeScale,
        region: str,
        housekeeping: Any | None = None,
    ) -> None:
        """`sqs` makes the calls Lambda makes (ReceiveMessage, DeleteMessageBatch, GetQueueAttributes: the
        function's role needs them, with-sqs.html "Execution role permissions"), so it may be signed
        with the role's session; `housekeeping` (default `sqs`) makes the rehearsal's own calls, which
        Lambda does not: shortening a failed message's visibility, handing back messages at stop, and
        counting the queue for `idle`."""
        if mapping.get("filterCriteria"):
            raise ValueError("event filtering (filterCriteria) is not emulated")
        if queue_url.endswith(".fifo"):
            raise ValueError("FIFO queues (one batch per message group, in order) are not emulated")
        self._sqs = sqs
        self._housekeeping = housekeeping or sqs
        self._queue_url = queue_url
        self._lambda = lambda_
        self._scale = time_scale
        self._region = region
        self._function = str(mapping["functionName"])
        self._source_arn = str(mapping["eventSourceArn"])
        self._enabled = bool(mapping.get("enabled", True))
        self._batch_size = int(mapping.get("batchSize", DEFAULT_BATCH_SIZE))
        self._window = float(mapping.get("maximumBatchingWindowInSeconds", 0))
        if self._batch_size > RECEIVE_MAX_MESSAGES and self._window < 1:
            # with-sqs.html: "For a batch size over 10, you must also set the MaximumBatchingWindowInSeconds
            # parameter to at least 1 second."
            raise ValueError("a batch size over 10 needs maximumBatchingWindowInSeconds of at least 1")
        scaling = mapping.get("scalingConfig") or {}
        self._pollers = int(scaling.get("maximumConcurrency", DEFAULT_POLLERS))
        self._report_failures = REPORT_BATCH_ITEM_FAILURES in (mapping.get("functionResponseTypes") or [])
        self._visibility_timeout = int(
            sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"][
                "VisibilityTimeout"
            ]
        )
        # Set when the pollers of the current run are to stop; each run has its own.
        self._stopping: threading.Event | None = None
        self._changed = threading.Condition()
        self._busy = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        if not self._enabled or self._stopping is not None:
            return
        stopping = self._stopping = threading.Event()
        # One poller per batch in flight: at most maximumConcurrency batches at once.
        for index in range(self._pollers):
            name = f"sqs-poller-{self._function}-{index}"
            threading.Thread(target=self._poll, args=(stopping,), name=name, daemon=True).start()

    def stop(self) -> None:
        """Stop polling, once the batches in flight are done. A long poll still open ends by itself
        within POLL_WAIT_SECONDS and hands back, at once, whatever it received."""
        stopping, self._stopping = self._stopping, None
        if stopping is None:
            return
        stopping.set()
        with self._changed:
            self._changed.wait_for(lambda: self._busy == 0)

    def idle(self) -> bool:
        """No batch in flight and nothing left on the queue, visible, in flight or delayed (a received
        message counts as not visible until it is deleted or comes back)."""
        with self._changed:
            if self._busy:
                return False
        counts = self._housekeeping.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=list(_QUEUE_COUNTS)
        )
        with self._changed:
            return self._busy == 0 and all(int(counts["Attributes"][name]) == 0 for name in _QUEUE_COUNTS)

    # -- polling ---------------------------------------------------------------------------------------

    def _poll(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                batch = self._gather(stopping)
                with self._changed:
                    stopped = stopping.is_set()
                    if batch and not stopped:
                        self._busy += 1
                if stopped:
                    self._hand_back(batch)
                elif batch:
                    self._process(batch)
            except Exception:
                if not stopping.is_set():
                    _log.exception("poller of %s failed; polling again", self._source_arn)
                stopping.wait(POLL_WAIT_SECONDS)

    def _receive(self, count: int, wait_seconds: int) -> list[_Received]:
        answer = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        now = time.monotonic()
        return [_Received(message, now) for message in answer.get("Messages", [])]

    def _gather(self, stopping: threading.Event) -> list[_Received]:
        """A batch: up to batchSize messages, gathered for up to the batching window after the first."""
        batch: list[_Received] = []
        window_ends = math.inf
        while len(batch) < self._batch_size and not stopping.is_set():
            count = min(self._batch_size - len(batch), RECEIVE_MAX_MESSAGES)
            if not batch:
                received = self._receive(count, POLL_WAIT_SECONDS)
                if received:
                    window_ends = time.monotonic() + self._scale.seconds(self._window)
            else:
                left = window_ends - time.monotonic()
                if left <= 0:
                    break
                received = self._receive(count, min(int(left), POLL_WAIT_SECONDS))
                if not received:
                    stopping.wait(min(left, 0.05))
            batch.extend(received)
            if batch and self._window == 0:
                break
            if not batch:
                return batch
        return batch

    def _record(self, received: _Received) -> dict[str, Any]:
        """One record of the event, as with-sqs.html shows it (and tests/support/lambda_events.py)."""
        message = received.message
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message["MD5OfBody"],
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        record.update(
            {"eventSource": "aws:sqs", "eventSourceARN": self._source_arn, "awsRegion": self._region}
        )
        return record

    def _process(self, batch: list[_Received]) -> None:
        try:
            self._invoke(batch)
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def _hand_back(self, batch: list[_Received]) -> None:
        """Messages received as the poller stopped, visible again at once, for the next poller."""
        for start in range(0, len(batch), _BATCH_LIMIT):
            entries = [
                {"Id": str(i), "ReceiptHandle": r.message["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, r in enumerate(batch[start : start + _BATCH_LIMIT])
            ]
            self._housekeeping.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)

    def _invoke(self, batch: list[_Received]) -> None:
        by_id = {received.message["MessageId"]: received for received in batch}
        event = {"Records": [self._record(received) for received in batch]}
        try:
            invocation = self._lambda.invoke(self._function, event)
        except FunctionNotFound:
            # The mapping's function is gone: nothing is deleted, the messages come back.
            _log.exception("event source mapping of %s cannot invoke %s", self._source_arn, self._function)
            failed = set(by_id)
        else:
            if not invocation.ok:
                failed = set(by_id)
            elif self._report_failures:
                failed = self._reported_failures(invocation.payload, set(by_id))
            else:
                failed = set()
        self._delete([r for message_id, r in by_id.items() if message_id not in failed])
        self._return([r for message_id, r in by_id.items() if message_id in failed])

    @staticmethod
    def _reported_failures(response: Any, batch: set[str]) -> set[str]:
        """The messages a ReportBatchItemFailures response names as failed; all of them when the response
        is invalid (with-sqs.html, "Success and failure conditions": a null or empty response or list is
        a complete success; an invalid response, an empty, null or unknown itemIdentifier, or a bad key
        name is a complete failure)."""
        if response is None or response == {}:
            return set()
        if not isinstance(response, dict):
            return batch
        failures = response.get("batchItemFailures")
        if failures is None:
            return set()
        if not isinstance(failures, list):
            return batch
        failed: set[str] = set()
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not isinstance(identifier, str) or identifier not in batch:
                return batch
            failed.add(identifier)
        return failed

    def _delete(self, succeeded: list[_Received]) -> None:
        for start in range(0, len(succeeded), _BATCH_LIMIT):
            chunk = succeeded[start : start + _BATCH_LIMIT]
            answer = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r.message["ReceiptHandle"]} for i, r in enumerate(chunk)
                ],
            )
            for failure in answer.get("Failed", []):
                _log.error("could not delete a processed message from %s: %s", self._source_arn, failure)

    def _return(self, failed: list[_Received]) -> None:
        """Leave failed messages to come back when their visibility timeout would end in AWS time.

        moto runs the queue's visibility timeout on the wall clock: left alone, a failed message of a
        queue with the program's 90 minutes would stay hidden 90 real minutes. So each one's remaining
        timeout (the queue's, less the AWS time since it was received) is set again, scaled. Messages in
        flight keep the full wall-clock timeout: the function runs at real speed and must not see its
        message redelivered while it works.
        """
        entries = []
        for index, received in enumerate(failed):
            elapsed_aws = (time.monotonic() - received.at) * self._scale.factor
            remaining = self._scale.seconds(max(0.0, self._visibility_timeout - elapsed_aws))
            entries.append(
                {
                    "Id": str(index),
                    "ReceiptHandle": received.message["ReceiptHandle"],
                    # Whole seconds only, rounded up: never visible earlier than in AWS.
                    "VisibilityTimeout": math.ceil(remaining),
                }
            )
        for start in range(0, len(entries), _BATCH_LIMIT):
            answer = self._housekeeping.change_message_visibility_batch(
                QueueUrl=self._queue_url, Entries=entries[start : start + _BATCH_LIMIT]
            )
            for failure in answer.get("Failed", []):
                _log.error(
                    "could not shorten a failed message's visibility on %s: %s", self._source_arn, failure
                )


# -- EventBridge ----------------------------------------------------------------------------------------

EVENTS_PRINCIPAL = "events.amazonaws.com"
# Error codes of the dead-letter message attributes (eb-rule-dlq.html): permanent failures, sent to the
# dead-letter queue without a retry.
NO_PERMISSIONS = "NO_PERMISSIONS"
NO_RESOURCE = "NO_RESOURCE"
_ENABLED = ("ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS")


class DeliveryFailure(Exception):
    """A delivery EventBridge does not retry, with its dead-letter ERROR_CODE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _arn_resource(arn: str) -> tuple[str, str, str]:
    """(service, account, resource) of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        raise ValueError(f"not an ARN: {arn}")
    return parts[2], parts[4], parts[5]


class EventRouter:
    """EventBridge's default bus as the program's rules and targets (in moto) see it."""

    def __init__(
        self, *, events: Any, lambda_: LambdaService, sqs: Any, time_scale: TimeScale, bus: str = "default"
    ) -> None:
        self._events = events
        self._lambda = lambda_
        self._sqs = sqs
        # EventBridge's retries of transient delivery failures would wait in AWS time; the rehearsal's
        # deliveries (moto on loopback, the local Lambda service) have none to retry.
        self._scale = time_scale
        self._bus = bus

    def publish(self, event: dict[str, Any]) -> list[str]:
        """Route one event from a service (e.g. aws.sagemaker) to every matching rule's targets; the ARNs
        of the targets it was delivered to, a target once per rule."""
        envelope = self._envelope(event)
        delivered = []
        for rule in self._rules():
            pattern = EventPattern.load(rule["EventPattern"])
            # moto types the event as its own TypedDict; the envelope has its keys.
            if not pattern.matches_event(cast(Any, envelope)):
                continue
            for target in self._targets(rule["Name"]):
                try:
                    self._deliver(rule["Arn"], target, envelope)
                except DeliveryFailure as failure:
                    self._dead_letter(rule["Arn"], target, envelope, failure)
                else:
                    delivered.append(str(target["Arn"]))
        return delivered

    def _envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as EventBridge hands it on: a service's event has every envelope field; the ones a
        caller left out get what EventBridge would put there (eb-events-structure.html)."""
        missing = [key for key in ("source", "detail-type", "detail") if key not in event]
        if missing:
            raise ValueError(f"an event needs {', '.join(missing)}")
        if not isinstance(event["detail"], dict):
            raise ValueError("an event's detail is a JSON object")
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": event["detail-type"],
            "source": event["source"],
            "account": None,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._events.meta.region_name,
            "resources": [],
            "detail": event["detail"],
        }
        envelope.update(event)
        if envelope["account"] is None:
            envelope["account"] = _arn_resource(self._events.describe_event_bus(Name=self._bus)["Arn"])[1]
        return envelope

    def _rules(self) -> Iterator[dict[str, Any]]:
        for page in self._events.get_paginator("list_rules").paginate(EventBusName=self._bus):
            for rule in page["Rules"]:
                # Scheduled rules have no pattern; disabled rules match nothing.
                if rule.get("EventPattern") and rule.get("State") in _ENABLED:
                    yield rule

    def _targets(self, rule: str) -> Iterator[dict[str, Any]]:
        for page in self._events.get_paginator("list_targets_by_rule").paginate(
            Rule=rule, EventBusName=self._bus
        ):
            yield from page["Targets"]

    @staticmethod
    def _input(target: Mapping[str, Any], envelope: dict[str, Any]) -> Any:
        """What the target receives: the event, or the target's constant Input, or the InputPath's part."""
        if "InputTransformer" in target:
            raise NotImplementedError(f"target {target['Id']}: InputTransformer is not emulated")
        if "Input" in target:
            return json.loads(target["Input"])
        path = target.get("InputPath")
        if path is None or path == "$":
            return envelope
        if not path.startswith("$."):
            raise NotImplementedError(f"target {target['Id']}: InputPath {path} is not a simple path")
        value: Any = envelope
        for key in path[2:].split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def _deliver(self, rule_arn: str, target: Mapping[str, Any], envelope: dict[str, Any]) -> None:
        arn = str(target["Arn"])
        service, account, resource = _arn_resource(arn)
        payload = self._input(target, envelope)
        if service == "lambda":
            try:
                permitted = self._lambda.permits(arn, EVENTS_PRINCIPAL, rule_arn)
            except FunctionNotFound as missing:
                raise DeliveryFailure(NO_RESOURCE, str(missing)) from None
            if not permitted:
                raise DeliveryFailure(
                    NO_PERMISSIONS,
                    f"{EVENTS_PRINCIPAL} is not authorized to perform lambda:InvokeFunction on {arn} "
                    f"because no resource-based policy allows it for {rule_arn}",
                )
            # EventBridge invokes Lambda targets asynchronously (InvocationType Event).
            self._lambda.invoke_async(arn, payload)
        elif service == "sqs":
            # The queue's policy would have to allow events.amazonaws.com; moto judges no queue policies,
            # and neither does the rehearsal.
            # A constant Input goes as written; anything else as the JSON of the event or its part.
            body = str(target["Input"]) if "Input" in target else json.dumps(payload)
            message: dict[str, Any] = {"QueueUrl": self._queue_url(resource, account), "MessageBody": body}
            group = (target.get("SqsParameters") or {}).get("MessageGroupId")
            if group:
                message["MessageGroupId"] = group
            self._sqs.send_message(**message)
        else:
            raise NotImplementedError(f"targets of {service} are not emulated ({arn})")

    def _queue_url(self, name: str, account: str) -> str:
        try:
            url: str = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        except ClientError as error:
            raise DeliveryFailure(NO_RESOURCE, str(error)) from None
        return url

    def _dead_letter(
        self, rule_arn: str, target: Mapping[str, Any], envelope: dict[str, Any], failure: DeliveryFailure
    ) -> None:
        dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not dead_letter:
            _log.warning(
                "event %s dropped for %s: %s %s", envelope["id"], target["Arn"], failure.code, failure.message
            )
            return
        # Permanent failures are not retried: RETRY_ATTEMPTS is 0 and EXHAUSTED_RETRY_CONDITION absent.
        attributes = {
            "RULE_ARN": rule_arn,
            "TARGET_ARN": str(target["Arn"]),
            "ERROR_CODE": failure.code,
            "ERROR_MESSAGE": failure.message,
            "RETRY_ATTEMPTS": "0",
        }
        _, account, name = _arn_resource(dead_letter)
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url(name, account),
                MessageBody=json.dumps(envelope),
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                },
            )
        except (ClientError, DeliveryFailure):
            # EventBridge counts these as InvocationsFailedToBeSentToDLQ; the event is lost.
            _log.exception(
                "event %s could not be sent to the dead-letter queue %s", envelope["id"], dead_letter
            )
