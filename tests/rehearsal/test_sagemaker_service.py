"""The local SageMaker through real boto3 clients over HTTP: a tuning job that trains on channels the
transform wrote, endpoints that come up, bake and roll back, InvokeEndpoint's answers and errors, the IAM
check of every call, and the wire protocols themselves.

S3 and KMS are moto's, in-process; the clock is manual unless a test is about the live one.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import tarfile
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
import numpy as np
import pytest
import xgboost
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from sklearn.metrics import roc_auc_score

from rehearsal.clock import TimeScale
from rehearsal.sagemaker.container.training import MODEL_NAME, train
from rehearsal.sagemaker.hosting import ALARM_PERIOD_SECONDS, CREATE_SECONDS
from rehearsal.sagemaker.schedule import Scheduler
from rehearsal.sagemaker.server import SageMakerServer
from rehearsal.sagemaker.service import LocalSageMaker
from tests.support.sinks import Lines
from transform.pipeline import TransformOptions, transform_csv
from transform.schema_inference import InferenceOptions

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "data"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
TRAINING_ROLE = f"arn:aws:iam::{ACCOUNT}:role/training"
MODEL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/model"
RUN = "processed/sales/run-1/"
TRANSFORM = TransformOptions(
    validation_fraction=0.25,
    max_rejected_fraction=0.01,
    inference=InferenceOptions("bought", None, max_categories=100, numeric_tolerance=0.01),
    min_labeled_rows=50,
)


def sales_csv(rows: int, seed: int = 7) -> bytes:
    """A table whose target is a noisy function of its features, with a header, as a user uploads it."""
    draws = random.Random(seed)
    lines = ["price,visits,colour,bought"]
    for _ in range(rows):
        price, visits = draws.uniform(0, 100), draws.randint(0, 30)
        colour = draws.choice(["red", "blue", "green"])
        bought = visits * 3 - price + draws.gauss(0, 8) + (10 if colour == "red" else 0) > 0
        lines.append(f"{price:.2f},{visits},{colour},{'yes' if bought else 'no'}")
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Local:
    service: LocalSageMaker
    server: SageMakerServer
    events: list[dict[str, Any]]
    alarms: dict[str, str]
    trials: list[tuple[str, str, str, float | None]]
    key_arn: str
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, access_key: str = "admin") -> Any:
        """A client of the local SageMaker signing as `access_key`."""
        if (service, access_key) not in self.clients:
            self.clients[(service, access_key)] = boto3.client(
                service,
                region_name=REGION,
                endpoint_url=self.server.url,
                aws_access_key_id=access_key,
                aws_secret_access_key="secret",
                # One attempt: a test sees each answer as the service gave it.
                config=Config(retries={"total_max_attempts": 1}),
            )
        return self.clients[(service, access_key)]

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    def published(self, detail_type: str) -> list[dict[str, Any]]:
        self.service.flush_events()
        return [e for e in self.events if e["detail-type"] == detail_type]


Authorize = Callable[..., str | None]


@cache
def channels() -> dict[str, bytes]:
    """The train and validation part files the transform writes for a sales table."""
    train_lines, validation_lines = Lines(), Lines()
    data = sales_csv(400)
    transform_csv(
        lambda: io.BytesIO(data),
        stored_schema=None,
        options=TRANSFORM,
        train=train_lines,
        validation=validation_lines,
    )
    return {"train": bytes(train_lines.data), "validation": bytes(validation_lines.data)}


@pytest.fixture
def aws() -> Iterator[str]:
    """moto's S3 with the data bucket holding the transform's channels, and a KMS key; yields its ARN."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for channel, part in channels().items():
            s3.put_object(Bucket=BUCKET, Key=f"{RUN}{channel}/part-00000.csv", Body=part)
        yield boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]


