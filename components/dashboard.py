"""The stack's CloudWatch dashboard: one page with what the pipeline is doing, from upload to prediction.

The body follows the CloudWatch API reference, "Dashboard Body Structure and Syntax": a JSON object
with a `widgets` array; each widget has a `type`, its place on a 24-column grid (`x`, `y`, `width`,
`height`) and `properties`; a metric widget's `metrics` holds one array per line,
`[Namespace, MetricName, DimensionName, DimensionValue, ..., {rendering options}]`, and its `region`
says where the metrics are. Every dimension value is the program's own resource name (an Output), so
the dashboard follows a replaced queue or function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws_context import AwsContext

GRID_COLUMNS = 24
WIDGET_WIDTH = 8
WIDGET_HEIGHT = 6
NOTE_HEIGHT = 2
PERIOD_SECONDS = 300
# The variant the deploy function creates on the endpoint (functions/deploy/serving.py: VARIANT).
VARIANT = "AllTraffic"
# The deploy function's own metrics (functions/deploy/deployer.py): one count per judged tuning job.
MODELS_DEPLOYED = "ModelsDeployed"
MODELS_NOT_DEPLOYED = "ModelsNotDeployed"
# PutDashboard: at most 255 characters, A-Z, a-z, 0-9, "-" and "_" (botocore cloudwatch model).
NAME_LIMIT = 255
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def dashboard_name(project: str, stack: str) -> str:
    """Dashboards are global to the account, not regional (PutDashboard): project and stack make it
    unique, with what a stack name may hold but a dashboard name may not (a period) turned into "-"."""
    return _NOT_IN_NAME.sub("-", f"{project}-{stack}")[:NAME_LIMIT]


def console_url(region: str, name: pulumi.Input[str]) -> pulumi.Output[str]:
    """The dashboard in the CloudWatch console of the stack's region (the console's own route,
    `#dashboards/dashboard/<name>`; pulumi/pulumi-awsx#304 builds the same host and `region` query)."""
    return pulumi.Output.concat(
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/",
        name,
    )


@dataclass(frozen=True)
class Metric:
    """One line of a graph: a metric, its dimensions, the statistic drawn and the legend's label."""

    namespace: str
    name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    stat: str
    label: str
    # "right" draws the line against the right-hand axis (a second unit in one graph).
    y_axis: str = "left"

    def entry(self) -> list[Any]:
        flat: list[Any] = [self.namespace, self.name]
        for dimension, value in self.dimensions.items():
            flat += [dimension, value]
        options: dict[str, Any] = {"stat": self.stat, "label": self.label}
        if self.y_axis != "left":
            options["yAxis"] = self.y_axis
        return [*flat, options]


@dataclass(frozen=True)
class Graph:
    title: str
    metrics: Sequence[Metric]


def body(graphs: Sequence[Graph], *, region: str, note: str) -> dict[str, Any]:
    """The dashboard body: a note across the top, then the graphs left to right, three to a row."""
    per_row = GRID_COLUMNS // WIDGET_WIDTH
    widgets: list[dict[str, Any]] = [
        {
            "type": "text",
            "x": 0,
            "y": 0,
            "width": GRID_COLUMNS,
            "height": NOTE_HEIGHT,
            "properties": {"markdown": note},
        }
    ]
    for index, graph in enumerate(graphs):
        row, column = divmod(index, per_row)
        widgets.append(
            {
                "type": "metric",
                "x": column * WIDGET_WIDTH,
                "y": NOTE_HEIGHT + row * WIDGET_HEIGHT,
                "width": WIDGET_WIDTH,
                "height": WIDGET_HEIGHT,
                "properties": {
                    "title": graph.title,
                    "view": "timeSeries",
                    "region": region,
                    "period": PERIOD_SECONDS,
                    "metrics": [metric.entry() for metric in graph.metrics],
                },
            }
        )
    return {"widgets": widgets}


@dataclass(frozen=True)
class DashboardArgs:
    aws: AwsContext
    project: str
    stack: str
    # Label -> name of each work queue (uploads, tuning requests).
    queue_names: dict[str, pulumi.Input[str]]
    # Label -> name of each dead-letter queue.
    dead_letter_queue_names: dict[str, pulumi.Input[str]]
    # Label -> name of each function.
    function_names: dict[str, pulumi.Input[str]]
    # Namespace and service of the deploy function's metrics (functions/deploy/handler.py).
    deploy_metrics_namespace: str
    deploy_service: str
    # The rule that delivers this stack's finished tuning jobs (Completed, Failed or Stopped).
    tuning_rule_name: pulumi.Input[str]
    endpoint_name: str
    api_name: pulumi.Input[str]
    api_stage: pulumi.Input[str]


