"""A Python Lambda function of the stack with what every one of them has: its own role and inline policy,
its own log group with retention under the stack's KMS key, JSON logs at the stack's level, the code
package built from `functions/`, the stack's layers, and `POWERTOOLS_SERVICE_NAME` naming it. With the
stack's `tracing` on, active X-Ray tracing and, in the role's policy, the permission to send the traces;
with it off, neither."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.event_bus import StackKey
from components.packaging import build_package
from components.policy_documents import send_traces, with_statements
from components.service_role import ServiceRole, service_role
from settings import FunctionRuntime


@dataclass(frozen=True)
class PythonFunctionArgs:
    runtime: FunctionRuntime
    # The package under functions/ (with functions/shared) and its entry point.
    package: str
    handler: str
    memory_mb: int
    timeout_seconds: int
    layer_arns: list[str]
    # The role's policy, given the function's log group ARN.
    policy: Callable[[pulumi.Output[str]], pulumi.Input[str]]
    environment: Mapping[str, pulumi.Input[str]]
    # Encrypts the function's log group.
    log_key: StackKey
    # A fixed physical name; None lets Pulumi generate one.
    function_name: str | None = None


@dataclass(frozen=True)
class PythonFunction:
    function: aws.lambda_.Function
    log_group: aws.cloudwatch.LogGroup
    access: ServiceRole


def log_group(
    name: str,
    *,
    retention_days: int,
    key: StackKey,
    parent: pulumi.Resource,
    log_group_name: pulumi.Input[str] | None = None,
) -> aws.cloudwatch.LogGroup:
    """A log group of the stack: events kept `retention_days`, encrypted with the stack's key. Its name is
    generated unless `log_group_name` fixes it."""
    return aws.cloudwatch.LogGroup(
        name,
        name=log_group_name,
        retention_in_days=retention_days,
        kms_key_id=key.arn,
        # CloudWatch Logs uses the key as itself, so the key policy must let it before a log group names
        # the key (CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS Key
        # Management Service": the key's permissions, step 2, come before associating it, step 3).
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[key.policy]),
    )


def python_function(name: str, args: PythonFunctionArgs, *, parent: pulumi.Resource) -> PythonFunction:
    """`<name>-logs`, `<name>-role` with `<name>-role-policy`, and `<name>-function`, children of `parent`."""
    runtime = args.runtime
    logs = log_group(
        f"{name}-logs", retention_days=runtime.log_retention_days, key=args.log_key, parent=parent
    )
    policy = pulumi.Output.from_input(args.policy(logs.arn))
    if runtime.tracing:
        # The Lambda runtime, not the function's code, sends the segments, with the function's role.
        policy = policy.apply(lambda document: with_statements(document, send_traces()))
    access = service_role(
        name,
        service_principal="lambda.amazonaws.com",
        description=f"Runs the {name} function",
        policy=policy,
        parent=parent,
    )
    function = aws.lambda_.Function(
        f"{name}-function",
        name=args.function_name,
        role=access.role.arn,
        runtime=runtime.runtime,
        architectures=[runtime.architecture],
        handler=args.handler,
        code=pulumi.FileArchive(build_package(args.package).relative_to(Path.cwd()).as_posix()),
        memory_size=args.memory_mb,
        timeout=args.timeout_seconds,
        layers=args.layer_arns,
        environment=aws.lambda_.FunctionEnvironmentArgs(
            variables={**args.environment, "POWERTOOLS_SERVICE_NAME": name}
        ),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(
            log_format="JSON",
            log_group=logs.name,
            application_log_level=runtime.log_level,
            system_log_level="WARN",
        ),
        # Lambda samples and records invocations only in Active mode (Lambda API reference, TracingConfig).
        tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active") if runtime.tracing else None,
        # Until the role's policy exists the function can do nothing: creating it (and its triggers)
        # waits for the policy.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[access.policy]),
    )
    return PythonFunction(function, logs, access)
