"""The IAM-exactness harness pieces: the policy evaluator, request recording, model validation and the
request-to-permission table. Each test pins a behaviour whose loss would let a wrong policy pass."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import OperationNotFoundError
from moto import mock_aws

from rehearsal.iam_policy import Grant, Policy, PolicyError, unused_grants
from tests.support.aws_requests import (
    Permission,
    Request,
    UnmappedRequest,
    kms_permissions_for_s3,
    recording_requests,
    required_permissions,
    validate_against_model,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
BUCKET = "pipeline-data"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pipeline-sagemaker"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/pipeline-jobs"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:pipeline-alarms"
MIB = 1024 * 1024


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.parse({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def obj(key: str, bucket: str = BUCKET) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


# ----------------------------------------------------------------------------------------- the evaluator


def test_parses_json_text_and_a_single_statement_object() -> None:
    text = json.dumps(
        {"Version": "2012-10-17", "Statement": allow("s3:GetObject", obj("raw/*"))},
    )
    assert Policy.parse(text).allows("s3:GetObject", obj("raw/a.csv"))


def test_only_the_granted_action_on_the_granted_resource_is_allowed() -> None:
    p = policy(allow(["s3:GetObject", "s3:ListBucket"], [obj("raw/a.csv"), f"arn:aws:s3:::{BUCKET}"]))
    assert p.allows("s3:GetObject", obj("raw/a.csv"))
    assert not p.allows("s3:GetObject", obj("raw/b.csv"))
    assert not p.allows("s3:PutObject", obj("raw/a.csv"))


def test_actions_match_case_insensitively_and_resources_case_sensitively() -> None:
    p = policy(allow("s3:GetObject", obj("raw/*")))
    assert p.allows("S3:getobject", obj("raw/a.csv"))
    assert not p.allows("s3:GetObject", obj("RAW/a.csv"))


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:Get*", "s3:GetObjectVersion", True),
        ("s3:Get*", "s3:PutObject", False),
        ("*", "sagemaker:InvokeEndpoint", True),
        ("sqs:?eceiveMessage", "sqs:ReceiveMessage", True),
        ("sqs:?eceiveMessage", "sqs:ReceiveMessages", False),
        ("s3:*Object", "s3:GetObjectTagging", False),
    ],
)
def test_action_wildcards(pattern: str, action: str, expected: bool) -> None:
    assert policy(allow(pattern, "*")).allows(action, obj("k")) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        (obj("raw/*"), obj("raw/2024/01/a.csv"), True),
        (obj("raw/*"), obj("processed/a.csv"), False),
        (obj("raw/?.csv"), obj("raw/a.csv"), True),
        (obj("raw/?.csv"), obj("raw/ab.csv"), False),
        (
            f"arn:aws:sagemaker:*:{ACCOUNT}:endpoint/*",
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/e",
            True,
        ),
        (f"arn:aws:sagemaker:*:{ACCOUNT}:endpoint/*", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/e", False),
        # A trailing `*` runs across the colons between ARN segments (IAM User Guide, Resource element).
        (f"arn:aws:sqs:{REGION}:*", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", True),
        # `.` and `+` are literal characters, not regular-expression syntax.
        (obj("raw/a.csv"), obj("raw/aXcsv"), False),
    ],
)
def test_resource_wildcards(pattern: str, resource: str, expected: bool) -> None:
    assert policy(allow("s3:GetObject", pattern)).allows("s3:GetObject", resource) is expected


def test_an_explicit_deny_wins_over_any_allow() -> None:
    p = policy(
        allow("s3:*", "*"),
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": obj("*")},
    )
    assert p.allows("s3:GetObject", obj("a"))
    assert not p.allows("s3:DeleteObject", obj("a"))


def test_not_action_and_not_resource_invert_the_match() -> None:
    p = policy(
        allow("s3:*", "*"),
        {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "NotResource": obj("raw/*")},
    )
    assert p.allows("s3:GetObject", obj("raw/a"))
    assert not p.allows("s3:PutObject", obj("raw/a"))
    assert not p.allows("s3:GetObject", obj("processed/a"))


def test_no_statement_applying_means_implicit_deny() -> None:
    assert not policy(allow("sqs:SendMessage", "*")).allows("sns:Publish", TOPIC_ARN)


def conditioned(condition: dict[str, Any]) -> Policy:
    return policy(allow("iam:PassRole", ROLE, Condition=condition))


def test_string_equals_needs_the_key_present_and_equal() -> None:
    p = conditioned({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
    assert p.allows("iam:PassRole", ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"})
    assert not p.allows("iam:PassRole", ROLE, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert not p.allows("iam:PassRole", ROLE)


def test_condition_keys_are_case_insensitive_values_are_not() -> None:
    p = conditioned({"StringEquals": {"iam:passedtoservice": "sagemaker.amazonaws.com"}})
    assert p.allows("iam:PassRole", ROLE, {"IAM:PassedToService": "sagemaker.amazonaws.com"})
    assert not p.allows("iam:PassRole", ROLE, {"iam:PassedToService": "SageMaker.amazonaws.com"})


def test_values_of_one_key_are_ored_and_keys_and_operators_are_anded() -> None:
    p = policy(
        allow(
            "s3:ListBucket",
            f"arn:aws:s3:::{BUCKET}",
            Condition={
                "StringLike": {"s3:prefix": ["raw/*", "processed/*"]},
                "StringEquals": {"s3:delimiter": "/"},
            },
        )
    )
    bucket = f"arn:aws:s3:::{BUCKET}"
    assert p.allows("s3:ListBucket", bucket, {"s3:prefix": "processed/x", "s3:delimiter": "/"})
    assert not p.allows("s3:ListBucket", bucket, {"s3:prefix": "processed/x"})
    assert not p.allows("s3:ListBucket", bucket, {"s3:prefix": "models/", "s3:delimiter": "/"})


def test_a_negated_operator_holds_when_the_key_is_absent() -> None:
    # IAM: "If the policy condition requires that the key is not matched ... and the right key is not
    # present, the condition is true" -- so this Deny fires on a request without the header.
    p = policy(
        allow("s3:PutObject", obj("*")),
        {
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": obj("*"),
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
    )
    assert p.allows("s3:PutObject", obj("a"), {"s3:x-amz-server-side-encryption": "aws:kms"})
    assert not p.allows("s3:PutObject", obj("a"), {"s3:x-amz-server-side-encryption": "AES256"})
    assert not p.allows("s3:PutObject", obj("a"))


def test_if_exists_holds_when_the_key_is_absent_and_checks_it_when_present() -> None:
    p = conditioned({"StringEqualsIfExists": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
    assert p.allows("iam:PassRole", ROLE)
    assert p.allows("iam:PassRole", ROLE, {"iam:PassedToService": "sagemaker.amazonaws.com"})
    assert not p.allows("iam:PassRole", ROLE, {"iam:PassedToService": "ec2.amazonaws.com"})


def test_arn_like_compares_each_arn_component() -> None:
    p = conditioned({"ArnLike": {"iam:AssociatedResourceArn": f"arn:aws:sagemaker:*:{ACCOUNT}:model/*"}})
    model = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/churn"
    assert p.allows("iam:PassRole", ROLE, {"iam:AssociatedResourceArn": model})
    assert not p.allows("iam:PassRole", ROLE, {"iam:AssociatedResourceArn": model.replace(ACCOUNT, "999")})
    # In ArnLike a `*` stays inside its component: it cannot swallow the account segment.
    wide = conditioned({"ArnEquals": {"iam:AssociatedResourceArn": "arn:aws:sagemaker:*:model/*"}})
    assert not wide.allows("iam:PassRole", ROLE, {"iam:AssociatedResourceArn": model})
    assert not p.allows("iam:PassRole", ROLE, {"iam:AssociatedResourceArn": "not-an-arn"})


def test_bool_compares_without_case_and_accepts_json_booleans() -> None:
    p = conditioned({"Bool": {"aws:SecureTransport": True}})
    assert p.allows("iam:PassRole", ROLE, {"aws:SecureTransport": "TRUE"})
    assert not p.allows("iam:PassRole", ROLE, {"aws:SecureTransport": "false"})


def test_null_checks_presence() -> None:
    absent = conditioned({"Null": {"aws:RequestTag/stage": "true"}})
    assert absent.allows("iam:PassRole", ROLE)
    assert not absent.allows("iam:PassRole", ROLE, {"aws:RequestTag/stage": "dev"})


@pytest.mark.parametrize(
    "operator",
    ["NumericLessThan", "DateGreaterThan", "ForAnyValue:StringLike", "StringEqualz", "NullIfExists"],
)
def test_an_operator_the_evaluator_cannot_judge_is_refused(operator: str) -> None:
    with pytest.raises(PolicyError, match="not supported"):
        conditioned({operator: {"aws:RequestTag/stage": "dev"}})


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"Version": "2008-10-17", "Statement": allow("s3:GetObject", "*")}, "Version"),
        ({"Version": "2012-10-17", "Statement": []}, "empty"),
        ({"Version": "2012-10-17", "Statement": allow("s3:GetObject", "*", Principal="*")}, "Principal"),
        ({"Version": "2012-10-17", "Statement": allow("s3GetObject", "*")}, "service prefix"),
        ({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:GetObject"}}, "Resource"),
        (
            {"Version": "2012-10-17", "Statement": allow("s3:GetObject", obj("${aws:username}/*"))},
            "variables",
        ),
        ({"Version": "2012-10-17", "Statement": {**allow("s3:GetObject", "*"), "Effect": "allow"}}, "Effect"),
    ],
)
def test_a_document_the_evaluator_cannot_judge_faithfully_is_refused(
    document: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PolicyError, match=complaint):
        Policy.parse(document)


def test_grants_lists_every_allowed_action_resource_pair_by_statement() -> None:
    p = policy(
        allow(["s3:GetObject", "s3:GetObjectVersion"], obj("raw/*"), Sid="ReadRaw"),
        allow("sqs:SendMessage", "*"),
        {"Effect": "Deny", "Action": "s3:*", "Resource": obj("secret/*")},
    )
    assert p.grants() == [
        ("ReadRaw", "s3:GetObject", obj("raw/*")),
        ("ReadRaw", "s3:GetObjectVersion", obj("raw/*")),
        ("#1", "sqs:SendMessage", "*"),
    ]


def test_grants_refuses_an_allow_it_cannot_enumerate() -> None:
    with pytest.raises(PolicyError, match="NotAction"):
        policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}).grants()


def test_unused_grants_are_those_no_used_pair_falls_under() -> None:
    p = policy(
        allow("s3:GetObject", obj("raw/*"), Sid="Read"),
        allow("s3:Put*", obj("processed/*"), Sid="Write"),
        allow("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs", Sid="Queue"),
    )
    used = [("s3:GetObject", obj("raw/a.csv")), ("s3:PutObject", obj("processed/a.parquet"))]
    assert unused_grants(p, used) == [
        Grant("Queue", "sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs")
    ]
    # A use must match the grant's action and its resource; either alone is not enough.
    assert [g.sid for g in unused_grants(p, [("s3:GetObject", obj("processed/a"))])] == [
        "Read",
        "Write",
        "Queue",
    ]


# ------------------------------------------------------------------------------------------ recording


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield


def operations(log: list[Request]) -> list[str]:
    return [r.operation for r in log]


@pytest.mark.usefixtures("aws")
def test_records_each_call_with_service_operation_params_and_region() -> None:
    s3 = boto3.client("s3")
    with recording_requests() as log:
        s3.put_object(Bucket=BUCKET, Key="raw/a.csv", Body=b"a,b\n")
        s3.list_objects_v2(Bucket=BUCKET, Prefix="raw/")
    assert operations(log) == ["PutObject", "ListObjectsV2"]
    put = log[0]
    assert (put.service, put.region, put.params["Bucket"], put.params["Key"]) == (
        "s3",
        REGION,
        BUCKET,
        "raw/a.csv",
    )
    assert log[1].params["Prefix"] == "raw/"


@pytest.mark.usefixtures("aws")
def test_records_clients_created_before_recording_and_in_other_sessions() -> None:
    # Function modules build their clients at import time, long before a test starts recording.
    early = boto3.client("s3")
    other_session = boto3.session.Session().client("sqs", region_name="us-east-1")
    queue_url = other_session.create_queue(QueueName="jobs")["QueueUrl"]
    with recording_requests() as log:
        early.head_bucket(Bucket=BUCKET)
        other_session.send_message(QueueUrl=queue_url, MessageBody="{}")
    assert [(r.service, r.operation, r.region) for r in log] == [
        ("s3", "HeadBucket", REGION),
        ("sqs", "SendMessage", "us-east-1"),
    ]


@pytest.mark.usefixtures("aws")
def test_records_a_call_that_fails_since_iam_is_asked_before_the_service() -> None:
    with recording_requests() as log, pytest.raises(ClientError):
        boto3.client("s3").get_object(Bucket=BUCKET, Key="missing")
    assert operations(log) == ["GetObject"]


@pytest.mark.usefixtures("aws")
def test_records_every_request_of_a_managed_multipart_upload() -> None:
    s3 = boto3.client("s3")
    with recording_requests() as log:
        s3.upload_fileobj(io.BytesIO(b"x" * (9 * MIB)), BUCKET, "processed/big.bin")
    # boto3 switches to multipart at 8 MiB; the parts go up from worker threads in any order.
    assert operations(log)[0] == "CreateMultipartUpload"
    assert sorted(operations(log)[1:-1]) == ["UploadPart", "UploadPart"]
    assert operations(log)[-1] == "CompleteMultipartUpload"
    assert sorted(r.params["PartNumber"] for r in log if r.operation == "UploadPart") == [1, 2]
    for request in log:
        validate_against_model(request)
        assert required_permissions(request, ACCOUNT, REGION) == [
            Permission("s3:PutObject", obj("processed/big.bin"))
        ]


@pytest.mark.usefixtures("aws")
def test_records_parameters_after_botocores_own_handlers() -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="raw/my file.csv", Body=b"")
    with recording_requests() as log:
        s3.copy_object(
            Bucket=BUCKET, Key="processed/copy.csv", CopySource={"Bucket": BUCKET, "Key": "raw/my file.csv"}
        )
        s3.get_object(Bucket=BUCKET, Key="raw/my file.csv")
    # The dict CopySource became the quoted header string botocore sends, which the model validates.
    assert log[0].params["CopySource"] == f"{BUCKET}/raw/my%20file.csv"
    assert log[1].params["ChecksumMode"] == "ENABLED"
    for request in log:
        validate_against_model(request)


@pytest.mark.usefixtures("aws")
def test_presigning_is_not_a_request() -> None:
    s3 = boto3.client("s3")
    with recording_requests() as log:
        s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "raw/a.csv"})
        s3.generate_presigned_post(BUCKET, "raw/a.csv")
    assert log == []


@pytest.mark.usefixtures("aws")
def test_nested_recorders_each_see_their_own_span_and_the_hook_goes_away_after() -> None:
    original = BaseClient._emit_api_params
    s3 = boto3.client("s3")
    with recording_requests() as outer:
        s3.head_bucket(Bucket=BUCKET)
        with recording_requests() as inner:
            s3.list_objects_v2(Bucket=BUCKET)
        s3.head_bucket(Bucket=BUCKET)
    s3.list_objects_v2(Bucket=BUCKET)
    assert operations(outer) == ["HeadBucket", "ListObjectsV2", "HeadBucket"]
    assert operations(inner) == ["ListObjectsV2"]
    assert BaseClient._emit_api_params is original


# ----------------------------------------------------------------------------------------- validation


def test_validation_accepts_parameters_that_fit_the_model() -> None:
    validate_against_model(Request("s3", "GetObject", {"Bucket": BUCKET, "Key": "raw/a.csv"}, REGION))


@pytest.mark.parametrize(
    ("params", "complaint"),
    [
        ({"Bucket": BUCKET, "Key": "a", "Bukket": BUCKET}, "Unknown parameter"),
        ({"Bucket": BUCKET}, "Missing required parameter"),
        ({"Bucket": BUCKET, "Key": 7}, "Invalid type"),
    ],
)
def test_validation_rejects_parameters_that_do_not_fit(params: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ParamValidationError, match=complaint):
        validate_against_model(Request("s3", "GetObject", params, REGION))


def test_validation_rejects_an_operation_the_service_does_not_have() -> None:
    with pytest.raises(OperationNotFoundError):
        validate_against_model(Request("s3", "GetObjekt", {}, REGION))


# ------------------------------------------------------------------------------------------ the table


def sm(resource: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{resource}"


PASSED = {"iam:PassedToService": "sagemaker.amazonaws.com"}
TAGS = [{"Key": "stack", "Value": "dev"}]
TAG_CONTEXT = {"aws:RequestTag/stack": "dev"}
TUNING_CONFIG = {
    "Strategy": "Bayesian",
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
    "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
}


def training_definition(role: str, **extra: Any) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": "xgboost:1.7", "TrainingInputMode": "File"},
        "RoleArn": role,
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        **extra,
    }


def call(service: str, operation: str, **params: Any) -> Request:
    return Request(service, operation, params, REGION)


SECOND_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pipeline-tuning"
VARIANT = {
    "VariantName": "AllTraffic",
    "ModelName": "Churn",
    "InstanceType": "ml.m5.large",
    "InitialInstanceCount": 1,
}
CONTAINER = {"Image": "xgboost:1.7", "ModelDataUrl": f"s3://{BUCKET}/models/model.tar.gz"}

TABLE_CASES = [
    # S3 API reference, DeleteObject: removing a version for good is s3:DeleteObjectVersion; without a
    # VersionId a versioned bucket only gets a delete marker (s3:DeleteObject).
    pytest.param(
        call("s3", "DeleteObject", Bucket=BUCKET, Key="a"),
        [Permission("s3:DeleteObject", obj("a"))],
        id="s3-delete",
    ),
    pytest.param(
        call("s3", "DeleteObject", Bucket=BUCKET, Key="a", VersionId="v1"),
        [Permission("s3:DeleteObjectVersion", obj("a"))],
        id="s3-delete-version",
    ),
    pytest.param(
        call("s3", "GetObject", Bucket=BUCKET, Key="raw/a.csv"),
        [Permission("s3:GetObject", obj("raw/a.csv"))],
        id="s3-get",
    ),
    pytest.param(
        call("s3", "GetObject", Bucket=BUCKET, Key="raw/a.csv", VersionId="v1"),
        [Permission("s3:GetObjectVersion", obj("raw/a.csv"), {"s3:versionid": "v1"})],
        id="s3-get-version",
    ),
    pytest.param(
        call("s3", "HeadObject", Bucket=BUCKET, Key="raw/a.csv"),
        [Permission("s3:GetObject", obj("raw/a.csv"))],
        id="s3-head",
    ),
    pytest.param(
        call("s3", "HeadObject", Bucket=BUCKET, Key="raw/a.csv", VersionId="v1"),
        [Permission("s3:GetObjectVersion", obj("raw/a.csv"), {"s3:versionid": "v1"})],
        id="s3-head-version",
    ),
    pytest.param(
        call("s3", "PutObject", Bucket=BUCKET, Key="processed/a", Body=b"", ServerSideEncryption="aws:kms"),
        [Permission("s3:PutObject", obj("processed/a"), {"s3:x-amz-server-side-encryption": "aws:kms"})],
        id="s3-put",
    ),
    pytest.param(
        call("s3", "PutObject", Bucket=BUCKET, Key="processed/a", Tagging="stage=dev", ACL="private"),
        [
            Permission("s3:PutObject", obj("processed/a"), {"s3:x-amz-acl": "private"}),
            Permission("s3:PutObjectTagging", obj("processed/a")),
            Permission("s3:PutObjectAcl", obj("processed/a")),
        ],
        id="s3-put-tagged-with-acl",
    ),
    pytest.param(
        call("s3", "CreateMultipartUpload", Bucket=BUCKET, Key="processed/big"),
        [Permission("s3:PutObject", obj("processed/big"))],
        id="s3-create-multipart",
    ),
    pytest.param(
        call("s3", "UploadPart", Bucket=BUCKET, Key="processed/big", UploadId="u", PartNumber=1, Body=b""),
        [Permission("s3:PutObject", obj("processed/big"))],
        id="s3-upload-part",
    ),
    pytest.param(
        call("s3", "CompleteMultipartUpload", Bucket=BUCKET, Key="processed/big", UploadId="u"),
        [Permission("s3:PutObject", obj("processed/big"))],
        id="s3-complete-multipart",
    ),
    pytest.param(
        call("s3", "AbortMultipartUpload", Bucket=BUCKET, Key="processed/big", UploadId="u"),
        [Permission("s3:AbortMultipartUpload", obj("processed/big"))],
        id="s3-abort-multipart",
    ),
    pytest.param(
        call("s3", "ListObjectsV2", Bucket=BUCKET, Prefix="raw/", MaxKeys=50),
        [Permission("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "raw/", "s3:max-keys": "50"})],
        id="s3-list",
    ),
    pytest.param(
        call(
            "s3",
            "CopyObject",
            Bucket=BUCKET,
            Key="processed/b",
            CopySource="other/raw/my%20a.csv?versionId=v9",
        ),
        [
            Permission("s3:GetObjectVersion", obj("raw/my a.csv", "other"), {"s3:versionid": "v9"}),
            Permission("s3:PutObject", obj("processed/b"), {"s3:x-amz-copy-source": "other/raw/my a.csv"}),
        ],
        id="s3-copy-version",
    ),
    pytest.param(
        call(
            "sagemaker",
            "CreateHyperParameterTuningJob",
            HyperParameterTuningJobName="Churn-Tuning-7",
            HyperParameterTuningJobConfig=TUNING_CONFIG,
            TrainingJobDefinition=training_definition(ROLE),
            TrainingJobDefinitions=[
                training_definition(ROLE, DefinitionName="a"),
                training_definition(SECOND_ROLE, DefinitionName="b"),
            ],
            Tags=TAGS,
        ),
        [
            Permission(
                "sagemaker:CreateHyperParameterTuningJob",
                sm("hyper-parameter-tuning-job/churn-tuning-7"),
                TAG_CONTEXT,
            ),
            Permission("iam:PassRole", ROLE, PASSED),
            Permission("iam:PassRole", SECOND_ROLE, PASSED),
            Permission("sagemaker:AddTags", sm("hyper-parameter-tuning-job/churn-tuning-7"), TAG_CONTEXT),
        ],
        id="sagemaker-create-tuning-job",
    ),
    pytest.param(
        call("sagemaker", "DescribeHyperParameterTuningJob", HyperParameterTuningJobName="Churn-Tuning-7"),
        [
            Permission(
                "sagemaker:DescribeHyperParameterTuningJob", sm("hyper-parameter-tuning-job/churn-tuning-7")
            )
        ],
        id="sagemaker-describe-tuning-job",
    ),
    pytest.param(
        call("sagemaker", "ListTrainingJobsForHyperParameterTuningJob", HyperParameterTuningJobName="T"),
        [
            Permission(
                "sagemaker:ListTrainingJobsForHyperParameterTuningJob", sm("hyper-parameter-tuning-job/t")
            )
        ],
        id="sagemaker-list-tuning-training-jobs",
    ),
    pytest.param(
        call("sagemaker", "DescribeTrainingJob", TrainingJobName="Churn-Tuning-7-003-abc"),
        [Permission("sagemaker:DescribeTrainingJob", sm("training-job/churn-tuning-7-003-abc"))],
        id="sagemaker-describe-training-job",
    ),
    pytest.param(
        call(
            "sagemaker", "CreateModel", ModelName="Churn", ExecutionRoleArn=ROLE, PrimaryContainer=CONTAINER
        ),
        [Permission("sagemaker:CreateModel", sm("model/churn")), Permission("iam:PassRole", ROLE, PASSED)],
        id="sagemaker-create-model",
    ),
    pytest.param(
        call(
            "sagemaker", "CreateEndpointConfig", EndpointConfigName="Churn-V2", ProductionVariants=[VARIANT]
        ),
        [Permission("sagemaker:CreateEndpointConfig", sm("endpoint-config/churn-v2"))],
        id="sagemaker-create-endpoint-config",
    ),
    pytest.param(
        call("sagemaker", "CreateEndpoint", EndpointName="Churn", EndpointConfigName="Churn-V2", Tags=TAGS),
        [
            Permission("sagemaker:CreateEndpoint", sm("endpoint/churn"), TAG_CONTEXT),
            Permission("sagemaker:AddTags", sm("endpoint/churn"), TAG_CONTEXT),
            Permission("sagemaker:CreateEndpoint", sm("endpoint-config/churn-v2"), TAG_CONTEXT),
        ],
        id="sagemaker-create-endpoint",
    ),
    pytest.param(
        call("sagemaker", "UpdateEndpoint", EndpointName="Churn", EndpointConfigName="Churn-V3"),
        [
            Permission("sagemaker:UpdateEndpoint", sm("endpoint/churn")),
            Permission("sagemaker:UpdateEndpoint", sm("endpoint-config/churn-v3")),
        ],
        id="sagemaker-update-endpoint",
    ),
    pytest.param(
        call("sagemaker", "DescribeEndpoint", EndpointName="Churn"),
        [Permission("sagemaker:DescribeEndpoint", sm("endpoint/churn"))],
        id="sagemaker-describe-endpoint",
    ),
    pytest.param(
        call("sagemaker", "DeleteEndpointConfig", EndpointConfigName="Churn-V1"),
        [Permission("sagemaker:DeleteEndpointConfig", sm("endpoint-config/churn-v1"))],
        id="sagemaker-delete-endpoint-config",
    ),
    pytest.param(
        call("sagemaker", "DeleteModel", ModelName="Churn-Old"),
        [Permission("sagemaker:DeleteModel", sm("model/churn-old"))],
        id="sagemaker-delete-model",
    ),
    pytest.param(
        call("sagemaker", "ListTags", ResourceArn=sm("endpoint/churn")),
        [Permission("sagemaker:ListTags", sm("endpoint/churn"))],
        id="sagemaker-list-tags",
    ),
    pytest.param(
        call("sagemaker", "AddTags", ResourceArn=sm("model/churn"), Tags=TAGS),
        [Permission("sagemaker:AddTags", sm("model/churn"), TAG_CONTEXT)],
        id="sagemaker-add-tags",
    ),
    pytest.param(
        call(
            "sagemaker-runtime",
            "InvokeEndpoint",
            EndpointName="Churn-Live",
            Body=b"1,2",
            ContentType="text/csv",
        ),
        [Permission("sagemaker:InvokeEndpoint", sm("endpoint/churn-live"))],
        id="sagemaker-runtime-invoke",
    ),
    pytest.param(
        call("ssm", "GetParameter", Name="/pipeline/dev/threshold", WithDecryption=True),
        [Permission("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/pipeline/dev/threshold")],
        id="ssm-get",
    ),
    pytest.param(
        call("ssm", "GetParameter", Name="/pipeline/dev/threshold:3"),
        [Permission("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/pipeline/dev/threshold")],
        id="ssm-get-version-selector",
    ),
    pytest.param(
        call("ssm", "GetParameter", Name=f"arn:aws:ssm:{REGION}:210987654321:parameter/shared/limit:prod"),
        [Permission("ssm:GetParameter", f"arn:aws:ssm:{REGION}:210987654321:parameter/shared/limit")],
        id="ssm-get-by-arn",
    ),
    pytest.param(
        call("ssm", "PutParameter", Name="best-model", Value="m-7", Type="String", Overwrite=True),
        [
            Permission(
                "ssm:PutParameter",
                f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/best-model",
                {"ssm:Overwrite": "true"},
            )
        ],
        id="ssm-put",
    ),
    pytest.param(
        call("sqs", "SendMessage", QueueUrl=QUEUE_URL, MessageBody="{}"),
        [Permission("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:pipeline-jobs")],
        id="sqs-send",
    ),
    pytest.param(
        call("sqs", "ReceiveMessage", QueueUrl=QUEUE_URL),
        [Permission("sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:pipeline-jobs")],
        id="sqs-receive",
    ),
    pytest.param(
        call("sqs", "DeleteMessage", QueueUrl=QUEUE_URL, ReceiptHandle="r"),
        [Permission("sqs:DeleteMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:pipeline-jobs")],
        id="sqs-delete",
    ),
    pytest.param(
        call("sns", "Publish", TopicArn=TOPIC_ARN, Message="done"),
        [Permission("sns:Publish", TOPIC_ARN)],
        id="sns-publish",
    ),
]


@pytest.mark.parametrize(("request_", "expected"), TABLE_CASES)
def test_required_permissions(request_: Request, expected: list[Permission]) -> None:
    # Every example is a request botocore would send, so the table is keyed on real parameter names.
    validate_against_model(request_)
    assert required_permissions(request_, ACCOUNT, REGION) == expected


def test_the_partition_and_region_given_shape_the_arns() -> None:
    request = call("sagemaker", "DescribeEndpoint", EndpointName="E")
    assert required_permissions(request, ACCOUNT, "cn-north-1", partition="aws-cn") == [
        Permission("sagemaker:DescribeEndpoint", f"arn:aws-cn:sagemaker:cn-north-1:{ACCOUNT}:endpoint/e")
    ]
    put = call("s3", "PutObject", Bucket=BUCKET, Key="k")
    assert required_permissions(put, ACCOUNT, "cn-north-1", partition="aws-cn")[0].resource == (
        f"arn:aws-cn:s3:::{BUCKET}/k"
    )


def test_permissions_differing_only_in_context_are_unequal_but_hash_alike() -> None:
    plain, versioned = Permission("s3:GetObject", obj("a")), Permission("s3:GetObject", obj("a"), {"k": "v"})
    assert plain != versioned
    assert len({plain, versioned, Permission("s3:GetObject", obj("a"))}) == 2


@pytest.mark.parametrize(
    ("request_", "complaint"),
    [
        (
            call("s3", "DeleteObjects", Bucket=BUCKET, Delete={"Objects": [{"Key": "a"}]}),
            "add s3.DeleteObjects to the permission table",
        ),
        (call("kms", "Decrypt", CiphertextBlob=b"x"), "add kms.Decrypt to"),
        (call("s3", "PutObject", Bucket=BUCKET, Key="a", ObjectLockMode="GOVERNANCE"), "with ObjectLockMode"),
        (call("s3", "GetObject", Bucket="arn:aws:s3:eu-west-1:1:accesspoint/ap", Key="a"), "access point"),
        (call("ssm", "PutParameter", Name="n", Value="v", Tags=TAGS), "with Tags"),
        (call("sns", "Publish", PhoneNumber="+15555550100", Message="m"), "sns.Publish to a TargetArn"),
    ],
)
def test_a_request_the_table_cannot_judge_is_refused(request_: Request, complaint: str) -> None:
    with pytest.raises(UnmappedRequest, match=complaint):
        required_permissions(request_, ACCOUNT, REGION)


# ---------------------------------------------------------------------------------------------- KMS


def kms(*actions: str) -> list[Permission]:
    via = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    return [Permission(action, KEY_ARN, via) for action in actions]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(call("s3", "GetObject", Bucket=BUCKET, Key="a"), kms("kms:Decrypt"), id="get"),
        pytest.param(call("s3", "HeadObject", Bucket=BUCKET, Key="a"), kms(), id="head"),
        pytest.param(
            call("s3", "HeadObject", Bucket=BUCKET, Key="a", ChecksumMode="ENABLED"),
            kms("kms:Decrypt"),
            id="head-with-checksum",
        ),
        pytest.param(call("s3", "PutObject", Bucket=BUCKET, Key="a"), kms("kms:GenerateDataKey"), id="put"),
        pytest.param(
            call(
                "s3", "PutObject", Bucket=BUCKET, Key="a", ServerSideEncryption="aws:kms", SSEKMSKeyId=KEY_ARN
            ),
            kms("kms:GenerateDataKey"),
            id="put-naming-the-bucket-key",
        ),
        pytest.param(
            call("s3", "PutObject", Bucket=BUCKET, Key="a", ServerSideEncryption="AES256"),
            kms(),
            id="put-sse-s3",
        ),
        pytest.param(
            call("s3", "CreateMultipartUpload", Bucket=BUCKET, Key="a"),
            kms("kms:GenerateDataKey"),
            id="create-multipart",
        ),
        pytest.param(
            call("s3", "UploadPart", Bucket=BUCKET, Key="a", UploadId="u", PartNumber=1),
            kms("kms:Decrypt"),
            id="upload-part",
        ),
        pytest.param(
            call(
                "s3",
                "CompleteMultipartUpload",
                Bucket=BUCKET,
                Key="a",
                UploadId="u",
                MultipartUpload={"Parts": [{"ETag": "e", "PartNumber": 1, "ChecksumCRC32": "MIHo9w=="}]},
            ),
            kms("kms:Decrypt"),
            id="complete-with-checksums",
        ),
        pytest.param(
            call(
                "s3",
                "CompleteMultipartUpload",
                Bucket=BUCKET,
                Key="a",
                UploadId="u",
                MultipartUpload={"Parts": [{"ETag": "e", "PartNumber": 1}]},
            ),
            kms(),
            id="complete-without-checksums",
        ),
        pytest.param(
            call("s3", "CopyObject", Bucket=BUCKET, Key="b", CopySource=f"{BUCKET}/a"),
            kms("kms:Decrypt", "kms:GenerateDataKey"),
            id="copy",
        ),
        pytest.param(call("s3", "ListObjectsV2", Bucket=BUCKET), kms(), id="list"),
        pytest.param(
            call("s3", "AbortMultipartUpload", Bucket=BUCKET, Key="a", UploadId="u"), kms(), id="abort"
        ),
    ],
)
def test_kms_permissions_for_an_sse_kms_bucket(request_: Request, expected: list[Permission]) -> None:
    assert kms_permissions_for_s3(request_, KEY_ARN) == expected


@pytest.mark.parametrize(
    "request_",
    [
        call("s3", "DeleteObjects", Bucket=BUCKET, Delete={"Objects": [{"Key": "a"}]}),
        call("sqs", "SendMessage", QueueUrl=QUEUE_URL, MessageBody="m"),
        call("s3", "PutObject", Bucket=BUCKET, Key="a", SSEKMSKeyId="alias/other"),
        call("s3", "CopyObject", Bucket=BUCKET, Key="b", CopySource="other-bucket/a"),
    ],
)
def test_kms_refuses_what_one_bucket_key_cannot_answer(request_: Request) -> None:
    with pytest.raises(UnmappedRequest):
        kms_permissions_for_s3(request_, KEY_ARN)


@pytest.mark.usefixtures("aws")
def test_a_recorded_multipart_upload_needs_both_generate_data_key_and_decrypt() -> None:
    with recording_requests() as log:
        boto3.client("s3").upload_fileobj(io.BytesIO(b"x" * (9 * MIB)), BUCKET, "processed/big.bin")
    needed = {p.action for request in log for p in kms_permissions_for_s3(request, KEY_ARN)}
    assert needed == {"kms:GenerateDataKey", "kms:Decrypt"}


# ------------------------------------------------------------------------------------ the pieces together


@pytest.mark.usefixtures("aws")
def test_recorded_requests_checked_against_a_policy_find_missing_and_unused_permissions() -> None:
    role_policy = policy(
        allow("s3:GetObject", obj("raw/*"), Sid="ReadRaw"),
        allow("s3:PutObject", obj("processed/*"), Sid="WriteProcessed"),
        allow("s3:DeleteObject", obj("raw/*"), Sid="DeleteRaw"),
    )
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="raw/a.csv", Body=b"a\n")
    with recording_requests() as log:
        body = s3.get_object(Bucket=BUCKET, Key="raw/a.csv")["Body"].read()
        s3.put_object(Bucket=BUCKET, Key="processed/a.csv", Body=body)
        s3.list_objects_v2(Bucket=BUCKET, Prefix="processed/")
    needed = [p for request in log for p in required_permissions(request, ACCOUNT, REGION)]
    denied = [p for p in needed if not role_policy.allows(p.action, p.resource, p.context)]
    assert denied == [Permission("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "processed/"})]
    unused = unused_grants(role_policy, [(p.action, p.resource) for p in needed])
    assert [g.sid for g in unused] == ["DeleteRaw"]
