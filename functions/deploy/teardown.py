"""Remove what the deploy function created at run time, when `pulumi destroy` removes the stack.

Pulumi does not know the endpoint, its configs, its models or its autoscaling target: the deploy
function made them. Running tuning jobs are stopped too, so nothing keeps billing. Data in the bucket
(uploads, training data, model artifacts, captures, records) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from deploy.endpoint_state import is_missing
from deploy.serving import ServingPlan, detach_autoscaling
from deploy.stack_resources import ENDPOINT_CONFIGS, MODELS, delete_if_present, stack_names


@dataclass
class Removed:
    stopped_tuning_jobs: list[str] = field(default_factory=list)
    endpoint: str | None = None
    endpoint_configs: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def remove_runtime_resources(plan: ServingPlan, prefix: str, sagemaker: Any, autoscaling: Any) -> Removed:
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
    # Deleting the endpoint would deregister its target only with permissions the deploy role does not
    # have (DeleteScalingPolicy), so the target goes first.
    detach_autoscaling(autoscaling, plan)
    try:
        sagemaker.delete_endpoint(EndpointName=plan.endpoint_name)
        removed.endpoint = plan.endpoint_name
    except ClientError as error:
        if not is_missing(error):
            raise
    # Configs and models may go while the endpoint is still deleting (DeleteEndpointConfig and
    # DeleteModel do not wait for the endpoint).
    for kind, names in ((ENDPOINT_CONFIGS, removed.endpoint_configs), (MODELS, removed.models)):
        for name in list(stack_names(sagemaker, kind, stack_prefix)):
            delete_if_present(sagemaker, kind, name)
            names.append(name)
    return removed
