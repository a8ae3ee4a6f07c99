"""The deploy function on SageMaker's published event shapes: which tuning results reach the endpoint,
what it leaves alone, how it tidies after an update, and what `pulumi destroy` has it remove.

SageMaker and Application Auto Scaling answer from the rehearsal's local SageMaker over HTTP (moto lacks
UpdateEndpoint, BestTrainingJob and hosting's rules), on a manual clock: a test decides when an endpoint's
change finishes (`settle`), rolls back (`roll_back`), or lets time pass for code that waits (`sleep`).
Finished tuning jobs are seeded as the transform's requests would have run them, their best model's
artifact in S3. S3 and SSM answer from moto; the environment is the one the program gives the function in
the dev stack, and, for instances mode, the dev stack's with prod's endpoint settings.
"""

from __future__ import annotations

import copy
import importlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

import shared.aws
from rehearsal.sagemaker.container.training import train
from rehearsal.sagemaker.hosting import CREATE_SECONDS, Endpoint
from rehearsal.sagemaker.server import SageMakerServer
from rehearsal.sagemaker.service import LocalSageMaker
from tests.functions.conftest import DATA_BUCKET, PROGRAM, REGION, TUNE_ENVIRONMENT
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
# The stack's part of every CreateHyperParameterTuningJob request (role, image, limits, ranges, output).
TUNING_TEMPLATE: dict[str, Any] = json.loads(TUNE_ENVIRONMENT["TUNING_REQUEST_TEMPLATE"])
MAX_JOBS = TUNING_TEMPLATE["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
TUNED = {"eta": "0.1", "max_depth": "6", "num_round": "120"}


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


def tuning_request(
    name: str,
    *,
    metric: str = "validation:auc",
    direction: str = "Maximize",
    image: str | None = None,
    dataset: str = "sales",
) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request the transform sends for a run of `dataset`: the program's
    template with the run's name, objective and channels."""
    request = copy.deepcopy(TUNING_TEMPLATE)
    request["HyperParameterTuningJobName"] = name
    request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] = {
        "Type": direction,
        "MetricName": metric,
    }
    definition = request["TrainingJobDefinition"]
    if image is not None:
        definition["AlgorithmSpecification"]["TrainingImage"] = image
    definition["StaticHyperParameters"]["eval_metric"] = metric.removeprefix("validation:")
    definition["InputDataConfig"] = [
        {
            "ChannelName": channel,
            "ContentType": "text/csv",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"s3://{DATA_BUCKET}/processed/{dataset}/run-1/{channel}/",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
        for channel in ("train", "validation")
    ]
    return request


@pytest.fixture(scope="module")
def model_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A model.tar.gz as a training job of the built-in container leaves it (a small binary model)."""
    channel = tmp_path_factory.mktemp("train")
    rows = [f"{int(x > 5)},{x},{(x * 7) % 11}" for x in range(12) for _ in range(3)]
    (channel / "part-00000.csv").write_text("\n".join(rows) + "\n")
    hyperparameters = {"num_round": "3", "objective": "binary:logistic", "max_depth": "2"}
    return train(hyperparameters, {"train": channel}, content_type="text/csv").model_archive


@dataclass
class Deploy:
    handler: ModuleType
    local: SageMakerServer
    archive: bytes
    clients: dict[str, Any] = field(default_factory=dict)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler.lambda_handler(event, LambdaContext())

    @property
    def sagemaker(self) -> LocalSageMaker:
        return self.local.service

    def finish(self, n: int, value: float | None, *, status: str = "Completed", **options: Any) -> str:
        """Tuning job `n` ran to `status`: with `value`, its best training job scored that and left its
        model in S3 while the others failed; without, every job failed."""
        name = job(n)
        self.sagemaker.seed_tuning_job(
            tuning_request(name, **options),
            status=status,
            best=None if value is None else (best_of(name), value),
            tuned=TUNED,
            failed_jobs=MAX_JOBS - (value is not None),
            model_archive=self.archive,
        )
        return name

    def start(self, n: int) -> str:
        name = job(n)
        self.sagemaker.seed_tuning_job(tuning_request(name), status="InProgress")
        return name

    def leftover_model(self, name: str, created: Any) -> None:
        """A model an earlier, unfinished delivery or promotion left, created at `created`."""
        self.sagemaker.add_model(
            {
                "ModelName": name,
                "PrimaryContainer": {
                    "Image": TUNING_TEMPLATE["TrainingJobDefinition"]["AlgorithmSpecification"][
                        "TrainingImage"
                    ],
                    "ModelDataUrl": f"s3://{DATA_BUCKET}/models/{name}/output/model.tar.gz",
                },
                "ExecutionRoleArn": DEV_PLAN["model_role_arn"],
            },
            created,
        )

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

    def endpoint(self) -> Endpoint | None:
        return self.sagemaker.endpoints.get(ENDPOINT)

    def serving(self) -> str:
        """The endpoint config the endpoint reports (DescribeEndpoint EndpointConfigName)."""
        endpoint = self.endpoint()
        assert endpoint is not None
        return endpoint.config.name

    def pending(self) -> str | None:
        """The config an update in progress deploys (DescribeEndpoint PendingDeploymentSummary)."""
        endpoint = self.endpoint()
        return endpoint.change.config.name if endpoint and endpoint.change else None

    def creations(self) -> list[str]:
        return [op for op in self.sagemaker.operations() if op in CREATIONS]

    def client(self, service: str) -> Any:
        """A client of the local SageMaker's `service`, to read what SageMaker reports."""
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION, endpoint_url=self.local.url)
        return self.clients[service]

    def model(self, name: str) -> dict[str, Any]:
        return dict(self.client("sagemaker").describe_model(ModelName=name))

    def config(self, name: str) -> dict[str, Any]:
        return dict(self.client("sagemaker").describe_endpoint_config(EndpointConfigName=name))

    def scalable_targets(self) -> list[dict[str, Any]]:
        answer = self.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="sagemaker"
        )
        return list(answer["ScalableTargets"])

    def scaling_policies(self) -> list[dict[str, Any]]:
        answer = self.client("application-autoscaling").describe_scaling_policies(
            ServiceNamespace="sagemaker"
        )
        return list(answer["ScalingPolicies"])


