"""The contest's rows read back from S3 (moto): each validation record's label beside both models'
predictions, object by object, and the clear refusal of outputs that do not line up with their input."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from deploy.contest_rows import RowsMismatch, contest_rows, input_objects
from tests.functions.conftest import DATA_BUCKET, REGION

VALIDATION = "processed/sales/run-1/validation/"
OUT = f"s3://{DATA_BUCKET}/deployments/contest/t/"
PREFIX = {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/{VALIDATION}"}


def put(key: str, lines: list[str]) -> None:
    body = "".join(f"{line}\n" for line in lines).encode()
    boto3.client("s3", region_name=REGION).put_object(Bucket=DATA_BUCKET, Key=key, Body=body)


def rows(source: dict[str, str]) -> list[Any]:
    s3 = boto3.client("s3", region_name=REGION)
    return list(contest_rows(s3, input_objects(s3, source), f"{OUT}a/", f"{OUT}b/"))


def test_labels_and_both_predictions_line_up_object_by_object(aws: None) -> None:
    put(f"{VALIDATION}part-00000.csv", ["1,0.5,3", "0,0.1,2"])
    put(f"{VALIDATION}part-00001.csv", ["2,0.7,1"])
    put("deployments/contest/t/a/part-00000.csv.out", ["0.9", "0.2"])
    put("deployments/contest/t/b/part-00000.csv.out", ["0.6", "0.4"])
    put("deployments/contest/t/a/part-00001.csv.out", ["[0.1, 0.2, 0.7]"])
    put("deployments/contest/t/b/part-00001.csv.out", ["[0.3, 0.3, 0.4]"])

    assert rows(PREFIX) == [
        (1.0, 0.9, 0.6),
        (0.0, 0.2, 0.4),
        (2.0, (0.1, 0.2, 0.7), (0.3, 0.3, 0.4)),
    ]


def test_a_manifests_objects_are_read_under_its_prefix_and_named_relative_to_it(aws: None) -> None:
    put("processed/sales/run-2/validation/part-00000.csv", ["1,0.5,3"])
    manifest = [{"prefix": f"s3://{DATA_BUCKET}/processed/sales/"}, "run-2/validation/part-00000.csv"]
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=DATA_BUCKET, Key="processed/sales/manifest.json", Body=json.dumps(manifest).encode()
    )
    put("deployments/contest/t/a/run-2/validation/part-00000.csv.out", ["0.9"])
    put("deployments/contest/t/b/run-2/validation/part-00000.csv.out", ["0.1"])
    source = {"S3DataType": "ManifestFile", "S3Uri": f"s3://{DATA_BUCKET}/processed/sales/manifest.json"}

    assert rows(source) == [(1.0, 0.9, 0.1)]


@pytest.mark.parametrize(
    ("challenger", "champion", "message"),
    [
        (["0.9"], ["0.6", "0.4"], "the challenger's output ended before record 2"),
        (["0.9", "0.2", "0.3"], ["0.6", "0.4", "0.1"], "the validation data ended before record 3"),
        (["0.9", "0.2"], None, "deployments/contest/t/b/part-00000.csv.out does not exist"),
        (["0.9", "x"], ["0.6", "0.4"], "prediction 'x' is neither a number"),
    ],
)
def test_outputs_that_do_not_line_up_are_refused_naming_the_object(
    aws: None, challenger: list[str], champion: list[str] | None, message: str
) -> None:
    put(f"{VALIDATION}part-00000.csv", ["1,0.5,3", "0,0.1,2"])
    put("deployments/contest/t/a/part-00000.csv.out", challenger)
    if champion is not None:
        put("deployments/contest/t/b/part-00000.csv.out", champion)

    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as refused:
        rows(PREFIX)
    assert isinstance(refused.value, RowsMismatch) or "prediction" in message
