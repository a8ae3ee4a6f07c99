"""The SQS event source mapping's poller and the EventBridge router drive the rehearsal's functions as
Lambda and EventBridge do, against queues and rules in moto's server."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rehearsal.clock import TimeScale
from rehearsal.event_sources import EventRouter, QueuePoller
from rehearsal.lambda_service import FunctionSpec, LambdaService
from tests.support.lambda_events import sqs_record
from tests.support.stacks import synth

REGION = "eu-west-1"
ACCOUNT = "123456789012"
SCALE = TimeScale(30)
# What each message asks the consumer to do with it.
CONSUMER = """
import json, os, time
from pathlib import Path

def handler(event, context):
    started = time.time()
    records = event["Records"]
    outcomes = [json.loads(r["body"]).get("outcome", "ok") for r in records]
    time.sleep(max(json.loads(r["body"]).get("sleep", 0) for r in records))
    with Path(os.environ["SEEN"]).open("a") as seen:
        seen.write(json.dumps({"event": event, "started": started, "ended": time.time()}) + "\\n")
    if "raise" in outcomes:
        raise RuntimeError("the batch fails")
    if "bogus" in outcomes:
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    failed = [r["messageId"] for r, o in zip(records, outcomes) if o == "fail"]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
"""
TARGET = """
import json, os
from pathlib import Path

def handler(event, context):
    with Path(os.environ["SEEN"]).open("a") as seen:
        seen.write(json.dumps({"event": event}) + "\\n")
"""


@pytest.fixture
def aws(moto_url: str) -> Callable[[str], Any]:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=moto_url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return client


@pytest.fixture
def lambda_(tmp_path: Path) -> Iterator[LambdaService]:
    package = tmp_path / "functions.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("consumer.py", CONSUMER)
        archive.writestr("target.py", TARGET)

    def spec(name: str, handler: str) -> FunctionSpec:
        return FunctionSpec(
            name=name,
            arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            package=package,
            handler=handler,
            runtime="python3.13",
            environment={"SEEN": str(tmp_path / f"{name}.jsonl")},
            memory_mb=128,
            timeout_seconds=10,
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
            log_group=None,
        )

    service = LambdaService(
        [spec("consumer", "consumer.handler"), spec("target", "target.handler")],
        environment={},
        credentials=lambda spec: {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
        time_scale=SCALE,
        log_dir=tmp_path / "logs",
        destinations=lambda arn, record: pytest.fail(f"unexpected record for {arn}"),
    )
    yield service
    service.close()


def seen(lambda_: LambdaService, function: str) -> list[dict[str, Any]]:
    path = Path(lambda_.spec(function).environment["SEEN"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- the SQS event source mapping --------------------------------------------------------------------


def queue_with_dead_letters(
    sqs: Any, *, visibility_timeout: int = 30, max_receives: int = 2
) -> tuple[str, str, str]:
    """(url, ARN, dead-letter queue URL) of a queue whose redrive policy moves a message after
    `max_receives` receives."""
    dlq = sqs.create_queue(QueueName="source-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})
    url = sqs.create_queue(
        QueueName="source",
        Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": redrive},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq


def mapping(queue_arn: str, **settings: Any) -> dict[str, Any]:
    """The program's transform trigger's settings, with `settings` changed."""
    return {
        "functionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:consumer",
        "eventSourceArn": queue_arn,
        "batchSize": 10,
        "maximumBatchingWindowInSeconds": 0,
        "functionResponseTypes": ["ReportBatchItemFailures"],
        "scalingConfig": {"maximumConcurrency": 2},
        **settings,
    }


class AsTheFunctionsRole:
    """The SQS client Lambda's poller acts with, which holds the function role's session: it records
    each operation, so a test can check the poller needs no more than the role is documented to have."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.operations: set[str] = set()

    def __getattr__(self, operation: str) -> Any:
        self.operations.add(operation)
        return getattr(self._client, operation)


# with-sqs.html, "Execution role permissions": sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes.
ROLE_OPERATIONS = {"receive_message", "delete_message_batch", "get_queue_attributes"}


@pytest.fixture
def role_sqs(aws: Callable[[str], Any]) -> AsTheFunctionsRole:
    return AsTheFunctionsRole(aws("sqs"))


