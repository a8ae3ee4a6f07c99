"""The local SageMaker's batch transform through real boto3 clients: a job runs its model, served with the
same code as an endpoint, over its input in S3 and writes one line per record into `<input>.out`, with the
label column dropped by its InputFilter; manifests, failures, stops and the events of each change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import numpy as np
import pytest
import xgboost
from botocore.exceptions import ClientError

from rehearsal.sagemaker.batch import STARTUP_SECONDS
from rehearsal.sagemaker.container.errors import NotEmulated
from rehearsal.sagemaker.container.training import train
from tests.rehearsal.test_sagemaker_service import (
    BUCKET,
    IMAGE,
    MODEL_ROLE,
    REGION,
    Local,
    _local,
    aws,  # noqa: F401 - the fixture the local SageMaker reads S3 from
    booster,
)

LABELLED = [f"{int(x > 4)},{x},{(x * 3) % 7}" for x in range(10)]
DETAIL_TYPE = "SageMaker Transform Job State Change"


@pytest.fixture
def local(aws: str) -> Iterator[Local]:  # noqa: F811 - the imported fixture, used here
    yield from _local(aws, manual_clock=datetime(2026, 11, 1, 12, 0, tzinfo=UTC), page_size=2)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A binary, a multiclass (softprob) and a regression model of the two feature columns."""
    made = {}
    for name, objective, labels in (
        ("binary", {"objective": "binary:logistic"}, [r.split(",")[0] for r in LABELLED]),
        ("multiclass", {"objective": "multi:softprob", "num_class": "3"}, [str(x % 3) for x in range(10)]),
        ("regression", {"objective": "reg:squarederror"}, [str(x * 1.5) for x in range(10)]),
    ):
        directory = tmp_path_factory.mktemp(name)
        rows = [f"{label},{row.split(',', 1)[1]}" for label, row in zip(labels, LABELLED, strict=True)]
        (directory / "part-00000.csv").write_text("\n".join(rows) + "\n")
        hyperparameters = {"num_round": "3", "max_depth": "2", **objective}
        made[name] = train(hyperparameters, {"train": directory}, content_type="text/csv").model_archive
    return made


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def add_model(local: Local, name: str, archive: bytes) -> None:
    key = f"models/{name}/output/model.tar.gz"
    s3().put_object(Bucket=BUCKET, Key=key, Body=archive)
    local.sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"},
        ExecutionRoleArn=MODEL_ROLE,
    )


def request(name: str, model: str, source: dict[str, str], **overrides: Any) -> dict[str, Any]:
    return {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": source},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{BUCKET}/out/{name}/",
            "Accept": "text/csv",
            "AssembleWith": "Line",
            "KmsKeyId": local_key,
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "None"},
        **overrides,
    }


