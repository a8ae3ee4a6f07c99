"""The transform function's configuration, read once per container from its environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.dataset_schema import ProblemType
from shared.environment import invalid, require
from shared.s3_events import UploadFilter
from transform.pipeline import TransformOptions
from transform.schema_inference import InferenceOptions

# Names of the environment variables the Pulumi program sets on the function.
DATA_BUCKET = "DATA_BUCKET"
RAW_PREFIX = "RAW_PREFIX"
RAW_SUFFIX = "RAW_SUFFIX"
TARGET_COLUMN = "TARGET_COLUMN"
PROBLEM_TYPE = "PROBLEM_TYPE"
VALIDATION_PERCENT = "VALIDATION_PERCENT"
MAX_REJECTED_ROWS_PERCENT = "MAX_REJECTED_ROWS_PERCENT"
MAX_CATEGORIES = "MAX_CATEGORIES"
MIN_LABELED_ROWS = "MIN_LABELED_ROWS"
PART_FILE_MB = "PART_FILE_MB"
TUNING_JOB_PREFIX = "TUNING_JOB_PREFIX"
TUNING_REQUEST_TEMPLATE = "TUNING_REQUEST_TEMPLATE"
# The function's configured timeout: the Lambda context tells only the time left.
TIMEOUT_SECONDS = "TIMEOUT_SECONDS"
VARIABLES = (
    DATA_BUCKET,
    RAW_PREFIX,
    RAW_SUFFIX,
    TARGET_COLUMN,
    PROBLEM_TYPE,
    VALIDATION_PERCENT,
    MAX_REJECTED_ROWS_PERCENT,
    MAX_CATEGORIES,
    MIN_LABELED_ROWS,
    PART_FILE_MB,
    TUNING_JOB_PREFIX,
    TUNING_REQUEST_TEMPLATE,
    TIMEOUT_SECONDS,
)
AUTO = "auto"


@dataclass(frozen=True)
class TransformEnvironment:
    bucket: str
    uploads: UploadFilter
    options: TransformOptions
    part_file_bytes: int
    tuning_job_prefix: str
    tuning_template: dict[str, Any]
    timeout_seconds: int


def load_environment(env: Mapping[str, str] = os.environ) -> TransformEnvironment:
    require(env, VARIABLES, "transform")
    try:
        max_categories = int(env[MAX_CATEGORIES])
        max_rejected_fraction = float(env[MAX_REJECTED_ROWS_PERCENT]) / 100
        options = TransformOptions(
            validation_fraction=int(env[VALIDATION_PERCENT]) / 100,
            max_rejected_fraction=max_rejected_fraction,
            inference=InferenceOptions(
                target_column=env[TARGET_COLUMN],
                problem_type=None if env[PROBLEM_TYPE] == AUTO else ProblemType(env[PROBLEM_TYPE]),
                max_categories=max_categories,
                numeric_tolerance=max_rejected_fraction,
            ),
            min_labeled_rows=int(env[MIN_LABELED_ROWS]),
        )
        return TransformEnvironment(
            bucket=env[DATA_BUCKET],
            uploads=UploadFilter(bucket=env[DATA_BUCKET], prefix=env[RAW_PREFIX], suffix=env[RAW_SUFFIX]),
            options=options,
            part_file_bytes=int(env[PART_FILE_MB]) * 1024 * 1024,
            tuning_job_prefix=env[TUNING_JOB_PREFIX],
            tuning_template=json.loads(env[TUNING_REQUEST_TEMPLATE]),
            timeout_seconds=int(env[TIMEOUT_SECONDS]),
        )
    except ValueError as error:
        raise invalid("transform", error) from None
