"""The deploy function on SageMaker's published event shapes: which tuning results reach the endpoint,
what it leaves alone, how it tidies after an update, and what `pulumi destroy` has it remove.

SageMaker and Application Auto Scaling answer from `FakeSageMaker` (moto lacks UpdateEndpoint and
BestTrainingJob), S3 from moto; the environment is the one the program gives the function in the dev stack,
and, for instances mode, the dev stack's with prod's endpoint settings.
"""

from __future__ import annotations

import copy
import importlib
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

import shared.aws
from tests.functions.conftest import DATA_BUCKET, PROGRAM, REGION
from tests.support.fake_sagemaker import FakeSageMaker
from tests.support.lambda_events import LambdaContext
from tests.support.stacks import synth

EVENTS = Path(__file__).parent / "events"
DEPLOY_ENVIRONMENT: dict[str, str] = PROGRAM.named("deploy-function").inputs["environment"]["variables"]
DEV_PLAN = json.loads(DEPLOY_ENVIRONMENT["SERVING_PLAN"])
PROD_PLAN = json.loads(
    synth("prod").named("deploy-function").inputs["environment"]["variables"]["SERVING_PLAN"]
)
# Prod's way of serving with the dev stack's names and ARNs, which the dev role's policy covers.
ENDPOINT_SETTINGS = (
    "mode",
    "memory_mb",
    "max_concurrency",
    "instance_type",
    "min_instances",
    "max_instances",
    "invocations_per_instance",
    "capture_percent",
    "bake_seconds",
    # Prod keeps the champion in the config's tags only; dev also in an SSM parameter: both are exercised.
    "champion_parameter",
)
INSTANCES_PLAN = {**DEV_PLAN, **{key: PROD_PLAN[key] for key in ENDPOINT_SETTINGS}}
CHAMPION_PARAMETER = DEV_PLAN["champion_parameter"]
PREFIX = DEPLOY_ENVIRONMENT["TUNING_JOB_PREFIX"]
ENDPOINT = DEV_PLAN["endpoint_name"]
CREATIONS = ["CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint"]


def tuning_event(job: str, status: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "sagemaker-tuning-job-state-change.json").read_text())
    event["detail"]["HyperParameterTuningJobName"] = job
    event["detail"]["HyperParameterTuningJobStatus"] = status
    return event


def endpoint_event(name: str = ENDPOINT, status: str = "IN_SERVICE") -> dict[str, Any]:
    event = json.loads((EVENTS / "sagemaker-endpoint-state-change.json").read_text())
    event["detail"]["EndpointName"] = name
    event["detail"]["EndpointStatus"] = status
    return event


def job(n: int) -> str:
    """A tuning job name as the transform makes them: the prefix and a digest, 32 characters."""
    return f"{PREFIX}-{n:0>23x}"[:32]


def best_of(tuning_job: str) -> str:
    """SageMaker names a tuning job's training jobs `<tuning job>-<3 digits>-<8 hex>`."""
    return f"{tuning_job}-003-1a2b3c4d"


@dataclass
class Deploy:
    handler: ModuleType
    sagemaker: FakeSageMaker

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler.lambda_handler(event, LambdaContext())

    def finish(self, n: int, value: float | None, **options: Any) -> str:
        name = job(n)
        self.sagemaker.finish_tuning_job(
            name, best=None if value is None else (best_of(name), value), bucket=DATA_BUCKET, **options
        )
        return name

    def record(self, tuning_job: str) -> dict[str, Any]:
        body = boto3.client("s3", region_name=REGION).get_object(
            Bucket=DATA_BUCKET, Key=f"deployments/{tuning_job}.json"
        )["Body"]
        return dict(json.loads(body.read()))

    def serving_record(self) -> dict[str, Any] | None:
        try:
            body = boto3.client("s3", region_name=REGION).get_object(
                Bucket=DATA_BUCKET, Key="deployments/serving.json"
            )["Body"]
        except ClientError:
            return None
        return dict(json.loads(body.read()))

    def serving(self) -> str:
        assert self.sagemaker.endpoint is not None
        return self.sagemaker.endpoint.config

    def creations(self) -> list[str]:
        return [op for op in self.sagemaker.operations() if op in CREATIONS]


