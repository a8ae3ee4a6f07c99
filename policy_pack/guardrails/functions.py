"""Lambda functions: a runtime AWS still supports, a declared log group, and tracing as configured."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from pulumi_policy import PolicyResource

from . import stack_config
from .framework import Guardrail, Props, Stack, Violation, each, resource_guardrail, stack_guardrail

FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

# Lambda developer guide, "Building Lambda functions with Python": supported runtimes and the date each
# is deprecated (no more security patches; function creation is blocked soon after). A runtime that is
# not listed is refused until it is added here with its date from that table.
RUNTIME_DEPRECATION = {
    "python3.10": datetime.date(2026, 10, 31),
    "python3.11": datetime.date(2027, 6, 30),
    "python3.12": datetime.date(2028, 10, 31),
    "python3.13": datetime.date(2029, 6, 30),
    "python3.14": datetime.date(2029, 6, 30),
}


def supported_runtime(_type: str, props: Props) -> Iterator[str]:
    if props.get("packageType") == "Image":
        return  # a container image brings its own runtime
    runtime = props.get("runtime")
    deprecated = RUNTIME_DEPRECATION.get(str(runtime))
    if deprecated is None:
        yield f"runtime {runtime} is not one of the supported runtimes {', '.join(RUNTIME_DEPRECATION)}"
    elif datetime.datetime.now(datetime.UTC).date() >= deprecated:
        yield f"runtime {runtime} was deprecated on {deprecated.isoformat()}"


def log_group_declared(stack: Stack) -> Iterator[Violation]:
    # Lambda writes to loggingConfig.logGroup, else to /aws/lambda/<function name> (Lambda developer
    # guide, "Configuring CloudWatch log groups"); a group the stack does not declare is created on first
    # write with no retention and no key, out of reach of the log group guardrails.
    groups = stack.of_type(LOG_GROUP)

    def check(function: PolicyResource) -> str | None:
        # The group the function's loggingConfig was computed from, else one declared by its name.
        computed_from = function.property_dependencies.get("loggingConfig", [])
        if any(g in computed_from for g in groups):
            return None
        logging = function.props.get("loggingConfig") or {}
        name = logging.get("logGroup") or f"/aws/lambda/{function.props.get('name')}"
        if any(g.props.get("name") == name for g in groups):
            return None
        return f"function {function.name} logs to {name}, a log group the stack does not declare"

    return each(stack.of_type(FUNCTION), check)


def traced_as_configured(_type: str, props: Props) -> Iterator[str]:
    if stack_config.functions_traced() and (props.get("tracingConfig") or {}).get("mode") != "Active":
        yield "the stack's tracing is on: the function needs tracingConfig.mode Active"


GUARDRAILS: tuple[Guardrail, ...] = (
    resource_guardrail(
        "lambda-supported-runtime",
        ("Lambda.2", "CKV_AWS_363"),
        "Every function runs on a runtime Lambda supports.",
        frozenset({FUNCTION}),
        supported_runtime,
    ),
    stack_guardrail(
        "lambda-log-group-declared",
        ("CKV_AWS_66",),
        "Every function logs to a log group the stack declares (so it has retention and a key).",
        log_group_declared,
    ),
    resource_guardrail(
        "lambda-tracing",
        ("CKV_AWS_50",),
        "With the stack's tracing on, every function has active X-Ray tracing.",
        frozenset({FUNCTION}),
        traced_as_configured,
    ),
)
