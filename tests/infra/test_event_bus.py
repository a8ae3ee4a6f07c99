"""The event bus of every stack: encryption, lockdown, resource policies, wiring and retention."""

from __future__ import annotations

import pytest

from settings import load_settings
from tests.support.policies import allows, denies_insecure_transport, statement
from tests.support.stacks import STACKS, config_for, synth
from tools.mockrun import MOCK_ACCOUNT_ID, StackRun

S3 = "aws:s3/"
BUCKETS = ("ingest-data", "ingest-access-logs")
ENCRYPTION = f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


def key_arn(run: StackRun) -> str:
    return run.named("ingest-key").outputs["arn"]


def bucket_arn(run: StackRun, name: str = "ingest-data") -> str:
    return run.named(name).outputs["arn"]


def bucket_id(run: StackRun, name: str) -> str:
    return run.named(name).outputs["bucket"]


def for_bucket(run: StackRun, type_: str, bucket: str) -> dict:
    return run.one(type_, bucket=bucket_id(run, bucket)).inputs


def test_data_bucket_encrypts_with_the_stack_key_and_bucket_key(run: StackRun) -> None:
    (rule,) = for_bucket(run, ENCRYPTION, "ingest-data")["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key_arn(run),
    }
    assert rule["bucketKeyEnabled"] is True


