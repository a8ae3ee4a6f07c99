"""What the stack's endpoint is doing and which model it serves, read from SageMaker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import error_code

IN_SERVICE = "InService"
# An endpoint in one of these states takes no UpdateEndpoint until it settles (SageMaker API reference,
# DescribeEndpoint EndpointStatus).
BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


class EndpointBusy(RuntimeError):
    """The endpoint is changing; the event is retried (Lambda's asynchronous retries, then the DLQ)."""


@dataclass(frozen=True)
class EndpointState:
    status: str
    config_name: str
    # The config a running update is moving to (DescribeEndpoint PendingDeploymentSummary).
    pending_config_name: str | None
    failure_reason: str | None
    config_arn: str
    # The serving variant's instance type; None for a serverless variant.
    instance_type: str | None


def is_missing(error: ClientError) -> bool:
    """SageMaker answers a Describe of a missing endpoint, config or model with a ValidationException
    ("Could not find endpoint ..."), missing jobs with ResourceNotFound."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "ResourceNotFound" or (
        error_code(error) == "ValidationException" and message.startswith("Could not find")
    )


def read_endpoint(sagemaker: Any, endpoint_name: str) -> EndpointState | None:
    """The endpoint's state, or None when there is no endpoint yet."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if is_missing(error):
            return None
        raise
    config_name = endpoint["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    variant = config["ProductionVariants"][0]
    return EndpointState(
        status=endpoint["EndpointStatus"],
        config_name=config_name,
        pending_config_name=endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName"),
        failure_reason=endpoint.get("FailureReason"),
        config_arn=config["EndpointConfigArn"],
        instance_type=None if "ServerlessConfig" in variant else variant.get("InstanceType"),
    )