local_key = f"arn:aws:kms:{REGION}:123456789012:key/contest"
PREFIX = {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/rows/"}


def put_rows() -> None:
    """Two input objects, the second in a folder: the outputs keep the folder."""
    s3().put_object(Bucket=BUCKET, Key="rows/part-00000.csv", Body="\n".join(LABELLED[:6]) + "\n")
    s3().put_object(Bucket=BUCKET, Key="rows/more/part-00001.csv", Body="\n".join(LABELLED[6:]) + "\n")


def out_lines(key: str) -> list[str]:
    return s3().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()


def features(rows: list[str]) -> Any:
    return xgboost.DMatrix(np.array([[float(v) for v in row.split(",")[1:]] for row in rows]))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_transform_job_writes_one_prediction_per_record_of_each_input_object(
    local: Local, models: dict[str, bytes], kind: str
) -> None:
    put_rows()
    add_model(local, kind, models[kind])
    local.sagemaker.create_transform_job(**request("job-1", kind, PREFIX))
    assert (
        local.sagemaker.describe_transform_job(TransformJobName="job-1")["TransformJobStatus"] == "InProgress"
    )

    local.service.tick(STARTUP_SECONDS / 60)

    job = local.sagemaker.describe_transform_job(TransformJobName="job-1")
    assert job["TransformJobStatus"] == "Completed" and "TransformEndTime" in job
    model = booster(models[kind])
    for key, rows in (("part-00000.csv", LABELLED[:6]), ("more/part-00001.csv", LABELLED[6:])):
        lines = out_lines(f"out/job-1/{key}.out")
        # The container's batch answer: str() of each row of predict(...).tolist() (serve.py:241-242),
        # of the features only: the InputFilter dropped the label.
        assert lines == [str(p) for p in model.predict(features(rows)).tolist()]
    head = s3().head_object(Bucket=BUCKET, Key="out/job-1/part-00000.csv.out")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", local_key)


def test_a_manifest_names_the_objects_and_their_output_paths(local: Local, models: dict[str, bytes]) -> None:
    put_rows()
    add_model(local, "binary", models["binary"])
    manifest = [{"prefix": f"s3://{BUCKET}/rows/"}, "more/part-00001.csv"]
    s3().put_object(Bucket=BUCKET, Key="manifests/one.json", Body=json.dumps(manifest))
    source = {"S3DataType": "ManifestFile", "S3Uri": f"s3://{BUCKET}/manifests/one.json"}
    local.sagemaker.create_transform_job(**request("job-2", "binary", source))

    local.service.tick(STARTUP_SECONDS / 60)

    assert len(out_lines("out/job-2/more/part-00001.csv.out")) == len(LABELLED[6:])
    listed = s3().list_objects_v2(Bucket=BUCKET, Prefix="out/job-2/")["Contents"]
    assert [o["Key"] for o in listed] == ["out/job-2/more/part-00001.csv.out"]


def test_a_record_the_container_refuses_fails_the_job_with_its_answer(
    local: Local, models: dict[str, bytes]
) -> None:
    put_rows()
    add_model(local, "binary", models["binary"])
    # A word where the model expects a number: the container's CSV parsing refuses it (415).
    s3().put_object(Bucket=BUCKET, Key="rows/part-00000.csv", Body=b"1,a,2\n")
    local.sagemaker.create_transform_job(**request("job-3", "binary", PREFIX))

    local.service.tick(STARTUP_SECONDS / 60)

    job = local.sagemaker.describe_transform_job(TransformJobName="job-3")
    assert job["TransformJobStatus"] == "Failed"
    assert "415" in job["FailureReason"] and "rows/part-00000.csv" in job["FailureReason"]
    assert "Contents" not in s3().list_objects_v2(Bucket=BUCKET, Prefix="out/job-3/part-00000")


def test_each_state_change_is_published_with_the_jobs_fields(local: Local, models: dict[str, bytes]) -> None:
    put_rows()
    add_model(local, "binary", models["binary"])
    local.sagemaker.create_transform_job(
        **request("job-4", "binary", PREFIX, Tags=[{"Key": "stack", "Value": "dev"}])
    )
    local.service.tick(STARTUP_SECONDS / 60)

    events = local.published(DETAIL_TYPE)

    assert [e["detail"]["TransformJobStatus"] for e in events] == ["InProgress", "Completed"]
    detail = events[-1]["detail"]
    assert (detail["TransformJobName"], detail["ModelName"], detail["Tags"]) == (
        "job-4",
        "binary",
        {"stack": "dev"},
    )
    assert events[-1]["resources"] == [detail["TransformJobArn"]]


def test_a_stopped_job_writes_nothing_and_ends_stopped(local: Local, models: dict[str, bytes]) -> None:
    put_rows()
    add_model(local, "binary", models["binary"])
    local.sagemaker.create_transform_job(**request("job-5", "binary", PREFIX))

    local.sagemaker.stop_transform_job(TransformJobName="job-5")
    local.service.tick(STARTUP_SECONDS / 60)

    assert local.sagemaker.describe_transform_job(TransformJobName="job-5")["TransformJobStatus"] == "Stopped"
    assert "Contents" not in s3().list_objects_v2(Bucket=BUCKET, Prefix="out/job-5/")
    summaries = local.sagemaker.list_transform_jobs(StatusEquals="Stopped")["TransformJobSummaries"]
    assert [s["TransformJobName"] for s in summaries] == ["job-5"]


def test_a_duplicate_name_a_missing_model_and_a_missing_job_are_refused(
    local: Local, models: dict[str, bytes]
) -> None:
    add_model(local, "binary", models["binary"])
    local.sagemaker.create_transform_job(**request("job-6", "binary", PREFIX))

    with pytest.raises(ClientError, match="ResourceInUse"):
        local.sagemaker.create_transform_job(**request("job-6", "binary", PREFIX))
    with pytest.raises(ClientError, match="Could not find model"):
        local.sagemaker.create_transform_job(**request("job-7", "none", PREFIX))
    with pytest.raises(ClientError, match="ResourceNotFound"):
        local.sagemaker.describe_transform_job(TransformJobName="job-8")


def test_what_is_not_emulated_is_refused_by_name(local: Local, models: dict[str, bytes]) -> None:
    add_model(local, "binary", models["binary"])
    joined = request("job-9", "binary", PREFIX, DataProcessing={"InputFilter": "$", "JoinSource": "Input"})

    # Called on the service itself: over HTTP the stand-in's own gap is a loud defect of the test run.
    with pytest.raises(NotEmulated, match="JoinSource Input"):
        local.service.batch.create_transform_job(joined)
    assert local.service.transform_jobs == {}
