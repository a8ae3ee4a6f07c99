"""What crosses the wire of the local SageMaker: the botocore models of the three APIs it answers, how
requests and answers are read and written in their protocols, the constraints AWS checks that botocore's
client does not, and the errors as AWS answers them.

- SageMaker (`sagemaker`) and Application Auto Scaling (`application-autoscaling`) are JSON 1.1 protocol
  (service-2.json `metadata`: `"protocol": "json"`, `"jsonVersion": "1.1"`, `targetPrefix` `SageMaker` and
  `AnyScaleFrontendService`): `POST /` with `X-Amz-Target: <prefix>.<Operation>`, members by name,
  timestamps as epoch seconds, blobs base64.
- SageMaker Runtime (`sagemaker-runtime`) is rest-json: `POST /endpoints/{EndpointName}/invocations`, the
  body the payload, the other members in headers (InvokeEndpointInput/Output `location`).

botocore's client checks a request's types and required members, and the `min` of lengths and numbers;
the service itself also checks `max`, `pattern` and `enum`, and answers a breach with the sentence Coral
services write ("1 validation error detected: Value 'x' at 'endpointName' failed to satisfy constraint:
Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", as SageMaker answers
CreateModel; aws/amazon-sagemaker-examples issues show the message). Every answer is checked against the
operation's output shape with the same rules: an answer that breaks the model is a defect of this stand-in,
raised as `AnswerBreaksModel`.
"""

from __future__ import annotations

import base64
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from botocore.session import get_session
from botocore.validate import ParamValidator

SAGEMAKER = "sagemaker"
RUNTIME = "sagemaker-runtime"
AUTOSCALING = "application-autoscaling"
# The error code each API uses for a request that breaks its model (service-2.json: SageMaker and
# Application Auto Scaling answer ValidationException; SageMaker Runtime's is the ValidationError shape).
VALIDATION_CODE = {
    SAGEMAKER: "ValidationException",
    AUTOSCALING: "ValidationException",
    RUNTIME: "ValidationError",
}


class ServiceError(Exception):
    """An error the service answers: its code, message, HTTP status, and the error shape's other members
    (ModelError's OriginalStatusCode, for one)."""

    def __init__(
        self, code: str, message: str, *, status: int = 400, fields: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = dict(fields or {})


class AnswerBreaksModel(AssertionError):
    """The stand-in was about to answer something the real service cannot: a defect to fix here."""


@cache
def service_model(service: str) -> Any:
    # The JSON models installed with botocore: no network, no credentials.
    return get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> Any:
    model = service_model(service)
    if operation not in model.operation_names:
        # What AWS answers a target it does not know.
        raise ServiceError("UnknownOperationException", f"Unknown operation {operation}")
    return model.operation_model(operation)


def target_prefixes() -> dict[str, str]:
    """X-Amz-Target prefix -> service, for the JSON 1.1 APIs."""
    return {service_model(s).metadata["targetPrefix"]: s for s in (SAGEMAKER, AUTOSCALING)}


# --------------------------------------------------------------------------------------------- requests


def read_request(service: str, operation: str, document: Mapping[str, Any]) -> dict[str, Any]:
    """The request's parameters as Python values (timestamps as datetimes, blobs as bytes), checked as the
    service checks them; a breach is the API's validation error."""
    shape = operation_model(service, operation).input_shape
    if shape is None:
        return {}
    params = _from_wire(shape, dict(document))
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ServiceError(VALIDATION_CODE[service], report.generate_report())
    problems = violations(shape, params)
    if problems:
        raise ServiceError(VALIDATION_CODE[service], validation_message(problems))
    return dict(params)


def validation_message(problems: list[str]) -> str:
    count = len(problems)
    return f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)


