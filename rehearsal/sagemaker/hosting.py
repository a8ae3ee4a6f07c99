"""Hosting in the local SageMaker: models, endpoint configs, endpoints and their slow changes, and
InvokeEndpoint answered by the built-in XGBoost container's own serving code.

An endpoint is a fleet per endpoint config. CreateEndpoint provisions the first fleet (Creating, then
InService after CREATE_SECONDS of AWS time); UpdateEndpoint provisions a new one beside it, then moves the
traffic as the update's DeploymentConfig says and bakes (SageMaker developer guide, "Blue/Green Deployments"
and "All At Once Traffic Shifting": the green fleet takes the traffic, the baking period starts, the
AutoRollbackConfiguration alarms are watched; an alarm in ALARM shifts all traffic back to the blue fleet,
otherwise the blue fleet is terminated). Without a DeploymentConfig an update is the same blue/green flip
with no bake. After a rollback the endpoint is InService again on its old config, with FailureReason saying
why and LastDeploymentConfig the update's policy; a successful update clears FailureReason.

Provisioning downloads each variant's model data as the model's ExecutionRoleArn and starts the
container on it, which loads the model before it answers /ping (aws/sagemaker-xgboost-container,
release-3.0.5, src/sagemaker_xgboost_container/algorithm_mode/serve.py:93-107 post_worker_init, and
137-142 ping): model data that is missing, unreadable or not a model fails the fleet, as SageMaker fails
the endpoint's creation or rolls the update back.

The rules the deploy function must respect are SageMaker's answers: a duplicate name is "Cannot create
already existing ...", a missing resource "Could not find ...", UpdateEndpoint and DeleteEndpoint of an
endpoint being created or updated "Cannot update in-progress endpoint", an instance endpoint is not turned
serverless, an autoscaled variant keeps its instance type, and CreateModel checks that the model data is
there and readable by the model's role.
"""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from rehearsal.sagemaker.api import SAGEMAKER, ServiceError, operation_model
from rehearsal.sagemaker.container.serving import HostedModel, ModelLoadFailed
from rehearsal.sagemaker.events import ENDPOINT_STATE_CHANGE, epoch_millis, event_status, tag_object
from rehearsal.sagemaker.schedule import Timer
from rehearsal.sagemaker.state import Context, validation

# How long AWS takes to provision a fleet for a new or updated endpoint, and to delete one (minutes in
# AWS; the deploy function's teardown waits up to 240 s for an update to finish).
CREATE_SECONDS = 120.0
DELETE_SECONDS = 60.0
# CloudWatch evaluates alarms on periods of a minute; SageMaker reads their state while it bakes.
ALARM_PERIOD_SECONDS = 60.0
# DescribeEndpoint EndpointStatus values in which UpdateEndpoint and DeleteEndpoint are refused.
CHANGING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
IN_SERVICE = "InService"
# The statuses in which an endpoint answers invocations: its fleet runs (an update keeps the old one
# serving until the new one takes the traffic).
SERVING = frozenset({IN_SERVICE, "Updating", "SystemUpdating", "RollingBack"})


@dataclass
class Model:
    name: str
    arn: str
    creation_time: datetime
    request: dict[str, Any]

    @property
    def role(self) -> str:
        return str(self.request.get("ExecutionRoleArn", ""))

    @property
    def containers(self) -> list[dict[str, Any]]:
        primary = self.request.get("PrimaryContainer")
        return [primary] if primary else list(self.request.get("Containers", []))

    def describe(self) -> dict[str, Any]:
        members = operation_model(SAGEMAKER, "DescribeModel").output_shape.members
        return {
            **{k: v for k, v in self.request.items() if k in members},
            "ModelName": self.name,
            "ModelArn": self.arn,
            "CreationTime": self.creation_time,
        }


@dataclass
class EndpointConfig:
    name: str
    arn: str
    creation_time: datetime
    request: dict[str, Any]

    @property
    def variants(self) -> list[dict[str, Any]]:
        return list(self.request["ProductionVariants"])

    def describe(self) -> dict[str, Any]:
        members = operation_model(SAGEMAKER, "DescribeEndpointConfig").output_shape.members
        return {
            **{k: v for k, v in self.request.items() if k in members},
            "EndpointConfigName": self.name,
            "EndpointConfigArn": self.arn,
            "CreationTime": self.creation_time,
        }


