"""Building blocks of IAM and resource policy documents.

Builders are pure functions of plain strings (ARNs, account id) that return a document dict; `render`
resolves the Outputs a builder needs and gives the JSON string a resource takes. Being pure, every
builder is tested without mocks and reused by the tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi

Document = dict[str, Any]
Statement = dict[str, Any]


def document(*statements: Statement) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(sid: str, actions: list[str], resources: list[str], **extra: Any) -> Statement:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def service(name: str) -> dict[str, str]:
    return {"Service": name}


def deny_insecure_transport(actions: list[str], resources: list[str]) -> Statement:
    """Refuse every request that does not use TLS (aws:SecureTransport is false only for plain HTTP)."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions,
        "Resource": resources,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def from_source(account_id: str, source_arn: str) -> dict[str, Any]:
    """Condition that limits a service principal to one source resource of this account (confused deputy)."""
    return {
        "StringEquals": {"aws:SourceAccount": account_id},
        "ArnLike": {"aws:SourceArn": source_arn},
    }


def topic_publishable_only_by(
    sid: str, service_principal: str, *, topic_arn: str, account_id: str, source_arn: str
) -> Document:
    """Topic policy: one AWS service may publish, on behalf of one source of this account, over TLS."""
    return document(
        allow(
            sid,
            ["sns:Publish"],
            [topic_arn],
            Principal=service(service_principal),
            Condition=from_source(account_id, source_arn),
        ),
        deny_insecure_transport(["sns:Publish"], [topic_arn]),
    )


def assumed_by(service_principal: str) -> Document:
    """Trust policy of a role that only the given AWS service may assume."""
    return document(
        {
            "Sid": "ServiceAssumesRole",
            "Effect": "Allow",
            "Principal": service(service_principal),
            "Action": "sts:AssumeRole",
        }
    )


# What Lambda needs of a function's role to send the traces of active tracing (Lambda developer guide,
# "Visualize Lambda function invocations using AWS X-Ray": the role needs the AWSXRayDaemonWriteAccess
# managed policy's permissions). Of that policy only the two uploads: its sampling actions
# (xray:GetSamplingRules and the like) serve the X-Ray SDK, which the functions' code does not use.
SEND_TRACES_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


def send_traces() -> Statement:
    """Let the Lambda runtime upload the function's trace segments and telemetry to X-Ray."""
    # Neither action has a resource type (Service Authorization Reference, "Actions, resources, and
    # condition keys for AWS X-Ray"), so the statement must name every resource.
    return allow("SendTraces", SEND_TRACES_ACTIONS, ["*"])


def with_statements(policy: str, *statements: Statement) -> str:
    """The JSON policy document `policy` with `statements` appended."""
    parsed = json.loads(policy)
    return json.dumps({**parsed, "Statement": [*parsed["Statement"], *statements]})


def render(builder: Callable[..., Document], **inputs: pulumi.Input[Any]) -> pulumi.Output[str]:
    """The JSON of `builder(**inputs)` once every input is known."""
    return pulumi.Output.all(**inputs).apply(lambda resolved: json.dumps(builder(**resolved)))
