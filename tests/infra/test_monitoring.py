"""Alarms of every stack: what they watch, where they go, who may publish there."""

from __future__ import annotations

import json
from typing import Any

import pytest

from settings import PROJECT
from tests.support.policies import allows, denies_insecure_transport
from tests.support.stacks import STACKS, config_for, synth
from tools.mockrun import MOCK_ACCOUNT_ID, StackRun

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


def alarm_topic(run: StackRun) -> str:
    return run.named("monitoring-alarms").outputs["arn"]


def test_alarm_topic_is_encrypted_with_the_stack_key(run: StackRun) -> None:
    assert run.named("monitoring-alarms").inputs["kmsMasterKeyId"] == run.named("ingest-key").outputs["arn"]


def alarm_named(run: StackRun, suffix: str) -> dict[str, Any]:
    return run.one(ALARM, name=f"serverless-ml-pipeline-{run.stack}-{suffix}").inputs


@pytest.mark.parametrize(
    ("suffix", "queue"),
    [
        ("dead-letters", "ingest-dlq"),
        ("tuning-dead-letters", "tuning-requests-dlq"),
        ("deploy-dead-letters", "deploy-dlq"),
    ],
)
def test_dead_letters_raise_an_alarm(run: StackRun, suffix: str, queue: str) -> None:
    alarm = alarm_named(run, suffix)
    assert alarm["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["dimensions"] == {"QueueName": run.named(queue).outputs["name"]}
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)


@pytest.mark.parametrize("function", ["transform", "tune", "deploy", "predict"])
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_function_errors_and_throttles_raise_alarms(run: StackRun, function: str, metric: str) -> None:
    alarm = alarm_named(run, f"{function}-{metric.lower()}")
    assert alarm["metricName"] == metric
    assert alarm["dimensions"] == {"FunctionName": run.named(f"{function}-function").outputs["name"]}
    assert alarm["statistic"] == "Sum"


def test_a_model_not_deployed_raises_an_alarm_from_the_deploy_functions_metric(run: StackRun) -> None:
    alarm = alarm_named(run, "models-not-deployed")
    environment = run.named("deploy-function").inputs["environment"]["variables"]
    assert (
        alarm["namespace"]
        == environment["POWERTOOLS_METRICS_NAMESPACE"]
        == f"serverless-ml-pipeline/{run.stack}"
    )
    # Powertools Metrics adds the service name as the "service" dimension of every metric.
    assert alarm["dimensions"] == {"service": environment["POWERTOOLS_SERVICE_NAME"]}
    assert (alarm["metricName"], alarm["statistic"], alarm["threshold"]) == ("ModelsNotDeployed", "Sum", 0)


def test_endpoint_errors_alarm_is_the_rollback_alarm_of_updates(run: StackRun) -> None:
    alarm = alarm_named(run, "endpoint-errors")
    plan = json.loads(run.named("deploy-function").inputs["environment"]["variables"]["SERVING_PLAN"])
    assert alarm["name"] == plan["rollback_alarm"]
    assert alarm["dimensions"] == {"EndpointName": plan["endpoint_name"], "VariantName": "AllTraffic"}
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/SageMaker", "Invocation5XXErrors")
    # One-minute periods: a bad model is caught within the blue/green bake time.
    assert alarm["period"] == 60 and alarm["period"] <= max(plan["bake_seconds"], 60)


def test_endpoint_latency_alarm_watches_model_latency_in_microseconds(run: StackRun) -> None:
    alarm = alarm_named(run, "endpoint-latency")
    assert (alarm["metricName"], alarm["statistic"], alarm["threshold"]) == (
        "ModelLatency",
        "Average",
        1_000_000,
    )


def test_api_server_errors_raise_an_alarm(run: StackRun) -> None:
    # The predict function answers endpoint failures (502-504) instead of failing: only the API's own
    # 5XXError metric counts them.
    alarm = alarm_named(run, "api-5xx")
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == (
        "AWS/ApiGateway",
        "5XXError",
        "Sum",
    )
    assert alarm["dimensions"] == {
        "ApiName": run.named("predict-api").outputs["name"],
        "Stage": run.named("predict-stage").inputs["stageName"],
    }


def test_every_alarm_notifies_the_alarm_topic_on_alarm_and_recovery(run: StackRun) -> None:
    alarms = run.of_type(ALARM)
    # Three dead-letter queues, errors and throttles of four functions, models not deployed, endpoint
    # errors and latency.
    assert len(alarms) == 15
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [alarm_topic(run)]
        assert alarm.inputs["okActions"] == [alarm_topic(run)]
        assert alarm.inputs["name"].startswith(f"serverless-ml-pipeline-{run.stack}-")


def test_only_this_stacks_alarms_may_publish_to_the_alarm_topic(run: StackRun) -> None:
    policy = run.named("monitoring-alarms-policy").json_input("policy")
    (publisher,) = allows(policy)
    assert publisher["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publisher["Resource"] == [alarm_topic(run)]
    assert publisher["Condition"] == {
        "StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID},
        "ArnLike": {
            "aws:SourceArn": f"arn:aws:cloudwatch:eu-west-1:{MOCK_ACCOUNT_ID}:alarm:"
            f"serverless-ml-pipeline-{run.stack}-*"
        },
    }
    assert denies_insecure_transport(policy, {alarm_topic(run)}, {"sns:Publish"})


def test_alarm_email_is_subscribed_only_when_configured() -> None:
    email = synth("prod").one("aws:sns/topicSubscription:TopicSubscription", protocol="email").inputs
    assert email["endpoint"] == config_for("prod")[f"{PROJECT}:alarmEmail"]
    assert email["topic"] == alarm_topic(synth("prod"))
    dev_subscriptions = synth("dev").of_type("aws:sns/topicSubscription:TopicSubscription")
    assert [s.inputs["protocol"] for s in dev_subscriptions] == ["sqs"]
