"""Which model the endpoint serves and the schema its records are encoded with, cached per container.

The deploy function writes the serving record (`deployments/serving.json`: model, schema URI) whenever
the endpoint is in service. It is read again at most every `RECORD_TTL_SECONDS`, so a new model's id
shows within that time; a schema is read once per URI. The endpoint serves one dataset, whose schema
never changes, so the encoding is right even while a record is a few seconds old.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import error_code
from shared.dataset_schema import DatasetSchema
from shared.encoding import ModelInput

RECORD_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class ServedModel:
    model: str
    schema: DatasetSchema
    encoder: ModelInput


class ServedModels:
    def __init__(
        self, s3: Any, bucket: str, record_key: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._record_key = record_key
        self._clock = clock
        self._current: ServedModel | None = None
        self._read_at: float | None = None
        self._schemas: dict[str, tuple[DatasetSchema, ModelInput]] = {}

    def current(self) -> ServedModel | None:
        """The model serving now, or None when none is deployed."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= RECORD_TTL_SECONDS:
            self._current = self._read()
            self._read_at = now
        return self._current

    def forget(self) -> None:
        """Read the serving record again at the next request (the endpoint it named failed)."""
        self._read_at = None

    def _read(self) -> ServedModel | None:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=self._record_key)["Body"].read()
        except ClientError as error:
            if error_code(error) == "NoSuchKey":
                return None
            raise
        record = json.loads(body)
        schema, encoder = self._schema(record["schema"])
        return ServedModel(record["model"], schema, encoder)

    def _schema(self, uri: str) -> tuple[DatasetSchema, ModelInput]:
        if uri not in self._schemas:
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            schema = DatasetSchema.from_json(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            self._schemas[uri] = (schema, ModelInput(schema))
        return self._schemas[uri]
