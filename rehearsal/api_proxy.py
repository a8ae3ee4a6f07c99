"""Lambda proxy integration, REST API payload format 1.0: the event API Gateway sends a function and how
it turns the function's answer into the HTTP response.

Developer guide, "Set up Lambda proxy integrations" (input and output formats); the sample event is
`tests/functions/events/apigateway-rest-proxy.json`. Where the guide leaves a detail open, the
behaviour follows LocalStack's parity-tested REST API provider (header handling, which single value of
a repeated parameter is kept, which answers are malformed).
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rehearsal.api_definition import Route
from rehearsal.api_responses import GatewayError, function_failed
from rehearsal.iam_policy import glob_matches

# Hop-by-hop and framing headers API Gateway does not hand on, even to proxy integrations.
DROPPED_HEADERS = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Content-Length",
        "Content-MD5",
        "Expect",
        "Max-Forwards",
        "Proxy-Authenticate",
        "Server",
        "TE",
        "Transfer-Encoding",
        "Trailer",
        "Upgrade",
        "WWW-Authenticate",
    )
)
# "API Gateway includes a Content-Type header for all integration responses. By default, the content
# type is application/json" (developer guide, "Amazon API Gateway important notes").
DEFAULT_RESPONSE_TYPE = "application/json"
_ANSWER_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})


@dataclass(frozen=True)
class LambdaAnswer:
    """What a synchronous invocation gave: the function's result (JSON-decoded), or its error payload
    (`errorMessage`, `errorType`, ...); `timed_out` when the function ran past its own timeout."""

    payload: Any | None
    error: dict[str, Any] | None
    timed_out: bool
    duration_ms: float


def is_binary(media_type: str | None, binary_media_types: Sequence[str]) -> bool:
    """Whether a media type is one of the API's binaryMediaTypes (`*` matches any run, `*/*` all)."""
    if not media_type:
        return False
    bare = media_type.split(";")[0].strip().lower()
    return any(glob_matches(pattern.lower(), bare) for pattern in binary_media_types)


def _single_and_multi(
    pairs: Sequence[tuple[str, str]],
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    # A repeated name keeps its last value in the single-value map and all of them in the multi-value one.
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return (single or None), (multi or None)


def proxy_event(
    *,
    route: Route,
    http_method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Sequence[tuple[str, str]],
    body: bytes,
    request_context: Mapping[str, Any],
    stage_variables: Mapping[str, str],
    binary_media_types: Sequence[str],
) -> dict[str, Any]:
    """The event of one request. `headers` as the client sent them plus those API Gateway adds."""
    handed_on = [(name, value) for name, value in headers if name.lower() not in DROPPED_HEADERS]
    single_headers, multi_headers = _single_and_multi(handed_on)
    single_query, multi_query = _single_and_multi(query)
    content_type = next((v for n, v in reversed(handed_on) if n.lower() == "content-type"), None)
    encoded = bool(body) and is_binary(content_type, binary_media_types)
    if not body:
        text = None
    elif encoded:
        text = base64.b64encode(body).decode("ascii")
    else:
        # Without a binary media type the payload is "handled as UTF-8 encoded" text (developer guide,
        # "Working with binary media types for REST APIs").
        text = body.decode("utf-8", errors="replace")
    return {
        "resource": route.resource.path,
        "path": path,
        "httpMethod": http_method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(route.path_parameters) or None,
        "stageVariables": dict(stage_variables) or None,
        # A copy: the function may change its event, the gateway's record of the request stays.
        "requestContext": copy.deepcopy(dict(request_context)),
        "body": text,
        "isBase64Encoded": encoded,
    }


@dataclass(frozen=True)
class ProxyAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise function_failed()


def _status(value: Any) -> int:
    if value is None:
        return 200
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise function_failed()
    try:
        status = int(value)
    except ValueError:
        raise function_failed() from None
    if not 100 <= status <= 599:
        raise function_failed()
    return status


def proxy_answer(payload: Any, *, binary_media_types: Sequence[str], accept: str | None) -> ProxyAnswer:
    """The HTTP response for a function's result, or GatewayError 502 when it is not in the output
    format ({"isBase64Encoded", "statusCode", "headers", "multiValueHeaders", "body"}, nothing else)."""
    if not isinstance(payload, dict) or not set(payload) <= _ANSWER_KEYS:
        raise function_failed()
    status = _status(payload.get("statusCode"))
    headers = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    body = payload.get("body")
    encoded = payload.get("isBase64Encoded", False)
    if not isinstance(headers, dict) or not isinstance(multi, dict) or not isinstance(encoded, bool | None):
        raise function_failed()
    if body is not None and not isinstance(body, str):
        raise function_failed()
    # Both maps merge into one list; a name in both keeps the multiValueHeaders values ("Output format").
    merged: dict[str, list[str]] = {name: [_header_value(value)] for name, value in headers.items()}
    for name, values in multi.items():
        merged[name] = [_header_value(v) for v in (values if isinstance(values, list) else [values])]
    if not any(name.lower() == "content-type" for name in merged):
        merged["Content-Type"] = [DEFAULT_RESPONSE_TYPE]
    content_type = next((v[0] for n, v in merged.items() if n.lower() == "content-type" and v), None)
    raw = (body or "").encode("utf-8")
    # A base64 body is turned back into bytes only where the API treats the answer as binary: the first
    # Accept media type or the answer's Content-Type is a binary media type ("Working with binary media
    # types for REST APIs"); otherwise the caller gets the base64 text.
    wanted = (accept or "").split(",")[0]
    if encoded and (is_binary(wanted, binary_media_types) or is_binary(content_type, binary_media_types)):
        try:
            raw = base64.b64decode(body or "", validate=True)
        except binascii.Error:
            # "when base64 decoding fails on binary data when binary support is enacted" (Gateway
            # response types, API_CONFIGURATION_ERROR).
            raise GatewayError(
                "API_CONFIGURATION_ERROR", "Internal server error", "InternalServerErrorException"
            ) from None
    return ProxyAnswer(status, tuple((n, v) for n, values in merged.items() for v in values), raw)
