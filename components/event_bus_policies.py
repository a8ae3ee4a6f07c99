"""Resource policies of the event bus: the key, both buckets, the topic and the queues."""

from __future__ import annotations

from components.policy_documents import (
    Document,
    Statement,
    allow,
    deny_insecure_transport,
    document,
    from_source,
    service,
    topic_publishable_only_by,
)

# Actions a service needs to write to and read from a resource encrypted with the key. SNS developer guide,
# "Key management" (AWS service event sources -> encrypted topic, topic -> encrypted queue).
SERVICE_KEY_ACTIONS = ["kms:GenerateDataKey*", "kms:Decrypt"]
# What CloudWatch Logs needs of a key that encrypts log groups, and the encryption context it sends with every
# call: the log group's ARN under `aws:logs:arn`. CloudWatch Logs user guide, "Encrypt log data in
# CloudWatch Logs using AWS Key Management Service", step 2 (Set permissions on the KMS key),
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
LOGS_KEY_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
LOGS_ENCRYPTION_CONTEXT = "kms:EncryptionContext:aws:logs:arn"


def data_key_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    bucket_arn: str,
    topic_arn: str,
    alarm_arn_pattern: str,
    log_groups_arn_pattern: str,
) -> Document:
    """Key policy: IAM policies of this account govern the key; S3 may use it only for this bucket's
    notifications to the encrypted topic, SNS only for this topic's deliveries to the encrypted queues,
    CloudWatch only for this stack's alarms publishing to the encrypted alarm topic, CloudWatch Logs of
    this region only for log groups matching `log_groups_arn_pattern`."""
    return document(
        {
            "Sid": "EnableIamPolicies",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",  # in a key policy "*" means this key
        },
        _service_may_use_key("AllowBucketNotificationsToEncryptedTopic", "s3", account_id, bucket_arn),
        _service_may_use_key("AllowTopicDeliveriesToEncryptedQueues", "sns", account_id, topic_arn),
        _service_may_use_key(
            "AllowStackAlarmsToEncryptedAlarmTopic", "cloudwatch", account_id, alarm_arn_pattern
        ),
        logs_may_use_key(region=region, log_groups_arn_pattern=log_groups_arn_pattern),
    )


def logs_may_use_key(*, region: str, log_groups_arn_pattern: str) -> Statement:
    """CloudWatch Logs, through its regional principal, may encrypt and decrypt the events of the log groups
    whose ARN matches the pattern (the ARN is the encryption context of each of its calls)."""
    return allow(
        "AllowLogGroupsOfThisAccountAndRegion",
        LOGS_KEY_ACTIONS,
        ["*"],  # in a key policy "*" means this key
        Principal=service(f"logs.{region}.amazonaws.com"),
        Condition={"ArnLike": {LOGS_ENCRYPTION_CONTEXT: log_groups_arn_pattern}},
    )


def _service_may_use_key(sid: str, service_name: str, account_id: str, source_arn: str) -> Statement:
    return allow(
        sid,
        SERVICE_KEY_ACTIONS,
        ["*"],  # in a key policy "*" means this key
        Principal=service(f"{service_name}.amazonaws.com"),
        Condition=from_source(account_id, source_arn),
    )


def data_bucket_policy(*, bucket_arn: str) -> Document:
    return document(deny_insecure_transport(["s3:*"], [bucket_arn, f"{bucket_arn}/*"]))


def log_bucket_policy(
    *, log_bucket_arn: str, log_prefix: str, account_id: str, source_bucket_arn: str
) -> Document:
    """S3 user guide, "Enabling Amazon S3 server access logging": the logging service principal writes
    under the prefix, only for the source bucket of this account."""
    return document(
        allow(
            "AllowServerAccessLogsFromDataBucket",
            ["s3:PutObject"],
            [f"{log_bucket_arn}/{log_prefix}*"],
            Principal=service("logging.s3.amazonaws.com"),
            Condition=from_source(account_id, source_bucket_arn),
        ),
        deny_insecure_transport(["s3:*"], [log_bucket_arn, f"{log_bucket_arn}/*"]),
    )


def topic_policy(*, topic_arn: str, account_id: str, bucket_arn: str) -> Document:
    return topic_publishable_only_by(
        "AllowDataBucketToPublish",
        "s3.amazonaws.com",
        topic_arn=topic_arn,
        account_id=account_id,
        source_arn=bucket_arn,
    )


def queue_policy(*, queue_arn: str, account_id: str, topic_arn: str) -> Document:
    """Only the upload topic may send; the dead-letter queue takes the same policy, as the subscription's
    own redrive target for deliveries SNS could not make."""
    return document(
        allow(
            "AllowUploadTopicToSend",
            ["sqs:SendMessage"],
            [queue_arn],
            Principal=service("sns.amazonaws.com"),
            Condition=from_source(account_id, topic_arn),
        ),
        deny_insecure_transport(["sqs:*"], [queue_arn]),
    )
