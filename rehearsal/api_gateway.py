"""The program's REST API served on this machine as API Gateway serves a stage of it.

    with LocalRestApi(resources, invoke=lambdas.invoke, region=region, account_id=account,
                      time_scale=TimeScale(60), callers=MotoCallers(account, "aws"),
                      json_web_keys=MotoJsonWebKeys()) as api:
        ApiClient(api.url, api.api_key, region, credentials=signer).call("POST", "/predict", body)

Everything comes from the program's resources (rehearsal.api_definition): routes, API keys and usage
plans (rehearsal.api_usage), the request validator and models (rehearsal.api_validation), gateway
responses (rehearsal.api_responses), Lambda proxy events and answers (rehearsal.api_proxy), and the
function's resource policy: a request reaches a function only through a Lambda permission that lets
apigateway.amazonaws.com invoke it from this API's method, as Lambda would check it.

A request passes, in API Gateway's order: the stage and the 10 MB payload limit, the route (else 403
Missing Authentication Token), the caller's authorization where the method has it (AWS_IAM,
rehearsal.api_iam_auth: the SigV4 signature, then execute-api:Invoke by the caller's policies;
COGNITO_USER_POOLS, rehearsal.api_cognito_auth: an ID token of the authorizer's pools), the API
key, the usage plan's quota and every throttle that applies (per key and method from the usage plan, per
method from the stage's method settings), the request validator, the function's permission, and the
integration's timeout. Each request leaves one access-log entry: its `$context` variables, and the
stage's access log format rendered with them.

Time: quotas and token buckets run on AWS time compressed by `time_scale`. The integration timeout
bounds how long a function runs, and the rehearsal's functions run at the machine's speed with their own
Lambda timeout unscaled; measuring the integration timeout in that same real time keeps the program's
ordering (its function times out, and answers, before the gateway gives up on it).
`integration_time_scale` compresses it too, for a Lambda service that compresses function timeouts.

Not emulated: the account-level and regional throttles, custom domains, caching, Lambda authorizers
and OAuth scopes (refused when declared), the 10240-byte header limit.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rehearsal.api_cognito_auth import JsonWebKeys, UserPools, verify_id_token
from rehearsal.api_definition import (
    COGNITO_AUTHORIZATION,
    IAM_AUTHORIZATION,
    ApiDefinitionError,
    ApiKey,
    FunctionRef,
    Method,
    Permission,
    RestApiDefinition,
    Route,
    Stage,
    Throttle,
    UsagePlan,
    function_of,
    function_ref,
    method_arn,
    read_definition,
)
from rehearsal.api_iam_auth import Callers, SignedRequest, authenticate, authorize
from rehearsal.api_proxy import LambdaAnswer, ProxyAnswer, proxy_answer, proxy_event
from rehearsal.api_responses import (
    GatewayError,
    RequestValues,
    answer,
    check_mappings,
    function_failed,
    integration_timeout,
    invalid_api_key,
    invalid_permissions,
    missing_authentication_token,
    quota_exceeded,
    render,
    request_too_large,
    throttled,
)
from rehearsal.api_usage import AwsTime, Clock, Refusal, SystemClock, UsageMeter
from rehearsal.api_validation import RequestValidator
from rehearsal.clock import TimeScale
from rehearsal.iam_policy import action_matches, glob_matches
from tools.mockrun import Resource

__all__ = ["ApiDefinitionError", "HttpRequest", "HttpResponse", "LambdaAnswer", "LocalRestApi"]

logger = logging.getLogger(__name__)

# "Payload size: 10 MB", not adjustable (developer guide, "API Gateway quotas for configuring and running
# a REST API").
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# API key source HEADER: "pass the API key as the X-API-Key header" ("Choose an API key source").
API_KEY_HEADER = "x-api-key"
API_GATEWAY_PRINCIPAL = "apigateway.amazonaws.com"
INVOKE_ACTION = "lambda:InvokeFunction"
# API Gateway's generated keys are 40 characters; a key's value is "an alphanumeric string between 20 and
# 128 characters" ("Creating and using usage plans with API keys").
GENERATED_KEY_LENGTH = 40
KEY_LENGTHS = range(20, 129)
# Clients may set $context.requestId with an x-amzn-RequestId header; "API Gateway replaces overridden
# request IDs that aren't in the format of a UUID with UUID_REPLACED_INVALID_REQUEST_ID in your access
# logs" ("Setting up CloudWatch logging for a REST API").
REPLACED_REQUEST_ID = "UUID_REPLACED_INVALID_REQUEST_ID"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
STOP_POLL_SECONDS = 0.05
REAL_TIME = TimeScale(1)
# An access log entry writes "-" for a variable without a value.
ABSENT_IN_LOG = "-"

Invoke = Callable[[str, dict[str, Any]], LambdaAnswer]


@dataclass(frozen=True)
class HttpRequest:
    method: str
    # Path and query string as sent: "/v1/predict?verbose=1".
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str
    # Content-Length of a body too large to have been read.
    declared_length: int | None = None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


def request_time(at: datetime) -> str:
    """CLF time, `dd/MMM/yyyy:HH:mm:ss +0000`, in English whatever the locale."""
    at = at.astimezone(UTC)
    return f"{at.day:02d}/{_MONTHS[at.month - 1]}/{at.year}:{at:%H:%M:%S} +0000"


def generated_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(GENERATED_KEY_LENGTH))


@dataclass
class _Exchange:
    """One request on its way through the gateway."""

    request: HttpRequest
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-cased name -> last value
    stage: Stage | None
    context: dict[str, Any]
    trace_id: str
    route: Route | None = None
    integration: dict[str, Any] = field(default_factory=dict)

    def request_values(self) -> RequestValues:
        return RequestValues(
            headers=self.headers,
            querystring=dict(self.query),
            path=dict(self.route.path_parameters) if self.route else {},
        )


@dataclass(frozen=True)
class _LogEntry:
    stage: Stage | None
    context: dict[str, Any]


class LocalRestApi:
    """One REST API of `resources`, served at `url` once started.

    `invoke(function_arn, event)` runs a function synchronously. `api_key_value` is the value of the API
    key the program leaves to API Gateway to generate; None generates one as API Gateway does.
    `integration_time_scale` is the time the integration timeout is measured in (real time by default,
    like the functions' own timeouts). `clock` is for tests (monotonic seconds and wall time). `callers`
    are the identities that may sign requests to methods with IAM authorization (rehearsal.api_iam_auth),
    `json_web_keys` the keys Cognito signs ID tokens with (rehearsal.api_cognito_auth).
    """

    def __init__(
        self,
        resources: Sequence[Resource],
        *,
        invoke: Invoke,
        region: str,
        account_id: str,
        time_scale: TimeScale,
        api_key_value: str | None = None,
        integration_time_scale: TimeScale = REAL_TIME,
        clock: Clock | None = None,
        callers: Callers | None = None,
        json_web_keys: JsonWebKeys | None = None,
    ) -> None:
        self._definition: RestApiDefinition = read_definition(resources, region=region, account_id=account_id)
        signed = [
            f"{method.http_method} {resource.path}"
            for resource in self._definition.resources
            for method in resource.methods.values()
            if method.authorization == IAM_AUTHORIZATION
        ]
        if signed and callers is None:
            raise ApiDefinitionError(
                f"{', '.join(signed)} use IAM authorization: give the callers' identities"
            )
        self._callers = callers
        tokened = [m for r in self._definition.resources for m in r.methods.values() if m.authorizer]
        if tokened and json_web_keys is None:
            raise ApiDefinitionError("methods use a Cognito authorizer: give the pools' JSON Web Keys")
        self._json_web_keys = json_web_keys
        for response in self._definition.gateway_responses.values():
            check_mappings(response)
        self._validator = RequestValidator(self._definition.models, self._definition.id)
        self._invoke = invoke
        self._region = region
        self._account_id = account_id
        self._integration_time_scale = integration_time_scale
        self._clock = clock or SystemClock()
        self._meter = UsageMeter(AwsTime(self._clock, time_scale))
        self._key_values = self._key_values_of(api_key_value)
        self._log: list[_LogEntry] = []
        self._log_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------- the service

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = _Server(("127.0.0.1", 0), self)
        # serve_forever notices a shutdown once per poll interval: stop() waits at most that long.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            name=f"apigateway-{self._definition.id}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server, self._thread = None, None

    def __enter__(self) -> LocalRestApi:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the local API is not started")
        return int(self._server.server_address[1])

    def stage_url(self, stage: str) -> str:
        if stage not in self._definition.stages:
            raise LookupError(f"the API has no stage {stage!r}")
        return f"http://127.0.0.1:{self.port}/{stage}"

    @property
    def url(self) -> str:
        """The invoke URL of the API's stage: http://127.0.0.1:<port>/<stageName>."""
        stages = sorted(self._definition.stages)
        if len(stages) != 1:
            raise LookupError(f"the API has stages {stages}: use stage_url")
        return self.stage_url(stages[0])

    @property
    def api_keys(self) -> Mapping[str, str]:
        """API key name -> value."""
        return {key.name: self._key_values[key.id] for key in self._definition.api_keys.values()}

    @property
    def api_key(self) -> str:
        """The value of the API's one API key (the one in its usage plans)."""
        in_plans = {k for plan in self._definition.usage_plans for k in plan.key_ids} & set(self._key_values)
        if len(in_plans) != 1:
            raise LookupError(f"the API's usage plans hold {len(in_plans)} keys: use api_keys")
        return self._key_values[in_plans.pop()]

    def access_log(self) -> list[dict[str, Any]]:
        """One entry per request: its `$context` variables (`status`, `error.message`, `integration.*`,
        `identity.apiKeyId`, ...), None where a variable has no value."""
        with self._log_lock:
            return [entry.context for entry in self._log]

    def access_log_lines(self) -> list[str]:
        """The stage's access log format rendered for each request, as API Gateway writes it to the log
        group of the stage's access log settings."""
        with self._log_lock:
            entries = list(self._log)
        return [
            render(entry.stage.access_log_format, entry.context, entry.stage.variables, absent=ABSENT_IN_LOG)
            for entry in entries
            if entry.stage is not None and entry.stage.access_log_format
        ]

    def _key_values_of(self, api_key_value: str | None) -> dict[str, str]:
        keys = self._definition.api_keys
        undeclared = [key.id for key in keys.values() if key.value is None]
        if api_key_value is not None and len(undeclared) != 1:
            raise ValueError(
                f"api_key_value is for the one key without a declared value; there are {len(undeclared)}"
            )
        values = {}
        for key in keys.values():
            value = key.value if key.value is not None else api_key_value or generated_key()
            if len(value) not in KEY_LENGTHS:
                raise ApiDefinitionError(
                    f"API key {key.name}: a value has 20 to 128 characters, not {len(value)}"
                )
            values[key.id] = value
        return values

    # ------------------------------------------------------------------------------------- a request

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one HTTP request as the stage would (what the HTTP server calls)."""
        started = self._clock.monotonic()
        exchange = self._begin(request)
        error_context: dict[str, Any] = {}
        try:
            response = self._serve(exchange)
        except GatewayError as error:
            error_context = {
                "message": error.message,
                # "The quoted value of $context.error.message" (mapping template reference), quoted as a
                # JSON string: a message can carry what the client sent (a malformed Authorization
                # header), which must not break out of the program's JSON template.
                "messageString": json.dumps(error.message, ensure_ascii=False),
                "responseType": error.response_type,
                "validationErrorString": error.validation_error,
            }
            response = self._refuse(exchange, error, error_context)
        self._record(exchange, response, error_context, started)
        return response

    def _begin(self, request: HttpRequest) -> _Exchange:
        split = urlsplit(request.target)
        raw_path = split.path or "/"
        first, _, rest = raw_path.lstrip("/").partition("/")
        stage = self._definition.stages.get(first)
        path = "/" + rest if stage else raw_path
        headers = {name.lower(): value for name, value in request.headers}
        now = self._clock.now()
        host = headers.get("host") or f"{self._definition.id}.execute-api.{self._region}.amazonaws.com"
        incoming_trace = re.search(r"Root=([^;]+)", headers.get("x-amzn-trace-id", ""))
        trace_root = (
            incoming_trace[1] if incoming_trace else f"1-{int(now.timestamp()):08x}-{secrets.token_hex(12)}"
        )
        context: dict[str, Any] = {
            "accountId": self._account_id,
            "apiId": self._definition.id,
            "deploymentId": stage.deployment_id if stage else None,
            # "This should be the same as the incoming Host header" (mapping template reference).
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "extendedRequestId": base64.b64encode(secrets.token_bytes(11)).decode("ascii"),
            "httpMethod": request.method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "apiKey": None,
                "apiKeyId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": request.source_ip,
                "user": None,
                "userAgent": headers.get("user-agent"),
                "userArn": None,
            },
            "path": f"/{stage.name}{path}" if stage else raw_path,
            # "the request protocol is logged as HTTP/1.1 even if a client sends a request that uses HTTP/2".
            "protocol": "HTTP/1.1",
            "requestId": headers.get("x-amzn-requestid") or str(uuid.uuid4()),
            "requestTime": request_time(now),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": None,
            "resourcePath": None,
            "stage": stage.name if stage else None,
        }
        return _Exchange(
            request=request,
            path=path,
            query=parse_qsl(split.query, keep_blank_values=True),
            headers=headers,
            stage=stage,
            context=context,
            trace_id=trace_root,
        )

    def _serve(self, exchange: _Exchange) -> HttpResponse:
        request = exchange.request
        size = request.declared_length if request.declared_length is not None else len(request.body)
        if size > MAX_PAYLOAD_BYTES:
            raise request_too_large()
        if exchange.stage is None:
            raise missing_authentication_token()
        route = self._definition.route(exchange.path, request.method)
        if route is None:
            raise missing_authentication_token()
        exchange.route = route
        exchange.context["resourceId"] = route.resource.id
        exchange.context["resourcePath"] = route.resource.path
        method = route.method
        # The caller's authorization comes before the API key and the usage plan: a request refused there
        # is not metered against the key.
        if method.authorization == IAM_AUTHORIZATION:
            self._authorize_iam(exchange, exchange.stage, route)
        elif method.authorization == COGNITO_AUTHORIZATION:
            self._authorize_token(exchange, route)
        key, plan = self._authenticate(exchange) if method.api_key_required else (None, None)
        self._meter_request(exchange.stage, route, key, plan)
        values = exchange.request_values()
        self._validator.check(
            method,
            content_type=exchange.headers.get("content-type"),
            body=request.body,
            headers=values.headers,
            querystring=values.querystring,
            path=values.path,
        )
        return self._integrate(exchange, exchange.stage, route)

    def _authorize_iam(self, exchange: _Exchange, stage: Stage, route: Route) -> None:
        """The SigV4 signer of the request, allowed execute-api:Invoke on the method, or 403."""
        assert self._callers is not None
        request = exchange.request
        host = exchange.headers.get("host") or f"127.0.0.1:{self.port}"
        signed = SignedRequest(
            request.method, f"http://{host}{request.target}", exchange.headers, request.body
        )
        caller = authenticate(signed, self._callers, region=self._region, now=self._clock.now())
        identity = exchange.context["identity"]
        identity.update(
            accessKey=caller.access_key_id, accountId=caller.account_id, userArn=caller.arn, user=caller.arn
        )
        authorize(caller, self._method_arn(stage, route))

    def _authorize_token(self, exchange: _Exchange, route: Route) -> None:
        """A valid ID token of the authorizer's pools in its header, or 401."""
        authorizer = route.method.authorizer
        assert authorizer is not None and self._json_web_keys is not None
        claims = verify_id_token(
            exchange.headers.get(authorizer.header),
            UserPools.of(self._region, authorizer.pools),
            self._json_web_keys,
            now=self._clock.now(),
        )
        # REST API proxy events carry the claims as text.
        exchange.context["authorizer"] = {"claims": {name: str(value) for name, value in claims.items()}}

    def _method_arn(self, stage: Stage, route: Route) -> str:
        return method_arn(
            region=self._region,
            account_id=self._account_id,
            api_id=self._definition.id,
            stage=stage.name,
            verb=route.method.http_method,
            path=route.resource.path,
        )

    def _authenticate(self, exchange: _Exchange) -> tuple[ApiKey, UsagePlan]:
        """The request's API key and the stage's usage plan holding it, or 403 Forbidden."""
        assert exchange.stage is not None
        sent = exchange.headers.get(API_KEY_HEADER)
        if sent:
            for plan in self._definition.usage_plans_of(exchange.stage.name):
                for key_id in plan.key_ids:
                    key = self._definition.api_keys.get(key_id)
                    if key is not None and key.enabled and self._key_values[key_id] == sent:
                        exchange.context["identity"]["apiKey"] = sent
                        exchange.context["identity"]["apiKeyId"] = key.id
                        return key, plan
        raise invalid_api_key()

    def _meter_request(self, stage: Stage, route: Route, key: ApiKey | None, plan: UsagePlan | None) -> None:
        method = route.method
        # Settings apply in order: the usage plan's per-key (and per-method) limits, then the stage's
        # per-method limits ("How throttling limit settings are applied in API Gateway"); a request must
        # get past all of them.
        throttles: list[tuple[Any, Throttle]] = []
        quota = None
        if key is not None and plan is not None:
            plan_method = f"{route.resource.path.rstrip('/')}/{method.http_method}"
            per_method = plan.method_throttles.get((stage.name, plan_method))
            if per_method is not None:
                throttles.append((("plan", plan.id, key.id, plan_method), per_method))
            elif plan.throttle is not None:
                throttles.append((("plan", plan.id, key.id), plan.throttle))
            if plan.quota is not None:
                quota = (("quota", plan.id, key.id), plan.quota)
        settings_path = f"{route.resource.path.lstrip('/')}/{method.http_method}"
        stage_throttles = {p.replace("~1", "/").lstrip("/"): t for p, t in stage.method_throttles.items()}
        stage_throttle = stage_throttles.get(settings_path) or stage_throttles.get("*/*")
        if stage_throttle is not None:
            throttles.append((("stage", stage.name, settings_path), stage_throttle))
        refusal = self._meter.admit(throttles, quota)
        if refusal is Refusal.QUOTA_EXCEEDED:
            raise quota_exceeded()
        if refusal is Refusal.THROTTLED:
            raise throttled()

    def _permitted(self, function: FunctionRef, source_arn: str) -> Permission | None:
        """The function's resource-policy statement that lets this method invoke it, as Lambda matches it:
        the API Gateway principal, an action covering InvokeFunction, the source ARN compared with
        StringLike (botocore lambda model, AddPermission SourceArn) and the owner account."""
        for permission in self._definition.permissions:
            if (
                permission.function == function
                and permission.principal in (API_GATEWAY_PRINCIPAL, "*")
                and action_matches(permission.action, INVOKE_ACTION)
                and (permission.source_arn is None or glob_matches(permission.source_arn, source_arn))
                and permission.source_account in (None, self._account_id)
            ):
                return permission
        return None

    def _integrate(self, exchange: _Exchange, stage: Stage, route: Route) -> HttpResponse:
        method: Method = route.method
        function = function_ref(
            function_of(method.integration.function_uri, stage.variables),
            region=self._region,
            account_id=self._account_id,
        )
        if self._permitted(function, self._method_arn(stage, route)) is None:
            exchange.integration["error"] = (
                "Execution failed due to configuration error: Invalid permissions on Lambda function"
            )
            raise invalid_permissions()
        request = exchange.request
        forwarded_for = ", ".join(filter(None, [exchange.headers.get("x-forwarded-for"), request.source_ip]))
        added = {
            "X-Amzn-Trace-Id": f"Root={exchange.trace_id}",
            "X-Forwarded-For": forwarded_for,
            "X-Forwarded-Port": str(self.port if self._server else 0),
            "X-Forwarded-Proto": "http",
        }
        headers = [(n, v) for n, v in request.headers if n.lower() not in {a.lower() for a in added}]
        event = proxy_event(
            route=route,
            http_method=request.method,
            path=exchange.path,
            query=exchange.query,
            headers=[*headers, *added.items()],
            body=request.body,
            request_context=exchange.context,
            stage_variables=stage.variables,
            binary_media_types=self._definition.binary_media_types,
        )
        lambda_answer = self._call(exchange, function.arn, event, method.integration.timeout_ms)
        # Lambda ran the function: its own status is 200 whatever the function did.
        exchange.integration["lambda_status"] = 200
        if lambda_answer.error is not None or lambda_answer.timed_out:
            exchange.integration["error"] = (lambda_answer.error or {}).get("errorMessage", "Task timed out")
            raise function_failed()
        try:
            proxied: ProxyAnswer = proxy_answer(
                lambda_answer.payload,
                binary_media_types=self._definition.binary_media_types,
                accept=exchange.headers.get("accept"),
            )
        except GatewayError:
            exchange.integration["error"] = (
                "Execution failed due to configuration error: Malformed Lambda proxy response"
            )
            raise
        exchange.integration["status"] = proxied.status
        return HttpResponse(
            proxied.status, (*proxied.headers, *self._ids(exchange, traced=True)), proxied.body
        )

    def _call(
        self, exchange: _Exchange, function_arn: str, event: dict[str, Any], timeout_ms: int
    ) -> LambdaAnswer:
        """Invoke the function, giving up after the integration's timeout, as API Gateway does while the
        function runs on."""
        done = threading.Event()
        outcome: list[LambdaAnswer | BaseException] = []

        def run() -> None:
            try:
                outcome.append(self._invoke(function_arn, event))
            except BaseException as error:  # handed to the request thread, which answers 502
                outcome.append(error)
            finally:
                done.set()

        started = self._clock.monotonic()
        threading.Thread(target=run, name=f"invoke-{exchange.context['requestId']}", daemon=True).start()
        finished = done.wait(self._integration_time_scale.seconds(timeout_ms / 1000))
        exchange.integration["latency"] = round((self._clock.monotonic() - started) * 1000)
        if not finished:
            exchange.integration["error"] = "Execution failed due to a timeout error"
            raise integration_timeout()
        result = outcome[0]
        if isinstance(result, BaseException):
            logger.error("invoking %s failed", function_arn, exc_info=result)
            exchange.integration["error"] = f"Lambda invocation failed: {result!r}"
            raise function_failed()
        return result

    def _ids(self, exchange: _Exchange, *, traced: bool) -> list[tuple[str, str]]:
        ids = [
            ("x-amzn-RequestId", str(exchange.context["requestId"])),
            ("x-amz-apigw-id", str(exchange.context["extendedRequestId"])),
        ]
        if traced:
            ids.append(("X-Amzn-Trace-Id", f"Root={exchange.trace_id};Sampled=0"))
        return ids

    def _refuse(
        self, exchange: _Exchange, error: GatewayError, error_context: dict[str, Any]
    ) -> HttpResponse:
        stage_variables = exchange.stage.variables if exchange.stage else {}
        gateway = answer(
            error,
            self._definition.gateway_responses,
            context={**exchange.context, "error": error_context},
            stage_variables=stage_variables,
            request=exchange.request_values(),
            accept=exchange.headers.get("accept"),
        )
        return HttpResponse(
            gateway.status, (*gateway.headers, *self._ids(exchange, traced=False)), gateway.body
        )

    def _record(
        self, exchange: _Exchange, response: HttpResponse, error: dict[str, Any], started: float
    ) -> None:
        context = exchange.context
        request_id = str(context["requestId"])
        integration = exchange.integration
        entry = {
            **context,
            "requestId": request_id if _UUID.match(request_id) else REPLACED_REQUEST_ID,
            "status": response.status,
            "responseLength": len(response.body),
            "responseLatency": round((self._clock.monotonic() - started) * 1000),
            "error": {
                "message": error.get("message"),
                "messageString": error.get("messageString"),
                "responseType": error.get("responseType"),
                "validationErrorString": error.get("validationErrorString"),
            },
            "integration": {
                "status": integration.get("status"),
                "latency": integration.get("latency"),
                "error": integration.get("error"),
                # For Lambda proxy, the status Lambda itself answered: 200 once it ran the function.
                "integrationStatus": integration.get("lambda_status"),
            },
            "integrationLatency": integration.get("latency"),
            "integrationStatus": integration.get("lambda_status"),
            "integrationErrorMessage": integration.get("error"),
            "xrayTraceId": exchange.trace_id if exchange.stage and exchange.stage.tracing else None,
        }
        with self._log_lock:
            self._log.append(_LogEntry(exchange.stage, entry))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: LocalRestApi) -> None:
        self.api = api
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        # API Gateway names no server software.
        return "LocalApiGateway"

    def log_message(self, format: str, *args: Any) -> None:
        # Requests are in the API's access log.
        pass

    def _read_body(self) -> tuple[bytes, int | None]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                length = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    self.rfile.readline()
                    return b"".join(chunks), None
                size += length
                if size > MAX_PAYLOAD_BYTES:
                    self.close_connection = True
                    return b"", size
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            # Not read: the connection closes after the refusal.
            self.close_connection = True
            return b"", length
        return self.rfile.read(length), None

    def _serve(self) -> None:
        body, declared = self._read_body()
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=tuple(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            declared_length=declared,
        )
        response = self.server.api.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    # BaseHTTPRequestHandler calls do_<VERB>: the seven verbs an API Gateway method can have.
    def do_DELETE(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()
