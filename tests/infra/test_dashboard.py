"""The stack's dashboard: every metric the pipeline is watched by, naming the stack's own resources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from deploy.deployer import MODELS_DEPLOYED, MODELS_NOT_DEPLOYED
from deploy.serving import VARIANT
from tests.support.stacks import STACKS, synth
from tools.mockrun import StackRun

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
GRID_COLUMNS = 24

# A metric as the dashboard draws it: namespace, name, its dimensions and the statistic.
Line = tuple[str, str, frozenset[tuple[str, str]], str]


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


def dashboard_body(run: StackRun) -> dict[str, Any]:
    body: dict[str, Any] = run.one(DASHBOARD).json_input("dashboardBody")
    return body


def metric_widgets(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (w for w in body["widgets"] if w["type"] == "metric")


def lines(body: dict[str, Any]) -> set[Line]:
    """Each metric line of the body ("Metric Widget: Format for Each Metric in the Array")."""
    found = set()
    for widget in metric_widgets(body):
        for entry in widget["properties"]["metrics"]:
            *identity, options = entry if isinstance(entry[-1], dict) else [*entry, {}]
            namespace, name, *pairs = identity
            # "." repeats the line above; the program spells every line out, so a "." is a defect here.
            assert "." not in (namespace, name, *pairs), entry
            dimensions = frozenset(zip(pairs[::2], pairs[1::2], strict=True))
            found.add((namespace, name, dimensions, options.get("stat", widget["properties"].get("stat"))))
    return found


def expected_lines(run: StackRun) -> set[Line]:
    """What the issue asks the dashboard to show, with the names this synth gave the resources."""
    queues = ("ingest-queue", "ingest-dlq", "tuning-requests-queue", "tuning-requests-dlq", "deploy-dlq")
    name = {r: run.named(r).outputs["name"] for r in queues}
    functions = [
        run.named(f"{f}-function").outputs["name"] for f in ("transform", "tune", "deploy", "predict")
    ]
    deploy_env = run.named("deploy-function").inputs["environment"]["variables"]
    plan = json.loads(deploy_env["SERVING_PLAN"])
    endpoint = frozenset({("EndpointName", plan["endpoint_name"]), ("VariantName", VARIANT)})
    api = frozenset(
        {
            ("ApiName", run.named("predict-api").outputs["name"]),
            ("Stage", run.named("predict-stage").inputs["stageName"]),
        }
    )
    # Powertools Metrics: the namespace variable, and the service name as the "service" dimension.
    namespace = deploy_env["POWERTOOLS_METRICS_NAMESPACE"]
    deploy = frozenset({("service", deploy_env["POWERTOOLS_SERVICE_NAME"])})

    def queue(q: str) -> frozenset[tuple[str, str]]:
        return frozenset({("QueueName", name[q])})

    return {
        *(
            ("AWS/SQS", metric, queue(work), "Maximum")
            for work in ("ingest-queue", "tuning-requests-queue")
            for metric in (
                "ApproximateNumberOfMessagesVisible",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateAgeOfOldestMessage",
            )
        ),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue("ingest-dlq"), "Maximum"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue("tuning-requests-dlq"), "Maximum"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue("deploy-dlq"), "Maximum"),
        *(
            ("AWS/Lambda", metric, frozenset({("FunctionName", function)}), stat)
            for function in functions
            for metric, stat in (
                ("Invocations", "Sum"),
                ("Errors", "Sum"),
                ("Throttles", "Sum"),
                ("Duration", "Average"),
            )
        ),
        (
            "AWS/Events",
            "MatchedEvents",
            frozenset({("RuleName", run.named("deploy-tuning-rule").outputs["name"])}),
            "Sum",
        ),
        (namespace, MODELS_DEPLOYED, deploy, "Sum"),
        (namespace, MODELS_NOT_DEPLOYED, deploy, "Sum"),
        ("AWS/SageMaker", "Invocations", endpoint, "Sum"),
        ("AWS/SageMaker", "Invocation5XXErrors", endpoint, "Sum"),
        ("AWS/SageMaker", "ModelLatency", endpoint, "Average"),
        ("AWS/ApiGateway", "4XXError", api, "Sum"),
        ("AWS/ApiGateway", "5XXError", api, "Sum"),
        ("AWS/ApiGateway", "Latency", api, "Average"),
    }


def missing(run: StackRun, body: dict[str, Any]) -> set[Line]:
    return expected_lines(run) - lines(body)


def test_every_metric_the_issue_lists_is_drawn_for_the_stacks_own_resources(run: StackRun) -> None:
    assert missing(run, dashboard_body(run)) == set()


def test_the_deploy_metrics_are_the_ones_the_deploy_function_emits(run: StackRun) -> None:
    """A renamed metric in functions/deploy/deployer.py would leave the dashboard drawing nothing."""
    deploy_env = run.named("deploy-function").inputs["environment"]["variables"]
    drawn = {
        name
        for namespace, name, _, _ in lines(dashboard_body(run))
        if namespace == deploy_env["POWERTOOLS_METRICS_NAMESPACE"]
    }
    assert drawn == {MODELS_DEPLOYED, MODELS_NOT_DEPLOYED}
    assert deploy_env["POWERTOOLS_METRICS_NAMESPACE"] == f"serverless-ml-pipeline/{run.stack}"


def test_a_metric_removed_from_a_widget_is_reported_missing() -> None:
    run = synth("dev")
    for expected in sorted(expected_lines(run), key=repr):
        body = dashboard_body(run)
        for widget in metric_widgets(body):
            widget["properties"]["metrics"] = [
                entry for entry in widget["properties"]["metrics"] if not _is(entry, expected)
            ]
        assert missing(run, body) == {expected}


def _is(entry: list[Any], line: Line) -> bool:
    namespace, name, dimensions, stat = line
    pairs = entry[2:-1]
    return (
        entry[:2] == [namespace, name]
        and frozenset(zip(pairs[::2], pairs[1::2], strict=True)) == dimensions
        and entry[-1].get("stat") == stat
    )


def test_every_graph_shows_the_stacks_region(run: StackRun) -> None:
    """A metric widget's `region` is required; a wrong one draws another region's (empty) metrics."""
    for widget in metric_widgets(dashboard_body(run)):
        assert widget["properties"]["region"] == run.config["aws:region"]


def test_widgets_fit_the_grid_without_overlapping(run: StackRun) -> None:
    taken: set[tuple[int, int]] = set()
    for widget in dashboard_body(run)["widgets"]:
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= GRID_COLUMNS, widget
        cells = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & taken, widget
        taken |= cells


def test_each_stack_has_its_own_dashboard_named_for_it() -> None:
    """Dashboards are global to an account: dev and prod in one account must not share one."""
    names = {stack: synth(stack).one(DASHBOARD).inputs["dashboardName"] for stack in STACKS}
    assert names == {stack: f"serverless-ml-pipeline-{stack}" for stack in STACKS}


def test_the_dashboard_url_opens_this_dashboard_in_the_stacks_region(run: StackRun) -> None:
    dashboard = run.one(DASHBOARD)
    region = run.config["aws:region"]
    assert run.outputs["dashboard_url"] == (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#dashboards/dashboard/{dashboard.id}"
    )
    assert dashboard.id == dashboard.inputs["dashboardName"]


def test_the_dashboard_url_and_graphs_follow_the_configured_region() -> None:
    run = synth("dev", **{"aws:region": "us-east-2"})
    assert run.outputs["dashboard_url"].startswith(
        "https://us-east-2.console.aws.amazon.com/cloudwatch/home?region=us-east-2#"
    )
    assert {w["properties"]["region"] for w in metric_widgets(dashboard_body(run))} == {"us-east-2"}