@dataclass
class Fleet:
    """The capacity serving one endpoint config, with the models as they were when it was provisioned."""

    config: EndpointConfig
    models: dict[str, Model]  # variant name -> model
    # Variant name -> its instance count (RetainAllVariantProperties keeps the running fleet's).
    instances: dict[str, int]
    archives: dict[str, bytes] = field(default_factory=dict)
    hosted: dict[str, HostedModel] = field(default_factory=dict)

    def pick_variant(self, rng: random.Random) -> str:
        """Traffic splits across variants by their InitialVariantWeight (ProductionVariant API reference)."""
        variants = self.config.variants
        weights = [float(v.get("InitialVariantWeight", 1.0)) for v in variants]
        if sum(weights) <= 0:
            return str(variants[0]["VariantName"])
        return str(rng.choices(variants, weights=weights)[0]["VariantName"])


@dataclass
class Change:
    """A creation or update in progress: the fleet it provisions and how traffic moves onto it."""

    config: EndpointConfig
    policy: dict[str, Any] | None
    started: datetime
    retain_properties: bool = False
    green: Fleet | None = None
    # Share of the traffic the new fleet takes, and the variant status DescribeEndpoint shows.
    share: float = 0.0
    stage: str = "Creating"
    stage_message: str = ""
    stage_since: datetime | None = None
    timers: list[Timer] = field(default_factory=list)

    def cancel(self) -> None:
        for timer in self.timers:
            timer.cancel()


@dataclass
class Endpoint:
    name: str
    arn: str
    config: EndpointConfig  # the config DescribeEndpoint names
    status: str
    creation_time: datetime
    last_modified: datetime
    serving: Fleet | None = None
    change: Change | None = None
    failure_reason: str | None = None
    deployment_config: dict[str, Any] | None = None
    deletion: Timer | None = None


class ProvisioningFailed(Exception):
    """The new fleet could not come up; str() is the FailureReason."""


