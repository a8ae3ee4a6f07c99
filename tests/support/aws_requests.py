"""Record the AWS requests that function code makes through boto3, check them against botocore's service
model, and say which IAM permissions each one needs.

Recording hooks `BaseClient._emit_api_params`, a step every API call of every botocore client goes through
(paginators, waiters and boto3's managed transfers included), however early the client was created: a
handler registered on a session's events would miss clients built at import time. The hook reads the
parameters after the client's own parameter handlers have run, so they are the ones botocore is about to
validate and send: CopySource already quoted, ChecksumMode already defaulted, and so on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.client import BaseClient  # type: ignore[import-untyped]
from botocore.exceptions import ClientError, ParamValidationError  # type: ignore[import-untyped]
from botocore.session import get_session  # type: ignore[import-untyped]
from botocore.validate import ParamValidator  # type: ignore[import-untyped]


@dataclass(frozen=True)
class Request:
    """One API call: botocore's service name ("s3", "sagemaker-runtime"), the API operation ("GetObject"),
    its parameters and the client's region."""

    service: str
    operation: str
    params: Mapping[str, Any]
    region: str
    # The client's `user_agent_extra`: the functions name themselves there, so tests tell their requests
    # from the test's own setup and assertions.
    caller: str = ""
    # Error codes AWS answered with (S3's 404 for a missing key needs s3:ListBucket, for one).
    errors: list[str] = field(default_factory=list, compare=False, hash=False)


# ---------------------------------------------------------------------------------------------- recording

_EMIT_API_PARAMS = BaseClient._emit_api_params
_MAKE_API_CALL = BaseClient._make_api_call
_lock = threading.Lock()
# The request each thread is making: botocore prepares and sends it on the calling thread.
_current = threading.local()
# Logs of the recorders now open, by identity: boto3's transfer threads append from other threads.
_open_logs: dict[int, list[Request]] = {}


def _record(client: Any, operation_model: Any, params: Mapping[str, Any], context: Mapping[str, Any]) -> None:
    if context.get("is_presign_request"):
        # Presigning sends nothing (generate_presigned_post even borrows CreateBucket's model); whoever
        # uses the URL later makes the request.
        return
    request = Request(
        service=client.meta.service_model.service_name,
        operation=operation_model.name,
        params=dict(params),
        region=client.meta.region_name,
        caller=client.meta.config.user_agent_extra or "",
    )
    _current.request = request
    with _lock:
        for log in _open_logs.values():
            log.append(request)


def _recording_emit_api_params(self: Any, api_params: Any, operation_model: Any, context: Any) -> Any:
    params = _EMIT_API_PARAMS(self, api_params, operation_model, context)
    _record(self, operation_model, params, context)
    return params


def _recording_make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
    _current.request = None
    try:
        return _MAKE_API_CALL(self, operation_name, api_params)
    except ClientError as error:
        request = getattr(_current, "request", None)
        if request is not None:
            request.errors.append(str(error.response.get("Error", {}).get("Code", "")))
        raise


@contextmanager
def recording_requests() -> Iterator[list[Request]]:
    """Collect every request any botocore client makes while the block runs, in the order botocore
    prepared them (requests from transfer threads interleave as they happen)."""
    log: list[Request] = []
    with _lock:
        if not _open_logs:
            BaseClient._emit_api_params = _recording_emit_api_params
            BaseClient._make_api_call = _recording_make_api_call
        _open_logs[id(log)] = log
    try:
        yield log
    finally:
        with _lock:
            del _open_logs[id(log)]
            if not _open_logs:
                BaseClient._emit_api_params = _EMIT_API_PARAMS
                BaseClient._make_api_call = _MAKE_API_CALL


# --------------------------------------------------------------------------------------------- validation


@cache
def _service_model(service: str) -> Any:
    # Loaded from the JSON models installed with botocore: no network, no credentials.
    return get_session().get_service_model(service)


