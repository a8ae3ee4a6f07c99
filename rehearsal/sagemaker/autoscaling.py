"""Application Auto Scaling for SageMaker endpoint variants, as far as the deploy function uses it:
scalable targets and target-tracking policies (Application Auto Scaling API reference,
RegisterScalableTarget, PutScalingPolicy, DeregisterScalableTarget, Describe*).

A variant is `endpoint/<endpoint>/variant/<variant>`. Registering an existing target updates it; its
instance dimension `sagemaker:variant:DesiredInstanceCount` applies to instance-based variants (a
serverless variant scales `sagemaker:variant:DesiredProvisionedConcurrency`). A target-tracking policy
creates two CloudWatch alarms, TargetTracking-<resource id>-AlarmHigh-<uuid> and -AlarmLow-<uuid>
("Target tracking scaling policies"). Deregistering a target deletes its policies. Scaling itself is not
emulated: there is no traffic to scale on.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rehearsal.sagemaker.api import ServiceError
from rehearsal.sagemaker.state import Context

NAMESPACE = "sagemaker"
INSTANCES = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"
# The service-linked role Application Auto Scaling uses for SageMaker ("Service-linked roles for
# Application Auto Scaling").
SERVICE_PRINCIPAL = "sagemaker.application-autoscaling.amazonaws.com"
SERVICE_ROLE = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"


@dataclass
class ScalableTarget:
    resource_id: str
    dimension: str
    min_capacity: int
    max_capacity: int
    arn: str
    role_arn: str
    creation_time: datetime
    suspended: dict[str, Any] | None = None
    policies: dict[str, ScalingPolicy] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "ServiceNamespace": NAMESPACE,
            "ResourceId": self.resource_id,
            "ScalableDimension": self.dimension,
            "MinCapacity": self.min_capacity,
            "MaxCapacity": self.max_capacity,
            "RoleARN": self.role_arn,
            "CreationTime": self.creation_time,
            "ScalableTargetARN": self.arn,
        }
        if self.suspended is not None:
            answer["SuspendedState"] = self.suspended
        return answer


@dataclass
class ScalingPolicy:
    name: str
    arn: str
    target: ScalableTarget
    policy_type: str
    configuration: dict[str, Any]
    alarms: list[dict[str, str]]
    creation_time: datetime

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "PolicyARN": self.arn,
            "PolicyName": self.name,
            "ServiceNamespace": NAMESPACE,
            "ResourceId": self.target.resource_id,
            "ScalableDimension": self.target.dimension,
            "PolicyType": self.policy_type,
            "Alarms": self.alarms,
            "CreationTime": self.creation_time,
        }
        if self.configuration:
            answer[f"{self.policy_type}PolicyConfiguration"] = self.configuration
        return answer


def target_arn(region: str, account: str, resource_id: str, dimension: str) -> str:
    """A target's ARN ends in an identifier AWS assigns; here one derived from what identifies the target,
    so the same target always has the same ARN."""
    digest = hashlib.sha256(f"{resource_id}\n{dimension}".encode()).hexdigest()[:36]
    return f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/{digest}"


def tracking_alarm_names(resource_id: str, token: str) -> list[str]:
    return [f"TargetTracking-{resource_id}-{side}-{token}" for side in ("AlarmHigh", "AlarmLow")]


class AutoScaling:
    def __init__(self, context: Context, *, variant_kind: Callable[[str, str], str | None]) -> None:
        self._ctx = context
        # (endpoint, variant) -> "serverless", "instances", or None when there is no such variant.
        self._variant_kind = variant_kind
        self.targets: dict[tuple[str, str], ScalableTarget] = {}

    def has_target(self, resource_id: str) -> bool:
        with self._ctx.lock:
            return any(rid == resource_id for rid, _ in self.targets)

    def alarms_of(self, resource_id: str, dimension: str) -> list[dict[str, str]]:
        """The CloudWatch alarms the target's policies created."""
        with self._ctx.lock:
            target = self.targets.get((resource_id, dimension))
            return [a for p in target.policies.values() for a in p.alarms] if target else []

    def register_scalable_target(self, request: dict[str, Any]) -> dict[str, Any]:
        resource_id, dimension = request["ResourceId"], request["ScalableDimension"]
        self._check_variant(request)
        key = (resource_id, dimension)
        with self._ctx.lock:
            target = self.targets.get(key)
            if target is None:
                if "MinCapacity" not in request or "MaxCapacity" not in request:
                    raise ServiceError(
                        "ValidationException",
                        "MinCapacity and MaxCapacity are required for registering a new scalable target",
                    )
                target = ScalableTarget(
                    resource_id,
                    dimension,
                    int(request["MinCapacity"]),
                    int(request["MaxCapacity"]),
                    target_arn(self._ctx.region, self._ctx.account_id, resource_id, dimension),
                    request.get("RoleARN") or self.service_role_arn(),
                    self._ctx.now(),
                )
            minimum = int(request.get("MinCapacity", target.min_capacity))
            maximum = int(request.get("MaxCapacity", target.max_capacity))
            if minimum > maximum:
                raise ServiceError(
                    "ValidationException", "Minimum capacity cannot be greater than maximum capacity"
                )
            target.min_capacity, target.max_capacity = minimum, maximum
            if "SuspendedState" in request:
                target.suspended = request["SuspendedState"]
            self.targets[key] = target
            return {"ScalableTargetARN": target.arn}

    def put_scaling_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        self._check_namespace(request)
        with self._ctx.lock:
            target = self._target(request, "No scalable target registered for")
            policy_type = request.get("PolicyType", "StepScaling")
            name = request["PolicyName"]
            existing = target.policies.get(name)
            token = str(uuid.uuid4())
            alarms = (
                existing.alarms
                if existing is not None
                else [
                    {
                        "AlarmName": alarm,
                        "AlarmARN": f"{self._alarm_prefix()}{alarm}",
                    }
                    for alarm in tracking_alarm_names(target.resource_id, token)
                ]
                if policy_type == "TargetTrackingScaling"
                else []
            )
            arn = (
                existing.arn
                if existing is not None
                else (
                    f"arn:aws:autoscaling:{self._ctx.region}:{self._ctx.account_id}:scalingPolicy:{token}:"
                    f"resource/{NAMESPACE}/{target.resource_id}:policyName/{name}"
                )
            )
            configuration = request.get(f"{policy_type}PolicyConfiguration", {})
            target.policies[name] = ScalingPolicy(
                name,
                arn,
                target,
                policy_type,
                configuration,
                alarms,
                existing.creation_time if existing else self._ctx.now(),
            )
            return {"PolicyARN": arn, "Alarms": alarms}

    def delete_scaling_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            target = self._target(request, "No scalable target found for")
            if request["PolicyName"] not in target.policies:
                raise ServiceError(
                    "ObjectNotFoundException",
                    f"No scaling policy found for service namespace: {NAMESPACE}, resource ID: "
                    f"{target.resource_id}, scalable dimension: {target.dimension}, policy name: "
                    f"{request['PolicyName']}",
                )
            del target.policies[request["PolicyName"]]
            return {}

    def deregister_scalable_target(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            target = self._target(request, "No scalable target found for")
            del self.targets[(target.resource_id, target.dimension)]
            return {}

    def describe_scalable_targets(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            items = [
                t.describe()
                for t in self.targets.values()
                if request["ServiceNamespace"] == NAMESPACE
                and (not request.get("ResourceIds") or t.resource_id in request["ResourceIds"])
                and request.get("ScalableDimension") in (None, t.dimension)
            ]
        return self._page(items, "ScalableTargets", request, 50)

    def describe_scaling_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            items = [
                p.describe()
                for t in self.targets.values()
                for p in t.policies.values()
                if request["ServiceNamespace"] == NAMESPACE
                and request.get("ResourceId") in (None, t.resource_id)
                and request.get("ScalableDimension") in (None, t.dimension)
                and (not request.get("PolicyNames") or p.name in request["PolicyNames"])
            ]
        return self._page(items, "ScalingPolicies", request, 10)

    def _alarm_prefix(self) -> str:
        return f"arn:aws:cloudwatch:{self._ctx.region}:{self._ctx.account_id}:alarm:"

    def service_role_arn(self) -> str:
        return f"arn:aws:iam::{self._ctx.account_id}:role/aws-service-role/{SERVICE_PRINCIPAL}/{SERVICE_ROLE}"

    def target_arn(self, request: dict[str, Any]) -> str:
        return target_arn(
            self._ctx.region, self._ctx.account_id, request["ResourceId"], request["ScalableDimension"]
        )

    def _page(
        self, items: list[dict[str, Any]], key: str, request: dict[str, Any], default: int
    ) -> dict[str, Any]:
        size = int(request.get("MaxResults", default))
        if self._ctx.page_cap is not None:
            size = min(size, self._ctx.page_cap)
        token = request.get("NextToken")
        try:
            start = int(token) if token else 0
        except ValueError:
            raise ServiceError("InvalidNextTokenException", "The next token supplied is invalid") from None
        answer: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            answer["NextToken"] = str(start + size)
        return answer

    def _target(self, request: dict[str, Any], missing: str) -> ScalableTarget:
        key = (request["ResourceId"], request["ScalableDimension"])
        if request["ServiceNamespace"] != NAMESPACE or key not in self.targets:
            raise ServiceError(
                "ObjectNotFoundException",
                f"{missing} service namespace: {request['ServiceNamespace']}, resource ID: {key[0]}, "
                f"scalable dimension: {key[1]}",
            )
        return self.targets[key]

    def _check_namespace(self, request: dict[str, Any]) -> None:
        if request["ServiceNamespace"] != NAMESPACE:
            raise ServiceError(
                "ValidationException",
                f"The local Application Auto Scaling scales SageMaker variants only, not "
                f"{request['ServiceNamespace']} resources",
            )

    def _check_variant(self, request: dict[str, Any]) -> None:
        self._check_namespace(request)
        resource_id, dimension = request["ResourceId"], request["ScalableDimension"]
        parts = resource_id.split("/")
        if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant":
            raise ServiceError(
                "ValidationException",
                f"Unsupported resource ID {resource_id}: a SageMaker variant is "
                "endpoint/<endpoint>/variant/<variant>",
            )
        kind = self._variant_kind(parts[1], parts[3])
        if kind is None:
            raise ServiceError(
                "ValidationException",
                f"SageMaker endpoint {parts[1]} has no variant {parts[3]}, or does not exist",
            )
        expected = PROVISIONED_CONCURRENCY if kind == "serverless" else INSTANCES
        if not dimension.startswith("sagemaker:variant:") or (
            dimension in (INSTANCES, PROVISIONED_CONCURRENCY) and dimension != expected
        ):
            raise ServiceError(
                "ValidationException",
                f"Scalable dimension {dimension} does not apply to the {kind} variant {parts[3]} of "
                f"{parts[1]}",
            )
