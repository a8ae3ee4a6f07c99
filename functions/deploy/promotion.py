"""Promote a finished tuning job's best model to the stack's endpoint when it beats the champion."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from deploy.contest import Outcome, Verdict, judge
from deploy.endpoint_state import BUSY, IN_SERVICE, EndpointBusy, EndpointState, is_missing, read_endpoint
from deploy.serving import (
    Candidate,
    ServingPlan,
    create_endpoint_request,
    detach_autoscaling,
    endpoint_config_request,
    model_request,
    update_endpoint_request,
)
from deploy.tuning_result import TuningResult, read_tuning_result


@dataclass(frozen=True)
class PromotionRecord:
    """What happened to one tuning job's result: written to `deployments/<tuning job>.json`."""

    tuning_job: str
    tuning_status: str
    outcome: str
    reason: str
    endpoint: str
    challenger: dict[str, Any] | None
    champion: dict[str, Any] | None
    training_data: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Promoter:
    def __init__(self, plan: ServingPlan, sagemaker: Any, autoscaling: Any) -> None:
        self._plan = plan
        self._sagemaker = sagemaker
        self._autoscaling = autoscaling

    def promote(self, tuning_job: str) -> PromotionRecord:
        result = read_tuning_result(self._sagemaker, tuning_job)
        if result.candidate is None:
            assert result.problem is not None
            return self._record(result, None, Verdict(Outcome.NOT_DEPLOYED, result.problem))
        candidate = result.candidate
        endpoint = read_endpoint(self._sagemaker, self._plan.endpoint_name)
        verdict = self._verdict(candidate, endpoint)
        if verdict.outcome is Outcome.DEPLOY:
            self._deploy(candidate, endpoint)
        return self._record(result, endpoint, verdict)

    def _verdict(self, candidate: Candidate, endpoint: EndpointState | None) -> Verdict:
        if endpoint is None:
            return judge(candidate.score, None)
        if candidate.name in (endpoint.config_name, endpoint.pending_config_name):
            return Verdict(Outcome.UNCHANGED, f"{candidate.name} is already deployed or being deployed")
        if endpoint.status in BUSY:
            raise EndpointBusy(
                f"endpoint {self._plan.endpoint_name} is {endpoint.status}; {candidate.name} is judged once "
                "it settles"
            )
        if self._plan.serverless and endpoint.instance_type is not None:
            return Verdict(
                Outcome.NOT_DEPLOYED,
                f"endpoint {self._plan.endpoint_name} runs on instances and SageMaker cannot turn it "
                "serverless; delete it to let the next model create it serverless",
            )
        if endpoint.status != IN_SERVICE:
            return Verdict(
                Outcome.NOT_DEPLOYED,
                f"endpoint {self._plan.endpoint_name} is {endpoint.status} "
                f"({endpoint.failure_reason or 'no reason given'}); delete it to let the next model "
                "create it",
            )
        return judge(candidate.score, endpoint.champion)

    def _deploy(self, candidate: Candidate, endpoint: EndpointState | None) -> None:
        sagemaker, plan = self._sagemaker, self._plan
        _create(sagemaker.create_model, sagemaker.describe_model, "ModelName", model_request(plan, candidate))
        _create(
            sagemaker.create_endpoint_config,
            sagemaker.describe_endpoint_config,
            "EndpointConfigName",
            endpoint_config_request(plan, candidate),
        )
        if endpoint is None:
            sagemaker.create_endpoint(**create_endpoint_request(plan, candidate))
            return
        if endpoint.instance_type not in (None, plan.instance_type):
            # SageMaker refuses to update an autoscaled variant to another instance type: detach
            # autoscaling first; housekeeping attaches it again once the update is in service.
            detach_autoscaling(self._autoscaling, plan)
        sagemaker.update_endpoint(**update_endpoint_request(plan, candidate))

    def _record(
        self, result: TuningResult, endpoint: EndpointState | None, verdict: Verdict
    ) -> PromotionRecord:
        champion = endpoint.champion if endpoint else None
        return PromotionRecord(
            tuning_job=result.job_name,
            tuning_status=result.status,
            outcome=verdict.outcome.value,
            reason=verdict.reason,
            endpoint=self._plan.endpoint_name,
            challenger=asdict(result.candidate) if result.candidate else None,
            champion=asdict(champion) if champion else None,
            training_data=result.training_data,
        )


def _create(create: Any, describe: Any, name_key: str, request: dict[str, Any]) -> None:
    """Create a model or endpoint config; one left by an earlier delivery of the same event is reused.

    SageMaker refuses a duplicate name with a ValidationException ("Cannot create already existing ..."),
    so the Describe call, not the message, decides whether it exists."""
    try:
        create(**request)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ValidationException":
            raise
        try:
            describe(**{name_key: request[name_key]})
        except ClientError as missing:
            if is_missing(missing):
                raise error from None
            raise
