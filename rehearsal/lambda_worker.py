"""The Python runtime inside one execution environment: what `awslambdaric` (the runtime interface client
the managed Python runtimes run, github.com/aws/aws-lambda-python-runtime-interface-client,
awslambdaric/bootstrap.py) does between Lambda's service and the function's handler.

`rehearsal.lambda_sandbox` copies this file into the environment's runtime directory as `bootstrap.py` and
starts it as `python -I -B bootstrap.py <fd>`: isolated mode puts neither the repository nor the current
directory on `sys.path`, so the handler imports from the unzipped deployment package
(`LAMBDA_TASK_ROOT`) and from the virtualenv's site-packages (standing for the runtime's boto3 and the
Powertools layer) only. It therefore imports nothing but the standard library.

Like the runtime, it imports the handler once (the Init phase), then serves invocations one at a time
over the channel `fd`, keeping module state between them; the function's prints and logs go to
stdout/stderr, which the sandbox points at the function's log file. Messages on the channel are JSON:
  runtime -> sandbox  {"type": "ready"} | {"type": "init_error", "error": {...}}
  sandbox -> runtime  {"type": "invoke", "request_id", "event" (JSON text), "deadline_ms",
                       "invoked_function_arn", "inject_fault" (a message, or null)}
  runtime -> sandbox  {"type": "result", "payload" (text), "content_type"} | {"type": "error", "error": {...}}
"""

from __future__ import annotations

import base64
import decimal
import importlib
import json
import logging
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TextIO

Handler = Callable[[Any, "LambdaContext"], Any]

# awslambdaric/lambda_runtime_exception.py
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"

# The runtime filters its own frames out of a handler's stack trace by this file name (bootstrap.py).
_BOOTSTRAP = "/bootstrap.py"
# awslambdaric joins the lines of an error it logs in text format with a carriage return, so CloudWatch
# keeps the traceback in one event.
_ERROR_LINE_SEPARATOR = "\r"

_request_id = ""


class Fault(Exception):
    """An error the runtime itself reports, with one of its `Runtime.*` types (FaultException)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


class InjectedFault(Exception):
    """The failure the rehearsal injects in place of running the handler (LambdaService.fail_next): the
    invocation fails as if the handler had raised it, in a warm environment."""


class LambdaContext:
    """The context object of the Python runtime (awslambdaric/lambda_context.py; Lambda developer guide,
    "Using the Lambda context object to retrieve Python function information"). As there,
    `memory_limit_in_mb` is the string from AWS_LAMBDA_FUNCTION_MEMORY_SIZE."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = None
        self.identity = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, message: str) -> None:
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


