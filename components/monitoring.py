"""Alarms on what needs a person: messages in the dead-letter queue, function errors and throttles."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws_context import AwsContext
from components.policy_documents import Document, render, topic_publishable_only_by

ALARM_PERIOD_SECONDS = 300
# The endpoint error alarm also rolls back blue/green updates, so it looks at one-minute periods: a bad
# model is caught within a bake time (settings: endpointBakeSeconds).
ENDPOINT_ALARM_PERIOD_SECONDS = 60
ENDPOINT_ERRORS = "endpoint-errors"
# ModelLatency is in microseconds (SageMaker developer guide, "Amazon SageMaker AI metrics").
ENDPOINT_LATENCY_MICROSECONDS = 1_000_000
VARIANT = "AllTraffic"


def alarm_name(prefix: str, suffix: str) -> str:
    """A known name, so the alarm topic's policy can admit exactly this stack's alarms."""
    return f"{prefix}{suffix}"


def alarm_topic_policy(*, topic_arn: str, account_id: str, alarm_arn_pattern: str) -> Document:
    """Only this stack's CloudWatch alarms may publish, over TLS."""
    return topic_publishable_only_by(
        "AllowStackAlarmsToPublish",
        "cloudwatch.amazonaws.com",
        topic_arn=topic_arn,
        account_id=account_id,
        source_arn=alarm_arn_pattern,
    )


@dataclass(frozen=True)
class MonitoringArgs:
    aws: AwsContext
    alarm_name_prefix: str
    key_arn: pulumi.Input[str]
    alarm_email: str | None
    dead_letter_queue_names: dict[str, pulumi.Input[str]]
    function_names: dict[str, pulumi.Input[str]]
    endpoint_name: str
    # Namespace and service of the deploy function's metrics (functions/deploy/handler.py).
    deploy_metrics_namespace: str
    deploy_service: str
    # The prediction API: its 5xx answers (the function's 5xx are answers, not Lambda errors).
    api_name: pulumi.Input[str]
    api_stage: pulumi.Input[str]


class Monitoring(pulumi.ComponentResource):
    """Creates an alarm topic encrypted with the stack key (only this stack's alarms may publish, TLS only),
    its e-mail subscription when `alarmEmail` is set, and alarms, sent on ALARM and on OK, for:

    - any message in a dead-letter queue (something the pipeline could not process is waiting);
    - any error or throttle of each function, over 5-minute periods;
    - a tuning run whose model was not deployed (failed or stopped job, no completed training job, a
      challenger that lost, an endpoint that cannot take it);
    - any 5xx answer of the prediction API (the predict function answers endpoint failures with 502-504
      rather than failing, so its Lambda error count does not see them);
    - any 5xx answer of the endpoint in a minute (also the blue/green rollback alarm), and a model
      latency above one second on average over five minutes.
    """

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(f"{name}-alarms", kms_master_key_id=args.key_arn, opts=child)
        aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=self.topic.arn,
            policy=render(
                alarm_topic_policy,
                topic_arn=self.topic.arn,
                account_id=args.aws.account_id,
                alarm_arn_pattern=args.aws.alarms_named(args.alarm_name_prefix),
            ),
            opts=child,
        )
        if args.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=child,
            )

        self.alarms = [
            self._alarm(
                name,
                args.alarm_name_prefix,
                queue,
                "Messages wait in a dead-letter queue: events the pipeline could not process.",
                namespace="AWS/SQS",
                metric="ApproximateNumberOfMessagesVisible",
                statistic="Maximum",
                dimensions={"QueueName": queue_name},
            )
            for queue, queue_name in args.dead_letter_queue_names.items()
        ]
        for function, function_name in args.function_names.items():
            for metric in ("Errors", "Throttles"):
                self.alarms.append(
                    self._alarm(
                        name,
                        args.alarm_name_prefix,
                        f"{function}-{metric.lower()}",
                        f"The {function} function reports {metric.lower()}.",
                        namespace="AWS/Lambda",
                        metric=metric,
                        statistic="Sum",
                        dimensions={"FunctionName": function_name},
                    )
                )
        self.alarms.append(
            self._alarm(
                name,
                args.alarm_name_prefix,
                "models-not-deployed",
                "A tuning run ended without deploying its model: see deployments/<tuning job>.json.",
                namespace=args.deploy_metrics_namespace,
                metric="ModelsNotDeployed",
                statistic="Sum",
                dimensions={"service": args.deploy_service},
            )
        )
        self.alarms.append(
            self._alarm(
                name,
                args.alarm_name_prefix,
                "api-5xx",
                "The prediction API answers with server errors: see the predict function's log.",
                namespace="AWS/ApiGateway",
                metric="5XXError",
                statistic="Sum",
                dimensions={"ApiName": args.api_name, "Stage": args.api_stage},
            )
        )
        endpoint: dict[str, pulumi.Input[str]] = {"EndpointName": args.endpoint_name, "VariantName": VARIANT}
        self.endpoint_errors = self._alarm(
            name,
            args.alarm_name_prefix,
            ENDPOINT_ERRORS,
            "The endpoint answers with server errors; a running blue/green update rolls back.",
            namespace="AWS/SageMaker",
            metric="Invocation5XXErrors",
            statistic="Sum",
            dimensions=endpoint,
            period=ENDPOINT_ALARM_PERIOD_SECONDS,
        )
        self.alarms.append(self.endpoint_errors)
        self.alarms.append(
            self._alarm(
                name,
                args.alarm_name_prefix,
                "endpoint-latency",
                "The endpoint's model takes over a second per request on average.",
                namespace="AWS/SageMaker",
                metric="ModelLatency",
                statistic="Average",
                dimensions=endpoint,
                threshold=ENDPOINT_LATENCY_MICROSECONDS,
            )
        )
        self.register_outputs({"alarm_topic_arn": self.topic.arn})

    def _alarm(
        self,
        name: str,
        prefix: str,
        suffix: str,
        description: str,
        *,
        namespace: str,
        metric: str,
        statistic: str,
        dimensions: dict[str, pulumi.Input[str]],
        period: int = ALARM_PERIOD_SECONDS,
        threshold: float = 0,
    ) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{suffix}",
            name=alarm_name(prefix, suffix),
            alarm_description=description,
            namespace=namespace,
            metric_name=metric,
            statistic=statistic,
            dimensions=dimensions,
            period=period,
            evaluation_periods=1,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self),
        )
