"""The rehearsal's Lambda service runs functions as Lambda does: from the deployment zip, in warm
environments that only the zip and site-packages are importable in, with Lambda's variables, context,
error documents, timeouts, and asynchronous retries ending in an invocation record on a queue."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.packaging import build_package
from rehearsal.clock import TimeScale
from rehearsal.lambda_service import (
    AsyncConfig,
    FunctionNotFound,
    FunctionSpec,
    LambdaService,
    RequestTooLarge,
)
from tests.support.lambda_events import sqs_record
from tests.support.stacks import synth
from tools.mockrun import PROJECT_DIR, Resource

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIAFUNCTIONROLE",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_SESSION_TOKEN": "t",
}
ENDPOINTS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}

APP = """
import importlib, os, sys, time
from pathlib import Path

invocations = 0

def handler(event, context):
    global invocations
    invocations += 1
    print(f"to stdout {invocations}")
    print(f"to stderr {invocations}", file=sys.stderr)
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "raise":
        raise KeyError(event["key"])
    elif action == "exit":
        os._exit(event["status"])
    elif action == "fail_first":
        marker = Path(event["marker"])
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("first attempt fails")
    return {
        "pid": os.getpid(),
        "invocations": invocations,
        "path": sys.path,
        "cwd": os.getcwd(),
        "environment": dict(os.environ),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }
