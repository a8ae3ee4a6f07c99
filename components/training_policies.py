"""IAM policies of the SageMaker execution role that tuning's training jobs run with.

Permissions follow the SageMaker developer guide, "How to use SageMaker AI execution roles", section
"CreateTrainingJob API: Execution Role Permissions", narrowed to this stack's resources.
"""

from __future__ import annotations

from components.policy_documents import Document, Statement, allow, document

TRAINING_DATA_PREFIX = "processed/"
MODELS_PREFIX = "models/"
# Training jobs log to this group, and SageMaker's metrics use the same name as their namespace.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
IMAGE_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]


def algorithm_container(*, log_group_arns: list[str], image_repository_arn: str) -> list[Statement]:
    """What SageMaker needs to run the built-in algorithm's container with a role, for training, hosting
    or batch transform: pull its image, write its log groups and its metrics."""
    return [
        # GetAuthorizationToken has no resource type; the pulls are limited to the algorithm's repository.
        allow("AuthenticateToRegistry", ["ecr:GetAuthorizationToken"], ["*"]),
        allow("PullAlgorithmImage", IMAGE_PULL_ACTIONS, [image_repository_arn]),
        allow(
            "WriteContainerLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            # CloudWatch Logs matches a log group's actions against `<group ARN>:*` (CloudWatch Logs user
            # guide, "Using identity-based policies"), which also covers the group's log streams.
            [arn for group in log_group_arns for arn in (group, f"{group}:*")],
        ),
        allow(
            "PutContainerMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],  # PutMetricData has no resource type (Service Authorization Reference, CloudWatch)
            Condition={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        ),
    ]


def training_policy(
    *, bucket_arn: str, key_arn: str, log_group_arn: str, image_repository_arn: str
) -> Document:
    """Read the transform's output, write model artifacts, use the data key, log, pull the algorithm."""
    return document(
        allow("ReadTrainingData", ["s3:GetObject"], [f"{bucket_arn}/{TRAINING_DATA_PREFIX}*"]),
        allow(
            "ListTrainingData",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringLike": {"s3:prefix": [f"{TRAINING_DATA_PREFIX}*"]}},
        ),
        allow("WriteModelArtifacts", ["s3:PutObject"], [f"{bucket_arn}/{MODELS_PREFIX}*"]),
        # Decrypt reads the SSE-KMS inputs; GenerateDataKey and Encrypt write the artifacts under the
        # key named in OutputDataConfig.KmsKeyId.
        allow("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"], [key_arn]),
        *algorithm_container(log_group_arns=[log_group_arn], image_repository_arn=image_repository_arn),
    )
