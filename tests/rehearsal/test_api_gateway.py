"""The dev stack's REST API served locally from its own resources, as API Gateway serves it: routes, the
API key and usage plan, the request validator with the program's model, the program's gateway response
templates, Lambda proxy events and answers, and the function's invoke permissions. A fake function stands
in for the predict function: it records each event and answers what the test says."""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.auth
import jsonschema
import pytest
from moto import mock_aws

from rehearsal.api_client import signed_headers
from rehearsal.api_cognito_auth import MotoJsonWebKeys
from rehearsal.api_definition import ApiDefinitionError
from rehearsal.api_gateway import MAX_PAYLOAD_BYTES, LambdaAnswer, LocalRestApi
from rehearsal.api_iam_auth import MotoCallers
from rehearsal.clock import TimeScale
from rehearsal.moto_server import Credentials
from tests.support.stacks import synth
from tools.mockrun import MOCK_ACCOUNT_ID, PROJECT_DIR, Resource, StackRun

PROGRAM = synth("dev")
REGION = PROGRAM.config["aws:region"]
PERMISSION = "aws:lambda/permission:Permission"
API_RESOURCE = "aws:apigateway/resource:Resource"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
SAMPLE = json.loads(
    (PROJECT_DIR / "tests" / "functions" / "events" / "apigateway-rest-proxy.json").read_text()
)
# In the sample and absent here, because the program's methods use neither: an authorizer's claims and a
# mutual-TLS client certificate.
NOT_IN_THIS_API = {"authorizer", "clientCert"}
OK = LambdaAnswer(
    {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}, None, False, 3.0
)
VALID_BODY = {"records": [{"age": 41, "job": "admin.", "balance": None}]}
START = datetime(2026, 3, 4, 19, 15, 17, tzinfo=UTC)
EPOCH_MS = int(START.timestamp() * 1000)
REAL_TIME = TimeScale(1)


def api_resources(run: StackRun = PROGRAM) -> list[Resource]:
    """What the orchestrator hands the gateway: the API's resources and the functions' permissions."""
    return [r for r in run.resources if r.type.startswith("aws:apigateway/") or r.type == PERMISSION]


def declared(type_: str, name: str, inputs: dict[str, Any], resource_id: str = "") -> Resource:
    """A resource the program could declare besides its own."""
    return Resource(urn="", type=type_, name=name, parent="", custom=True, inputs=inputs, id=resource_id)


def changed(resources: list[Resource], name: str, **inputs: Any) -> list[Resource]:
    """The resources with `name`'s inputs updated."""
    return [replace(r, inputs={**r.inputs, **inputs}) if r.name == name else r for r in resources]


def stage_name(run: StackRun = PROGRAM) -> str:
    return str(run.one("aws:apigateway/stage:Stage").inputs["stageName"])


def route_path(verb: str, run: StackRun = PROGRAM) -> str:
    """The path of the program's method of this verb, from its Resource."""
    method = run.one("aws:apigateway/method:Method", httpMethod=verb)
    (resource,) = [
        r for r in run.of_type("aws:apigateway/resource:Resource") if r.id == method.inputs["resourceId"]
    ]
    return "/" + resource.inputs["pathPart"]


PREDICT, HEALTH = route_path("POST"), route_path("GET")


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.seconds = 0.0
        self.start = start

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@dataclass
class FakeFunction:
    answer: LambdaAnswer = OK
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # When set, each invocation waits for it (a function still running).
    release: threading.Event | None = None
    # How long each invocation runs.
    run_seconds: float = 0.0

    def __call__(self, function: str, event: dict[str, Any]) -> LambdaAnswer:
        self.calls.append((function, json.loads(json.dumps(event))))
        if self.release is not None:
            self.release.wait(10)
        if self.run_seconds:
            threading.Event().wait(self.run_seconds)
        return self.answer


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


