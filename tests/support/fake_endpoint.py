"""A local HTTP server that speaks SageMaker Runtime's InvokeEndpoint API like an endpoint hosting the
built-in XGBoost container, so the predict function's real boto3 call path runs against it
(`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`).

It answers `POST /endpoints/<name>/invocations` as the 3.0-5 container does (aws/sagemaker-xgboost-container,
release-3.0.5: algorithm_mode/serve.py `invocations`, serve_utils.py:118-130 `parse_content_data`,
encoder.py:35-56 `csv_to_dmatrix`):

- the body is stripped, then split on line ends, and each line on commas; an empty field is NaN (missing);
- a value that is not a number, rows of unequal width (an empty line inside the body), or a value that is
  infinite once held as float32 (the DMatrix inf check) is a parse error: 415;
- more columns than the model was trained on is xgboost's "Number of columns does not match": 400; fewer
  are taken silently, the missing ones as missing values;
- with `Accept: application/json`, `{"predictions": [{"score": ...}]}` (serve_utils.py:467-479).

`features` is the model's column count as trained: the features and, for a version-2 schema, the width
marker. The service's own errors come back in its wire format (`x-amzn-ErrorType` header, JSON body), so
botocore raises exactly what it raises in AWS.

The scores are a fixed function of the features, so a test knows what to expect: the sum of the record's
values `s` gives `sigmoid(s)` (binary), a softmax over `[s, 2s, 3s, ...]` (multiclass), `s` (regression).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FLOAT32_MAX = 3.4028234663852886e38
LOG_STREAM = (
    "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/x:log-stream:AllTraffic/i-0"
)


@dataclass
class EndpointModel:
    name: str
    # "binary", "multiclass" or "regression", and the model's feature count.
    problem: str
    features: int
    classes: int = 2
    # A service error to answer every request with: (HTTP status, error code, extra body members).
    failure: tuple[int, str, dict[str, Any]] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def scores(self, rows: list[list[float]]) -> list[Any]:
        sums = [sum(value for value in row if not math.isnan(value)) for row in rows]
        if self.problem == "binary":
            return [1 / (1 + math.exp(-max(min(s, 50.0), -50.0))) for s in sums]
        if self.problem == "multiclass":
            return [_softmax([max(min(s * (k + 1), 50.0), -50.0) for k in range(self.classes)]) for s in sums]
        return sums


def _softmax(values: list[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        parts = self.path.strip("/").split("/")
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
            self._error(404, "UnknownOperationException", "Unknown operation")
            return
        model = self.server.models.get(parts[1])
        if model is None:
            account = "123456789012"
            self._error(400, "ValidationError", f"Endpoint {parts[1]} of account {account} not found.")
            return
        model.requests.append({"headers": dict(self.headers), "body": body})
        if model.failure is not None:
            status, code, extra = model.failure
            self._error(status, code, f"{code} from the fake endpoint", extra)
            return
        if self.headers.get("Content-Type") != "text/csv":
            self._model_error(415, "Content type is not text/csv")
            return
        try:
            rows = [
                [math.nan if text == "" else float(text) for text in line.split(",")]
                for line in body.strip().decode().split("\n")
            ]
            if len({len(row) for row in rows}) > 1:
                raise ValueError("setting an array element with a sequence")
            if any(math.isinf(value) or abs(value) > FLOAT32_MAX for row in rows for value in row):
                raise ValueError("Input data contains `inf` or a value too large for `float32`")
        except ValueError as error:
            self._model_error(
                415, f"Loading csv data failed with Exception, please ensure data is in csv format: {error}"
            )
            return
        if any(len(row) > model.features for row in rows):
            self._model_error(
                400,
                "Unable to evaluate payload provided: Check failed: learner_model_param_.num_feature >= "
                f"p_fmat->Info().num_col_ ({model.features} vs. {len(rows[0])}) : Number of columns does not "
                "match number of features in booster.",
            )
            return
        if self.headers.get("Accept") != "application/json":
            self._model_error(406, "Accept must be application/json in this fake")
            return
        answer = json.dumps({"predictions": [{"score": score} for score in model.scores(rows)]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _model_error(self, status: int, message: str) -> None:
        """The container refused: SageMaker answers 424 ModelError with the container's status and text."""
        self._error(
            424,
            "ModelError",
            f'Received client error ({status}) from primary with message "{message}".',
            {
                "OriginalStatusCode": status,
                "OriginalMessage": message,
                "LogStreamArn": "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
            },
        )

    def _error(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        answer = json.dumps({"Message": message, **(extra or {})}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class _Server(ThreadingHTTPServer):
    models: dict[str, EndpointModel]


@contextmanager
def fake_endpoints(*models: EndpointModel) -> Iterator[str]:
    """Serve `models` on a free local port; yields the URL to point sagemaker-runtime at."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.models = {model.name: model for model in models}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
