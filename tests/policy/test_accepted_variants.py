"""What the guardrails accept besides the program's own choices, so that a sound change of the program is
not refused: authorizers in place of API keys, method-level throttling, SSE-SQS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.policy_pack import changed, guardrail, violations
from tests.support.stacks import synth


@pytest.mark.parametrize(
    "authorization",
    [
        {"authorization": "AWS_IAM"},
        {"authorization": "COGNITO_USER_POOLS", "authorizerId": "predict-authorizer-id"},
        {"authorization": "CUSTOM", "authorizerId": "predict-authorizer-id"},
    ],
)
def test_an_authorizer_stands_in_for_the_api_key(authorization: dict[str, Any]) -> None:
    run = changed(
        synth("dev"), "predict-post-predict", lambda p: p.update(apiKeyRequired=False, **authorization)
    )
    assert violations(guardrail("apigateway-method-auth"), run) == []


@pytest.mark.parametrize("authorization", ["COGNITO_USER_POOLS", "CUSTOM"])
def test_a_user_pool_or_lambda_authorization_must_name_its_authorizer(authorization: str) -> None:
    run = changed(
        synth("dev"),
        "predict-post-predict",
        lambda p: p.update(apiKeyRequired=False, authorization=authorization),
    )
    assert violations(guardrail("apigateway-method-auth"), run)


def _keyless_health(props: dict[str, Any]) -> None:
    props.update(apiKeyRequired=False, authorization="AWS_IAM")


def test_a_method_without_an_api_key_is_not_throttled_by_the_usage_plan() -> None:
    run = changed(synth("dev"), "predict-get-health", _keyless_health)
    assert violations(guardrail("apigateway-throttling"), run)


def test_method_settings_throttle_methods_without_an_api_key() -> None:
    def throttled(props: dict[str, Any]) -> None:
        props["settings"] = {**props["settings"], "throttlingRateLimit": 10, "throttlingBurstLimit": 20}

    run = changed(
        changed(synth("dev"), "predict-get-health", _keyless_health), "predict-method-settings", throttled
    )
    assert violations(guardrail("apigateway-throttling"), run) == []


def test_sqs_managed_encryption_meets_sqs_1() -> None:
    run = changed(
        synth("dev"), "ingest-queue", lambda p: p.update(kmsMasterKeyId="", sqsManagedSseEnabled=True)
    )
    assert violations(guardrail("sqs-encryption"), run) == []
