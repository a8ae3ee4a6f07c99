"""The tune function's configuration, read once per container from its environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.environment import invalid, require

# Names of the environment variables the Pulumi program sets on the function.
DATA_BUCKET = "DATA_BUCKET"
TUNING_JOB_PREFIX = "TUNING_JOB_PREFIX"
TUNING_REQUEST_TEMPLATE = "TUNING_REQUEST_TEMPLATE"
# The function's own queue: a request the budget defers is sent back to it, delayed.
TUNING_QUEUE_URL = "TUNING_QUEUE_URL"
TUNING_JOBS_PER_DAY = "TUNING_JOBS_PER_DAY"
VARIABLES = (DATA_BUCKET, TUNING_JOB_PREFIX, TUNING_REQUEST_TEMPLATE, TUNING_QUEUE_URL, TUNING_JOBS_PER_DAY)


@dataclass(frozen=True)
class TuneEnvironment:
    bucket: str
    tuning_job_prefix: str
    tuning_template: dict[str, Any]
    queue_url: str
    jobs_per_day: int


def load_environment(env: Mapping[str, str] = os.environ) -> TuneEnvironment:
    require(env, VARIABLES, "tune")
    try:
        return TuneEnvironment(
            bucket=env[DATA_BUCKET],
            tuning_job_prefix=env[TUNING_JOB_PREFIX],
            tuning_template=json.loads(env[TUNING_REQUEST_TEMPLATE]),
            queue_url=env[TUNING_QUEUE_URL],
            jobs_per_day=int(env[TUNING_JOBS_PER_DAY]),
        )
    except ValueError as error:
        raise invalid("tune", error) from None