def _deploy(
    monkeypatch: pytest.MonkeyPatch, plan: dict[str, Any], local: SageMakerServer, archive: bytes
) -> Deploy:
    """The handler imported afresh with `plan`, its SageMaker and autoscaling clients pointed at `local`
    (a test that deploys with another plan later keeps the same SageMaker)."""
    for name, value in DEPLOY_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SERVING_PLAN", json.dumps(plan))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", local.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING", local.url)
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
    # Housekeeping compares creation times with the function's clock, and teardown waits: both on the
    # local SageMaker's clock.
    monkeypatch.setattr(handler.deployer, "_now", local.service.now)
    monkeypatch.setattr(handler.deployer, "_sleep", local.service.sleep)
    return Deploy(handler, local, archive)


@pytest.fixture
def serverless(
    monkeypatch: pytest.MonkeyPatch, local_sagemaker: SageMakerServer, model_archive: bytes
) -> Deploy:
    return _deploy(monkeypatch, DEV_PLAN, local_sagemaker, model_archive)


@pytest.fixture
def instances(
    monkeypatch: pytest.MonkeyPatch, local_sagemaker: SageMakerServer, model_archive: bytes
) -> Deploy:
    return _deploy(monkeypatch, INSTANCES_PLAN, local_sagemaker, model_archive)


@pytest.fixture(params=["serverless", "instances"])
def deploy(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    local_sagemaker: SageMakerServer,
    model_archive: bytes,
) -> Deploy:
    plan = DEV_PLAN if request.param == "serverless" else INSTANCES_PLAN
    return _deploy(monkeypatch, plan, local_sagemaker, model_archive)


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
    assert deploy.endpoint() is not None
    assert deploy.serving() == best_of(name)
    model = deploy.model(best_of(name))
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

    config = serverless.config(best_of(name))
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
    assert serverless.model(best_of(name))["EnableNetworkIsolation"] is False


