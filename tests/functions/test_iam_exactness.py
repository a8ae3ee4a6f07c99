"""IAM exactness: every AWS request the functions made in the tests is valid for the service and allowed by
the role the Pulumi program gives that function, and every permission of the role is used.

The requests are recorded by `record_function_requests` (conftest) on the functions' own clients while the
other function tests run; the policies come from the program run under mocks, never written again here.
A request the role does not allow would be AccessDenied in AWS; a permission no request uses is one the
role should not have. Permissions that AWS services use on the function's behalf, without a request from
its code, are listed in `PLATFORM_GRANTS` with who uses them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rehearsal.iam_policy import Grant, Policy, unused_grants
from settings import load_settings
from tests.functions.conftest import COVERAGE, FUNCTION_CALLER, FUNCTION_REQUESTS, PROGRAM
from tests.support.aws_requests import (
    Permission,
    Request,
    kms_permissions_for_s3,
    required_permissions,
    validate_against_model,
)

pytestmark = pytest.mark.after_function_tests

ACCOUNT = "123456789012"  # the account the mocks report (tools/mockrun.py)
REGION = PROGRAM.config["aws:region"]

# Function -> its role's inline policy resource in the program.
ROLE_POLICIES = {
    "transform": "transform-role-policy",
    "tune": "tune-role-policy",
    "deploy": "deploy-role-policy",
    "predict": "predict-role-policy",
}
# Statements whose permissions the platform uses with the function's role, not the function's code.
WRITE_OWN_LOGS = "the Lambda runtime writes the function's log streams"
# With the stack's `tracing` on, every function's role may send its traces, which Lambda does.
SENDS_TRACES = (
    {"SendTraces": "the Lambda runtime sends the function's trace segments (active tracing)"}
    if load_settings(PROGRAM.config, stack=PROGRAM.stack).functions.tracing
    else {}
)
PLATFORM_GRANTS = {
    "transform": {
        "ConsumeUploadQueue": "Lambda's SQS poller receives, deletes and reads the queue's attributes",
        "WriteOwnLogs": WRITE_OWN_LOGS,
        **SENDS_TRACES,
    },
    "tune": {
        "ConsumeTuningRequests": "Lambda's SQS poller receives, deletes and reads the queue's attributes",
        "WriteOwnLogs": WRITE_OWN_LOGS,
        **SENDS_TRACES,
    },
    "deploy": {
        "SendFailedEvents": "Lambda sends events the function failed on to its on-failure destination",
        "WriteOwnLogs": WRITE_OWN_LOGS,
        **SENDS_TRACES,
    },
    "predict": {"WriteOwnLogs": WRITE_OWN_LOGS, **SENDS_TRACES},
}
# What each platform grant may hold (Lambda developer guide: "Using Lambda with Amazon SQS", execution role
# permissions; "Asynchronous invocation", destinations: sqs:SendMessage; "Sending Lambda function logs to
# CloudWatch Logs"; "Visualize Lambda function invocations using AWS X-Ray": the AWSXRayDaemonWriteAccess
# policy's permissions, of which the runtime uses the two uploads, the SDK's sampling reads not).
PLATFORM_ACTIONS = {
    "ConsumeUploadQueue": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    "ConsumeTuningRequests": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    "SendFailedEvents": {"sqs:SendMessage"},
    "WriteOwnLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
    "SendTraces": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
}


def policy_of(function: str) -> Policy:
    return Policy.parse(PROGRAM.named(ROLE_POLICIES[function]).json_input("policy"))


def requests_of(function: str) -> list[Request]:
    return [r for r in FUNCTION_REQUESTS if r.caller.endswith(f"{FUNCTION_CALLER}{function}")]


def sse_kms_keys() -> dict[str, str]:
    """Bucket name -> the KMS key it encrypts new objects with, from the program's bucket encryption."""
    keys = {}
    for config in PROGRAM.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ):
        default = config.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        if default["sseAlgorithm"] == "aws:kms":
            keys[config.inputs["bucket"]] = default["kmsMasterKeyId"]
    return keys


