"""The rows of a contest, read from S3: each validation record's label beside the challenger's and the
champion's prediction of it, streamed object by object and line by line.

A transform job writes, for each input object, `<S3OutputPath>/<key relative to the input's prefix>.out`
with one line per input line, in order (TransformOutput.S3OutputPath, SageMaker API reference; the
container answers one line per record in batch mode, algorithm_mode/serve.py:241-242). For a manifest the
keys are relative to its `prefix` (TransformS3DataSource.S3Uri: `[{"prefix": "s3://..."}, "relative/key",
...]`). Empty lines are no records on either side.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from botocore.exceptions import ClientError

from deploy.evaluation import Prediction, parse_prediction
from shared.aws import error_code

SIDES = ("validation data", "challenger's output", "champion's output")


class RowsMismatch(ValueError):
    """A transform's output does not line up with its input; the message names the object."""


@dataclass(frozen=True)
class InputObject:
    bucket: str
    key: str
    relative: str  # the key below the input's prefix, as the output's name repeats it


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def input_objects(s3: Any, source: dict[str, Any]) -> list[InputObject]:
    """The objects a transform job reads from `source` (a TransformS3DataSource), in key order."""
    if source["S3DataType"] == "ManifestFile":
        bucket, key = _split(source["S3Uri"])
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if not (isinstance(manifest, list) and manifest and isinstance(manifest[0], dict)):
            raise RowsMismatch(f"manifest {source['S3Uri']} does not start with a {{'prefix': ...}} object")
        prefix_bucket, prefix = _split(str(manifest[0]["prefix"]))
        return [InputObject(prefix_bucket, f"{prefix}{rel}", str(rel)) for rel in manifest[1:]]
    bucket, prefix = _split(source["S3Uri"])
    folder = prefix[: prefix.rfind("/") + 1]
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                objects.append(InputObject(bucket, item["Key"], item["Key"][len(folder) :]))
    return sorted(objects, key=lambda o: o.key)


def _lines(s3: Any, bucket: str, key: str) -> Iterator[str]:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if error_code(error) == "NoSuchKey":
            raise RowsMismatch(f"s3://{bucket}/{key} does not exist") from None
        raise
    for raw in body.iter_lines():
        line = raw.decode("utf-8").strip()
        if line:
            yield line


def _label(line: str, where: str) -> float:
    field = line.split(",", 1)[0]
    try:
        return float(field)
    except ValueError:
        raise RowsMismatch(f"{where}: label {field[:40]!r} is not a number") from None


def contest_rows(
    s3: Any, objects: list[InputObject], challenger_output: str, champion_output: str
) -> Iterator[tuple[float, Prediction, Prediction]]:
    """(label, challenger's prediction, champion's prediction) of every validation record."""
    outputs = [_split(challenger_output), _split(champion_output)]
    for item in objects:
        where = f"s3://{item.bucket}/{item.key}"
        labels = _lines(s3, item.bucket, item.key)
        predicted = [_lines(s3, bucket, f"{folder}{item.relative}.out") for bucket, folder in outputs]
        for number, lines in enumerate(zip_longest(labels, *predicted), start=1):
            if None in lines:
                short = [side for side, line in zip(SIDES, lines, strict=True) if line is None]
                raise RowsMismatch(
                    f"{where}: the {' and '.join(short)} ended before record {number}: the transform "
                    "outputs do not line up with the validation data"
                )
            label, one, other = lines
            assert label is not None and one is not None and other is not None
            yield _label(label, f"{where} line {number}"), parse_prediction(one), parse_prediction(other)