def _local(
    key_arn: str,
    authorize: Authorize | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> Iterator[Local]:
    s3 = boto3.client("s3", region_name=REGION)
    events: list[dict[str, Any]] = []

    def publish(event: dict[str, Any]) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    alarms: dict[str, str] = {}
    trials: list[tuple[str, str, str, float | None]] = []
    service = LocalSageMaker(
        region=REGION,
        account_id=ACCOUNT,
        s3_for_role=lambda role: s3,
        publish=publish,
        alarm_state=lambda name: alarms.get(name, "OK"),
        authorize=authorize,
        on_trial=lambda *trial: trials.append(trial),
        **options,
    )
    with SageMakerServer(service) as server:
        yield Local(service, server, events, alarms, trials, key_arn)
        service.close()
        assert server.defects == [] and service.failures == []


@pytest.fixture
def local(aws: str) -> Iterator[Local]:
    yield from _local(aws, manual_clock=datetime(2026, 11, 1, 12, 0, tzinfo=UTC), page_size=2)


def tuning_request(name: str, **config: Any) -> dict[str, Any]:
    static = config.pop("static", {})
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
            "TrainingJobEarlyStoppingType": "Off",
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5", "ScalingType": "Logarithmic"}
                ],
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "5"}],
            },
            **config,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": TRAINING_ROLE,
            "StaticHyperParameters": {
                "num_round": "10",
                "objective": "binary:logistic",
                "eval_metric": "auc",
                **static,
            },
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "ContentType": "text/csv",
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{RUN}{channel}/"}
                    },
                }
                for channel in ("train", "validation")
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
        },
        "Tags": [{"Key": "stack", "Value": "dev"}],
    }


def training_jobs(local: Local, tuning_job: str) -> list[dict[str, Any]]:
    pages = local.sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=tuning_job
    )
    return [summary for page in pages for summary in page["TrainingJobSummaries"]]


def booster(archive: bytes) -> xgboost.Booster:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile(MODEL_NAME)
        assert member is not None
        model = xgboost.Booster()
        model.load_model(bytearray(member.read()))
    return model


def channel_rows(key: str) -> tuple[np.ndarray, np.ndarray]:
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    rows = np.array(
        [[math.nan if v == "" else float(v) for v in line.split(",")] for line in body.decode().splitlines()]
    )
    return rows[:, 0], rows[:, 1:]


# ------------------------------------------------------------------------------------------- tuning


