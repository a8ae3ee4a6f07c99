"""The prediction API's OpenAPI document, generated from the JSON Schema its request validator uses.

    python -m tools.openapi            # writes docs/openapi.json
    python -m tools.openapi --check    # exits 1 when docs/openapi.json is not what the program would write

The request body schema is `functions/predict/request_schema.json`, the same file the program gives the
API Gateway model of `POST /predict`, so clients generated from (or fuzzers run against) the document
send what the gateway accepts. A test keeps the shipped document equal to this output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from components.prediction_api import JSON, REQUEST_MODEL, STAGE, request_schema
from tools.mockrun import PROJECT_DIR

OPENAPI_PATH = PROJECT_DIR / "docs" / "openapi.json"
API_KEY_SCHEME = "api_key"
# The caller's authorization, one of the two per `apiAuthorization`, both in the Authorization header;
# `x-amazon-apigateway-authtype` is API Gateway's OpenAPI extension naming which ("awsSigv4" for IAM,
# "cognito_user_pools"; developer guide, "x-amazon-apigateway-authtype property").
AUTHORIZATION_SCHEMES = {
    "sigv4": {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "apiAuthorization iam: a SigV4 signature (service execute-api) by an identity allowed "
        "execute-api:Invoke on the method (the stack's api_invoke_policy_arn).",
        "x-amazon-apigateway-authtype": "awsSigv4",
    },
    "cognito": {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "apiAuthorization cognito: an ID token of the stack's user pool (user_pool_id, "
        "user_pool_client_id).",
        "x-amazon-apigateway-authtype": "cognito_user_pools",
    },
}
# OpenAPI 3.0 schema objects are a subset of JSON Schema draft 4 without `$schema`: the one keyword of the
# model that names its dialect rather than constraining the body.
DIALECT_KEYWORDS = ("$schema",)

ERROR_RESPONSES = {
    "400": "The body is not a prediction request: invalid JSON, refused by the request validator, or a "
    "record that does not fit the served model's schema (the message names the record and field).",
    "401": "apiAuthorization cognito: no ID token of the stack's user pool, or an expired one.",
    "403": "No API key or one not valid for this API; with apiAuthorization iam, an unsigned or badly "
    "signed request, or a caller not allowed execute-api:Invoke on the method.",
    "413": "More records, or a larger body, than one request may carry.",
    "429": "The API key's rate, burst or daily quota is used up.",
    "500": "A failure inside the API itself (a defect: the message carries the request id to report).",
    "502": "The endpoint or the model failed the request.",
    "503": "No model is serving yet or now, the endpoint is not ready or throttles, or the serving record "
    "cannot be read: retry later.",
    "504": "The endpoint or the function did not answer in time.",
}
HEALTH_ERRORS = ("401", "403", "429", "500", "503")


def openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON Schema as an OpenAPI 3.0 schema object."""
    return {key: value for key, value in schema.items() if key not in DIALECT_KEYWORDS}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(name)}}}


def _errors(codes: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {code: _json("Error", ERROR_RESPONSES[code]) for code in codes}


def openapi_document(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document, with `schema` (default: the request model's) as the `POST /predict` body."""
    # Either authorization, each together with the API key.
    security: list[dict[str, list[str]]] = [
        {API_KEY_SCHEME: [], scheme: []} for scheme in AUTHORIZATION_SCHEMES
    ]
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "serverless-ml-pipeline prediction API",
            "version": STAGE,
            "description": "Predictions of the model a stack serves. Every request needs the stack's API "
            "key (`pulumi stack output --show-secrets api_key`) in the x-api-key header, and the caller's "
            "authorization: a SigV4 signature (apiAuthorization iam) or a Cognito ID token (cognito).",
        },
        "servers": [
            {
                "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}",
                "description": "The stack's `api_url` output.",
                "variables": {
                    "restApiId": {"default": "abcdef1234"},
                    "region": {"default": "eu-west-1"},
                    "stage": {"default": STAGE},
                },
            }
        ],
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Predict the target of records",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": _ref(REQUEST_MODEL)}},
                    },
                    "responses": {
                        "200": _json("PredictResponse", "One prediction per record, in request order."),
                        **_errors(list(ERROR_RESPONSES)),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether a model is deployed, and which",
                    "security": security,
                    "responses": {
                        "200": _json("Health", "The serving state."),
                        **_errors(HEALTH_ERRORS),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                API_KEY_SCHEME: {"type": "apiKey", "name": "x-api-key", "in": "header"},
                **AUTHORIZATION_SCHEMES,
            },
            "schemas": {
                REQUEST_MODEL: openapi_schema(schema if schema is not None else request_schema()),
                "PredictResponse": {
                    "type": "object",
                    "required": ["predictions", "model"],
                    "properties": {
                        "predictions": {
                            "type": "array",
                            "description": "Per record: the class label and probabilities for "
                            "classification, the value for regression.",
                            "items": {},
                        },
                        "model": {
                            "type": "string",
                            "description": "The model serving when the function last read the serving "
                            "record (within 30 s; during a blue/green update the new model may already "
                            "answer).",
                        },
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["deployed", "model"],
                    "properties": {
                        "deployed": {"type": "boolean"},
                        "model": {"type": "string", "nullable": True, "description": "null: none yet."},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["message", "requestId"],
                    "properties": {
                        "message": {"type": "string"},
                        "requestId": {"type": "string", "description": "API Gateway's request id."},
                    },
                },
            },
        },
    }


def render_document(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when the shipped document is stale")
    parser.add_argument("--output", type=Path, default=OPENAPI_PATH)
    options = parser.parse_args(argv)
    text = render_document(openapi_document())
    if options.check:
        current = options.output.read_text() if options.output.is_file() else ""
        if current != text:
            print(f"{options.output} is stale: run python -m tools.openapi", file=sys.stderr)
            return 1
        return 0
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(text)
    print(f"wrote {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
