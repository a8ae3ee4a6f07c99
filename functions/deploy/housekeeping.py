"""Once the endpoint has settled, tidy what earlier deployments left and keep autoscaling attached.

An endpoint config may be deleted only after the update that replaced it has finished (deleting the one
a running update rolls back to breaks the rollback), so housekeeping runs only when the endpoint is
InService with no deployment pending. It deletes this stack's endpoint configs other than the one in
use and the models no config in use names, but only those older than a grace period: a promotion that
has just created its model and config and not yet called UpdateEndpoint must not lose them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from deploy.endpoint_state import IN_SERVICE, is_missing
from deploy.serving import ServingPlan, scalable_target_request, scaling_policy_request
from deploy.stack_resources import ENDPOINT_CONFIGS, MODELS, delete_if_present, stack_names

# Longer than the deploy function's timeout: any promotion still between CreateModel and UpdateEndpoint
# started after the cutoff.
GRACE = timedelta(minutes=30)


@dataclass
class Tidied:
    deleted_configs: list[str] = field(default_factory=list)
    deleted_models: list[str] = field(default_factory=list)
    autoscaling: bool = False
    skipped: str | None = None
    # Nothing is changing the endpoint (it is InService with nothing pending, or there is none): a
    # challenger can be judged now.
    settled: bool = True
    # The endpoint config serving, and its ARN, when the endpoint is in service.
    serving_config: str | None = None
    serving_config_arn: str | None = None


class Housekeeper:
    def __init__(self, plan: ServingPlan, prefix: str, sagemaker: Any, autoscaling: Any) -> None:
        self._plan = plan
        self._prefix = f"{prefix}-"
        self._sagemaker = sagemaker
        self._autoscaling = autoscaling

    def tidy(self, now: datetime) -> Tidied:
        try:
            endpoint = self._sagemaker.describe_endpoint(EndpointName=self._plan.endpoint_name)
        except ClientError as error:
            if is_missing(error):
                return Tidied(skipped="the endpoint does not exist")
            raise
        if endpoint["EndpointStatus"] != IN_SERVICE or endpoint.get("PendingDeploymentSummary"):
            return Tidied(
                skipped=f"the endpoint is {endpoint['EndpointStatus']} with a deployment pending",
                settled=False,
            )
        in_use = endpoint["EndpointConfigName"]
        config = self._sagemaker.describe_endpoint_config(EndpointConfigName=in_use)
        tidied = Tidied(serving_config=in_use, serving_config_arn=config["EndpointConfigArn"])
        if not self._plan.serverless:
            self._autoscaling.register_scalable_target(**scalable_target_request(self._plan))
            self._autoscaling.put_scaling_policy(**scaling_policy_request(self._plan))
            tidied.autoscaling = True
        serving = {variant["ModelName"] for variant in config["ProductionVariants"]}
        cutoff = now - GRACE
        for name in list(stack_names(self._sagemaker, ENDPOINT_CONFIGS, self._prefix, cutoff)):
            if name != in_use:
                delete_if_present(self._sagemaker, ENDPOINT_CONFIGS, name)
                tidied.deleted_configs.append(name)
        for name in list(stack_names(self._sagemaker, MODELS, self._prefix, cutoff)):
            if name not in serving:
                delete_if_present(self._sagemaker, MODELS, name)
                tidied.deleted_models.append(name)
        return tidied