def caller(policy: str, name: str = "api-client") -> Credentials:
    """An IAM user of moto's (inside `mock_aws`) with `policy` as its one managed policy, and its key."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName=name)
    arn = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=policy)["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


# The program's own grant to callers of its API.
INVOKE_POLICY = PROGRAM.named("predict-access-invoke-policy").inputs["policy"]


@dataclass
class Served:
    api: LocalRestApi
    function: FakeFunction
    clock: FakeClock
    time_scale: TimeScale
    # A caller with the program's invoke policy.
    client: Credentials

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = "valid",
        headers: dict[str, str] | None = None,
        stage: str | None = None,
        signer: Credentials | str | None = "client",
    ) -> Answer:
        """A request to `path` below the stage; `key="valid"` sends the API's key, `signer="client"` signs
        it as the caller with the program's invoke policy, at the clock's time."""
        sent = dict(headers or {})
        if key is not None:
            sent["x-api-key"] = self.api.api_key if key == "valid" else key
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        target = f"/{stage or stage_name()}{path}"
        if signer is not None:
            credentials = self.client if signer == "client" else signer
            assert isinstance(credentials, Credentials)
            url = f"http://127.0.0.1:{self.api.port}{target}"
            sent = signed_headers(method, url, data, sent, credentials, REGION)
        connection = http.client.HTTPConnection("127.0.0.1", self.api.port, timeout=10)
        try:
            connection.request(method, target, body=data, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, response.getheaders(), response.read())
        finally:
            connection.close()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Served]]:
    started: list[LocalRestApi] = []
    clocks: list[FakeClock] = []
    # Clients sign at the time the gateway's clock says (botocore's signer reads the time here); calls to
    # moto before the gateway starts sign at the machine's time.
    real_time = botocore.auth.get_current_datetime
    monkeypatch.setattr(
        botocore.auth,
        "get_current_datetime",
        lambda: clocks[-1].now().replace(tzinfo=None) if clocks else real_time(),
    )

    def start(
        resources: list[Resource] | None = None,
        *,
        function: FakeFunction | None = None,
        time_scale: TimeScale = REAL_TIME,
        api_key_value: str | None = None,
        integration_time_scale: TimeScale = REAL_TIME,
        start: datetime = START,
    ) -> Served:
        clock = FakeClock(start)
        clocks.append(clock)
        fake = function or FakeFunction()
        client = caller(INVOKE_POLICY, f"api-client-{len(started)}")
        api = LocalRestApi(
            api_resources() if resources is None else resources,
            invoke=fake,
            region=REGION,
            account_id=MOCK_ACCOUNT_ID,
            time_scale=time_scale,
            api_key_value=api_key_value,
            integration_time_scale=integration_time_scale,
            clock=clock,
            callers=MotoCallers(MOCK_ACCOUNT_ID, "aws"),
            json_web_keys=MotoJsonWebKeys(),
        )
        api.start()
        started.append(api)
        return Served(api, fake, clock, time_scale, client)

    with mock_aws():
        yield start
        for api in started:
            api.stop()


def refusal(answer: Answer) -> str:
    """The message of a gateway refusal, checking it is the program's template: {"message", "requestId"}
    with the request id API Gateway also sends as x-amzn-RequestId."""
    assert answer.header("Content-Type") == "application/json"
    document = answer.json()
    assert set(document) == {"message", "requestId"}
    assert document["requestId"] == answer.header("x-amzn-RequestId")
    return str(document["message"])


# -------------------------------------------------------------------------------------- proxy events


def test_the_event_has_the_published_sample_shape_with_this_requests_values(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    answer = served.call("POST", f"{PREDICT}?verbose=1&verbose=2&b=x", VALID_BODY, headers={"X-Custom": "v"})
    assert answer.status == 200
    ((function, event),) = served.function.calls
    assert set(event) == set(SAMPLE)
    assert set(event["requestContext"]) >= set(SAMPLE["requestContext"]) - NOT_IN_THIS_API
    assert (
        set(event["requestContext"]["identity"])
        >= set(SAMPLE["requestContext"]["identity"]) - NOT_IN_THIS_API
    )

    function_resource = PROGRAM.named("predict-function")
    assert function == function_resource.outputs["arn"]
    assert (event["resource"], event["path"], event["httpMethod"]) == (PREDICT, PREDICT, "POST")
    assert event["body"] == json.dumps(VALID_BODY) and event["isBase64Encoded"] is False
    assert event["queryStringParameters"] == {"verbose": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"verbose": ["1", "2"], "b": ["x"]}
    assert event["pathParameters"] is None and event["stageVariables"] is None
    assert event["headers"]["X-Custom"] == "v" and event["multiValueHeaders"]["X-Custom"] == ["v"]
    assert event["headers"]["x-api-key"] == served.api.api_key
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"

    context = event["requestContext"]
    api = PROGRAM.one("aws:apigateway/restApi:RestApi")
    predict_resource = PROGRAM.named("predict-predict-path")
    assert context["accountId"] == MOCK_ACCOUNT_ID and context["apiId"] == api.id
    assert (context["stage"], context["path"]) == (stage_name(), f"/{stage_name()}{PREDICT}")
    assert (context["resourceId"], context["resourcePath"]) == (predict_resource.id, PREDICT)
    assert context["requestId"] == answer.header("x-amzn-RequestId")
    assert context["extendedRequestId"] == answer.header("x-amz-apigw-id")
    assert context["identity"]["apiKey"] == served.api.api_key
    assert context["identity"]["apiKeyId"] == PROGRAM.one("aws:apigateway/apiKey:ApiKey").id
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert (context["requestTime"], context["requestTimeEpoch"]) == ("04/Mar/2026:19:15:17 +0000", EPOCH_MS)
    assert context["protocol"] == "HTTP/1.1" and context["domainName"] == f"127.0.0.1:{served.api.port}"


def test_the_functions_answer_is_the_response_status_headers_and_body(serve: Callable[..., Served]) -> None:
    payload = {
        "statusCode": 201,
        "headers": {"X-One": "1", "Set-Cookie": "a=1", "X-Flag": True},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": "created",
    }
    served = serve(function=FakeFunction(LambdaAnswer(payload, None, False, 2.0)))
    answer = served.call("POST", PREDICT, VALID_BODY)
    assert (answer.status, answer.body) == (201, b"created")
    assert answer.header("X-One") == "1" and answer.header("X-Flag") == "true"
    assert [v for n, v in answer.headers if n == "Set-Cookie"] == ["a=1", "b=2"]
    # No Content-Type from the function: API Gateway says application/json.
    assert answer.header("Content-Type") == "application/json"


def test_a_base64_answer_stays_text_without_binary_media_types(serve: Callable[..., Served]) -> None:
    payload = {"statusCode": 200, "body": "aGVsbG8=", "isBase64Encoded": True}
    served = serve(function=FakeFunction(LambdaAnswer(payload, None, False, 1.0)))
    assert served.call("POST", PREDICT, VALID_BODY).body == b"aGVsbG8="


def test_literal_paths_win_over_variables_and_greedy_paths(serve: Callable[..., Served]) -> None:
    """Routing reads any resource tree: `{name}` and `{proxy+}` resources added beside the program's."""
    api = PROGRAM.one("aws:apigateway/restApi:RestApi")
    function = PROGRAM.named("predict-function").outputs
    extra: list[Resource] = []
    for part, verb in (("{name}", "GET"), ("{proxy+}", "ANY")):
        rid = f"extra-{verb}"
        base = {"restApi": api.id, "resourceId": rid, "httpMethod": verb}
        root = api.outputs["rootResourceId"]
        extra += [
            declared(
                API_RESOURCE, rid, {"restApi": api.id, "parentId": root, "pathPart": part}, resource_id=rid
            ),
            declared(METHOD, f"{rid}-m", {**base, "authorization": "NONE"}),
            declared(
                INTEGRATION,
                f"{rid}-i",
                {**base, "type": "AWS_PROXY", "integrationHttpMethod": "POST", "uri": function["invokeArn"]},
            ),
        ]
    extra.append(
        declared(
            PERMISSION,
            "extra-invoke",
            {
                "function": function["name"],
                "principal": "apigateway.amazonaws.com",
                "action": "lambda:InvokeFunction",
                "sourceArn": f"{api.outputs['executionArn']}/*/*/*",
            },
        )
    )
    served = serve([*api_resources(), *extra])
    assert served.call("GET", "/anything", key=None).status == 200
    assert served.call("DELETE", "/a/b%20c/", key=None).status == 200
    assert served.call("POST", PREDICT, VALID_BODY).status == 200
    events = [event for _, event in served.function.calls]
    assert [(e["resource"], e["pathParameters"]) for e in events] == [
        ("/{name}", {"name": "anything"}),
        ("/{proxy+}", {"proxy": "a/b c"}),
        (PREDICT, None),
    ]