def _deploy(
    monkeypatch: pytest.MonkeyPatch, plan: dict[str, Any], fake: FakeSageMaker | None = None
) -> Deploy:
    """The handler imported afresh with `plan`, its SageMaker and autoscaling clients answered by `fake`
    (a new one unless a test carries one over from a deployment with another plan)."""
    for name, value in DEPLOY_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SERVING_PLAN", json.dumps(plan))
    shared.aws.client.cache_clear()
    if plan["champion_parameter"]:
        # What the program creates: the parameter with its initial value.
        initial = PROGRAM.named("deploy-champion").inputs
        # pulumi_aws marks a parameter's value secret: the mocks keep it wrapped.
        value = initial["value"]["value"] if isinstance(initial["value"], dict) else initial["value"]
        ssm = boto3.client("ssm", region_name=REGION)
        known = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [initial["name"]]}])
        if not known["Parameters"]:
            ssm.put_parameter(Name=initial["name"], Value=value, Type=initial["type"])
    import deploy.handler

    handler = importlib.reload(deploy.handler)
    fake = fake or FakeSageMaker(REGION)
    fake.install(shared.aws.client("sagemaker"))
    fake.install(shared.aws.client("application-autoscaling"))
    # Housekeeping compares creation times with the function's clock, and teardown waits: both on the
    # fake's clock.
    monkeypatch.setattr(handler.deployer, "_now", lambda: fake.clock)
    monkeypatch.setattr(handler.deployer, "_sleep", fake.sleep)
    return Deploy(handler, fake)


@pytest.fixture
def serverless(aws: None, monkeypatch: pytest.MonkeyPatch) -> Deploy:
    return _deploy(monkeypatch, DEV_PLAN)


@pytest.fixture
def instances(aws: None, monkeypatch: pytest.MonkeyPatch) -> Deploy:
    return _deploy(monkeypatch, INSTANCES_PLAN)


@pytest.fixture(params=["serverless", "instances"])
def deploy(request: pytest.FixtureRequest, aws: None, monkeypatch: pytest.MonkeyPatch) -> Deploy:
    return _deploy(monkeypatch, DEV_PLAN if request.param == "serverless" else INSTANCES_PLAN)


def champion(deploy: Deploy, value: float, n: int = 1, **options: Any) -> str:
    """Deploy a first model and let the endpoint come up with it, and say so, as SageMaker does."""
    name = deploy.finish(n, value, **options)
    deploy(tuning_event(name, "Completed"))
    deploy.sagemaker.settle()
    deploy(endpoint_event())
    return name


def champion_record() -> dict[str, Any]:
    value = boto3.client("ssm", region_name=REGION).get_parameter(Name=CHAMPION_PARAMETER)["Parameter"][
        "Value"
    ]
    return dict(json.loads(value))


# ---------------------------------------------------------------------------------- the decision table


def test_first_model_creates_model_config_and_endpoint(deploy: Deploy) -> None:
    name = deploy.finish(1, 0.81)

    result = deploy(tuning_event(name, "Completed"))

    assert result["outcome"] == "deploy"
    assert deploy.creations() == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    assert deploy.sagemaker.endpoint is not None and deploy.sagemaker.endpoint.name == ENDPOINT
    assert deploy.serving() == best_of(name)
    model = deploy.sagemaker.models[best_of(name)]
    assert (
        model["PrimaryContainer"]["ModelDataUrl"]
        == f"s3://{DATA_BUCKET}/models/{best_of(name)}/output/model.tar.gz"
    )
    assert model["ExecutionRoleArn"] == DEV_PLAN["model_role_arn"]
    record = deploy.record(name)
    assert (record["outcome"], record["challenger"]["score"]["value"]) == ("deploy", 0.81)
    assert record["training_data"] == f"s3://{DATA_BUCKET}/processed/sales/run-1/train/"


