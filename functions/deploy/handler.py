"""Lambda entry point of the deploy function.

EventBridge invokes it asynchronously with SageMaker state changes: a finished tuning job is judged
and its best model promoted or not (the outcome is written to `deployments/<tuning job>.json` and
counted in CloudWatch metrics, which the program alarms on); an endpoint state change lets
housekeeping tidy old configs and models and attach autoscaling. `pulumi destroy` invokes it
synchronously to remove what it created. An error fails the invocation: Lambda retries it, then sends
the event to the stack's deploy dead-letter queue.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from deploy.contest import Outcome
from deploy.deferral import DeferredChallengers
from deploy.endpoint_state import EndpointBusy
from deploy.environment import load_environment
from deploy.events import EndpointChanged, Lifecycle, TuningJobChanged, UnknownEvent, parse_event
from deploy.housekeeping import Housekeeper
from deploy.promotion import Promoter, PromotionRecord
from deploy.teardown import remove_runtime_resources
from deploy.tuning_result import FINISHED
from shared.aws import client

# Metric names the program's alarm and dashboard read (namespace and service dimension come from the
# POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME variables).
MODELS_DEPLOYED = "ModelsDeployed"
MODELS_NOT_DEPLOYED = "ModelsNotDeployed"

logger = Logger(service="deploy")
metrics = Metrics()
environment = load_environment()
sagemaker = client("sagemaker")
autoscaling = client("application-autoscaling")
promoter = Promoter(environment.plan, sagemaker, autoscaling)
housekeeper = Housekeeper(environment.plan, environment.tuning_job_prefix, sagemaker, autoscaling)
deferred = DeferredChallengers(client("s3"), environment.bucket, environment.records_prefix)


def on_tuning_job(change: TuningJobChanged) -> dict[str, Any]:
    if not change.job_name.startswith(f"{environment.tuning_job_prefix}-") or change.status not in FINISHED:
        logger.info("tuning job change ignored", job=change.job_name, status=change.status)
        return {"ignored": change.job_name}
    try:
        record = promoter.promote(change.job_name)
    except EndpointBusy as busy:
        deferred.defer(change.job_name)
        logger.info("tuning job deferred until the endpoint settles", job=change.job_name, reason=str(busy))
        return {"deferred": change.job_name, "reason": str(busy)}
    publish(record)
    return record.to_json()


def publish(record: PromotionRecord) -> None:
    """Write the record, count it, log it."""
    write_record(record)
    counted = {Outcome.DEPLOY: MODELS_DEPLOYED, Outcome.NOT_DEPLOYED: MODELS_NOT_DEPLOYED}.get(
        Outcome(record.outcome)
    )
    if counted is not None:
        # Flushed here, not by a decorator on every invocation, which would warn when nothing was counted.
        metrics.add_metric(name=counted, unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
    log = logger.warning if record.outcome == Outcome.NOT_DEPLOYED else logger.info
    log(f"tuning job {record.outcome}", **record.to_json())


def write_record(record: PromotionRecord) -> None:
    key = f"{environment.records_prefix}{record.tuning_job}.json"
    body = json.dumps({**record.to_json(), "recordedAt": datetime.now(UTC).isoformat()}, indent=1)
    client("s3").put_object(
        Bucket=environment.bucket, Key=key, Body=body.encode(), ContentType="application/json"
    )


def on_endpoint(change: EndpointChanged) -> dict[str, Any]:
    if change.endpoint_name != environment.plan.endpoint_name:
        logger.info("endpoint change ignored", endpoint=change.endpoint_name)
        return {"ignored": change.endpoint_name}
    tidied = housekeeper.tidy(datetime.now(UTC))
    logger.info("endpoint housekeeping", status=change.status, **asdict(tidied))
    return {**asdict(tidied), "judged": judge_deferred() if tidied.settled else []}


def judge_deferred() -> list[str]:
    """Judge the challengers that waited for the endpoint, until one starts an update."""
    judged = []
    for job in deferred.waiting():
        try:
            record = promoter.promote(job)
        except EndpointBusy:
            break
        publish(record)
        deferred.judged(job)
        judged.append(job)
        if record.outcome == Outcome.DEPLOY:
            break  # the endpoint is updating now; the rest wait for its next InService event
    logger.info("deferred tuning jobs", judged=judged, waiting=deferred.waiting())
    return judged


def on_lifecycle(call: Lifecycle) -> dict[str, Any]:
    if not call.removes:
        return {"action": call.action}
    removed = remove_runtime_resources(
        environment.plan, environment.tuning_job_prefix, sagemaker, autoscaling
    )
    logger.info("runtime resources removed", **asdict(removed))
    return asdict(removed)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = parse_event(event)
    except UnknownEvent as error:
        logger.error("event not handled", reason=str(error))
        raise
    match parsed:
        case TuningJobChanged():
            return on_tuning_job(parsed)
        case EndpointChanged():
            return on_endpoint(parsed)
        case Lifecycle():
            return on_lifecycle(parsed)
