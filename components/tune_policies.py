"""IAM policies of the tune function's role and of the tuning-request queues."""

from __future__ import annotations

from components.policy_documents import Document, allow, deny_insecure_transport, document
from components.transform_policies import PROCESSED_PREFIX, QUEUE_CONSUMER_ACTIONS, SAGEMAKER


def tune_policy(
    *,
    bucket_arn: str,
    queue_arn: str,
    key_arn: str,
    log_group_arn: str,
    tuning_jobs_arn: str,
    training_role_arn: str,
) -> Document:
    """Read the datasets' runs, write channel manifests and records, consume its queue and send deferred
    requests back to it, use the data key, start tuning jobs with the training role, write its own logs."""
    processed = f"{bucket_arn}/{PROCESSED_PREFIX}*"
    return document(
        allow("ReadDatasets", ["s3:GetObject"], [processed]),
        # The runs of a dataset are the folders under processed/<dataset>/ (ListObjectsV2); it also makes
        # S3 answer a missing key with 404, not 403 (S3 API reference, GetObject, "Permissions").
        allow("ListRuns", ["s3:ListBucket"], [bucket_arn]),
        allow("WriteTuningSets", ["s3:PutObject"], [processed]),
        allow("ConsumeTuningRequests", QUEUE_CONSUMER_ACTIONS, [queue_arn]),
        allow("DeferTuningRequests", ["sqs:SendMessage"], [queue_arn]),
        # Decrypt: queue messages and stored objects; GenerateDataKey: objects it writes under SSE-KMS and
        # messages it sends to the encrypted queue (SQS developer guide, "Key management").
        allow("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
        # Creating a tagged resource also needs AddTags on it (SageMaker developer guide, "Provide
        # permissions for tagging SageMaker AI resources").
        allow(
            "StartTuningJobs",
            ["sagemaker:CreateHyperParameterTuningJob", "sagemaker:AddTags"],
            [tuning_jobs_arn],
        ),
        allow(
            "PassTrainingRole",
            ["iam:PassRole"],
            [training_role_arn],
            Condition={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        ),
        allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
    )


def tuning_queue_policy(*, queue_arn: str, sender_role_arns: list[str]) -> Document:
    """Only the transform (a run's request) and the tune function (a deferred one) may send, over TLS."""
    return document(
        allow(
            "AllowPipelineRolesToSend",
            ["sqs:SendMessage"],
            [queue_arn],
            Principal={"AWS": sender_role_arns},
        ),
        deny_insecure_transport(["sqs:*"], [queue_arn]),
    )


def tuning_dead_letter_policy(*, queue_arn: str) -> Document:
    """No one sends to the dead-letter queue: SQS moves messages there itself (redrive); TLS only."""
    return document(deny_insecure_transport(["sqs:*"], [queue_arn]))
