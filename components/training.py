"""What tuning and training need: the SageMaker execution role, the algorithm image, and the stack's
part of every CreateHyperParameterTuningJob request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from sagemaker.core import image_uris

from components.aws_context import AwsContext
from components.policy_documents import render
from components.service_role import service_role
from components.training_policies import MODELS_PREFIX, TRAINING_LOG_GROUP, training_policy
from settings import TrainingSettings

# Search ranges of the built-in algorithm's hyperparameters (SageMaker developer guide, "Tune an XGBoost
# model", tunable hyperparameters and their recommended ranges).
CONTINUOUS_RANGES = [
    {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
    {"Name": "min_child_weight", "MinValue": "1", "MaxValue": "10", "ScalingType": "Auto"},
    {"Name": "subsample", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "Linear"},
    {"Name": "colsample_bytree", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "Linear"},
    {"Name": "alpha", "MinValue": "0", "MaxValue": "2", "ScalingType": "Auto"},
    {"Name": "lambda", "MinValue": "0", "MaxValue": "2", "ScalingType": "Auto"},
]
INTEGER_RANGES = [
    {"Name": "max_depth", "MinValue": "3", "MaxValue": "10", "ScalingType": "Auto"},
    {"Name": "num_round", "MinValue": "50", "MaxValue": "500", "ScalingType": "Auto"},
]
# Rounds without improvement on the validation metric after which a training job stops.
STATIC_HYPERPARAMETERS = {"early_stopping_rounds": "20"}


@dataclass(frozen=True)
class TrainingArgs:
    aws: AwsContext
    training: TrainingSettings
    stack: str
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]


def algorithm_image(region: str, version: str) -> str:
    """The built-in XGBoost image of `version` in `region`, from the sagemaker SDK's registry."""
    return str(image_uris.retrieve("xgboost", region=region, version=version))


def repository_arn(image_uri: str, partition: str) -> str:
    """ECR repository ARN of an image URI `<account>.dkr.ecr.<region>.<domain>/<repository>:<tag>`."""
    registry, _, path = image_uri.partition("/")
    account, _, rest = registry.partition(".dkr.ecr.")
    region = rest.split(".", 1)[0]
    return f"arn:{partition}:ecr:{region}:{account}:repository/{path.rpartition(':')[0]}"


def tuning_request_template(
    *,
    training: TrainingSettings,
    stack: str,
    image: str,
    role_arn: str,
    bucket_name: str,
    key_arn: str,
) -> dict[str, Any]:
    """CreateHyperParameterTuningJob without what each run adds (name, objective, channels, dataset tags)."""
    return {
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs": training.max_jobs,
                "MaxParallelTrainingJobs": training.max_parallel_jobs,
            },
            "TrainingJobEarlyStoppingType": "Auto",
            "ParameterRanges": {
                "ContinuousParameterRanges": CONTINUOUS_RANGES,
                "IntegerParameterRanges": INTEGER_RANGES,
            },
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "RoleArn": role_arn,
            "StaticHyperParameters": dict(STATIC_HYPERPARAMETERS),
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket_name}/{MODELS_PREFIX}", "KmsKeyId": key_arn},
            "ResourceConfig": {
                "InstanceType": training.instance_type,
                "InstanceCount": training.instance_count,
                "VolumeSizeInGB": training.volume_gb,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": training.max_runtime_seconds},
            # The built-in algorithm needs no network: no data can leave the training container.
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": training.instance_count > 1,
        },
        "Tags": [{"Key": "stack", "Value": stack}],
    }


class Training(pulumi.ComponentResource):
    """Creates the SageMaker execution role of the stack's training jobs, allowed to read `processed/`,
    write `models/`, use the data key, write the training log group and pull the XGBoost image, and
    renders the stack's part of every tuning request (`request_template`, JSON) from config:
    Bayesian search over the documented XGBoost ranges, `tuningMaxJobs`/`tuningMaxParallelJobs`,
    `trainingInstanceType`/`Count`/`VolumeGb`, `trainingMaxRuntimeSeconds`, artifacts encrypted with the
    data key, network isolation on.
    """

    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:Training", name, None, opts)
        self.image = algorithm_image(args.aws.region, args.training.xgboost_version)
        access = service_role(
            name,
            service_principal="sagemaker.amazonaws.com",
            description="Runs the stack's SageMaker training jobs",
            policy=render(
                training_policy,
                bucket_arn=args.bucket_arn,
                key_arn=args.key_arn,
                log_group_arn=args.aws.arn("logs", f"log-group:{TRAINING_LOG_GROUP}"),
                image_repository_arn=repository_arn(self.image, args.aws.partition),
            ),
            parent=self,
        )
        self.role = access.role
        self.request_template = pulumi.Output.all(
            role_arn=self.role.arn, bucket_name=args.bucket_name, key_arn=args.key_arn
        ).apply(
            lambda resolved: json.dumps(
                tuning_request_template(
                    training=args.training, stack=args.stack, image=self.image, **resolved
                ),
                separators=(",", ":"),
            )
        )
        self.register_outputs({"role_arn": self.role.arn, "image": self.image})
