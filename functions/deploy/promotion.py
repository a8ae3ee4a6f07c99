"""Promote a finished tuning job's best model to the stack's endpoint when it beats the champion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from deploy.champions import ChampionStore
from deploy.contest import Outcome, Score, Verdict, dataset_name, judge
from deploy.endpoint_state import BUSY, IN_SERVICE, EndpointBusy, EndpointState, is_missing, read_endpoint
from deploy.held_out import ContestResult, HeldOutContest
from deploy.serving import (
    Candidate,
    ServingPlan,
    create_endpoint_request,
    detach_autoscaling,
    endpoint_config_request,
    model_request,
    update_endpoint_request,
)
from deploy.tuning_result import FINISHED, TuningResult, read_tuning_result
from shared.aws import error_code


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
    # Both models' transform jobs and their scores on the same rows, when they were compared.
    contest: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TuningNotFinished(RuntimeError):
    """SageMaker does not show the finished state the event announced yet; the event is retried."""


class Promoter:
    def __init__(
        self,
        plan: ServingPlan,
        sagemaker: Any,
        autoscaling: Any,
        champions: ChampionStore,
        contest: HeldOutContest,
        annotate: Callable[..., None],
    ) -> None:
        """`annotate(**keys)` adds keys to every later log line of the invocation."""
        self._plan = plan
        self._sagemaker = sagemaker
        self._autoscaling = autoscaling
        self._champions = champions
        self._contest = contest
        self._annotate = annotate

    def promote(self, tuning_job: str) -> PromotionRecord:
        self._annotate(tuning_job=tuning_job, dataset="")
        result = read_tuning_result(self._sagemaker, tuning_job)
        self._annotate(dataset=dataset_name(result.training_data) if result.training_data else "")
        if result.status not in FINISHED:
            # The event said the job finished; a Describe that does not show it yet is retried.
            raise TuningNotFinished(f"tuning job {tuning_job} is still {result.status} in SageMaker")
        if result.candidate is None:
            assert result.problem is not None
            return self._record(result, None, Verdict(Outcome.NOT_DEPLOYED, result.problem), None)
        candidate = result.candidate
        endpoint = read_endpoint(self._sagemaker, self._plan.endpoint_name)
        verdict, champion = self._verdict(candidate, endpoint)
        contest = None
        if verdict.outcome is Outcome.JUDGING:
            assert champion is not None
            contest = self._held_out(result, candidate, champion)
            verdict = (
                contest.verdict
                if contest
                else Verdict(
                    Outcome.NOT_DEPLOYED, "the tuning job has no validation channel to compare the models on"
                )
            )
        if verdict.outcome is Outcome.DEPLOY:
            self._deploy(candidate, endpoint)
        return self._record(result, champion, verdict, contest)

    def _held_out(self, result: TuningResult, candidate: Candidate, champion: Score) -> ContestResult | None:
        """Both models on the challenger's validation rows (None without a validation channel); the
        challenger's transform job runs the model it would be deployed as."""
        if result.validation_data is None:
            return None
        self._create_model(candidate)
        return self._contest.run(result.job_name, result.validation_data, candidate.score, champion)

    def unjudgeable(self, tuning_job: str, reason: str) -> PromotionRecord:
        """The record of a tuning job that could not be judged at all."""
        return PromotionRecord(
            tuning_job=tuning_job,
            tuning_status="unknown",
            outcome=Outcome.NOT_DEPLOYED.value,
            reason=reason,
            endpoint=self._plan.endpoint_name,
            challenger=None,
            champion=None,
            training_data=None,
            contest=None,
        )

    def _verdict(self, candidate: Candidate, endpoint: EndpointState | None) -> tuple[Verdict, Score | None]:
        """The verdict, and the champion it was judged against."""
        if endpoint is None:
            return judge(candidate.score, None), None
        if candidate.name in (endpoint.config_name, endpoint.pending_config_name):
            return Verdict(Outcome.UNCHANGED, f"{candidate.name} is already deployed or being deployed"), None
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
            ), None
        if endpoint.status != IN_SERVICE:
            return Verdict(
                Outcome.NOT_DEPLOYED,
                f"endpoint {self._plan.endpoint_name} is {endpoint.status} "
                f"({endpoint.failure_reason or 'no reason given'}); delete it to let the next model "
                "create it",
            ), None
        champion = self._champions.champion(endpoint)
        return judge(candidate.score, champion), champion

    def _create_model(self, candidate: Candidate) -> None:
        sagemaker = self._sagemaker
        _create(
            sagemaker.create_model,
            sagemaker.describe_model,
            "ModelName",
            model_request(self._plan, candidate),
        )

    def _deploy(self, candidate: Candidate, endpoint: EndpointState | None) -> None:
        sagemaker, plan = self._sagemaker, self._plan
        self._create_model(candidate)
        _create(
            sagemaker.create_endpoint_config,
            sagemaker.describe_endpoint_config,
            "EndpointConfigName",
            endpoint_config_request(plan, candidate),
        )
        # SageMaker may not yet see a config it has just created (CreateEndpoint API reference: call
        # DescribeEndpointConfig first).
        sagemaker.describe_endpoint_config(EndpointConfigName=candidate.name)
        try:
            if endpoint is None:
                sagemaker.create_endpoint(**create_endpoint_request(plan, candidate))
                return
            if endpoint.instance_type not in (None, plan.instance_type):
                # SageMaker refuses to update an autoscaled variant to another instance type: detach
                # autoscaling first; housekeeping attaches it again once the update is in service.
                detach_autoscaling(self._autoscaling, plan)
            update = update_endpoint_request(
                plan, candidate, from_instances=endpoint.instance_type is not None
            )
            sagemaker.update_endpoint(**update)
        except ClientError as error:
            self._explain_refusal(error, candidate)

    def _explain_refusal(self, error: ClientError, candidate: Candidate) -> None:
        """A concurrent delivery got there first: CreateEndpoint finds the endpoint existing, or
        UpdateEndpoint finds it updating ("Cannot update in-progress endpoint"). Done if that delivery
        deploys this candidate, deferred if it deploys another; any other refusal is raised."""
        if error_code(error) != "ValidationException":
            raise error
        now = read_endpoint(self._sagemaker, self._plan.endpoint_name)
        if now is not None and candidate.name in (now.config_name, now.pending_config_name):
            return
        if now is not None and now.status in BUSY:
            raise EndpointBusy(f"endpoint {self._plan.endpoint_name} became {now.status}") from error
        raise error

    def _record(
        self, result: TuningResult, champion: Score | None, verdict: Verdict, contest: ContestResult | None
    ) -> PromotionRecord:
        return PromotionRecord(
            tuning_job=result.job_name,
            tuning_status=result.status,
            outcome=verdict.outcome.value,
            reason=verdict.reason,
            endpoint=self._plan.endpoint_name,
            challenger=asdict(result.candidate) if result.candidate else None,
            champion=asdict(champion) if champion else None,
            training_data=result.training_data,
            contest=contest.to_json() if contest else None,
        )


def _create(create: Any, describe: Any, name_key: str, request: dict[str, Any]) -> None:
    """Create a model or endpoint config; one left by an earlier delivery of the same event is reused.

    SageMaker refuses a duplicate name with a ValidationException ("Cannot create already existing ..."),
    so the Describe call, not the message, decides whether it exists."""
    try:
        create(**request)
    except ClientError as error:
        if error_code(error) != "ValidationException":
            raise
        try:
            describe(**{name_key: request[name_key]})
        except ClientError as missing:
            if is_missing(missing):
                raise error from None
            raise
