"""Lambda entry point of the deploy function.

EventBridge invokes it asynchronously with SageMaker state changes: a finished tuning job of this stack
is judged and its best model promoted or not; a state change of this stack's endpoint lets housekeeping
tidy and judge the challengers that waited for it. `pulumi destroy` invokes it synchronously, through
the program's cleanup resource, to remove what it created. An error fails the invocation: Lambda
retries it twice, then sends the event to the stack's deploy dead-letter queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from deploy.deployer import Deployer
from deploy.environment import load_environment
from deploy.events import EndpointChanged, Lifecycle, TuningJobChanged, UnknownEvent, parse_event
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
    now=lambda: datetime.now(UTC),
)


def on_tuning_job(change: TuningJobChanged) -> dict[str, Any]:
    if not change.job_name.startswith(f"{environment.tuning_job_prefix}-") or change.status not in FINISHED:
        logger.info("tuning job change ignored", job=change.job_name, status=change.status)
        return {"ignored": change.job_name}
    return deployer.tuning_job_finished(change.job_name)


def on_endpoint(change: EndpointChanged) -> dict[str, Any]:
    if change.endpoint_name != environment.plan.endpoint_name:
        logger.info("endpoint change ignored", endpoint=change.endpoint_name)
        return {"ignored": change.endpoint_name}
    return deployer.endpoint_changed(change.status)


def on_lifecycle(call: Lifecycle) -> dict[str, Any]:
    return deployer.tear_down() if call.removes else {"action": call.action}


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
