"""The transform function of every stack: runtime, least-privilege role, logs, queue trigger, package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from settings import load_settings
from tests.support.policies import as_list, granted, statements
from tests.support.stacks import STACKS, synth
from tools.mockrun import PROJECT_DIR, StackRun


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


DATASET_VARIABLES = (
    "TARGET_COLUMN",
    "PROBLEM_TYPE",
    "VALIDATION_PERCENT",
    "MAX_REJECTED_ROWS_PERCENT",
    "MAX_CATEGORIES",
    "MIN_LABELED_ROWS",
    "PART_FILE_MB",
)


def function(run: StackRun) -> dict:
    return run.named("transform-function").inputs


def test_runs_on_a_supported_python_3_12_or_later(run: StackRun) -> None:
    major, minor = function(run)["runtime"].removeprefix("python").split(".")
    assert (int(major), int(minor)) >= (3, 12)


def test_uses_the_regional_powertools_layer_for_its_runtime_and_architecture(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    inputs = function(run)
    (layer,) = inputs["layers"]
    python = inputs["runtime"].replace(".", "")
    (architecture,) = inputs["architectures"]
    assert layer == (
        f"arn:aws:lambda:{settings.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python}-{architecture}:"
        f"{settings.functions.powertools_layer_version}"
    )


def test_layer_follows_region_runtime_and_architecture_from_config() -> None:
    run = synth("dev", **{"aws:region": "us-east-2"}, lambdaRuntime="python3.12", lambdaArchitecture="x86_64")
    assert function(run)["layers"] == [
        "arn:aws:lambda:us-east-2:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:27"
    ]


def test_logs_as_json_to_its_own_log_group_with_the_configured_retention(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    log_group = run.named("transform-logs")
    assert log_group.inputs["retentionInDays"] == settings.functions.log_retention_days
    logging = function(run)["loggingConfig"]
    assert logging["logGroup"] == log_group.outputs["name"]
    assert logging["logFormat"] == "JSON"
    assert logging["applicationLogLevel"] == settings.functions.log_level


def test_dev_and_prod_differ_in_retention_size_and_concurrency() -> None:
    dev, prod = synth("dev"), synth("prod")
    assert (
        dev.named("transform-logs").inputs["retentionInDays"]
        < prod.named("transform-logs").inputs["retentionInDays"]
    )
    assert function(dev)["memorySize"] < function(prod)["memorySize"]
    max_concurrency = [
        r.named("transform-trigger").inputs["scalingConfig"]["maximumConcurrency"] for r in (dev, prod)
    ]
    assert max_concurrency[0] < max_concurrency[1]


def test_trigger_reports_partial_batch_failures_from_the_upload_queue(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    trigger = run.named("transform-trigger").inputs
    assert trigger["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert trigger["eventSourceArn"] == run.named("ingest-queue").outputs["arn"]
    assert trigger["functionName"] == run.named("transform-function").outputs["arn"]
    assert trigger["batchSize"] == settings.transform.batch_size
    assert trigger["maximumBatchingWindowInSeconds"] == settings.transform.batching_window_seconds
    assert trigger["scalingConfig"] == {"maximumConcurrency": settings.transform.max_concurrency}


def test_trigger_and_function_wait_for_the_role_policy(run: StackRun) -> None:
    policy_urn = run.named("transform-role-policy").urn
    assert policy_urn in run.named("transform-trigger").dependencies
    assert policy_urn in run.named("transform-function").dependencies


def test_role_can_be_assumed_by_lambda_only(run: StackRun) -> None:
    (trust,) = statements(run.named("transform-role").json_input("assumeRolePolicy"))
    assert trust["Effect"] == "Allow"
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert as_list(trust["Action"]) == ["sts:AssumeRole"]
    assert run.named("transform-function").inputs["role"] == run.named("transform-role").outputs["arn"]


def test_role_allows_exactly_what_the_function_and_its_trigger_use(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    role_policy = run.named("transform-role-policy")
    assert role_policy.inputs["role"] == run.named("transform-role").outputs["name"]
    bucket = run.named("ingest-data").outputs["arn"]
    queue = run.named("ingest-queue").outputs["arn"]
    key = run.named("ingest-key").outputs["arn"]
    log_group = run.named("transform-logs").outputs["arn"]
    raw = f"{bucket}/{settings.data.raw_prefix}*"
    processed = f"{bucket}/processed/*"
    tuning_requests = run.named("tuning-requests-queue").outputs["arn"]
    assert granted(role_policy.json_input("policy")) == {
        ("s3:GetObject", raw),
        ("s3:GetObjectVersion", raw),
        ("s3:GetObject", processed),
        ("s3:ListBucket", bucket),
        ("s3:PutObject", processed),
        ("s3:PutObject", f"{bucket}/rejected/*"),
        ("s3:AbortMultipartUpload", processed),
        # It asks for tuning; the tune function starts the jobs and passes the training role.
        ("sqs:SendMessage", tuning_requests),
        ("sqs:ReceiveMessage", queue),
        ("sqs:DeleteMessage", queue),
        ("sqs:GetQueueAttributes", queue),
        ("kms:Decrypt", key),
        ("kms:GenerateDataKey", key),
        ("logs:CreateLogStream", f"{log_group}:*"),
        ("logs:PutLogEvents", f"{log_group}:*"),
    } | (
        {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
        if settings.functions.tracing
        else set()
    )
    conditions = {s["Sid"]: s.get("Condition") for s in statements(role_policy.json_input("policy"))}
    assert set(conditions.values()) == {None}
    assert all(s["Effect"] == "Allow" for s in statements(role_policy.json_input("policy")))


def test_environment_names_the_bucket_and_upload_filter(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    variables = function(run)["environment"]["variables"]
    assert variables["DATA_BUCKET"] == run.named("ingest-data").outputs["bucket"]
    assert (variables["RAW_PREFIX"], variables["RAW_SUFFIX"]) == (
        settings.data.raw_prefix,
        settings.data.raw_suffix,
    )


def test_environment_carries_the_stacks_dataset_settings(run: StackRun) -> None:
    dataset = load_settings(run.config, stack=run.stack).dataset
    variables = function(run)["environment"]["variables"]
    assert {key: variables[key] for key in DATASET_VARIABLES} == {
        "TARGET_COLUMN": dataset.target_column,
        "PROBLEM_TYPE": dataset.problem_type,
        "VALIDATION_PERCENT": str(dataset.validation_percent),
        "MAX_REJECTED_ROWS_PERCENT": str(dataset.max_rejected_rows_percent),
        "MAX_CATEGORIES": str(dataset.max_categories),
        "MIN_LABELED_ROWS": str(dataset.min_labeled_rows),
        "PART_FILE_MB": str(dataset.part_file_mb),
    }
    assert variables["MIN_LABELED_ROWS"] == "50"


def test_environment_is_every_variable_the_transform_code_reads(run: StackRun) -> None:
    from transform.environment import VARIABLES

    variables = function(run)["environment"]["variables"]
    assert variables.keys() - {"POWERTOOLS_SERVICE_NAME"} == set(VARIABLES)


def test_environment_names_the_tuning_queue_and_the_quiet_period(run: StackRun) -> None:
    variables = function(run)["environment"]["variables"]
    assert variables["TUNING_QUEUE_URL"] == run.named("tuning-requests-queue").outputs["url"]
    assert variables["TUNING_QUIET_SECONDS"] == "300"
    assert (
        synth("dev", tuningQuietSeconds="900")
        .named("transform-function")
        .inputs["environment"]["variables"]["TUNING_QUIET_SECONDS"]
        == "900"
    )


def test_min_labeled_rows_follows_config() -> None:
    run = synth("dev", minLabeledRows="200")
    assert function(run)["environment"]["variables"]["MIN_LABELED_ROWS"] == "200"


def test_uploaded_package_holds_a_handler_that_imports_and_answers_an_sqs_batch(tmp_path: Path) -> None:
    run = synth("dev")
    inputs = function(run)
    archive = PROJECT_DIR / inputs["code"]["path"]
    with zipfile.ZipFile(archive) as package:
        names = package.namelist()
        package.extractall(tmp_path)
    assert "transform/handler.py" in names and "shared/s3_events.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    module, function_name = inputs["handler"].rsplit(".", 1)
    probe = (
        "import importlib, json, sys\n"
        f"handler = getattr(importlib.import_module({module!r}), {function_name!r})\n"
        "class Context:\n"
        "    function_name = 'transform'; memory_limit_in_mb = 128; aws_request_id = 'r-1'\n"
        "    invoked_function_arn = 'arn:aws:lambda:eu-west-1:123456789012:function:transform'\n"
        "event = {'Records': [{'messageId': 'm-1', 'receiptHandle': 'h', 'body': 'not json',\n"
        "  'attributes': {},\n"
        "  'messageAttributes': {}, 'md5OfBody': '', 'eventSource': 'aws:sqs',\n"
        "  'eventSourceARN': 'arn:aws:sqs:eu-west-1:123456789012:q', 'awsRegion': 'eu-west-1'}]}\n"
        "try:\n"
        "    handler(event, Context())\n"
        "except Exception as error:\n"
        "    print(json.dumps({'raised': type(error).__name__, 'module': handler.__module__,\n"
        "                      'file': sys.modules[handler.__module__].__file__}))\n"
    )
    region = run.config["aws:region"]
    # Lambda sets the region variables in every function's environment.
    lambda_variables = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    env = {
        **os.environ,
        **inputs["environment"]["variables"],
        **lambda_variables,
        "PYTHONPATH": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n{probe}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    # A batch whose only record fails makes Powertools fail the whole invocation, so SQS redelivers it.
    assert outcome["raised"] == "BatchProcessingError"
    assert outcome["file"].startswith(str(tmp_path)), "the handler must come from the archive, not the tree"
