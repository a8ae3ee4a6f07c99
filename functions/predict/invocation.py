"""Call the endpoint once per request and turn its answer, or its failure, into predictions or a
refusal with the right status.

The built-in XGBoost container reads `text/csv` (no header, no target; an empty field is missing) and,
asked for `application/json`, answers `{"predictions": [{"score": s}, ...]}`: the probability of class 1
(binary:logistic), the list of class probabilities (multi:softprob), or the value (regression)
(aws/sagemaker-xgboost-container, algorithm_mode/serve.py and serve_utils.encode_predictions_as_json).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from predict.refusal import Refused
from shared.aws import error_code
from shared.dataset_schema import DatasetSchema, ProblemType

logger = Logger(child=True)

# InvokeEndpoint errors that say the endpoint cannot take the request now (SageMaker Runtime API
# reference): the client may retry later.
UNAVAILABLE = frozenset({"ModelNotReadyException", "ServiceUnavailable", "ThrottlingException"})


def invoke(runtime: Any, endpoint: str, body: bytes) -> list[Any]:
    """The scores of the records in `body`, in order."""
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=body
        )
        answer = json.loads(response["Body"].read())
        return [item["score"] for item in answer["predictions"]]
    except ClientError as error:
        code = error_code(error)
        # SageMaker's messages name the account and the endpoint, the container's may echo data: they go
        # to the log, the client gets the error's code.
        logger.warning(
            "endpoint refused",
            code=code,
            service_message=error.response.get("Error", {}).get("Message"),
            original_status=error.response.get("OriginalStatusCode"),
            original_message=error.response.get("OriginalMessage"),
            log_stream=error.response.get("LogStreamArn"),
        )
        if code in UNAVAILABLE:
            raise Refused(503, f"the model cannot take requests now ({code}); retry shortly") from None
        if code == "ValidationError":
            # The endpoint the serving record names is gone (a teardown, or a record read before it).
            raise Refused(503, "no model is serving at the moment; retry shortly") from None
        original = error.response.get("OriginalStatusCode")
        status = f", the model's status {original}" if original else ""
        raise Refused(502, f"the model failed on the request ({code}{status})") from None
    except (ReadTimeoutError, ConnectTimeoutError):
        raise Refused(504, "the model did not answer in time") from None
    except BotoCoreError as error:
        raise Refused(502, f"the model could not be reached ({type(error).__name__})") from None
    except (ValueError, KeyError, TypeError):
        raise Refused(502, "the model's answer was not the predictions it should send") from None


def predictions(scores: list[Any], schema: DatasetSchema, records: int) -> list[dict[str, Any]]:
    """What the API returns per record: the label and class probabilities, or the value."""
    if len(scores) != records:
        raise Refused(502, f"the model answered {len(scores)} predictions for {records} records")
    try:
        target = schema.target
        if target.problem_type is ProblemType.REGRESSION:
            return [{"value": float(score)} for score in scores]
        if target.problem_type is ProblemType.BINARY:
            return [_classified(target.classes, [1 - float(score), float(score)]) for score in scores]
        return [_classified(target.classes, [float(p) for p in score]) for score in scores]
    except (TypeError, ValueError):
        raise Refused(502, "the model's scores do not fit the model's classes") from None


def _classified(classes: tuple[str, ...], probabilities: list[float]) -> dict[str, Any]:
    if len(probabilities) != len(classes):
        raise ValueError(f"{len(probabilities)} probabilities for {len(classes)} classes")
    best = max(range(len(classes)), key=probabilities.__getitem__)
    return {"label": classes[best], "probabilities": dict(zip(classes, probabilities, strict=True))}
