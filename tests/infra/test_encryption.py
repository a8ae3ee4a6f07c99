"""Every log group of every stack is encrypted with the stack's KMS key, which CloudWatch Logs may use."""

from __future__ import annotations

import pytest

from tests.support.policies import allows
from tests.support.stacks import STACKS, synth
from tools.mockrun import MOCK_ACCOUNT_ID, Resource, StackRun

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
# The function logs of the four functions, and the prediction API's access and execution logs.
LOG_GROUPS = {
    "transform-logs",
    "tune-logs",
    "deploy-logs",
    "predict-logs",
    "predict-access-logs",
    "predict-execution-logs",
}


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


def log_groups(run: StackRun) -> list[Resource]:
    return run.of_type(LOG_GROUP)


def test_the_stack_makes_the_log_groups_of_its_functions_and_api(run: StackRun) -> None:
    assert {group.name for group in log_groups(run)} == LOG_GROUPS


def test_every_log_group_is_encrypted_with_the_stack_key(run: StackRun) -> None:
    key_arn = run.named("ingest-key").outputs["arn"]
    keys = {group.name: group.inputs.get("kmsKeyId") for group in log_groups(run)}
    assert keys == dict.fromkeys(LOG_GROUPS, key_arn)


def test_every_log_group_is_created_after_the_key_policy_lets_cloudwatch_logs_use_the_key(
    run: StackRun,
) -> None:
    policy = run.named("ingest-key-policy").urn
    early = [group.name for group in log_groups(run) if policy not in group.dependencies]
    assert early == []


def test_the_logs_grant_follows_the_stacks_region() -> None:
    run = synth("dev", **{"aws:region": "us-east-1"})
    policy = run.named("ingest-key-policy").json_input("policy")
    (grant,) = [s for s in allows(policy) if s["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}]
    assert grant["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{MOCK_ACCOUNT_ID}:log-group:*"
        }
    }
    key_arn = run.named("ingest-key").outputs["arn"]
    assert all(group.inputs.get("kmsKeyId") == key_arn for group in log_groups(run))


@pytest.mark.parametrize("stack", STACKS)
def test_the_stack_key_and_every_log_group_are_stack_outputs(stack: str) -> None:
    run = synth(stack)
    assert run.outputs["kms_key_arn"] == run.named("ingest-key").outputs["arn"]
    log_groups = {r.outputs["name"] for r in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert set(run.outputs["log_groups"].values()) == log_groups