def validate_against_model(request: Request) -> None:
    """Raise botocore's ParamValidationError unless the parameters fit the operation's input shape."""
    shape = _service_model(request.service).operation_model(request.operation).input_shape
    if shape is None:
        if request.params:
            raise ParamValidationError(
                report=f"{request.operation} takes no parameters: {sorted(request.params)}"
            )
        return
    report = ParamValidator().validate(dict(request.params), shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


# -------------------------------------------------------------------------------------------- permissions


@dataclass(frozen=True)
class Permission:
    """An IAM action on a resource ARN, with the condition keys the request supplies for it."""

    action: str
    resource: str
    # Left out of the hash (equal permissions still hash alike) so permissions can be collected in sets.
    context: Mapping[str, str] = field(default_factory=dict, hash=False)


class UnmappedRequest(LookupError):
    """The table cannot say what this request needs. Extend the table; never guess."""


def _unmapped(request: Request, detail: str = "") -> UnmappedRequest:
    what = f"{request.service}.{request.operation}{detail}"
    return UnmappedRequest(f"add {what} to the permission table in tests/support/aws_requests.py")


def _refuse(request: Request, params: frozenset[str]) -> None:
    """Parameters that need permissions the table does not model yet fail loudly instead of passing."""
    present = sorted(params & request.params.keys())
    if present:
        raise _unmapped(request, f" with {', '.join(present)}")


@dataclass(frozen=True)
class _Arns:
    partition: str
    region: str
    account: str

    def regional(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def s3_bucket(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"

    def s3_object(self, bucket: str, key: str) -> str:
        return f"{self.s3_bucket(bucket)}/{key}"

    def sagemaker(self, resource_type: str, name: str) -> str:
        # SageMaker ARNs carry names in lower case whatever case the request used, and IAM checks that ARN:
        # an AccessDenied for InvokeEndpoint names .../endpoint/endpoint-setu4993--labse for an endpoint
        # called ...LaBSE (github.com/philschmid/cdk-samples/issues/2; see also
        # github.com/prometheus-community/yet-another-cloudwatch-exporter/pull/1178).
        return self.regional("sagemaker", f"{resource_type}/{name.lower()}")


_Rule = Callable[[Request, _Arns], list[Permission]]


def _context(params: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, str]:
    """The condition keys a request supplies, from the parameters that set them."""
    return {key: str(params[param]) for param, key in keys.items() if param in params}


def _combine(*rules: _Rule) -> _Rule:
    def rule(request: Request, arns: _Arns) -> list[Permission]:
        return [permission for each in rules for permission in each(request, arns)]

    return rule


# S3. Resource types and condition keys: Service Authorization Reference, Amazon S3
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html). Which action
# each API operation needs: the Permissions sections of the S3 API Reference, also shipped in botocore's
# s3 model documentation. HeadObject: "To use HEAD, you must have the s3:GetObject permission".
# GetObject: with a versionId "you must have the s3:GetObjectVersion permission ... The s3:GetObject
# permission is not required". PutObject: s3:PutObjectAcl for ACL headers, s3:PutObjectTagging for a
# tag-set. CopyObject: s3:GetObject on the source and s3:PutObject on the destination. Multipart:
# CreateMultipartUpload, UploadPart and CompleteMultipartUpload need s3:PutObject, AbortMultipartUpload
# needs s3:AbortMultipartUpload (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html).

_S3_WRITE_CONTEXT = {
    "ServerSideEncryption": "s3:x-amz-server-side-encryption",
    "SSEKMSKeyId": "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "ACL": "s3:x-amz-acl",
    "StorageClass": "s3:x-amz-storage-class",
    "MetadataDirective": "s3:x-amz-metadata-directive",
}
_S3_LIST_CONTEXT = {"Prefix": "s3:prefix", "Delimiter": "s3:delimiter", "MaxKeys": "s3:max-keys"}
_S3_ACL_PARAMS = frozenset({"ACL", "GrantFullControl", "GrantRead", "GrantReadACP", "GrantWriteACP"})
# Object Lock headers need s3:PutObjectRetention / s3:PutObjectLegalHold; not modelled yet.
_S3_OBJECT_LOCK_PARAMS = frozenset(
    {"ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus"}
)
_COPY_SOURCE_VERSION = "?versionId="


def _bucket(request: Request) -> str:
    bucket = str(request.params["Bucket"])
    if bucket.startswith("arn:"):
        # Access points and Outposts authorize against their own ARNs, which this table does not build.
        raise _unmapped(request, " on an access point")
    return bucket


def _s3_read(arns: _Arns, bucket: str, key: str, version: str | None) -> Permission:
    if version is None:
        return Permission("s3:GetObject", arns.s3_object(bucket, key))
    return Permission("s3:GetObjectVersion", arns.s3_object(bucket, key), {"s3:versionid": version})


def _s3_get(request: Request, arns: _Arns) -> list[Permission]:
    params = request.params
    return [_s3_read(arns, _bucket(request), params["Key"], params.get("VersionId"))]


def _s3_write(request: Request, arns: _Arns, extra_context: Mapping[str, str]) -> list[Permission]:
    _refuse(request, _S3_OBJECT_LOCK_PARAMS)
    target = arns.s3_object(_bucket(request), request.params["Key"])
    context = {**_context(request.params, _S3_WRITE_CONTEXT), **extra_context}
    permissions = [Permission("s3:PutObject", target, context)]
    # The extra actions get no condition keys: which of the request's keys IAM puts in their context is not
    # documented, and an absent key errs towards denying.
    if "Tagging" in request.params:
        permissions.append(Permission("s3:PutObjectTagging", target))
    if _S3_ACL_PARAMS & request.params.keys():
        permissions.append(Permission("s3:PutObjectAcl", target))
    return permissions


def _s3_put(request: Request, arns: _Arns) -> list[Permission]:
    return _s3_write(request, arns, {})


def _s3_part(request: Request, arns: _Arns) -> list[Permission]:
    return [Permission("s3:PutObject", arns.s3_object(_bucket(request), request.params["Key"]))]


def _s3_abort(request: Request, arns: _Arns) -> list[Permission]:
    return [Permission("s3:AbortMultipartUpload", arns.s3_object(_bucket(request), request.params["Key"]))]


def _s3_list(request: Request, arns: _Arns) -> list[Permission]:
    return [
        Permission(
            "s3:ListBucket", arns.s3_bucket(_bucket(request)), _context(request.params, _S3_LIST_CONTEXT)
        )
    ]


def _s3_delete(request: Request, arns: _Arns) -> list[Permission]:
    """DeleteObject; with a VersionId it removes that version for good and needs s3:DeleteObjectVersion."""
    action = "s3:DeleteObjectVersion" if request.params.get("VersionId") else "s3:DeleteObject"
    return [Permission(action, arns.s3_object(_bucket(request), request.params["Key"]))]


def _copy_source(request: Request) -> tuple[str, str, str | None]:
    """(bucket, key, version) of a CopyObject source as botocore sends it: "bucket/url-quoted-key",
    optionally followed by "?versionId=..."."""
    source, _, version = str(request.params["CopySource"]).partition(_COPY_SOURCE_VERSION)
    bucket, _, key = unquote(source).removeprefix("/").partition("/")
    if bucket.startswith("arn:") or not key:
        raise _unmapped(request, f" from source {request.params['CopySource']!r}")
    return bucket, key, version or None


def _s3_copy(request: Request, arns: _Arns) -> list[Permission]:
    bucket, key, version = _copy_source(request)
    written = _s3_write(request, arns, {"s3:x-amz-copy-source": f"{bucket}/{key}"})
    return [_s3_read(arns, bucket, key, version), *written]


# SageMaker. Service Authorization Reference, Amazon SageMaker
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html): every
# action below is named after its API operation; CreateHyperParameterTuningJob, CreateModel and
# CreateEndpointConfig list iam:PassRole and sagemaker:AddTags as dependent actions, CreateEndpoint and
# CreateTransformJob (on transform-job*) sagemaker:AddTags; CreateEndpoint and UpdateEndpoint require
# both the endpoint* and the endpoint-config* resource; InvokeEndpoint (runtime API) is
# sagemaker:InvokeEndpoint on endpoint*. iam:PassRole: Service Authorization Reference, IAM (role*
# resource, condition key iam:PassedToService).

_SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


def _request_tags(request: Request) -> dict[str, str]:
    return {
        f"aws:RequestTag/{tag['Key']}": str(tag.get("Value", "")) for tag in request.params.get("Tags", [])
    }


def _role_arns(value: Any) -> list[str]:
    """Every role a request hands to the service: the values of members named ...RoleArn, at any depth."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).endswith("RoleArn") and isinstance(item, str):
                found.append(item)
            else:
                found.extend(_role_arns(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_role_arns(item))
    return list(dict.fromkeys(found))


def _sagemaker_on(resource_type: str, name_param: str) -> _Rule:
    """sagemaker:<Operation> on the resource the request names."""

    def rule(request: Request, arns: _Arns) -> list[Permission]:
        arn = arns.sagemaker(resource_type, request.params[name_param])
        return [Permission(f"sagemaker:{request.operation}", arn, _request_tags(request))]

    return rule


def _sagemaker_create(resource_type: str, name_param: str) -> _Rule:
    """sagemaker:Create<X>, plus iam:PassRole for each role passed and sagemaker:AddTags when tagging."""

    def rule(request: Request, arns: _Arns) -> list[Permission]:
        arn = arns.sagemaker(resource_type, request.params[name_param])
        tags = _request_tags(request)
        passed = {"iam:PassedToService": _SAGEMAKER_PRINCIPAL}
        return [
            Permission(f"sagemaker:{request.operation}", arn, tags),
            *(Permission("iam:PassRole", role, passed) for role in _role_arns(request.params)),
            *([Permission("sagemaker:AddTags", arn, tags)] if tags else []),
        ]

    return rule


def _rollback_alarms(request: Request, arns: _Arns) -> list[Permission]:
    """Deployment guardrails read the auto-rollback alarms an update names (SageMaker developer guide,
    "Configure deployment guardrails": cloudwatch:DescribeAlarms on them)."""
    alarms = request.params.get("DeploymentConfig", {}).get("AutoRollbackConfiguration", {}).get("Alarms", [])
    return [
        Permission("cloudwatch:DescribeAlarms", arns.regional("cloudwatch", f"alarm:{a['AlarmName']}"))
        for a in alarms
    ]


def _sagemaker_tags(request: Request, arns: _Arns) -> list[Permission]:
    return [
        Permission(f"sagemaker:{request.operation}", request.params["ResourceArn"], _request_tags(request))
    ]


def _sagemaker_anywhere(request: Request, arns: _Arns) -> list[Permission]:
    """The List actions have no resource type: they are granted on "*"."""
    return [Permission(f"sagemaker:{request.operation}", "*")]


# Application Auto Scaling. Service Authorization Reference, Application Auto Scaling
# (list_applicationautoscaling.html): RegisterScalableTarget, PutScalingPolicy and DeregisterScalableTarget
# act on a scalable-target ARN that ends in an identifier AWS assigns, with condition keys
# application-autoscaling:service-namespace and :scalable-dimension. Application Auto Scaling user guide,
# "Permissions validation": the caller must also hold what scaling does with the target service and
# CloudWatch (SageMaker: DescribeEndpoint and UpdateEndpointWeightsAndCapacities on the endpoint; target
# tracking alarms, named TargetTracking-<resource id>-AlarmHigh/AlarmLow-<uuid>), and "Service-linked
# roles": the first registration creates the service's role, which needs iam:CreateServiceLinkedRole.

_SCALING_ROLES = {
    "sagemaker": (
        "sagemaker.application-autoscaling.amazonaws.com",
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
    )
}


def _scaling_context(request: Request) -> dict[str, str]:
    return _context(
        request.params,
        {
            "ServiceNamespace": "application-autoscaling:service-namespace",
            "ScalableDimension": "application-autoscaling:scalable-dimension",
        },
    )


def _scaling_target(request: Request, arns: _Arns) -> Permission:
    arn = arns.regional("application-autoscaling", "scalable-target/0123456789abcdef0123456789abcdef0123")
    return Permission(f"application-autoscaling:{request.operation}", arn, _scaling_context(request))


def _scaled_endpoint(request: Request, arns: _Arns) -> str:
    namespace, resource = request.params["ServiceNamespace"], request.params["ResourceId"]
    if namespace != "sagemaker" or not resource.startswith("endpoint/"):
        raise _unmapped(request, f" for {namespace} resource {resource!r}")
    return arns.sagemaker("endpoint", resource.split("/")[1])


def _tracking_alarms(request: Request, arns: _Arns, *actions: str) -> list[Permission]:
    resource = request.params["ResourceId"]
    return [
        Permission(action, arns.regional("cloudwatch", f"alarm:TargetTracking-{resource}-{side}-{uuid}"))
        for action in actions
        for side in ("AlarmHigh", "AlarmLow")
        for uuid in ("0f3c1c3e-8d2b-4c6e-9b43-2f6f0d1b9a10",)
    ]


def _register_scalable_target(request: Request, arns: _Arns) -> list[Permission]:
    endpoint = _scaled_endpoint(request, arns)
    service, role = _SCALING_ROLES["sagemaker"]
    return [
        _scaling_target(request, arns),
        Permission("sagemaker:DescribeEndpoint", endpoint),
        Permission("sagemaker:UpdateEndpointWeightsAndCapacities", endpoint),
        Permission(
            "iam:CreateServiceLinkedRole",
            f"arn:{arns.partition}:iam::{arns.account}:role/aws-service-role/{service}/{role}",
            {"iam:AWSServiceName": service},
        ),
    ]


def _put_scaling_policy(request: Request, arns: _Arns) -> list[Permission]:
    _scaled_endpoint(request, arns)
    if request.params.get("PolicyType") != "TargetTrackingScaling":
        raise _unmapped(request, f" of type {request.params.get('PolicyType')!r}")
    alarms = _tracking_alarms(request, arns, "cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms")
    return [_scaling_target(request, arns), *alarms]


def _deregister_scalable_target(request: Request, arns: _Arns) -> list[Permission]:
    _scaled_endpoint(request, arns)
    return [_scaling_target(request, arns), *_tracking_alarms(request, arns, "cloudwatch:DeleteAlarms")]


# Systems Manager, SQS, SNS: Service Authorization Reference pages list_awssystemsmanager.html (parameter
# ARN arn:${Partition}:ssm:${Region}:${Account}:parameter/${ParameterNameWithoutLeadingSlash}; PutParameter
# condition key ssm:Overwrite), list_amazonsqs.html (queue ARN ...:sqs:${Region}:${Account}:${QueueName})
# and list_amazonsns.html (Publish on topic*).

# Tags on PutParameter are authorized by tagging permissions this table does not model yet.
_SSM_UNMAPPED_PARAMS = frozenset({"Tags"})


def _parameter_arn(name: str, arns: _Arns) -> str:
    # GetParameter also takes an ARN, and "name:version" or "name:label" selectors, which are not part of
    # the parameter's ARN. Parameter names cannot contain colons, so the first one starts a selector.
    if name.startswith("arn:"):
        head, separator, resource = name.partition(":parameter/")
        if not separator:
            raise ValueError(f"not an SSM parameter ARN: {name!r}")
        return f"{head}:parameter/{resource.split(':')[0]}"
    return arns.regional("ssm", f"parameter/{name.split(':')[0].removeprefix('/')}")


def _ssm_parameter(request: Request, arns: _Arns) -> list[Permission]:
    _refuse(request, _SSM_UNMAPPED_PARAMS)
    context = (
        {"ssm:Overwrite": str(request.params["Overwrite"]).lower()} if "Overwrite" in request.params else {}
    )
    return [Permission(f"ssm:{request.operation}", _parameter_arn(request.params["Name"], arns), context)]


def _queue_arn(queue_url: str, arns: _Arns) -> str:
    path = urlsplit(queue_url).path.strip("/").split("/")
    if len(path) != 2:
        raise ValueError(f"not an SQS queue URL: {queue_url!r}")
    account, name = path
    return f"arn:{arns.partition}:sqs:{arns.region}:{account}:{name}"


def _sqs_queue(request: Request, arns: _Arns) -> list[Permission]:
    return [Permission(f"sqs:{request.operation}", _queue_arn(request.params["QueueUrl"], arns))]


def _sns_publish(request: Request, arns: _Arns) -> list[Permission]:
    if "TopicArn" not in request.params:
        raise _unmapped(request, " to a TargetArn or PhoneNumber")
    return [Permission("sns:Publish", request.params["TopicArn"])]


_TABLE: dict[tuple[str, str], _Rule] = {
    ("s3", "GetObject"): _s3_get,
    ("s3", "HeadObject"): _s3_get,
    ("s3", "PutObject"): _s3_put,
    ("s3", "CreateMultipartUpload"): _s3_put,
    ("s3", "UploadPart"): _s3_part,
    ("s3", "CompleteMultipartUpload"): _s3_part,
    ("s3", "AbortMultipartUpload"): _s3_abort,
    ("s3", "ListObjectsV2"): _s3_list,
    ("s3", "CopyObject"): _s3_copy,
    ("s3", "DeleteObject"): _s3_delete,
    ("sagemaker", "CreateHyperParameterTuningJob"): _sagemaker_create(
        "hyper-parameter-tuning-job", "HyperParameterTuningJobName"
    ),
    ("sagemaker", "DescribeHyperParameterTuningJob"): _sagemaker_on(
        "hyper-parameter-tuning-job", "HyperParameterTuningJobName"
    ),
    ("sagemaker", "ListTrainingJobsForHyperParameterTuningJob"): _sagemaker_on(
        "hyper-parameter-tuning-job", "HyperParameterTuningJobName"
    ),
    ("sagemaker", "DescribeTrainingJob"): _sagemaker_on("training-job", "TrainingJobName"),
    ("sagemaker", "CreateModel"): _sagemaker_create("model", "ModelName"),
    ("sagemaker", "CreateEndpointConfig"): _sagemaker_create("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "CreateEndpoint"): _combine(
        _sagemaker_create("endpoint", "EndpointName"), _sagemaker_on("endpoint-config", "EndpointConfigName")
    ),
    ("sagemaker", "UpdateEndpoint"): _combine(
        _sagemaker_on("endpoint", "EndpointName"),
        _sagemaker_on("endpoint-config", "EndpointConfigName"),
        _rollback_alarms,
    ),
    ("sagemaker", "DescribeEndpoint"): _sagemaker_on("endpoint", "EndpointName"),
    ("sagemaker", "DeleteEndpoint"): _sagemaker_on("endpoint", "EndpointName"),
    ("sagemaker", "DescribeEndpointConfig"): _sagemaker_on("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "DescribeModel"): _sagemaker_on("model", "ModelName"),
    ("sagemaker", "StopHyperParameterTuningJob"): _sagemaker_on(
        "hyper-parameter-tuning-job", "HyperParameterTuningJobName"
    ),
    ("sagemaker", "ListHyperParameterTuningJobs"): _sagemaker_anywhere,
    ("sagemaker", "ListEndpointConfigs"): _sagemaker_anywhere,
    ("sagemaker", "ListModels"): _sagemaker_anywhere,
    ("sagemaker", "CreateTransformJob"): _sagemaker_create("transform-job", "TransformJobName"),
    ("sagemaker", "DescribeTransformJob"): _sagemaker_on("transform-job", "TransformJobName"),
    ("sagemaker", "StopTransformJob"): _sagemaker_on("transform-job", "TransformJobName"),
    ("sagemaker", "ListTransformJobs"): _sagemaker_anywhere,
    ("application-autoscaling", "RegisterScalableTarget"): _register_scalable_target,
    ("application-autoscaling", "PutScalingPolicy"): _put_scaling_policy,
    ("application-autoscaling", "DeregisterScalableTarget"): _deregister_scalable_target,
    ("sagemaker", "DeleteEndpointConfig"): _sagemaker_on("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "DeleteModel"): _sagemaker_on("model", "ModelName"),
    ("sagemaker", "ListTags"): _sagemaker_tags,
    ("sagemaker", "AddTags"): _sagemaker_tags,
    ("sagemaker-runtime", "InvokeEndpoint"): _sagemaker_on("endpoint", "EndpointName"),
    ("ssm", "GetParameter"): _ssm_parameter,
    ("ssm", "PutParameter"): _ssm_parameter,
    ("sqs", "SendMessage"): _sqs_queue,
    ("sqs", "ReceiveMessage"): _sqs_queue,
    ("sqs", "DeleteMessage"): _sqs_queue,
    ("sns", "Publish"): _sns_publish,
}


def required_permissions(
    request: Request, account: str, region: str, partition: str = "aws"
) -> list[Permission]:
    """The identity-policy permissions `request` needs, for resources in `account` and `region`.

    Context holds the condition keys this table derives from the request; keys it does not know are absent,
    so a policy conditioning on them is judged as IAM judges an absent key. KMS keys used on the caller's
    behalf by S3 come from kms_permissions_for_s3; those SageMaker, SSM, SQS or SNS use under their own key
    policies are not modelled.
    """
    rule = _TABLE.get((request.service, request.operation))
    if rule is None:
        raise _unmapped(request)
    return rule(request, _Arns(partition=partition, region=region, account=account))


# KMS implied by S3 on a bucket whose default encryption is SSE-KMS. Sources: S3 User Guide, "Using
# server-side encryption with AWS KMS keys (SSE-KMS)"
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html): uploading needs
# kms:GenerateDataKey, downloading kms:Decrypt. S3 API Reference (botocore's s3 model documentation),
# CreateMultipartUpload/UploadPart: "the requester must have permission to the kms:Decrypt and
# kms:GenerateDataKey actions ... kms:GenerateDataKey action for the CreateMultipartUpload API. Then ...
# kms:Decrypt action on the UploadPart and UploadPartCopy APIs"; CompleteMultipartUpload: with "an
# additional checksum value in your MultipartUpload requests ... you must have permission to use the
# kms:Decrypt action"; HeadObject: only with checksum mode enabled (the stored checksum is encrypted) "you
# must have permission to use the kms:Decrypt action to retrieve the checksum" -- a plain HEAD needs none.

_DECRYPT = "kms:Decrypt"
_GENERATE_DATA_KEY = "kms:GenerateDataKey"


def _checksum_members(params: Mapping[str, Any]) -> list[str]:
    return [name for name in params if name.startswith("Checksum") and name != "ChecksumType"]


def _carries_checksum(params: Mapping[str, Any]) -> bool:
    parts = params.get("MultipartUpload", {}).get("Parts", [])
    return any(_checksum_members(item) for item in [params, *parts])


def _encrypting(request: Request, key_arn: str) -> tuple[str, ...]:
    params = request.params
    if params.get("ServerSideEncryption") == "AES256":
        return ()  # an explicit SSE-S3 upload overrides the bucket default and never calls KMS
    if params.get("SSEKMSKeyId", key_arn) != key_arn:
        raise _unmapped(request, f" naming key {params['SSEKMSKeyId']!r} instead of the bucket's {key_arn!r}")
    return (_GENERATE_DATA_KEY,)


def _copying(request: Request, key_arn: str) -> tuple[str, ...]:
    if _copy_source(request)[0] != request.params["Bucket"]:
        raise _unmapped(request, " across buckets, whose keys may differ,")
    return (_DECRYPT, *_encrypting(request, key_arn))


def _decrypting(request: Request, key_arn: str) -> tuple[str, ...]:
    return (_DECRYPT,)


def _reading_checksum(request: Request, key_arn: str) -> tuple[str, ...]:
    return (_DECRYPT,) if request.params.get("ChecksumMode") == "ENABLED" else ()


def _completing(request: Request, key_arn: str) -> tuple[str, ...]:
    return (_DECRYPT,) if _carries_checksum(request.params) else ()


def _no_kms(request: Request, key_arn: str) -> tuple[str, ...]:
    return ()


_KMS_TABLE: dict[str, Callable[[Request, str], tuple[str, ...]]] = {
    "GetObject": _decrypting,
    "HeadObject": _reading_checksum,
    "PutObject": _encrypting,
    "CreateMultipartUpload": _encrypting,
    "UploadPart": _decrypting,
    "CompleteMultipartUpload": _completing,
    "CopyObject": _copying,
    "AbortMultipartUpload": _no_kms,
    "ListObjectsV2": _no_kms,
    "DeleteObject": _no_kms,
}


def kms_permissions_for_s3(request: Request, key_arn: str) -> list[Permission]:
    """The KMS permissions on `key_arn` that an S3 request needs when the bucket encrypts with that key."""
    actions = _KMS_TABLE.get(request.operation) if request.service == "s3" else None
    if actions is None:
        raise _unmapped(request, " (KMS for SSE-KMS buckets)")
    # S3 calls KMS on the caller's behalf, so kms:ViaService names S3 in the request's region.
    via = {"kms:ViaService": f"s3.{request.region}.amazonaws.com"}
    return [Permission(action, key_arn, via) for action in actions(request, key_arn)]