def graphs(args: DashboardArgs) -> list[Graph]:
    """What the dashboard draws, in reading order: ingest, functions, tuning, endpoint, API."""

    def sqs(name: str, queue: pulumi.Input[str], stat: str, label: str, y_axis: str = "left") -> Metric:
        return Metric("AWS/SQS", name, {"QueueName": queue}, stat, label, y_axis)

    def per_function(name: str, stat: str) -> list[Metric]:
        return [
            Metric("AWS/Lambda", name, {"FunctionName": function}, stat, label)
            for label, function in args.function_names.items()
        ]

    deploy = {"service": args.deploy_service}
    endpoint: dict[str, pulumi.Input[str]] = {"EndpointName": args.endpoint_name, "VariantName": VARIANT}
    api = {"ApiName": args.api_name, "Stage": args.api_stage}
    return [
        # Delayed: tuning requests waiting out the quiet period (SQS developer guide, "Available CloudWatch
        # metrics for Amazon SQS": ApproximateNumberOfMessagesDelayed).
        Graph(
            "Queues: messages waiting, delayed, age of the oldest (s)",
            [
                metric
                for label, queue in args.queue_names.items()
                for metric in (
                    sqs("ApproximateNumberOfMessagesVisible", queue, "Maximum", f"{label} waiting"),
                    sqs("ApproximateNumberOfMessagesDelayed", queue, "Maximum", f"{label} delayed"),
                    sqs("ApproximateAgeOfOldestMessage", queue, "Maximum", f"{label} oldest (s)", "right"),
                )
            ],
        ),
        Graph(
            "Dead-letter queues: messages waiting",
            [
                sqs("ApproximateNumberOfMessagesVisible", queue, "Maximum", label)
                for label, queue in args.dead_letter_queue_names.items()
            ],
        ),
        Graph("Function invocations", per_function("Invocations", "Sum")),
        Graph("Function errors", per_function("Errors", "Sum")),
        Graph("Function throttles", per_function("Throttles", "Sum")),
        Graph("Function duration, average (ms)", per_function("Duration", "Average")),
        # SageMaker publishes no count of tuning jobs by outcome: the rule's matched events count the
        # finished ones (EventBridge user guide, "Monitoring Amazon EventBridge": RuleName alone is the
        # default bus), and the deploy function counts each judged job as deployed or not (a failed or
        # stopped tuning job is one not deployed).
        Graph(
            "Tuning jobs finished; models deployed and not deployed",
            [
                Metric(
                    "AWS/Events",
                    "MatchedEvents",
                    {"RuleName": args.tuning_rule_name},
                    "Sum",
                    "tuning jobs finished",
                ),
                Metric(args.deploy_metrics_namespace, MODELS_DEPLOYED, deploy, "Sum", "models deployed"),
                Metric(
                    args.deploy_metrics_namespace, MODELS_NOT_DEPLOYED, deploy, "Sum", "models not deployed"
                ),
            ],
        ),
        Graph(
            "Endpoint invocations and 5xx errors",
            [
                Metric("AWS/SageMaker", "Invocations", endpoint, "Sum", "invocations"),
                Metric("AWS/SageMaker", "Invocation5XXErrors", endpoint, "Sum", "5xx errors"),
            ],
        ),
        # ModelLatency is in microseconds (SageMaker developer guide, "Amazon SageMaker AI metrics").
        Graph(
            "Endpoint model latency (microseconds)",
            [
                Metric("AWS/SageMaker", "ModelLatency", endpoint, "Average", "average"),
                Metric("AWS/SageMaker", "ModelLatency", endpoint, "p99", "p99"),
            ],
        ),
        Graph(
            "Prediction API 4xx and 5xx answers",
            [
                Metric("AWS/ApiGateway", "4XXError", api, "Sum", "4xx"),
                Metric("AWS/ApiGateway", "5XXError", api, "Sum", "5xx"),
            ],
        ),
        Graph(
            "Prediction API latency (ms)",
            [
                Metric("AWS/ApiGateway", "Latency", api, "Average", "average"),
                Metric("AWS/ApiGateway", "Latency", api, "p99", "p99"),
            ],
        ),
    ]


class Dashboard(pulumi.ComponentResource):
    """Creates one CloudWatch dashboard per stack, named `<project>-<stack>`, in the stack's region, with:

    - the ingest queue's messages waiting and the age of its oldest message, and each dead-letter queue's
      messages waiting (maximum over 5 minutes);
    - each function's invocations, errors, throttles (sums) and average duration;
    - tuning jobs finished (the tuning rule's matched events) and the deploy function's ModelsDeployed and
      ModelsNotDeployed counts;
    - the endpoint's invocations, 5xx errors and model latency (average and p99);
    - the prediction API's 4xx and 5xx answers and latency (average and p99).

    `url` is the dashboard in the CloudWatch console.
    """

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:Dashboard", name, None, opts)
        region = args.aws.region
        # PutDashboard advises a note on a dashboard made by a script, so no one edits it in the console.
        note = (
            f"**{args.project} / {args.stack}**: made by the stack's Pulumi program "
            "(components/dashboard.py); a change made here is lost on the next `pulumi up`."
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=dashboard_name(args.project, args.stack),
            dashboard_body=pulumi.Output.json_dumps(body(graphs(args), region=region, note=note)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = console_url(region, self.dashboard.dashboard_name)
        self.register_outputs({"dashboard_name": self.dashboard.dashboard_name, "url": self.url})
