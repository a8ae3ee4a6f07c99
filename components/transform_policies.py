"""IAM policies of the transform function's role."""

from __future__ import annotations

from components.policy_documents import Document, allow, document

# The three actions Lambda's SQS poller calls with the function's role (Lambda developer guide,
# "Using Lambda with Amazon SQS", execution role permissions).
QUEUE_CONSUMER_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
PROCESSED_PREFIX = "processed/"
REJECTED_PREFIX = "rejected/"
SAGEMAKER = "sagemaker.amazonaws.com"


def transform_policy(
    *,
    bucket_arn: str,
    raw_prefix: str,
    queue_arn: str,
    key_arn: str,
    log_group_arn: str,
    tuning_jobs_arn: str,
    training_role_arn: str,
) -> Document:
    """Read uploads, keep datasets and results, consume the upload queue, use the data key, start tuning
    jobs with the training role, write its own logs."""
    processed = f"{bucket_arn}/{PROCESSED_PREFIX}*"
    return document(
        # A notification from a versioned bucket names the version read (GetObjectVersion); one without a
        # versionId gets the current version (GetObject).
        allow("ReadUploads", ["s3:GetObject", "s3:GetObjectVersion"], [f"{bucket_arn}/{raw_prefix}*"]),
        allow("ReadDatasets", ["s3:GetObject"], [processed]),
        # Without ListBucket S3 answers a read of a missing key (a new dataset's schema) with 403, not 404
        # (S3 API reference, GetObject, "Permissions").
        allow("TellMissingKeys", ["s3:ListBucket"], [bucket_arn]),
        allow("WriteResults", ["s3:PutObject"], [processed, f"{bucket_arn}/{REJECTED_PREFIX}*"]),
        allow("DiscardUnfinishedResults", ["s3:AbortMultipartUpload"], [processed]),
        allow("ConsumeUploadQueue", QUEUE_CONSUMER_ACTIONS, [queue_arn]),
        # Decrypt: queue messages, uploads and multipart parts; GenerateDataKey: results under SSE-KMS.
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
