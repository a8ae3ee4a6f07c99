"""Remove what the deploy function created at run time, when `pulumi destroy` removes the stack.

Pulumi does not know the endpoint, its configs, its models or its autoscaling target: the deploy
function made them. Running tuning jobs and contest transform jobs are stopped too, so nothing keeps
billing. Data in the bucket
(uploads, training data, model artifacts, captures, records) is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from deploy.endpoint_state import BUSY, EndpointBusy, is_missing
from deploy.serving import ServingPlan, detach_autoscaling
from deploy.stack_resources import ENDPOINT_CONFIGS, MODELS, delete_if_present, stack_names

# SageMaker refuses to delete an endpoint that is being created or updated ("Cannot update in-progress
# endpoint"); teardown waits for it within the function's 300 s timeout.
DELETING = "Deleting"
CHANGING = BUSY - {DELETING}
POLL_SECONDS = 15
WAIT_SECONDS = 240


def _settled_status(sagemaker: Any, endpoint_name: str, sleep: Callable[[float], None]) -> str | None:
    """The endpoint's status once it is not changing, or its changing status after WAIT_SECONDS; None
    when there is no endpoint."""
    waited = 0
    while True:
        try:
            status = str(sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"])
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        if status not in CHANGING or waited >= WAIT_SECONDS:
            return status
        sleep(POLL_SECONDS)
        waited += POLL_SECONDS


@dataclass
class Removed:
    stopped_tuning_jobs: list[str] = field(default_factory=list)
    stopped_transform_jobs: list[str] = field(default_factory=list)
    endpoint: str | None = None
    endpoint_configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def remove_runtime_resources(
    plan: ServingPlan,
    prefix: str,
    sagemaker: Any,
    autoscaling: Any,
    sleep: Callable[[float], None] = time.sleep,
) -> Removed:
    removed = Removed()
    stack_prefix = f"{prefix}-"
    for page in sagemaker.get_paginator("list_hyper_parameter_tuning_jobs").paginate(
        NameContains=stack_prefix, StatusEquals="InProgress"
    ):
        for job in page["HyperParameterTuningJobSummaries"]:
            name = job["HyperParameterTuningJobName"]
            if name.startswith(stack_prefix):
                sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
                removed.stopped_tuning_jobs.append(name)
    for page in sagemaker.get_paginator("list_transform_jobs").paginate(
        NameContains=stack_prefix, StatusEquals="InProgress"
    ):
        for summary in page["TransformJobSummaries"]:
            name = summary["TransformJobName"]
            if name.startswith(stack_prefix):
                sagemaker.stop_transform_job(TransformJobName=name)
                removed.stopped_transform_jobs.append(name)
    # Deleting the endpoint would deregister its target only with permissions the deploy role does not
    # have (DeleteScalingPolicy), so the target goes first.
    detach_autoscaling(autoscaling, plan)
    status = _settled_status(sagemaker, plan.endpoint_name, sleep)
    if status is not None:
        if status in CHANGING:
            raise EndpointBusy(
                f"endpoint {plan.endpoint_name} is still {status} after {WAIT_SECONDS} s and cannot be "
                "deleted yet: run pulumi destroy again"
            )
        if status != DELETING:
            sagemaker.delete_endpoint(EndpointName=plan.endpoint_name)
        removed.endpoint = plan.endpoint_name
    # Configs and models may go while the endpoint is still deleting (DeleteEndpointConfig and
    # DeleteModel do not wait for the endpoint).
    for kind, names in ((ENDPOINT_CONFIGS, removed.endpoint_configs), (MODELS, removed.models)):
        for name in list(stack_names(sagemaker, kind, stack_prefix)):
            delete_if_present(sagemaker, kind, name)
            names.append(name)
    return removed
