"""API Gateway's own answers (gateway responses): which type, status, headers and body a refusal gets.

Developer guide, "Gateway responses in API Gateway" and "Gateway response types": each refusal has a
type with a default status; the API's gateway response of that type, if declared, sets the status,
header mappings and body templates; a type without one falls back to DEFAULT_4XX or DEFAULT_5XX, whose
status code, when set, replaces the status of every 4XX (5XX) type without a response of its own.
Templates are not VTL: only `$context.*` and `$stageVariables.*` are substituted, and
`$context.error.messageString` is `$context.error.message` in double quotes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rehearsal.api_definition import ApiDefinitionError, GatewayResponse

JSON = "application/json"
# The body of a gateway response nobody customised ("Setting up gateway responses to customize error
# responses": by default `{ "message": ... }`).
DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
# Default status codes of the gateway response types (developer guide, "Gateway response types").
DEFAULT_STATUS = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_PARAMETERS": 400,
    "BAD_REQUEST_BODY": 400,
    "EXPIRED_TOKEN": 403,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "WAF_FILTERED": 403,
}
DEFAULT_4XX, DEFAULT_5XX = "DEFAULT_4XX", "DEFAULT_5XX"
_VARIABLE = re.compile(r"\$(context|stageVariables)((?:\.[A-Za-z0-9_]+)+)")
_HEADER_KEY = re.compile(r"^gatewayresponse\.header\.(.+)$")
_REQUEST_VALUE = re.compile(r"^method\.request\.(header|querystring|path)\.(.+)$")


class GatewayError(Exception):
    """A request API Gateway answers itself, without (or instead of) the integration's answer.

    `error_type` is the `x-amzn-ErrorType` header API Gateway sends with it.
    """

    def __init__(
        self,
        response_type: str,
        message: str,
        error_type: str,
        *,
        status: int | None = None,
        validation_error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.response_type = response_type
        self.message = message
        self.error_type = error_type
        self.status = status if status is not None else DEFAULT_STATUS[response_type]
        self.validation_error = validation_error


# The refusals the local gateway gives, with API Gateway's messages and error types.
def missing_authentication_token() -> GatewayError:
    # Unknown paths and methods too: "including the cases when the client attempts to invoke an
    # unsupported API method or resource" (Gateway response types).
    return GatewayError(
        "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", "MissingAuthenticationTokenException"
    )


def invalid_api_key() -> GatewayError:
    # "Otherwise, it throws an InvalidKeyParameter exception ... the caller receives a 403 Forbidden
    # response" (developer guide, "Choose an API key source").
    return GatewayError("INVALID_API_KEY", "Forbidden", "ForbiddenException")


# IAM authorization's refusals, as the knowledge-center article "How do I troubleshoot HTTP 403 errors
# from API Gateway?" lists each message with its x-amzn-ErrorType.
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


def signature_mismatch() -> GatewayError:
    return GatewayError("INVALID_SIGNATURE", SIGNATURE_MISMATCH, "InvalidSignatureException")


def signature_expired(message: str) -> GatewayError:
    # "Authentication token expired": InvalidSignatureException, "Signature expired".
    return GatewayError("INVALID_SIGNATURE", message, "InvalidSignatureException")


def incomplete_signature(message: str) -> GatewayError:
    return GatewayError("INVALID_SIGNATURE", message, "IncompleteSignatureException")


def invalid_security_token() -> GatewayError:
    # "The caller used IAM keys that aren't valid".
    return GatewayError(
        "ACCESS_DENIED", "The security token included in the request is invalid.", "AccessDeniedException"
    )


def access_denied(caller_arn: str, resource: str, *, explicit: bool) -> GatewayError:
    message = f"User: {caller_arn} is not authorized to perform: execute-api:Invoke on resource: {resource}"
    return GatewayError(
        "ACCESS_DENIED", message + (" with an explicit deny" if explicit else ""), "AccessDeniedException"
    )


def unauthorized() -> GatewayError:
    # A Cognito authorizer's refusal of a missing or invalid token.
    return GatewayError("UNAUTHORIZED", "Unauthorized", "UnauthorizedException")


def token_expired() -> GatewayError:
    return GatewayError("UNAUTHORIZED", "The incoming token has expired", "UnauthorizedException")


def throttled() -> GatewayError:
    return GatewayError("THROTTLED", "Too Many Requests", "TooManyRequestsException")


def quota_exceeded() -> GatewayError:
    return GatewayError("QUOTA_EXCEEDED", "Limit Exceeded", "LimitExceededException")


def bad_request_body(validation_error: str) -> GatewayError:
    # The message is fixed; the validator's report is only in $context.error.validationErrorString
    # (developer guide, "Test basic request validation").
    return GatewayError(
        "BAD_REQUEST_BODY", "Invalid request body", "BadRequestException", validation_error=validation_error
    )


def bad_request_parameters(missing: list[str]) -> GatewayError:
    message = f"Missing required request parameters: [{', '.join(missing)}]"
    return GatewayError("BAD_REQUEST_PARAMETERS", message, "BadRequestException", validation_error=message)


def request_too_large() -> GatewayError:
    return GatewayError("REQUEST_TOO_LARGE", "Request Too Long", "RequestTooLargeException")


def integration_timeout() -> GatewayError:
    return GatewayError("INTEGRATION_TIMEOUT", "Endpoint request timed out", "InternalServerErrorException")


def function_failed() -> GatewayError:
    # A function error or an answer not in the proxy output format: "API Gateway returns a 502 Bad
    # Gateway error response" (developer guide, "Output format of a Lambda function for proxy integration").
    return GatewayError("DEFAULT_5XX", "Internal server error", "InternalServerErrorException", status=502)


def invalid_permissions() -> GatewayError:
    # Lambda refuses API Gateway the invocation: the execution log says "Execution failed due to
    # configuration error: Invalid permissions on Lambda function" and the caller gets a 500 (LocalStack's
    # parity-tested AWS_PROXY integration answers AccessDenied with 500 too).
    return GatewayError(
        "INTEGRATION_FAILURE", "Internal server error", "InternalServerErrorException", status=500
    )


def lookup(variables: Mapping[str, Any], dotted: str) -> Any:
    """`identity.sourceIp` in a nested map; None if any part is absent."""
    value: Any = variables
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def render(
    template: str, context: Mapping[str, Any], stage_variables: Mapping[str, str], *, absent: str
) -> str:
    """Simple variable substitution of `$context.*` and `$stageVariables.*` (no VTL)."""

    def value(match: re.Match[str]) -> str:
        source: Mapping[str, Any] = context if match[1] == "context" else stage_variables
        found = lookup(source, match[2][1:])
        if found is None:
            return absent
        if isinstance(found, bool):
            return "true" if found else "false"
        return str(found)

    return _VARIABLE.sub(value, template)


@dataclass(frozen=True)
class RequestValues:
    """What a header mapping can read from the method request."""

    headers: Mapping[str, str]  # lower-cased names
    querystring: Mapping[str, str]
    path: Mapping[str, str]


def check_mappings(response: GatewayResponse) -> None:
    """Refuse header mappings the local gateway would not apply as API Gateway does."""
    for key, expression in response.parameters.items():
        if not _HEADER_KEY.match(key):
            raise ApiDefinitionError(f"gateway response {response.type}: {key!r} maps no response header")
        if not (
            (expression.startswith("'") and expression.endswith("'") and len(expression) >= 2)
            or _REQUEST_VALUE.match(expression)
            or expression.startswith(("context.", "stageVariables."))
        ):
            raise ApiDefinitionError(f"gateway response {response.type}: {expression!r} is not a value")


def _mapped(
    expression: str, request: RequestValues, context: Mapping[str, Any], stages: Mapping[str, str]
) -> str:
    if expression.startswith("'"):
        return expression[1:-1]
    if match := _REQUEST_VALUE.match(expression):
        if match[1] == "header":
            return request.headers.get(match[2].lower(), "")
        return (request.querystring if match[1] == "querystring" else request.path).get(match[2], "")
    source, _, dotted = expression.partition(".")
    found = lookup(context if source == "context" else stages, dotted)
    return "" if found is None else str(found)


@dataclass(frozen=True)
class GatewayAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _fallback(status: int) -> str:
    return DEFAULT_5XX if status >= 500 else DEFAULT_4XX


def status_of(error: GatewayError, responses: Mapping[str, GatewayResponse]) -> int:
    own = responses.get(error.response_type)
    if own is not None and own.status is not None:
        return own.status
    fallback = responses.get(_fallback(error.status))
    if own is None and fallback is not None and fallback.status is not None:
        return fallback.status
    return error.status


def answer(
    error: GatewayError,
    responses: Mapping[str, GatewayResponse],
    *,
    context: Mapping[str, Any],
    stage_variables: Mapping[str, str],
    request: RequestValues,
    accept: str | None,
) -> GatewayAnswer:
    """The gateway response for `error`; `context` already holds `error.*` and the request's ids."""
    response = responses.get(error.response_type) or responses.get(_fallback(error.status))
    templates = dict(response.templates) if response and response.templates else {JSON: DEFAULT_TEMPLATE}
    # The first media type of Accept picks the template ("API Gateway honors only the first Accept media
    # type", Working with binary media types); JSON otherwise, as when Content-Type is absent.
    wanted = (accept or "").split(",")[0].split(";")[0].strip().lower()
    content_type = next(
        (t for t in templates if t.lower() == wanted), JSON if JSON in templates else next(iter(templates))
    )
    body = render(templates[content_type], context, stage_variables, absent="")
    headers = [("Content-Type", content_type)]
    for key, expression in (response.parameters if response else {}).items():
        name = key.removeprefix("gatewayresponse.header.")
        headers.append((name, _mapped(expression, request, context, stage_variables)))
    headers.append(("x-amzn-ErrorType", error.error_type))
    return GatewayAnswer(status_of(error, responses), tuple(headers), body.encode())
