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


def data_key_policy(
    *, partition: str, account_id: str, bucket_arn: str, topic_arn: str, alarm_arn_pattern: str
) -> Document:
    """Key policy: IAM policies of this account govern the key; S3 may use it only for this bucket's
    notifications to the encrypted topic, SNS only for this topic's deliveries to the encrypted queues,
    CloudWatch only for this stack's alarms publishing to the encrypted alarm topic."""
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