def make_error(
    message: str, error_type: str, trace: list[str] | None, request_id: str = ""
) -> dict[str, Any]:
    """The error document the runtime posts (awslambdaric bootstrap.make_error)."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": trace or [],
    }


def fault_result(error: BaseException, request_id: str = "") -> dict[str, Any]:
    """An exception the function raised, as the runtime reports it: str(exception), the class name, and
    the traceback from the first frame outside the runtime (bootstrap.build_fault_result)."""
    frames = traceback.extract_tb(error.__traceback__)
    for index, frame in enumerate(frames):
        if _BOOTSTRAP not in frame.filename:
            frames = traceback.StackSummary.from_list(frames[index:])
            break
    return make_error(str(error), type(error).__name__, traceback.format_list(frames), request_id)


def load_handler(name: str) -> Handler:
    """Import `module.function` from the task root, with the runtime's faults (bootstrap._get_handler)."""
    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError as error:
        raise Fault(MALFORMED_HANDLER_NAME, f"Bad handler '{name}': {error}") from None
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise Fault(
                BUILT_IN_MODULE_CONFLICT, f"Cannot use built-in module {module_name} as a handler module"
            )
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise Fault(IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {error}") from None
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        raise Fault(
            USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {error}", trace
        ) from None
    try:
        handler: Handler = getattr(module, function_name)
    except AttributeError:
        raise Fault(
            HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None
    return handler


class _Encoder(json.JSONEncoder):
    """The runtime's response encoder (awslambdaric/lambda_runtime_marshaller.py): Decimals as numbers,
    NaN allowed."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return math.nan if o.is_nan() else float(o)
        return super().default(o)


def marshal(response: Any) -> tuple[str, str]:
    """The handler's return value as the runtime posts it: bytes as they are, anything else as JSON."""
    if isinstance(response, bytes):
        return base64.b64encode(response).decode("ascii"), "application/unknown"
    try:
        return _Encoder(ensure_ascii=False, allow_nan=True).encode(response), "application/json"
    except Exception as error:
        raise Fault(MARSHAL_ERROR, f"Unable to marshal response: {error}") from None


def _log_error(error: dict[str, Any]) -> None:
    """The runtime logs every error it reports (bootstrap.log_error), in the function's log format."""
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "log_level": "ERROR",
            **error,
        }
        sys.stdout.write(json.dumps(record) + "\n")
        return
    description = "[ERROR]"
    if error.get("errorType"):
        description += f" {error['errorType']}"
    if error.get("errorMessage"):
        description += (":" if error.get("errorType") else "") + f" {error['errorMessage']}"
    lines = [description, "Traceback (most recent call last):"]
    for element in error.get("stackTrace") or []:
        lines.extend(element.splitlines() or [""])
    sys.stdout.write(_ERROR_LINE_SEPARATOR.join(lines) + "\n")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _JsonFormatter(logging.Formatter):
    """The runtime's JSON log records (awslambdaric/lambda_runtime_log_utils.JsonFormatter), in short."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", None),
        }
        if record.exc_info and record.exc_info[1] is not None:
            document["errorType"] = type(record.exc_info[1]).__name__
            document["errorMessage"] = str(record.exc_info[1])
            document["stackTrace"] = traceback.format_tb(record.exc_info[2])
        return json.dumps({k: v for k, v in document.items() if v is not None}, default=str)


def _setup_logging() -> None:
    """The root logger as the runtime leaves it (bootstrap._setup_logging): one handler writing to
    stdout in the function's log format, at the application log level when one is set."""
    handler = logging.StreamHandler(sys.stdout)
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    logging.Formatter.converter = time.gmtime
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    level = {"TRACE": "DEBUG"}.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper())
    level = level or os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)
    root.addHandler(handler)


def _line_buffered(stream: TextIO) -> None:
    # The runtime makes stdout and stderr unbuffered (bootstrap.Unbuffered), so a log line is in the
    # log when it is written, and nothing is lost when the environment is killed.
    if hasattr(stream, "reconfigure"):
        stream.reconfigure(line_buffering=True, write_through=True)


def handle(handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    """One invocation, answered as the runtime answers it (bootstrap.handle_event_request)."""
    global _request_id
    request_id = str(request["request_id"])
    _request_id = request_id
    try:
        context = LambdaContext(request_id, int(request["deadline_ms"]), str(request["invoked_function_arn"]))
        try:
            event = json.loads(request["event"])
        except ValueError as unreadable:
            raise Fault(UNMARSHAL_ERROR, f"Unable to unmarshal input: {unreadable}") from None
        if request.get("inject_fault"):
            raise InjectedFault(request["inject_fault"])
        payload, content_type = marshal(handler(event, context))
    except Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, request_id)
    except Exception as raised:
        error = fault_result(raised, request_id)
    else:
        return {"type": "result", "payload": payload, "content_type": content_type}
    _log_error(error)
    return {"type": "error", "error": error}


def _send(channel: Connection, message: dict[str, Any]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    channel.send_bytes(json.dumps(message).encode("utf-8"))


def main(argv: list[str]) -> int:
    channel = Connection(int(argv[1]))
    # Isolated mode left the runtime's own directory off the path; the function's code goes first.
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    _line_buffered(sys.stdout)
    _line_buffered(sys.stderr)
    _setup_logging()
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except Fault as fault:
        init_error = make_error(fault.message, fault.error_type, fault.trace)
    except Exception as raised:
        init_error = fault_result(raised)
    else:
        _send(channel, {"type": "ready"})
        while True:
            try:
                request = json.loads(channel.recv_bytes())
            except EOFError:
                return 0
            _send(channel, handle(handler, request))
    # An Init failure is logged, posted, and ends the runtime (bootstrap.run: post_init_error, exit 1).
    _log_error(init_error)
    _send(channel, {"type": "init_error", "error": init_error})
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
