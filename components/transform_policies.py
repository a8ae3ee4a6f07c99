"""IAM policies of the transform function's role."""

from __future__ import annotations

from components.policy_documents import Document, allow, document

# The three actions Lambda's SQS poller calls with the function's role (Lambda developer guide,
# "Using Lambda with Amazon SQS", execution role permissions).
QUEUE_CONSUMER_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
OUTPUT_PREFIXES = ("processed/", "rejected/")


def transform_policy(
    *, bucket_arn: str, raw_prefix: str, queue_arn: str, key_arn: str, log_group_arn: str
) -> Document:
    """Read uploads, write results, consume the upload queue, use the data key, write its own logs."""
    return document(
        allow("ReadUploads", ["s3:GetObject", "s3:GetObjectVersion"], [f"{bucket_arn}/{raw_prefix}*"]),
        allow("WriteResults", ["s3:PutObject"], [f"{bucket_arn}/{prefix}*" for prefix in OUTPUT_PREFIXES]),
        allow("ConsumeUploadQueue", QUEUE_CONSUMER_ACTIONS, [queue_arn]),
        # Decrypt: queue messages and uploads; GenerateDataKey: results written under SSE-KMS.
        allow("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
        allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
    )