def test_a_tuning_job_trains_every_trial_on_its_channels_and_names_the_best(local: Local) -> None:
    name = "dev-6147-0001"
    arn = local.sagemaker.create_hyper_parameter_tuning_job(**tuning_request(name, static={}))[
        "HyperParameterTuningJobArn"
    ]
    assert arn == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/{name}"

    assert local.service.wait_for_tuning_job(name) == "Completed"

    job = local.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert job["HyperParameterTuningJobStatus"] == "Completed" and "HyperParameterTuningEndTime" in job
    assert job["TrainingJobStatusCounters"] == {
        "Completed": 4,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    jobs = training_jobs(local, name)
    assert sorted(
        re.fullmatch(rf"{name}-(\d{{3}})-[0-9a-f]{{8}}", j["TrainingJobName"]).group(1) for j in jobs
    ) == [  # type: ignore[union-attr]
        "001",
        "002",
        "003",
        "004",
    ]
    for summary in jobs:
        tuned = summary["TunedHyperParameters"]
        assert 0.05 <= float(tuned["eta"]) <= 0.5 and 2 <= int(tuned["max_depth"]) <= 5
        described = local.sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        assert described["HyperParameters"] == {
            "num_round": "10",
            "objective": "binary:logistic",
            "eval_metric": "auc",
            **tuned,
            "_tuning_objective_metric": "validation:auc",
        }
        assert described["TuningJobArn"] == arn and described["SecondaryStatus"] == "Completed"
        final = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
        assert final["validation:auc"] == summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]

    values = {j["TrainingJobName"]: j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for j in jobs}
    best = job["BestTrainingJob"]
    assert best["TrainingJobName"] == max(values, key=lambda n: values[n])
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "MetricName": "validation:auc",
        "Value": max(values.values()),
    }

    # The best model is in S3 where DescribeTrainingJob says, and its objective is its AUC on the
    # validation channel.
    artifact = local.sagemaker.describe_training_job(TrainingJobName=best["TrainingJobName"])[
        "ModelArtifacts"
    ]
    bucket, _, key = artifact["S3ModelArtifacts"].removeprefix("s3://").partition("/")
    assert (bucket, key) == (BUCKET, f"models/{best['TrainingJobName']}/output/model.tar.gz")
    archive = boto3.client("s3", region_name=REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    labels, features = channel_rows(f"{RUN}validation/part-00000.csv")
    scores = booster(archive).predict(xgboost.DMatrix(features))
    assert roc_auc_score(labels, scores) == pytest.approx(values[best["TrainingJobName"]], abs=1e-4)


def test_training_uploads_the_model_encrypted_with_the_output_key(local: Local) -> None:
    request = tuning_request("dev-6147-0002")
    request["TrainingJobDefinition"]["OutputDataConfig"]["KmsKeyId"] = local.key_arn
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 1
    local.sagemaker.create_hyper_parameter_tuning_job(**request)
    local.service.wait_for_tuning_job("dev-6147-0002")

    (summary,) = training_jobs(local, "dev-6147-0002")
    head = boto3.client("s3", region_name=REGION).head_object(
        Bucket=BUCKET, Key=f"models/{summary['TrainingJobName']}/output/model.tar.gz"
    )
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", local.key_arn)


def test_state_changes_are_published_in_order_as_eventbridge_events(local: Local) -> None:
    name = "dev-6147-0003"
    local.sagemaker.create_hyper_parameter_tuning_job(**tuning_request(name))
    local.service.wait_for_tuning_job(name)
    local.service.flush_events()

    tuning = [
        e["detail"]["HyperParameterTuningJobStatus"]
        for e in local.published("SageMaker HyperParameter Tuning Job State Change")
    ]
    assert tuning == ["InProgress", "Completed"]
    assert local.events[0]["detail-type"] == "SageMaker HyperParameter Tuning Job State Change"
    assert local.events[-1]["detail"].get("HyperParameterTuningJobStatus") == "Completed"
    training = local.published("SageMaker Training Job State Change")
    by_job: dict[str, list[str]] = {}
    for event in training:
        by_job.setdefault(event["detail"]["TrainingJobName"], []).append(event["detail"]["TrainingJobStatus"])
    assert sorted(by_job) == sorted(j["TrainingJobName"] for j in training_jobs(local, name))
    assert all(statuses == ["InProgress", "Completed"] for statuses in by_job.values()), by_job
    for event in local.events:
        assert (event["source"], event["account"], event["region"], event["version"]) == (
            "aws.sagemaker",
            ACCOUNT,
            REGION,
            "0",
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    final = local.events[-1]
    assert final["resources"] == [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/{name}"]
    assert final["detail"]["TrainingJobStatusCounters"]["Completed"] == 4
    assert final["detail"]["Tags"] == {"stack": "dev"}
    # The CLI's progress: each trial as it starts and ends, with its objective at the end.
    assert sorted(status for _, _, status, _ in local.trials) == ["Completed"] * 4 + ["InProgress"] * 4
    assert all((value is None) == (status == "InProgress") for _, _, status, value in local.trials)


def test_auto_early_stopping_stops_a_clearly_worse_trial(local: Local) -> None:
    name = "dev-6147-0004"
    request = tuning_request(
        name,
        Strategy="Random",
        # This seed draws a slow learner, a fast one, then a slow one again.
        RandomSeed=0,
        HyperParameterTuningJobObjective={"Type": "Minimize", "MetricName": "validation:logloss"},
        ResourceLimits={"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 1},
        TrainingJobEarlyStoppingType="Auto",
        ParameterRanges={"CategoricalParameterRanges": [{"Name": "eta", "Values": ["0.5", "0.00001"]}]},
        static={"eval_metric": "logloss"},
    )
    local.sagemaker.create_hyper_parameter_tuning_job(**request)
    assert local.service.wait_for_tuning_job(name) == "Completed"

    jobs = sorted(training_jobs(local, name), key=lambda j: j["TrainingJobName"])
    assert [j["TunedHyperParameters"]["eta"] for j in jobs] == ["0.00001", "0.5", "0.00001"]
    # The first slow learner has no finished job to be compared with; the second has the fast one's.
    assert [j["TrainingJobStatus"] for j in jobs] == ["Completed", "Completed", "Stopped"]
    stopped = local.sagemaker.describe_training_job(TrainingJobName=jobs[2]["TrainingJobName"])
    assert stopped["SecondaryStatus"] == "Stopped"
    rounds = local.service.training_jobs[jobs[2]["TrainingJobName"]].history["validation:logloss"]
    assert len(rounds) < 10, "stopped before its last round"
    best = local.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "BestTrainingJob"
    ]
    assert best["TrainingJobName"] == jobs[1]["TrainingJobName"]


def test_a_stopped_tuning_job_stops_its_running_training_jobs(local: Local) -> None:
    name = "dev-6147-0005"
    local.sagemaker.create_hyper_parameter_tuning_job(**tuning_request(name, static={"num_round": "100000"}))

    local.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    described = local.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert described["HyperParameterTuningJobStatus"] == "Stopping"

    assert local.service.wait_for_tuning_job(name) == "Stopped"
    jobs = training_jobs(local, name)
    assert jobs and all(j["TrainingJobStatus"] == "Stopped" for j in jobs)
    with pytest.raises(ClientError, match="is not in progress"):
        local.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    statuses = [
        e["detail"]["HyperParameterTuningJobStatus"]
        for e in local.published("SageMaker HyperParameter Tuning Job State Change")
    ]
    assert statuses == ["InProgress", "Stopping", "Stopped"]


def test_a_training_job_without_data_fails_with_sagemakers_reason(local: Local) -> None:
    request = tuning_request("dev-6147-0006")
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 1
    request["TrainingJobDefinition"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = (
        f"s3://{BUCKET}/processed/nothing/"
    )
    local.sagemaker.create_hyper_parameter_tuning_job(**request)

    assert local.service.wait_for_tuning_job("dev-6147-0006") == "Failed"
    (summary,) = training_jobs(local, "dev-6147-0006")
    assert summary["TrainingJobStatus"] == "Failed" and summary["ObjectiveStatus"] == "Failed"
    assert summary["FailureReason"].startswith("ClientError: Data download failed:No S3 objects found")
    job = local.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="dev-6147-0006")
    assert job["TrainingJobStatusCounters"]["NonRetryableError"] == 1 and "BestTrainingJob" not in job


def with_manifests(local: Local, request: dict[str, Any], listed: dict[str, list[str]]) -> dict[str, Any]:
    """The request with ManifestFile channels listing `listed[channel]`, keys relative to the dataset's
    folder as the tune function writes them (`<run>/<channel>/part-*.csv`: the container reads folders
    three deep, data_utils.py:41)."""
    s3 = boto3.client("s3", region_name=REGION)
    for channel in request["TrainingJobDefinition"]["InputDataConfig"]:
        name = channel["ChannelName"]
        key = f"processed/sales/{request['HyperParameterTuningJobName']}/{name}.manifest"
        body = json.dumps([{"prefix": f"s3://{BUCKET}/processed/sales/"}, *listed[name]])
        s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        channel["DataSource"]["S3DataSource"] = {
            "S3DataType": "ManifestFile",
            "S3Uri": f"s3://{BUCKET}/{key}",
        }
    return request


def run_files(channel: str) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{RUN}{channel}/")["Contents"]]
    return [key.removeprefix("processed/sales/") for key in keys]


def test_a_training_job_reads_the_objects_its_manifest_lists(local: Local) -> None:
    name = "dev-6147-0011"
    request = with_manifests(
        local, tuning_request(name), {"train": run_files("train"), "validation": run_files("validation")}
    )
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 1
    local.sagemaker.create_hyper_parameter_tuning_job(**request)

    status = local.service.wait_for_tuning_job(name)
    (summary,) = training_jobs(local, name)
    assert (status, summary["TrainingJobStatus"]) == ("Completed", "Completed"), summary.get("FailureReason")


def test_a_manifest_listing_a_missing_object_fails_the_download(local: Local) -> None:
    # Only the listed objects are read: one that is not there fails the job, whatever else the prefix holds.
    name = "dev-6147-0012"
    listed = {
        "train": [*run_files("train"), "run-1/train/part-99999.csv"],
        "validation": run_files("validation"),
    }
    request = with_manifests(local, tuning_request(name), listed)
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 1
    local.sagemaker.create_hyper_parameter_tuning_job(**request)

    assert local.service.wait_for_tuning_job(name) == "Failed"
    (summary,) = training_jobs(local, name)
    assert summary["FailureReason"].startswith("ClientError: Data download failed:Failed to download data.")


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            lambda r: r.update(HyperParameterTuningJobName="x" * 33),
            "ValidationException",
            "less than or equal to 32",
        ),
        (
            lambda r: r.update(HyperParameterTuningJobName="dev_6147"),
            "ValidationException",
            "regular expression pattern",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Grid"),
            "ValidationException",
            "categorical parameters only",
        ),
        (
            lambda r: r["TrainingJobDefinition"]["StaticHyperParameters"].update(eta="0.1"),
            "ValidationException",
            "both static and tunable",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ResourceLimits"].update(
                MaxRuntimeInSeconds=20_000_000
            ),
            "ValidationException",
            "Member must have value less than or equal to 15768000",
        ),
    ],
)
def test_a_tuning_request_sagemaker_refuses_is_refused(
    local: Local, change: Callable[[dict[str, Any]], None], error: str, message: str
) -> None:
    request = tuning_request("dev-6147-0007")
    change(request)
    with pytest.raises(ClientError) as refused:
        local.sagemaker.create_hyper_parameter_tuning_job(**request)
    assert refused.value.response["Error"]["Code"] == error
    assert message in refused.value.response["Error"]["Message"]
    assert local.service.tuning_jobs == {}


