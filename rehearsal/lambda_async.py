"""Lambda's asynchronous invocation queue: events invoked with InvocationType Event wait here, are retried
after a function error, expire, and end with an invocation record sent to a destination.

Lambda developer guide, "How Lambda handles errors and retries with asynchronous invocation"
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html): "If the function
returns an error, by default Lambda attempts to run it two more times, with a one-minute wait between the
first two attempts, and two minutes between the second and third attempts. Function errors include errors
returned by the function's code and errors returned by the function's runtime, such as timeouts."
"When an event expires or fails all processing attempts, Lambda discards it", sending the invocation record
to the on-failure destination if one is configured ("Capturing records of Lambda asynchronous
invocations", invocation-async-retain-records.html, whose example record this module reproduces). The
waits between attempts and the event's maximum age are AWS time, passed through the rehearsal's
`TimeScale`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from rehearsal.clock import TimeScale

if TYPE_CHECKING:
    from tools.mockrun import Resource

# The waits before the second and the third attempt, in AWS seconds.
RETRY_DELAYS_SECONDS = (60.0, 120.0)
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
SUCCESS = "Success"
EVENT_INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"

_log = logging.getLogger(__name__)


class AttemptResult(Protocol):
    """What one attempt answered (an `Invocation` of the Lambda service)."""

    @property
    def payload(self) -> Any | None: ...

    @property
    def error(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class AsyncConfig:
    """A function's asynchronous invocation settings (PutFunctionEventInvokeConfig), with AWS's defaults."""

    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int = 21600
    # Destination ARNs (SQS queue, SNS topic, ...) for the invocation records.
    on_failure: str | None = None
    on_success: str | None = None

    def __post_init__(self) -> None:
        # botocore lambda/2015-03-31 shapes MaximumRetryAttempts (0..2), MaximumEventAgeInSeconds (60..21600).
        if not 0 <= self.maximum_retry_attempts <= 2:
            raise ValueError(f"maximum_retry_attempts must be 0 to 2, not {self.maximum_retry_attempts}")
        if not 60 <= self.maximum_event_age_seconds <= 21600:
            raise ValueError(
                f"maximum_event_age_seconds must be 60 to 21600, not {self.maximum_event_age_seconds}"
            )

    @classmethod
    def from_resource(cls, resource: Resource) -> AsyncConfig:
        """An aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig; AWS's defaults where it sets
        none. The function it configures is its `functionName` input."""
        if resource.type != EVENT_INVOKE_CONFIG:
            raise ValueError(f"{resource.name} is a {resource.type}, not a {EVENT_INVOKE_CONFIG}")
        inputs = resource.inputs
        if inputs.get("qualifier") not in (None, "$LATEST"):
            raise ValueError(
                f"{resource.name}: only $LATEST is emulated, not qualifier {inputs['qualifier']}"
            )
        destinations = inputs.get("destinationConfig") or {}
        return cls(
            maximum_retry_attempts=int(inputs.get("maximumRetryAttempts", cls.maximum_retry_attempts)),
            maximum_event_age_seconds=int(
                inputs.get("maximumEventAgeInSeconds", cls.maximum_event_age_seconds)
            ),
            on_failure=(destinations.get("onFailure") or {}).get("destination"),
            on_success=(destinations.get("onSuccess") or {}).get("destination"),
        )


@dataclass
class _QueuedEvent:
    function: str
    function_arn: str
    request_id: str
    payload_json: str
    queued_at: float
    attempts: int = 0
    last: AttemptResult | None = None


# Runs one attempt: (function, request id, event JSON) -> its result.
Attempt = Callable[[str, str, str], AttemptResult]
Destinations = Callable[[str, dict[str, Any]], None]


def invocation_record(event: _QueuedEvent, condition: str) -> dict[str, Any]:
    """The record Lambda sends to a destination (invocation-async-retain-records.html, example record)."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": f"{event.function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": json.loads(event.payload_json),
    }
    if event.last is not None:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if event.last.error is not None:
            response["functionError"] = "Unhandled"
        record["responseContext"] = response
        record["responsePayload"] = event.last.error if event.last.error is not None else event.last.payload
    return record