class Hosting:
    def __init__(
        self,
        context: Context,
        *,
        alarm_state: Callable[[str], str],
        autoscaled: Callable[[str], bool],
        seed: int = 0,
    ) -> None:
        self._ctx = context
        self._alarm_state = alarm_state
        # Whether Application Auto Scaling has a scalable target for "endpoint/<name>/variant/<variant>".
        self._autoscaled = autoscaled
        # Routing between variants and fleets: a draw, not a secret.
        self._rng = random.Random(seed)  # noqa: S311
        self.models: dict[str, Model] = {}
        self.configs: dict[str, EndpointConfig] = {}
        self.endpoints: dict[str, Endpoint] = {}
        # Endpoint name -> a service error every invocation answers (faults a test or a drill injects).
        self.faults: dict[str, ServiceError] = {}

    # ------------------------------------------------------------------------------------------ models

    def create_model(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ModelName"]
        arn = self._ctx.arn("model", name)
        with self._ctx.lock:
            if name in self.models:
                raise validation(f'Cannot create already existing model "{arn}".')
        body = {k: v for k, v in request.items() if k not in ("ModelName", "Tags")}
        model = Model(name, arn, self._ctx.now(), body)
        for container in model.containers:
            self._check_model_data(model, container)
        with self._ctx.lock:
            if name in self.models:
                raise validation(f'Cannot create already existing model "{arn}".')
            self.models[name] = model
            self._ctx.tag(arn, request.get("Tags", []))
        return {"ModelArn": arn}

    def _check_model_data(self, model: Model, container: dict[str, Any]) -> None:
        """CreateModel reads the model data's object as the model's role (the answers SageMaker gives,
        quoted in aws/amazon-sagemaker-examples and sagemaker-python-sdk issues)."""
        url = container.get("ModelDataUrl")
        if not url:
            return
        bucket, key = _s3_location(url)
        try:
            self._ctx.s3_for_role(model.role).head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"):
                raise validation(f"Could not find model data at {url}.") from None
            raise validation(
                f'Could not access model data at {url}. Please ensure that the role "{model.role}" exists '
                'and that its trust relationship policy allows the action "sts:AssumeRole" for the service '
                'principal "sagemaker.amazonaws.com". Also ensure that the role has "s3:GetObject" '
                f"permissions and that the object is located in {self._ctx.region}."
            ) from None

    def describe_model(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            return self._model(request["ModelName"]).describe()

    def delete_model(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            model = self._model(request["ModelName"])
            del self.models[model.name]
            self._ctx.tags.pop(model.arn, None)
        return {}

    def list_models(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            items = [
                {"ModelName": m.name, "ModelArn": m.arn, "CreationTime": m.creation_time}
                for m in self.models.values()
            ]
        return self._ctx.page(
            items,
            "Models",
            request,
            name_member="ModelName",
            sort_keys={"Name": "ModelName", "CreationTime": "CreationTime"},
            default_sort="CreationTime",
            default_order="Descending",
        )

    def _model(self, name: str) -> Model:
        if name not in self.models:
            raise validation(f'Could not find model "{self._ctx.arn("model", name)}".')
        return self.models[name]

    # ---------------------------------------------------------------------------------- endpoint configs

    def create_endpoint_config(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        arn = self._ctx.arn("endpoint-config", name)
        with self._ctx.lock:
            if name in self.configs:
                raise validation(f'Cannot create already existing endpoint configuration "{arn}".')
            for variant in request["ProductionVariants"]:
                self._model(variant["ModelName"])
            kinds = {"ServerlessConfig" in v for v in request["ProductionVariants"]}
            if len(kinds) > 1:
                raise validation(
                    "An endpoint configuration cannot mix serverless and instance-based production variants."
                )
            body = {k: v for k, v in request.items() if k not in ("EndpointConfigName", "Tags")}
            self.configs[name] = EndpointConfig(name, arn, self._ctx.now(), body)
            self._ctx.tag(arn, request.get("Tags", []))
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            return self._config(request["EndpointConfigName"]).describe()

    def delete_endpoint_config(self, request: dict[str, Any]) -> dict[str, Any]:
        # Allowed while an endpoint uses it (DeleteEndpointConfig API reference: the endpoint keeps
        # running; only its visibility into the config is lost).
        with self._ctx.lock:
            config = self._config(request["EndpointConfigName"])
            del self.configs[config.name]
            self._ctx.tags.pop(config.arn, None)
        return {}

    def list_endpoint_configs(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            items = [
                {"EndpointConfigName": c.name, "EndpointConfigArn": c.arn, "CreationTime": c.creation_time}
                for c in self.configs.values()
            ]
        return self._ctx.page(
            items,
            "EndpointConfigs",
            request,
            name_member="EndpointConfigName",
            sort_keys={"Name": "EndpointConfigName", "CreationTime": "CreationTime"},
            default_sort="CreationTime",
            default_order="Descending",
        )

    def _config(self, name: str) -> EndpointConfig:
        if name not in self.configs:
            raise validation(
                f'Could not find endpoint configuration "{self._ctx.arn("endpoint-config", name)}".'
            )
        return self.configs[name]

    # ------------------------------------------------------------------------------------------ endpoints

    def create_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointName"]
        arn = self._ctx.arn("endpoint", name)
        with self._ctx.lock:
            if name in self.endpoints:
                raise validation(f'Cannot create already existing endpoint "{arn}".')
            config = self._config(request["EndpointConfigName"])
            now = self._ctx.now()
            endpoint = Endpoint(name, arn, config, "Creating", now, now)
            # A DeploymentConfig given here is kept for later updates (RetainDeploymentConfig); the
            # creation itself has no blue fleet to shift from.
            endpoint.deployment_config = request.get("DeploymentConfig")
            self.endpoints[name] = endpoint
            self._ctx.tag(arn, request.get("Tags", []))
            self._start(endpoint, Change(config, None, now), "Creating")
        return {"EndpointArn": arn}

    def update_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            endpoint = self._endpoint(request["EndpointName"])
            if endpoint.status != IN_SERVICE:
                raise validation(f'Cannot update in-progress endpoint "{endpoint.arn}".')
            new = self._config(request["EndpointConfigName"])
            old = endpoint.config.variants[0]
            if "ServerlessConfig" in new.variants[0] and "ServerlessConfig" not in old:
                raise validation("Cannot update an instance-based endpoint to serverless.")
            for variant in endpoint.config.variants:
                target = f"endpoint/{endpoint.name}/variant/{variant['VariantName']}"
                replacement = next(
                    (v for v in new.variants if v["VariantName"] == variant["VariantName"]), None
                )
                changes_type = replacement is None or replacement.get("InstanceType") != variant.get(
                    "InstanceType"
                )
                if changes_type and self._autoscaled(target):
                    raise validation(
                        "The variant has automatic scaling: deregister it before changing its instance type."
                    )
            policy = request.get("DeploymentConfig")
            if policy is None and request.get("RetainDeploymentConfig"):
                policy = endpoint.deployment_config
            change = Change(
                new,
                policy,
                self._ctx.now(),
                retain_properties=bool(request.get("RetainAllVariantProperties")),
            )
            self._start(endpoint, change, "Updating")
        return {"EndpointArn": endpoint.arn}

    def delete_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            endpoint = self._endpoint(request["EndpointName"])
            if endpoint.status in CHANGING:
                raise validation(f'Cannot update in-progress endpoint "{endpoint.arn}".')
            if endpoint.status != "Deleting":
                self._set_status(endpoint, "Deleting")
                endpoint.serving = None
                endpoint.deletion = self._ctx.scheduler.after(DELETE_SECONDS, lambda: self._deleted(endpoint))
        return {}

    def describe_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            endpoint = self._endpoint(request["EndpointName"])
            answer: dict[str, Any] = {
                "EndpointName": endpoint.name,
                "EndpointArn": endpoint.arn,
                "EndpointConfigName": endpoint.config.name,
                "EndpointStatus": endpoint.status,
                "CreationTime": endpoint.creation_time,
                "LastModifiedTime": endpoint.last_modified,
            }
            if endpoint.serving is not None:
                answer["ProductionVariants"] = self._variant_summaries(endpoint.serving)
                capture = endpoint.serving.config.request.get("DataCaptureConfig")
                if capture:
                    answer["DataCaptureConfig"] = {
                        "EnableCapture": capture.get("EnableCapture", True),
                        "CaptureStatus": "Started" if capture.get("EnableCapture", True) else "Stopped",
                        "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
                        "DestinationS3Uri": capture["DestinationS3Uri"],
                        "KmsKeyId": capture.get("KmsKeyId", ""),
                    }
            if endpoint.failure_reason:
                answer["FailureReason"] = endpoint.failure_reason
            if endpoint.deployment_config:
                answer["LastDeploymentConfig"] = endpoint.deployment_config
            change = endpoint.change
            if change is not None:
                answer["PendingDeploymentSummary"] = {
                    "EndpointConfigName": change.config.name,
                    "StartTime": change.started,
                    "ProductionVariants": [
                        {
                            **self._pending_variant(change, variant),
                            "VariantStatus": [
                                {
                                    "Status": change.stage,
                                    "StatusMessage": change.stage_message,
                                    "StartTime": change.stage_since or change.started,
                                }
                            ],
                        }
                        for variant in change.config.variants
                    ],
                }
            return answer

    def list_endpoints(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._ctx.lock:
            items = [
                {
                    "EndpointName": e.name,
                    "EndpointArn": e.arn,
                    "CreationTime": e.creation_time,
                    "LastModifiedTime": e.last_modified,
                    "EndpointStatus": e.status,
                }
                for e in self.endpoints.values()
            ]
        return self._ctx.page(
            items,
            "Endpoints",
            request,
            name_member="EndpointName",
            status_member="EndpointStatus",
            sort_keys={"Name": "EndpointName", "CreationTime": "CreationTime", "Status": "EndpointStatus"},
            default_sort="CreationTime",
            default_order="Descending",
        )

    def _endpoint(self, name: str) -> Endpoint:
        if name not in self.endpoints:
            raise validation(f'Could not find endpoint "{self._ctx.arn("endpoint", name)}".')
        return self.endpoints[name]

    def _variant_summaries(self, fleet: Fleet) -> list[dict[str, Any]]:
        summaries = []
        for variant in fleet.config.variants:
            name = variant["VariantName"]
            summary: dict[str, Any] = {
                "VariantName": name,
                "DeployedImages": [
                    {"SpecifiedImage": c["Image"], "ResolvedImage": c["Image"]}
                    for c in fleet.models[name].containers
                    if c.get("Image")
                ],
                "CurrentWeight": float(variant.get("InitialVariantWeight", 1.0)),
                "DesiredWeight": float(variant.get("InitialVariantWeight", 1.0)),
            }
            if "ServerlessConfig" in variant:
                summary["CurrentServerlessConfig"] = variant["ServerlessConfig"]
                summary["DesiredServerlessConfig"] = variant["ServerlessConfig"]
            else:
                summary["CurrentInstanceCount"] = fleet.instances[name]
                summary["DesiredInstanceCount"] = fleet.instances[name]
            summaries.append(summary)
        return summaries

    def _pending_variant(self, change: Change, variant: dict[str, Any]) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "VariantName": variant["VariantName"],
            "DesiredWeight": float(variant.get("InitialVariantWeight", 1.0)),
        }
        if "ServerlessConfig" in variant:
            summary["DesiredServerlessConfig"] = variant["ServerlessConfig"]
        else:
            summary["InstanceType"] = variant["InstanceType"]
            summary["DesiredInstanceCount"] = int(variant.get("InitialInstanceCount", 1))
        return summary

    # ---------------------------------------------------------------------------------- endpoint changes

    def _set_status(self, endpoint: Endpoint, status: str) -> None:
        """Change the status and say so to EventBridge (lock held)."""
        endpoint.status = status
        endpoint.last_modified = self._ctx.now()
        fleet = endpoint.serving
        variants = fleet.config.variants if fleet else endpoint.config.variants
        detail = {
            "EndpointName": endpoint.name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": endpoint.config.name,
            "ProductionVariants": [
                {
                    "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
                    "DesiredInstanceCount": float(
                        fleet.instances.get(v["VariantName"], 1)
                        if fleet
                        else v.get("InitialInstanceCount", 1)
                    ),
                }
                for v in variants
            ],
            "EndpointStatus": event_status(status),
            "CreationTime": float(epoch_millis(endpoint.creation_time)),
            "LastModifiedTime": float(epoch_millis(endpoint.last_modified)),
            "Tags": tag_object(self._ctx.tags.get(endpoint.arn, [])),
        }
        if endpoint.failure_reason and status in ("Failed", IN_SERVICE):
            detail["FailureReason"] = endpoint.failure_reason
        self._ctx.emit(ENDPOINT_STATE_CHANGE, endpoint.arn, detail)

    def _start(self, endpoint: Endpoint, change: Change, status: str) -> None:
        """Begin provisioning `change`'s fleet (lock held), the endpoint Creating or Updating meanwhile."""
        endpoint.change = change
        self._stage(change, "Creating", "Launching instance(s).")
        self._set_status(endpoint, status)
        change.timers.append(
            self._ctx.scheduler.after(CREATE_SECONDS, lambda: self._provisioned(endpoint, change))
        )
        timeout = ((change.policy or {}).get("BlueGreenUpdatePolicy") or {}).get(
            "MaximumExecutionTimeoutInSeconds"
        )
        if timeout:
            change.timers.append(
                self._ctx.scheduler.after(
                    float(timeout),
                    lambda: self._roll_back_if_current(
                        endpoint,
                        change,
                        "The deployment did not finish within its MaximumExecutionTimeoutInSeconds "
                        f"({timeout}).",
                    ),
                )
            )

    def _stage(self, change: Change, stage: str, message: str) -> None:
        change.stage, change.stage_message, change.stage_since = stage, message, self._ctx.now()

    def _provisioned(self, endpoint: Endpoint, change: Change) -> None:
        """The new fleet's capacity is up: download the models, then serve (or start shifting traffic)."""
        try:
            fleet = self._provision(endpoint, change)
        except ProvisioningFailed as failed:
            with self._ctx.lock:
                if endpoint.change is change:
                    self._fail_change(endpoint, change, str(failed))
            return
        with self._ctx.lock:
            if endpoint.change is not change:
                return
            change.green = fleet
            if endpoint.serving is None:
                self._finish(endpoint, change)
                return
            self._shift(endpoint, change, self._steps(change), 0)
            if self._alarms(change):
                change.timers.append(
                    self._ctx.scheduler.after(ALARM_PERIOD_SECONDS, lambda: self._watch(endpoint, change))
                )

    def _provision(self, endpoint: Endpoint, change: Change) -> Fleet:
        with self._ctx.lock:
            models: dict[str, Model] = {}
            for spec in change.config.variants:
                found = self.models.get(spec["ModelName"])
                if found is None:
                    raise ProvisioningFailed(
                        f'Could not find model "{self._ctx.arn("model", spec["ModelName"])}".'
                    )
                models[spec["VariantName"]] = found
            instances = {
                v["VariantName"]: int(v.get("InitialInstanceCount", 1)) for v in change.config.variants
            }
            if change.retain_properties and endpoint.serving is not None:
                for name, count in endpoint.serving.instances.items():
                    if name in instances:
                        instances[name] = count
        fleet = Fleet(change.config, models, instances)
        for variant, model in models.items():
            fleet.archives[variant] = self._download(model)
            try:
                fleet.hosted[variant] = _load(model, fleet.archives[variant])
            except ModelLoadFailed:
                # The container's workers exit, /ping never answers (serve.py:93-107).
                raise ProvisioningFailed(
                    f"The primary container for production variant {variant} did not pass the ping health "
                    "check. Please check CloudWatch logs for this endpoint."
                ) from None
        return fleet

    def serving_container(self, model: Model, environment: Mapping[str, str]) -> HostedModel:
        """The model's serving container as a batch transform job starts it: the artifact read as the
        model's role, `environment` added to the container's; raises ProvisioningFailed or ModelLoadFailed."""
        return _load(model, self._download(model), environment)

    def _download(self, model: Model) -> bytes:
        url = next((c["ModelDataUrl"] for c in model.containers if c.get("ModelDataUrl")), None)
        if url is None:
            return b""
        bucket, key = _s3_location(url)
        try:
            archive = bytes(
                self._ctx.s3_for_role(model.role).get_object(Bucket=bucket, Key=key)["Body"].read()
            )
        except ClientError:
            raise ProvisioningFailed(
                f'Failed to download model data for container "container_1" from URL: "{url}". Please ensure '
                "that there is an object located at the URL and that the role passed to CreateModel has "
                "permissions to download the object."
            ) from None
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                tar.getmembers()
        except (tarfile.TarError, OSError, EOFError):
            raise ProvisioningFailed(
                f'Failed to extract model data archive from URL "{url}". Please ensure that the object '
                "located at the URL is a valid tar.gz archive."
            ) from None
        return archive

    def _steps(self, change: Change) -> list[tuple[float, float, str]]:
        """(share of traffic on the new fleet, seconds it bakes there, stage) for each step of the shift."""
        blue_green = (change.policy or {}).get("BlueGreenUpdatePolicy")
        if not blue_green:
            return [(1.0, 0.0, "ActivatingTraffic")]
        routing = blue_green["TrafficRoutingConfiguration"]
        termination_wait = float(blue_green.get("TerminationWaitInSeconds", 0))
        interval = float(routing.get("WaitIntervalInSeconds", 0))
        instances = sum(int(v.get("InitialInstanceCount", 1)) for v in change.config.variants)
        kind = routing["Type"]
        if kind == "CANARY":
            first = _share(routing["CanarySize"], instances)
            return [(first, interval, "Baking"), (1.0, termination_wait, "Baking")]
        if kind == "LINEAR":
            step = _share(routing["LinearStepSize"], instances)
            shares, share = [], step
            while share < 1.0:
                shares.append(share)
                share += step
            return [*((s, interval, "Baking") for s in shares), (1.0, termination_wait, "Baking")]
        return [(1.0, termination_wait, "Baking")]

    def _shift(
        self, endpoint: Endpoint, change: Change, steps: list[tuple[float, float, str]], index: int
    ) -> None:
        with self._ctx.lock:
            if endpoint.change is not change:
                return
            share, bake, stage = steps[index]
            change.share = share
            instances = sum(change.green.instances.values()) if change.green else 0
            capacity = "full capacity" if share >= 1.0 else "canary capacity"
            self._stage(
                change,
                stage,
                f"Baking for {bake:g} seconds (TerminationWaitInSeconds) with traffic enabled on {capacity} "
                f"of {instances} instance(s).",
            )
            last = index + 1 == len(steps)
            if bake <= 0 and last:
                self._finish(endpoint, change)
                return

            def next_step() -> None:
                if last:
                    with self._ctx.lock:
                        if endpoint.change is change and not self._alarm_fired(change):
                            self._finish(endpoint, change)
                        elif endpoint.change is change:
                            self._roll_back_now(endpoint, change)
                else:
                    self._shift(endpoint, change, steps, index + 1)

            change.timers.append(self._ctx.scheduler.after(bake, next_step))

    def _alarms(self, change: Change) -> list[str]:
        rollback = (change.policy or {}).get("AutoRollbackConfiguration") or {}
        return [alarm["AlarmName"] for alarm in rollback.get("Alarms", [])]

    def _alarm_fired(self, change: Change) -> str | None:
        for alarm in self._alarms(change):
            if self._alarm_state(alarm) == "ALARM":
                return alarm
        return None

    def _watch(self, endpoint: Endpoint, change: Change) -> None:
        with self._ctx.lock:
            if endpoint.change is not change:
                return
            if self._alarm_fired(change):
                self._roll_back_now(endpoint, change)
                return
            change.timers.append(
                self._ctx.scheduler.after(ALARM_PERIOD_SECONDS, lambda: self._watch(endpoint, change))
            )

    def _roll_back_now(self, endpoint: Endpoint, change: Change) -> None:
        alarm = self._alarm_fired(change)
        self._fail_change(
            endpoint,
            change,
            f"Deployment was rolled back because the CloudWatch alarm {alarm} went into the ALARM state "
            "during the deployment.",
        )

    def _roll_back_if_current(self, endpoint: Endpoint, change: Change, reason: str) -> None:
        with self._ctx.lock:
            if endpoint.change is change:
                self._fail_change(endpoint, change, reason)

    def _finish(self, endpoint: Endpoint, change: Change) -> None:
        """The change succeeded (lock held): its fleet serves all traffic, the old one is terminated."""
        change.cancel()
        if change.green is None:
            change.green = Fleet(
                change.config,
                {
                    v["VariantName"]: self.models[v["ModelName"]]
                    for v in change.config.variants
                    if v["ModelName"] in self.models
                },
                {v["VariantName"]: int(v.get("InitialInstanceCount", 1)) for v in change.config.variants},
            )
        endpoint.serving, endpoint.change, endpoint.config = change.green, None, change.config
        endpoint.failure_reason = None
        if change.policy is not None:
            endpoint.deployment_config = change.policy
        self._set_status(endpoint, IN_SERVICE)

    def _fail_change(self, endpoint: Endpoint, change: Change, reason: str) -> None:
        """The change failed (lock held): a creation leaves the endpoint Failed; an update rolls back, the
        old fleet serving all traffic again."""
        change.cancel()
        endpoint.change = None
        endpoint.failure_reason = reason
        if change.policy is not None:
            endpoint.deployment_config = change.policy
        self._set_status(endpoint, "Failed" if endpoint.serving is None else IN_SERVICE)

    def _deleted(self, endpoint: Endpoint) -> None:
        with self._ctx.lock:
            if self.endpoints.get(endpoint.name) is endpoint and endpoint.status == "Deleting":
                del self.endpoints[endpoint.name]
                self._ctx.tags.pop(endpoint.arn, None)
                self.faults.pop(endpoint.name, None)

    # ------------------------------------------------------------------------------------ invocations

    def invoke_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointName"]
        with self._ctx.lock:
            endpoint = self.endpoints.get(name)
            fleet = self._route(endpoint) if endpoint is not None else None
            if fleet is None:
                # What the runtime answers for an endpoint that does not exist or serves nothing yet.
                raise ServiceError(
                    "ValidationError", f"Endpoint {name} of account {self._ctx.account_id} not found."
                )
            fault = self.faults.get(name)
            variant = fleet.pick_variant(self._rng)
        if fault is not None:
            raise fault
        target = request.get("TargetVariant")
        if target is not None:
            if target not in fleet.models:
                raise ServiceError("ValidationError", f"Variant {target} not found for endpoint {name}.")
            variant = target
        status, content_type, body = self._invoke(fleet, variant, request)
        if 200 <= status < 300:
            return {"Body": body, "ContentType": content_type, "InvokedProductionVariant": variant}
        message = body.decode("utf-8", "replace")
        side = "client" if status < 500 else "server"
        region, account = self._ctx.region, self._ctx.account_id
        log_group = f"/aws/sagemaker/Endpoints/{name}"
        raise ServiceError(
            "ModelError",
            f'Received {side} error ({status}) from primary with message "{message}". See '
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group="
            f"{log_group} in account {account} for more information.",
            status=424,
            fields={
                "OriginalStatusCode": status,
                "OriginalMessage": message,
                "LogStreamArn": f"arn:aws:logs:{region}:{account}:log-group:{log_group}",
            },
        )

    def _route(self, endpoint: Endpoint) -> Fleet | None:
        """The fleet that takes this request; None when the endpoint takes none (it is not up yet, has
        failed, is out of service or being deleted)."""
        if endpoint.status not in SERVING:
            return None
        change = endpoint.change
        if (
            change is not None
            and change.green is not None
            and change.share > 0
            and (endpoint.serving is None or self._rng.random() < change.share)
        ):
            return change.green
        return endpoint.serving

    def _invoke(self, fleet: Fleet, variant: str, request: dict[str, Any]) -> tuple[int, str, bytes]:
        hosted = fleet.hosted.get(variant)
        if hosted is None:
            # A fleet a test declared ready (`settle`) loads its model at the first request, as the
            # container's `invocations` does when it has none (serve.py:218-223).
            try:
                archive = fleet.archives.get(variant)
                if archive is None:
                    archive = self._download(fleet.models[variant])
                    fleet.archives[variant] = archive
                hosted = _load(fleet.models[variant], archive)
            except (ProvisioningFailed, ModelLoadFailed) as error:
                return 500, "text/html; charset=utf-8", f"Unable to load model: {error}".encode()
            fleet.hosted[variant] = hosted
        return hosted.invoke(request["Body"], request.get("ContentType"), request.get("Accept"))

    # ------------------------------------------------------------------------------------ test controls

    def settle(self, name: str | None = None) -> None:
        """Every change in progress (of `name`, or of all endpoints) finishes now, successfully: a creation
        or update serves its config, a deletion is done."""
        with self._ctx.lock:
            for endpoint in [e for e in self.endpoints.values() if name in (None, e.name)]:
                if endpoint.change is not None:
                    self._finish(endpoint, endpoint.change)
                elif endpoint.status == "Deleting":
                    if endpoint.deletion is not None:
                        endpoint.deletion.cancel()
                    self._deleted(endpoint)

    def roll_back(self, name: str | None = None, reason: str | None = None) -> None:
        """The update in progress rolls back now, as when its rollback alarm fires while it bakes."""
        with self._ctx.lock:
            for endpoint in [e for e in self.endpoints.values() if name in (None, e.name)]:
                change = endpoint.change
                if change is not None and endpoint.serving is not None:
                    alarms = self._alarms(change) or ["(the deployment's rollback alarm)"]
                    self._fail_change(
                        endpoint,
                        change,
                        reason
                        or f"Deployment was rolled back because the CloudWatch alarm {alarms[0]} went into "
                        "the ALARM state during the deployment.",
                    )

    def stall(self, name: str) -> None:
        """The change in progress of `name` never finishes (its timers are dropped)."""
        with self._ctx.lock:
            endpoint = self._endpoint(name)
            if endpoint.change is not None:
                endpoint.change.cancel()

    def set_status(self, name: str, status: str, failure_reason: str | None = None) -> None:
        """Put the endpoint in `status` (OutOfService, Failed, ...), as SageMaker would, with its event."""
        with self._ctx.lock:
            endpoint = self._endpoint(name)
            if endpoint.change is not None:
                endpoint.change.cancel()
                endpoint.change = None
            endpoint.failure_reason = failure_reason
            self._set_status(endpoint, status)


def _load(model: Model, archive: bytes, environment: Mapping[str, str] | None = None) -> HostedModel:
    """The serving container started on `archive`, with the model container's Environment and, for a
    batch transform, the job's on top."""
    own: dict[str, str] = next((c.get("Environment", {}) for c in model.containers), {})
    return HostedModel.from_archive(archive, environment={**own, **(environment or {})})


def _share(size: dict[str, Any], instances: int) -> float:
    if size["Type"] == "CAPACITY_PERCENT":
        return min(1.0, float(size["Value"]) / 100)
    return min(1.0, float(size["Value"]) / max(1, instances))


def _s3_location(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key
