"""API Gateway REST APIs: every method authenticated, every stage throttled, access-logged and traced as
configured."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyResource

from . import stack_config
from .framework import (
    Guardrail,
    Props,
    Stack,
    Violation,
    as_list,
    each,
    is_set,
    resource_guardrail,
    stack_guardrail,
)

METHOD = "aws:apigateway/method:Method"
STAGE = "aws:apigateway/stage:Stage"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"

AUTHORIZERS = ("AWS_IAM", "COGNITO_USER_POOLS", "CUSTOM")


def method_authenticated(_type: str, props: Props) -> Iterator[str]:
    authorization = props.get("authorization")
    if props.get("apiKeyRequired") is True or authorization == "AWS_IAM":
        return
    if authorization in AUTHORIZERS:
        if not is_set(props, "authorizerId"):
            yield f"the method's {authorization} authorization names no authorizerId"
        return
    yield f"the method needs apiKeyRequired or one of {', '.join(AUTHORIZERS)} (has {authorization})"


def _positive(settings: Props, *keys: str) -> bool:
    return all(isinstance(settings.get(k), int | float) and settings[k] > 0 for k in keys)


def _plan_throttles(plan: PolicyResource, stage: PolicyResource) -> bool:
    for api_stage in as_list(plan.props.get("apiStages")):
        if (
            api_stage.get("apiId") == stage.props["restApi"]
            and api_stage.get("stage") == stage.props["stageName"]
        ):
            per_stage = [
                t for t in as_list(api_stage.get("throttles")) if _positive(t, "rateLimit", "burstLimit")
            ]
            return bool(per_stage) or _positive(
                plan.props.get("throttleSettings") or {}, "rateLimit", "burstLimit"
            )
    return False


def _methods_throttled(settings: PolicyResource, stage: PolicyResource) -> bool:
    return (
        settings.props.get("restApi") == stage.props["restApi"]
        and settings.props.get("stageName") == stage.props["stageName"]
        and settings.props.get("methodPath") == "*/*"
        and _positive(settings.props.get("settings") or {}, "throttlingRateLimit", "throttlingBurstLimit")
    )


def stage_throttled(stack: Stack) -> Iterator[Violation]:
    # A usage plan throttles only requests made with its API keys (API Gateway developer guide, "Throttle
    # requests to your REST APIs"): methods that need no key are throttled by the stage's method settings.
    def check(stage: PolicyResource) -> str | None:
        by_settings = any(_methods_throttled(s, stage) for s in stack.of_type(METHOD_SETTINGS))
        if by_settings:
            return None
        methods = [m for m in stack.of_type(METHOD) if m.props.get("restApi") == stage.props["restApi"]]
        keyless = [m.name for m in methods if m.props.get("apiKeyRequired") is not True]
        if keyless:
            return (
                f"stage {stage.name} throttles nothing of {', '.join(keyless)} (keyless, no method settings)"
            )
        if any(_plan_throttles(p, stage) for p in stack.of_type(USAGE_PLAN)):
            return None
        return f"stage {stage.name} needs a usage plan or method settings with a rate and burst limit"

    return each(stack.of_type(STAGE), check)


def access_logged(_type: str, props: Props) -> Iterator[str]:
    settings = props.get("accessLogSettings") or {}
    if not (is_set(settings, "destinationArn") and is_set(settings, "format")):
        yield "the stage needs accessLogSettings with a destinationArn and a format"


def traced_as_configured(_type: str, props: Props) -> Iterator[str]:
    if stack_config.api_traced() and props.get("xrayTracingEnabled") is not True:
        yield "the stack's apiTracing or tracing is on: the stage needs xrayTracingEnabled"


GUARDRAILS: tuple[Guardrail, ...] = (
    resource_guardrail(
        "apigateway-method-auth",
        ("CKV2_AWS_70",),
        "Every method needs an API key or an IAM, Cognito or Lambda authorizer.",
        frozenset({METHOD}),
        method_authenticated,
    ),
    stack_guardrail(
        "apigateway-throttling",
        ("API Gateway developer guide: throttling",),
        "Every stage's requests are throttled by a usage plan or method settings.",
        stage_throttled,
    ),
    resource_guardrail(
        "apigateway-access-logging",
        ("CKV_AWS_76",),
        "Every stage writes access logs.",
        frozenset({STAGE}),
        access_logged,
    ),
    resource_guardrail(
        "apigateway-tracing",
        ("APIGateway.3", "CKV_AWS_73"),
        "With the stack's apiTracing or tracing on, every stage has X-Ray tracing.",
        frozenset({STAGE}),
        traced_as_configured,
    ),
)