class Activity:
    """Counts the work in progress (invocations running, events queued or waiting to be retried), so a
    caller can wait until there is none."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def begin(self) -> None:
        with self._changed:
            self._count += 1

    def end(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout=timeout)


class AsyncQueue:
    """The asynchronous event queue of all functions of one Lambda service."""

    def __init__(
        self,
        *,
        attempt: Attempt,
        config: Callable[[str], AsyncConfig],
        destinations: Destinations,
        time_scale: TimeScale,
        activity: Activity,
    ) -> None:
        self._attempt = attempt
        self._config = config
        self._destinations = destinations
        self._scale = time_scale
        self._activity = activity
        self._due: list[tuple[float, int, _QueuedEvent]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._dispatcher = threading.Thread(target=self._dispatch, name="lambda-async-queue", daemon=True)
        self._dispatcher.start()

    def submit(self, function: str, function_arn: str, request_id: str, payload_json: str) -> None:
        event = _QueuedEvent(function, function_arn, request_id, payload_json, time.monotonic())
        self._activity.begin()
        self._schedule(event, time.monotonic())

    def _schedule(self, event: _QueuedEvent, at: float) -> None:
        with self._changed:
            if self._closed:
                self._activity.end()
                return
            heapq.heappush(self._due, (at, next(self._order), event))
            self._changed.notify_all()

    def _dispatch(self) -> None:
        while True:
            with self._changed:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._changed.wait(wait)
                if self._closed:
                    return
                _, _, event = heapq.heappop(self._due)
            # Each attempt in its own thread: a long invocation must not hold up the others' retries.
            threading.Thread(target=self._run, args=(event,), name=f"lambda-async-{event.request_id}").start()

    def _run(self, event: _QueuedEvent) -> None:
        try:
            self._process(event)
        except Exception:
            if self._closed:  # the service shut down under the attempt
                self._activity.end()
                return
            _log.exception(
                "asynchronous invocation %s of %s failed in the rehearsal", event.request_id, event.function
            )
            self._activity.end()

    def _process(self, event: _QueuedEvent) -> None:
        config = self._config(event.function)
        if time.monotonic() - event.queued_at > self._scale.seconds(config.maximum_event_age_seconds):
            self._discard(event, config, EVENT_AGE_EXCEEDED)
            return
        event.attempts += 1
        event.last = self._attempt(event.function, event.request_id, event.payload_json)
        if event.last.error is None:
            if config.on_success:
                self._send(config.on_success, invocation_record(event, SUCCESS))
            self._activity.end()
            return
        # The configuration may have changed while the attempt ran; Lambda applies the current one.
        config = self._config(event.function)
        retries_done = event.attempts - 1
        if retries_done >= config.maximum_retry_attempts:
            self._discard(event, config, RETRIES_EXHAUSTED)
            return
        delay = self._scale.seconds(RETRY_DELAYS_SECONDS[retries_done])
        self._schedule(event, time.monotonic() + delay)

    def _discard(self, event: _QueuedEvent, config: AsyncConfig, condition: str) -> None:
        if config.on_failure:
            self._send(config.on_failure, invocation_record(event, condition))
        else:
            _log.warning(
                "%s of %s discarded (%s), no on-failure destination",
                event.request_id,
                event.function,
                condition,
            )
        self._activity.end()

    def _send(self, destination: str, record: dict[str, Any]) -> None:
        try:
            self._destinations(destination, record)
        except Exception:
            # Lambda counts these as DestinationDeliveryFailures; the event is gone either way.
            _log.exception(
                "invocation record %s could not be sent to %s",
                record["requestContext"]["requestId"],
                destination,
            )

    def close(self) -> None:
        """Stop dispatching; events still queued are dropped."""
        with self._changed:
            self._closed = True
            dropped = len(self._due)
            self._due.clear()
            self._changed.notify_all()
        for _ in range(dropped):
            self._activity.end()
        self._dispatcher.join(timeout=5)
