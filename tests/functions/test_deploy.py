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
import io
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.events.models import EventPattern
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

import shared.aws
from rehearsal.sagemaker.batch import STARTUP_SECONDS as TRANSFORM_STARTUP_SECONDS
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


# Every run's rows, label first as the transform writes them: a model trained on them learns the label;
# one trained on `NOISE_ROWS`, whose label ignores the features, does not.
ROWS = [f"{int(x > 5)},{x},{(x * 7) % 11}" for x in range(12) for _ in range(3)]
NOISE_ROWS = [f"{x % 2},{x},{(x * 7) % 11}" for x in range(12) for _ in range(3)]
# Half right: learns the label with two values mislabelled, so it ranks between the other two.
MEDIUM_ROWS = [f"{int((x > 5) != (x in (4, 7)))},{x},{(x * 7) % 11}" for x in range(12) for _ in range(3)]


def _archive(directory: Path, rows: list[str]) -> bytes:
    """A model.tar.gz as a training job of the built-in container leaves it (a small binary model)."""
    (directory / "part-00000.csv").write_text("\n".join(rows) + "\n")
    hyperparameters = {"num_round": "3", "objective": "binary:logistic", "max_depth": "2"}
    return train(hyperparameters, {"train": directory}, content_type="text/csv").model_archive


