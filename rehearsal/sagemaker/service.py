"""The local SageMaker: one state model behind the SageMaker, SageMaker Runtime and Application Auto Scaling
APIs the pipeline calls, answering as those services do, errors included.

`LocalSageMaker.call(service, operation, params, caller)` takes an API call whose parameters were read from
the wire (`rehearsal.sagemaker.api.read_request`), checks the caller may make it (`authorize`, with the
permissions SageMaker checks: the action on the resource's ARN, iam:PassRole for a role it is given,
sagemaker:AddTags when a request tags what it creates; Application Auto Scaling's permission validation),
and answers it from:

- `Training` (training.py): CreateHyperParameterTuningJob really tunes, on threads, training the built-in
  XGBoost container's way on the channels in S3, and the Describe/List/Stop operations show it;
- `Hosting` (hosting.py): models, endpoint configs, endpoints with their minutes-long changes, blue/green
  updates baked under their rollback alarms, and InvokeEndpoint on the trained model;
- `BatchTransform` (batch.py): CreateTransformJob runs the job's model, served as hosting serves it, over
  its input in S3, and writes one `.out` object per input object;
- `AutoScaling` (autoscaling.py): scalable targets and policies of endpoint variants;
- tags (ListTags, AddTags, DeleteTags) of all of them.

Every tuning-job, training-job, transform-job and endpoint status change is published as the EventBridge
event SageMaker sends (events.py). Time: live, each change after its AWS duration compressed by
`time_scale`; or, with `manual_clock`, only when a test moves the clock (`tick`, `sleep`) or finishes a
change itself (`settle`, `roll_back`), so its assertions see exactly the state it arranged.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rehearsal.clock import TimeScale
from rehearsal.sagemaker.api import AUTOSCALING, RUNTIME, SAGEMAKER, ServiceError, read_request
from rehearsal.sagemaker.autoscaling import SERVICE_PRINCIPAL, AutoScaling, tracking_alarm_names
from rehearsal.sagemaker.batch import BatchTransform, TransformJob
from rehearsal.sagemaker.events import EventDelivery
from rehearsal.sagemaker.hosting import Endpoint, EndpointConfig, Hosting, Model
from rehearsal.sagemaker.schedule import Scheduler
from rehearsal.sagemaker.state import Context, validation
from rehearsal.sagemaker.training import OBJECTIVE_HYPERPARAMETER, OnTrial, Training, TrainingJob, TuningJob

# (access key id, IAM action, resource ARNs[, condition keys]) -> None if allowed, else the AccessDenied
# message (rehearsal.role_access.RoleAccess.authorize).
Authorize = Callable[..., str | None]
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Permission:
    action: str
    resources: tuple[str, ...]
    context: Mapping[str, str] | None = None


class LocalSageMaker:
    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        s3_for_role: Callable[[str], Any],
        publish: Callable[[dict[str, Any]], None],
        alarm_state: Callable[[str], str],
        time_scale: TimeScale | None = None,
        authorize: Authorize | None = None,
        on_trial: OnTrial | None = None,
        manual_clock: datetime | None = None,
        page_size: int | None = None,
    ) -> None:
        """`manual_clock`: time stands at that moment until a test moves it. `page_size`: the most items
        a List page holds, below what the caller asks for (AWS may return fewer; small pages make callers
        follow NextToken)."""
        self._scheduler = Scheduler(time_scale or TimeScale(), manual_clock)
        self._events = EventDelivery(publish)
        self._ctx = Context(region, account_id, self._scheduler, self._events, s3_for_role, page_size)
        self._authorize = authorize
        self.autoscaling = AutoScaling(self._ctx, variant_kind=self._variant_kind)
        self.hosting = Hosting(self._ctx, alarm_state=alarm_state, autoscaled=self.autoscaling.has_target)
        self.training = Training(self._ctx, time_scale=time_scale or TimeScale(), on_trial=on_trial)
        self.batch = BatchTransform(self._ctx, self.hosting)
        # Every call answered, in order: (operation, parameters as received).
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._calls_lock = threading.Lock()
        self._before: dict[str, Callable[[], Any]] = {}

    @property
    def region(self) -> str:
        return self._ctx.region

    @property
    def account_id(self) -> str:
        return self._ctx.account_id

    # ------------------------------------------------------------------------------------- the API

    def call(
        self, service: str, operation: str, params: dict[str, Any], caller: str | None = None
    ) -> dict[str, Any]:
        """Answer one call (parameters as `read_request` gives them); raises ServiceError as AWS answers.
        `caller` is the access key id that signed it; None skips authorization (the service itself)."""
        with self._calls_lock:
            self.calls.append((operation, copy.deepcopy(params)))
            before = self._before.pop(operation, None)
        if before is not None:
            before()
        if self._authorize is not None and caller is not None:
            self._check_access(caller, service, operation, params)
        handler = self._handler(service, operation)
        return handler(params)

    def implements(self, service: str, operation: str) -> bool:
        """Whether the local SageMaker answers `operation` of `service`."""
        return _snake(operation) in _OPERATIONS.get(service, frozenset())

    def _handler(self, service: str, operation: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        method = _snake(operation)
        components: tuple[object, ...] = {
            SAGEMAKER: (self.training, self.hosting, self.batch, self),
            RUNTIME: (self.hosting,),
            AUTOSCALING: (self.autoscaling,),
        }.get(service, ())
        for component in components:
            handler = getattr(component, method, None) if not method.startswith("_") else None
            if callable(handler) and method in _OPERATIONS[service]:
                return handler  # type: ignore[no-any-return]
        raise ServiceError("UnknownOperationException", f"The local SageMaker does not answer {operation}")

    # ------------------------------------------------------------------------------------------- tags

    def list_tags(self, request: dict[str, Any]) -> dict[str, Any]:
        arn = request["ResourceArn"]
        with self._ctx.lock:
            if arn not in self._ctx.tags:
                raise validation(f"Could not find resource {arn}.")
            tags = list(self._ctx.tags[arn])
        size = int(request.get("MaxResults", 50))
        start = int(request.get("NextToken") or 0)
        answer: dict[str, Any] = {"Tags": tags[start : start + size]}
        if start + size < len(tags):
            answer["NextToken"] = str(start + size)
        return answer

    def add_tags(self, request: dict[str, Any]) -> dict[str, Any]:
        arn = request["ResourceArn"]
        with self._ctx.lock:
            if arn not in self._ctx.tags:
                raise validation(f"Could not find resource {arn}.")
            self._ctx.tag(arn, request["Tags"])
            return {"Tags": list(self._ctx.tags[arn])}

    def delete_tags(self, request: dict[str, Any]) -> dict[str, Any]:
        arn = request["ResourceArn"]
        with self._ctx.lock:
            if arn not in self._ctx.tags:
                raise validation(f"Could not find resource {arn}.")
            self._ctx.tags[arn] = [t for t in self._ctx.tags[arn] if t["Key"] not in request["TagKeys"]]
        return {}

    # -------------------------------------------------------------------------------- authorization

    def _check_access(self, caller: str, service: str, operation: str, params: dict[str, Any]) -> None:
        assert self._authorize is not None
        for permission in self._permissions(service, operation, params):
            resources = list(permission.resources)
            if permission.context:
                reason = self._authorize(caller, permission.action, resources, permission.context)
            else:
                reason = self._authorize(caller, permission.action, resources)
            if reason is not None:
                if reason.startswith("The security token included in the request is invalid"):
                    raise ServiceError(
                        "UnrecognizedClientException", reason, status=403 if service == RUNTIME else 400
                    )
                raise ServiceError("AccessDeniedException", reason, status=403 if service == RUNTIME else 400)

    def _permissions(self, service: str, operation: str, params: dict[str, Any]) -> list[Permission]:
        """What the caller needs (Service Authorization Reference, "Actions, resources, and condition keys
        for Amazon SageMaker" and "... Application Auto Scaling"; Application Auto Scaling user guide,
        "Permissions validation"; SageMaker developer guide, deployment guardrails: cloudwatch:DescribeAlarms
        on the auto-rollback alarms)."""
        if service == AUTOSCALING:
            return self._scaling_permissions(operation, params)
        action = f"sagemaker:{operation}"
        arn = self._ctx.arn
        resource_of = _RESOURCE.get(operation)
        if resource_of is None:
            return [Permission(action, ("*",))]
        kind, member = resource_of
        if member == "ResourceArn":
            return [Permission(action, (params["ResourceArn"],))]
        target = arn(kind, params[member])
        permissions = [Permission(action, (target,))]
        if operation in ("CreateEndpoint", "UpdateEndpoint"):
            permissions.append(Permission(action, (arn("endpoint-config", params["EndpointConfigName"]),)))
        if operation == "UpdateEndpoint":
            rollback = params.get("DeploymentConfig", {}).get("AutoRollbackConfiguration", {})
            permissions += [
                Permission(
                    "cloudwatch:DescribeAlarms",
                    (f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{a['AlarmName']}",),
                )
                for a in rollback.get("Alarms", [])
            ]
        roles = [params.get("ExecutionRoleArn"), params.get("TrainingJobDefinition", {}).get("RoleArn")]
        permissions += [
            Permission("iam:PassRole", (role,), {"iam:PassedToService": SAGEMAKER_PRINCIPAL})
            for role in roles
            if role
        ]
        if params.get("Tags") and operation.startswith("Create"):
            permissions.append(Permission("sagemaker:AddTags", (target,)))
        return permissions

    def _scaling_permissions(self, operation: str, params: dict[str, Any]) -> list[Permission]:
        context = {
            "application-autoscaling:service-namespace": params.get("ServiceNamespace", ""),
            **(
                {"application-autoscaling:scalable-dimension": params["ScalableDimension"]}
                if "ScalableDimension" in params
                else {}
            ),
        }
        action = f"application-autoscaling:{operation}"
        if "ResourceId" not in params or "ScalableDimension" not in params:
            return [Permission(action, ("*",), context)]
        permissions = [Permission(action, (self.autoscaling.target_arn(params),), context)]
        parts = params["ResourceId"].split("/")
        endpoint = self._ctx.arn("endpoint", parts[1]) if len(parts) > 1 else "*"
        alarm = f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:"
        if operation == "RegisterScalableTarget":
            permissions += [
                Permission("sagemaker:DescribeEndpoint", (endpoint,)),
                Permission("sagemaker:UpdateEndpointWeightsAndCapacities", (endpoint,)),
                Permission(
                    "iam:CreateServiceLinkedRole",
                    (self.autoscaling.service_role_arn(),),
                    {"iam:AWSServiceName": SERVICE_PRINCIPAL},
                ),
            ]
        if operation == "PutScalingPolicy" and params.get("PolicyType") == "TargetTrackingScaling":
            # The alarms target tracking creates, named with an identifier of their own.
            alarms = tuple(alarm + n for n in tracking_alarm_names(params["ResourceId"], str(uuid.uuid4())))
            permissions += [
                Permission("cloudwatch:PutMetricAlarm", alarms),
                Permission("cloudwatch:DescribeAlarms", alarms),
            ]
        if operation == "DeregisterScalableTarget":
            existing = self.autoscaling.alarms_of(params["ResourceId"], params["ScalableDimension"])
            if existing:
                permissions.append(
                    Permission("cloudwatch:DeleteAlarms", tuple(a["AlarmARN"] for a in existing))
                )
        return permissions

    def _variant_kind(self, endpoint_name: str, variant_name: str) -> str | None:
        with self._ctx.lock:
            endpoint = self.hosting.endpoints.get(endpoint_name)
            if endpoint is None:
                return None
            variant = next((v for v in endpoint.config.variants if v["VariantName"] == variant_name), None)
            if variant is None:
                return None
            return "serverless" if "ServerlessConfig" in variant else "instances"

    # ------------------------------------------------------------------------------------ state views

    @property
    def tuning_jobs(self) -> dict[str, TuningJob]:
        return self.training.tuning_jobs

    @property
    def training_jobs(self) -> dict[str, TrainingJob]:
        return self.training.training_jobs

    @property
    def transform_jobs(self) -> dict[str, TransformJob]:
        return self.batch.transform_jobs

    @property
    def models(self) -> dict[str, Model]:
        return self.hosting.models

    @property
    def configs(self) -> dict[str, EndpointConfig]:
        return self.hosting.configs

    @property
    def endpoints(self) -> dict[str, Endpoint]:
        return self.hosting.endpoints

    def now(self) -> datetime:
        return self._ctx.now()

    def operations(self) -> list[str]:
        with self._calls_lock:
            return [operation for operation, _ in self.calls]

    def flush_events(self, timeout: float = 30) -> None:
        """Wait until every event published so far has been handed to `publish`."""
        self._events.wait(timeout)

    def wait_for_tuning_job(self, name: str, timeout: float = 120) -> str:
        """Wait until the tuning job's run has ended; its final status."""
        runner = self.training.tuning_jobs[name].runner
        if runner is not None:
            runner.join(timeout)
            if runner.is_alive():
                raise TimeoutError(f"tuning job {name} still running after {timeout} s")
        return self.training.tuning_jobs[name].status

    @property
    def failures(self) -> list[Exception]:
        """Defects met on the local SageMaker's own threads (scheduled changes, training, delivery)."""
        return [*self._scheduler.failures, *self.training.failures, *self._events.failures]

    def close(self) -> None:
        for job in list(self.training.tuning_jobs.values()):
            job.stop.set()
        for job in list(self.training.tuning_jobs.values()):
            if job.runner is not None:
                job.runner.join(timeout=30)
        self._scheduler.close()
        self._events.wait(timeout=10)
        self._events.close()

    # ------------------------------------------------------------------------------------ test controls

    def tick(self, minutes: float) -> None:
        """Manual clock: `minutes` pass; changes due by then happen."""
        self._scheduler.advance(minutes * 60)

    def sleep(self, seconds: float) -> None:
        """Manual clock: `seconds` pass for code that waits (give it as the code's sleep)."""
        self._scheduler.advance(seconds)

    def settle(self, endpoint: str | None = None) -> None:
        """The endpoint's creation, update or deletion in progress finishes now."""
        self.hosting.settle(endpoint)

    def roll_back(self, endpoint: str | None = None) -> None:
        """The endpoint's update in progress is rolled back now, as its rollback alarm would have it."""
        self.hosting.roll_back(endpoint)

    def stall(self, endpoint: str) -> None:
        """The endpoint's change in progress never finishes."""
        self.hosting.stall(endpoint)

    def set_endpoint_status(self, endpoint: str, status: str, failure_reason: str | None = None) -> None:
        self.hosting.set_status(endpoint, status, failure_reason)

    def fail_invocations(self, endpoint: str, error: ServiceError | None) -> None:
        """Every InvokeEndpoint of `endpoint` answers `error` (None: answer normally again), as the runtime
        answers when the service or the capacity behind the endpoint fails."""
        with self._ctx.lock:
            if error is None:
                self.hosting.faults.pop(endpoint, None)
            else:
                self.hosting.faults[endpoint] = error

    def before(self, operation: str, action: Callable[[], Any]) -> None:
        """Run `action` once, just before the next `operation` call is answered (a concurrent caller
        getting there first)."""
        with self._calls_lock:
            self._before[operation] = action

    def add_model(self, request: dict[str, Any], created: datetime) -> None:
        """A model created at `created` (CreateModel `request`, its checks passed back then)."""
        params = read_request(SAGEMAKER, "CreateModel", request)
        name = params.pop("ModelName")
        arn = self._ctx.arn("model", name)
        with self._ctx.lock:
            self.hosting.models[name] = Model(
                name, arn, created, {k: v for k, v in params.items() if k != "Tags"}
            )
            self._ctx.tag(arn, params.get("Tags", []))

    def seed_tuning_job(
        self,
        request: dict[str, Any],
        *,
        status: str = "Completed",
        best: tuple[str, float] | None = None,
        tuned: dict[str, str] | None = None,
        failed_jobs: int = 0,
        model_archive: bytes | None = None,
        failure_reason: str = "AlgorithmError: training failed",
    ) -> None:
        """A tuning job that ran before: `request` as CreateHyperParameterTuningJob took it, now `status`.
        `best` is its best training job (name, objective value), `tuned` that job's tuned values, and
        `model_archive` its model.tar.gz, put where the job's output goes; `failed_jobs` more jobs failed."""
        params = read_request(SAGEMAKER, "CreateHyperParameterTuningJob", request)
        name = params["HyperParameterTuningJobName"]
        config, definition = params["HyperParameterTuningJobConfig"], params["TrainingJobDefinition"]
        metric = config["HyperParameterTuningJobObjective"]["MetricName"]
        now = self.now()
        finished = status in ("Completed", "Failed", "Stopped")
        arn = self._ctx.arn("hyper-parameter-tuning-job", name)
        job = TuningJob(
            name,
            arn,
            config,
            definition,
            list(params.get("Tags", [])),
            now - timedelta(hours=1),
            status=status,
            end_time=now if finished else None,
            last_modified=now,
        )
        if status == "Failed":
            job.failure_reason = "All training jobs failed. Please check the training job logs."
        jobs: list[TrainingJob] = []
        static = dict(definition.get("StaticHyperParameters", {}))

        def training_job(job_name: str, job_status: str) -> TrainingJob:
            values = dict(tuned or {})
            return TrainingJob(
                job_name,
                self._ctx.arn("training-job", job_name),
                name,
                arn,
                definition,
                {**static, **values, OBJECTIVE_HYPERPARAMETER: metric},
                values,
                now - timedelta(minutes=30),
                status=job_status,
                secondary_status=job_status,
                start_time=now - timedelta(minutes=29),
                end_time=now - timedelta(minutes=5),
                last_modified=now - timedelta(minutes=5),
                objective_metric=metric,
            )

        if best is not None:
            best_name, value = best
            winner = training_job(best_name, "Completed")
            winner.objective, winner.objective_status = value, "Succeeded"
            winner.final_metrics = [{"MetricName": metric, "Value": value, "Timestamp": now}]
            job.best, job.best_summary = best_name, winner.summary()
            jobs.append(winner)
            if model_archive is not None:
                bucket, _, key = winner.artifact.removeprefix("s3://").partition("/")
                key_id = definition["OutputDataConfig"].get("KmsKeyId")
                encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id} if key_id else {}
                s3 = self._ctx.s3_for_role(definition["RoleArn"])
                s3.put_object(Bucket=bucket, Key=key, Body=model_archive, **encryption)
        for number in range(len(jobs) + 1, len(jobs) + failed_jobs + 1):
            failed = training_job(f"{name}-{number:03d}-{secrets.token_hex(4)}", "Failed")
            failed.failure_reason, failed.objective_status = failure_reason, "Failed"
            jobs.append(failed)
        with self._ctx.lock:
            self._refuse_seed_duplicate(name)
            self.training.tuning_jobs[name] = job
            self._ctx.tag(arn, job.tags)
            for training in jobs:
                self.training.training_jobs[training.name] = training
                job.training_jobs.append(training.name)
                self._ctx.tag(training.arn, job.tags)

    def _refuse_seed_duplicate(self, name: str) -> None:
        if name in self.training.tuning_jobs:
            raise validation(f"tuning job {name} exists already")


