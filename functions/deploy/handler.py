"""Lambda entry point of the deploy function.

EventBridge invokes it asynchronously with SageMaker state changes: a finished tuning job of this stack
is judged and its best model promoted or not, on the same rows as the champion by two batch transform
jobs whose finishing judges it again (deploy.held_out); a state change of this stack's endpoint lets
housekeeping tidy and judge the challengers that waited for it. `pulumi destroy` invokes it
synchronously, through the program's cleanup resource, to remove what it created. An error fails the
invocation: Lambda retries it twice, then sends the event to the stack's deploy dead-letter queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from deploy.contest_jobs import FINISHED as TRANSFORM_FINISHED
from deploy.contest_jobs import tuning_job_of
from deploy.deployer import Deployer
from deploy.environment import load_environment
from deploy.events import (
    EndpointChanged,
    Lifecycle,
    TransformJobChanged,
    TuningJobChanged,
    UnknownEvent,
    parse_event,
)
from deploy.tuning_result import FINISHED
from shared.aws import client

logger = Logger(service="deploy")
metrics = Metrics()
environment = load_environment()


def count(name: str) -> None:
    # Flushed at once, not by a decorator on every invocation, which would warn when nothing was counted.
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()


deployer = Deployer(
    environment,
    sagemaker=client("sagemaker"),
    autoscaling=client("application-autoscaling"),
    s3=client("s3"),
    ssm=client("ssm") if environment.plan.champion_parameter else None,
    count=count,
    log=logger,
    annotate=logger.append_keys,
    now=lambda: datetime.now(UTC),
)


def on_tuning_job(change: TuningJobChanged) -> dict[str, Any]:
    logger.append_keys(tuning_job=change.job_name)
    if not change.job_name.startswith(f"{environment.tuning_job_prefix}-") or change.status not in FINISHED:
        logger.info("tuning job change ignored", job=change.job_name, status=change.status)
        return {"ignored": change.job_name}
    return deployer.tuning_job_finished(change.job_name)


def on_transform_job(change: TransformJobChanged) -> dict[str, Any]:
    tuning_job = tuning_job_of(change.job_name)
    logger.append_keys(tuning_job=tuning_job or "")
    if (
        tuning_job is None
        or not tuning_job.startswith(f"{environment.tuning_job_prefix}-")
        or change.status not in TRANSFORM_FINISHED
    ):
        logger.info("transform job change ignored", job=change.job_name, status=change.status)
        return {"ignored": change.job_name}
    return deployer.tuning_job_finished(tuning_job)


def on_endpoint(change: EndpointChanged) -> dict[str, Any]:
    if change.endpoint_name != environment.plan.endpoint_name:
        logger.info("endpoint change ignored", endpoint=change.endpoint_name)
        return {"ignored": change.endpoint_name}
    return deployer.endpoint_changed(change.status)


def on_lifecycle(call: Lifecycle) -> dict[str, Any]:
    return deployer.tear_down() if call.removes else {"action": call.action}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Every line says which upload's story it tells (Logs Insights: filter dataset = ...); "" until known.
    logger.append_keys(dataset="", tuning_job="")
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
        case TransformJobChanged():
            return on_transform_job(parsed)
        case Lifecycle():
            return on_lifecycle(parsed)
