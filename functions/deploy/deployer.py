"""What the deploy function does with each kind of event, and how it reports what it decided.

Every judged tuning job is written to `deployments/<tuning job>.json` and counted (ModelsDeployed or
ModelsNotDeployed, which the program alarms on); one whose models are still being compared on the same
rows is written as `judging`, not counted, and written again with the decision. A redelivered event
that changes nothing is only logged, so it never overwrites the record of the decision it repeats.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from deploy.champions import ChampionStore, ConfigTags, SsmParameter
from deploy.contest import Outcome
from deploy.deferral import DeferredChallengers
from deploy.endpoint_state import IN_SERVICE, EndpointBusy, read_endpoint
from deploy.environment import DeployEnvironment
from deploy.held_out import HeldOutContest
from deploy.housekeeping import Housekeeper
from deploy.promotion import Promoter, PromotionRecord
from deploy.serving_record import SERVING_RECORD, serving_record
from deploy.teardown import remove_runtime_resources

# Metric names the program's alarm and dashboard read (namespace and service dimension come from the
# POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME variables).
MODELS_DEPLOYED = "ModelsDeployed"
MODELS_NOT_DEPLOYED = "ModelsNotDeployed"
COUNTED = {Outcome.DEPLOY: MODELS_DEPLOYED, Outcome.NOT_DEPLOYED: MODELS_NOT_DEPLOYED}


class Deployer:
    def __init__(
        self,
        environment: DeployEnvironment,
        *,
        sagemaker: Any,
        autoscaling: Any,
        s3: Any,
        ssm: Any,
        count: Callable[[str], None],
        log: Any,
        annotate: Callable[..., None],
        now: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._env = environment
        self._sagemaker = sagemaker
        self._autoscaling = autoscaling
        self._s3 = s3
        self._count = count
        self._log = log
        self._now = now
        self._sleep = sleep
        parameter = environment.plan.champion_parameter
        self._champions: ChampionStore = (
            SsmParameter(sagemaker, ssm, parameter) if parameter else ConfigTags(sagemaker)
        )
        contest = HeldOutContest(environment.plan, environment.records_prefix, sagemaker, s3)
        self._promoter = Promoter(
            environment.plan, sagemaker, autoscaling, self._champions, contest, annotate
        )
        self._annotate = annotate
        self._housekeeper = Housekeeper(
            environment.plan, environment.tuning_job_prefix, sagemaker, autoscaling
        )
        self._deferred = DeferredChallengers(s3, environment.bucket, environment.records_prefix)
        self._serving_key = f"{environment.records_prefix}{SERVING_RECORD}"

    def tuning_job_finished(self, job: str) -> dict[str, Any]:
        try:
            record = self._promoter.promote(job)
        except EndpointBusy as busy:
            self._deferred.defer(job)
            self._log.info("tuning job deferred until the endpoint settles", job=job, reason=str(busy))
            # The endpoint may have settled between the check and the marker, and then sends no event
            # that would judge it: look again.
            judged = self.judge_deferred() if self._endpoint_settled() else []
            return {"deferred": job, "reason": str(busy), "judged": judged}
        self._publish(record)
        return record.to_json()

    def endpoint_changed(self, status: str) -> dict[str, Any]:
        tidied = self._housekeeper.tidy(self._now())
        self._log.info("endpoint housekeeping", status=status, **asdict(tidied))
        if tidied.serving_config is not None and tidied.serving_config_arn is not None:
            self._champions.record(tidied.serving_config, tidied.serving_config_arn)
            self._record_serving(tidied.serving_config)
        return {**asdict(tidied), "judged": self.judge_deferred() if tidied.settled else []}

    def _record_serving(self, config_name: str) -> None:
        record = serving_record(self._sagemaker, self._env.plan.endpoint_name, config_name, self._now())
        if record is None:
            self._log.warning("serving config has no training job of its name", config=config_name)
            return
        self._s3.put_object(
            Bucket=self._env.bucket,
            Key=self._serving_key,
            Body=record.to_json(),
            ContentType="application/json",
        )

    def judge_deferred(self) -> list[str]:
        """Judge the challengers that waited for the endpoint, until one starts an update."""
        judged = []
        for job in self._deferred.waiting():
            try:
                record = self._promoter.promote(job)
            except EndpointBusy:
                break
            except ClientError as error:
                # One job SageMaker cannot tell about (deleted, refused) must not block the rest.
                record = self._promoter.unjudgeable(job, f"could not be judged: {error}")
            self._publish(record)
            self._deferred.judged(job)
            judged.append(job)
            if record.outcome == Outcome.DEPLOY:
                break  # the endpoint is updating now; the rest wait for its next InService event
        self._annotate(tuning_job="", dataset="")
        self._log.info("deferred tuning jobs", judged=judged, waiting=self._deferred.waiting())
        return judged

    def tear_down(self) -> dict[str, Any]:
        removed = remove_runtime_resources(
            self._env.plan, self._env.tuning_job_prefix, self._sagemaker, self._autoscaling, self._sleep
        )
        # Nothing serves any more: the predict function answers 503 instead of calling a deleted endpoint.
        self._s3.delete_object(Bucket=self._env.bucket, Key=self._serving_key)
        self._log.info("runtime resources removed", **asdict(removed))
        return asdict(removed)

    def _endpoint_settled(self) -> bool:
        endpoint = read_endpoint(self._sagemaker, self._env.plan.endpoint_name)
        return endpoint is None or (endpoint.status == IN_SERVICE and endpoint.pending_config_name is None)

    def _publish(self, record: PromotionRecord) -> None:
        outcome = Outcome(record.outcome)
        log = self._log.warning if outcome is Outcome.NOT_DEPLOYED else self._log.info
        log(f"tuning job {outcome}", **record.to_json())
        if outcome is Outcome.UNCHANGED:
            return
        # A contest in progress is written too, so the record shows what is running, but not counted.
        body = json.dumps({**record.to_json(), "recordedAt": self._now().isoformat()}, indent=1)
        self._s3.put_object(
            Bucket=self._env.bucket,
            Key=f"{self._env.records_prefix}{record.tuning_job}.json",
            Body=body.encode(),
            ContentType="application/json",
        )
        if outcome in COUNTED:
            self._count(COUNTED[outcome])
