"""The predict function's configuration, read once per container from its environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.environment import invalid, require

DATA_BUCKET = "DATA_BUCKET"
ENDPOINT_NAME = "ENDPOINT_NAME"
SERVING_RECORD_KEY = "SERVING_RECORD_KEY"
MAX_RECORDS = "MAX_RECORDS"
# The endpoint's request limit (InvokeEndpoint: 6 MB real-time, 4 MB serverless).
MAX_PAYLOAD_BYTES = "MAX_PAYLOAD_BYTES"
VARIABLES = (DATA_BUCKET, ENDPOINT_NAME, SERVING_RECORD_KEY, MAX_RECORDS, MAX_PAYLOAD_BYTES)


@dataclass(frozen=True)
class PredictEnvironment:
    bucket: str
    endpoint_name: str
    serving_record_key: str
    max_records: int
    max_payload_bytes: int


def load_environment(env: Mapping[str, str] = os.environ) -> PredictEnvironment:
    require(env, VARIABLES, "predict")
    try:
        return PredictEnvironment(
            bucket=env[DATA_BUCKET],
            endpoint_name=env[ENDPOINT_NAME],
            serving_record_key=env[SERVING_RECORD_KEY],
            max_records=int(env[MAX_RECORDS]),
            max_payload_bytes=int(env[MAX_PAYLOAD_BYTES]),
        )
    except ValueError as error:
        raise invalid("predict", error) from None
