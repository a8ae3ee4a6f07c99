"""Model deployment of every stack: the rules that invoke the deploy function and nothing else, where failed
events end, the roles, the serving plan, and the cleanup that runs at `pulumi destroy`."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from moto.events.models import EventPattern

from deploy.environment import load_environment
from deploy.events import Lifecycle, parse_event
from rehearsal.iam_policy import Policy
from settings import PROJECT, load_settings
from tests.support.policies import allows, denies_insecure_transport, statement, statements
from tests.support.stacks import STACKS, config_for, synth
from tools.mockrun import PROJECT_DIR, StackRun, run_program

EVENTS = PROJECT_DIR / "tests" / "functions" / "events"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
PERMISSION = "aws:lambda/permission:Permission"
# Lambda API reference, CreateFunction FunctionName; SageMaker API reference, CreateEndpoint EndpointName.
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


def function(run: StackRun) -> dict[str, Any]:
    return run.named("deploy-function").inputs


def environment(run: StackRun) -> dict[str, str]:
    return function(run)["environment"]["variables"]


RULES = ("tuning", "transform", "endpoint")


def prefix(run: StackRun) -> str:
    return load_settings(run.config, stack=run.stack).tuning_job_prefix


def matches(run: StackRun, rule: str, event: dict[str, Any]) -> bool:
    return EventPattern.load(run.named(rule).inputs["eventPattern"]).matches_event(event)


def tuning_event(job: str, status: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "sagemaker-tuning-job-state-change.json").read_text())
    event["detail"].update(HyperParameterTuningJobName=job, HyperParameterTuningJobStatus=status)
    return dict(event)


def endpoint_event(name: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "sagemaker-endpoint-state-change.json").read_text())
    event["detail"]["EndpointName"] = name
    return dict(event)


# ----------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_tuning_rule_takes_this_stacks_finished_jobs(run: StackRun, status: str) -> None:
    assert matches(run, "deploy-tuning-rule", tuning_event(f"{prefix(run)}-0123456789abcdef0123456", status))


@pytest.mark.parametrize(
    ("job", "status"),
    [
        ("{prefix}-0123456789abcdef0123456", "InProgress"),
        ("{prefix}-0123456789abcdef0123456", "Stopping"),
        ("other-0000-0123456789abcdef01234", "Completed"),
        # Shares the letters but not the whole prefix: another stack of the same name start.
        ("{prefix}0-0123456789abcdef012345", "Completed"),
    ],
)
def test_tuning_rule_ignores_running_jobs_and_other_stacks(run: StackRun, job: str, status: str) -> None:
    assert not matches(run, "deploy-tuning-rule", tuning_event(job.format(prefix=prefix(run)), status))


def transform_event(job: str, status: str) -> dict[str, Any]:
    """A transform job's state change as the local SageMaker sends it (the events SageMaker publishes for
    the EventBridge schema aws.sagemaker@SageMakerTransformJobStateChange)."""
    return {
        "version": "0",
        "id": "3f9a5b6e-0000-4000-8000-000000000000",
        "detail-type": "SageMaker Transform Job State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-01T12:00:00Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:sagemaker:eu-west-1:123456789012:transform-job/{job}"],
        "detail": {"TransformJobName": job, "TransformJobStatus": status},
    }


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_transform_rule_takes_this_stacks_finished_contest_jobs(run: StackRun, status: str) -> None:
    job = f"{prefix(run)}-0123456789abcdef0123456-challenger"
    assert matches(run, "deploy-transform-rule", transform_event(job, status))
    assert not matches(run, "deploy-tuning-rule", transform_event(job, status))


@pytest.mark.parametrize(
    ("job", "status"),
    [
        ("{prefix}-0123456789abcdef0123456-challenger", "InProgress"),
        ("{prefix}-0123456789abcdef0123456-challenger", "Stopping"),
        ("other-0000-0123456789abcdef01234-challenger", "Completed"),
    ],
)
def test_transform_rule_ignores_running_jobs_and_other_stacks(run: StackRun, job: str, status: str) -> None:
    assert not matches(run, "deploy-transform-rule", transform_event(job.format(prefix=prefix(run)), status))


def test_endpoint_rule_takes_only_this_stacks_endpoint(run: StackRun) -> None:
    plan = json.loads(environment(run)["SERVING_PLAN"])
    assert matches(run, "deploy-endpoint-rule", endpoint_event(plan["endpoint_name"]))
    assert not matches(run, "deploy-endpoint-rule", endpoint_event(plan["endpoint_name"] + "-2"))
    assert not matches(run, "deploy-tuning-rule", endpoint_event(plan["endpoint_name"]))


@pytest.mark.parametrize("kind", RULES)
def test_each_rule_targets_the_function_with_retries_and_the_dead_letter_queue(
    run: StackRun, kind: str
) -> None:
    rule = run.named(f"deploy-{kind}-rule")
    target = run.named(f"deploy-{kind}-target").inputs
    assert target["rule"] == rule.outputs["name"]
    assert target["arn"] == run.named("deploy-function").outputs["arn"]
    # EventBridge API reference, RetryPolicy: 0-185 attempts, 60-86,400 seconds.
    assert 0 < target["retryPolicy"]["maximumRetryAttempts"] <= 185
    assert 60 <= target["retryPolicy"]["maximumEventAgeInSeconds"] <= 86_400
    assert target["deadLetterConfig"]["arn"] == run.named("deploy-dlq").outputs["arn"]


def test_function_may_be_invoked_only_by_its_three_rules(run: StackRun) -> None:
    name = run.named("deploy-function").outputs["name"]
    permissions = [p.inputs for p in run.of_type(PERMISSION) if p.inputs["function"] == name]
    rules = {run.named(f"deploy-{kind}-rule").outputs["arn"] for kind in RULES}
    assert {p["sourceArn"] for p in permissions} == rules and len(permissions) == len(RULES)
    for permission in permissions:
        assert (permission["principal"], permission["action"]) == (
            "events.amazonaws.com",
            "lambda:InvokeFunction",
        )


# --------------------------------------------------------------------------------------- failed events


def test_events_the_function_failed_on_go_to_the_dead_letter_queue_after_two_retries(run: StackRun) -> None:
    config = run.named("deploy-async").inputs
    assert config["functionName"] == run.named("deploy-function").outputs["name"]
    # Lambda API reference, PutFunctionEventInvokeConfig: at most 2 retries, 60-21,600 seconds.
    assert config["maximumRetryAttempts"] == 2
    assert 60 <= config["maximumEventAgeInSeconds"] <= 21_600
    assert config["destinationConfig"]["onFailure"]["destination"] == run.named("deploy-dlq").outputs["arn"]


def test_dead_letter_queue_is_encrypted_keeps_14_days_and_takes_only_the_rules_events(run: StackRun) -> None:
    queue = run.named("deploy-dlq")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    policy = run.named("deploy-dlq-policy").json_input("policy")
    (sender,) = allows(policy)
    assert sender["Principal"] == {"Service": "events.amazonaws.com"}
    assert sender["Action"] == ["sqs:SendMessage"]
    assert sender["Resource"] == [queue.outputs["arn"]]
    rules = [run.named(f"deploy-{kind}-rule").outputs["arn"] for kind in RULES]
    assert sender["Condition"] == {"ArnEquals": {"aws:SourceArn": rules}}
    assert denies_insecure_transport(policy, {queue.outputs["arn"]}, {"sqs:SendMessage"})


# ----------------------------------------------------------------------------------------------- roles


def deploy_policy(run: StackRun) -> dict[str, Any]:
    return dict(run.named("deploy-role-policy").json_input("policy"))


def model_policy(run: StackRun) -> dict[str, Any]:
    return dict(run.named("deploy-model-role-policy").json_input("policy"))


def test_deploy_role_is_for_lambda_and_model_role_for_sagemaker(run: StackRun) -> None:
    for role, principal in (
        ("deploy-role", "lambda.amazonaws.com"),
        ("deploy-model-role", "sagemaker.amazonaws.com"),
    ):
        (trust,) = statements(run.named(role).json_input("assumeRolePolicy"))
        assert trust["Principal"] == {"Service": principal}


def test_deploy_role_passes_only_the_model_role_and_only_to_sagemaker(run: StackRun) -> None:
    passing = [s for s in statements(deploy_policy(run)) if "iam:PassRole" in s["Action"]]
    assert passing == [statement(deploy_policy(run), "PassModelRole")]
    assert passing[0]["Resource"] == [run.named("deploy-model-role").outputs["arn"]]
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_champion_is_also_kept_in_ssm_only_where_config_says() -> None:
    dev, prod = synth("dev"), synth("prod")
    parameter = dev.named("deploy-champion").inputs
    assert (
        parameter["name"] == f"/serverless-ml-pipeline/{prefix(dev)}/champion"
        and parameter["type"] == "String"
    )
    assert json.loads(environment(dev)["SERVING_PLAN"])["champion_parameter"] == parameter["name"]
    keep = statement(deploy_policy(dev), "KeepChampionRecord")
    assert keep["Action"] == ["ssm:GetParameter", "ssm:PutParameter"]
    assert keep["Resource"] == [f"arn:aws:ssm:eu-west-1:123456789012:parameter{parameter['name']}"]
    # Prod keeps it in the serving config's tags only: no parameter, no grant.
    assert not prod.of_type("aws:ssm/parameter:Parameter")
    assert json.loads(environment(prod)["SERVING_PLAN"])["champion_parameter"] == ""
    assert "KeepChampionRecord" not in {s["Sid"] for s in statements(deploy_policy(prod))}


def test_deploy_role_grants_on_any_resource_only_what_has_no_resource_type(run: StackRun) -> None:
    wide = {s["Sid"]: s for s in statements(deploy_policy(run)) if "*" in s["Resource"]}
    traced = load_settings(run.config, stack=run.stack).functions.tracing
    assert set(wide) == {"FindStackResources", "ScaleEndpoint"} | ({"SendTraces"} if traced else set())
    # X-Ray's trace uploads have no resource type (Service Authorization Reference, AWS X-Ray).
    if traced:
        assert sorted(wide["SendTraces"]["Action"]) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    assert all(action.startswith("sagemaker:List") for action in wide["FindStackResources"]["Action"])
    # Scalable targets get an ARN only once registered: limited to SageMaker variant instance counts.
    assert wide["ScaleEndpoint"]["Condition"] == {
        "StringEquals": {
            "application-autoscaling:service-namespace": "sagemaker",
            "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
        }
    }


def test_deploy_role_touches_only_this_stacks_sagemaker_resources(run: StackRun) -> None:
    policy = Policy.parse(deploy_policy(run))
    stack, plan = prefix(run), json.loads(environment(run)["SERVING_PLAN"])
    own = f"arn:aws:sagemaker:eu-west-1:123456789012:model/{stack}-0123-003-1a2b3c4d"
    other = "arn:aws:sagemaker:eu-west-1:123456789012:model/someone-elses-model"
    assert policy.allows("sagemaker:DeleteModel", own, {})
    assert not policy.allows("sagemaker:DeleteModel", other, {})
    endpoint = f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/{plan['endpoint_name']}"
    assert policy.allows("sagemaker:DeleteEndpoint", endpoint, {})
    assert not policy.allows("sagemaker:DeleteEndpoint", endpoint + "-2", {})


def test_model_role_reads_models_and_writes_captures_only_when_capturing(run: StackRun) -> None:
    policy = model_policy(run)
    bucket = run.named("ingest-data").outputs["arn"]
    assert statement(policy, "ReadModelArtifacts")["Resource"] == [f"{bucket}/models/*"]
    plan = json.loads(environment(run)["SERVING_PLAN"])
    capturing = plan["mode"] == "instances" and plan["capture_percent"] > 0
    sids = {s["Sid"] for s in statements(policy)}
    assert ("WriteCapturedData" in sids) is capturing
    if capturing:
        assert statement(policy, "WriteCapturedData")["Resource"] == [f"{bucket}/capture/*"]


# --------------------------------------------------------------------------------------- the function


def test_function_has_a_fixed_valid_name_and_the_stacks_serving_plan(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    name = run.named("deploy-function").outputs["name"]
    assert FUNCTION_NAME.fullmatch(name) and name == function(run)["name"]
    loaded = load_environment(environment(run))
    assert loaded.plan.endpoint_name == settings.endpoint_name and ENDPOINT_NAME.fullmatch(
        settings.endpoint_name
    )
    assert loaded.plan.mode == settings.endpoint.mode
    assert loaded.plan.model_role_arn == run.named("deploy-model-role").outputs["arn"]
    assert loaded.plan.rollback_alarm == f"serverless-ml-pipeline-{run.stack}-endpoint-errors"
    assert loaded.tuning_job_prefix == settings.tuning_job_prefix
    assert loaded.bucket == run.named("ingest-data").outputs["bucket"]


def test_dev_serves_serverless_and_prod_on_autoscaled_instances() -> None:
    dev = load_environment(environment(synth("dev"))).plan
    prod = load_environment(environment(synth("prod"))).plan
    assert dev.serverless and not prod.serverless
    assert prod.min_instances <= prod.max_instances


def test_names_stay_within_sagemakers_limits_for_a_long_stack_name() -> None:
    stack = "a-very-long-stack-name-for-the-platform-teams-staging-environment"
    tags = json.dumps({"tags": {"project": PROJECT, "stack": stack}})
    run = run_program(stack, config_for("dev", {"aws:defaultTags": tags}))
    assert ENDPOINT_NAME.fullmatch(json.loads(environment(run)["SERVING_PLAN"])["endpoint_name"])
    assert FUNCTION_NAME.fullmatch(function(run)["name"])


# ---------------------------------------------------------------------------------------------- cleanup


def test_cleanup_invocation_runs_the_teardown_when_deleted(run: StackRun) -> None:
    cleanup = run.named("deploy-cleanup")
    assert cleanup.inputs["lifecycleScope"] == "CRUD"
    assert cleanup.inputs["functionName"] == run.named("deploy-function").outputs["name"]
    key = cleanup.inputs["terraformKey"]
    payload = json.loads(cleanup.inputs["input"])
    previous = dict(payload)
    assert parse_event({**payload, key: {"action": "delete", "prev_input": previous}}) == Lifecycle("delete")
    assert not parse_event({**payload, key: {"action": "create", "prev_input": None}}).removes
    # Deleted before what it needs to run (its role policy and log group), after what delivers events
    # (targets and invoke permissions), so no promotion starts behind the teardown.
    dependencies = set(cleanup.dependencies)
    for needed in ("deploy-role-policy", "deploy-logs"):
        assert run.named(needed).urn in dependencies, needed
    for kind in RULES:
        for delivery in (f"deploy-{kind}-target", f"deploy-{kind}-invoke"):
            assert run.named(delivery).urn in dependencies, delivery


def test_both_roles_may_read_the_rollback_alarm(run: StackRun) -> None:
    # SageMaker developer guide, "Configure deployment guardrails": cloudwatch:DescribeAlarms on the
    # auto-rollback alarms.
    alarm = run.one(
        "aws:cloudwatch/metricAlarm:MetricAlarm", name=f"serverless-ml-pipeline-{run.stack}-endpoint-errors"
    )
    arn = f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{alarm.inputs['name']}"
    for policy in (deploy_policy(run), model_policy(run)):
        assert Policy.parse(policy).allows("cloudwatch:DescribeAlarms", arn, {})


def test_prod_deploy_function_name_is_pinned() -> None:
    # Renaming it replaces the cleanup invocation, whose deletion removes prod's endpoint: a change
    # here must be deliberate.
    assert function(synth("prod"))["name"] == "serverless-ml-pipeline-prod-6cad-deploy"
