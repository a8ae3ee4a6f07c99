"""The REST API a program declares, read from its resources into typed values the local gateway serves.

Every path, method, model, validator, key, usage plan, gateway response and Lambda permission comes from
the resources (`aws:apigateway/*` and `aws:lambda/permission:Permission`, inputs as Pulumi gives them); the
rehearsal writes none of them a second time. What would change how a request is answered but is not
emulated (Lambda authorizers, resource policies, integrations other than Lambda proxy,
integration credentials) raises ApiDefinitionError instead of being served as if it were absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tools.mockrun import Resource

REST_API = "aws:apigateway/restApi:RestApi"
API_RESOURCE = "aws:apigateway/resource:Resource"
METHOD = "aws:apigateway/method:Method"
INTEGRATION = "aws:apigateway/integration:Integration"
MODEL = "aws:apigateway/model:Model"
VALIDATOR = "aws:apigateway/requestValidator:RequestValidator"
GATEWAY_RESPONSE = "aws:apigateway/response:Response"
DEPLOYMENT = "aws:apigateway/deployment:Deployment"
STAGE = "aws:apigateway/stage:Stage"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
USAGE_PLAN_KEY = "aws:apigateway/usagePlanKey:UsagePlanKey"
API_KEY = "aws:apigateway/apiKey:ApiKey"
PERMISSION = "aws:lambda/permission:Permission"
AUTHORIZER = "aws:apigateway/authorizer:Authorizer"
# An authorizer's app clients are the pools' (the audience of their ID tokens).
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
# Declared, and without effect on how the stage answers a request: why, per type.
WITHOUT_EFFECT = {
    "aws:apigateway/account:Account": "the region's CloudWatch logging role, an account setting",
    # A proxy integration passes the function's answer through; method and integration responses only
    # shape non-proxy integrations (developer guide, "Set up Lambda proxy integrations").
    "aws:apigateway/methodResponse:MethodResponse": "not used by Lambda proxy integrations",
    "aws:apigateway/integrationResponse:IntegrationResponse": "not used by Lambda proxy integrations",
    "aws:apigateway/documentationPart:DocumentationPart": "documentation only",
    "aws:apigateway/documentationVersion:DocumentationVersion": "documentation only",
}
READ = frozenset(
    {
        REST_API,
        API_RESOURCE,
        METHOD,
        INTEGRATION,
        MODEL,
        VALIDATOR,
        GATEWAY_RESPONSE,
        DEPLOYMENT,
        STAGE,
        METHOD_SETTINGS,
        USAGE_PLAN,
        USAGE_PLAN_KEY,
        API_KEY,
        AUTHORIZER,
    }
)
# A method of every verb (developer guide, "Set up an HTTP method").
ANY_METHOD = "ANY"
# Integration.timeoutInMillis: "The default value is 29,000 milliseconds" (botocore apigateway model).
DEFAULT_TIMEOUT_MS = 29_000
# Integration URIs of Lambda functions (developer guide, "Set up Lambda proxy integrations"):
# arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function arn}/invocations
_LAMBDA_URI = re.compile(
    r"^arn:[a-z-]+:apigateway:[a-z0-9-]+:lambda:path/2015-03-31/functions/(.+)/invocations$"
)
_PATH_VARIABLE = re.compile(r"^\{([A-Za-z0-9._-]+)(\+?)\}$")
_FUNCTION_ARN = re.compile(r"^arn:[a-z-]+:lambda:([a-z0-9-]+):(\d{12}):function:([^:]+)(?::([^:]+))?$")
_PARTIAL_ARN = re.compile(r"^(\d{12}):function:([^:]+)(?::([^:]+))?$")
_FUNCTION_NAME = re.compile(r"^([^:]+)(?::([^:]+))?$")


class ApiDefinitionError(ValueError):
    """The resources declare an API the local gateway cannot serve as API Gateway would."""


@dataclass(frozen=True)
class FunctionRef:
    """One Lambda function, version or alias, however it was named (name, partial ARN or ARN)."""

    region: str
    account_id: str
    name: str
    qualifier: str | None = None

    @property
    def arn(self) -> str:
        base = f"arn:{partition(self.region)}:lambda:{self.region}:{self.account_id}:function:{self.name}"
        return f"{base}:{self.qualifier}" if self.qualifier else base


def method_arn(*, region: str, account_id: str, api_id: str, stage: str, verb: str, path: str) -> str:
    """The ARN of a method on a stage, what a Lambda permission's SourceArn and an IAM caller's
    execute-api:Invoke are matched with (developer guide, "Control access to a REST API with IAM
    permissions"): `arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>`."""
    api = f"arn:{partition(region)}:execute-api:{region}:{account_id}:{api_id}"
    return f"{api}/{stage}/{verb}/{path.lstrip('/')}"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def function_ref(named: str, *, region: str, account_id: str, qualifier: str | None = None) -> FunctionRef:
    """The function a name, partial ARN or ARN stands for (the three forms Lambda's AddPermission takes,
    botocore lambda model, FunctionName), in `region` and `account_id` unless the ARN says otherwise."""
    if match := _FUNCTION_ARN.match(named):
        found = FunctionRef(match[1], match[2], match[3], match[4])
    elif match := _PARTIAL_ARN.match(named):
        found = FunctionRef(region, match[1], match[2], match[3])
    elif match := _FUNCTION_NAME.match(named):
        found = FunctionRef(region, account_id, match[1], match[2])
    else:
        raise ApiDefinitionError(f"{named!r} names no Lambda function")
    if qualifier and found.qualifier and qualifier != found.qualifier:
        raise ApiDefinitionError(f"{named!r} and qualifier {qualifier!r} name different versions")
    return FunctionRef(found.region, found.account_id, found.name, found.qualifier or qualifier)


@dataclass(frozen=True)
class Model:
    name: str
    content_type: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Validator:
    body: bool
    parameters: bool


@dataclass(frozen=True)
class Integration:
    """A Lambda proxy integration: the function URI (stage variables not yet substituted), its timeout."""

    function_uri: str
    timeout_ms: int


# Method authorization types the local gateway applies (API Gateway API reference, Method.authorizationType).
NO_AUTHORIZATION, IAM_AUTHORIZATION, COGNITO_AUTHORIZATION = "NONE", "AWS_IAM", "COGNITO_USER_POOLS"
AUTHORIZATIONS = (NO_AUTHORIZATION, IAM_AUTHORIZATION, COGNITO_AUTHORIZATION)
_TOKEN_HEADER = re.compile(r"^method\.request\.header\.([A-Za-z0-9-]+)$")


@dataclass(frozen=True)
class CognitoAuthorizer:
    id: str
    # The request header the token is read from.
    header: str
    # Pool id -> its app client ids.
    pools: Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class Method:
    http_method: str
    # One of AUTHORIZATIONS.
    authorization: str
    api_key_required: bool
    validator: Validator | None
    # Content type (or `$default`) -> model name.
    request_models: Mapping[str, str]
    # method.request.{header,querystring,path}.{name} -> required.
    request_parameters: Mapping[str, bool]
    integration: Integration
    authorizer: CognitoAuthorizer | None = None


@dataclass(frozen=True)
class PathPart:
    """One segment of a resource path: a literal, a `{variable}` or a greedy `{variable+}`."""

    text: str
    variable: str | None
    greedy: bool

    @classmethod
    def parse(cls, text: str) -> PathPart:
        if match := _PATH_VARIABLE.match(text):
            return cls(text, match[1], bool(match[2]))
        return cls(text, None, False)


@dataclass(frozen=True)
class ApiResource:
    id: str
    path: str
    parts: tuple[PathPart, ...]
    methods: Mapping[str, Method]


@dataclass(frozen=True)
class Route:
    resource: ApiResource
    method: Method
    path_parameters: Mapping[str, str]


@dataclass(frozen=True)
class GatewayResponse:
    type: str
    status: int | None
    templates: Mapping[str, str]
    parameters: Mapping[str, str]


@dataclass(frozen=True)
class Throttle:
    """A token bucket: `burst` tokens at most, refilled at `rate` per second."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Quota:
    limit: int
    period: str
    # "The number of requests subtracted from the given limit in the initial time period" (botocore
    # apigateway model, QuotaSettings).
    offset: int


@dataclass(frozen=True)
class UsagePlan:
    id: str
    stages: frozenset[str]
    throttle: Throttle | None
    quota: Quota | None
    # (stage, "/resource/path/METHOD") -> that method's throttle for each key of the plan.
    method_throttles: Mapping[tuple[str, str], Throttle]
    key_ids: frozenset[str]


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    # The value the program sets; None when API Gateway generates one.
    value: str | None
    enabled: bool


@dataclass(frozen=True)
class Stage:
    name: str
    deployment_id: str
    variables: Mapping[str, str]
    access_log_format: str | None
    tracing: bool
    # Method settings' method path ("*/*" or "resource/path/METHOD") -> throttle across all callers.
    method_throttles: Mapping[str, Throttle]


@dataclass(frozen=True)
class Permission:
    """A statement Lambda's AddPermission put in a function's resource policy."""

    function: FunctionRef
    principal: str
    action: str
    source_arn: str | None
    source_account: str | None


@dataclass(frozen=True)
class RestApiDefinition:
    id: str
    api_key_source: str
    binary_media_types: tuple[str, ...]
    resources: tuple[ApiResource, ...]
    models: Mapping[str, Model]
    gateway_responses: Mapping[str, GatewayResponse]
    stages: Mapping[str, Stage]
    usage_plans: tuple[UsagePlan, ...]
    api_keys: Mapping[str, ApiKey]
    permissions: tuple[Permission, ...]

    def route(self, path: str, http_method: str) -> Route | None:
        """The resource and method API Gateway picks for a path below the stage: literal segments before
        `{variables}` before a greedy `{variable+}`, a method of the request's verb before ANY."""
        # Trailing slashes are ignored (LocalStack's router, validated against API Gateway).
        trimmed = path.rstrip("/")
        segments = [unquote(s) for s in trimmed.split("/")[1:]] if trimmed else []
        best: tuple[tuple[int, ...], Route] | None = None
        for resource in self.resources:
            method = resource.methods.get(http_method) or resource.methods.get(ANY_METHOD)
            if method is None:
                continue
            matched = _match(resource.parts, segments)
            if matched is None:
                continue
            rank, parameters = matched
            if best is None or rank < best[0]:
                best = (rank, Route(resource, method, parameters))
        return best[1] if best else None

    def usage_plans_of(self, stage: str) -> tuple[UsagePlan, ...]:
        return tuple(plan for plan in self.usage_plans if stage in plan.stages)


def _match(
    parts: Sequence[PathPart], segments: Sequence[str]
) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """How specifically `parts` match `segments` (lower is more specific), with the path parameters."""
    rank: list[int] = []
    parameters: dict[str, str] = {}
    for index, part in enumerate(parts):
        if part.greedy:
            rest = segments[index:]
            if index != len(parts) - 1 or not rest:
                return None
            assert part.variable is not None
            parameters[part.variable] = "/".join(rest)
            return (*rank, 2), parameters
        if index >= len(segments):
            return None
        if part.variable is None:
            if part.text != segments[index]:
                return None
            rank.append(0)
        else:
            parameters[part.variable] = segments[index]
            rank.append(1)
    if len(segments) != len(parts):
        return None
    return tuple(rank), parameters


def _throttle(settings: Mapping[str, Any] | None, rate_key: str, burst_key: str) -> Throttle | None:
    # A bucket needs both numbers; -1 means "not set" (Pulumi's MethodSettings defaults). AWS does not
    # document a throttle with only one of the two, so the rehearsal throttles only when both are given.
    if not settings:
        return None
    rate, burst = settings.get(rate_key), settings.get(burst_key)
    if rate is None or burst is None or rate < 0 or burst < 0:
        return None
    return Throttle(float(rate), int(burst))


def _one(resources: Sequence[Resource], type_: str) -> Resource:
    found = [r for r in resources if r.type == type_]
    if len(found) != 1:
        raise ApiDefinitionError(f"the local gateway serves one REST API; the resources declare {len(found)}")
    return found[0]


def _refuse_unsupported(resources: Sequence[Resource]) -> None:
    unknown = sorted(
        {
            r.type
            for r in resources
            if r.type.startswith("aws:apigateway/") and r.type not in READ and r.type not in WITHOUT_EFFECT
        }
    )
    if unknown:
        raise ApiDefinitionError(f"the local gateway does not emulate {', '.join(unknown)}")


def _path_of(resource_id: str, by_id: Mapping[str, Resource], root_id: str) -> tuple[str, ...]:
    parts: list[str] = []
    seen: set[str] = set()
    current = resource_id
    while current != root_id:
        if current in seen or current not in by_id:
            raise ApiDefinitionError(f"resource {resource_id!r} does not lead to the API's root")
        seen.add(current)
        parts.append(str(by_id[current].inputs["pathPart"]))
        current = str(by_id[current].inputs["parentId"])
    return tuple(reversed(parts))


def _integration(resource: Resource, where: str) -> Integration:
    inputs = resource.inputs
    if inputs.get("type") != "AWS_PROXY":
        raise ApiDefinitionError(
            f"{where}: integration type {inputs.get('type')!r} is not emulated (AWS_PROXY is)"
        )
    if inputs.get("credentials"):
        raise ApiDefinitionError(
            f"{where}: integration credentials (a role for API Gateway) are not emulated"
        )
    # "For Lambda integrations, you must set the integration method to POST" (botocore apigateway model).
    if inputs.get("integrationHttpMethod") != "POST":
        raise ApiDefinitionError(f"{where}: a Lambda integration must call the function with POST")
    uri = str(inputs.get("uri", ""))
    if not _LAMBDA_URI.match(uri):
        raise ApiDefinitionError(f"{where}: {uri!r} is not a Lambda function's invocation URI")
    return Integration(uri, int(inputs.get("timeoutMilliseconds") or DEFAULT_TIMEOUT_MS))


def _authorizers(resources: Sequence[Resource], api_id: str) -> dict[str, CognitoAuthorizer]:
    clients: dict[str, set[str]] = {}
    for client in resources:
        if client.type == USER_POOL_CLIENT:
            clients.setdefault(str(client.inputs["userPoolId"]), set()).add(client.id)
    found = {}
    for r in resources:
        if r.type != AUTHORIZER or r.inputs.get("restApi") != api_id:
            continue
        where = f"authorizer {r.name}"
        if r.inputs.get("type") != COGNITO_AUTHORIZATION:
            raise ApiDefinitionError(
                f"{where}: type {r.inputs.get('type')} is not emulated (COGNITO_USER_POOLS is)"
            )
        if r.inputs.get("identityValidationExpression"):
            raise ApiDefinitionError(f"{where}: identity validation expressions are not emulated")
        # Pulumi's Authorizer identity_source: "Defaults to `method.request.header.Authorization`".
        source = str(r.inputs.get("identitySource") or "method.request.header.Authorization")
        header = _TOKEN_HEADER.match(source)
        if header is None:
            raise ApiDefinitionError(f"{where}: identity source {source!r} is not a request header")
        pools = {}
        for arn in r.inputs.get("providerArns") or []:
            # arn:<partition>:cognito-idp:<region>:<account>:userpool/<pool id>
            if ":userpool/" not in str(arn):
                raise ApiDefinitionError(f"{where}: {arn!r} is not a Cognito user pool ARN")
            pool_id = str(arn).rsplit("/", 1)[1]
            pools[pool_id] = frozenset(clients.get(pool_id, set()))
        found[r.id] = CognitoAuthorizer(r.id, header[1].lower(), pools)
    return found


def function_of(uri: str, stage_variables: Mapping[str, str]) -> str:
    """The function ARN in an integration URI, with `${stageVariables.name}` substituted."""
    match = _LAMBDA_URI.match(uri)
    if match is None:
        raise ApiDefinitionError(f"{uri!r} is not a Lambda function's invocation URI")
    return re.sub(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}", lambda m: stage_variables.get(m[1], ""), match[1])


def read_definition(resources: Sequence[Resource], *, region: str, account_id: str) -> RestApiDefinition:
    """The one REST API among `resources` (which may hold the rest of the stack too), as typed values."""
    _refuse_unsupported(resources)
    api = _one(resources, REST_API)
    api_id = api.id
    if api.inputs.get("policy"):
        raise ApiDefinitionError("a REST API resource policy is not emulated")
    api_key_source = str(api.inputs.get("apiKeySource") or "HEADER")
    if api_key_source != "HEADER":
        raise ApiDefinitionError(f"API key source {api_key_source} is not emulated (HEADER is)")

    def of_api(type_: str, key: str = "restApi") -> list[Resource]:
        return [r for r in resources if r.type == type_ and r.inputs.get(key) == api_id]

    root_id = str(api.outputs["rootResourceId"])
    path_resources = {r.id: r for r in of_api(API_RESOURCE)}
    validators = {
        r.id: Validator(
            bool(r.inputs.get("validateRequestBody")), bool(r.inputs.get("validateRequestParameters"))
        )
        for r in of_api(VALIDATOR)
    }
    models = {
        str(r.inputs.get("name") or r.outputs.get("name")): Model(
            str(r.inputs.get("name") or r.outputs.get("name")),
            str(r.inputs.get("contentType") or "application/json"),
            json.loads(r.inputs["schema"]),
        )
        for r in of_api(MODEL)
    }
    integrations = {
        (str(r.inputs["resourceId"]), str(r.inputs["httpMethod"]).upper()): r for r in of_api(INTEGRATION)
    }

    authorizers = _authorizers(resources, api_id)
    methods: dict[str, dict[str, Method]] = {}
    for r in of_api(METHOD):
        inputs = r.inputs
        resource_id, verb = str(inputs["resourceId"]), str(inputs["httpMethod"]).upper()
        where = f"{verb} on resource {resource_id}"
        authorization = str(inputs.get("authorization") or NO_AUTHORIZATION)
        if authorization not in AUTHORIZATIONS:
            raise ApiDefinitionError(
                f"{where}: authorization {authorization} is not emulated ({', '.join(AUTHORIZATIONS)} are)"
            )
        authorizer = None
        if authorization == COGNITO_AUTHORIZATION:
            authorizer = authorizers.get(str(inputs.get("authorizerId")))
            if authorizer is None:
                raise ApiDefinitionError(
                    f"{where}: authorizer {inputs.get('authorizerId')!r} is not declared"
                )
            if inputs.get("authorizationScopes"):
                raise ApiDefinitionError(f"{where}: OAuth scopes (access tokens) are not emulated")
        if (resource_id, verb) not in integrations:
            # API Gateway refuses to deploy a method without an integration.
            raise ApiDefinitionError(f"{where}: the method has no integration")
        validator_id = inputs.get("requestValidatorId")
        if validator_id and validator_id not in validators:
            raise ApiDefinitionError(f"{where}: request validator {validator_id!r} is not declared")
        request_models = dict(inputs.get("requestModels") or {})
        for model_name in request_models.values():
            if model_name not in models:
                raise ApiDefinitionError(f"{where}: model {model_name!r} is not declared")
        methods.setdefault(resource_id, {})[verb] = Method(
            http_method=verb,
            authorization=authorization,
            api_key_required=bool(inputs.get("apiKeyRequired")),
            validator=validators[validator_id] if validator_id else None,
            request_models=request_models,
            request_parameters={str(k): bool(v) for k, v in (inputs.get("requestParameters") or {}).items()},
            integration=_integration(integrations[(resource_id, verb)], where),
            authorizer=authorizer,
        )

    api_resources = []
    for resource_id in [root_id, *path_resources]:
        parts = _path_of(resource_id, path_resources, root_id)
        api_resources.append(
            ApiResource(
                id=resource_id,
                path="/" + "/".join(parts),
                parts=tuple(PathPart.parse(p) for p in parts),
                methods=methods.get(resource_id, {}),
            )
        )

    responses = {
        str(r.inputs["responseType"]): GatewayResponse(
            type=str(r.inputs["responseType"]),
            status=int(r.inputs["statusCode"]) if r.inputs.get("statusCode") else None,
            templates=dict(r.inputs.get("responseTemplates") or {}),
            parameters=dict(r.inputs.get("responseParameters") or {}),
        )
        for r in of_api(GATEWAY_RESPONSE, key="restApiId")
    }

    stage_throttles: dict[str, dict[str, Throttle]] = {}
    for r in of_api(METHOD_SETTINGS):
        throttle = _throttle(r.inputs.get("settings"), "throttlingRateLimit", "throttlingBurstLimit")
        if throttle:
            stage_throttles.setdefault(str(r.inputs["stageName"]), {})[str(r.inputs["methodPath"])] = throttle
    stages = {}
    for r in of_api(STAGE):
        inputs = r.inputs
        if inputs.get("canarySettings"):
            raise ApiDefinitionError(f"stage {inputs['stageName']}: canary deployments are not emulated")
        name = str(inputs["stageName"])
        stages[name] = Stage(
            name=name,
            deployment_id=str(inputs["deployment"]),
            variables=dict(inputs.get("variables") or {}),
            access_log_format=(inputs.get("accessLogSettings") or {}).get("format"),
            tracing=bool(inputs.get("xrayTracingEnabled")),
            method_throttles=stage_throttles.get(name, {}),
        )
    if not stages:
        raise ApiDefinitionError("the REST API has no stage to serve")

    plan_keys: dict[str, set[str]] = {}
    for r in resources:
        if r.type == USAGE_PLAN_KEY:
            plan_keys.setdefault(str(r.inputs["usagePlanId"]), set()).add(str(r.inputs["keyId"]))
    plans = []
    for r in resources:
        if r.type != USAGE_PLAN:
            continue
        mine = [s for s in r.inputs.get("apiStages") or [] if s.get("apiId") == api_id]
        if not mine:
            continue
        quota = r.inputs.get("quotaSettings")
        plans.append(
            UsagePlan(
                id=r.id,
                stages=frozenset(str(s["stage"]) for s in mine),
                throttle=_throttle(r.inputs.get("throttleSettings"), "rateLimit", "burstLimit"),
                quota=Quota(int(quota["limit"]), str(quota["period"]), int(quota.get("offset") or 0))
                if quota and quota.get("limit") is not None
                else None,
                method_throttles={
                    (str(s["stage"]), str(t["path"])): throttle
                    for s in mine
                    for t in s.get("throttles") or []
                    if (throttle := _throttle(t, "rateLimit", "burstLimit"))
                },
                key_ids=frozenset(plan_keys.get(r.id, set())),
            )
        )
    keys = {
        r.id: ApiKey(
            id=r.id,
            name=str(r.inputs.get("name") or r.outputs.get("name") or r.id),
            value=r.inputs.get("value"),
            # Pulumi's ApiKey `enabled`: "Defaults to true".
            enabled=r.inputs.get("enabled", True) is not False,
        )
        for r in resources
        if r.type == API_KEY
    }
    permissions = tuple(
        Permission(
            function=function_ref(
                str(r.inputs["function"]),
                region=region,
                account_id=account_id,
                qualifier=r.inputs.get("qualifier"),
            ),
            principal=str(r.inputs.get("principal", "")),
            action=str(r.inputs.get("action", "")),
            source_arn=r.inputs.get("sourceArn"),
            source_account=r.inputs.get("sourceAccount"),
        )
        for r in resources
        if r.type == PERMISSION
    )
    return RestApiDefinition(
        id=api_id,
        api_key_source=api_key_source,
        binary_media_types=tuple(api.inputs.get("binaryMediaTypes") or ()),
        resources=tuple(api_resources),
        models=models,
        gateway_responses=responses,
        stages=stages,
        usage_plans=tuple(plans),
        api_keys=keys,
        permissions=permissions,
    )
