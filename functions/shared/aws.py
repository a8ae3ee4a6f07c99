"""AWS clients of the functions: one per service per container, with the SDK's standard retries.

boto3 reads endpoint overrides from the standard environment (`AWS_ENDPOINT_URL`,
`AWS_ENDPOINT_URL_<SERVICE>`), so the same code talks to AWS, to moto, or to the local rehearsal.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
import botocore
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

# boto3 ships no type stubs for its generated clients; the functions name what they expect.
S3Client = Any
SageMakerClient = Any

USER_AGENT_APP = "serverless-ml-pipeline"
# Standard retry mode backs off on throttling and transient errors before the code sees them.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)


@functools.cache
def client(service: str, *, read_timeout: int | None = None, max_attempts: int | None = None) -> BaseClient:
    """The container's client of `service`; its user agent names the function, which CloudTrail shows.
    A function answering within a deadline (the predict function, behind API Gateway) shortens the read
    timeout and the retries."""
    function = os.environ.get("POWERTOOLS_SERVICE_NAME", "function")
    config = CLIENT_CONFIG.merge(Config(user_agent_extra=f"{USER_AGENT_APP}/{function}"))
    if read_timeout is not None:
        config = config.merge(Config(read_timeout=read_timeout))
    if max_attempts is not None:
        config = config.merge(Config(retries={"mode": "standard", "max_attempts": max_attempts}))
    return boto3.client(service, config=config)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class OutdatedSdk(RuntimeError):
    """The runtime's boto3 lacks a request parameter the function relies on."""


def require_parameters(service_client: Any, operation: str, *names: str) -> None:
    """Fail at cold start, naming the botocore version, when the runtime's SDK (the Lambda runtime ships
    its own boto3) is too old to send a parameter, instead of failing every message that needs it."""
    members = service_client.meta.service_model.operation_model(operation).input_shape.members
    missing = [name for name in names if name not in members]
    if missing:
        raise OutdatedSdk(
            f"botocore {botocore.__version__} cannot send {operation} {', '.join(missing)}: deploy the "
            "function with a newer runtime or bundle a newer boto3"
        )
