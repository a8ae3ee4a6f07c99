"""Parse what invokes the deploy function: SageMaker state changes delivered by EventBridge, and the
teardown call that `pulumi destroy` makes.

EventBridge events carry `source` "aws.sagemaker", a `detail-type` naming the change and the resource's
Describe-style fields in `detail` (SageMaker developer guide, "Automating SageMaker AI with Amazon
EventBridge"). The teardown call is the payload of the program's `aws.lambda_.Invocation` with lifecycle
scope CRUD: its own input plus `"tf": {"action": "create" | "update" | "delete", "prev_input": ...}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SAGEMAKER_SOURCE = "aws.sagemaker"
TUNING_JOB_STATE_CHANGE = "SageMaker HyperParameter Tuning Job State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
# The detail carries DescribeTransformJob's fields: TransformJobName, TransformJobStatus, ... (the
# EventBridge schema aws.sagemaker@SageMakerTransformJobStateChange, as the AWS CDK's generated
# SageMakerTransformJobStateChange pattern names its fields).
TRANSFORM_JOB_STATE_CHANGE = "SageMaker Transform Job State Change"
KINDS = (TUNING_JOB_STATE_CHANGE, ENDPOINT_STATE_CHANGE, TRANSFORM_JOB_STATE_CHANGE)
LIFECYCLE_KEY = "tf"
TEARDOWN_PURPOSE = "remove-runtime-resources"


class UnknownEvent(ValueError):
    """The function was invoked with something it does not handle; the message says what is wrong."""


@dataclass(frozen=True)
class TuningJobChanged:
    job_name: str
    status: str


@dataclass(frozen=True)
class EndpointChanged:
    endpoint_name: str
    status: str


@dataclass(frozen=True)
class TransformJobChanged:
    job_name: str
    status: str


@dataclass(frozen=True)
class Lifecycle:
    """The program's cleanup resource was created, updated or deleted; only deletion removes anything."""

    action: str

    @property
    def removes(self) -> bool:
        return self.action == "delete"


Event = TuningJobChanged | EndpointChanged | TransformJobChanged | Lifecycle


def parse_event(event: Any) -> Event:
    if not isinstance(event, dict):
        raise UnknownEvent(f"event is a {type(event).__name__}, not a JSON object")
    if LIFECYCLE_KEY in event:
        return _lifecycle(event)
    if event.get("source") != SAGEMAKER_SOURCE:
        raise UnknownEvent(f"event source {event.get('source')!r} is not {SAGEMAKER_SOURCE!r}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise UnknownEvent("SageMaker event has no detail object")
    kind = event.get("detail-type")
    if kind == TUNING_JOB_STATE_CHANGE:
        return TuningJobChanged(
            _text(detail, "HyperParameterTuningJobName"), _text(detail, "HyperParameterTuningJobStatus")
        )
    if kind == ENDPOINT_STATE_CHANGE:
        return EndpointChanged(_text(detail, "EndpointName"), _text(detail, "EndpointStatus"))
    if kind == TRANSFORM_JOB_STATE_CHANGE:
        return TransformJobChanged(_text(detail, "TransformJobName"), _text(detail, "TransformJobStatus"))
    raise UnknownEvent(f"detail-type {kind!r} is none of {', '.join(map(repr, KINDS))}")


def _lifecycle(event: dict[str, Any]) -> Lifecycle:
    lifecycle = event[LIFECYCLE_KEY]
    action = lifecycle.get("action") if isinstance(lifecycle, dict) else None
    if action not in ("create", "update", "delete"):
        raise UnknownEvent(f"lifecycle call has action {action!r}, not create, update or delete")
    if event.get("purpose") != TEARDOWN_PURPOSE:
        raise UnknownEvent(f"lifecycle call has purpose {event.get('purpose')!r}, not {TEARDOWN_PURPOSE!r}")
    return Lifecycle(action)


def _text(detail: dict[str, Any], name: str) -> str:
    value = detail.get(name)
    if not isinstance(value, str) or not value:
        raise UnknownEvent(f"SageMaker event detail lacks {name}")
    return value