@pytest.fixture
def poll(
    aws: Callable[[str], Any], lambda_: LambdaService, role_sqs: AsTheFunctionsRole
) -> Iterator[Callable[..., QueuePoller]]:
    pollers: list[QueuePoller] = []

    def start(url: str, settings: dict[str, Any]) -> QueuePoller:
        poller = QueuePoller(
            settings,
            sqs=role_sqs,
            queue_url=url,
            lambda_=lambda_,
            time_scale=SCALE,
            region=REGION,
            housekeeping=aws("sqs"),
        )
        pollers.append(poller)
        poller.start()
        return poller

    yield start
    for poller in pollers:
        poller.stop()


def records(lambda_: LambdaService) -> list[dict[str, Any]]:
    return [record for invocation in seen(lambda_, "consumer") for record in invocation["event"]["Records"]]


def send(sqs: Any, url: str, *bodies: dict[str, Any]) -> list[str]:
    return [sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))["MessageId"] for body in bodies]


def test_a_batch_has_lambdas_sqs_event_shape_and_is_deleted_when_the_function_succeeds(
    aws: Callable[[str], Any], lambda_: LambdaService, poll: Callable[..., QueuePoller]
) -> None:
    sqs = aws("sqs")
    url, arn, dlq = queue_with_dead_letters(sqs)
    plain = send(sqs, url, {"n": 1})[0]
    attributed = sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"n": 2}),
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "upload"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )["MessageId"]
    poller = poll(url, mapping(arn))
    wait_for(lambda: len(records(lambda_)) == 2 and poller.idle())
    by_id = {record["messageId"]: record for record in records(lambda_)}
    documented = set(sqs_record("b", queue_arn=arn))
    assert set(by_id[plain]) == documented
    assert set(by_id[attributed]) == documented | {"md5OfMessageAttributes"}
    for record in by_id.values():
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
            "aws:sqs",
            arn,
            REGION,
        )
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert by_id[plain]["messageAttributes"] == {}
    assert by_id[attributed]["messageAttributes"] == {
        "kind": {
            "stringValue": "upload",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq)


def test_reported_failures_come_back_after_the_scaled_visibility_timeout_then_go_to_the_dead_letter_queue(
    aws: Callable[[str], Any],
    lambda_: LambdaService,
    poll: Callable[..., QueuePoller],
    role_sqs: AsTheFunctionsRole,
) -> None:
    sqs = aws("sqs")
    url, arn, dlq = queue_with_dead_letters(sqs, visibility_timeout=30, max_receives=2)
    first, failing, last = send(sqs, url, {"n": 1}, {"outcome": "fail"}, {"n": 3})
    poller = poll(url, mapping(arn))
    # The failed message is received twice, then moved to the dead-letter queue on the third receive.
    wait_for(lambda: poller.idle() and len(records(lambda_)) == 4)
    deliveries: dict[str, list[dict[str, Any]]] = {}
    for record in records(lambda_):
        deliveries.setdefault(record["messageId"], []).append(record)
    assert [len(deliveries[m]) for m in (first, failing, last)] == [1, 2, 1]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in deliveries[failing]] == ["1", "2"]
    tries = {
        r["attributes"]["ApproximateReceiveCount"]: invocation["started"]
        for invocation in seen(lambda_, "consumer")
        for r in invocation["event"]["Records"]
        if r["messageId"] == failing
    }
    # Back after the queue's 30 seconds, which the rehearsal passes in 1.
    assert SCALE.seconds(30) - 0.1 <= tries["2"] - tries["1"] < SCALE.seconds(30) + 3
    [dead] = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert dead["MessageId"] == failing
    # The role's three actions did Lambda's part; the visibility changes were the rehearsal's own.
    assert role_sqs.operations == ROLE_OPERATIONS


@pytest.mark.parametrize("outcome", ["raise", "bogus"], ids=["function error", "unknown item identifier"])
def test_a_function_error_or_an_invalid_response_fails_the_whole_batch(
    aws: Callable[[str], Any], lambda_: LambdaService, poll: Callable[..., QueuePoller], outcome: str
) -> None:
    sqs = aws("sqs")
    url, arn, dlq = queue_with_dead_letters(sqs, max_receives=1)
    [message] = send(sqs, url, {"outcome": outcome})
    poller = poll(url, mapping(arn))
    # Nothing is deleted: the message comes back, and its second receive moves it to the dead letters.
    wait_for(lambda: poller.idle() and len(records(lambda_)) == 1)
    assert {r["messageId"] for r in records(lambda_)} == {message}
    [dead] = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert dead["MessageId"] == message


