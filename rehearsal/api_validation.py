"""Basic request validation as API Gateway does it before the integration runs.

Developer guide, "Enable request validation in API Gateway": a validator checks that required request
parameters are present and non-blank, and that the body adheres to the method's model, a JSON Schema
draft 4 document. The model is picked by the request's Content-Type (`application/json` when the header
is absent, "Amazon API Gateway API request and response data mapping reference"), `$default` standing for
any type; a body no model matches is not validated (passthrough decides, and a proxy integration passes
it through). Models may `$ref` each other by `https://apigateway.amazonaws.com/restapis/{id}/models/{name}`
("Working with models and mapping templates").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from rehearsal.api_definition import Method, Model
from rehearsal.api_responses import bad_request_body, bad_request_parameters

DEFAULT_CONTENT_TYPE = "application/json"
ANY_CONTENT_TYPE = "$default"


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or DEFAULT_CONTENT_TYPE).split(";")[0].strip().lower()


def _refuse_constant(name: str) -> Any:
    # JSON has no NaN or Infinity; Python's parser would take them.
    raise ValueError(f"{name} is not JSON")


class RequestValidator:
    """The API's models, compiled once; `check` raises the gateway's 400 refusals."""

    def __init__(self, models: Mapping[str, Model], api_id: str) -> None:
        registry: Registry[Any] = Registry().with_resources(
            (
                f"https://apigateway.amazonaws.com/restapis/{api_id}/models/{model.name}",
                DRAFT4.create_resource(dict(model.schema)),
            )
            for model in models.values()
        )
        for model in models.values():
            Draft4Validator.check_schema(model.schema)
        self._validators = {
            name: Draft4Validator(dict(model.schema), registry=registry) for name, model in models.items()
        }

    def check(
        self,
        method: Method,
        *,
        content_type: str | None,
        body: bytes,
        headers: Mapping[str, str],
        querystring: Mapping[str, str],
        path: Mapping[str, str],
    ) -> None:
        """`headers` keyed by lower-cased name. Parameters are checked before the body."""
        validator = method.validator
        if validator is None:
            return
        if validator.parameters:
            missing = []
            for name, required in sorted(method.request_parameters.items()):
                if not required:
                    continue
                location, _, parameter = name.removeprefix("method.request.").partition(".")
                values = {"header": headers, "querystring": querystring, "path": path}.get(location, {})
                key = parameter.lower() if location == "header" else parameter
                if not (values.get(key) or "").strip():
                    missing.append(parameter)
            if missing:
                raise bad_request_parameters(missing)
        if not validator.body:
            return
        model = method.request_models.get(media_type(content_type)) or method.request_models.get(
            ANY_CONTENT_TYPE
        )
        if model is None:
            return
        try:
            # An empty body is validated as an empty object (LocalStack's validator, parity-tested).
            document = json.loads(body.decode("utf-8") or "{}", parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError) as error:
            raise bad_request_body(f"[{error}]") from None
        problems = [e.message for e in self._validators[model].iter_errors(document)]
        if problems:
            raise bad_request_body("[" + ", ".join(problems) + "]")
