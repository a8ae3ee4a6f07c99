"""Where a dataset's files live in the data bucket, and reading and writing the small ones.

raw/<dataset>/<file>.csv                     uploads, never changed or deleted by the pipeline
raw/<dataset>/dataset.json                   the dataset's own settings (optional, written by its team)
processed/<dataset>/schema.json              the dataset's schema, written once by its first upload
processed/<dataset>/<run>/train/part-*.csv   encoded training rows
processed/<dataset>/<run>/validation/...     encoded validation rows
processed/<dataset>/<run>/schema.json        the schema the run used
processed/<dataset>/<run>/manifest.json      written last: the run is complete once it exists
processed/<dataset>/<job>/{train,validation}.manifest
                                             a tuning job's channels: every part file of the runs it covers
processed/<dataset>/<job>/schema.json        the schema the job trained on (beside its channels, as a
                                             run's schema.json is beside its train/ folder)
processed/<dataset>/<job>/tuning.json        the tuning decision: runs covered and left out, started or
                                             deferred (and until when)
processed/<dataset>/tuning/<day>/<job>.json  one object per tuning job started on that UTC day: the budget
rejected/<upload key>.json                   why an upload, or some of its rows, were refused

Run folders are named by `RUN_ID` and tuning job folders by the stack's job prefix, so neither is taken
for the other, nor for the `tuning/` ledger.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import S3Client, error_code
from shared.dataset_schema import DatasetSchema, SchemaError

PROCESSED_PREFIX = "processed/"
REJECTED_PREFIX = "rejected/"
JSON_CONTENT_TYPE = "application/json"
# Written last into a run's folder: the run is complete once it exists.
MANIFEST_FILE = "manifest.json"
# A run's folder: the upload's LastModified and 12 hex digits of its identity (transform/identity.py).
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{12}")


class LayoutError(ValueError):
    """An upload key that names no dataset."""


class SchemaConflict(RuntimeError):
    """Another first upload of the same dataset stored its schema first; a retry reads that schema."""


class StoredSchemaInvalid(RuntimeError):
    """The dataset's stored schema.json is not a valid schema: someone changed it by hand."""


@dataclass(frozen=True)
class RunLocation:
    dataset: str
    run: str

    @property
    def prefix(self) -> str:
        return f"{PROCESSED_PREFIX}{self.dataset}/{self.run}/"

    @property
    def train_prefix(self) -> str:
        return f"{self.prefix}train/"

    @property
    def validation_prefix(self) -> str:
        return f"{self.prefix}validation/"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}{MANIFEST_FILE}"

    @property
    def schema_key(self) -> str:
        return f"{self.prefix}schema.json"


def dataset_of(key: str, raw_prefix: str) -> str:
    """The dataset an upload belongs to: the first folder under the upload prefix."""
    dataset, separator, name = key.removeprefix(raw_prefix).partition("/")
    if not separator or not dataset or not name:
        raise LayoutError(
            f"upload key {key!r} names no dataset: upload to {raw_prefix}<dataset>/<file>, "
            f"e.g. {raw_prefix}churn/{key.rpartition('/')[2]}"
        )
    return dataset


def dataset_prefix(dataset: str) -> str:
    return f"{PROCESSED_PREFIX}{dataset}/"


def dataset_schema_key(dataset: str) -> str:
    return f"{PROCESSED_PREFIX}{dataset}/schema.json"


def rejection_key(upload_key: str) -> str:
    return f"{REJECTED_PREFIX}{upload_key}.json"


class DatasetStore:
    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def read_bytes(self, key: str) -> bytes | None:
        """The object at `key`, None when there is none (the role may list, so S3 says 404)."""
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error_code(error) == "NoSuchKey":
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def read_json(self, key: str) -> Any | None:
        """The JSON document at `key`, None when there is none."""
        data = self.read_bytes(key)
        return None if data is None else json.loads(data)

    def listing(self, prefix: str) -> dict[str, datetime]:
        """Every key under `prefix`, without it, and when S3 stored it (ListObjectsV2, 1,000 a page)."""
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix)
        items = (item for page in pages for item in page.get("Contents", []))
        return {item["Key"][len(prefix) :]: item["LastModified"] for item in items}

    def read_schema(self, dataset: str) -> DatasetSchema | None:
        key = dataset_schema_key(dataset)
        document = self.read_json(key)
        if document is None:
            return None
        try:
            return DatasetSchema.from_document(document)
        except SchemaError as error:
            raise StoredSchemaInvalid(f"s3://{self._bucket}/{key}: {error}") from None

    def create_schema(self, dataset: str, schema: DatasetSchema) -> None:
        """Store a dataset's first schema unless one exists: the first writer wins (S3 conditional
        write, If-None-Match: *, answered with 412 PreconditionFailed when the key exists)."""
        try:
            self._put(dataset_schema_key(dataset), schema.to_json(), IfNoneMatch="*")
        except ClientError as error:
            # 409 ConditionalRequestConflict: a concurrent conditional write is in flight.
            if error_code(error) in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise SchemaConflict(
                    f"dataset {dataset!r} got its schema from another upload first"
                ) from None
            raise

    def write_schema(self, key: str, schema: DatasetSchema) -> None:
        self._put(key, schema.to_json())

    def write_json(self, key: str, document: Any) -> None:
        self._put(key, json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n")

    def _put(self, key: str, body: bytes, **conditions: str) -> None:
        self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=body, ContentType=JSON_CONTENT_TYPE, **conditions
        )
