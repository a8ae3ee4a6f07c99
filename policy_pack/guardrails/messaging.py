"""SNS topics and SQS queues: encryption, who their resource policies let in, dead letters and retention."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pulumi_policy import PolicyResource

from .documents import allows, condition_keys
from .framework import (
    Guardrail,
    Props,
    Stack,
    Violation,
    as_list,
    each,
    is_set,
    resource_guardrail,
    stack_guardrail,
)

TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
REDRIVE_POLICY = "aws:sqs/redrivePolicy:RedrivePolicy"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
FUNCTION = "aws:lambda/function:Function"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"

# What a service principal may do on a resource is scoped to the calling resource or account by these
# keys, which AWS sets on service-to-service requests (IAM user guide, "The confused deputy problem").
SOURCE_KEYS = {"aws:sourcearn", "aws:sourceaccount"}
# CreateQueue's MessageRetentionPeriod when none is given: 345,600 seconds (SQS API reference).
DEFAULT_RETENTION_SECONDS = 345_600


def topic_encrypted(_type: str, props: Props) -> Iterator[str]:
    if not is_set(props, "kmsMasterKeyId"):
        yield "the topic needs kmsMasterKeyId (SSE with a KMS key)"


def queue_encrypted(_type: str, props: Props) -> Iterator[str]:
    if not (is_set(props, "kmsMasterKeyId") or props.get("sqsManagedSseEnabled") is True):
        yield "the queue needs kmsMasterKeyId (SSE-KMS) or sqsManagedSseEnabled (SSE-SQS)"


def _unscoped_grants(document: Any) -> Iterator[str]:
    for s in allows(document):
        sid = s.get("Sid", "(no Sid)")
        principal = s.get("Principal")
        if "NotPrincipal" in s or principal == "*":
            yield f"statement {sid} allows every principal"
            continue
        principal = principal if isinstance(principal, dict) else {}
        if "*" in as_list(principal.get("AWS")):
            yield f"statement {sid} allows every AWS principal"
        if principal.get("Service") and not SOURCE_KEYS & condition_keys(s):
            yield f"statement {sid} allows a service without an aws:SourceArn or aws:SourceAccount condition"


def resource_policy_scoped(type_: str, props: Props) -> Iterator[str]:
    """Policies given on their own resource (TopicPolicy, QueuePolicy) or inline on the topic or queue."""
    if is_set(props, "policy"):
        yield from _unscoped_grants(props["policy"])


def _redrive_target(document: Any) -> str | None:
    parsed = json.loads(document) if isinstance(document, str) else document
    return parsed.get("deadLetterTargetArn") if parsed else None


def _dead_letter_arns(stack: Stack) -> set[str]:
    """Every ARN the stack sends dead letters to: queue redrives, SNS subscription redrives, EventBridge
    target DLQs and Lambda dead-letter and on-failure destinations."""
    arns = {_redrive_target(q.props.get("redrivePolicy")) for q in stack.of_type(QUEUE, REDRIVE_POLICY)}
    arns |= {_redrive_target(s.props.get("redrivePolicy")) for s in stack.of_type(SUBSCRIPTION)}
    arns |= {(t.props.get("deadLetterConfig") or {}).get("arn") for t in stack.of_type(EVENT_TARGET)}
    arns |= {(f.props.get("deadLetterConfig") or {}).get("targetArn") for f in stack.of_type(FUNCTION)}
    arns |= {
        ((c.props.get("destinationConfig") or {}).get("onFailure") or {}).get("destination")
        for c in stack.of_type(INVOKE_CONFIG)
    }
    return {arn for arn in arns if arn}


def _redrive(stack: Stack, queue: PolicyResource) -> dict[str, Any] | None:
    """The queue's redrive policy, inline or on a RedrivePolicy resource naming its URL."""
    documents = [queue.props.get("redrivePolicy")] + [
        r.props.get("redrivePolicy")
        for r in stack.referring(stack.of_type(REDRIVE_POLICY), "queueUrl", queue, "url")
    ]
    for document in documents:
        if document:
            return dict(json.loads(document) if isinstance(document, str) else document)
    return None


def _work_queues(stack: Stack) -> list[PolicyResource]:
    dead_letters = _dead_letter_arns(stack)
    return [q for q in stack.of_type(QUEUE) if q.props["arn"] not in dead_letters]


def dead_lettered(stack: Stack) -> Iterator[Violation]:
    queues = {q.props["arn"]: q for q in stack.of_type(QUEUE)}

    def check(queue: PolicyResource) -> str | None:
        redrive = _redrive(stack, queue)
        if not redrive:
            return f"work queue {queue.name} needs a redrive policy to a dead-letter queue"
        if redrive.get("deadLetterTargetArn") not in queues:
            return (
                f"work queue {queue.name} redrives to {redrive.get('deadLetterTargetArn')}, not a stack queue"
            )
        if not int(redrive.get("maxReceiveCount") or 0) >= 1:
            return f"work queue {queue.name} needs a maxReceiveCount of at least 1"
        return None

    return each(_work_queues(stack), check)


def _retention(queue: PolicyResource) -> int:
    return int(queue.props.get("messageRetentionSeconds") or DEFAULT_RETENTION_SECONDS)


def dead_letters_outlive_their_source(stack: Stack) -> Iterator[Violation]:
    # A message moved to a dead-letter queue keeps its original enqueue time, so a DLQ that keeps
    # messages no longer than its source queue drops them at once (SQS developer guide, "Using
    # dead-letter queues": make the DLQ's retention period longer than the original queue's).
    queues = {q.props["arn"]: q for q in stack.of_type(QUEUE)}

    def check(queue: PolicyResource) -> str | None:
        redrive = _redrive(stack, queue)
        dead_letter = queues.get((redrive or {}).get("deadLetterTargetArn", ""))
        if dead_letter and _retention(dead_letter) <= _retention(queue):
            return (
                f"dead-letter queue {dead_letter.name} keeps messages {_retention(dead_letter)} s, no longer"
                f" than its source queue {queue.name} ({_retention(queue)} s)"
            )
        return None

    return each(_work_queues(stack), check)


GUARDRAILS: tuple[Guardrail, ...] = (
    resource_guardrail(
        "sns-kms-encryption",
        ("SNS.1", "CKV_AWS_26"),
        "Every topic is encrypted with a KMS key.",
        frozenset({TOPIC}),
        topic_encrypted,
    ),
    resource_guardrail(
        "sqs-encryption",
        ("SQS.1", "CKV_AWS_27"),
        "Every queue is encrypted at rest (SSE-KMS or SSE-SQS).",
        frozenset({QUEUE}),
        queue_encrypted,
    ),
    resource_guardrail(
        "sns-policy-source-scoped",
        ("CKV_AWS_169",),
        "Topic policies allow no public access and each service only from a named source.",
        frozenset({TOPIC, TOPIC_POLICY}),
        resource_policy_scoped,
    ),
    resource_guardrail(
        "sqs-policy-source-scoped",
        ("CKV_AWS_168",),
        "Queue policies allow no public access and each service only from a named source.",
        frozenset({QUEUE, QUEUE_POLICY}),
        resource_policy_scoped,
    ),
    stack_guardrail(
        "sqs-dead-letter-queue",
        ("SQS developer guide: dead-letter queues",),
        "Every work queue redrives to a dead-letter queue of the stack.",
        dead_lettered,
    ),
    stack_guardrail(
        "sqs-dead-letter-retention",
        ("SQS developer guide: dead-letter queues",),
        "Every dead-letter queue keeps messages longer than its source queue.",
        dead_letters_outlive_their_source,
    ),
)
