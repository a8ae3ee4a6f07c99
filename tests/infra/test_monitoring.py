"""Alarms of every stack: what they watch, where they go, who may publish there."""

from __future__ import annotations

import pytest

from tests.support.policies import allows, denies_insecure_transport
from tests.support.stacks import STACKS, synth
from tools.mockrun import MOCK_ACCOUNT_ID, StackRun

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


def alarm_topic(run: StackRun) -> str:
    return run.named("monitoring-alarms").outputs["arn"]


def test_alarm_topic_is_encrypted_with_the_stack_key(run: StackRun) -> None:
    assert run.named("monitoring-alarms").inputs["kmsMasterKeyId"] == run.named("ingest-key").outputs["arn"]


def test_dead_letters_raise_an_alarm(run: StackRun) -> None:
    alarm = run.one(ALARM, metricName="ApproximateNumberOfMessagesVisible").inputs
    assert alarm["dimensions"] == {"QueueName": run.named("ingest-dlq").outputs["name"]}
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_transform_errors_and_throttles_raise_alarms(run: StackRun, metric: str) -> None:
    alarm = run.one(ALARM, metricName=metric).inputs
    assert alarm["dimensions"] == {"FunctionName": run.named("transform-function").outputs["name"]}
    assert alarm["statistic"] == "Sum"


def test_every_alarm_notifies_the_alarm_topic_on_alarm_and_recovery(run: StackRun) -> None:
    alarms = run.of_type(ALARM)
    assert len(alarms) == 3
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
    assert email["endpoint"] == "ml-platform-oncall@example.com"
    assert email["topic"] == alarm_topic(synth("prod"))
    dev_subscriptions = synth("dev").of_type("aws:sns/topicSubscription:TopicSubscription")
    assert [s.inputs["protocol"] for s in dev_subscriptions] == ["sqs"]
