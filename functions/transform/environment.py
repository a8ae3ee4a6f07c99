"""The transform function's configuration, read once per container from its environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

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
# The stack's tuningObjectiveMetric, "auto" when it leaves the metric to the dataset's problem type.
TUNING_OBJECTIVE_METRIC = "TUNING_OBJECTIVE_METRIC"
# Where a complete run asks for tuning, and how long the request waits for more uploads of the dataset.
TUNING_QUEUE_URL = "TUNING_QUEUE_URL"
TUNING_QUIET_SECONDS = "TUNING_QUIET_SECONDS"
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
    TUNING_OBJECTIVE_METRIC,
    TUNING_QUEUE_URL,
    TUNING_QUIET_SECONDS,
    TIMEOUT_SECONDS,
)
AUTO = "auto"


@dataclass(frozen=True)
class TransformEnvironment:
    bucket: str
    uploads: UploadFilter
    options: TransformOptions
    part_file_bytes: int
    # None: each dataset is tuned on its problem type's default metric.
    tuning_objective_metric: str | None
    tuning_queue_url: str
    tuning_quiet_seconds: int
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
            tuning_objective_metric=None
            if env[TUNING_OBJECTIVE_METRIC] == AUTO
            else env[TUNING_OBJECTIVE_METRIC],
            tuning_queue_url=env[TUNING_QUEUE_URL],
            tuning_quiet_seconds=int(env[TUNING_QUIET_SECONDS]),
            timeout_seconds=int(env[TIMEOUT_SECONDS]),
        )
    except ValueError as error:
        raise invalid("transform", error) from None
