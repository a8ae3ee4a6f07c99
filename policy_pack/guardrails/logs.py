"""CloudWatch Logs: every log group the stack declares expires its events and is encrypted with a key."""

from __future__ import annotations

from collections.abc import Iterator

from .framework import Guardrail, Props, is_set, resource_guardrail

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def retained(_type: str, props: Props) -> Iterator[str]:
    # 0 or none: events never expire (CloudWatch Logs API reference, PutRetentionPolicy).
    days = props.get("retentionInDays")
    if not (isinstance(days, int | float) and days > 0):
        yield "the log group needs retentionInDays"


def encrypted(_type: str, props: Props) -> Iterator[str]:
    if not is_set(props, "kmsKeyId"):
        yield "the log group needs kmsKeyId"


GUARDRAILS: tuple[Guardrail, ...] = (
    resource_guardrail(
        "logs-retention",
        ("CKV_AWS_66",),
        "Every log group has a retention period.",
        frozenset({LOG_GROUP}),
        retained,
    ),
    resource_guardrail(
        "logs-kms",
        ("CKV_AWS_158",),
        "Every log group is encrypted with a KMS key.",
        frozenset({LOG_GROUP}),
        encrypted,
    ),
)