def _from_wire(shape: Any, value: Any) -> Any:
    kind = shape.type_name
    if value is None:
        return None
    if kind == "structure" and isinstance(value, dict):
        return {
            name: _from_wire(shape.members[name], item) if name in shape.members else item
            for name, item in value.items()
        }
    if kind == "list" and isinstance(value, list):
        return [_from_wire(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: _from_wire(shape.value, item) for key, item in value.items()}
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if kind == "timestamp" and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


# ---------------------------------------------------------------------------------------------- answers


def write_answer(service: str, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The answer as the JSON 1.1 protocol sends it, after checking it against the output shape."""
    shape = operation_model(service, operation).output_shape
    if shape is None:
        if body:
            raise AnswerBreaksModel(f"{operation} answers nothing, not {sorted(body)}")
        return {}
    check_answer(shape, body, operation)
    return dict(_to_wire(shape, dict(body)))


def check_answer(shape: Any, body: Mapping[str, Any], what: str) -> None:
    report = ParamValidator().validate(dict(body), shape)
    if report.has_errors():
        raise AnswerBreaksModel(f"the {what} answer breaks botocore's model: {report.generate_report()}")
    problems = violations(shape, dict(body))
    if problems:
        raise AnswerBreaksModel(f"the {what} answer breaks botocore's model: {validation_message(problems)}")


def _to_wire(shape: Any, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return {name: _to_wire(shape.members[name], item) for name, item in value.items()}
    if kind == "list":
        return [_to_wire(shape.member, item) for item in value]
    if kind == "map":
        return {key: _to_wire(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return epoch_seconds(value)
    if kind == "blob":
        return base64.b64encode(value).decode()
    return value


def epoch_seconds(moment: datetime) -> float:
    """JSON 1.1 timestamps: seconds since the epoch, with the milliseconds AWS keeps."""
    return round(moment.timestamp(), 3)


# ------------------------------------------------------------------------------------------ constraints


def violations(shape: Any, value: Any, path: str = "") -> list[str]:
    """Each breach of `shape`'s required members, lengths, ranges, patterns and enums, in Coral's words;
    paths are the members' names in lower camel case, list items as `<list>.<n>.member`."""
    problems: list[str] = []
    _check(shape, value, path, problems)
    return problems


def _member_path(path: str, name: str) -> str:
    name = name[:1].lower() + name[1:]
    return f"{path}.{name}" if path else name


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _fail(problems: list[str], value: Any, path: str, constraint: str) -> None:
    problems.append(
        f"Value {_shown(value)} at '{path}' failed to satisfy constraint: Member must {constraint}"
    )


def _check(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    metadata = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return
        for name in shape.required_members:
            if value.get(name) is None:
                problems.append(
                    f"Value null at '{_member_path(path, name)}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, item in value.items():
            if name in shape.members and item is not None:
                _check(shape.members[name], item, _member_path(path, name), problems)
        return
    if kind in ("list", "map", "string") and isinstance(value, list | dict | str):
        _check_length(metadata, value, path, problems)
    if kind == "list" and isinstance(value, list):
        for index, item in enumerate(value, start=1):
            _check(shape.member, item, f"{path}.{index}.member", problems)
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            _check(shape.key, key, f"{path}.{key}.key", problems)
            _check(shape.value, item, f"{path}.{key}.value", problems)
    elif kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            _fail(problems, value, path, f"satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = metadata.get("pattern")
        compiled = _pattern(pattern) if pattern else None
        if compiled is not None and compiled.fullmatch(value) is None:
            shown = pattern if pattern.startswith("^") else f"^{pattern}"
            _fail(problems, value, path, f"satisfy regular expression pattern: {shown}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "min" in metadata and value < metadata["min"]:
            _fail(problems, value, path, f"have value greater than or equal to {metadata['min']}")
        if "max" in metadata and value > metadata["max"]:
            _fail(problems, value, path, f"have value less than or equal to {metadata['max']}")
        if isinstance(value, float) and not math.isfinite(value):
            _fail(problems, value, path, "be a finite number")


def _check_length(metadata: Mapping[str, Any], value: Any, path: str, problems: list[str]) -> None:
    if "min" in metadata and len(value) < metadata["min"]:
        _fail(problems, value, path, f"have length greater than or equal to {metadata['min']}")
    if "max" in metadata and len(value) > metadata["max"]:
        _fail(problems, value, path, f"have length less than or equal to {metadata['max']}")


# The models' patterns are Java regular expressions over UTF-16. Python's `re` lacks Java's Unicode
# classes and reads a surrogate pair range as two ranges; both are rewritten to what they mean in Java.
_SUPPLEMENTARY = re.escape("\\uD800\\uDC00-\\uDBFF\\uDFFF")
_JAVA_CLASS = re.compile(r"\\p\{(\w+)\}")
# Java's \p{Print} is POSIX's printable ASCII (java.util.regex.Pattern, "POSIX character classes").
_POSIX = {"Print": "\\x20-\\x7E", "ASCII": "\\x00-\\x7F", "Alnum": "a-zA-Z0-9"}


@cache
def _category_ranges() -> dict[str, str]:
    """Major Unicode general category ("L", "N", ...) -> a character class body of its code points, from
    one pass over all of them (surrogates excepted, which a Python string of text never holds)."""
    ranges: dict[str, list[str]] = {}
    start, previous, current = 0, -2, ""
    for code in [*range(0xD800), *range(0xE000, 0x110000), -1]:
        major = unicodedata.category(chr(code))[0] if code >= 0 else ""
        if major != current or code != previous + 1:
            if current:
                ranges.setdefault(current, []).append(_range(start, previous))
            start, current = code, major
        previous = code
    return {major: "".join(parts) for major, parts in ranges.items()}


def _range(first: int, last: int) -> str:
    return f"\\U{first:08X}" if first == last else f"\\U{first:08X}-\\U{last:08X}"


def _java_class(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _POSIX:
        return _POSIX[name]
    if len(name) != 1:
        raise re.error(f"Java class \\p{{{name}}} is not read here")
    return _category_ranges().get(name, "")


@cache
def _pattern(java: str) -> re.Pattern[str] | None:
    """`java` as a Python pattern; None for one that cannot be read faithfully (it is then not checked)."""
    try:
        python = re.sub(_SUPPLEMENTARY, lambda _: "\\U00010000-\\U0010FFFF", java)
        # Inside a class, \p{L} stands for its members without brackets of its own; outside, a class.
        python = re.sub(
            r"\[([^\[\]]*)\]", lambda m: "[" + _JAVA_CLASS.sub(_java_class, m.group(1)) + "]", python
        )
        python = _JAVA_CLASS.sub(lambda m: f"[{_java_class(m)}]", python)
        # Java's \z is the very end of the input, Python's \Z.
        return re.compile(python.replace("\\z", "\\Z"), re.DOTALL)
    except re.error:
        return None