"""
# A module that needs the repository, which the package does not hold (nor the worker's path).
BROKEN = "import components.packaging\n\ndef handler(event, context):\n    return 'unreachable'\n"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("package") / "app.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", APP)
        archive.writestr("broken.py", BROKEN)
    return path


def function(package: Path, name: str = "app", **changes: Any) -> FunctionSpec:
    spec = FunctionSpec(
        name=name,
        arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        package=package,
        handler="app.handler",
        runtime="python3.13",
        environment={"OWN_SETTING": "from the function"},
        memory_mb=256,
        timeout_seconds=5,
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/{name}-role",
        log_group=f"{name}-logs",
    )
    return replace(spec, **changes)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., LambdaService]]:
    started: list[LambdaService] = []

    def start(*functions: FunctionSpec, **options: Any) -> LambdaService:
        options.setdefault("time_scale", TimeScale(120))
        options.setdefault("destinations", lambda arn, record: pytest.fail(f"unexpected record for {arn}"))
        lambda_ = LambdaService(
            functions,
            environment=ENDPOINTS,
            credentials=lambda spec: CREDENTIALS,
            log_dir=tmp_path / "logs",
            **options,
        )
        started.append(lambda_)
        return lambda_

    yield start
    for lambda_ in started:
        lambda_.close()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_environment_stays_warm_between_invocations(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package))
    first, second = lambda_.invoke("app", {}), lambda_.invoke("app", {})
    assert first.ok and second.ok
    assert second.payload["pid"] == first.payload["pid"]
    assert (first.payload["invocations"], second.payload["invocations"]) == (1, 2)
    assert lambda_.environments("app") == 1


def test_concurrent_invocations_get_environments_of_their_own_up_to_the_limit(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package), concurrency_limit=2)
    answers: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(lambda_.invoke("app", {"action": "sleep", "seconds": 0.4}))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer.ok for answer in answers)
    assert len({answer.payload["pid"] for answer in answers}) == 2
    assert lambda_.environments("app") == 2


def test_an_invocation_past_its_timeout_is_killed_and_the_next_gets_a_new_environment(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package, timeout_seconds=1))
    warm = lambda_.invoke("app", {})
    started = time.monotonic()
    timed_out = lambda_.invoke("app", {"action": "sleep", "seconds": 30})
    assert time.monotonic() - started < 5
    assert timed_out.error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {timed_out.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert _gone(warm.payload["pid"])
    after = lambda_.invoke("app", {})
    assert after.payload["pid"] != warm.payload["pid"]
    assert after.payload["invocations"] == 1  # a new environment imports the handler afresh


def test_a_crash_answers_runtime_exit_error_and_the_next_invocation_gets_a_new_environment(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package))
    warm = lambda_.invoke("app", {})
    crashed = lambda_.invoke("app", {"action": "exit", "status": 7})
    assert crashed.error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {crashed.request_id} Error: Runtime exited with error: exit status 7",
    }
    after = lambda_.invoke("app", {})
    assert after.ok and after.payload["pid"] != warm.payload["pid"]


def test_an_unhandled_exception_answers_the_python_runtimes_error_document(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package))
    warm = lambda_.invoke("app", {})
    failed = lambda_.invoke("app", {"action": "raise", "key": "missing"})
    assert failed.error is not None
    assert set(failed.error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert (failed.error["errorMessage"], failed.error["errorType"]) == ("'missing'", "KeyError")
    assert failed.error["requestId"] == failed.request_id
    # The trace starts in the function's code: the runtime's own frames are left out.
    assert len(failed.error["stackTrace"]) == 1
    assert re.match(r'  File ".*/app\.py", line \d+, in handler\n', failed.error["stackTrace"][0])
    # A function error leaves the environment warm.
    assert lambda_.invoke("app", {}).payload["pid"] == warm.payload["pid"]


def test_a_module_missing_from_the_package_fails_init_even_if_the_repository_has_it(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    import components.packaging  # noqa: F401 - importable here, so only the worker's isolation fails it

    lambda_ = service(function(package, handler="broken.handler"))
    failed = lambda_.invoke("app", {})
    assert failed.error == {
        "errorMessage": "Unable to import module 'broken': No module named 'components'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    # Init is tried again, in a new environment, on the next invocation.
    assert lambda_.invoke("app", {}).error == failed.error


def test_only_the_package_and_site_packages_are_importable(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package))
    answer = lambda_.invoke("app", {})
    task_root = answer.payload["environment"]["LAMBDA_TASK_ROOT"]
    assert answer.payload["path"][0] == task_root == answer.payload["cwd"]
    repository = str(PROJECT_DIR)
    venv = sys.prefix
    outside = [p for p in answer.payload["path"][1:] if p.startswith(repository) and not p.startswith(venv)]
    assert outside == []


def test_the_environment_is_the_functions_variables_and_lambdas_and_nothing_of_the_parent(
    package: Path, service: Callable[..., LambdaService], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARENT_ONLY_SECRET", "must not reach the function")
    spec = function(package)
    answer = service(spec).invoke("app", {})
    environment = answer.payload["environment"]
    task_root = environment["LAMBDA_TASK_ROOT"]
    stream = environment["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", stream)
    expected = {
        "OWN_SETTING": "from the function",
        "AWS_ENDPOINT_URL": ENDPOINTS["AWS_ENDPOINT_URL"],
        "_HANDLER": "app.handler",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": "app",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "app-logs",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_ACCESS_KEY": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        **CREDENTIALS,
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": environment["LAMBDA_RUNTIME_DIR"],
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": environment["PATH"],
    }
    # CPython itself sets LC_CTYPE at start-up when it coerces a C locale (PEP 538).
    environment.pop("LC_CTYPE", None)
    assert environment == expected
    assert Path(environment["LAMBDA_RUNTIME_DIR"], "bootstrap.py").is_file()
    context = answer.payload["context"]
    assert context == {
        "function_name": "app",
        "function_version": "$LATEST",
        "invoked_function_arn": spec.arn,
        "memory_limit_in_mb": "256",  # a string, as the Python runtime gives it
        "aws_request_id": answer.request_id,
        "log_group_name": "app-logs",
        "log_stream_name": stream,
        "remaining_ms": context["remaining_ms"],
    }
    assert 0 < context["remaining_ms"] <= spec.timeout_seconds * 1000


def test_staged_faults_fail_the_next_invocations_and_every_invocation_is_recorded(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package))
    lambda_.fail_next("app", times=2)
    first, second, third = (lambda_.invoke("app", {"n": n}) for n in range(3))
    for failed in (first, second):
        assert failed.error is not None
        assert (failed.error["errorType"], failed.error["requestId"]) == ("InjectedFault", failed.request_id)
    # The handler ran only the third time, in the environment the faults left warm.
    assert third.ok and third.payload["invocations"] == 1
    assert [(i.request_id, i.event, i.ok) for i in lambda_.invocations("app")] == [
        (first.request_id, {"n": 0}, False),
        (second.request_id, {"n": 1}, False),
        (third.request_id, {"n": 2}, True),
    ]
    lambda_.fail_next("app", times=None)
    assert not any(lambda_.invoke("app", {}).ok for _ in range(3))
    lambda_.fail_next("app", times=0)
    assert lambda_.invoke("app", {}).ok


def test_a_function_may_not_set_variables_lambda_reserves(package: Path) -> None:
    with pytest.raises(ValueError, match="AWS_REGION"):
        function(package, environment={"AWS_REGION": "us-east-1"})


def test_output_and_platform_lines_go_to_the_functions_log(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package))
    answer = lambda_.invoke("app", {})
    lines = lambda_.log_path("app").read_text().splitlines()
    assert lambda_.log_path("app").name == "app.log"
    assert f"START RequestId: {answer.request_id} Version: $LATEST" in lines
    assert "to stdout 1" in lines and "to stderr 1" in lines
    assert f"END RequestId: {answer.request_id}" in lines
    assert any(line.startswith(f"REPORT RequestId: {answer.request_id}\tDuration: ") for line in lines)


def test_unknown_functions_and_oversized_events_are_refused(
    package: Path, service: Callable[..., LambdaService]
) -> None:
    lambda_ = service(function(package))
    assert lambda_.invoke(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:app:$LATEST", {}).ok
    assert lambda_.invoke(f"{ACCOUNT}:function:app", {}).ok
    for name in ("other", f"arn:aws:lambda:{REGION}:999999999999:function:app", "app:3"):
        with pytest.raises(FunctionNotFound):
            lambda_.invoke(name, {})
    with pytest.raises(RequestTooLarge, match="RequestResponse invocation type"):
        lambda_.invoke("app", {"data": "x" * (6 * 1024 * 1024)})
    with pytest.raises(RequestTooLarge, match="Event invocation type"):
        lambda_.invoke_async("app", {"data": "x" * (1024 * 1024)})


def test_the_programs_function_and_async_config_read_from_its_resources() -> None:
    run = synth("dev")
    transform = FunctionSpec.from_resource(run.named("transform-function"), project_dir=PROJECT_DIR)
    inputs = run.named("transform-function").inputs
    assert transform.name == run.named("transform-function").outputs["name"]
    assert transform.package == PROJECT_DIR / ".build" / "transform.zip"
    assert (transform.handler, transform.memory_mb, transform.timeout_seconds) == (
        "transform.handler.lambda_handler",
        1024,
        900,
    )
    assert transform.environment == inputs["environment"]["variables"]
    assert (transform.log_group, transform.log_format) == (inputs["loggingConfig"]["logGroup"], "JSON")
    deploy = AsyncConfig.from_resource(run.named("deploy-async"))
    dlq = run.named("deploy-dlq").outputs["arn"]
    assert deploy == AsyncConfig(maximum_retry_attempts=2, maximum_event_age_seconds=21600, on_failure=dlq)
    bare = Resource(
        urn="u", type=run.named("deploy-async").type, name="bare", parent="", custom=True, inputs={}
    )
    assert AsyncConfig.from_resource(bare) == AsyncConfig(2, 21600, None, None)


def test_the_real_transform_package_imports_and_answers_partial_batch_failures(
    tmp_path: Path, service: Callable[..., LambdaService]
) -> None:
    resource = synth("dev").named("transform-function")
    spec = FunctionSpec.from_resource(resource, project_dir=PROJECT_DIR)
    spec = replace(spec, package=build_package("transform", build_dir=tmp_path / "build"), timeout_seconds=60)
    lambda_ = service(spec)
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ingest"
    test_event = sqs_record(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}), queue_arn=queue)
    garbage = sqs_record("not a notification", queue_arn=queue)
    answer = lambda_.invoke(spec.name, {"Records": [test_event, garbage]})
    assert answer.error is None, answer.error
    assert answer.payload == {"batchItemFailures": [{"itemIdentifier": garbage["messageId"]}]}
    # JSON log format with system logs at WARN: every line is a JSON record, Powertools' among them,
    # stamped with the invocation by inject_lambda_context.
    records = [json.loads(line) for line in lambda_.log_path(spec.name).read_text().splitlines()]
    skipped = [r for r in records if r.get("message") == "s3:TestEvent skipped"]
    assert len(skipped) == 1
    assert skipped[0]["function_request_id"] == answer.request_id
    assert skipped[0]["function_name"] == spec.name
    assert skipped[0]["function_arn"] == spec.arn


# -- asynchronous invocation, with the record landing in a queue of moto's -------------------------------


@pytest.fixture
def sqs(moto_url: str) -> Any:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    return boto3.client(
        "sqs",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def send_to_queue(sqs: Any) -> Callable[[str, dict[str, Any]], None]:
    """Lambda's SQS destination: the record is the message (invocation-async-retain-records.html)."""

    def deliver(arn: str, record: dict[str, Any]) -> None:
        _, _, _, _, account, name = arn.split(":")
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    return deliver