def test_serverless_endpoint_config_has_no_instances_capture_or_isolation(serverless: Deploy) -> None:
    name = serverless.finish(1, 0.81)
    serverless(tuning_event(name, "Completed"))

    config = serverless.sagemaker.configs[best_of(name)]
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": best_of(name),
            "ServerlessConfig": {
                "MemorySizeInMB": DEV_PLAN["memory_mb"],
                "MaxConcurrency": DEV_PLAN["max_concurrency"],
            },
        }
    ]
    # Serverless Inference supports neither data capture nor network isolation (developer guide).
    assert "DataCaptureConfig" not in config
    assert serverless.sagemaker.models[best_of(name)]["EnableNetworkIsolation"] is False


def test_instances_endpoint_config_captures_to_the_bucket_encrypted(instances: Deploy) -> None:
    name = instances.finish(1, 0.81)
    instances(tuning_event(name, "Completed"))

    config = instances.sagemaker.configs[best_of(name)]
    variant = config["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (
        INSTANCES_PLAN["instance_type"],
        INSTANCES_PLAN["min_instances"],
    )
    capture = config["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{DATA_BUCKET}/capture/"
    assert capture["InitialSamplingPercentage"] == INSTANCES_PLAN["capture_percent"]
    assert capture["KmsKeyId"] == INSTANCES_PLAN["key_arn"]
    assert instances.sagemaker.models[best_of(name)]["EnableNetworkIsolation"] is True


@pytest.mark.parametrize(
    ("direction", "metric", "champion_value", "challenger_value", "outcome"),
    [
        ("Maximize", "validation:auc", 0.80, 0.85, "deploy"),
        ("Maximize", "validation:auc", 0.80, 0.75, "not-deployed"),
        ("Maximize", "validation:auc", 0.80, 0.80, "not-deployed"),
        ("Minimize", "validation:rmse", 3.2, 2.9, "deploy"),
        ("Minimize", "validation:rmse", 3.2, 3.5, "not-deployed"),
    ],
)
def test_challenger_replaces_the_champion_only_when_strictly_better(
    serverless: Deploy,
    direction: str,
    metric: str,
    champion_value: float,
    challenger_value: float,
    outcome: str,
) -> None:
    old = champion(serverless, champion_value, metric=metric, direction=direction)
    name = serverless.finish(2, challenger_value, metric=metric, direction=direction)

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == outcome
    assert result["champion"]["value"] == champion_value
    updated = [params for op, params in serverless.sagemaker.calls if op == "UpdateEndpoint"]
    if outcome == "deploy":
        assert [u["EndpointConfigName"] for u in updated] == [best_of(name)]
    else:
        assert updated == []
        assert best_of(name) not in serverless.sagemaker.models, "a losing challenger gets no model"
        serverless.sagemaker.settle()
        assert serverless.serving() == best_of(old), "the champion keeps serving"
    assert serverless.record(name)["outcome"] == outcome


def test_instances_update_is_blue_green_keeps_instance_counts_and_rolls_back_on_the_alarm(
    instances: Deploy,
) -> None:
    champion(instances, 0.80)
    name = instances.finish(2, 0.90)

    instances(tuning_event(name, "Completed"))

    update = next(params for op, params in instances.sagemaker.calls if op == "UpdateEndpoint")
    assert update["RetainAllVariantProperties"] is True
    # botocore's model: excluding DataCaptureConfig from retention is "(Not currently supported.)".
    assert "ExcludeRetainedVariantProperties" not in update
    policy = update["DeploymentConfig"]
    assert policy["AutoRollbackConfiguration"] == {
        "Alarms": [{"AlarmName": INSTANCES_PLAN["rollback_alarm"]}]
    }
    blue_green = policy["BlueGreenUpdatePolicy"]
    # All at once: the bake time, during which the alarm rolls back, is TerminationWaitInSeconds
    # (developer guide, "Use all at once traffic shifting"); there are no steps to wait between.
    assert blue_green["TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    assert blue_green["TerminationWaitInSeconds"] == INSTANCES_PLAN["bake_seconds"]
    assert blue_green["MaximumExecutionTimeoutInSeconds"] > INSTANCES_PLAN["bake_seconds"]


def test_serverless_update_sends_no_deployment_policy(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.90)
    serverless(tuning_event(name, "Completed"))

    update = next(params for op, params in serverless.sagemaker.calls if op == "UpdateEndpoint")
    assert update == {"EndpointName": ENDPOINT, "EndpointConfigName": best_of(name)}


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_or_stopped_tuning_job_deploys_nothing_and_is_recorded_and_counted(
    serverless: Deploy, status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = serverless.finish(1, None, status=status)

    result = serverless(tuning_event(name, status))

    assert result["outcome"] == "not-deployed"
    assert result["reason"].startswith(f"tuning job {status}")
    assert serverless.creations() == []
    assert serverless.record(name)["tuning_status"] == status
    assert _emitted_metric(capsys.readouterr().out, "ModelsNotDeployed") == 1


def test_completed_tuning_job_without_a_completed_training_job_deploys_nothing(serverless: Deploy) -> None:
    name = serverless.finish(1, None)

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == "not-deployed"
    assert "no training job completed" in result["reason"] and "NonRetryableError 4" in result["reason"]
    assert serverless.creations() == []


def test_deployment_is_counted_as_a_metric(serverless: Deploy, capsys: pytest.CaptureFixture[str]) -> None:
    name = serverless.finish(1, 0.8)
    serverless(tuning_event(name, "Completed"))
    assert _emitted_metric(capsys.readouterr().out, "ModelsDeployed") == 1


def test_repeated_event_changes_nothing_while_deploying_and_after(deploy: Deploy) -> None:
    name = deploy.finish(1, 0.81)
    deploy(tuning_event(name, "Completed"))

    again = deploy(tuning_event(name, "Completed"))
    deploy.sagemaker.settle()
    once_more = deploy(tuning_event(name, "Completed"))

    assert (again["outcome"], once_more["outcome"]) == ("unchanged", "unchanged")
    assert deploy.creations() == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    assert deploy.record(name)["outcome"] == "deploy", "a redelivery keeps the record of the decision"


def test_redelivery_after_a_partial_deployment_reuses_what_exists(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.90)
    # An earlier delivery created the model, then the function timed out.
    serverless.sagemaker.add_model(best_of(name), serverless.sagemaker.clock)

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == "deploy"
    assert serverless.sagemaker.endpoint is not None and serverless.sagemaker.endpoint.pending == best_of(
        name
    )


def test_challenger_arriving_during_an_update_waits_and_is_judged_once_the_endpoint_settles(
    serverless: Deploy,
) -> None:
    champion(serverless, 0.80)
    second = serverless.finish(2, 0.85)
    serverless(tuning_event(second, "Completed"))  # now Updating
    third, fourth = serverless.finish(3, 0.90), serverless.finish(4, 0.70)

    assert serverless(tuning_event(third, "Completed"))["deferred"] == third
    assert serverless(tuning_event(fourth, "Completed"))["deferred"] == fourth
    assert serverless(endpoint_event(status="UPDATING"))["judged"] == []
    serverless.sagemaker.settle()
    settled = serverless(endpoint_event())

    # The first waiting challenger starts an update; the next waits for that update to finish.
    assert settled["judged"] == [third]
    assert serverless.sagemaker.endpoint is not None and serverless.sagemaker.endpoint.pending == best_of(
        third
    )
    serverless.sagemaker.settle()
    assert serverless(endpoint_event())["judged"] == [fourth]
    assert serverless.record(fourth)["outcome"] == "not-deployed"
    assert serverless.serving() == best_of(third)
    assert serverless(endpoint_event())["judged"] == [], "each waits only once"


def test_challenger_waiting_for_an_endpoint_that_went_away_creates_it(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    assert serverless.sagemaker.endpoint is not None
    serverless.sagemaker.endpoint.status = "Deleting"
    name = serverless.finish(2, 0.70)
    assert serverless(tuning_event(name, "Completed"))["deferred"] == name
    serverless.sagemaker.endpoint = None

    assert serverless(endpoint_event(status="DELETING"))["judged"] == [name]
    assert serverless.sagemaker.endpoint is not None and serverless.sagemaker.endpoint.config == best_of(name)


def test_duplicate_delivery_racing_the_first_one_changes_nothing(serverless: Deploy) -> None:
    name = serverless.finish(1, 0.81)
    # Another delivery of the same event creates the endpoint while this one is between its checks.
    serverless.sagemaker.before(
        "CreateEndpoint", lambda: serverless.sagemaker._create_endpoint(ENDPOINT, best_of(name))
    )

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == "deploy"
    assert serverless.serving() == best_of(name)


def test_challenger_racing_another_update_waits(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    other, name = serverless.finish(2, 0.85), serverless.finish(3, 0.90)
    serverless.sagemaker.before("UpdateEndpoint", lambda: serverless(tuning_event(other, "Completed")))

    result = serverless(tuning_event(name, "Completed"))

    assert result["deferred"] == name
    assert serverless.sagemaker.endpoint is not None and serverless.sagemaker.endpoint.pending == best_of(
        other
    )


def test_challenger_deferred_just_as_the_endpoint_settles_is_judged_at_once(
    monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    # With the champion in the config's tags only: with an SSM record, the record is behind until the
    # endpoint's InService event, which then judges the challenger.
    serverless = _deploy(monkeypatch, {**DEV_PLAN, "champion_parameter": ""})
    champion(serverless, 0.80)
    serverless(tuning_event(serverless.finish(2, 0.85), "Completed"))
    name = serverless.finish(3, 0.90)
    # The update finishes after the function saw it running, before it left its marker: no later
    # endpoint event would judge the marker.
    serverless.sagemaker.before("DescribeEndpointConfig", serverless.sagemaker.settle)

    result = serverless(tuning_event(name, "Completed"))

    assert result["deferred"] == name and result["judged"] == [name]
    assert serverless.sagemaker.endpoint is not None and serverless.sagemaker.endpoint.pending == best_of(
        name
    )


def test_event_ahead_of_sagemakers_own_state_is_retried(serverless: Deploy) -> None:
    from deploy.promotion import TuningNotFinished

    name = job(1)
    serverless.sagemaker.start_tuning_job(name)
    with pytest.raises(TuningNotFinished, match="still InProgress"):
        serverless(tuning_event(name, "Completed"))


def test_a_deferred_job_sagemaker_cannot_describe_does_not_block_the_others(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    serverless(tuning_event(serverless.finish(2, 0.85), "Completed"))
    gone, name = serverless.finish(3, 0.90), serverless.finish(4, 0.95)
    serverless(tuning_event(gone, "Completed"))
    serverless(tuning_event(name, "Completed"))
    del serverless.sagemaker.training_jobs[best_of(gone)]
    serverless.sagemaker.settle()

    assert serverless(endpoint_event())["judged"] == [gone, name]
    assert serverless.record(gone)["reason"].startswith("could not be judged")
    assert serverless.sagemaker.endpoint is not None and serverless.sagemaker.endpoint.pending == best_of(
        name
    )


def test_model_of_another_dataset_does_not_replace_the_serving_one(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = job(2)
    serverless.sagemaker.finish_tuning_job(
        name, best=(best_of(name), 0.99), bucket=DATA_BUCKET, dataset="churn"
    )

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == "not-deployed" and "dataset" in result["reason"]
    assert serverless.creations().count("UpdateEndpoint") == 0


def test_update_from_a_serverless_endpoint_to_instances_is_a_plain_update(
    monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    before = _deploy(monkeypatch, DEV_PLAN)
    champion(before, 0.80)
    after = _deploy(monkeypatch, INSTANCES_PLAN, before.sagemaker)
    name = after.finish(2, 0.90)

    after(tuning_event(name, "Completed"))

    update = next(params for op, params in after.sagemaker.calls if op == "UpdateEndpoint")
    # Deployment guardrails do not apply to a serverless endpoint being converted.
    assert update == {"EndpointName": ENDPOINT, "EndpointConfigName": best_of(name)}


def test_challenger_scored_on_another_metric_is_not_comparable(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.10, metric="validation:logloss", direction="Minimize")

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == "not-deployed" and "not comparable" in result["reason"]


def test_instance_endpoint_is_not_turned_serverless(monkeypatch: pytest.MonkeyPatch, aws: None) -> None:
    before = _deploy(monkeypatch, INSTANCES_PLAN)
    champion(before, 0.80)
    after = _deploy(monkeypatch, DEV_PLAN, before.sagemaker)
    name = after.finish(2, 0.90)

    result = after(tuning_event(name, "Completed"))

    assert result["outcome"] == "not-deployed" and "cannot turn it serverless" in result["reason"]


def test_new_instance_type_detaches_autoscaling_before_the_update(
    monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    before = _deploy(monkeypatch, INSTANCES_PLAN)
    champion(before, 0.80)
    before(endpoint_event())  # housekeeping attaches autoscaling
    assert before.sagemaker.scalable_targets
    bigger = _deploy(monkeypatch, {**INSTANCES_PLAN, "instance_type": "ml.c5.xlarge"}, before.sagemaker)

    result = bigger(tuning_event(bigger.finish(2, 0.90), "Completed"))

    assert result["outcome"] == "deploy"
    assert bigger.sagemaker.scalable_targets == {}


@pytest.mark.parametrize("status", ["Failed", "OutOfService", "UpdateRollbackFailed"])
def test_endpoint_that_cannot_serve_takes_no_model_and_says_what_to_do(
    serverless: Deploy, status: str
) -> None:
    champion(serverless, 0.80)
    assert serverless.sagemaker.endpoint is not None
    serverless.sagemaker.endpoint.status = status
    name = serverless.finish(2, 0.95)

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == "not-deployed"
    assert f"is {status}" in result["reason"] and "delete it" in result["reason"]
    assert serverless.creations().count("UpdateEndpoint") == 0


def test_tuning_job_of_another_stack_is_ignored(serverless: Deploy) -> None:
    result = serverless(tuning_event("other-0000-1234567890abcdef1234567", "Completed"))
    assert result == {"ignored": "other-0000-1234567890abcdef1234567"}
    assert serverless.sagemaker.calls == []


# ----------------------------------------------------------------------------------------- housekeeping


def test_housekeeping_deletes_replaced_configs_and_models_after_the_update_finished(
    instances: Deploy,
) -> None:
    first = champion(instances, 0.80)
    instances.sagemaker.tick(60)
    second = instances.finish(2, 0.90)
    instances(tuning_event(second, "Completed"))

    during = instances(endpoint_event(status="UPDATING"))
    assert during["skipped"] and best_of(first) in instances.sagemaker.configs, "the rollback target stays"

    instances.sagemaker.settle()
    instances.sagemaker.tick(45)
    after = instances(endpoint_event())

    assert after["deleted_configs"] == [best_of(first)] and after["deleted_models"] == [best_of(first)]
    assert set(instances.sagemaker.configs) == set(instances.sagemaker.models) == {best_of(second)}
    target = instances.sagemaker.scalable_targets[f"endpoint/{ENDPOINT}/variant/AllTraffic"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        INSTANCES_PLAN["min_instances"],
        INSTANCES_PLAN["max_instances"],
    )
    policy = instances.sagemaker.scaling_policies[f"endpoint/{ENDPOINT}/variant/AllTraffic"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == INSTANCES_PLAN["invocations_per_instance"]


def test_housekeeping_after_a_rollback_removes_the_rejected_config(serverless: Deploy) -> None:
    first = champion(serverless, 0.80)
    second = serverless.finish(2, 0.90)
    serverless(tuning_event(second, "Completed"))
    serverless.sagemaker.roll_back()
    serverless.sagemaker.tick(45)

    tidied = serverless(endpoint_event())

    assert tidied["deleted_configs"] == [best_of(second)]
    assert serverless.serving() == best_of(first)
    assert tidied["autoscaling"] is False, "serverless endpoints have no instances to scale"


def test_housekeeping_keeps_what_a_promotion_has_just_created(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    serverless.sagemaker.tick(45)
    fresh = best_of(job(9))
    serverless.sagemaker.add_model(fresh, serverless.sagemaker.clock - timedelta(minutes=1))

    serverless(endpoint_event())

    assert fresh in serverless.sagemaker.models


def test_endpoint_in_service_records_what_it_serves_for_the_predict_function(serverless: Deploy) -> None:
    first = champion(serverless, 0.80)
    serverless(endpoint_event())
    assert serverless.serving_record() == {
        "endpoint": ENDPOINT,
        "model": best_of(first),
        "schema": f"s3://{DATA_BUCKET}/processed/sales/run-1/schema.json",
        "recorded_at": serverless.sagemaker.clock.isoformat(),
    }
    second = serverless.finish(2, 0.90)
    serverless(tuning_event(second, "Completed"))
    serverless(endpoint_event(status="UPDATING"))
    assert serverless.serving_record()["model"] == best_of(first), (
        "the old model serves until the update ends"
    )
    serverless.sagemaker.settle()
    serverless(endpoint_event())
    assert serverless.serving_record()["model"] == best_of(second)


def test_ssm_champion_record_follows_the_serving_config(serverless: Deploy) -> None:
    assert CHAMPION_PARAMETER, "the dev stack keeps the champion in an SSM parameter"
    first = champion(serverless, 0.80)
    record = champion_record()
    assert record["config"] == best_of(first)
    assert (record["score"]["metric"], record["score"]["value"]) == ("validation:auc", 0.80)

    second = serverless.finish(2, 0.90)
    serverless(tuning_event(second, "Completed"))
    serverless.sagemaker.settle()
    # The update has finished but its InService event has not been handled: the record is behind, so a
    # challenger waits instead of being judged against the old champion.
    third = serverless.finish(3, 0.85)
    assert serverless(tuning_event(third, "Completed"))["deferred"] == third
    judged = serverless(endpoint_event())

    assert champion_record()["config"] == best_of(second)
    assert judged["judged"] == [third]
    assert serverless.record(third)["outcome"] == "not-deployed", "0.85 does not beat the new champion's 0.90"


def test_housekeeping_without_an_endpoint_does_nothing(serverless: Deploy) -> None:
    assert serverless(endpoint_event())["skipped"] == "the endpoint does not exist"


def test_event_of_another_endpoint_is_ignored(serverless: Deploy) -> None:
    assert serverless(endpoint_event(name="someone-elses"))["ignored"] == "someone-elses"


# ------------------------------------------------------------------------------------------ teardown


def cleanup_payload(action: str) -> dict[str, Any]:
    """What the program's cleanup invocation sends: its input plus the lifecycle key."""
    invocation = PROGRAM.named("deploy-cleanup").inputs
    payload = json.loads(invocation["input"])
    previous = None if action == "create" else copy.deepcopy(payload)
    return {**payload, invocation["terraformKey"]: {"action": action, "prev_input": previous}}


def test_destroy_stops_tuning_and_removes_endpoint_configs_models_and_scaling(instances: Deploy) -> None:
    first = champion(instances, 0.80)
    instances(endpoint_event())
    second = instances.finish(2, 0.90)
    instances(tuning_event(second, "Completed"))
    running = job(3)
    instances.sagemaker.start_tuning_job(running)
    instances.sagemaker.finish_tuning_job(job(4), status="Completed")

    removed = instances(cleanup_payload("delete"))

    assert removed["stopped_tuning_jobs"] == [running]
    assert instances.sagemaker.tuning_jobs[running]["HyperParameterTuningJobStatus"] == "Stopping"
    assert removed["endpoint"] == ENDPOINT and instances.sagemaker.endpoint is None
    assert instances.serving_record() is None, "nothing serves: the predict function answers 503"
    assert (
        sorted(removed["endpoint_configs"])
        == sorted(removed["models"])
        == sorted([best_of(first), best_of(second)])
    )
    assert (
        instances.sagemaker.configs
        == instances.sagemaker.models
        == instances.sagemaker.scalable_targets
        == {}
    )


def test_destroy_waits_for_an_update_in_progress_before_deleting_the_endpoint(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    serverless(tuning_event(serverless.finish(2, 0.90), "Completed"))  # Updating for two minutes

    removed = serverless(cleanup_payload("delete"))

    assert removed["endpoint"] == ENDPOINT and serverless.sagemaker.endpoint is None


def test_destroy_of_an_endpoint_that_stays_busy_fails_naming_what_to_do(serverless: Deploy) -> None:
    from deploy.endpoint_state import EndpointBusy

    champion(serverless, 0.80)
    serverless(tuning_event(serverless.finish(2, 0.90), "Completed"))
    assert serverless.sagemaker.endpoint is not None
    serverless.sagemaker.endpoint.ready_at = None  # an update that does not finish

    with pytest.raises(EndpointBusy, match="run pulumi destroy again"):
        serverless(cleanup_payload("delete"))
    assert serverless.sagemaker.endpoint is not None


def test_destroy_of_a_stack_that_never_deployed_succeeds(serverless: Deploy) -> None:
    removed = serverless(cleanup_payload("delete"))
    assert removed == {"stopped_tuning_jobs": [], "endpoint": None, "endpoint_configs": [], "models": []}


@pytest.mark.parametrize("action", ["create", "update"])
def test_cleanup_resource_creation_and_update_remove_nothing(serverless: Deploy, action: str) -> None:
    champion(serverless, 0.80)
    calls = len(serverless.sagemaker.calls)
    assert serverless(cleanup_payload(action)) == {"action": action}
    assert len(serverless.sagemaker.calls) == calls


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "not a JSON object"),
        ({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}, "event source 'aws.s3'"),
        (
            {"source": "aws.sagemaker", "detail-type": "SageMaker Training Job State Change", "detail": {}},
            "detail-type",
        ),
        ({"source": "aws.sagemaker", "detail-type": "SageMaker Endpoint State Change"}, "no detail object"),
        (
            {
                "source": "aws.sagemaker",
                "detail-type": "SageMaker HyperParameter Tuning Job State Change",
                "detail": {},
            },
            "lacks HyperParameterTuningJobName",
        ),
        ({"tf": {"action": "explode"}, "purpose": "remove-runtime-resources"}, "action 'explode'"),
        ({"tf": {"action": "delete"}}, "purpose None"),
    ],
)
def test_unknown_events_fail_naming_what_is_wrong(serverless: Deploy, event: Any, message: str) -> None:
    from deploy.events import UnknownEvent

    with pytest.raises(UnknownEvent, match=message):
        serverless(event)
    assert serverless.sagemaker.calls == []


def test_sagemaker_errors_other_than_a_duplicate_are_not_swallowed(serverless: Deploy) -> None:
    name = serverless.finish(1, 0.81)
    del serverless.sagemaker.training_jobs[best_of(name)]
    with pytest.raises(ClientError, match="Requested resource not found"):
        serverless(tuning_event(name, "Completed"))


def _emitted_metric(stdout: str, name: str) -> float | None:
    """The value of metric `name` in the CloudWatch embedded metric format lines the function printed."""
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(document, dict) and name in document and "_aws" in document:
            return float(document[name][0] if isinstance(document[name], list) else document[name])
    return None
