"""What tuning and training need: the SageMaker execution role, the algorithm image, and the stack's
part of every CreateHyperParameterTuningJob request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.aws_context import AwsContext
from components.policy_documents import render
from components.service_role import service_role
from components.training_policies import MODELS_PREFIX, TRAINING_LOG_GROUP, training_policy
from hyperparameters import NUM_ROUND, Range, metric_direction, parameter_ranges
from settings import TrainingSettings
from xgboost_images import xgboost_image

# Rounds without improvement on the validation metric after which a training job stops.
STATIC_HYPERPARAMETERS = {"early_stopping_rounds": "20"}
# num_round is a required hyperparameter of the built-in algorithm ("XGBoost hyperparameters"): a stack
# that does not tune it (`"num_round": null`) trains this many rounds, the top of the default range;
# early_stopping_rounds ends a job sooner when the validation metric stops improving.
UNTUNED_NUM_ROUND = 500


def hyperband_resources(ranges: Mapping[str, Range]) -> tuple[int, int]:
    """Hyperband's MinResource and MaxResource, in boosting rounds: the bounds of the num_round range.

    SageMaker infers MaxResource only from epochs-like static hyperparameters, never from num_round, so
    both are set here; num_round itself is then static at MaxResource and Hyperband stops jobs earlier.
    """
    rounds = ranges.get(NUM_ROUND)
    if rounds is None:
        return 1, UNTUNED_NUM_ROUND
    if rounds.categorical:
        values = sorted(int(v) for v in rounds.values)
        # One value: Hyperband may stop a job at any round up to it.
        return (values[0] if values[0] < values[-1] else 1), values[-1]
    assert rounds.minimum is not None and rounds.maximum is not None
    return int(rounds.minimum), int(rounds.maximum)


def tuning_job_config(training: TrainingSettings) -> dict[str, Any]:
    """HyperParameterTuningJobConfig from the stack's settings (the objective only when the stack sets one;
    otherwise the transform adds the default of the dataset's problem type).

    The settings have refused what SageMaker would (load_settings): a grid beyond its limit, Hyperband
    with nothing to search but num_round.
    """
    ranges = dict(training.ranges)
    hyperband = training.strategy == "Hyperband"
    if hyperband:
        # Hyperband spends num_round itself (StrategyConfig): it is not also a searched range.
        ranges.pop(NUM_ROUND, None)
    limits = {"MaxParallelTrainingJobs": training.max_parallel_jobs}
    # SageMaker computes a grid's job count from the categorical combinations; a given
    # MaxNumberOfTrainingJobs "should equal the total number of distinct categorical combinations".
    if training.strategy != "Grid":
        limits["MaxNumberOfTrainingJobs"] = training.max_jobs
    config: dict[str, Any] = {
        "Strategy": training.strategy,
        "ResourceLimits": limits,
        # Hyperband has its own early stopping; SageMaker's must then be Off (HyperParameterTuningJobConfig,
        # TrainingJobEarlyStoppingType).
        "TrainingJobEarlyStoppingType": "Auto" if training.early_stopping and not hyperband else "Off",
        "ParameterRanges": parameter_ranges(ranges),
    }
    if hyperband:
        low, high = hyperband_resources(training.ranges)
        config["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": low, "MaxResource": high}}
    if training.objective_metric is not None:
        config["HyperParameterTuningJobObjective"] = {
            "Type": metric_direction(training.objective_metric),
            "MetricName": training.objective_metric,
        }
    return config


def static_hyperparameters(training: TrainingSettings) -> dict[str, str]:
    """The hyperparameters every training job gets as they are (the transform adds the problem's own)."""
    static = dict(STATIC_HYPERPARAMETERS)
    if training.strategy == "Hyperband":
        static[NUM_ROUND] = str(hyperband_resources(training.ranges)[1])
    elif NUM_ROUND not in training.ranges:
        static[NUM_ROUND] = str(UNTUNED_NUM_ROUND)
    return static


@dataclass(frozen=True)
class TrainingArgs:
    aws: AwsContext
    training: TrainingSettings
    stack: str
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]


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
    """CreateHyperParameterTuningJob without what each run adds (name, channels, dataset tags, and the
    objective unless the stack sets one)."""
    resources: dict[str, Any] = {
        "InstanceType": training.instance_type,
        "InstanceCount": training.instance_count,
        "VolumeSizeInGB": training.volume_gb,
    }
    if training.warm_pool_seconds > 0:
        # The API accepts a warm pool in a tuning job's training job definition, but AWS documents warm
        # pools for training jobs only and does not say a tuning job's jobs reuse them.
        resources["KeepAlivePeriodInSeconds"] = training.warm_pool_seconds
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": training.max_runtime_seconds}
    definition: dict[str, Any] = {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "StaticHyperParameters": static_hyperparameters(training),
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket_name}/{MODELS_PREFIX}", "KmsKeyId": key_arn},
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        # The built-in algorithm needs no network: no data can leave the training container.
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": training.instance_count > 1,
    }
    if training.use_spot:
        # MaxWaitTimeInSeconds (runtime plus waiting for spot capacity) is required with managed spot.
        definition["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = training.max_wait_seconds
    return {
        "HyperParameterTuningJobConfig": tuning_job_config(training),
        "TrainingJobDefinition": definition,
        "Tags": [{"Key": "stack", "Value": stack}],
    }


class Training(pulumi.ComponentResource):
    """Creates the SageMaker execution role of the stack's training jobs, allowed to read `processed/`,
    write `models/`, use the data key, write the training log group and pull the XGBoost image, and
    renders the stack's part of every tuning request (`request_template`, JSON) from config:
    `tuningStrategy` (default Bayesian) over `tuningRanges` (default: the documented XGBoost ranges),
    `tuningMaxJobs`/`tuningMaxParallelJobs`, `tuningEarlyStopping` (default on; off with Hyperband),
    `tuningObjectiveMetric` (default: the problem type's), `trainingInstanceType`/`Count`/`VolumeGb`,
    `trainingMaxRuntimeSeconds`, `trainingUseSpot`/`trainingMaxWaitSeconds` (default off),
    `trainingWarmPoolSeconds` (default 0), artifacts encrypted with the data key, network isolation on.
    """

    def __init__(self, name: str, args: TrainingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:Training", name, None, opts)
        self.image = xgboost_image(args.aws.region, args.training.xgboost_version)
        self.image_repository_arn = repository_arn(self.image, args.aws.partition)
        access = service_role(
            name,
            service_principal="sagemaker.amazonaws.com",
            description="Runs the stack's SageMaker training jobs",
            policy=render(
                training_policy,
                bucket_arn=args.bucket_arn,
                key_arn=args.key_arn,
                log_group_arn=args.aws.arn("logs", f"log-group:{TRAINING_LOG_GROUP}"),
                image_repository_arn=self.image_repository_arn,
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
