"""Start the SageMaker hyperparameter tuning job of a transformed upload, exactly once.

The Pulumi program renders the stack's part of the CreateHyperParameterTuningJob request (role, image,
instances, limits, ranges, output) into the function's environment; `tuning_request` adds what only the
run knows: the name, the objective of the dataset's problem type and the metric it is tuned on (the stack's
tuningObjectiveMetric, else the problem type's default), and the run's channels.

The job name is a digest of the upload's identity, so a redelivered message asks for the same job, and
SageMaker's `ResourceInUse` answer ("A hyperparameter tuning job with the name ... already exists") means
the job is there: the request succeeds without starting a second one.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import SageMakerClient, error_code
from shared.dataset_schema import DatasetSchema

# HyperParameterTuningJobName: 1-32 characters, ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31} (SageMaker API
# reference, CreateHyperParameterTuningJob). Names are case-insensitive and ARNs carry them lowercased,
# so the pipeline uses lowercase only.
TUNING_JOB_NAME_LENGTH = 32
TUNING_JOB_NAME = re.compile(r"[a-z0-9](-*[a-z0-9]){0,31}")
CSV = "text/csv"
# Tag values allow letters, digits, spaces and _.:/=+-@ up to 256 characters (SageMaker API, Tag).
_TAG_VALUE_FORBIDDEN = re.compile(r"[^\w .:/=+\-@]")


@dataclass(frozen=True)
class UploadIdentity:
    """One version of one uploaded object."""

    bucket: str
    key: str
    version_id: str | None
    etag: str
    last_modified: datetime

    @property
    def digest(self) -> str:
        version = self.version_id or f"etag:{self.etag}"
        return hashlib.sha256(f"{self.bucket}\n{self.key}\n{version}".encode()).hexdigest()

    @property
    def run_id(self) -> str:
        """Sortable by upload time, unique per object version, the same on every delivery."""
        return f"{self.last_modified:%Y%m%dT%H%M%SZ}-{self.digest[:12]}"

    def tuning_job_name(self, prefix: str) -> str:
        name = f"{prefix}-{self.digest}"[:TUNING_JOB_NAME_LENGTH]
        if not TUNING_JOB_NAME.fullmatch(name):
            raise ValueError(f"tuning job name {name!r} breaks SageMaker's naming rule")
        return name


def tuning_request(
    template: dict[str, Any],
    *,
    job_name: str,
    schema: DatasetSchema,
    bucket: str,
    run_prefix: str,
    train_files: int,
    tags: dict[str, str],
) -> dict[str, Any]:
    """The whole CreateHyperParameterTuningJob request for one run."""
    request = copy.deepcopy(template)
    xgboost = schema.xgboost
    request["HyperParameterTuningJobName"] = job_name
    config = request["HyperParameterTuningJobConfig"]
    # A stack that sets tuningObjectiveMetric has it in the template already (checked against its
    # problemType); otherwise the tuning job optimises the default metric of the dataset's problem type.
    objective = config.setdefault(
        "HyperParameterTuningJobObjective",
        {"Type": xgboost.tuning_direction, "MetricName": xgboost.tuning_metric},
    )
    definition = request["TrainingJobDefinition"]
    # The template's static hyperparameters (num_round under Hyperband, early_stopping_rounds) are kept.
    static = definition.setdefault("StaticHyperParameters", {})
    static["objective"] = xgboost.objective
    # The jobs must compute the tuned metric on the validation channel, or the tuning job has nothing to
    # compare: `validation:<name>` is reported for eval_metric `<name>`.
    static["eval_metric"] = objective["MetricName"].removeprefix("validation:")
    if xgboost.num_class is not None:
        static["num_class"] = str(xgboost.num_class)
    # More than one instance: each reads its own share of the part files instead of all of them, but only
    # when there is a file for every instance (S3DataSource API reference: an instance without an object
    # gets no data, and is paid for anyway).
    instances = definition["ResourceConfig"]["InstanceCount"]
    sharded = instances > 1 and train_files >= instances
    definition["InputDataConfig"] = [
        _channel("train", f"s3://{bucket}/{run_prefix}train/", sharded=sharded),
        _channel("validation", f"s3://{bucket}/{run_prefix}validation/", sharded=False),
    ]
    request["Tags"] = [
        *request.get("Tags", []),
        *({"Key": k, "Value": tag_value(v)} for k, v in tags.items()),
    ]
    return request


def tag_value(text: str) -> str:
    return _TAG_VALUE_FORBIDDEN.sub("_", text)[:256]


def _channel(name: str, uri: str, *, sharded: bool) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": CSV,
        "CompressionType": "None",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
            }
        },
    }


def start_tuning(sagemaker: SageMakerClient, request: dict[str, Any]) -> bool:
    """Create the tuning job; False when a job of that name exists already (a redelivery)."""
    try:
        sagemaker.create_hyper_parameter_tuning_job(**request)
    except ClientError as error:
        if error_code(error) == "ResourceInUse":
            return False
        raise
    return True
