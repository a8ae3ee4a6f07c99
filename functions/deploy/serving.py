"""The SageMaker requests that put a model behind the stack's endpoint, built from the stack's serving
plan. Pure: no AWS calls, so every request is checked against botocore's model in tests.

Every name derives from the training job that made the model, so a redelivered event asks for the same
resources, and every resource of the stack starts with its tuning job prefix, which the deploy role's
policy and the teardown rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from deploy.contest import Score
from shared.aws import error_code

VARIANT = "AllTraffic"
# Application Auto Scaling's names for a SageMaker variant's instance count (Application Auto Scaling API
# reference, RegisterScalableTarget: ResourceId and ScalableDimension for SageMaker).
SCALING_NAMESPACE = "sagemaker"
SCALING_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"
# Scale out within a minute of a burst, scale in only after five quiet minutes.
SCALE_OUT_COOLDOWN_SECONDS = 60
SCALE_IN_COOLDOWN_SECONDS = 300
# BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds is 600-28,800: one hour beyond the bake time.
UPDATE_TIMEOUT_MARGIN_SECONDS = 3600
CAPTURE_PREFIX = "capture/"

# Tags on an endpoint config that record the score of the model it serves: the champion is whatever
# config the endpoint runs, so a rolled-back update leaves the record right without a second store.
TAG_TRAINING_JOB = "training-job"
TAG_TUNING_JOB = "tuning-job"
TAG_METRIC = "objective-metric"
TAG_DIRECTION = "objective-direction"
TAG_SCORE = "objective-value"
TAG_DATASET = "dataset"


@dataclass(frozen=True)
class ServingPlan:
    """How the stack serves its champion (the program's endpoint settings)."""

    endpoint_name: str
    mode: str  # "serverless" or "instances"
    memory_mb: int
    max_concurrency: int
    instance_type: str
    min_instances: int
    max_instances: int
    invocations_per_instance: int
    capture_percent: int
    bake_seconds: int
    rollback_alarm: str
    model_role_arn: str
    bucket: str
    key_arn: str
    stack: str
    # The SSM parameter that also keeps the champion's score; "" when only the config's tags do.
    champion_parameter: str
    # What the contest's batch transform jobs run on (settings: contestInstanceType).
    contest_instance_type: str

    @property
    def serverless(self) -> bool:
        return self.mode == "serverless"

    @property
    def scaling_resource_id(self) -> str:
        return f"endpoint/{self.endpoint_name}/variant/{VARIANT}"


@dataclass(frozen=True)
class Candidate:
    """The best model of a finished tuning job, with what hosting it needs."""

    tuning_job: str
    score: Score
    image: str
    model_data_url: str

    @property
    def name(self) -> str:
        """Name of its model and endpoint config: the training job's name, unique and at most 63
        characters like theirs (ModelName and EndpointConfigName allow 63)."""
        return self.score.training_job


def model_request(plan: ServingPlan, candidate: Candidate) -> dict[str, Any]:
    return {
        "ModelName": candidate.name,
        "PrimaryContainer": {"Image": candidate.image, "ModelDataUrl": candidate.model_data_url},
        "ExecutionRoleArn": plan.model_role_arn,
        # The built-in container needs no network. Serverless endpoints refuse isolated models
        # (SageMaker developer guide, "Serverless Inference", feature exclusions).
        "EnableNetworkIsolation": not plan.serverless,
        "Tags": _tags(plan, candidate),
    }


def endpoint_config_request(plan: ServingPlan, candidate: Candidate) -> dict[str, Any]:
    variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": candidate.name}
    request: dict[str, Any] = {"EndpointConfigName": candidate.name, "ProductionVariants": [variant]}
    if plan.serverless:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": plan.memory_mb,
            "MaxConcurrency": plan.max_concurrency,
        }
    else:
        variant["InstanceType"] = plan.instance_type
        variant["InitialInstanceCount"] = plan.min_instances
        if plan.capture_percent:
            request["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": plan.capture_percent,
                "DestinationS3Uri": f"s3://{plan.bucket}/{CAPTURE_PREFIX}",
                "KmsKeyId": plan.key_arn,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
            }
    request["Tags"] = [*_tags(plan, candidate), *_score_tags(candidate.score)]
    return request