@pytest.fixture(scope="module")
def model_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A model that predicts the validation rows well."""
    return _archive(tmp_path_factory.mktemp("train"), ROWS)


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory, model_archive: bytes) -> dict[str, bytes]:
    """Models by how well they predict the validation rows: strong, medium, weak (no better than chance)."""
    return {
        "strong": model_archive,
        "medium": _archive(tmp_path_factory.mktemp("medium"), MEDIUM_ROWS),
        "weak": _archive(tmp_path_factory.mktemp("noise"), NOISE_ROWS),
    }


@dataclass
class Deploy:
    handler: ModuleType
    local: SageMakerServer
    archives: dict[str, bytes]
    events: list[dict[str, Any]]
    clients: dict[str, Any] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler.lambda_handler(event, LambdaContext())

    def judge(self, tuning_job: str) -> dict[str, Any]:
        """The tuning job's Completed event, then, while the function is judging it on the same rows as the
        champion, the contest's transform jobs run and their finished events reach the function as the
        program's rule delivers them; the function's answer with the decision (the event after it finds
        the decision made)."""
        result = self(tuning_event(tuning_job, "Completed"))
        while result.get("outcome") == "judging":
            self.sagemaker.tick(TRANSFORM_STARTUP_SECONDS / 60)
            finished = self.transform_events()
            assert finished, "the function waits for transform jobs that never finish"
            answers = [self(event) for event in finished]
            result = next((a for a in answers if a.get("outcome") != "judging"), answers[-1])
        return result

    def contests(self) -> list[dict[str, Any]]:
        """The contests under way run to their end: their transform jobs finish and each event reaches the
        function; its answers, in order."""
        answers = []
        while any(j.status == "InProgress" for j in self.sagemaker.transform_jobs.values()):
            self.sagemaker.tick(TRANSFORM_STARTUP_SECONDS / 60)
            answers += [self(event) for event in self.transform_events()]
        return answers

    def transform_events(self) -> list[dict[str, Any]]:
        """The transform job events the local SageMaker sent since the last call that the program's
        transform rule delivers to the function."""
        self.sagemaker.flush_events()
        rule = EventPattern.load(PROGRAM.named("deploy-transform-rule").inputs["eventPattern"])
        fresh = [e for e in self.events if e["id"] not in self.delivered and rule.matches_event(cast(Any, e))]
        self.delivered |= {e["id"] for e in self.events}
        return fresh

    @property
    def sagemaker(self) -> LocalSageMaker:
        return self.local.service

    def finish(
        self,
        n: int,
        value: float | None,
        *,
        status: str = "Completed",
        model: str = "strong",
        **options: Any,
    ) -> str:
        """Tuning job `n` ran to `status` on its run's rows (in S3): with `value`, its best training job
        scored that on its own validation channel and left its `model` (of `archives`) in S3 while the
        others failed; without, every job failed."""
        name = job(n)
        request = tuning_request(name, **options)
        for channel in request["TrainingJobDefinition"]["InputDataConfig"]:
            bucket, _, prefix = channel["DataSource"]["S3DataSource"]["S3Uri"][5:].partition("/")
            boto3.client("s3", region_name=REGION).put_object(
                Bucket=bucket, Key=f"{prefix}part-00000.csv", Body="\n".join(ROWS).encode() + b"\n"
            )
        self.sagemaker.seed_tuning_job(
            request,
            status=status,
            best=None if value is None else (best_of(name), value),
            tuned=TUNED,
            failed_jobs=MAX_JOBS - (value is not None),
            model_archive=self.archives[model],
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
    monkeypatch: pytest.MonkeyPatch,
    plan: dict[str, Any],
    local: SageMakerServer,
    archives: dict[str, bytes],
    events: list[dict[str, Any]],
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
    return Deploy(handler, local, archives, events)


@pytest.fixture
def serverless(
    monkeypatch: pytest.MonkeyPatch,
    local_sagemaker: SageMakerServer,
    archives: dict[str, bytes],
    sagemaker_events: list[dict[str, Any]],
) -> Deploy:
    return _deploy(monkeypatch, DEV_PLAN, local_sagemaker, archives, sagemaker_events)


@pytest.fixture
def instances(
    monkeypatch: pytest.MonkeyPatch,
    local_sagemaker: SageMakerServer,
    archives: dict[str, bytes],
    sagemaker_events: list[dict[str, Any]],
) -> Deploy:
    return _deploy(monkeypatch, INSTANCES_PLAN, local_sagemaker, archives, sagemaker_events)


@pytest.fixture(params=["serverless", "instances"])
def deploy(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    local_sagemaker: SageMakerServer,
    archives: dict[str, bytes],
    sagemaker_events: list[dict[str, Any]],
) -> Deploy:
    plan = DEV_PLAN if request.param == "serverless" else INSTANCES_PLAN
    return _deploy(monkeypatch, plan, local_sagemaker, archives, sagemaker_events)


def champion(deploy: Deploy, value: float, n: int = 1, *, model: str = "weak", **options: Any) -> str:
    """Deploy a first model (the weak one unless told otherwise, so a default challenger beats it on the
    same rows) and let the endpoint come up with it, and say so, as SageMaker does."""
    name = deploy.finish(n, value, model=model, **options)
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

    result = deploy.judge(name)

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
    serverless.judge(name)

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
    instances.judge(name)

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
    ("direction", "metric"), [("Maximize", "validation:auc"), ("Minimize", "validation:rmse")]
)
def test_challenger_better_on_the_same_rows_replaces_the_champion(
    serverless: Deploy, direction: str, metric: str
) -> None:
    # Own validation scores that would say the opposite: only the same rows count.
    old = champion(serverless, 0.99 if direction == "Maximize" else 0.01, metric=metric, direction=direction)
    name = serverless.finish(2, 0.5, metric=metric, direction=direction)

    result = serverless.judge(name)

    assert result["outcome"] == "deploy", result["reason"]
    held_out = result["contest"]["heldOut"]
    assert held_out["rows"] == len(ROWS) and held_out["metric"] == metric
    if direction == "Maximize":
        assert held_out["challenger"] > held_out["champion"]
    else:
        assert held_out["challenger"] < held_out["champion"]
    updated = [params for op, params in serverless.sagemaker.calls if op == "UpdateEndpoint"]
    assert [u["EndpointConfigName"] for u in updated] == [best_of(name)]
    jobs = result["contest"]["transformJobs"]
    assert (jobs["challenger"]["model"], jobs["champion"]["model"]) == (best_of(name), best_of(old))
    assert serverless.record(name)["contest"] == result["contest"]


def test_challenger_whose_own_score_beats_the_champions_but_loses_on_the_same_rows_is_not_deployed(
    serverless: Deploy, capsys: pytest.CaptureFixture[str]
) -> None:
    old = champion(serverless, 0.80, model="strong")
    # Lucky on its own validation split: 0.95 recorded, against the champion's 0.80.
    name = serverless.finish(2, 0.95, model="weak")

    result = serverless.judge(name)

    assert result["outcome"] == "not-deployed"
    record = serverless.record(name)
    held_out = record["contest"]["heldOut"]
    assert held_out["champion"] > held_out["challenger"]
    assert record["reason"] == (
        f"not better: validation:auc on the same {len(ROWS)} validation rows: challenger "
        f"{held_out['challenger']:g} vs champion {held_out['champion']:g}"
    )
    assert (record["challenger"]["score"]["value"], record["champion"]["value"]) == (0.95, 0.80)
    assert [op for op, _ in serverless.sagemaker.calls if op == "UpdateEndpoint"] == []
    serverless.sagemaker.settle()
    assert serverless.serving() == best_of(old), "the champion keeps serving"
    assert _emitted_metric(capsys.readouterr().out, "ModelsNotDeployed") == 1


def test_the_contest_scores_what_each_model_predicts_of_the_same_validation_rows(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.90)

    result = serverless.judge(name)

    held_out = result["contest"]["heldOut"]
    for role in ("challenger", "champion"):
        transform = serverless.client("sagemaker").describe_transform_job(
            TransformJobName=result["contest"]["transformJobs"][role]["name"]
        )
        # The challenger's validation channel, label dropped, predictions encrypted with the stack key.
        assert transform["TransformInput"]["DataSource"]["S3DataSource"] == {
            "S3DataType": "S3Prefix",
            "S3Uri": f"s3://{DATA_BUCKET}/processed/sales/run-1/validation/",
        }
        assert transform["DataProcessing"]["InputFilter"] == "$[1:]"
        assert transform["TransformOutput"]["KmsKeyId"] == DEV_PLAN["key_arn"]
        assert transform["TransformResources"]["InstanceType"] == DEV_PLAN["contest_instance_type"]
        bucket, _, prefix = transform["TransformOutput"]["S3OutputPath"][5:].partition("/")
        body = boto3.client("s3", region_name=REGION).get_object(
            Bucket=bucket, Key=f"{prefix}part-00000.csv.out"
        )["Body"]
        predictions = [float(line) for line in body.read().decode().split()]
        labels = [float(row.split(",")[0]) for row in ROWS]
        assert len(predictions) == len(labels)
        assert held_out[role] == pytest.approx(roc_auc_score(labels, predictions))


def test_equal_models_on_the_same_rows_keep_the_champion(serverless: Deploy) -> None:
    champion(serverless, 0.80, model="strong")
    name = serverless.finish(2, 0.90)

    result = serverless.judge(name)

    assert result["outcome"] == "not-deployed"
    assert result["reason"].startswith("not better")
    held_out = result["contest"]["heldOut"]
    assert held_out["challenger"] == held_out["champion"]


def test_a_failed_transform_job_deploys_nothing_and_says_which(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.90)
    # The champion's artifact is gone: its transform job cannot load the model.
    model = serverless.sagemaker.models[best_of(job(1))]
    bucket, _, key = model.containers[0]["ModelDataUrl"][5:].partition("/")
    boto3.client("s3", region_name=REGION).delete_object(Bucket=bucket, Key=key)

    result = serverless.judge(name)

    assert result["outcome"] == "not-deployed"
    assert "the champion's transform job" in result["reason"] and "Failed" in result["reason"]
    assert result["contest"]["transformJobs"]["champion"]["status"] == "Failed"
    assert result["contest"]["transformJobs"]["challenger"]["status"] == "Completed"
    assert [op for op, _ in serverless.sagemaker.calls if op == "UpdateEndpoint"] == []


def test_redelivered_events_of_a_contest_start_each_transform_job_once(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.90)
    first = serverless(tuning_event(name, "Completed"))
    again = serverless(tuning_event(name, "Completed"))

    assert (first["outcome"], again["outcome"]) == ("judging", "judging")
    assert [op for op, _ in serverless.sagemaker.calls].count("CreateTransformJob") == 2
    assert serverless.record(name)["outcome"] == "judging"
    assert serverless.judge(name)["outcome"] == "deploy"
    assert [op for op, _ in serverless.sagemaker.calls].count("CreateTransformJob") == 2


def test_every_log_line_names_the_dataset_and_the_tuning_job(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.90)
    # The lines as Powertools writes them (its handler keeps the stream of the first import).
    written = io.StringIO()
    previous = serverless.handler.logger.registered_handler.setStream(written)
    try:
        serverless.judge(name)
    finally:
        serverless.handler.logger.registered_handler.setStream(previous)

    lines = [json.loads(line) for line in written.getvalue().splitlines()]
    assert lines, "the function logged nothing"
    assert {(line["dataset"], line["tuning_job"]) for line in lines} == {("sales", name)}


def test_instances_update_is_blue_green_keeps_instance_counts_and_rolls_back_on_the_alarm(
    instances: Deploy,
) -> None:
    champion(instances, 0.80)
    name = instances.finish(2, 0.90)

    instances.judge(name)

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
    instances.judge(instances.finish(2, 0.90))
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
    serverless.judge(name)

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

    result = serverless.judge(name)

    assert result["outcome"] == "not-deployed"
    assert "no training job completed" in result["reason"] and "NonRetryableError 4" in result["reason"]
    assert serverless.creations() == []


def test_deployment_is_counted_as_a_metric(serverless: Deploy, capsys: pytest.CaptureFixture[str]) -> None:
    name = serverless.finish(1, 0.8)
    serverless.judge(name)
    assert _emitted_metric(capsys.readouterr().out, "ModelsDeployed") == 1


def test_repeated_event_changes_nothing_while_deploying_and_after(deploy: Deploy) -> None:
    name = deploy.finish(1, 0.81)
    deploy.judge(name)

    again = deploy.judge(name)
    deploy.sagemaker.settle()
    once_more = deploy.judge(name)

    assert (again["outcome"], once_more["outcome"]) == ("unchanged", "unchanged")
    assert deploy.creations() == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    assert deploy.record(name)["outcome"] == "deploy", "a redelivery keeps the record of the decision"


def test_redelivery_after_a_partial_deployment_reuses_what_exists(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.90)
    # An earlier delivery created the model, then the function timed out.
    serverless.leftover_model(best_of(name), serverless.sagemaker.now())

    result = serverless.judge(name)

    assert result["outcome"] == "deploy"
    assert serverless.pending() == best_of(name)


def test_challenger_arriving_during_an_update_waits_and_is_judged_once_the_endpoint_settles(
    serverless: Deploy,
) -> None:
    champion(serverless, 0.80)
    second = serverless.finish(2, 0.85, model="medium")
    serverless.judge(second)  # now Updating
    third, fourth = serverless.finish(3, 0.90), serverless.finish(4, 0.70, model="weak")

    assert serverless.judge(third)["deferred"] == third
    assert serverless.judge(fourth)["deferred"] == fourth
    assert serverless(endpoint_event(status="UPDATING"))["judged"] == []
    serverless.sagemaker.settle()
    settled = serverless(endpoint_event())

    # Each waiting challenger's contest against the new champion starts; the better one deploys, and the
    # other, whose transform jobs finish while that update runs, waits for it to finish.
    assert settled["judged"] == [third, fourth]
    assert serverless.record(third)["outcome"] == serverless.record(fourth)["outcome"] == "judging"
    answers = serverless.contests()
    assert next(a.get("outcome") for a in answers if "outcome" in a) == "deploy"
    assert serverless.pending() == best_of(third)
    assert any(a.get("deferred") == fourth for a in answers)
    serverless.sagemaker.settle()
    assert serverless(endpoint_event())["judged"] == [fourth]
    serverless.contests()
    assert serverless.record(fourth)["outcome"] == "not-deployed"
    assert serverless.record(fourth)["champion"]["training_job"] == best_of(third)
    assert serverless.serving() == best_of(third)
    assert serverless(endpoint_event())["judged"] == [], "each waits only once"


def test_challenger_waiting_for_an_endpoint_that_went_away_creates_it(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    serverless.client("sagemaker").delete_endpoint(EndpointName=ENDPOINT)
    name = serverless.finish(2, 0.70)
    assert serverless.judge(name)["deferred"] == name
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

    result = serverless.judge(name)

    assert result["outcome"] == "deploy"
    assert serverless.serving() == best_of(name)


def test_challenger_racing_another_update_waits(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    other, name = serverless.finish(2, 0.85), serverless.finish(3, 0.90)
    serverless.sagemaker.before("UpdateEndpoint", lambda: serverless.judge(other))

    result = serverless.judge(name)

    assert result["deferred"] == name
    assert serverless.pending() == best_of(other)


def test_challenger_deferred_just_as_the_endpoint_settles_is_judged_at_once(
    monkeypatch: pytest.MonkeyPatch,
    local_sagemaker: SageMakerServer,
    archives: dict[str, bytes],
    sagemaker_events: list[dict[str, Any]],
) -> None:
    # With the champion in the config's tags only: with an SSM record, the record is behind until the
    # endpoint's InService event, which then judges the challenger.
    serverless = _deploy(
        monkeypatch, {**DEV_PLAN, "champion_parameter": ""}, local_sagemaker, archives, sagemaker_events
    )
    champion(serverless, 0.80)
    serverless.judge(serverless.finish(2, 0.85, model="medium"))
    name = serverless.finish(3, 0.90)
    # The update finishes after the function saw it running, before it left its marker: no later
    # endpoint event would judge the marker.
    serverless.sagemaker.before("DescribeEndpointConfig", lambda: serverless.sagemaker.settle())

    result = serverless.judge(name)

    assert result["deferred"] == name and result["judged"] == [name]
    serverless.contests()
    assert serverless.pending() == best_of(name)


def test_event_ahead_of_sagemakers_own_state_is_retried(serverless: Deploy) -> None:
    from deploy.promotion import TuningNotFinished

    name = serverless.start(1)
    with pytest.raises(TuningNotFinished, match="still InProgress"):
        serverless.judge(name)


def test_a_deferred_job_sagemaker_cannot_describe_does_not_block_the_others(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    serverless.judge(serverless.finish(2, 0.85, model="medium"))
    gone, name = serverless.finish(3, 0.90), serverless.finish(4, 0.95)
    serverless.judge(gone)
    serverless.judge(name)
    del serverless.sagemaker.training_jobs[best_of(gone)]
    serverless.sagemaker.settle()

    assert serverless(endpoint_event())["judged"] == [gone, name]
    assert serverless.record(gone)["reason"].startswith("could not be judged")
    serverless.contests()
    assert serverless.pending() == best_of(name)


def test_model_of_another_dataset_does_not_replace_the_serving_one(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.99, dataset="churn")

    result = serverless.judge(name)

    assert result["outcome"] == "not-deployed" and "dataset" in result["reason"]
    assert serverless.creations().count("UpdateEndpoint") == 0


def test_update_from_a_serverless_endpoint_to_instances_is_a_plain_update(
    monkeypatch: pytest.MonkeyPatch,
    local_sagemaker: SageMakerServer,
    archives: dict[str, bytes],
    sagemaker_events: list[dict[str, Any]],
) -> None:
    before = _deploy(monkeypatch, DEV_PLAN, local_sagemaker, archives, sagemaker_events)
    champion(before, 0.80)
    after = _deploy(monkeypatch, INSTANCES_PLAN, local_sagemaker, archives, sagemaker_events)
    name = after.finish(2, 0.90)

    after.judge(name)

    update = next(params for op, params in after.sagemaker.calls if op == "UpdateEndpoint")
    # Deployment guardrails do not apply to a serverless endpoint being converted.
    assert update == {"EndpointName": ENDPOINT, "EndpointConfigName": best_of(name)}


def test_challenger_scored_on_another_metric_is_not_comparable(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.10, metric="validation:logloss", direction="Minimize")

    result = serverless.judge(name)

    assert result["outcome"] == "not-deployed" and "not comparable" in result["reason"]


def test_instance_endpoint_is_not_turned_serverless(
    monkeypatch: pytest.MonkeyPatch,
    local_sagemaker: SageMakerServer,
    archives: dict[str, bytes],
    sagemaker_events: list[dict[str, Any]],
) -> None:
    before = _deploy(monkeypatch, INSTANCES_PLAN, local_sagemaker, archives, sagemaker_events)
    champion(before, 0.80)
    after = _deploy(monkeypatch, DEV_PLAN, local_sagemaker, archives, sagemaker_events)
    name = after.finish(2, 0.90)

    result = after.judge(name)

    assert result["outcome"] == "not-deployed" and "cannot turn it serverless" in result["reason"]


def test_new_instance_type_detaches_autoscaling_before_the_update(
    monkeypatch: pytest.MonkeyPatch,
    local_sagemaker: SageMakerServer,
    archives: dict[str, bytes],
    sagemaker_events: list[dict[str, Any]],
) -> None:
    before = _deploy(monkeypatch, INSTANCES_PLAN, local_sagemaker, archives, sagemaker_events)
    champion(before, 0.80)
    before(endpoint_event())  # housekeeping attaches autoscaling
    assert before.scalable_targets()
    bigger_plan = {**INSTANCES_PLAN, "instance_type": "ml.c5.xlarge"}
    bigger = _deploy(monkeypatch, bigger_plan, local_sagemaker, archives, sagemaker_events)

    result = bigger.judge(bigger.finish(2, 0.90))

    assert result["outcome"] == "deploy"
    assert bigger.scalable_targets() == []


@pytest.mark.parametrize("status", ["Failed", "OutOfService", "UpdateRollbackFailed"])
def test_endpoint_that_cannot_serve_takes_no_model_and_says_what_to_do(
    serverless: Deploy, status: str
) -> None:
    champion(serverless, 0.80)
    serverless.sagemaker.set_endpoint_status(ENDPOINT, status, failure_reason="capacity lost")
    name = serverless.finish(2, 0.95)

    result = serverless.judge(name)

    assert result["outcome"] == "not-deployed"
    assert f"is {status}" in result["reason"] and "delete it" in result["reason"]
    assert serverless.creations().count("UpdateEndpoint") == 0


def test_tuning_job_of_another_stack_is_ignored(serverless: Deploy) -> None:
    result = serverless.judge("other-0000-1234567890abcdef1234567")
    assert result == {"ignored": "other-0000-1234567890abcdef1234567"}
    assert serverless.sagemaker.calls == []


# ----------------------------------------------------------------------------------------- housekeeping


def test_housekeeping_deletes_replaced_configs_and_models_after_the_update_finished(
    instances: Deploy,
) -> None:
    first = champion(instances, 0.80)
    instances.sagemaker.tick(60)
    second = instances.finish(2, 0.90)
    instances.judge(second)

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
    serverless.judge(second)
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
    serverless.judge(second)
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
    serverless.judge(name)
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
    serverless.judge(second)
    serverless.sagemaker.settle()
    # The update has finished but its InService event has not been handled: the record is behind, so a
    # challenger waits instead of being judged against the old champion.
    third = serverless.finish(3, 0.95, model="weak")
    assert serverless.judge(third)["deferred"] == third
    judged = serverless(endpoint_event())

    assert champion_record()["config"] == best_of(second)
    assert judged["judged"] == [third]
    serverless.contests()
    record = serverless.record(third)
    assert record["outcome"] == "not-deployed", "the weak model loses to the new champion on the same rows"
    assert record["champion"]["training_job"] == best_of(second)


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
    instances.judge(second)
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
    serverless.judge(serverless.finish(2, 0.90))  # Updating for two minutes

    removed = serverless(cleanup_payload("delete"))

    endpoint = serverless.endpoint()
    assert removed["endpoint"] == ENDPOINT and endpoint is not None and endpoint.status == "Deleting"


def test_destroy_of_an_endpoint_that_stays_busy_fails_naming_what_to_do(serverless: Deploy) -> None:
    from deploy.endpoint_state import EndpointBusy

    champion(serverless, 0.80)
    serverless.judge(serverless.finish(2, 0.90))
    serverless.sagemaker.stall(ENDPOINT)  # an update that does not finish

    with pytest.raises(EndpointBusy, match="run pulumi destroy again"):
        serverless(cleanup_payload("delete"))
    endpoint = serverless.endpoint()
    assert endpoint is not None and endpoint.status == "Updating"


def test_destroy_of_a_stack_that_never_deployed_succeeds(serverless: Deploy) -> None:
    removed = serverless(cleanup_payload("delete"))
    assert removed == {
        "stopped_tuning_jobs": [],
        "stopped_transform_jobs": [],
        "endpoint": None,
        "endpoint_configs": [],
        "models": [],
    }


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
        serverless.judge(name)


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


def test_destroy_stops_the_contests_transform_jobs(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    name = serverless.finish(2, 0.90)
    started = serverless(tuning_event(name, "Completed"))["contest"]["transformJobs"]

    removed = serverless(cleanup_payload("delete"))

    assert sorted(removed["stopped_transform_jobs"]) == sorted(j["name"] for j in started.values())
    assert {j.status for j in serverless.sagemaker.transform_jobs.values()} == {"Stopping"}


def test_transform_job_of_another_stack_or_not_finished_is_ignored(serverless: Deploy) -> None:
    champion(serverless, 0.80)
    serverless(tuning_event(serverless.finish(2, 0.90), "Completed"))
    event = next(e for e in serverless.events if e["detail-type"] == "SageMaker Transform Job State Change")
    assert event["detail"]["TransformJobStatus"] == "InProgress"
    assert "ignored" in serverless(event)
    other = copy.deepcopy(event)
    other["detail"].update(TransformJobName="other-1234-00000000000000000000002-challenger")
    other["detail"]["TransformJobStatus"] = "Completed"
    assert serverless(other) == {"ignored": "other-1234-00000000000000000000002-challenger"}
