"""Model deployment: the deploy function that promotes tuned models to the stack's endpoint, what
invokes it, and the cleanup that runs when the stack is destroyed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pulumi
import pulumi_aws as aws

from components.aws_context import AwsContext
from components.deployment_policies import (
    ENDPOINT_LOG_GROUP,
    RECORDS_PREFIX,
    TRANSFORM_LOG_GROUP,
    dead_letter_queue_policy,
    deploy_policy,
    model_policy,
)
from components.event_bus import StackKey
from components.policy_documents import render
from components.python_function import PythonFunctionArgs, python_function
from components.service_role import service_role
from settings import EndpointSettings, FunctionRuntime

HANDLER = "deploy.handler.lambda_handler"
# Judging a tuning job and starting an update takes seconds; teardown deletes one resource per call.
# Scoring a contest streams the validation rows, but AUC keeps about 100 bytes per distinct prediction
# of each model (functions/deploy/evaluation.py), and Lambda's CPU grows with memory: 1 GB scores some
# 4 million rows of two all-distinct models within memory, and faster than 256 MB would.
MEMORY_MB = 1024
TIMEOUT_SECONDS = 300
# Events the function failed on are retried twice by Lambda (its maximum), for up to six hours, then
# sent to the dead-letter queue (Lambda API reference, PutFunctionEventInvokeConfig).
ASYNC_RETRIES = 2
ASYNC_MAX_AGE_SECONDS = 6 * 3600
# EventBridge retries a failed delivery (throttling, a missing function) for up to a day.
DELIVERY_RETRIES = 185
DELIVERY_MAX_AGE_SECONDS = 24 * 3600
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
# The payload key and purpose of the cleanup invocation (functions/deploy/events.py reads them).
LIFECYCLE_KEY = "tf"
TEARDOWN_PURPOSE = "remove-runtime-resources"
FINISHED_TUNING_STATES = ["Completed", "Failed", "Stopped"]
# DescribeTransformJob TransformJobStatus values of a finished job (SageMaker API reference).
FINISHED_TRANSFORM_STATES = ["Completed", "Failed", "Stopped"]


@dataclass(frozen=True)
class DeploymentArgs:
    aws: AwsContext
    runtime: FunctionRuntime
    endpoint: EndpointSettings
    layer_arns: list[str]
    project: str
    stack: str
    tuning_job_prefix: str
    endpoint_name: str
    rollback_alarm_name: str
    # "endpoint-tags" or "ssm-parameter" (settings: championStore).
    champion_store: str
    metrics_namespace: str
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    # The stack key: the role decrypts with it, the log groups are encrypted with it.
    key: StackKey
    image_repository_arn: str


class Deployment(pulumi.ComponentResource):
    """Creates:

    - the model role SageMaker hosts the stack's models and runs their contest transform jobs with: read
      `models/`, decrypt them, pull the XGBoost image, write the endpoint's and the transform jobs' logs
      and metrics, read the validation rows under `processed/`, write predictions under
      `deployments/contest/` with the stack key and, in instances mode with capture on, write `capture/`;
    - the deploy function (fixed name, own role, log group encrypted with the stack key, serving plan
      from `endpoint*` config),
      invoked by three EventBridge rules: this stack's tuning jobs reaching Completed, Failed or Stopped,
      its contest transform jobs (a challenger and the champion scored on the same validation rows)
      finishing likewise, and any state change of this stack's endpoint. Each invoke permission is
      limited to its rule. Undeliverable events and events the function failed on after Lambda's
      retries land in the deploy dead-letter queue;
    - a cleanup invocation (lifecycle scope CRUD) whose deletion, at `pulumi destroy`, has the function
      stop the stack's running tuning jobs and delete its endpoint, endpoint configs, models and
      autoscaling target.
    """

    def __init__(self, name: str, args: DeploymentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:Deployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ctx, endpoint = args.aws, args.endpoint
        self.endpoint_name = args.endpoint_name

        capture = not endpoint.serverless and endpoint.capture_percent > 0
        model_access = service_role(
            f"{name}-model",
            service_principal="sagemaker.amazonaws.com",
            description="Hosts the stack's models on its SageMaker endpoint",
            policy=render(
                model_policy,
                bucket_arn=args.bucket_arn,
                key_arn=args.key.arn,
                image_repository_arn=args.image_repository_arn,
                log_group_arn=ctx.arn("logs", f"log-group:{ENDPOINT_LOG_GROUP}/{args.endpoint_name}"),
                transform_log_group_arn=ctx.arn("logs", f"log-group:{TRANSFORM_LOG_GROUP}"),
                rollback_alarm_arn=ctx.arn("cloudwatch", f"alarm:{args.rollback_alarm_name}"),
                capture=capture,
            ),
            parent=self,
        )
        self.model_role = model_access.role

        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            # SQS-managed encryption: EventBridge can send to it without a grant on the stack key.
            sqs_managed_sse_enabled=True,
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            opts=child,
        )
        champion_parameter = ""
        if args.champion_store == "ssm-parameter":
            champion_parameter = f"/{args.project}/{args.tuning_job_prefix}/champion"
            self.champion_parameter = aws.ssm.Parameter(
                f"{name}-champion",
                name=champion_parameter,
                type="String",
                description="The score of the model the stack's endpoint serves, kept by the deploy function",
                # No champion yet; the deploy function owns the value from then on.
                value=json.dumps({}),
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
            )
        plan = pulumi.Output.all(
            model_role_arn=self.model_role.arn, bucket=args.bucket_name, key_arn=args.key.arn
        ).apply(
            lambda resolved: json.dumps(
                {
                    "endpoint_name": args.endpoint_name,
                    **asdict(endpoint),
                    "rollback_alarm": args.rollback_alarm_name,
                    "stack": args.stack,
                    "champion_parameter": champion_parameter,
                    **resolved,
                },
                separators=(",", ":"),
            )
        )
        made = python_function(
            name,
            PythonFunctionArgs(
                runtime=args.runtime,
                package="deploy",
                handler=HANDLER,
                memory_mb=MEMORY_MB,
                timeout_seconds=TIMEOUT_SECONDS,
                layer_arns=args.layer_arns,
                log_key=args.key,
                policy=lambda log_group_arn: render(
                    deploy_policy,
                    partition=ctx.partition,
                    account_id=ctx.account_id,
                    region=ctx.region,
                    tuning_job_prefix=args.tuning_job_prefix,
                    endpoint_name=args.endpoint_name,
                    bucket_arn=args.bucket_arn,
                    key_arn=args.key.arn,
                    model_role_arn=self.model_role.arn,
                    dead_letter_queue_arn=self.dead_letter_queue.arn,
                    log_group_arn=log_group_arn,
                    rollback_alarm_name=args.rollback_alarm_name,
                    champion_parameter=champion_parameter,
                ),
                environment={
                    "DATA_BUCKET": args.bucket_name,
                    "TUNING_JOB_PREFIX": args.tuning_job_prefix,
                    "SERVING_PLAN": plan,
                    "RECORDS_PREFIX": RECORDS_PREFIX,
                    "POWERTOOLS_METRICS_NAMESPACE": args.metrics_namespace,
                },
                # A fixed name: the cleanup invocation below is replaced, and so run as a deletion,
                # whenever the function's name changes, which a generated name would do on any replacement.
                function_name=f"{args.project}-{args.tuning_job_prefix}-deploy",
            ),
            parent=self,
        )
        self.function, self.log_group = made.function, made.log_group
        access = made.access
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=ASYNC_RETRIES,
            maximum_event_age_in_seconds=ASYNC_MAX_AGE_SECONDS,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self.dead_letter_queue.arn
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access.policy]),
        )

        # Events of this stack's resources only: tuning job names start with its prefix, and the
        # endpoint has its own name (EventBridge user guide, "Content filtering", prefix matching).
        # What delivers events to the function: removed before the cleanup runs at destroy, so no event
        # starts a promotion after the teardown.
        self._deliveries: list[pulumi.Resource] = []
        self.rules = {
            "tuning": self._rule(
                name,
                "tuning",
                "This stack's tuning jobs finished",
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker HyperParameter Tuning Job State Change"],
                    "detail": {
                        "HyperParameterTuningJobName": [{"prefix": f"{args.tuning_job_prefix}-"}],
                        "HyperParameterTuningJobStatus": FINISHED_TUNING_STATES,
                    },
                },
            ),
            # The contest's batch transform jobs, named after their tuning job (deploy.contest_jobs).
            "transform": self._rule(
                name,
                "transform",
                "This stack's contest transform jobs finished",
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Transform Job State Change"],
                    "detail": {
                        "TransformJobName": [{"prefix": f"{args.tuning_job_prefix}-"}],
                        "TransformJobStatus": FINISHED_TRANSFORM_STATES,
                    },
                },
            ),
            "endpoint": self._rule(
                name,
                "endpoint",
                "This stack's endpoint changed state",
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Endpoint State Change"],
                    "detail": {"EndpointName": [args.endpoint_name]},
                },
            ),
        }
        aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dead_letter_queue.url,
            policy=render(
                dead_letter_queue_policy,
                queue_arn=self.dead_letter_queue.arn,
                rule_arns=pulumi.Output.all(*(rule.arn for rule in self.rules.values())),
            ),
            opts=child,
        )

        self.cleanup = aws.lambda_.Invocation(
            f"{name}-cleanup",
            function_name=self.function.name,
            input=json.dumps({"purpose": TEARDOWN_PURPOSE, "endpoint": args.endpoint_name}),
            lifecycle_scope="CRUD",
            terraform_key=LIFECYCLE_KEY,
            # Deleted before the function, its role and its policy, which it still needs to run, and after
            # the rules' targets and invoke permissions, so no new event races the teardown.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[access.policy, self.log_group, *self._deliveries]
            ),
        )
        self.register_outputs(
            {
                "endpoint_name": args.endpoint_name,
                "function_name": self.function.name,
                "dead_letter_queue_url": self.dead_letter_queue.url,
            }
        )

    def _rule(
        self, name: str, kind: str, description: str, pattern: dict[str, object]
    ) -> aws.cloudwatch.EventRule:
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{name}-{kind}-rule", description=description, event_pattern=json.dumps(pattern), opts=child
        )
        target = aws.cloudwatch.EventTarget(
            f"{name}-{kind}-target",
            rule=rule.name,
            arn=self.function.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=DELIVERY_RETRIES,
                maximum_event_age_in_seconds=DELIVERY_MAX_AGE_SECONDS,
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.dead_letter_queue.arn),
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-{kind}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        self._deliveries += [target, permission]
        return rule
