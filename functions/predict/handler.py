"""Lambda entry point of the predict function (API Gateway REST API, Lambda proxy integration).

`POST /predict` takes `{"records": [...]}` or `{"instances": [...]}` and answers
`{"predictions": [...], "model": "<model id>"}`; `GET /health` says whether a model is deployed and which.
Every other answer is `{"message": ..., "requestId": ...}`: 400 for a request the model cannot take,
413 for one too large, 503 when no model is deployed or the endpoint is not ready, 502 and 504 for the
endpoint's own failures. No answer carries a stack trace.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from predict.environment import load_environment
from predict.invocation import invoke, predictions
from predict.records import feature_values, parse_body
from predict.refusal import Refused, bad_request
from predict.served_model import ServedModel, ServedModels
from shared.aws import CLIENT_CONFIG, client, error_code
from shared.encoding import RecordRejected

# Time kept back from the function's deadline to answer when the endpoint is slow.
ANSWER_RESERVE_SECONDS = 2
# Lambda's limit on a synchronous answer is 6 MB ("Lambda quotas"); past it API Gateway answers 502.
MAX_ANSWER_BYTES = 6_000_000
# Reads of the serving record and schema are small: a short read timeout and one retry keep them within the
# function's deadline.
S3_READ_TIMEOUT_SECONDS = 3
CONNECT_TIMEOUT_SECONDS = int(CLIENT_CONFIG.connect_timeout)

logger = Logger(service="predict")
environment = load_environment()
models = ServedModels(
    client("s3", read_timeout=S3_READ_TIMEOUT_SECONDS, max_attempts=2),
    environment.bucket,
    environment.serving_record_key,
)


def current_model() -> ServedModel | None:
    try:
        return models.current()
    except ClientError as error:
        raise Refused(
            503, f"the serving record could not be read ({error_code(error)}); retry shortly"
        ) from None
    except (ValueError, KeyError, TypeError) as error:  # a record or schema that is not what it should be
        logger.error("serving record or schema unreadable", reason=str(error))
        raise Refused(503, "the serving record or its schema could not be read; retry shortly") from None


def served_model() -> ServedModel:
    model = current_model()
    if model is None:
        raise Refused(503, "no model is deployed yet: upload a dataset and let its tuning job finish")
    return model


def predict(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    document = parse_body(event.get("body"), is_base64=bool(event.get("isBase64Encoded")))
    model = served_model()
    rows = feature_values(document, model.schema, environment.max_records)
    lines = []
    for index, values in enumerate(rows):
        try:
            lines.append(model.encoder.encode(values))
        except RecordRejected as error:
            raise bad_request(f"record {index}: {error}") from None
    body = ("\n".join(lines) + "\n").encode()
    if len(body) > environment.max_payload_bytes:
        raise Refused(
            413,
            f"the records take {len(body)} bytes for the model, which takes at most "
            f"{environment.max_payload_bytes}: send fewer records per request",
        )
    # The time left now, after the reads: what the endpoint may take, less the time to answer.
    seconds_left = context.get_remaining_time_in_millis() / 1000
    runtime = client(
        "sagemaker-runtime",
        read_timeout=max(1, int(seconds_left) - ANSWER_RESERVE_SECONDS - CONNECT_TIMEOUT_SECONDS),
        max_attempts=1,
    )
    try:
        scores = invoke(runtime, environment.endpoint_name, body)
    except Refused:
        models.forget()  # the next request reads the serving record again
        raise
    return {"predictions": predictions(scores, model.schema, len(rows)), "model": model.model}


def health() -> dict[str, Any]:
    model = current_model()
    return {"deployed": model is not None, "model": model.model if model else None}


def answer(status: int, document: dict[str, Any] | str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": document if isinstance(document, str) else json.dumps(document),
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId") or context.aws_request_id
    route = (event.get("httpMethod"), event.get("resource"))
    try:
        if route == ("POST", "/predict"):
            result = json.dumps(predict(event, context))
            if len(result) > MAX_ANSWER_BYTES:
                raise Refused(413, "the predictions are too large for one answer: send fewer records")
            return answer(200, result)
        if route == ("GET", "/health"):
            return answer(200, health())
        raise Refused(404, f"no route {route[0]} {route[1]}")
    except Refused as refused:
        log = logger.warning if refused.status >= 500 else logger.info
        log("request refused", status=refused.status, reason=refused.message, request_id=request_id)
        return answer(refused.status, {"message": refused.message, "requestId": request_id})
    except Exception:
        logger.exception("request failed", request_id=request_id)
        return answer(500, {"message": "the request failed inside the API", "requestId": request_id})