# ---------------------------------------------------------------------------------- routing and keys


@pytest.mark.parametrize(
    ("verb", "path", "stage"),
    [
        ("GET", "/nowhere", None),
        ("DELETE", PREDICT, None),
        ("GET", PREDICT, None),
        ("HEAD", HEALTH, None),
        ("POST", PREDICT, "v9"),
    ],
)
def test_an_unknown_path_method_or_stage_is_missing_authentication_token(
    serve: Callable[..., Served], verb: str, path: str, stage: str | None
) -> None:
    served = serve()
    answer = served.call(verb, path, VALID_BODY if verb == "POST" else None, stage=stage)
    assert answer.status == 403
    assert answer.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    if verb != "HEAD":
        assert refusal(answer) == "Missing Authentication Token"
    assert served.function.calls == []


@pytest.mark.parametrize("key", [None, "not-the-key-but-long-enough-0123456789"])
def test_without_the_plans_key_every_method_is_forbidden(
    serve: Callable[..., Served], key: str | None
) -> None:
    served = serve()
    for verb, path in (("POST", PREDICT), ("GET", HEALTH)):
        answer = served.call(verb, path, VALID_BODY if verb == "POST" else None, key=key)
        assert (answer.status, refusal(answer)) == (403, "Forbidden")
        assert answer.header("x-amzn-ErrorType") == "ForbiddenException"
    assert served.function.calls == []


def test_a_disabled_key_or_one_in_no_plan_of_the_stage_is_forbidden(serve: Callable[..., Served]) -> None:
    disabled = serve(changed(api_resources(), "predict-key", enabled=False))
    assert disabled.call("GET", HEALTH).status == 403
    no_plan = serve([r for r in api_resources() if r.type != "aws:apigateway/usagePlanKey:UsagePlanKey"])
    key_name = PROGRAM.one("aws:apigateway/apiKey:ApiKey").outputs["name"]
    assert no_plan.call("GET", HEALTH, key=no_plan.api.api_keys[key_name]).status == 403


def test_a_generated_key_has_40_letters_and_digits_and_a_given_value_is_the_key(
    serve: Callable[..., Served],
) -> None:
    generated = serve()
    assert re.fullmatch(r"[A-Za-z0-9]{40}", generated.api.api_key)
    assert generated.call("GET", HEALTH).status == 200
    given = serve(api_key_value="rehearsal-key-0123456789")
    assert given.api.api_key == "rehearsal-key-0123456789"
    assert given.call("GET", HEALTH).status == 200
    with pytest.raises(ApiDefinitionError):
        serve(api_key_value="short")


# ------------------------------------------------------------------------------------ IAM authorization


def method_arn(verb: str, path: str) -> str:
    api = PROGRAM.one("aws:apigateway/restApi:RestApi")
    return f"{api.outputs['executionArn']}/{stage_name()}/{verb}{path}"