def create_endpoint_request(plan: ServingPlan, candidate: Candidate) -> dict[str, Any]:
    return {
        "EndpointName": plan.endpoint_name,
        "EndpointConfigName": candidate.name,
        "Tags": [{"Key": "stack", "Value": plan.stack}],
    }


def update_endpoint_request(
    plan: ServingPlan, candidate: Candidate, *, from_instances: bool
) -> dict[str, Any]:
    """UpdateEndpoint to the candidate's config. Deployment guardrails apply to instance endpoints only
    (SageMaker developer guide, "Deployment guardrails", exclusions): an update from a serverless endpoint,
    or to one, is a plain update."""
    request: dict[str, Any] = {"EndpointName": plan.endpoint_name, "EndpointConfigName": candidate.name}
    if plan.serverless or not from_instances:
        return request
    # Keep the instance count autoscaling has reached instead of falling back to the config's initial
    # count. (Data capture is retained with it; ExcludeRetainedVariantProperties cannot exclude capture,
    # "DataCaptureConfig: (Not currently supported.)", so a new capture share applies to a new endpoint.)
    request["RetainAllVariantProperties"] = True
    # Blue/green, all at once: the new fleet takes all traffic, then bakes for TerminationWaitInSeconds
    # while the endpoint's error alarm can roll the update back to the old fleet, which serves until
    # then (developer guide, "Use all at once traffic shifting").
    request["DeploymentConfig"] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "TerminationWaitInSeconds": plan.bake_seconds,
            "MaximumExecutionTimeoutInSeconds": plan.bake_seconds + UPDATE_TIMEOUT_MARGIN_SECONDS,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": plan.rollback_alarm}]},
    }
    return request


def scalable_target_request(plan: ServingPlan) -> dict[str, Any]:
    return {
        "ServiceNamespace": SCALING_NAMESPACE,
        "ResourceId": plan.scaling_resource_id,
        "ScalableDimension": SCALING_DIMENSION,
        "MinCapacity": plan.min_instances,
        "MaxCapacity": plan.max_instances,
    }


def scaling_policy_request(plan: ServingPlan) -> dict[str, Any]:
    return {
        "PolicyName": f"{plan.endpoint_name}-invocations",
        "ServiceNamespace": SCALING_NAMESPACE,
        "ResourceId": plan.scaling_resource_id,
        "ScalableDimension": SCALING_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(plan.invocations_per_instance),
            "PredefinedMetricSpecification": {"PredefinedMetricType": SCALING_METRIC},
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN_SECONDS,
            "ScaleInCooldown": SCALE_IN_COOLDOWN_SECONDS,
        },
    }


def detach_autoscaling(autoscaling: Any, plan: ServingPlan) -> bool:
    """Deregister the variant's scalable target (its scaling policy goes with it); False if there was none."""
    try:
        autoscaling.deregister_scalable_target(
            ServiceNamespace=SCALING_NAMESPACE,
            ResourceId=plan.scaling_resource_id,
            ScalableDimension=SCALING_DIMENSION,
        )
    except ClientError as error:
        if error_code(error) == "ObjectNotFoundException":
            return False
        raise
    return True


def champion_score(tags: dict[str, str]) -> Score | None:
    """The score an endpoint config's tags record, or None for a config this function did not make."""
    try:
        return Score(
            training_job=tags[TAG_TRAINING_JOB],
            metric=tags[TAG_METRIC],
            direction=tags[TAG_DIRECTION],
            value=float(tags[TAG_SCORE]),
            # A config without it serves no dataset any challenger can match.
            dataset=tags.get(TAG_DATASET, ""),
        )
    except (KeyError, ValueError):
        return None


def _tags(plan: ServingPlan, candidate: Candidate) -> list[dict[str, str]]:
    return [
        {"Key": "stack", "Value": plan.stack},
        {"Key": TAG_TUNING_JOB, "Value": candidate.tuning_job},
        {"Key": TAG_TRAINING_JOB, "Value": candidate.score.training_job},
    ]


def _score_tags(score: Score) -> list[dict[str, str]]:
    return [
        {"Key": TAG_METRIC, "Value": score.metric},
        {"Key": TAG_DIRECTION, "Value": score.direction},
        # repr keeps every digit, so the champion read back compares exactly as it was scored.
        {"Key": TAG_SCORE, "Value": repr(score.value)},
        {"Key": TAG_DATASET, "Value": score.dataset},
    ]