def permissions_for(request: Request) -> Iterator[Permission]:
    yield from required_permissions(request, ACCOUNT, REGION)
    if request.service == "s3":
        bucket = request.params["Bucket"]
        key = sse_kms_keys().get(bucket)
        if key is not None:
            yield from kms_permissions_for_s3(request, key)
        # Without s3:ListBucket, S3 answers a read of a missing key with 403 instead of 404 (S3 API
        # reference, GetObject and HeadObject, "Permissions"): code that handles NoSuchKey needs it.
        if "NoSuchKey" in request.errors:
            yield Permission("s3:ListBucket", f"arn:aws:s3:::{bucket}")


def denied(policy: Policy, requests: list[Request]) -> list[str]:
    return [
        f"{r.service}.{r.operation} needs {p.action} on {p.resource} ({dict(p.context)})"
        for r in requests
        for p in permissions_for(r)
        if not policy.allows(p.action, p.resource, p.context)
    ]


def platform_grants(function: str) -> list[Grant]:
    return [g for g in policy_of(function).grants() if g.sid in PLATFORM_GRANTS[function]]


@pytest.fixture(params=sorted(ROLE_POLICIES))
def function(request: pytest.FixtureRequest) -> str:
    name = str(request.param)
    if not requests_of(name):
        pytest.fail(f"no request of the {name} function was recorded: run the function tests with this one")
    return name


def test_every_request_fits_the_service_model(function: str) -> None:
    for request in requests_of(function):
        validate_against_model(request)


def test_every_request_is_allowed_by_the_functions_role(function: str) -> None:
    assert denied(policy_of(function), requests_of(function)) == []


def needs_every_function_test() -> None:
    if not COVERAGE.complete:
        pytest.skip("only some function tests ran: what the role needs is judged when all of them run")


def unused_by_code(function: str, policy: Policy) -> list[Grant]:
    used = [(p.action, p.resource) for r in requests_of(function) for p in permissions_for(r)]
    return [g for g in unused_grants(policy, used) if g.sid not in PLATFORM_GRANTS[function]]


def test_every_permission_of_the_role_is_used(function: str) -> None:
    needs_every_function_test()
    assert unused_by_code(function, policy_of(function)) == [], "permissions no request of the function uses"


def test_an_extra_permission_in_the_program_is_caught(function: str) -> None:
    needs_every_function_test()
    document = PROGRAM.named(ROLE_POLICIES[function]).json_input("policy")
    bucket = PROGRAM.named("ingest-data").outputs["arn"]
    extra = {
        "Sid": "Extra",
        "Effect": "Allow",
        "Action": ["s3:DeleteObjectVersion"],
        "Resource": [f"{bucket}/*"],
    }
    widened = Policy.parse({**document, "Statement": [*document["Statement"], extra]})
    assert [(g.sid, g.action) for g in unused_by_code(function, widened)] == [
        ("Extra", "s3:DeleteObjectVersion")
    ]


def test_platform_grants_are_only_what_the_platform_documents_it_uses(function: str) -> None:
    actions: dict[str, set[str]] = {g.sid: set() for g in platform_grants(function)}
    for grant in platform_grants(function):
        actions[grant.sid].add(grant.action)
    assert actions == {sid: PLATFORM_ACTIONS[sid] for sid in PLATFORM_GRANTS[function]}


def test_removing_any_used_permission_from_the_program_is_caught(function: str) -> None:
    """The harness itself can fail: drop each code-used action from the role in turn, and some recorded
    request must then be denied."""
    needs_every_function_test()
    document = PROGRAM.named(ROLE_POLICIES[function]).json_input("policy")
    requests = requests_of(function)
    for index, statement in enumerate(document["Statement"]):
        if statement["Sid"] in PLATFORM_GRANTS[function]:
            continue
        for action in statement["Action"]:
            weakened = {**document, "Statement": list(document["Statement"])}
            remaining = [a for a in statement["Action"] if a != action]
            weakened["Statement"][index] = {**statement, "Action": remaining or ["none:None"]}
            assert denied(Policy.parse(weakened), requests), f"{statement['Sid']}: {action} is not needed"
