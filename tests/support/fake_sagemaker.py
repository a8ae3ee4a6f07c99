# Handlers take the API's own parameter names (ModelName, ...), so botocore's parameters bind to them.
# ruff: noqa: N803
"""A stateful stand-in for the SageMaker and Application Auto Scaling APIs the deploy function calls.

moto has no UpdateEndpoint, no BestTrainingJob and answers a missing scalable target with the wrong error,
so the deploy tests answer those calls here. The fake hooks a real boto3 client's `before-call` event, as
botocore's Stubber does: requests are still built and validated by botocore, and every answer is checked
against the operation's output shape in botocore's model before the code sees it. It keeps the rules of
the real services that the deploy function must respect, each answered with the error AWS gives:

- names: SageMaker's length limits and patterns, which botocore does not check before sending;
- a duplicate model, endpoint config or endpoint: ValidationException ("Cannot create already existing");
- a missing one: ValidationException ("Could not find ..."), a missing tuning job: ResourceNotFound;
- UpdateEndpoint or DeleteEndpoint of an endpoint being created or updated: ValidationException ("Cannot
  update in-progress endpoint"), and UpdateEndpoint of an instance endpoint to a serverless config;
- an endpoint config naming a missing model;
- a missing scalable target: ObjectNotFoundException.

Endpoint changes take effect when the test says so (`settle`, `roll_back`), as they do in AWS minutes later.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ParamValidationError  # type: ignore[import-untyped]
from botocore.validate import validate_parameters  # type: ignore[import-untyped]

ACCOUNT = "123456789012"
# SageMaker API reference: ModelName, EndpointConfigName and EndpointName patterns, at most 63 characters.
NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PAGE_SIZE = 2  # small, so the code must follow NextToken


@dataclass
class _Response:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""


class AwsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Endpoint:
    name: str
    status: str
    config: str
    pending: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    # When a creation or update in progress finishes, if the test lets time pass (`sleep`).
    ready_at: datetime | None = None


# How long a creation or update takes when a test lets the clock run instead of calling `settle`.
CHANGE_TAKES = timedelta(minutes=2)


class FakeSageMaker:
    def __init__(self, region: str) -> None:
        self.region = region
        self.clock = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
        self.tuning_jobs: dict[str, dict[str, Any]] = {}
        self.training_jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoint: Endpoint | None = None
        self.scalable_targets: dict[str, dict[str, Any]] = {}
        self.scaling_policies: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._before: dict[str, Any] = {}

    # ----------------------------------------------------------------------------------- test controls

    def arn(self, resource: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:{resource.lower()}"

    def tick(self, minutes: float) -> None:
        self.clock += timedelta(minutes=minutes)

    def sleep(self, seconds: float) -> None:
        """Time passes for code that waits: an endpoint change due by then finishes."""
        self.clock += timedelta(seconds=seconds)
        if self.endpoint and self.endpoint.ready_at and self.clock >= self.endpoint.ready_at:
            self.settle()

    def before(self, operation: str, action: Any) -> None:
        """Run `action` once, just before SageMaker handles the next `operation` call (a concurrent
        caller getting there first)."""
        self._before[operation] = action

    def finish_tuning_job(
        self,
        name: str,
        *,
        status: str = "Completed",
        best: tuple[str, float] | None = None,
        metric: str = "validation:auc",
        direction: str = "Maximize",
        image: str = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5",
        bucket: str = "data",
        dataset: str = "sales",
    ) -> None:
        """A tuning job in its final state, as DescribeHyperParameterTuningJob shows it; `best` is the
        best training job's name and objective value."""
        completed = 1 if best else 0
        job: dict[str, Any] = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": self.arn(f"hyper-parameter-tuning-job/{name}"),
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {"Type": direction, "MetricName": metric},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
                "TrainingJobEarlyStoppingType": "Auto",
            },
            "TrainingJobDefinition": {
                "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/training-role",
                "InputDataConfig": [
                    {
                        "ChannelName": channel,
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3Uri": f"s3://{bucket}/processed/{dataset}/run-1/{channel}/",
                                "S3DataDistributionType": "FullyReplicated",
                            }
                        },
                        "ContentType": "text/csv",
                    }
                    for channel in ("train", "validation")
                ],
                "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models/"},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
                "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
            },
            "HyperParameterTuningJobStatus": status,
            "CreationTime": self.clock - timedelta(hours=1),
            "HyperParameterTuningEndTime": self.clock,
            "LastModifiedTime": self.clock,
            "TrainingJobStatusCounters": {
                "Completed": completed,
                "InProgress": 0,
                "RetryableError": 0,
                "NonRetryableError": 4 - completed,
                "Stopped": 0,
            },
            "ObjectiveStatusCounters": {"Succeeded": completed, "Pending": 0, "Failed": 4 - completed},
        }
        if status == "Failed":
            job["FailureReason"] = "All training jobs failed. Please check the training job logs."
        if best:
            training_job, value = best
            job["BestTrainingJob"] = {
                "TrainingJobName": training_job,
                "TrainingJobArn": self.arn(f"training-job/{training_job}"),
                "TuningJobName": name,
                "CreationTime": self.clock - timedelta(minutes=30),
                "TrainingStartTime": self.clock - timedelta(minutes=29),
                "TrainingEndTime": self.clock - timedelta(minutes=5),
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": {"eta": "0.1", "max_depth": "6", "num_round": "120"},
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": metric, "Value": value},
                "ObjectiveStatus": "Succeeded",
            }
            self.training_jobs[training_job] = {
                "TrainingJobName": training_job,
                "TrainingJobArn": self.arn(f"training-job/{training_job}"),
                "TuningJobArn": job["HyperParameterTuningJobArn"],
                "ModelArtifacts": {
                    "S3ModelArtifacts": f"s3://{bucket}/models/{training_job}/output/model.tar.gz"
                },
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
                "InputDataConfig": job["TrainingJobDefinition"]["InputDataConfig"],
                "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
                "CreationTime": self.clock - timedelta(minutes=30),
                "FinalMetricDataList": [{"MetricName": metric, "Value": value, "Timestamp": self.clock}],
            }
        self.tuning_jobs[name] = job

    def add_model(self, name: str, created: datetime) -> None:
        """A model left by an earlier, unfinished delivery or promotion."""
        self.models[name] = {
            "ModelName": name,
            "CreationTime": created,
            "PrimaryContainer": {"Image": "image", "ModelDataUrl": "s3://data/model.tar.gz"},
            "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/model-role",
        }

    def start_tuning_job(self, name: str) -> None:
        self.finish_tuning_job(name, status="InProgress")

    def settle(self) -> None:
        """The endpoint's creation or update finished."""
        assert self.endpoint is not None
        self.endpoint.config = self.endpoint.pending or self.endpoint.config
        self.endpoint.pending = None
        self.endpoint.status = "InService"
        self.endpoint.ready_at = None

    def roll_back(self) -> None:
        """The rollback alarm fired during the bake time: the old config serves again."""
        assert self.endpoint is not None and self.endpoint.pending
        self.endpoint.pending = None
        self.endpoint.status = "InService"

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]

    # ------------------------------------------------------------------------------------ the hook

    def install(self, client: Any) -> None:
        """Answer `client`'s calls; like Stubber, take the API parameters before botocore serialises them."""
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register_first(f"before-parameter-build.{service}.*", self._take_parameters)
        client.meta.events.register_first(f"before-call.{service}.*", self._answer)

    def _take_parameters(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, copy.deepcopy(params)))

    def _answer(self, model: Any, **_: Any) -> tuple[_Response, dict[str, Any]]:
        operation, params = self.calls[-1]
        assert operation == model.name
        if operation in self._before:
            self._before.pop(operation)()
        handler = getattr(self, f"_{_snake(operation)}", None)
        assert handler is not None, f"the fake does not answer {operation}"
        try:
            body = handler(**params) or {}
        except AwsError as error:
            return _Response(400), {"Error": {"Code": error.code, "Message": error.message}}
        if model.output_shape is not None:
            try:
                validate_parameters(body, model.output_shape)
            except ParamValidationError as invalid:
                raise AssertionError(f"the fake's {operation} answer breaks the model: {invalid}") from None
        return _Response(200), {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}

    # ---------------------------------------------------------------------------- tuning and training

    def _describe_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> dict[str, Any]:
        job = self.tuning_jobs.get(HyperParameterTuningJobName)
        if job is None:
            raise AwsError(
                "ResourceNotFound",
                f"Amazon SageMaker can't find a tuning job called {HyperParameterTuningJobName}.",
            )
        return copy.deepcopy(job)

    def _describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        if TrainingJobName not in self.training_jobs:
            raise AwsError("ValidationException", f"Requested resource not found: {TrainingJobName}")
        return copy.deepcopy(self.training_jobs[TrainingJobName])

    def _list_hyper_parameter_tuning_jobs(self, **query: Any) -> dict[str, Any]:
        jobs = [
            {
                key: job[key]
                for key in (
                    "HyperParameterTuningJobName",
                    "HyperParameterTuningJobArn",
                    "HyperParameterTuningJobStatus",
                    "CreationTime",
                    "TrainingJobStatusCounters",
                    "ObjectiveStatusCounters",
                )
            }
            | {"Strategy": "Bayesian"}
            for job in self.tuning_jobs.values()
            if query.get("StatusEquals") in (None, job["HyperParameterTuningJobStatus"])
        ]
        return self._page(jobs, "HyperParameterTuningJobSummaries", "HyperParameterTuningJobName", query)

    def _stop_hyper_parameter_tuning_job(self, HyperParameterTuningJobName: str) -> None:
        job = self._describe_hyper_parameter_tuning_job(HyperParameterTuningJobName)
        if job["HyperParameterTuningJobStatus"] != "InProgress":
            raise AwsError(
                "ValidationException", f"The job {HyperParameterTuningJobName} is not in progress."
            )
        self.tuning_jobs[HyperParameterTuningJobName]["HyperParameterTuningJobStatus"] = "Stopping"

    # ------------------------------------------------------------------------------------- models

    def _create_model(self, ModelName: str, **request: Any) -> dict[str, Any]:
        _check_name("model", ModelName)
        if ModelName in self.models:
            raise AwsError(
                "ValidationException",
                f'Cannot create already existing model "{self.arn(f"model/{ModelName}")}".',
            )
        self.models[ModelName] = {"ModelName": ModelName, "CreationTime": self.clock, **request}
        return {"ModelArn": self.arn(f"model/{ModelName}")}

    def _describe_model(self, ModelName: str) -> dict[str, Any]:
        model = self._model(ModelName)
        return {
            "ModelName": ModelName,
            "ModelArn": self.arn(f"model/{ModelName}"),
            "CreationTime": model["CreationTime"],
            "PrimaryContainer": model["PrimaryContainer"],
            "ExecutionRoleArn": model["ExecutionRoleArn"],
        }

    def _delete_model(self, ModelName: str) -> None:
        self._model(ModelName)
        del self.models[ModelName]

    def _list_models(self, **query: Any) -> dict[str, Any]:
        items = [
            {"ModelName": n, "ModelArn": self.arn(f"model/{n}"), "CreationTime": m["CreationTime"]}
            for n, m in self.models.items()
        ]
        return self._page(items, "Models", "ModelName", query)

    def _model(self, name: str) -> dict[str, Any]:
        if name not in self.models:
            raise AwsError("ValidationException", f'Could not find model "{self.arn(f"model/{name}")}".')
        return self.models[name]

    # ---------------------------------------------------------------------------- endpoint configs

    def _create_endpoint_config(
        self, EndpointConfigName: str, ProductionVariants: list[dict[str, Any]], Tags: Any = (), **rest: Any
    ) -> dict[str, Any]:
        _check_name("endpoint config", EndpointConfigName)
        if EndpointConfigName in self.configs:
            raise AwsError(
                "ValidationException",
                "Cannot create already existing endpoint configuration "
                f'"{self.arn(f"endpoint-config/{EndpointConfigName}")}".',
            )
        for variant in ProductionVariants:
            self._model(variant["ModelName"])
        self.configs[EndpointConfigName] = {
            "EndpointConfigName": EndpointConfigName,
            "EndpointConfigArn": self.arn(f"endpoint-config/{EndpointConfigName}"),
            "ProductionVariants": ProductionVariants,
            "CreationTime": self.clock,
            "Tags": list(Tags),
            **rest,
        }
        return {"EndpointConfigArn": self.arn(f"endpoint-config/{EndpointConfigName}")}

    def _describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        config = copy.deepcopy(self._config(EndpointConfigName))
        config.pop("Tags")
        return config

    def _delete_endpoint_config(self, EndpointConfigName: str) -> None:
        self._config(EndpointConfigName)
        del self.configs[EndpointConfigName]

    def _list_endpoint_configs(self, **query: Any) -> dict[str, Any]:
        items = [
            {
                "EndpointConfigName": n,
                "EndpointConfigArn": c["EndpointConfigArn"],
                "CreationTime": c["CreationTime"],
            }
            for n, c in self.configs.items()
        ]
        return self._page(items, "EndpointConfigs", "EndpointConfigName", query)

    def _list_tags(self, ResourceArn: str, MaxResults: int = 50) -> dict[str, Any]:
        for config in self.configs.values():
            if config["EndpointConfigArn"] == ResourceArn:
                return {"Tags": config["Tags"][:MaxResults]}
        raise AwsError("ValidationException", f"Could not find resource {ResourceArn}.")

    def _config(self, name: str) -> dict[str, Any]:
        if name not in self.configs:
            raise AwsError(
                "ValidationException",
                f'Could not find endpoint configuration "{self.arn(f"endpoint-config/{name}")}".',
            )
        return self.configs[name]

    # ------------------------------------------------------------------------------------- endpoint

    def _create_endpoint(self, EndpointName: str, EndpointConfigName: str, Tags: Any = ()) -> dict[str, Any]:
        _check_name("endpoint", EndpointName)
        if self.endpoint is not None:
            raise AwsError(
                "ValidationException",
                f'Cannot create already existing endpoint "{self.arn(f"endpoint/{EndpointName}")}".',
            )
        self._config(EndpointConfigName)
        self.endpoint = Endpoint(
            EndpointName, "Creating", EndpointConfigName, tags=list(Tags), ready_at=self.clock + CHANGE_TAKES
        )
        return {"EndpointArn": self.arn(f"endpoint/{EndpointName}")}

    def _update_endpoint(self, EndpointName: str, EndpointConfigName: str, **options: Any) -> dict[str, Any]:
        endpoint = self._endpoint(EndpointName)
        if endpoint.status != "InService":
            raise AwsError(
                "ValidationException",
                f'Cannot update in-progress endpoint "{self.arn(f"endpoint/{EndpointName}")}".',
            )
        new = self._config(EndpointConfigName)["ProductionVariants"][0]
        old = self._config(endpoint.config)["ProductionVariants"][0]
        if "ServerlessConfig" in new and "ServerlessConfig" not in old:
            raise AwsError("ValidationException", "Cannot update an instance-based endpoint to serverless.")
        if (
            old.get("InstanceType") != new.get("InstanceType")
            and f"endpoint/{EndpointName}/variant/{old['VariantName']}" in self.scalable_targets
        ):
            raise AwsError(
                "ValidationException",
                "The variant has automatic scaling: deregister it before changing its instance type.",
            )
        endpoint.status, endpoint.pending = "Updating", EndpointConfigName
        endpoint.ready_at = self.clock + CHANGE_TAKES
        return {"EndpointArn": self.arn(f"endpoint/{EndpointName}")}

    def _describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        endpoint = self._endpoint(EndpointName)
        answer: dict[str, Any] = {
            "EndpointName": EndpointName,
            "EndpointArn": self.arn(f"endpoint/{EndpointName}"),
            "EndpointConfigName": endpoint.config,
            "EndpointStatus": endpoint.status,
            "CreationTime": self.clock,
            "LastModifiedTime": self.clock,
        }
        if endpoint.pending:
            answer["PendingDeploymentSummary"] = {"EndpointConfigName": endpoint.pending}
        return answer

    def _delete_endpoint(self, EndpointName: str) -> None:
        endpoint = self._endpoint(EndpointName)
        if endpoint.status in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
            raise AwsError(
                "ValidationException",
                f'Cannot update in-progress endpoint "{self.arn(f"endpoint/{EndpointName}")}".',
            )
        self.endpoint = None

    def _endpoint(self, name: str) -> Endpoint:
        if self.endpoint is None or self.endpoint.name != name:
            raise AwsError(
                "ValidationException", f'Could not find endpoint "{self.arn(f"endpoint/{name}")}".'
            )
        return self.endpoint

    # -------------------------------------------------------------------------- Application Auto Scaling

    def _register_scalable_target(self, ResourceId: str, **target: Any) -> dict[str, Any]:
        self._endpoint(ResourceId.split("/")[1])
        self.scalable_targets[ResourceId] = target
        return {
            "ScalableTargetARN": f"arn:aws:application-autoscaling:{self.region}:{ACCOUNT}:scalable-target/1"
        }

    def _put_scaling_policy(self, PolicyName: str, ResourceId: str, **policy: Any) -> dict[str, Any]:
        if ResourceId not in self.scalable_targets:
            raise AwsError("ObjectNotFoundException", f"No scalable target registered for {ResourceId}")
        self.scaling_policies[ResourceId] = {"PolicyName": PolicyName, **policy}
        return {
            "PolicyARN": f"arn:aws:autoscaling:{self.region}:{ACCOUNT}:scalingPolicy:1:resource/{PolicyName}"
        }

    def _deregister_scalable_target(self, ResourceId: str, **_: Any) -> None:
        if ResourceId not in self.scalable_targets:
            raise AwsError("ObjectNotFoundException", f"No scalable target found for {ResourceId}")
        del self.scalable_targets[ResourceId]
        self.scaling_policies.pop(ResourceId, None)

    # ------------------------------------------------------------------------------------- paging

    def _page(
        self, items: list[dict[str, Any]], key: str, name_key: str, query: dict[str, Any]
    ) -> dict[str, Any]:
        contains = query.get("NameContains")
        before = query.get("CreationTimeBefore")
        selected = [
            item
            for item in sorted(items, key=lambda i: i[name_key])
            if (contains is None or contains in item[name_key])
            and (before is None or item["CreationTime"] < before)
        ]
        start = int(query.get("NextToken") or 0)
        answer: dict[str, Any] = {key: selected[start : start + PAGE_SIZE]}
        if start + PAGE_SIZE < len(selected):
            answer["NextToken"] = str(start + PAGE_SIZE)
        return answer


def _check_name(kind: str, name: str) -> None:
    if not NAME.fullmatch(name):
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: Value '{name}' at '{kind}Name' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        )


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