def test_access_log_bucket_is_encrypted_with_sse_s3_the_only_kind_logging_delivers_to(run: StackRun) -> None:
    (rule,) = for_bucket(run, ENCRYPTION, "ingest-access-logs")["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_topic_and_both_queues_are_encrypted_with_the_stack_key(run: StackRun) -> None:
    for name in ("ingest-topic", "ingest-queue", "ingest-dlq"):
        assert run.named(name).inputs["kmsMasterKeyId"] == key_arn(run), name


def test_key_rotates(run: StackRun) -> None:
    assert run.named("ingest-key").inputs["enableKeyRotation"] is True


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_blocks_all_public_access(run: StackRun, bucket: str) -> None:
    block = for_bucket(run, f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, flag


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_disables_acls(run: StackRun, bucket: str) -> None:
    controls = for_bucket(run, f"{S3}bucketOwnershipControls:BucketOwnershipControls", bucket)
    assert controls["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_policy_denies_requests_without_tls(run: StackRun, bucket: str) -> None:
    policy = run.one(f"{S3}bucketPolicy:BucketPolicy", bucket=bucket_id(run, bucket)).json_input("policy")
    arn = bucket_arn(run, bucket)
    assert denies_insecure_transport(policy, {arn, f"{arn}/*"}, {"s3:*"})


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_is_versioned(run: StackRun, bucket: str) -> None:
    versioning = for_bucket(run, f"{S3}bucketVersioning:BucketVersioning", bucket)
    assert versioning["versioningConfiguration"]["status"] == "Enabled"


@pytest.mark.parametrize("bucket", BUCKETS)
def test_lifecycle_rules_wait_for_versioning(run: StackRun, bucket: str) -> None:
    lifecycle = run.one(
        f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket=bucket_id(run, bucket)
    )
    versioning = run.one(f"{S3}bucketVersioning:BucketVersioning", bucket=bucket_id(run, bucket))
    assert versioning.urn in lifecycle.dependencies


def test_data_bucket_logs_access_to_the_log_bucket(run: StackRun) -> None:
    logging = for_bucket(run, f"{S3}bucketLogging:BucketLogging", "ingest-data")
    assert logging["targetBucket"] == bucket_id(run, "ingest-access-logs")
    policy = run.one(
        f"{S3}bucketPolicy:BucketPolicy", bucket=bucket_id(run, "ingest-access-logs")
    ).json_input("policy")
    writer = statement(policy, "AllowServerAccessLogsFromDataBucket")
    assert writer["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert writer["Action"] == ["s3:PutObject"]
    assert writer["Resource"] == [f"{bucket_arn(run, 'ingest-access-logs')}/{logging['targetPrefix']}*"]
    assert writer["Condition"] == {
        "StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": bucket_arn(run)},
    }


def test_lifecycle_expires_noncurrent_versions_and_aborts_incomplete_uploads(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    (rule,) = for_bucket(
        run, f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration", "ingest-data"
    )["rules"]
    assert rule["status"] == "Enabled"
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == settings.data.noncurrent_version_days
    assert (
        rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == settings.data.incomplete_upload_days
    )
    assert "expiration" not in rule, "current versions (raw uploads) must never expire"


def test_access_logs_expire_after_the_configured_days(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    (rule,) = for_bucket(
        run, f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration", "ingest-access-logs"
    )["rules"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == {"prefix": ""}
    assert rule["expiration"]["days"] == settings.data.access_log_days


def test_overwritten_or_deleted_access_logs_expire_as_noncurrent_versions(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    (rule,) = for_bucket(
        run, f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration", "ingest-access-logs"
    )["rules"]
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == settings.data.noncurrent_version_days
    assert (
        rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == settings.data.incomplete_upload_days
    )


def test_access_log_noncurrent_expiry_follows_config() -> None:
    run = synth("dev", noncurrentVersionDays="17")
    (rule,) = for_bucket(
        run, f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration", "ingest-access-logs"
    )["rules"]
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 17


def test_notification_sends_created_csvs_under_the_prefix_to_the_topic(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    notification = run.named("ingest-upload-notification")
    (topic,) = notification.inputs["topics"]
    assert topic["topicArn"] == run.named("ingest-topic").outputs["arn"]
    assert topic["events"] == ["s3:ObjectCreated:*"]
    assert topic["filterPrefix"] == settings.data.raw_prefix
    assert topic["filterSuffix"] == settings.data.raw_suffix


def test_notification_is_written_only_after_the_topic_and_key_policies(run: StackRun) -> None:
    dependencies = set(run.named("ingest-upload-notification").dependencies)
    assert run.named("ingest-topic-policy").urn in dependencies
    assert run.named("ingest-key-policy").urn in dependencies


def test_notification_filters_come_from_config() -> None:
    run = synth("dev", rawPrefix="landing/zone/", rawSuffix=".tsv")
    (topic,) = run.named("ingest-upload-notification").inputs["topics"]
    assert (topic["filterPrefix"], topic["filterSuffix"]) == ("landing/zone/", ".tsv")


def test_topic_accepts_publishing_only_from_this_bucket_of_this_account_over_tls(run: StackRun) -> None:
    topic_arn = run.named("ingest-topic").outputs["arn"]
    policy = run.named("ingest-topic-policy").json_input("policy")
    (publisher,) = allows(policy)
    assert publisher["Principal"] == {"Service": "s3.amazonaws.com"}
    assert publisher["Action"] == ["sns:Publish"]
    assert publisher["Resource"] == [topic_arn]
    assert publisher["Condition"] == {
        "StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": bucket_arn(run)},
    }
    assert denies_insecure_transport(policy, {topic_arn}, {"sns:Publish"})


@pytest.mark.parametrize("queue", ["ingest-queue", "ingest-dlq"])
def test_queue_accepts_messages_only_from_the_topic_over_tls(run: StackRun, queue: str) -> None:
    queue_resource = run.named(queue)
    policy = run.one("aws:sqs/queuePolicy:QueuePolicy", queueUrl=queue_resource.outputs["url"]).json_input(
        "policy"
    )
    (sender,) = allows(policy)
    assert sender["Principal"] == {"Service": "sns.amazonaws.com"}
    assert sender["Action"] == ["sqs:SendMessage"]
    assert sender["Resource"] == [queue_resource.outputs["arn"]]
    assert sender["Condition"] == {
        "StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": run.named("ingest-topic").outputs["arn"]},
    }
    assert denies_insecure_transport(policy, {queue_resource.outputs["arn"]}, {"sqs:*"})


def test_key_policy_lets_each_service_use_the_key_only_for_its_source_in_this_stack(run: StackRun) -> None:
    policy = run.named("ingest-key-policy").json_input("policy")
    admin = statement(policy, "EnableIamPolicies")
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:root"}
    services = {s["Principal"]["Service"]: s for s in allows(policy) if "Service" in s["Principal"]}
    region = load_settings(run.config, stack=run.stack).region
    assert set(services) == {
        "s3.amazonaws.com",
        "sns.amazonaws.com",
        "cloudwatch.amazonaws.com",
        f"logs.{region}.amazonaws.com",  # its own test below: it takes an encryption context, not a source
    }
    sources = {
        "s3.amazonaws.com": bucket_arn(run),
        "sns.amazonaws.com": run.named("ingest-topic").outputs["arn"],
        "cloudwatch.amazonaws.com": f"arn:aws:cloudwatch:eu-west-1:{MOCK_ACCOUNT_ID}:alarm:"
        f"serverless-ml-pipeline-{run.stack}-*",
    }
    for principal, source_arn in sources.items():
        grant = services[principal]
        assert set(grant["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
        assert grant["Condition"] == {
            "StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": source_arn},
        }


def test_key_policy_lets_cloudwatch_logs_use_the_key_only_for_log_groups_of_this_account_and_region(
    run: StackRun,
) -> None:
    region = load_settings(run.config, stack=run.stack).region
    policy = run.named("ingest-key-policy").json_input("policy")
    (grant,) = [s for s in allows(policy) if s["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}]
    assert sorted(grant["Action"]) == sorted(
        ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    )
    assert grant["Resource"] == ["*"]
    assert grant["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{MOCK_ACCOUNT_ID}:log-group:*"
        }
    }


def test_key_policy_applies_to_the_stack_key(run: StackRun) -> None:
    assert run.named("ingest-key-policy").inputs["keyId"] == run.named("ingest-key").outputs["keyId"]


def test_topic_delivers_to_the_queue_and_redrives_failed_deliveries_to_the_dlq(run: StackRun) -> None:
    subscription = run.named("ingest-topic-to-queue").inputs
    assert subscription["protocol"] == "sqs"
    assert subscription["topic"] == run.named("ingest-topic").outputs["arn"]
    assert subscription["endpoint"] == run.named("ingest-queue").outputs["arn"]
    assert (
        subscription["redrivePolicy"]
        and run.named("ingest-dlq").outputs["arn"] in subscription["redrivePolicy"]
    )


def test_queue_redrives_to_the_dlq_after_the_configured_receives(run: StackRun) -> None:
    settings = load_settings(run.config, stack=run.stack)
    redrive = run.named("ingest-queue").json_input("redrivePolicy")
    assert redrive == {
        "deadLetterTargetArn": run.named("ingest-dlq").outputs["arn"],
        "maxReceiveCount": settings.queue.max_receive_count,
    }


def test_dead_letter_queue_keeps_messages_14_days_longer_than_the_queue(run: StackRun) -> None:
    dlq = run.named("ingest-dlq").inputs["messageRetentionSeconds"]
    assert dlq == 14 * 24 * 3600
    assert run.named("ingest-queue").inputs["messageRetentionSeconds"] < dlq


def test_queue_visibility_is_six_times_the_function_timeout_plus_the_batching_window(run: StackRun) -> None:
    function = run.named("transform-function").inputs
    window = run.named("transform-trigger").inputs["maximumBatchingWindowInSeconds"]
    assert run.named("ingest-queue").inputs["visibilityTimeoutSeconds"] >= 6 * function["timeout"] + window


def test_visibility_follows_a_changed_function_timeout() -> None:
    run = synth("dev", transformTimeoutSeconds="120", transformBatchingWindowSeconds="5")
    assert run.named("ingest-queue").inputs["visibilityTimeoutSeconds"] == 6 * 120 + 5


def test_prod_protects_and_retains_buckets_and_key() -> None:
    run = synth("prod")
    for name in ("ingest-data", "ingest-access-logs", "ingest-key"):
        assert run.named(name).protect and run.named(name).retain_on_delete, name
    assert run.named("ingest-data").inputs.get("forceDestroy") is not True


def test_dev_can_be_destroyed_with_its_data() -> None:
    run = synth("dev")
    for name in ("ingest-data", "ingest-access-logs"):
        assert run.named(name).inputs["forceDestroy"] is True
        assert not run.named(name).protect
    assert run.named("ingest-key").inputs["deletionWindowInDays"] == 7


def test_stack_exports_what_users_need(run: StackRun) -> None:
    assert run.outputs["bucket"] == bucket_id(run, "ingest-data")
    assert (
        run.outputs["upload_prefix"] == load_settings(config_for(run.stack), stack=run.stack).data.raw_prefix
    )
    assert run.outputs["queue_url"] == run.named("ingest-queue").outputs["url"]
    assert run.outputs["dead_letter_queue_url"] == run.named("ingest-dlq").outputs["url"]
