"""The tune function and its tuning-request queue in every stack: queue, queue policies, trigger, role,
environment."""

from __future__ import annotations

import pytest

from settings import load_settings
from tests.support.policies import denies_insecure_transport, granted, statements
from tests.support.stacks import STACKS, synth
from tools.mockrun import StackRun

QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


def queue_policy(run: StackRun, queue: str) -> dict:
    return run.one(QUEUE_POLICY, queueUrl=run.named(queue).outputs["url"]).json_input("policy")


def test_both_queues_are_encrypted_with_the_stack_key(run: StackRun) -> None:
    for name in ("tuning-requests-queue", "tuning-requests-dlq"):
        assert run.named(name).inputs["kmsMasterKeyId"] == run.named("ingest-key").outputs["arn"], name


def test_queue_redrives_to_its_dlq_after_the_configured_receives_and_only_it_may(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    assert run.named("tuning-requests-queue").json_input("redrivePolicy") == {
        "deadLetterTargetArn": run.named("tuning-requests-dlq").outputs["arn"],
        "maxReceiveCount": settings.queue.max_receive_count,
    }
    allowed = run.named("tuning-requests-dlq-redrive-allow").json_input("redriveAllowPolicy")
    assert allowed == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [run.named("tuning-requests-queue").outputs["arn"]],
    }


def test_queue_visibility_is_six_times_the_function_timeout(run: StackRun) -> None:
    # Shorter, and a batch still running reappears and is handled twice at once.
    timeout = run.named("tune-function").inputs["timeout"]
    assert run.named("tuning-requests-queue").inputs["visibilityTimeoutSeconds"] >= 6 * timeout


def test_only_the_transform_and_tune_roles_may_send_requests_over_tls(run: StackRun) -> None:
    policy = queue_policy(run, "tuning-requests-queue")
    queue = run.named("tuning-requests-queue").outputs["arn"]
    allows = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "AllowPipelineRolesToSend",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [queue],
            "Principal": {
                "AWS": [run.named("transform-role").outputs["arn"], run.named("tune-role").outputs["arn"]]
            },
        }
    ]
    assert denies_insecure_transport(policy, {queue}, {"sqs:*"})


def test_nobody_may_send_to_the_dead_letter_queue(run: StackRun) -> None:
    policy = queue_policy(run, "tuning-requests-dlq")
    assert [s for s in statements(policy) if s["Effect"] == "Allow"] == []
    assert denies_insecure_transport(policy, {run.named("tuning-requests-dlq").outputs["arn"]}, {"sqs:*"})


def test_trigger_reports_partial_batch_failures_from_the_tuning_queue(run: StackRun) -> None:
    trigger = run.named("tune-trigger").inputs
    assert trigger["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert trigger["eventSourceArn"] == run.named("tuning-requests-queue").outputs["arn"]
    assert trigger["functionName"] == run.named("tune-function").outputs["arn"]
    assert run.named("tune-role-policy").urn in run.named("tune-trigger").dependencies


def test_role_allows_exactly_what_the_function_and_its_trigger_use(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    role_policy = run.named("tune-role-policy")
    assert role_policy.inputs["role"] == run.named("tune-role").outputs["name"]
    bucket = run.named("ingest-data").outputs["arn"]
    queue = run.named("tuning-requests-queue").outputs["arn"]
    key = run.named("ingest-key").outputs["arn"]
    log_group = run.named("tune-logs").outputs["arn"]
    processed = f"{bucket}/processed/*"
    jobs = (
        f"arn:aws:sagemaker:{run.config['aws:region']}:123456789012:hyper-parameter-tuning-job/"
        f"{settings.tuning_job_prefix}-*"
    )
    assert granted(role_policy.json_input("policy")) == {
        ("s3:GetObject", processed),
        ("s3:ListBucket", bucket),
        ("s3:PutObject", processed),
        ("sqs:ReceiveMessage", queue),
        ("sqs:DeleteMessage", queue),
        ("sqs:GetQueueAttributes", queue),
        ("sqs:SendMessage", queue),
        ("kms:Decrypt", key),
        ("kms:GenerateDataKey", key),
        ("sagemaker:CreateHyperParameterTuningJob", jobs),
        ("sagemaker:AddTags", jobs),
        ("iam:PassRole", run.named("training-role").outputs["arn"]),
        ("logs:CreateLogStream", f"{log_group}:*"),
        ("logs:PutLogEvents", f"{log_group}:*"),
    } | (
        {("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*")}
        if settings.functions.tracing
        else set()
    )
    conditions = {s["Sid"]: s.get("Condition") for s in statements(role_policy.json_input("policy"))}
    assert conditions.pop("PassTrainingRole") == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }, "the training role may be passed to SageMaker only"
    assert set(conditions.values()) == {None}


def test_environment_is_every_variable_the_tune_code_reads(run: StackRun) -> None:
    from tune.environment import VARIABLES

    variables = run.named("tune-function").inputs["environment"]["variables"]
    assert variables.keys() - {"POWERTOOLS_SERVICE_NAME"} == set(VARIABLES)
    assert variables["TUNING_QUEUE_URL"] == run.named("tuning-requests-queue").outputs["url"]
    assert variables["DATA_BUCKET"] == run.named("ingest-data").outputs["bucket"]


def test_daily_budget_follows_config() -> None:
    for run, budget in ((synth("dev"), "4"), (synth("dev", tuningJobsPerDay="1"), "1")):
        assert run.named("tune-function").inputs["environment"]["variables"]["TUNING_JOBS_PER_DAY"] == budget


def test_stack_exports_the_tuning_queues_and_function(run: StackRun) -> None:
    assert run.outputs["tuning_queue_url"] == run.named("tuning-requests-queue").outputs["url"]
    assert run.outputs["tuning_dead_letter_queue_url"] == run.named("tuning-requests-dlq").outputs["url"]
    assert run.outputs["tune_function"] == run.named("tune-function").outputs["name"]