def test_without_report_batch_item_failures_a_failure_list_is_ignored(
    aws: Callable[[str], Any], lambda_: LambdaService, poll: Callable[..., QueuePoller]
) -> None:
    sqs = aws("sqs")
    url, arn, dlq = queue_with_dead_letters(sqs)
    send(sqs, url, {"outcome": "fail"})
    poller = poll(url, mapping(arn, functionResponseTypes=[]))
    wait_for(lambda: poller.idle() and len(records(lambda_)) == 1)
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq)


def test_at_most_maximum_concurrency_batches_run_at_once(
    aws: Callable[[str], Any], lambda_: LambdaService, poll: Callable[..., QueuePoller]
) -> None:
    sqs = aws("sqs")
    url, arn, _ = queue_with_dead_letters(sqs)
    send(sqs, url, *({"sleep": 0.4} for _ in range(4)))
    poller = poll(url, mapping(arn, batchSize=1))
    wait_for(lambda: poller.idle() and len(records(lambda_)) == 4)
    invocations = seen(lambda_, "consumer")
    assert all(len(i["event"]["Records"]) == 1 for i in invocations)
    overlap = max(
        sum(1 for o in invocations if o["started"] <= i["started"] < o["ended"]) for i in invocations
    )
    assert overlap == 2


def test_a_partial_batch_waits_out_the_batching_window(
    aws: Callable[[str], Any], lambda_: LambdaService, poll: Callable[..., QueuePoller]
) -> None:
    sqs = aws("sqs")
    url, arn, _ = queue_with_dead_letters(sqs)
    sent = time.time()
    send(sqs, url, {"n": 1})
    poller = poll(url, mapping(arn, batchSize=3, maximumBatchingWindowInSeconds=30))
    wait_for(lambda: poller.idle() and len(records(lambda_)) == 1)
    # One message of three: the poller gathers for the window (30 s, 1 s here) before invoking.
    [invocation] = seen(lambda_, "consumer")
    assert SCALE.seconds(30) - 0.1 <= invocation["started"] - sent < SCALE.seconds(30) + 3


def test_a_batch_over_ten_needs_a_batching_window(
    aws: Callable[[str], Any], lambda_: LambdaService, poll: Callable[..., QueuePoller]
) -> None:
    sqs = aws("sqs")
    url, arn, _ = queue_with_dead_letters(sqs)
    with pytest.raises(ValueError, match="maximumBatchingWindowInSeconds"):
        QueuePoller(
            mapping(arn, batchSize=11),
            sqs=sqs,
            queue_url=url,
            lambda_=lambda_,
            time_scale=SCALE,
            region=REGION,
        )


# -- the EventBridge router ---------------------------------------------------------------------------

TUNING_FINISHED = "SageMaker HyperParameter Tuning Job State Change"


def tuning_event(job: str, status: str) -> dict[str, Any]:
    return {
        "source": "aws.sagemaker",
        "detail-type": TUNING_FINISHED,
        "detail": {"HyperParameterTuningJobName": job, "HyperParameterTuningJobStatus": status},
    }


@pytest.fixture
def router(aws: Callable[[str], Any], lambda_: LambdaService) -> EventRouter:
    return EventRouter(events=aws("events"), lambda_=lambda_, sqs=aws("sqs"), time_scale=SCALE)


def dead_letter_queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def rule_to(events: Any, name: str, pattern: str, target_arn: str, dlq_arn: str, **rule: Any) -> str:
    arn: str = events.put_rule(Name=name, EventPattern=pattern, **rule)["RuleArn"]
    events.put_targets(
        Rule=name,
        Targets=[
            {
                "Id": "target",
                "Arn": target_arn,
                "DeadLetterConfig": {"Arn": dlq_arn},
                "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
            }
        ],
    )
    return arn


