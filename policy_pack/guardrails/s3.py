"""S3 buckets. In pulumi-aws v7 a bucket's public access block, encryption, policy, versioning, ownership
and logging are separate resources naming the bucket, so each control is a stack check joining them."""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyResource

from .documents import statements
from .framework import Guardrail, Stack, Violation, as_list, each, is_set, stack_guardrail

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ACL = "aws:s3/bucketAcl:BucketAcl"
LOGGING = "aws:s3/bucketLogging:BucketLogging"

BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def _configs(stack: Stack, type_: str, bucket: PolicyResource) -> list[PolicyResource]:
    return stack.referring(stack.of_type(type_), "bucket", bucket, "bucket")


def _log_targets(stack: Stack) -> list[PolicyResource]:
    """Buckets that receive another bucket's server access logs."""
    logging = stack.of_type(LOGGING)
    return [b for b in stack.of_type(BUCKET) if stack.referring(logging, "targetBucket", b, "bucket")]


def public_access_blocked(stack: Stack) -> Iterator[Violation]:
    def check(bucket: PolicyResource) -> str | None:
        blocks = _configs(stack, PUBLIC_ACCESS_BLOCK, bucket)
        if any(all(block.props.get(flag) is True for flag in BLOCK_FLAGS) for block in blocks):
            return None
        return f"bucket {bucket.name} needs a public access block with all of {', '.join(BLOCK_FLAGS)}"

    return each(stack.of_type(BUCKET), check)


def _default_encryption(config: PolicyResource) -> list[tuple[str, bool]]:
    """(algorithm, key named) of each default-encryption rule."""
    return [
        (str(default.get("sseAlgorithm")), is_set(default, "kmsMasterKeyId"))
        for rule in as_list(config.props.get("rules"))
        for default in [rule.get("applyServerSideEncryptionByDefault") or {}]
    ]


def encrypted_with_kms(stack: Stack) -> Iterator[Violation]:
    log_targets = _log_targets(stack)

    def check(bucket: PolicyResource) -> str | None:
        rules = [rule for c in _configs(stack, ENCRYPTION, bucket) for rule in _default_encryption(c)]
        if bucket in log_targets:
            # S3 delivers server access logs only to a destination whose default encryption is SSE-S3
            # (S3 user guide, "Enabling Amazon S3 server access logging"), so SSE-S3 is this bucket's
            # encryption at rest (CKV_AWS_19).
            if rules and all(algorithm == "AES256" for algorithm, _ in rules):
                return None
            return f"access-log bucket {bucket.name} needs default encryption SSE-S3 (AES256)"
        if rules and all(algorithm in KMS_ALGORITHMS and keyed for algorithm, keyed in rules):
            return None
        return f"bucket {bucket.name} needs default encryption aws:kms with a kmsMasterKeyId"

    return each(stack.of_type(BUCKET), check)


def _denies_insecure_transport(document: object, bucket_arn: str) -> bool:
    for s in statements(document):
        principal = s.get("Principal")
        if (
            s.get("Effect") == "Deny"
            and (principal == "*" or (isinstance(principal, dict) and as_list(principal.get("AWS")) == ["*"]))
            and {"s3:*", "*"} & set(as_list(s.get("Action")))
            and {bucket_arn, f"{bucket_arn}/*"} <= set(as_list(s.get("Resource")))
            and str((s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
        ):
            return True
    return False


def tls_only(stack: Stack) -> Iterator[Violation]:
    def check(bucket: PolicyResource) -> str | None:
        policies = _configs(stack, POLICY, bucket)
        if any(_denies_insecure_transport(p.props.get("policy"), bucket.props["arn"]) for p in policies):
            return None
        return (
            f"bucket {bucket.name} needs a bucket policy that denies s3:* on the bucket and its objects "
            "to every principal when aws:SecureTransport is false"
        )

    return each(stack.of_type(BUCKET), check)


def versioned(stack: Stack) -> Iterator[Violation]:
    def check(bucket: PolicyResource) -> str | None:
        configs = _configs(stack, VERSIONING, bucket)
        if any((c.props.get("versioningConfiguration") or {}).get("status") == "Enabled" for c in configs):
            return None
        return f"bucket {bucket.name} needs versioning Enabled"

    return each(stack.of_type(BUCKET), check)


def acls_disabled(stack: Stack) -> Iterator[Violation]:
    def check(bucket: PolicyResource) -> str | None:
        if _configs(stack, ACL, bucket):
            return f"bucket {bucket.name} sets an ACL; access is granted by policies only"
        ownership = _configs(stack, OWNERSHIP, bucket)
        if any(
            (o.props.get("rule") or {}).get("objectOwnership") == "BucketOwnerEnforced" for o in ownership
        ):
            return None
        return f"bucket {bucket.name} needs ownership controls BucketOwnerEnforced (ACLs disabled)"

    return each(stack.of_type(BUCKET), check)


def access_logged(stack: Stack) -> Iterator[Violation]:
    log_targets = _log_targets(stack)

    def check(bucket: PolicyResource) -> str | None:
        # A bucket that receives access logs is not logged itself: logging it into itself would log
        # every log delivery (S3 user guide, "Enabling Amazon S3 server access logging").
        if bucket in log_targets:
            return None
        if any(is_set(c.props, "targetBucket") for c in _configs(stack, LOGGING, bucket)):
            return None
        return f"bucket {bucket.name} needs server access logging (a BucketLogging with a targetBucket)"

    return each(stack.of_type(BUCKET), check)


GUARDRAILS: tuple[Guardrail, ...] = (
    stack_guardrail(
        "s3-block-public-access",
        ("S3.8", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"),
        "Every bucket blocks public ACLs and policies.",
        public_access_blocked,
    ),
    stack_guardrail(
        "s3-kms-encryption",
        ("CKV_AWS_145", "CKV_AWS_19"),
        "Every bucket encrypts by default with a KMS key; an access-log bucket with SSE-S3.",
        encrypted_with_kms,
    ),
    stack_guardrail(
        "s3-tls-only",
        ("S3.5", "CKV_AWS_379"),
        "Every bucket's policy denies requests without TLS.",
        tls_only,
    ),
    stack_guardrail("s3-versioning", ("S3.14", "CKV_AWS_21"), "Every bucket is versioned.", versioned),
    stack_guardrail(
        "s3-acls-disabled",
        ("S3.12", "CKV2_AWS_65"),
        "Every bucket disables ACLs (BucketOwnerEnforced).",
        acls_disabled,
    ),
    stack_guardrail(
        "s3-access-logging",
        ("S3.9", "CKV_AWS_18"),
        "Every bucket but an access-log destination has server access logging.",
        access_logged,
    ),
)
