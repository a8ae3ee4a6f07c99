"""The CreateHyperParameterTuningJob request of a training set, and starting it exactly once.

The Pulumi program renders the stack's part of the request (role, image, instances, limits, ranges,
output) into the function's environment; `tuning_request` adds what only the training set knows: the name,
the objective of the dataset's problem type and the metric it is tuned on (the stack's
tuningObjectiveMetric, else the problem type's default), and its two ManifestFile channels.

SageMaker's `ResourceInUse` answer ("A hyperparameter tuning job with the name ... already exists") means
the job is there: the request succeeds without starting a second one.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import SageMakerClient, error_code
from shared.dataset_schema import DatasetSchema

CSV = "text/csv"
# Tag values allow letters, digits, spaces and _.:/=+-@ up to 256 characters (SageMaker API, Tag).
_TAG_VALUE_FORBIDDEN = re.compile(r"[^\w .:/=+\-@]")


def tuning_request(
    template: dict[str, Any],
    *,
    job_name: str,
    schema: DatasetSchema,
    train_manifest_uri: str,
    validation_manifest_uri: str,
    train_files: int,
    tags: dict[str, str],
) -> dict[str, Any]:
    """The whole CreateHyperParameterTuningJob request for one training set."""
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
    # More than one instance: each reads its own share of the listed part files instead of all of them,
    # but only when there is a file for every instance (S3DataSource API reference: an instance without an
    # object gets no data, and is paid for anyway).
    instances = definition["ResourceConfig"]["InstanceCount"]
    sharded = instances > 1 and train_files >= instances
    definition["InputDataConfig"] = [
        _channel("train", train_manifest_uri, sharded=sharded),
        _channel("validation", validation_manifest_uri, sharded=False),
    ]
    request["Tags"] = [
        *request.get("Tags", []),
        *({"Key": k, "Value": tag_value(v)} for k, v in tags.items()),
    ]
    return request


def tag_value(text: str) -> str:
    return _TAG_VALUE_FORBIDDEN.sub("_", text)[:256]


def _channel(name: str, manifest_uri: str, *, sharded: bool) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": CSV,
        "CompressionType": "None",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "ManifestFile",
                "S3Uri": manifest_uri,
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
