"""Run a contest: start the challenger's and the champion's batch transform jobs on the challenger's
validation rows, and once both have finished, score both models on those rows and judge.

Called again on every event of the contest (a transform job finished, a redelivery, the endpoint
settling for a deferred challenger): it starts only what does not exist yet and decides only when both
jobs are done, so any number of calls make one contest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from deploy.contest import HeldOut, Outcome, Score, Verdict, judge_held_out
from deploy.contest_jobs import COMPLETED, FINISHED, ContestJob, contest_jobs, transform_request
from deploy.contest_rows import RowsMismatch, contest_rows, input_objects
from deploy.endpoint_state import is_missing
from deploy.evaluation import InvalidPredictions, evaluate
from deploy.serving import ServingPlan
from shared.aws import error_code


@dataclass(frozen=True)
class JobState:
    name: str
    model: str
    status: str
    failure: str | None


@dataclass(frozen=True)
class ContestResult:
    verdict: Verdict
    # For the deployment record: each model's transform job, and the scores once both finished.
    jobs: dict[str, JobState]
    held_out: HeldOut | None

    def to_json(self) -> dict[str, Any]:
        return {
            "transformJobs": {role: asdict(state) for role, state in self.jobs.items()},
            "heldOut": asdict(self.held_out) if self.held_out else None,
        }


class HeldOutContest:
    def __init__(self, plan: ServingPlan, records_prefix: str, sagemaker: Any, s3: Any) -> None:
        self._plan = plan
        self._records_prefix = records_prefix
        self._sagemaker = sagemaker
        self._s3 = s3

    def run(
        self, tuning_job: str, validation: dict[str, Any], challenger: Score, champion: Score
    ) -> ContestResult:
        jobs = contest_jobs(
            self._plan, self._records_prefix, tuning_job, challenger.training_job, champion.training_job
        )
        states = {job.role: self._started(job, validation, tuning_job) for job in jobs}
        failed = [
            job.describe_outcome(states[job.role].status, states[job.role].failure)
            for job in jobs
            if states[job.role].status in FINISHED - {COMPLETED}
        ]
        if failed:
            reason = "; ".join(failed) + ": the champion keeps serving"
            return ContestResult(Verdict(Outcome.NOT_DEPLOYED, reason), states, None)
        running = [state.name for state in states.values() if state.status != COMPLETED]
        if running:
            reason = f"scoring both models on the challenger's validation rows: {', '.join(running)} running"
            return ContestResult(Verdict(Outcome.JUDGING, reason), states, None)
        try:
            held_out = self._score(validation, challenger, jobs)
        except (RowsMismatch, InvalidPredictions) as error:
            reason = f"the models could not be scored on the same rows: {error}; the champion keeps serving"
            return ContestResult(Verdict(Outcome.NOT_DEPLOYED, reason), states, None)
        return ContestResult(judge_held_out(held_out), states, held_out)

    def _started(self, job: ContestJob, validation: dict[str, Any], tuning_job: str) -> JobState:
        """The job's state, created first when it does not exist (a redelivery finds it)."""
        try:
            described = self._sagemaker.describe_transform_job(TransformJobName=job.name)
        except ClientError as error:
            if not is_missing(error):
                raise
            try:
                self._sagemaker.create_transform_job(
                    **transform_request(self._plan, job, validation, tuning_job)
                )
            except ClientError as create_error:
                # A concurrent delivery created it between the two calls.
                if error_code(create_error) != "ResourceInUse":
                    raise
            described = self._sagemaker.describe_transform_job(TransformJobName=job.name)
        return JobState(job.name, job.model, described["TransformJobStatus"], described.get("FailureReason"))

    def _score(
        self, validation: dict[str, Any], challenger: Score, jobs: tuple[ContestJob, ContestJob]
    ) -> HeldOut:
        objects = input_objects(self._s3, validation)
        rows = contest_rows(self._s3, objects, jobs[0].output, jobs[1].output)
        ours, theirs = evaluate(challenger.metric, rows)
        return HeldOut(challenger.metric, challenger.direction, ours.value, theirs.value, ours.rows)
