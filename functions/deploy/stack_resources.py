"""Find and delete this stack's SageMaker models and endpoint configs by name prefix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from deploy.endpoint_state import is_missing

# (List operation, its list key, the name key, the Delete operation) of each kind of resource.
ENDPOINT_CONFIGS = (
    "list_endpoint_configs",
    "EndpointConfigs",
    "EndpointConfigName",
    "delete_endpoint_config",
)
MODELS = ("list_models", "Models", "ModelName", "delete_model")


def stack_names(
    sagemaker: Any, kind: tuple[str, str, str, str], prefix: str, created_before: datetime | None = None
) -> Iterator[str]:
    """Names of the stack's resources of `kind` (NameContains is a substring match, so the prefix is
    checked again)."""
    operation, items, name_key, _ = kind
    query: dict[str, Any] = {"NameContains": prefix}
    if created_before is not None:
        query["CreationTimeBefore"] = created_before
    for page in sagemaker.get_paginator(operation).paginate(**query):
        for item in page[items]:
            if item[name_key].startswith(prefix):
                yield item[name_key]


def delete_if_present(sagemaker: Any, kind: tuple[str, str, str, str], name: str) -> None:
    _, _, name_key, operation = kind
    try:
        getattr(sagemaker, operation)(**{name_key: name})
    except ClientError as error:
        if not is_missing(error):
            raise
