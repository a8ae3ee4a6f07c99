"""The local SageMaker over HTTP: one server on 127.0.0.1 answering SageMaker, Application Auto Scaling and
SageMaker Runtime in their wire protocols, so the pipeline's own boto3 clients reach it through the
standard endpoint variables (AWS_ENDPOINT_URL_SAGEMAKER, AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING,
AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, all set to `SageMakerServer.url`).

- JSON 1.1 (SageMaker, Application Auto Scaling): `POST /`, the operation in `X-Amz-Target`
  (`SageMaker.<Operation>`, `AnyScaleFrontendService.<Operation>`), `application/x-amz-json-1.1` both
  ways; an error is its HTTP status with `{"__type": <code>, "message": ...}` and the error shape's other
  members (botocore/parsers.py BaseJSONParser reads `__type` and `message`).
- rest-json (SageMaker Runtime): `POST /endpoints/{EndpointName}/invocations`, the body as the payload,
  Content-Type, Accept and the other members in the headers InvokeEndpointInput names; an error carries
  its code in `x-amzn-ErrorType` and `{"Message": ...}` plus its members (ModelError's
  OriginalStatusCode, OriginalMessage, LogStreamArn).

The caller is the access key id of the SigV4 `Authorization` header's Credential (the signature is not
checked: the rehearsal's callers hold real session keys, and the policy decides what they may do). An
answer that breaks the operation's output shape is a defect of the stand-in: it is logged, kept in
`defects`, and answered as a 500 InternalFailure, never sent as if it were SageMaker's.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from rehearsal.sagemaker.api import (
    RUNTIME,
    AnswerBreaksModel,
    ServiceError,
    check_answer,
    operation_model,
    read_request,
    service_model,
    target_prefixes,
    write_answer,
)
from rehearsal.sagemaker.service import LocalSageMaker

logger = logging.getLogger(__name__)

JSON_11 = "application/x-amz-json-1.1"
INVOCATIONS = ("endpoints", "invocations")


class SageMakerServer:
    def __init__(self, service: LocalSageMaker, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service
        self.defects: list[str] = []
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SageMakerServer:
        # A short poll: `stop` waits for the serving loop to see it.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.01,), name="sagemaker-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SageMakerServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: SageMakerServer


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive: botocore reuses its connections. On a kept-alive connection, headers and body sent as
    # separate small writes wait out Nagle's algorithm against the client's delayed ACK (40 ms a call):
    # the answer is buffered and sent whole, without delay.
    protocol_version = "HTTP/1.1"
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target")
        path = [unquote(part) for part in urlsplit(self.path).path.strip("/").split("/")]
        if target:
            self._json_call(target, body)
        elif len(path) == 3 and (path[0], path[2]) == INVOCATIONS:
            self._invocation(path[1], body)
        else:
            self._json_error(ServiceError("UnknownOperationException", "Unknown operation", status=404))

    # ----------------------------------------------------------------------------------- JSON 1.1

    def _json_call(self, target: str, body: bytes) -> None:
        prefix, _, operation = target.partition(".")
        service = target_prefixes().get(prefix)
        if service is None or not self.server.owner.service.implements(service, operation):
            self._json_error(ServiceError("UnknownOperationException", f"Unknown operation {target}"))
            return
        try:
            document = json.loads(body or b"{}")
            if not isinstance(document, dict):
                raise ValueError("not an object")
        except ValueError as error:
            self._json_error(ServiceError("SerializationException", f"Cannot read the request: {error}"))
            return
        try:
            caller = self._caller()
            params = read_request(service, operation, document)
            answer = self.server.owner.service.call(service, operation, params, caller)
            wire = write_answer(service, operation, answer)
        except ServiceError as error:
            self._json_error(error, service, operation)
            return
        except Exception as error:
            self._defect(operation, error, json_protocol=True)
            return
        self._send(200, JSON_11, json.dumps(wire).encode())

    def _json_error(
        self, error: ServiceError, service: str | None = None, operation: str | None = None
    ) -> None:
        document = {"__type": error.code, "message": error.message, **error.fields}
        self._send(error.status, JSON_11, json.dumps(document).encode())

    # ----------------------------------------------------------------------------------- rest-json

    def _invocation(self, endpoint: str, body: bytes) -> None:
        shape = operation_model(RUNTIME, "InvokeEndpoint").input_shape
        params: dict[str, Any] = {"EndpointName": endpoint, "Body": body}
        for name, member in shape.members.items():
            if member.serialization.get("location") == "header":
                value = self.headers.get(member.serialization["name"])
                if value is not None:
                    params[name] = value
        try:
            caller = self._caller()
            request = read_request(RUNTIME, "InvokeEndpoint", params)
            answer = self.server.owner.service.call(RUNTIME, "InvokeEndpoint", request, caller)
            output = operation_model(RUNTIME, "InvokeEndpoint").output_shape
            check_answer(output, answer, "InvokeEndpoint")
        except ServiceError as error:
            self._runtime_error(error)
            return
        except Exception as error:
            self._defect("InvokeEndpoint", error, json_protocol=False)
            return
        headers = {
            member.serialization["name"]: str(answer[name])
            for name, member in output.members.items()
            if member.serialization.get("location") == "header" and name in answer
        }
        content_type = headers.pop("Content-Type", "application/octet-stream")
        self._send(200, content_type, bytes(answer["Body"]), headers)

    def _runtime_error(self, error: ServiceError) -> None:
        shape = _error_shape(RUNTIME, error.code)
        if shape is not None:
            try:
                check_answer(shape, {"Message": error.message, **error.fields}, f"{error.code} error")
            except AnswerBreaksModel as broken:
                self._defect("InvokeEndpoint", broken, json_protocol=False)
                return
        document = {"Message": error.message, **error.fields}
        self._send(
            error.status, "application/json", json.dumps(document).encode(), {"x-amzn-ErrorType": error.code}
        )

    # ------------------------------------------------------------------------------------ plumbing

    def _caller(self) -> str:
        """The access key id that signed the request (SigV4: `Credential=<key id>/<date>/<region>/...`)."""
        authorization = self.headers.get("Authorization", "")
        for part in authorization.replace(",", " ").split():
            if part.startswith("Credential="):
                return part.removeprefix("Credential=").split("/")[0]
        raise ServiceError("MissingAuthenticationTokenException", "Missing Authentication Token", status=403)

    def _defect(self, operation: str, error: Exception, *, json_protocol: bool) -> None:
        logger.error("the local SageMaker failed on %s: %s", operation, error, exc_info=error)
        self.server.owner.defects.append(f"{operation}: {error}")
        failure = ServiceError(
            "InternalFailure", f"The local SageMaker failed on {operation}: {error}", status=500
        )
        if json_protocol:
            self._json_error(failure)
        else:
            self._send(
                500,
                "application/json",
                json.dumps({"Message": failure.message}).encode(),
                {"x-amzn-ErrorType": failure.code},
            )

    def _send(
        self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _error_shape(service: str, code: str) -> Any:
    model = service_model(service)
    return model.shape_for(code) if code in model.shape_names else None
