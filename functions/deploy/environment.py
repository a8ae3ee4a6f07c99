"""The deploy function's configuration, read once per container from its environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from deploy.serving import ServingPlan
from shared.environment import invalid, require

DATA_BUCKET = "DATA_BUCKET"
TUNING_JOB_PREFIX = "TUNING_JOB_PREFIX"
# JSON object of the ServingPlan fields.
SERVING_PLAN = "SERVING_PLAN"
RECORDS_PREFIX = "RECORDS_PREFIX"
VARIABLES = (DATA_BUCKET, TUNING_JOB_PREFIX, SERVING_PLAN, RECORDS_PREFIX)


@dataclass(frozen=True)
class DeployEnvironment:
    bucket: str
    tuning_job_prefix: str
    plan: ServingPlan
    records_prefix: str


def load_environment(env: Mapping[str, str] = os.environ) -> DeployEnvironment:
    require(env, VARIABLES, "deploy")
    try:
        plan = ServingPlan(**json.loads(env[SERVING_PLAN]))
    except (ValueError, TypeError) as error:
        raise invalid("deploy", f"{SERVING_PLAN}: {error}") from None
    return DeployEnvironment(
        bucket=env[DATA_BUCKET],
        tuning_job_prefix=env[TUNING_JOB_PREFIX],
        plan=plan,
        records_prefix=env[RECORDS_PREFIX],
    )