def test_events_matching_the_programs_tuning_rule_reach_its_lambda_target(
    aws: Callable[[str], Any], lambda_: LambdaService, router: EventRouter
) -> None:
    events, sqs = aws("events"), aws("sqs")
    _, dlq_arn = dead_letter_queue(sqs)
    program = synth("dev")
    pattern = program.named("deploy-tuning-rule").inputs["eventPattern"]
    prefix = json.loads(pattern)["detail"]["HyperParameterTuningJobName"][0]["prefix"]
    target = lambda_.spec("target").arn
    rule_arn = rule_to(events, "deploy-tuning", pattern, target, dlq_arn)
    lambda_.add_permission("target", "events.amazonaws.com", rule_arn)
    # A disabled rule that would match everything from SageMaker delivers nothing.
    rule_to(events, "disabled", json.dumps({"source": ["aws.sagemaker"]}), target, dlq_arn, State="DISABLED")

    assert router.publish(tuning_event(f"{prefix}abc", "Completed")) == [target]
    assert router.publish(tuning_event(f"{prefix}abc", "InProgress")) == []
    assert router.publish(tuning_event("another-stack-abc", "Completed")) == []
    assert lambda_.wait_idle(10)
    [delivered] = seen(lambda_, "target")
    envelope = delivered["event"]
    assert envelope["detail"] == tuning_event(f"{prefix}abc", "Completed")["detail"]
    assert (envelope["source"], envelope["detail-type"]) == ("aws.sagemaker", TUNING_FINISHED)
    assert (envelope["account"], envelope["region"], envelope["version"], envelope["resources"]) == (
        ACCOUNT,
        REGION,
        "0",
        [],
    )
    assert envelope["id"] and envelope["time"].endswith("Z")


def test_a_lambda_target_without_permission_for_the_rule_gets_nothing_and_the_event_is_dead_lettered(
    aws: Callable[[str], Any], lambda_: LambdaService, router: EventRouter
) -> None:
    events, sqs = aws("events"), aws("sqs")
    dlq, dlq_arn = dead_letter_queue(sqs)
    target = lambda_.spec("target").arn
    permitted = rule_to(events, "permitted", json.dumps({"source": ["other.source"]}), target, dlq_arn)
    lambda_.add_permission("target", "events.amazonaws.com", permitted)
    unpermitted = rule_to(events, "unpermitted", json.dumps({"source": ["aws.sagemaker"]}), target, dlq_arn)

    assert router.publish(tuning_event("job", "Completed")) == []
    assert lambda_.wait_idle(10)
    assert seen(lambda_, "target") == []
    [dead] = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes.pop("ERROR_MESSAGE")
    assert attributes == {
        "RULE_ARN": unpermitted,
        "TARGET_ARN": target,
        "ERROR_CODE": "NO_PERMISSIONS",
        "RETRY_ATTEMPTS": "0",
    }
    assert json.loads(dead["Body"])["detail"] == tuning_event("job", "Completed")["detail"]


def test_a_target_function_that_does_not_exist_is_dead_lettered(
    aws: Callable[[str], Any], router: EventRouter
) -> None:
    events, sqs = aws("events"), aws("sqs")
    dlq, dlq_arn = dead_letter_queue(sqs)
    missing = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:deleted"
    rule_to(events, "stale", json.dumps({"source": ["aws.sagemaker"]}), missing, dlq_arn)
    assert router.publish(tuning_event("job", "Completed")) == []
    [dead] = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert dead["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "NO_RESOURCE"


def test_a_queue_target_gets_the_event_as_its_message(aws: Callable[[str], Any], router: EventRouter) -> None:
    events, sqs = aws("events"), aws("sqs")
    _, dlq_arn = dead_letter_queue(sqs)
    url = sqs.create_queue(QueueName="events-copy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule_to(events, "copy", json.dumps({"source": ["aws.sagemaker"]}), arn, dlq_arn)
    assert router.publish(tuning_event("job", "Failed")) == [arn]
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert json.loads(message["Body"])["detail"]["HyperParameterTuningJobStatus"] == "Failed"


def test_moto_cannot_test_event_patterns_which_is_why_the_router_matches_with_motos_matcher(
    aws: Callable[[str], Any],
) -> None:
    # moto 5.2.5 answers TestEventPattern with an empty body (events/responses.py). Once it answers, the
    # router should ask the real API instead.
    answer = aws("events").test_event_pattern(
        EventPattern=json.dumps({"source": ["aws.sagemaker"]}),
        Event=json.dumps({**tuning_event("job", "Completed"), "id": "1", "account": ACCOUNT, "time": "t"}),
    )
    assert "Result" not in answer
