"""The IAM role an AWS service assumes to run one part of the stack, with its one inline policy."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.policy_documents import assumed_by


@dataclass(frozen=True)
class ServiceRole:
    role: aws.iam.Role
    # What creates something that uses the role waits for: until the policy exists, the role can do nothing.
    policy: aws.iam.RolePolicy


def service_role(
    name: str, *, service_principal: str, description: str, policy: pulumi.Input[str], parent: pulumi.Resource
) -> ServiceRole:
    """`<name>-role`, assumable only by `service_principal`, and `<name>-role-policy` on it."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=json.dumps(assumed_by(service_principal)),
        description=description,
        opts=child,
    )
    role_policy = aws.iam.RolePolicy(f"{name}-role-policy", role=role.id, policy=policy, opts=child)
    return ServiceRole(role, role_policy)
