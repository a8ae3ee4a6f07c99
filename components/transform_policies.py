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
    tuning_queue_arn: str,
) -> Document:
    """Read uploads, keep datasets and results, consume the upload queue, request tuning, use the data key,
    write its own logs."""
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
        # Decrypt: queue messages, uploads and multipart parts; GenerateDataKey: results under SSE-KMS and
        # messages to the encrypted tuning-request queue (SQS developer guide, "Key management").
        allow("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
        # The tune function starts the tuning jobs: the transform only asks.
        allow("RequestTuning", ["sqs:SendMessage"], [tuning_queue_arn]),
        allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
    )