def records_on(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_a_failing_async_event_is_retried_after_lambdas_waits_then_recorded_on_the_failure_queue(
    package: Path, service: Callable[..., LambdaService], sqs: Any
) -> None:
    url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    failures = f"arn:aws:sqs:{REGION}:{ACCOUNT}:failures"
    scale = TimeScale(120)
    lambda_ = service(function(package), destinations=send_to_queue(sqs), time_scale=scale)
    lambda_.configure_async("app", AsyncConfig(on_failure=failures))
    event = {"action": "raise", "key": "missing"}
    started = time.monotonic()
    request_id = lambda_.invoke_async("app", event)
    assert lambda_.wait_idle(20)
    # One minute, then two, between the three attempts.
    assert time.monotonic() - started >= scale.seconds(60 + 120)
    [record] = records_on(sqs, url)
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:app:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == event
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert (record["responsePayload"]["errorType"], record["responsePayload"]["errorMessage"]) == (
        "KeyError",
        "'missing'",
    )
    starts = [line for line in lambda_.log_path("app").read_text().splitlines() if line.startswith("START")]
    assert starts == [f"START RequestId: {request_id} Version: $LATEST"] * 3


def test_an_async_event_older_than_its_maximum_age_is_not_retried(
    package: Path, service: Callable[..., LambdaService], sqs: Any
) -> None:
    url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    lambda_ = service(function(package), destinations=send_to_queue(sqs))
    failures = f"arn:aws:sqs:{REGION}:{ACCOUNT}:failures"
    # The retry would come a minute after the first attempt, past the event's minute of age.
    lambda_.configure_async("app", AsyncConfig(maximum_event_age_seconds=60, on_failure=failures))
    lambda_.invoke_async("app", {"action": "raise", "key": "k"})
    assert lambda_.wait_idle(20)
    [record] = records_on(sqs, url)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1


def test_an_async_event_that_succeeds_on_a_retry_goes_to_the_success_destination_only(
    package: Path, service: Callable[..., LambdaService], sqs: Any, tmp_path: Path
) -> None:
    successes = sqs.create_queue(QueueName="successes")["QueueUrl"]
    failures = sqs.create_queue(QueueName="failures")["QueueUrl"]
    lambda_ = service(function(package), destinations=send_to_queue(sqs))
    lambda_.configure_async(
        "app",
        AsyncConfig(
            on_failure=f"arn:aws:sqs:{REGION}:{ACCOUNT}:failures",
            on_success=f"arn:aws:sqs:{REGION}:{ACCOUNT}:successes",
        ),
    )
    lambda_.invoke_async("app", {"action": "fail_first", "marker": str(tmp_path / "marker")})
    assert lambda_.wait_idle(20)
    assert records_on(sqs, failures) == []
    [record] = records_on(sqs, successes)
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"]["invocations"] == 2