def grant(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_a_signed_caller_with_the_invoke_policy_reaches_both_methods_as_itself(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    assert served.call("POST", PREDICT, VALID_BODY).status == 200
    assert served.call("GET", HEALTH).status == 200
    identity = served.function.calls[0][1]["requestContext"]["identity"]
    assert identity["accessKey"] == served.client.access_key_id
    assert identity["userArn"] == f"arn:aws:iam::{MOCK_ACCOUNT_ID}:user/api-client-0"
    assert identity["accountId"] == MOCK_ACCOUNT_ID


@pytest.mark.parametrize(("verb", "path"), [("POST", PREDICT), ("GET", HEALTH)])
def test_an_unsigned_request_is_missing_authentication_token_even_with_the_key(
    serve: Callable[..., Served], verb: str, path: str
) -> None:
    served = serve()
    answer = served.call(verb, path, VALID_BODY if verb == "POST" else None, signer=None)
    assert (answer.status, refusal(answer)) == (403, "Missing Authentication Token")
    assert answer.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    assert served.function.calls == []


def test_a_signature_by_the_wrong_secret_or_over_another_body_does_not_match(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    wrong_secret = replace(served.client, secret_access_key="x" * 40)
    answer = served.call("POST", PREDICT, VALID_BODY, signer=wrong_secret)
    assert answer.status == 403
    assert refusal(answer).startswith("The request signature we calculated does not match the signature")
    assert answer.header("x-amzn-ErrorType") == "InvalidSignatureException"

    # Signed over one body, sent with another: the body is part of what is signed.
    target = f"/{stage_name()}{PREDICT}"
    headers = signed_headers(
        "POST",
        f"http://127.0.0.1:{served.api.port}{target}",
        json.dumps(VALID_BODY).encode(),
        {"x-api-key": served.api.api_key, "Content-Type": "application/json"},
        served.client,
        REGION,
    )
    tampered = served.call("POST", PREDICT, {"records": [{"age": 99}]}, headers=headers, signer=None)
    assert tampered.status == 403
    assert tampered.header("x-amzn-ErrorType") == "InvalidSignatureException"
    assert served.function.calls == []


def test_a_key_nobody_was_issued_is_an_invalid_security_token(serve: Callable[..., Served]) -> None:
    served = serve()
    stranger = Credentials("AKIA" + "Z" * 16, "s" * 40)
    answer = served.call("GET", HEALTH, signer=stranger)
    assert (answer.status, refusal(answer)) == (403, "The security token included in the request is invalid.")
    assert answer.header("x-amzn-ErrorType") == "AccessDeniedException"


def test_a_signature_older_than_five_minutes_has_expired(serve: Callable[..., Served]) -> None:
    served = serve()
    target = f"/{stage_name()}{HEALTH}"
    headers = signed_headers(
        "GET",
        f"http://127.0.0.1:{served.api.port}{target}",
        None,
        {"x-api-key": served.api.api_key},
        served.client,
        REGION,
    )
    served.clock.advance(4 * 60)
    assert served.call("GET", HEALTH, headers=headers, signer=None).status == 200
    served.clock.advance(2 * 60)
    answer = served.call("GET", HEALTH, headers=headers, signer=None)
    assert answer.status == 403
    assert refusal(answer) == (
        "Signature expired: 20260304T191517Z is now earlier than 20260304T191617Z (20260304T192117Z - 5 min.)"
    )
    assert answer.header("x-amzn-ErrorType") == "InvalidSignatureException"
    # Signed by a clock running ahead: not valid yet either.
    served.clock.advance(-12 * 60)
    early = served.call("GET", HEALTH, headers=headers, signer=None)
    assert refusal(early) == (
        "Signature not yet current: 20260304T191517Z is still later than 20260304T191417Z "
        "(20260304T190917Z + 5 min.)"
    )


def test_a_bearer_token_is_no_signature(serve: Callable[..., Served]) -> None:
    served = serve()
    answer = served.call("GET", HEALTH, headers={"Authorization": "Bearer abc.def"}, signer=None)
    assert answer.status == 403
    assert refusal(answer) == (
        "'abc.def' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer abc.def'."
    )
    assert answer.header("x-amzn-ErrorType") == "IncompleteSignatureException"
    # The header's text is in the message; quotes in it stay inside the JSON string.
    quoted = served.call("GET", HEALTH, headers={"Authorization": 'Bearer a", "x": "y'}, signer=None)
    assert refusal(quoted).endswith("""in Authorization header: 'Bearer a", "x": "y'.""")


def test_a_caller_without_invoke_on_the_method_is_not_authorized(serve: Callable[..., Served]) -> None:
    served = serve()
    health_only = caller(
        grant({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": method_arn("GET", HEALTH)}),
        "health-checker",
    )
    assert served.call("GET", HEALTH, signer=health_only).status == 200
    answer = served.call("POST", PREDICT, VALID_BODY, signer=health_only)
    assert (answer.status, refusal(answer)) == (
        403,
        f"User: arn:aws:iam::{MOCK_ACCOUNT_ID}:user/health-checker is not authorized to perform: "
        f"execute-api:Invoke on resource: {method_arn('POST', PREDICT)}",
    )
    assert answer.header("x-amzn-ErrorType") == "AccessDeniedException"
    assert len(served.function.calls) == 1


def test_an_explicit_deny_wins_over_the_invoke_policy(serve: Callable[..., Served]) -> None:
    served = serve()
    iam = boto3.client("iam", region_name=REGION)
    iam.put_user_policy(
        UserName="api-client-0",
        PolicyName="no-predictions",
        PolicyDocument=grant(
            {"Effect": "Deny", "Action": "execute-api:*", "Resource": method_arn("POST", PREDICT)}
        ),
    )
    answer = served.call("POST", PREDICT, VALID_BODY)
    assert answer.status == 403
    assert refusal(answer).endswith(f"on resource: {method_arn('POST', PREDICT)} with an explicit deny")
    assert served.call("GET", HEALTH).status == 200


def test_a_role_session_signs_with_its_token(serve: Callable[..., Served]) -> None:
    served = serve()
    iam = boto3.client("iam", region_name=REGION)
    trust = grant({"Effect": "Allow", "Principal": {"AWS": MOCK_ACCOUNT_ID}, "Action": "sts:AssumeRole"})
    role = iam.create_role(RoleName="predictor", AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName="predictor", PolicyName="invoke", PolicyDocument=INVOKE_POLICY)
    session = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=role["Arn"], RoleSessionName="batch"
    )["Credentials"]
    credentials = Credentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    assert served.call("GET", HEALTH, signer=credentials).status == 200
    without_token = replace(credentials, session_token=None)
    assert served.call("GET", HEALTH, signer=without_token).status == 403


def test_a_signed_caller_still_needs_the_api_key_for_the_usage_plan(serve: Callable[..., Served]) -> None:
    served = serve()
    answer = served.call("POST", PREDICT, VALID_BODY, key=None)
    assert (answer.status, refusal(answer)) == (403, "Forbidden")


# ------------------------------------------------------------------------------- Cognito authorization

COGNITO_PROGRAM = synth("dev", apiAuthorization="cognito")
PASSWORD = "Correct-Horse-9-battery"


@dataclass(frozen=True)
class Pool:
    id: str
    client_id: str

    def id_token(self, username: str = "analyst") -> str:
        return self.sign_in(username)["IdToken"]

    def sign_in(self, username: str = "analyst") -> dict[str, str]:
        cognito = boto3.client("cognito-idp", region_name=REGION)
        try:
            cognito.admin_create_user(UserPoolId=self.id, Username=username, MessageAction="SUPPRESS")
            cognito.admin_set_user_password(
                UserPoolId=self.id, Username=username, Password=PASSWORD, Permanent=True
            )
        except cognito.exceptions.UsernameExistsException:
            pass
        return dict(
            cognito.initiate_auth(
                ClientId=self.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
            )["AuthenticationResult"]
        )


def moto_pool(name: str) -> tuple[Pool, str]:
    """A pool and app client in moto (inside `mock_aws`), and the pool's ARN."""
    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName=name)["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName=f"{name}-client", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]
    return Pool(pool["Id"], client["ClientId"]), pool["Arn"]


def cognito_resources(pool: Pool, arn: str) -> list[Resource]:
    """The program's API with apiAuthorization cognito, its authorizer and client as Cognito made them."""
    client = COGNITO_PROGRAM.named("predict-access-client")
    return [
        *changed(api_resources(COGNITO_PROGRAM), "predict-access-authorizer", providerArns=[arn]),
        replace(client, id=pool.client_id, inputs={**client.inputs, "userPoolId": pool.id}),
    ]


def test_an_id_token_of_the_pool_reaches_both_methods_with_its_claims(serve: Callable[..., Served]) -> None:
    pool, arn = moto_pool("users")
    served = serve(cognito_resources(pool, arn))
    token = pool.id_token()
    assert (
        served.call("POST", PREDICT, VALID_BODY, headers={"Authorization": token}, signer=None).status == 200
    )
    assert served.call("GET", HEALTH, headers={"Authorization": token}, signer=None).status == 200
    claims = served.function.calls[0][1]["requestContext"]["authorizer"]["claims"]
    assert (claims["cognito:username"], claims["aud"], claims["token_use"]) == (
        "analyst",
        pool.client_id,
        "id",
    )


def test_no_token_a_foreign_an_access_or_a_forged_token_is_unauthorized(serve: Callable[..., Served]) -> None:
    pool, arn = moto_pool("users")
    served = serve(cognito_resources(pool, arn))
    other, _ = moto_pool("elsewhere")
    tokens = pool.sign_in()
    header, payload, signature = tokens["IdToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "cognito:username": "admin"}).encode())
    refused: dict[str, dict[str, str]] = {
        "none": {},
        "a signature, not a token": {"Authorization": "AWS4-HMAC-SHA256 Credential=x"},
        "another pool's ID token": {"Authorization": other.id_token()},
        "the pool's access token": {"Authorization": tokens["AccessToken"]},
        "a changed claim": {"Authorization": f"{header}.{forged.decode().rstrip('=')}.{signature}"},
    }
    for why, headers in refused.items():
        answer = served.call("GET", HEALTH, headers=headers, signer=None)
        assert (answer.status, refusal(answer)) == (401, "Unauthorized"), why
        assert answer.header("x-amzn-ErrorType") == "UnauthorizedException", why
    assert served.function.calls == []


def test_an_expired_id_token_is_refused_as_expired(serve: Callable[..., Served]) -> None:
    pool, arn = moto_pool("users")
    served = serve(cognito_resources(pool, arn), start=datetime.now(UTC))
    token = pool.id_token()
    assert served.call("GET", HEALTH, headers={"Authorization": token}, signer=None).status == 200
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    served.clock.advance(claims["exp"] - served.clock.now().timestamp() + 1)
    answer = served.call("GET", HEALTH, headers={"Authorization": token}, signer=None)
    assert (answer.status, refusal(answer)) == (401, "The incoming token has expired")


def test_a_token_holder_still_needs_the_api_key(serve: Callable[..., Served]) -> None:
    pool, arn = moto_pool("users")
    served = serve(cognito_resources(pool, arn))
    answer = served.call("GET", HEALTH, key=None, headers={"Authorization": pool.id_token()}, signer=None)
    assert (answer.status, refusal(answer)) == (403, "Forbidden")


# ------------------------------------------------------------------------------ throttling and quota


def test_the_plans_burst_passes_then_requests_wait_for_its_rate_in_scaled_time(
    serve: Callable[..., Served],
) -> None:
    throttle = PROGRAM.one("aws:apigateway/usagePlan:UsagePlan").inputs["throttleSettings"]
    served = serve(time_scale=TimeScale(10))
    statuses = [served.call("GET", HEALTH).status for _ in range(throttle["burstLimit"])]
    assert statuses == [200] * throttle["burstLimit"]
    answer = served.call("GET", HEALTH)
    assert (answer.status, refusal(answer)) == (429, "Too Many Requests")
    assert answer.header("x-amzn-ErrorType") == "TooManyRequestsException"
    # One token comes back per 1/rate AWS seconds, which pass ten times faster here.
    served.clock.advance(served.time_scale.seconds(0.5 / throttle["rateLimit"]))
    assert served.call("GET", HEALTH).status == 429
    served.clock.advance(served.time_scale.seconds(1 / throttle["rateLimit"]))
    assert [served.call("GET", HEALTH).status for _ in range(2)] == [200, 429]
    assert len(served.function.calls) == throttle["burstLimit"] + 1


def test_the_daily_quota_refuses_with_limit_exceeded_until_the_next_utc_day(
    serve: Callable[..., Served],
) -> None:
    run = synth("dev", apiQuotaPerDay="3")
    quota = run.one("aws:apigateway/usagePlan:UsagePlan").inputs["quotaSettings"]
    assert quota["period"] == "DAY"
    served = serve(
        api_resources(run), time_scale=TimeScale(3600), start=datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
    )
    assert [served.call("GET", HEALTH).status for _ in range(quota["limit"])] == [200] * quota["limit"]
    answer = served.call("POST", PREDICT, VALID_BODY)
    assert (answer.status, refusal(answer)) == (429, "Limit Exceeded")
    assert answer.header("x-amzn-ErrorType") == "LimitExceededException"
    served.clock.advance(served.time_scale.seconds(30 * 60))
    assert served.call("GET", HEALTH).status == 429
    served.clock.advance(served.time_scale.seconds(31 * 60))  # past midnight UTC in AWS time
    assert served.call("GET", HEALTH).status == 200


def test_method_settings_throttle_a_method_for_every_caller(serve: Callable[..., Served]) -> None:
    settings = PROGRAM.named("predict-method-settings").inputs["settings"]
    resources = changed(
        api_resources(),
        "predict-method-settings",
        settings={**settings, "throttlingBurstLimit": 1, "throttlingRateLimit": 0.5},
    )
    served = serve(resources)
    assert [served.call("GET", HEALTH).status for _ in range(2)] == [200, 429]
    # The stage-wide setting (*/*) gives every method a bucket of these limits.
    assert [served.call("POST", PREDICT, VALID_BODY).status for _ in range(2)] == [200, 429]
    served.clock.advance(2.0)
    assert served.call("GET", HEALTH).status == 200


# -------------------------------------------------------------------------------------- validation


def program_model() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads(PROGRAM.named("predict-request-model").inputs["schema"]))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (VALID_BODY, "application/json"),
        ({"instances": [[41, "admin.", None]]}, "application/json; charset=utf-8"),
        ({"records": [{"married": True}]}, "application/json"),
        ({"records": [{"married": True}]}, "text/plain"),  # the model is $default: any content type
        ({}, "application/json"),
        ({"records": [{"a": 1}], "extra": 1}, "application/json"),
        ([{"a": 1}], "application/json"),
    ],
)
def test_the_validator_refuses_what_the_programs_model_refuses(
    serve: Callable[..., Served], body: Any, content_type: str
) -> None:
    served = serve()
    answer = served.call("POST", PREDICT, body, headers={"Content-Type": content_type})
    if program_model().is_valid(body):
        assert answer.status == 200 and len(served.function.calls) == 1
    else:
        assert (answer.status, refusal(answer)) == (400, "Invalid request body")
        assert answer.header("x-amzn-ErrorType") == "BadRequestException"
        assert served.function.calls == []


@pytest.mark.parametrize("body", [b"", b"{not json", b'{"records": [{"a": NaN}]}', b"\xff\xfe"])
def test_a_body_that_is_not_json_is_an_invalid_body(serve: Callable[..., Served], body: bytes) -> None:
    served = serve()
    answer = served.call("POST", PREDICT, body)
    assert (answer.status, refusal(answer)) == (400, "Invalid request body")
    assert served.function.calls == []


def test_a_method_without_a_validator_takes_any_body(serve: Callable[..., Served]) -> None:
    served = serve()
    assert served.call("GET", HEALTH, b"{not json").status == 200


def test_required_parameters_are_checked_when_the_validator_asks(serve: Callable[..., Served]) -> None:
    validator = PROGRAM.named("predict-validator")
    resources = changed(
        changed(api_resources(), validator.name, validateRequestParameters=True),
        "predict-post-predict",
        requestParameters={
            "method.request.header.x-trace": True,
            "method.request.querystring.v": True,
            "method.request.querystring.optional": False,
        },
    )
    served = serve(resources)
    answer = served.call("POST", PREDICT, VALID_BODY, headers={"x-trace": " "})
    assert (answer.status, refusal(answer)) == (400, "Missing required request parameters: [x-trace, v]")
    assert answer.header("x-amzn-ErrorType") == "BadRequestException"
    assert served.call("POST", f"{PREDICT}?v=1", VALID_BODY, headers={"X-Trace": "t"}).status == 200
    assert len(served.function.calls) == 1


def test_a_chunked_body_reaches_the_function_whole(serve: Callable[..., Served]) -> None:
    served = serve()
    connection = http.client.HTTPConnection("127.0.0.1", served.api.port, timeout=10)
    text = json.dumps(VALID_BODY).encode()
    target = f"/{stage_name()}{PREDICT}"
    headers = signed_headers(
        "POST",
        f"http://127.0.0.1:{served.api.port}{target}",
        text,
        {"x-api-key": served.api.api_key, "Content-Type": "application/json"},
        served.client,
        REGION,
    )
    try:
        connection.request(
            "POST", target, body=iter([text[:7], text[7:]]), encode_chunked=True, headers=headers
        )
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    assert served.function.calls[0][1]["body"] == text.decode()


def test_binary_media_types_base64_the_body_both_ways(serve: Callable[..., Served]) -> None:
    payload = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": "iVBORw==",
        "isBase64Encoded": True,
    }
    resources = changed(api_resources(), "predict-api", binaryMediaTypes=["image/*"])
    served = serve(resources, function=FakeFunction(LambdaAnswer(payload, None, False, 1.0)))
    answer = served.call(
        "GET", HEALTH, b"\x89PNG", headers={"Content-Type": "image/png", "Accept": "image/png"}
    )
    assert answer.body == b"\x89PNG"
    event = served.function.calls[0][1]
    assert (event["body"], event["isBase64Encoded"]) == ("iVBORw==", True)


def test_a_plans_method_throttle_replaces_its_plan_wide_one_for_that_method(
    serve: Callable[..., Served],
) -> None:
    plan = PROGRAM.one("aws:apigateway/usagePlan:UsagePlan")
    (stage,) = plan.inputs["apiStages"]
    per_method = [{"path": f"{HEALTH}/GET", "burstLimit": 1, "rateLimit": 1}]
    served = serve(changed(api_resources(), plan.name, apiStages=[{**stage, "throttles": per_method}]))
    assert [served.call("GET", HEALTH).status for _ in range(2)] == [200, 429]
    assert [served.call("POST", PREDICT, VALID_BODY).status for _ in range(2)] == [200, 200]


def test_a_body_over_10_mb_is_request_too_large_before_it_is_read(serve: Callable[..., Served]) -> None:
    served = serve()
    connection = http.client.HTTPConnection("127.0.0.1", served.api.port, timeout=10)
    try:
        connection.putrequest("POST", f"/{stage_name()}{PREDICT}")
        connection.putheader("x-api-key", served.api.api_key)
        connection.putheader("Content-Length", str(MAX_PAYLOAD_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        answer = Answer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()
    assert (answer.status, refusal(answer)) == (413, "Request Too Long")
    assert served.function.calls == []


# ---------------------------------------------------------------------- integration and permissions


def predict_permission(resources: list[Resource]) -> Resource:
    (permission,) = [
        r for r in resources if r.type == PERMISSION and r.inputs["sourceArn"].endswith(f"/POST{PREDICT}")
    ]
    return permission


@pytest.mark.parametrize(
    "mutation",
    [
        "dropped",
        {"sourceArn": "arn:aws:execute-api:eu-west-1:123456789012:otherapi/*/POST/predict"},
        {"sourceArn": "arn:aws:execute-api:eu-west-1:123456789012:{api}/v9/POST/predict"},
        {"principal": "events.amazonaws.com"},
        {"function": "another-function"},
        {"action": "lambda:GetFunction"},
        {"sourceAccount": "210987654321"},
    ],
)
def test_without_a_matching_permission_the_method_answers_500_and_the_function_never_runs(
    serve: Callable[..., Served], mutation: Any
) -> None:
    resources = api_resources()
    permission = predict_permission(resources)
    api_id = PROGRAM.one("aws:apigateway/restApi:RestApi").id
    if mutation == "dropped":
        resources = [r for r in resources if r is not permission]
    else:
        inputs = {k: v.replace("{api}", api_id) for k, v in mutation.items()}
        resources = changed(resources, permission.name, **inputs)
    served = serve(resources)
    answer = served.call("POST", PREDICT, VALID_BODY)
    assert (answer.status, refusal(answer)) == (500, "Internal server error")
    assert answer.header("x-amzn-ErrorType") == "InternalServerErrorException"
    assert served.function.calls == []
    # The other method's own permission still lets it through.
    assert served.call("GET", HEALTH).status == 200
    assert "Invalid permissions on Lambda function" in served.api.access_log()[0]["integration"]["error"]


@pytest.mark.parametrize(
    "lambda_answer",
    [
        LambdaAnswer(None, {"errorMessage": "boom", "errorType": "ValueError"}, False, 4.0),
        LambdaAnswer(None, {"errorMessage": "Task timed out after 10.00 seconds"}, True, 10_000.0),
        LambdaAnswer({"statusCode": 200, "body": {"not": "a string"}}, None, False, 1.0),
        LambdaAnswer({"statusCode": "two hundred", "body": ""}, None, False, 1.0),
        LambdaAnswer({"statusCode": 200, "body": "", "extra": 1}, None, False, 1.0),
        LambdaAnswer({"statusCode": 200, "headers": {"X-Count": 3}}, None, False, 1.0),
        LambdaAnswer("just text", None, False, 1.0),
        LambdaAnswer(None, None, False, 1.0),
    ],
)
def test_a_function_error_or_an_answer_not_in_the_proxy_format_is_502(
    serve: Callable[..., Served], lambda_answer: LambdaAnswer
) -> None:
    served = serve(function=FakeFunction(lambda_answer))
    answer = served.call("POST", PREDICT, VALID_BODY)
    assert (answer.status, refusal(answer)) == (502, "Internal server error")
    assert len(served.function.calls) == 1


def test_a_function_still_running_at_the_integrations_timeout_is_504(serve: Callable[..., Served]) -> None:
    integration = PROGRAM.named("predict-post-predict-integration").inputs
    # The integration's timeout passes in 50 ms here.
    scale = TimeScale(integration["timeoutMilliseconds"] / 50)
    release = threading.Event()
    function = FakeFunction(release=release)
    served = serve(function=function, integration_time_scale=scale)
    try:
        answer = served.call("POST", PREDICT, VALID_BODY)
    finally:
        release.set()
    assert (answer.status, refusal(answer)) == (504, "Endpoint request timed out")
    assert len(function.calls) == 1


# ---------------------------------------------------------------------- gateway responses and logs


OWN_TEMPLATE = '{"error":$context.error.messageString,"type":"$context.error.responseType"}'


def test_a_gateway_response_of_its_own_type_replaces_the_programs_default_4xx(
    serve: Callable[..., Served],
) -> None:
    api = PROGRAM.one("aws:apigateway/restApi:RestApi")
    own = declared(
        "aws:apigateway/response:Response",
        "not-found",
        {
            "restApiId": api.id,
            "responseType": "MISSING_AUTHENTICATION_TOKEN",
            "statusCode": "404",
            "responseTemplates": {"application/json": OWN_TEMPLATE},
            "responseParameters": {"gatewayresponse.header.X-Path": "method.request.header.x-probe"},
        },
    )
    served = serve([*api_resources(), own])
    answer = served.call("GET", "/nowhere", headers={"x-probe": "p1"})
    assert answer.status == 404 and answer.header("X-Path") == "p1"
    assert answer.json() == {"error": "Missing Authentication Token", "type": "MISSING_AUTHENTICATION_TOKEN"}
    # Other 4XX types still answer with the program's DEFAULT_4XX template.
    assert refusal(served.call("GET", HEALTH, key=None)) == "Forbidden"


def test_each_request_leaves_one_access_log_entry_in_the_stages_format(serve: Callable[..., Served]) -> None:
    served = serve()
    ok = served.call("POST", PREDICT, VALID_BODY)
    refused = served.call("GET", "/nowhere", key=None, headers={"x-amzn-RequestId": "not-a-uuid"})
    entries = served.api.access_log()
    assert [(e["status"], e["resourcePath"], e["error"]["message"]) for e in entries] == [
        (200, PREDICT, None),
        (403, None, "Missing Authentication Token"),
    ]
    assert entries[0]["requestId"] == ok.header("x-amzn-RequestId")
    assert refused.header("x-amzn-RequestId") == "not-a-uuid"
    assert entries[1]["requestId"] == "UUID_REPLACED_INVALID_REQUEST_ID"
    assert entries[0]["responseLength"] == len(ok.body) and entries[0]["integration"]["status"] == 200

    log_format = json.loads(PROGRAM.one("aws:apigateway/stage:Stage").inputs["accessLogSettings"]["format"])
    lines = [json.loads(line) for line in served.api.access_log_lines()]
    assert [set(line) for line in lines] == [set(log_format)] * 2
    assert (
        lines[0]["apiKeyId"] == PROGRAM.one("aws:apigateway/apiKey:ApiKey").id and lines[0]["status"] == "200"
    )
    assert (lines[1]["apiKeyId"], lines[1]["error"], lines[1]["status"]) == (
        "-",
        "Missing Authentication Token",
        "403",
    )


@pytest.mark.parametrize(
    ("name", "inputs"),
    [
        ("predict-post-predict-integration", {"type": "MOCK"}),
        ("predict-post-predict", {"authorization": "AWS_IAM"}),
        ("predict-api", {"policy": '{"Version":"2012-10-17","Statement":[]}'}),
        ("predict-api", {"apiKeySource": "AUTHORIZER"}),
    ],
)
def test_declarations_the_gateway_does_not_emulate_are_refused(name: str, inputs: dict[str, Any]) -> None:
    with pytest.raises(ApiDefinitionError):
        LocalRestApi(
            changed(api_resources(), name, **inputs),
            invoke=FakeFunction(),
            region=REGION,
            account_id=MOCK_ACCOUNT_ID,
            time_scale=TimeScale(1),
        )


def test_the_integration_timeout_is_not_compressed_with_aws_waits(serve: Callable[..., Served]) -> None:
    """Functions run at the machine's speed, under their own uncompressed Lambda timeout: a 29 s compressed
    with AWS's waits would cut off an answer AWS would give."""
    integration = PROGRAM.named("predict-post-predict-integration").inputs
    served = serve(
        function=FakeFunction(run_seconds=0.1), time_scale=TimeScale(integration["timeoutMilliseconds"] / 50)
    )
    assert served.call("POST", PREDICT, VALID_BODY).status == 200
