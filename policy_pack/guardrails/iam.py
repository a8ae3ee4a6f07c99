"""IAM identity policies: no wildcard actions, "*" resources only where AWS allows nothing narrower, and
iam:PassRole only of named roles to a named service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .documents import Statement, allows, condition_keys
from .framework import Guardrail, Props, as_list, is_set, resource_guardrail
from .iam_actions import ASSIGNED_ARN_CONDITIONS, NO_RESOURCE_TYPE

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
IDENTITY_POLICY_TYPES = frozenset({ROLE, ROLE_POLICY, POLICY})


def _documents(type_: str, props: Props) -> list[Any]:
    """The identity policies a resource holds: a role's inline policies, or a policy's document."""
    if type_ == ROLE:
        return [p["policy"] for p in as_list(props.get("inlinePolicies")) if is_set(p, "policy")]
    return [props["policy"]] if is_set(props, "policy") else []


def _grants(type_: str, props: Props) -> Iterator[Statement]:
    for document in _documents(type_, props):
        yield from allows(document)


def _sid(statement: Statement) -> str:
    return str(statement.get("Sid", "(no Sid)"))


def no_wildcard_actions(type_: str, props: Props) -> Iterator[str]:
    for s in _grants(type_, props):
        if "NotAction" in s:
            yield f"statement {_sid(s)} allows everything but its NotAction"
        for action in as_list(s.get("Action")):
            if "*" in action:
                yield f"statement {_sid(s)} allows the wildcard action {action}"


def star_resource_only_where_unavoidable(type_: str, props: Props) -> Iterator[str]:
    for s in _grants(type_, props):
        if "NotResource" in s:
            yield f"statement {_sid(s)} allows every resource but its NotResource"
        if "*" not in as_list(s.get("Resource")):
            continue
        for action in as_list(s.get("Action")):
            condition = ASSIGNED_ARN_CONDITIONS.get(action)
            if condition is not None:
                if condition not in condition_keys(s):
                    yield f"statement {_sid(s)} allows {action} on * without a {condition} condition"
            elif action not in NO_RESOURCE_TYPE:
                yield (
                    f"statement {_sid(s)} allows {action} on *; it has a resource type to name "
                    "(or add it to guardrails/iam_actions.py with its Service Authorization Reference row)"
                )


def pass_role_scoped(type_: str, props: Props) -> Iterator[str]:
    for s in _grants(type_, props):
        if "iam:PassRole" not in as_list(s.get("Action")):
            continue
        for resource in as_list(s.get("Resource")):
            if "*" in resource or ":role/" not in resource:
                yield f"statement {_sid(s)} passes {resource}, not one named role"
        if "iam:passedtoservice" not in condition_keys(s):
            yield f"statement {_sid(s)} passes a role without an iam:PassedToService condition"


GUARDRAILS: tuple[Guardrail, ...] = (
    resource_guardrail(
        "iam-no-wildcard-actions",
        ("IAM.21", "CKV_AWS_63"),
        "No identity policy allows a wildcard action.",
        IDENTITY_POLICY_TYPES,
        no_wildcard_actions,
    ),
    resource_guardrail(
        "iam-star-resource-only-unscopable",
        ("CKV_AWS_355",),
        'Identity policies allow "*" resources only for actions with no resource AWS lets them name.',
        IDENTITY_POLICY_TYPES,
        star_resource_only_where_unavoidable,
    ),
    resource_guardrail(
        "iam-pass-role-scoped",
        ("CKV_AWS_286", "IAM user guide: iam:PassedToService"),
        "iam:PassRole names its roles and the service they are passed to.",
        IDENTITY_POLICY_TYPES,
        pass_role_scoped,
    ),
)