def test_a_tuning_job_name_is_taken_whatever_its_case(local: Local) -> None:
    local.sagemaker.create_hyper_parameter_tuning_job(**tuning_request("dev-6147-0008"))
    with pytest.raises(ClientError) as duplicate:
        local.sagemaker.create_hyper_parameter_tuning_job(**tuning_request("DEV-6147-0008"))
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"
    assert "already exists" in duplicate.value.response["Error"]["Message"]
    local.service.wait_for_tuning_job("dev-6147-0008")


# ------------------------------------------------------------------------------------------ hosting


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Two models that score the same rows differently: "blue" knows only `x`, "green" only `y`."""
    draws = random.Random(3)
    rows = []
    for _ in range(200):
        x, y = draws.uniform(-1, 1), draws.uniform(-1, 1)
        rows.append((int(x + y > 0), x, y))
    made = {}
    for name, column in (("blue", 1), ("green", 2)):
        directory = tmp_path_factory.mktemp(name)
        (directory / "part-00000.csv").write_text("\n".join(f"{r[0]},{r[column]}" for r in rows) + "\n")
        hyperparameters = {"num_round": "5", "objective": "binary:logistic", "max_depth": "2"}
        made[name] = train(hyperparameters, {"train": directory}, content_type="text/csv").model_archive
    made["junk"] = _tar({MODEL_NAME: b"not a model"})
    return made


def _tar(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def host_model(local: Local, name: str, archive: bytes, *, instances: bool = True) -> None:
    """A model of `archive` and an endpoint config of its own, as the deploy function creates them."""
    key = f"models/{name}/output/model.tar.gz"
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=archive)
    local.sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"},
        ExecutionRoleArn=MODEL_ROLE,
    )
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": name}
    if instances:
        variant |= {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    else:
        variant["ServerlessConfig"] = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    local.sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])


def scores(local: Local, endpoint: str, body: bytes = b"0.5\n-0.5\n") -> list[float]:
    answer = local.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=body
    )
    return [p["score"] for p in json.loads(answer["Body"].read())["predictions"]]


def expected(archive: bytes, body: bytes = b"0.5\n-0.5\n") -> list[float]:
    rows = np.array([[float(v)] for v in body.decode().split()])
    return list(booster(archive).predict(xgboost.DMatrix(rows)).tolist())


def serving(local: Local, endpoint: str, archives: dict[str, bytes]) -> None:
    host_model(local, "blue", archives["blue"])
    local.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName="blue")
    local.service.sleep(CREATE_SECONDS)


BLUE_GREEN = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
        "TerminationWaitInSeconds": 600,
        "MaximumExecutionTimeoutInSeconds": 3600,
    },
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "endpoint-errors"}]},
}


def test_an_endpoint_comes_up_minutes_after_it_is_created(local: Local, archives: dict[str, bytes]) -> None:
    host_model(local, "blue", archives["blue"])
    local.sagemaker.create_endpoint(EndpointName="shop", EndpointConfigName="blue")

    creating = local.sagemaker.describe_endpoint(EndpointName="shop")
    assert creating["EndpointStatus"] == "Creating"
    assert creating["PendingDeploymentSummary"]["EndpointConfigName"] == "blue"
    with pytest.raises(ClientError, match="Endpoint shop of account 123456789012 not found"):
        scores(local, "shop")
    local.service.sleep(CREATE_SECONDS - 1)
    assert local.sagemaker.describe_endpoint(EndpointName="shop")["EndpointStatus"] == "Creating"
    local.service.sleep(1)

    described = local.sagemaker.describe_endpoint(EndpointName="shop")
    assert described["EndpointStatus"] == "InService" and "PendingDeploymentSummary" not in described
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert [e["detail"]["EndpointStatus"] for e in local.published("SageMaker Endpoint State Change")] == [
        "CREATING",
        "IN_SERVICE",
    ]


def test_an_update_bakes_on_the_new_fleet_and_rolls_back_when_its_alarm_fires(
    local: Local, archives: dict[str, bytes]
) -> None:
    serving(local, "shop", archives)
    host_model(local, "green", archives["green"])
    assert expected(archives["blue"]) != expected(archives["green"])

    local.sagemaker.update_endpoint(
        EndpointName="shop", EndpointConfigName="green", DeploymentConfig=BLUE_GREEN
    )
    updating = local.sagemaker.describe_endpoint(EndpointName="shop")
    assert (updating["EndpointStatus"], updating["EndpointConfigName"]) == ("Updating", "blue")
    assert scores(local, "shop") == expected(archives["blue"]), (
        "the old fleet serves while the new one starts"
    )
    with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
        local.sagemaker.update_endpoint(EndpointName="shop", EndpointConfigName="blue")

    local.service.sleep(CREATE_SECONDS)
    baking = local.sagemaker.describe_endpoint(EndpointName="shop")["PendingDeploymentSummary"]
    assert baking["EndpointConfigName"] == "green"
    assert baking["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Baking"
    assert scores(local, "shop") == expected(archives["green"]), "all traffic on the new fleet while it bakes"

    local.alarms["endpoint-errors"] = "ALARM"
    local.service.sleep(ALARM_PERIOD_SECONDS)

    rolled_back = local.sagemaker.describe_endpoint(EndpointName="shop")
    assert (rolled_back["EndpointStatus"], rolled_back["EndpointConfigName"]) == ("InService", "blue")
    assert "endpoint-errors" in rolled_back["FailureReason"]
    assert rolled_back["LastDeploymentConfig"] == BLUE_GREEN
    assert "PendingDeploymentSummary" not in rolled_back
    assert scores(local, "shop") == expected(archives["blue"])
    statuses = [e["detail"]["EndpointStatus"] for e in local.published("SageMaker Endpoint State Change")]
    assert statuses == ["CREATING", "IN_SERVICE", "UPDATING", "IN_SERVICE"]


def test_an_update_whose_alarm_stays_ok_serves_the_new_config_after_the_bake(
    local: Local, archives: dict[str, bytes]
) -> None:
    serving(local, "shop", archives)
    host_model(local, "green", archives["green"])
    local.sagemaker.update_endpoint(
        EndpointName="shop", EndpointConfigName="green", DeploymentConfig=BLUE_GREEN
    )

    local.service.sleep(CREATE_SECONDS + 599)
    assert local.sagemaker.describe_endpoint(EndpointName="shop")["EndpointStatus"] == "Updating"
    local.service.sleep(1)

    done = local.sagemaker.describe_endpoint(EndpointName="shop")
    assert (done["EndpointStatus"], done["EndpointConfigName"]) == ("InService", "green")
    assert "FailureReason" not in done and done["LastDeploymentConfig"] == BLUE_GREEN
    assert scores(local, "shop") == expected(archives["green"])


def test_an_endpoint_whose_model_does_not_load_fails(local: Local, archives: dict[str, bytes]) -> None:
    host_model(local, "junk", archives["junk"])
    local.sagemaker.create_endpoint(EndpointName="shop", EndpointConfigName="junk")
    local.service.sleep(CREATE_SECONDS)

    failed = local.sagemaker.describe_endpoint(EndpointName="shop")
    assert failed["EndpointStatus"] == "Failed"
    assert "did not pass the ping health check" in failed["FailureReason"]


def test_a_model_whose_data_is_missing_is_refused(local: Local) -> None:
    with pytest.raises(ClientError) as refused:
        local.sagemaker.create_model(
            ModelName="gone",
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/gone/model.tar.gz"},
            ExecutionRoleArn=MODEL_ROLE,
        )
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": f"Could not find model data at s3://{BUCKET}/models/gone/model.tar.gz.",
    }


def test_invoke_endpoint_answers_with_the_containers_predictions(
    local: Local, archives: dict[str, bytes]
) -> None:
    serving(local, "shop", archives)

    answer = local.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="shop", ContentType="text/csv", Accept="application/json", Body=b"0.5\n-0.5\n"
    )

    assert (answer["ContentType"], answer["InvokedProductionVariant"]) == ("application/json", "AllTraffic")
    document = json.loads(answer["Body"].read())
    assert [p["score"] for p in document["predictions"]] == expected(archives["blue"])
    csv_answer = local.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="shop", ContentType="text/csv", Accept="text/csv", Body=b"0.5\n"
    )
    assert csv_answer["ContentType"] == "text/csv; charset=utf-8"
    assert float(csv_answer["Body"].read().decode()) == expected(archives["blue"], b"0.5\n")[0]


@pytest.mark.parametrize(
    ("content_type", "accept", "body", "original_status", "original_message"),
    [
        ("text/csv", "application/json", b"cheap,red\n", 415, "Loading csv data failed"),
        ("text/csv", "application/xml", b"0.5\n", 406, "Accept type application/xml is not supported"),
        ("text/csv", "application/json", b"0.5,1,2\n", 400, "Unable to evaluate payload provided"),
    ],
)
def test_a_container_refusal_is_a_model_error_with_its_status_and_message(
    local: Local,
    archives: dict[str, bytes],
    content_type: str,
    accept: str,
    body: bytes,
    original_status: int,
    original_message: str,
) -> None:
    serving(local, "shop", archives)

    with pytest.raises(ClientError) as refused:
        local.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="shop", ContentType=content_type, Accept=accept, Body=body
        )

    response = refused.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == original_status
    assert original_message in response["OriginalMessage"]
    assert f"Received client error ({original_status}) from primary" in response["Error"]["Message"]
    assert (
        response["LogStreamArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/shop"
    )


def test_invoking_an_endpoint_that_does_not_exist_is_a_validation_error(local: Local) -> None:
    with pytest.raises(ClientError) as refused:
        scores(local, "nowhere")
    assert refused.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": f"Endpoint nowhere of account {ACCOUNT} not found.",
    }
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --------------------------------------------------------------------------------------- the rules


def test_lists_come_in_pages_sorted_and_filtered(local: Local, archives: dict[str, bytes]) -> None:
    for n in range(5):
        host_model(local, f"model-{n}", archives["blue"])
        local.service.tick(1)
    host_model(local, "other", archives["blue"])

    pages = list(local.sagemaker.get_paginator("list_models").paginate(NameContains="model-"))

    assert all(len(page["Models"]) <= 2 for page in pages) and len(pages) == 3
    names = [m["ModelName"] for page in pages for m in page["Models"]]
    assert names == ["model-4", "model-3", "model-2", "model-1", "model-0"], "newest first, by default"


def test_autoscaling_targets_instance_variants_and_their_policies(
    local: Local, archives: dict[str, bytes]
) -> None:
    serving(local, "shop", archives)
    scaling = local.client("application-autoscaling")
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/shop/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    policy = {
        "PolicyName": "p",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 5.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
        },
    }
    with pytest.raises(ClientError) as missing:
        scaling.put_scaling_policy(**policy, **target)
    assert missing.value.response["Error"]["Code"] == "ObjectNotFoundException"

    scaling.register_scalable_target(MinCapacity=1, MaxCapacity=3, **target)
    answer = scaling.put_scaling_policy(**policy, **target)

    assert [a["AlarmName"].rsplit("-", 5)[0] for a in answer["Alarms"]] == [
        "TargetTracking-endpoint/shop/variant/AllTraffic-AlarmHigh",
        "TargetTracking-endpoint/shop/variant/AllTraffic-AlarmLow",
    ]
    (described,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (described["MinCapacity"], described["MaxCapacity"]) == (1, 3)
    host_model(local, "bigger", archives["green"])
    bigger = {"InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 1}
    local.sagemaker.create_endpoint_config(
        EndpointConfigName="bigger-type",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "bigger", **bigger}],
    )
    with pytest.raises(ClientError, match="deregister it before changing its instance type"):
        local.sagemaker.update_endpoint(EndpointName="shop", EndpointConfigName="bigger-type")
    scaling.deregister_scalable_target(**target)
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    with pytest.raises(ClientError) as gone:
        scaling.deregister_scalable_target(**target)
    assert gone.value.response["Error"]["Code"] == "ObjectNotFoundException"


def test_a_serverless_variant_has_no_instance_count_to_scale(
    local: Local, archives: dict[str, bytes]
) -> None:
    host_model(local, "blue", archives["blue"], instances=False)
    local.sagemaker.create_endpoint(EndpointName="shop", EndpointConfigName="blue")
    with pytest.raises(ClientError) as refused:
        local.client("application-autoscaling").register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId="endpoint/shop/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=2,
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"


# ------------------------------------------------------------------------------------- access


@dataclass
class Judge:
    """An authorizer that allows everything to "admin" and records what it was asked."""

    asked: list[tuple[str, str, tuple[str, ...], dict[str, str]]] = field(default_factory=list)

    def __call__(
        self, key: str, action: str, resources: list[str], context: Mapping[str, str] | None = None
    ) -> str | None:
        self.asked.append((key, action, tuple(resources), dict(context or {})))
        if key == "admin":
            return None
        return (
            f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{key} is not authorized to perform: {action} on "
            f"resource: {resources[0]}"
        )


@pytest.fixture
def judged(aws: str) -> Iterator[tuple[Local, Judge]]:
    judge = Judge()
    for local in _local(aws, authorize=judge, manual_clock=datetime(2026, 11, 1, tzinfo=UTC)):
        yield local, judge


def test_a_caller_the_policy_refuses_gets_access_denied_and_nothing_changes(
    judged: tuple[Local, Judge], archives: dict[str, bytes]
) -> None:
    local, judge = judged
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key="m/model.tar.gz", Body=archives["blue"]
    )
    request = {
        "ModelName": "blue",
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"},
        "ExecutionRoleArn": MODEL_ROLE,
        "Tags": [{"Key": "stack", "Value": "dev"}],
    }

    with pytest.raises(ClientError) as denied:
        local.client("sagemaker", access_key="intruder").create_model(**request)

    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/intruder is not authorized to perform: "
        f"sagemaker:CreateModel on resource: arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/blue"
    )
    assert local.service.models == {}
    local.client("sagemaker").create_model(**request)
    asked = [
        (action, resources, context) for key, action, resources, context in judge.asked if key == "admin"
    ]
    assert asked == [
        ("sagemaker:CreateModel", (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/blue",), {}),
        ("iam:PassRole", (MODEL_ROLE,), {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        ("sagemaker:AddTags", (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/blue",), {}),
    ]


def test_invoke_endpoint_is_authorized_on_the_endpoint(judged: tuple[Local, Judge]) -> None:
    local, judge = judged
    with pytest.raises(ClientError) as denied:
        local.client("sagemaker-runtime", access_key="stranger").invoke_endpoint(
            EndpointName="shop", ContentType="text/csv", Body=b"1\n"
        )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert judge.asked[-1][1:3] == (
        "sagemaker:InvokeEndpoint",
        (f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/shop",),
    )


# ---------------------------------------------------------------------------------- the wire


def _raw(url: str, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=admin/20261101/eu-west-1/sagemaker/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_json_answers_carry_epoch_timestamps_and_errors_their_type(
    local: Local, archives: dict[str, bytes]
) -> None:
    host_model(local, "blue", archives["blue"])

    status, listed = _raw(local.server.url, "SageMaker.ListModels", {})
    assert status == 200
    assert listed["Models"][0]["CreationTime"] == datetime(2026, 11, 1, 12, 0, tzinfo=UTC).timestamp()
    status, error = _raw(local.server.url, "SageMaker.DescribeModel", {"ModelName": "red"})
    assert (status, error["__type"]) == (400, "ValidationException")
    assert error["message"] == f'Could not find model "arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/red".'
    status, unknown = _raw(local.server.url, "SageMaker.CreateCluster", {})
    assert (status, unknown["__type"]) == (400, "UnknownOperationException")


def test_an_answer_that_breaks_the_service_model_is_a_loud_500(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local.service.hosting, "describe_model", lambda request: {"ModelName": "blue"})

    with pytest.raises(ClientError) as broken:
        local.sagemaker.describe_model(ModelName="blue")

    assert broken.value.response["Error"]["Code"] == "InternalFailure"
    assert broken.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert len(local.server.defects) == 1 and "ModelArn" in local.server.defects[0]
    local.server.defects.clear()


# ---------------------------------------------------------------------------------------- live time


def test_the_live_clock_runs_changes_after_their_aws_duration_compressed() -> None:
    scheduler = Scheduler(TimeScale(600))
    done = threading.Event()
    began = scheduler.now()
    scheduler.after(60, done.set)  # a minute of AWS time: 0.1 s here
    try:
        assert done.wait(timeout=5)
        assert (scheduler.now() - began).total_seconds() >= 0.1
    finally:
        scheduler.close()


def test_a_live_endpoint_says_it_is_in_service_by_event(aws: str, archives: dict[str, bytes]) -> None:
    in_service = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event["detail"].get("EndpointStatus") == "IN_SERVICE":
            in_service.set()

    for local in _local(aws, on_event=on_event, time_scale=TimeScale(1200)):
        host_model(local, "blue", archives["blue"], instances=False)
        local.sagemaker.create_endpoint(EndpointName="shop", EndpointConfigName="blue")
        assert in_service.wait(timeout=10)
        assert scores(local, "shop") == expected(archives["blue"])