# The operations each API answers here.
_OPERATIONS: dict[str, frozenset[str]] = {
    SAGEMAKER: frozenset(
        {
            "create_hyper_parameter_tuning_job",
            "describe_hyper_parameter_tuning_job",
            "list_hyper_parameter_tuning_jobs",
            "stop_hyper_parameter_tuning_job",
            "list_training_jobs_for_hyper_parameter_tuning_job",
            "describe_training_job",
            "create_model",
            "describe_model",
            "delete_model",
            "list_models",
            "create_endpoint_config",
            "describe_endpoint_config",
            "delete_endpoint_config",
            "list_endpoint_configs",
            "create_endpoint",
            "describe_endpoint",
            "update_endpoint",
            "delete_endpoint",
            "list_endpoints",
            "create_transform_job",
            "describe_transform_job",
            "list_transform_jobs",
            "stop_transform_job",
            "list_tags",
            "add_tags",
            "delete_tags",
        }
    ),
    RUNTIME: frozenset({"invoke_endpoint"}),
    AUTOSCALING: frozenset(
        {
            "register_scalable_target",
            "deregister_scalable_target",
            "put_scaling_policy",
            "delete_scaling_policy",
            "describe_scalable_targets",
            "describe_scaling_policies",
        }
    ),
}

# SageMaker operation -> (resource type of its ARN, the request member naming the resource); List
# operations have no resource type and are authorized on "*".
_RESOURCE: dict[str, tuple[str, str]] = {
    "CreateHyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJobName"),
    "DescribeHyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJobName"),
    "StopHyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJobName"),
    "ListTrainingJobsForHyperParameterTuningJob": (
        "hyper-parameter-tuning-job",
        "HyperParameterTuningJobName",
    ),
    "DescribeTrainingJob": ("training-job", "TrainingJobName"),
    "CreateModel": ("model", "ModelName"),
    "DescribeModel": ("model", "ModelName"),
    "DeleteModel": ("model", "ModelName"),
    "CreateEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "DescribeEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "DeleteEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "CreateEndpoint": ("endpoint", "EndpointName"),
    "DescribeEndpoint": ("endpoint", "EndpointName"),
    "UpdateEndpoint": ("endpoint", "EndpointName"),
    "DeleteEndpoint": ("endpoint", "EndpointName"),
    "InvokeEndpoint": ("endpoint", "EndpointName"),
    "CreateTransformJob": ("transform-job", "TransformJobName"),
    "DescribeTransformJob": ("transform-job", "TransformJobName"),
    "StopTransformJob": ("transform-job", "TransformJobName"),
    "ListTags": ("", "ResourceArn"),
    "AddTags": ("", "ResourceArn"),
    "DeleteTags": ("", "ResourceArn"),
}


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
