"""The state-change events the local SageMaker sends to EventBridge, and their delivery.

Envelope and details follow the samples of the SageMaker developer guide, "Automating Amazon SageMaker with
Amazon EventBridge" (awsdocs/amazon-sagemaker-developer-guide, doc_source/automating-sagemaker-with-
eventbridge.md): `source` "aws.sagemaker", `detail-type` "SageMaker Training Job State Change", "SageMaker
HyperParameter Tuning Job State Change" or "SageMaker Endpoint State Change", the resource's ARN in
`resources`, and a `detail` of the resource's Describe fields. The samples write timestamps in `detail` as
epoch milliseconds (strings for jobs, numbers for endpoints), tags as an object, and endpoint statuses in
upper snake case (`IN_SERVICE`); the envelope's `time` is EventBridge's ISO 8601.

EventBridge delivers asynchronously: a change is never held up by whoever consumes its event. Events go
out in the order the changes happened, on one delivery thread.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

SOURCE = "aws.sagemaker"
TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
TUNING_JOB_STATE_CHANGE = "SageMaker HyperParameter Tuning Job State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
# Not among the guide's samples: the detail-type and fields of the EventBridge schema
# aws.sagemaker@SageMakerTransformJobStateChange (as the AWS CDK's generated SageMakerTransformJobStateChange
# pattern lists them: TransformJobName, TransformJobStatus, ModelName, TransformInput, ...).
TRANSFORM_JOB_STATE_CHANGE = "SageMaker Transform Job State Change"


def envelope(
    detail_type: str,
    resource_arn: str,
    detail: Mapping[str, Any],
    *,
    account: str,
    region: str,
    time: datetime,
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [resource_arn],
        "detail": dict(detail),
    }


def event_status(status: str) -> str:
    """An endpoint's API status as its events spell it: InService -> IN_SERVICE."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", status).upper()


def epoch_millis(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def tag_object(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


class EventDelivery:
    """Hands events to `publish` on its own thread, in order; `wait` blocks until all sent so far are out."""

    def __init__(self, publish: Callable[[dict[str, Any]], None]) -> None:
        self._publish = publish
        self._queue: deque[dict[str, Any]] = deque()
        self._changed = threading.Condition()
        self._busy = False
        self._closed = False
        self.failures: list[Exception] = []
        self._thread = threading.Thread(target=self._run, name="sagemaker-events", daemon=True)
        self._thread.start()

    def send(self, event: dict[str, Any]) -> None:
        with self._changed:
            self._queue.append(event)
            self._changed.notify_all()

    def wait(self, timeout: float = 30) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: not self._queue and not self._busy, timeout=timeout):
                raise TimeoutError(f"{len(self._queue)} SageMaker events not delivered in {timeout} s")

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                event = self._queue.popleft()
                self._busy = True
            try:
                self._publish(event)
            except Exception as error:  # the consumer's failure is its own; delivery goes on
                logger.exception("delivering a SageMaker event failed", extra={"event": event["detail-type"]})
                self.failures.append(error)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
