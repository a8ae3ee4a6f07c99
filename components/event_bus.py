"""The event bus: where uploads land and how their notifications reach the transform function.

data bucket --(ObjectCreated under the upload prefix, with the upload suffix)--> SNS topic --> SQS queue,
with a dead-letter queue for messages the transform could not handle and for deliveries SNS could not make.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TypeAlias

import pulumi
import pulumi_aws as aws

from components import event_bus_policies as policies
from components.aws_context import AwsContext
from components.policy_documents import render
from settings import DataSettings, QueueSettings

# SQS's longest retention. The dead-letter queue keeps messages longer than the upload queue does, because a
# message moved there keeps its original enqueue time (SQS developer guide, "Dead-letter queues").
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
ACCESS_LOG_PREFIX = "data-bucket/"

S3Encryption: TypeAlias = (
    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
)


@dataclass(frozen=True)
class StackKey:
    """The stack's KMS key and the key policy that lets AWS services use it. A resource that has a service
    use the key on its own behalf (a log group CloudWatch Logs encrypts) depends on `policy`: the ARN alone
    would let it be created before the service is allowed."""

    arn: pulumi.Output[str]
    policy: pulumi.Resource


@dataclass(frozen=True)
class EventBusArgs:
    aws: AwsContext
    data: DataSettings
    queue: QueueSettings
    alarm_name_prefix: str


class EventBus(pulumi.ComponentResource):
    """Creates, with secure defaults that the args cannot weaken:

    - a customer-managed KMS key (rotation on) that encrypts the data bucket (bucket key on), the topic,
      both queues and the stack's log groups; its policy lets S3 use it only for this bucket, SNS only for
      this topic, CloudWatch only for alarms named with `alarm_name_prefix` (the monitoring's alarm topic
      shares the key) and CloudWatch Logs only for log groups of this account and region;
    - the data bucket: versioned, all public access blocked, ACLs disabled, TLS-only, access-logged, with
      lifecycle rules for noncurrent versions and incomplete multipart uploads;
    - the access-log bucket: the same lockdown, versioned (an overwritten or deleted log stays a noncurrent
      version for `noncurrentVersionDays`), SSE-S3 (the only default encryption S3 server access logging
      delivers to), logs expired after `accessLogDays`;
    - the upload topic (only this bucket may publish, TLS only) and its SQS subscription;
    - the upload queue (only this topic may send) redriving to the dead-letter queue after
      `queueMaxReceiveCount` receives; the DLQ keeps messages for 14 days;
    - the ObjectCreated notification, written only once the topic and key policies allow it.

    With `protectData`, the buckets and the key are protected and retained when removed from the program.
    """

    def __init__(self, name: str, args: EventBusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-ml-pipeline:pipeline:EventBus", name, None, opts)
        ctx, data = args.aws, args.data
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=data.protect, retain_on_delete=data.protect)

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the {name} data, topic and queues",
            enable_key_rotation=True,
            deletion_window_in_days=data.key_deletion_window_days,
            opts=kept,
        )
        aws.kms.Alias(
            f"{name}-key-alias", name_prefix=f"alias/{name}-", target_key_id=self.key.key_id, opts=child
        )

        self.bucket = self._data_bucket(name, data, kept)
        self.log_bucket, log_bucket_policy = self._log_bucket(name, data, kept, ctx)
        aws.s3.BucketLogging(
            f"{name}-bucket-logging",
            bucket=self.bucket.id,
            target_bucket=self.log_bucket.id,
            target_prefix=ACCESS_LOG_PREFIX,
            # S3 delivers logs only once the log bucket's policy lets its logging service write; enabling
            # logging before that policy exists is refused (InvalidTargetBucketForLogging) or loses logs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_bucket_policy]),
        )

        self.topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=self.key.arn, opts=child)
        topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=render(
                policies.topic_policy,
                topic_arn=self.topic.arn,
                account_id=ctx.account_id,
                bucket_arn=self.bucket.arn,
            ),
            opts=child,
        )
        key_policy = aws.kms.KeyPolicy(
            f"{name}-key-policy",
            key_id=self.key.key_id,
            policy=render(
                policies.data_key_policy,
                partition=ctx.partition,
                account_id=ctx.account_id,
                bucket_arn=self.bucket.arn,
                topic_arn=self.topic.arn,
                alarm_arn_pattern=ctx.alarms_named(args.alarm_name_prefix),
                # Every log group of the account and region, not the stack's own: they are named by
                # Pulumi when created, and created only after this policy, which they need.
                log_groups_arn_pattern=ctx.arn("logs", "log-group:*"),
                region=ctx.region,
            ),
            opts=child,
        )
        self.stack_key = StackKey(arn=self.key.arn, policy=key_policy)

        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            kms_master_key_id=self.key.arn,
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            kms_master_key_id=self.key.arn,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            visibility_timeout_seconds=args.queue.visibility_timeout_seconds,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda dlq_arn: json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": args.queue.max_receive_count}
                )
            ),
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=self.dead_letter_queue.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child,
        )
        queue_policies = [
            aws.sqs.QueuePolicy(
                f"{queue_name}-policy",
                queue_url=queue.url,
                policy=render(
                    policies.queue_policy,
                    queue_arn=queue.arn,
                    account_id=ctx.account_id,
                    topic_arn=self.topic.arn,
                ),
                opts=child,
            )
            for queue_name, queue in ((f"{name}-queue", self.queue), (f"{name}-dlq", self.dead_letter_queue))
        ]
        aws.sns.TopicSubscription(
            f"{name}-topic-to-queue",
            topic=self.topic.arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            raw_message_delivery=args.queue.raw_message_delivery,
            # Deliveries SNS cannot make after its retries go to the DLQ instead of being dropped.
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn})
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*queue_policies, key_policy]),
        )

        # S3 validates the destination when the notification is written, and sends it an s3:TestEvent: the
        # topic policy must let the bucket publish and the key policy must let S3 encrypt by then.
        aws.s3.BucketNotification(
            f"{name}-upload-notification",
            bucket=self.bucket.id,
            topics=[
                aws.s3.BucketNotificationTopicArgs(
                    topic_arn=self.topic.arn,
                    events=["s3:ObjectCreated:*"],
                    filter_prefix=data.raw_prefix,
                    filter_suffix=data.raw_suffix,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[topic_policy, key_policy]),
        )

        self.register_outputs(
            {
                "bucket": self.bucket.bucket,
                "key_arn": self.key.arn,
                "topic_arn": self.topic.arn,
                "queue_url": self.queue.url,
                "dead_letter_queue_url": self.dead_letter_queue.url,
            }
        )

    def _locked_down(self, name: str, bucket: aws.s3.Bucket) -> aws.s3.BucketPublicAccessBlock:
        """Blocks all public access and disables ACLs (the bucket owner owns every object)."""
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _log_bucket(
        self, name: str, data: DataSettings, kept: pulumi.ResourceOptions, ctx: AwsContext
    ) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        log_name = f"{name}-access-logs"
        bucket = aws.s3.Bucket(log_name, force_destroy=not data.protect, opts=kept)
        public_access_block = self._locked_down(log_name, bucket)
        # Versioned, so a log overwritten or deleted (by mistake or to cover tracks) stays recoverable
        # until its noncurrent version expires.
        versioning = self._versioned(log_name, bucket)
        policy = aws.s3.BucketPolicy(
            f"{log_name}-policy",
            bucket=bucket.id,
            policy=render(
                policies.log_bucket_policy,
                log_bucket_arn=bucket.arn,
                log_prefix=ACCESS_LOG_PREFIX,
                account_id=ctx.account_id,
                source_bucket_arn=self.bucket.arn,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )
        self._encrypt(log_name, bucket, S3Encryption(sse_algorithm="AES256"))
        self._lifecycle(
            log_name,
            bucket,
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-access-logs",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                # In a versioned bucket expiring a log adds a delete marker; its version then expires as
                # noncurrent, and S3 removes the delete marker left alone once the rule expires current
                # versions (S3 user guide, "Managing delete markers").
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=data.access_log_days),
                noncurrent_version_expiration=_noncurrent_expiry(data),
                abort_incomplete_multipart_upload=_abort_incomplete_uploads(data),
            ),
            depends_on=[versioning],
        )
        return bucket, policy

    def _data_bucket(self, name: str, data: DataSettings, kept: pulumi.ResourceOptions) -> aws.s3.Bucket:
        bucket_name = f"{name}-data"
        bucket = aws.s3.Bucket(bucket_name, force_destroy=not data.protect, opts=kept)
        public_access_block = self._locked_down(bucket_name, bucket)
        versioning = self._versioned(bucket_name, bucket)
        self._encrypt(
            bucket_name,
            bucket,
            S3Encryption(sse_algorithm="aws:kms", kms_master_key_id=self.key.arn),
            bucket_key_enabled=True,
        )
        aws.s3.BucketPolicy(
            f"{bucket_name}-policy",
            bucket=bucket.id,
            policy=render(policies.data_bucket_policy, bucket_arn=bucket.arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )
        self._lifecycle(
            bucket_name,
            bucket,
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=_noncurrent_expiry(data),
                abort_incomplete_multipart_upload=_abort_incomplete_uploads(data),
            ),
            # Lifecycle rules on noncurrent versions need versioning in place first (provider docs).
            depends_on=[versioning],
        )
        return bucket

    def _versioned(self, name: str, bucket: aws.s3.Bucket) -> aws.s3.BucketVersioning:
        return aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _encrypt(
        self, name: str, bucket: aws.s3.Bucket, default: S3Encryption, *, bucket_key_enabled: bool = False
    ) -> None:
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=default, bucket_key_enabled=bucket_key_enabled
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _lifecycle(
        self,
        name: str,
        bucket: aws.s3.Bucket,
        rule: aws.s3.BucketLifecycleConfigurationRuleArgs,
        depends_on: list[pulumi.Resource] | None = None,
    ) -> None:
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[rule],
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )


def _noncurrent_expiry(
    data: DataSettings,
) -> aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs:
    return aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
        noncurrent_days=data.noncurrent_version_days
    )


def _abort_incomplete_uploads(
    data: DataSettings,
) -> aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs:
    return aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
        days_after_initiation=data.incomplete_upload_days
    )