def test_instances_endpoint_config_captures_to_the_bucket_encrypted(instances: Deploy) -> None:
    name = instances.finish(1, 0.81)
    instances(tuning_event(name, "Completed"))

    config = instances.config(best_of(name))
    variant = config["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (
        INSTANCES_PLAN["instance_type"],
        INSTANCES_PLAN["min_instances"],
    )
    capture = config["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{DATA_BUCKET}/capture/"
    assert capture["InitialSamplingPercentage"] == INSTANCES_PLAN["capture_percent"]
    assert capture["KmsKeyId"] == INSTANCES_PLAN["key_arn"]
    assert instances.model(best_of(name))["EnableNetworkIsolation"] is True


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


def test_an_instances_update_whose_alarm_fires_while_it_bakes_leaves_the_champion_serving(
    instances: Deploy, alarm_states: dict[str, str]
) -> None:
    first = champion(instances, 0.80)
    instances(tuning_event(instances.finish(2, 0.90), "Completed"))
    instances.sagemaker.sleep(CREATE_SECONDS)  # the new fleet is up and bakes
    assert instances.pending() is not None

    alarm_states[INSTANCES_PLAN["rollback_alarm"]] = "ALARM"
    instances.sagemaker.sleep(INSTANCES_PLAN["bake_seconds"])

    endpoint = instances.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", best_of(first))
    assert INSTANCES_PLAN["rollback_alarm"] in endpoint["FailureReason"]
    assert "PendingDeploymentSummary" not in endpoint
    tidied = instances(endpoint_event())
    assert tidied["serving_config"] == best_of(first), "housekeeping keeps the config that serves"


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
    serverless.leftover_model(best_of(name), serverless.sagemaker.now())

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == "deploy"
    assert serverless.pending() == best_of(name)


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
    assert serverless.pending() == best_of(third)
    serverless.sagemaker.settle()
    assert serverless(endpoint_event())["judged"] == [fourth]
    assert serverless.record(fourth)["outcome"] == "not-deployed"
    assert serverless.serving() == best_of(third)
    assert serverless(endpoint_event())["judged"] == [], "each waits only once"


def test_challenger_waiting_for_an_endpoint_that_went_away_creates_it(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    serverless.client("sagemaker").delete_endpoint(EndpointName=ENDPOINT)
    name = serverless.finish(2, 0.70)
    assert serverless(tuning_event(name, "Completed"))["deferred"] == name
    serverless.sagemaker.settle()  # the deletion is done

    assert serverless(endpoint_event(status="DELETING"))["judged"] == [name]
    assert serverless.serving() == best_of(name)


def test_duplicate_delivery_racing_the_first_one_changes_nothing(serverless: Deploy) -> None:
    name = serverless.finish(1, 0.81)
    # Another delivery of the same event creates the endpoint while this one is between its checks.
    serverless.sagemaker.before(
        "CreateEndpoint",
        lambda: serverless.client("sagemaker").create_endpoint(
            EndpointName=ENDPOINT, EndpointConfigName=best_of(name)
        ),
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
    assert serverless.pending() == best_of(other)


def test_challenger_deferred_just_as_the_endpoint_settles_is_judged_at_once(
    monkeypatch: pytest.MonkeyPatch, local_sagemaker: SageMakerServer, model_archive: bytes
) -> None:
    # With the champion in the config's tags only: with an SSM record, the record is behind until the
    # endpoint's InService event, which then judges the challenger.
    serverless = _deploy(monkeypatch, {**DEV_PLAN, "champion_parameter": ""}, local_sagemaker, model_archive)
    champion(serverless, 0.80)
    serverless(tuning_event(serverless.finish(2, 0.85), "Completed"))
    name = serverless.finish(3, 0.90)
    # The update finishes after the function saw it running, before it left its marker: no later
    # endpoint event would judge the marker.
    serverless.sagemaker.before("DescribeEndpointConfig", lambda: serverless.sagemaker.settle())

    result = serverless(tuning_event(name, "Completed"))

    assert result["deferred"] == name and result["judged"] == [name]
    assert serverless.pending() == best_of(name)


def test_event_ahead_of_sagemakers_own_state_is_retried(serverless: Deploy) -> None:
    from deploy.promotion import TuningNotFinished

    name = serverless.start(1)
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
    assert serverless.pending() == best_of(name)


def test_model_of_another_dataset_does_not_replace_the_serving_one(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.99, dataset="churn")

    result = serverless(tuning_event(name, "Completed"))

    assert result["outcome"] == "not-deployed" and "dataset" in result["reason"]
    assert serverless.creations().count("UpdateEndpoint") == 0


def test_update_from_a_serverless_endpoint_to_instances_is_a_plain_update(
    monkeypatch: pytest.MonkeyPatch, local_sagemaker: SageMakerServer, model_archive: bytes
) -> None:
    before = _deploy(monkeypatch, DEV_PLAN, local_sagemaker, model_archive)
    champion(before, 0.80)
    after = _deploy(monkeypatch, INSTANCES_PLAN, local_sagemaker, model_archive)
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


def test_instance_endpoint_is_not_turned_serverless(
    monkeypatch: pytest.MonkeyPatch, local_sagemaker: SageMakerServer, model_archive: bytes
) -> None:
    before = _deploy(monkeypatch, INSTANCES_PLAN, local_sagemaker, model_archive)
    champion(before, 0.80)
    after = _deploy(monkeypatch, DEV_PLAN, local_sagemaker, model_archive)
    name = after.finish(2, 0.90)

    result = after(tuning_event(name, "Completed"))

    assert result["outcome"] == "not-deployed" and "cannot turn it serverless" in result["reason"]


def test_new_instance_type_detaches_autoscaling_before_the_update(
    monkeypatch: pytest.MonkeyPatch, local_sagemaker: SageMakerServer, model_archive: bytes
) -> None:
    before = _deploy(monkeypatch, INSTANCES_PLAN, local_sagemaker, model_archive)
    champion(before, 0.80)
    before(endpoint_event())  # housekeeping attaches autoscaling
    assert before.scalable_targets()
    bigger_plan = {**INSTANCES_PLAN, "instance_type": "ml.c5.xlarge"}
    bigger = _deploy(monkeypatch, bigger_plan, local_sagemaker, model_archive)

    result = bigger(tuning_event(bigger.finish(2, 0.90), "Completed"))

    assert result["outcome"] == "deploy"
    assert bigger.scalable_targets() == []


@pytest.mark.parametrize("status", ["Failed", "OutOfService", "UpdateRollbackFailed"])
def test_endpoint_that_cannot_serve_takes_no_model_and_says_what_to_do(
    serverless: Deploy, status: str
) -> None:
    champion(serverless, 0.80)
    serverless.sagemaker.set_endpoint_status(ENDPOINT, status, failure_reason="capacity lost")
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
    assert during["skipped"] and instances.config(best_of(first)), "the rollback target stays"

    instances.sagemaker.settle()
    instances.sagemaker.tick(45)
    after = instances(endpoint_event())

    assert after["deleted_configs"] == [best_of(first)] and after["deleted_models"] == [best_of(first)]
    assert set(instances.sagemaker.configs) == set(instances.sagemaker.models) == {best_of(second)}
    (target,) = instances.scalable_targets()
    assert target["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        INSTANCES_PLAN["min_instances"],
        INSTANCES_PLAN["max_instances"],
    )
    (policy,) = instances.scaling_policies()
    assert policy["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
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
    serverless.leftover_model(fresh, serverless.sagemaker.now() - timedelta(minutes=1))

    serverless(endpoint_event())

    assert fresh in serverless.sagemaker.models


def test_endpoint_in_service_records_what_it_serves_for_the_predict_function(serverless: Deploy) -> None:
    first = champion(serverless, 0.80)
    serverless(endpoint_event())
    assert serverless.serving_record() == {
        "endpoint": ENDPOINT,
        "model": best_of(first),
        "schema": f"s3://{DATA_BUCKET}/processed/sales/run-1/schema.json",
        "recorded_at": serverless.sagemaker.now().isoformat(),
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


def test_the_endpoint_events_sagemaker_sends_are_ones_the_function_acts_on(
    serverless: Deploy, sagemaker_events: list[dict[str, Any]]
) -> None:
    name = serverless.finish(1, 0.81)
    serverless(tuning_event(name, "Completed"))
    serverless.sagemaker.settle()
    serverless.sagemaker.flush_events()
    changes = [e for e in sagemaker_events if e["detail-type"] == "SageMaker Endpoint State Change"]
    assert [e["detail"]["EndpointStatus"] for e in changes] == ["CREATING", "IN_SERVICE"]

    tidied = serverless(changes[-1])

    assert tidied["serving_config"] == best_of(name)
    record = serverless.serving_record()
    assert record is not None and record["model"] == best_of(name)


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
    # The blue/green update comes up and bakes: longer than teardown waits for an endpoint to settle.
    instances.sagemaker.sleep(CREATE_SECONDS + INSTANCES_PLAN["bake_seconds"])
    running = instances.start(3)
    instances.finish(4, None)

    removed = instances(cleanup_payload("delete"))

    assert removed["stopped_tuning_jobs"] == [running]
    assert instances.sagemaker.tuning_jobs[running].status == "Stopping"
    endpoint = instances.endpoint()
    assert removed["endpoint"] == ENDPOINT and endpoint is not None and endpoint.status == "Deleting"
    assert instances.serving_record() is None, "nothing serves: the predict function answers 503"
    assert (
        sorted(removed["endpoint_configs"])
        == sorted(removed["models"])
        == sorted([best_of(first), best_of(second)])
    )
    assert instances.sagemaker.configs == instances.sagemaker.models == {}
    assert instances.scalable_targets() == []


def test_destroy_waits_for_an_update_in_progress_before_deleting_the_endpoint(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    serverless(tuning_event(serverless.finish(2, 0.90), "Completed"))  # Updating for two minutes

    removed = serverless(cleanup_payload("delete"))

    endpoint = serverless.endpoint()
    assert removed["endpoint"] == ENDPOINT and endpoint is not None and endpoint.status == "Deleting"


def test_destroy_of_an_endpoint_that_stays_busy_fails_naming_what_to_do(serverless: Deploy) -> None:
    from deploy.endpoint_state import EndpointBusy

    champion(serverless, 0.80)
    serverless(tuning_event(serverless.finish(2, 0.90), "Completed"))
    serverless.sagemaker.stall(ENDPOINT)  # an update that does not finish

    with pytest.raises(EndpointBusy, match="run pulumi destroy again"):
        serverless(cleanup_payload("delete"))
    endpoint = serverless.endpoint()
    assert endpoint is not None and endpoint.status == "Updating"


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
