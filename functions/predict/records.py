"""Read a prediction request's body into the feature values of each record, refusing what the model
cannot take with a message naming the record and the field.

Two forms are accepted:

    {"records": [{"<column>": value, ...}, ...]}     named fields, as the user has them
    {"instances": [[value, ...], ...]}                values already in the model's feature order

A value is a string (as the CSV would hold it), a number, or null for a missing value. In `records`, every
feature the model uses must be present (null when missing); the target and the columns the model ignores
may be present and are left out; any other name is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from predict.refusal import Refused, bad_request
from shared.dataset_schema import DatasetSchema, Feature, FeatureKind

FORMS = ("records", "instances")


def parse_body(body: str | None, *, is_base64: bool) -> dict[str, Any]:
    if not body:
        raise bad_request('the request has no body: send {"records": [...]} or {"instances": [...]}')
    try:
        text = base64.b64decode(body, validate=True).decode() if is_base64 else body
        document = json.loads(text, parse_constant=_refuse_constant)
    except (binascii.Error, UnicodeDecodeError):
        raise bad_request("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise bad_request(f"the request body is not JSON ({error.msg} at character {error.pos})") from None
    except RecursionError:
        raise bad_request("the request body nests too deeply") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise bad_request(
            f"the request body holds a value that cannot be read ({_short(str(error))})"
        ) from None
    if not isinstance(document, dict):
        raise bad_request(
            f'the request body is a JSON {_kind(document)}, not an object with "records" or "instances"'
        )
    return document


def feature_values(document: dict[str, Any], schema: DatasetSchema, max_records: int) -> list[list[str]]:
    """Each record's feature values as text, in the model's feature order."""
    forms = [form for form in FORMS if form in document]
    extra = sorted(set(document) - set(FORMS))
    if len(forms) != 1 or extra:
        raise bad_request(
            'the request body must hold exactly one of "records" and "instances"'
            + (f", and nothing else (found {', '.join(map(repr, extra))})" if extra else "")
        )
    form = forms[0]
    items = document[form]
    if not isinstance(items, list) or not items:
        raise bad_request(f'"{form}" must be a non-empty array')
    if len(items) > max_records:
        raise Refused(413, f"{len(items)} records in one request; the API takes at most {max_records}")
    features = schema.model_features
    if form == "instances":
        return [_instance(index, item, features) for index, item in enumerate(items)]
    return [_record(index, item, schema) for index, item in enumerate(items)]


def _record(index: int, record: Any, schema: DatasetSchema) -> list[str]:
    if not isinstance(record, dict):
        raise bad_request(
            f"records[{index}] is a JSON {_kind(record)}, not an object of field names and values"
        )
    unknown = [_short(name) for name in record if name not in schema.columns]
    if unknown:
        known = ", ".join(repr(f.name) for f in schema.model_features)
        raise bad_request(
            f"records[{index}] has unknown field(s) {', '.join(map(repr, unknown))}; the model's features "
            f"are {known}"
        )
    values = []
    for feature in schema.model_features:
        if feature.name not in record:
            raise bad_request(
                f"records[{index}] lacks field {feature.name!r} (send null for a missing value)"
            )
        values.append(_text(record[feature.name], feature, f"records[{index}] field {feature.name!r}"))
    return values


def _instance(index: int, instance: Any, features: Sequence[Feature]) -> list[str]:
    if not isinstance(instance, list):
        raise bad_request(f"instances[{index}] is a JSON {_kind(instance)}, not an array of feature values")
    if len(instance) != len(features):
        raise bad_request(
            f"instances[{index}] has {len(instance)} values; the model takes {len(features)}, in this order: "
            + ", ".join(repr(f.name) for f in features)
        )
    return [
        _text(value, feature, f"instances[{index}] value {position} ({feature.name!r})")
        for position, (value, feature) in enumerate(zip(instance, features, strict=True))
    ]


def _text(value: Any, feature: Feature, where: str) -> str:
    """A JSON value as the text a CSV field would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise bad_request(f"{where} is a boolean; send it as the CSV has it, a string or a number")
    if not isinstance(value, int | float):
        raise bad_request(f"{where} is a JSON {_kind(value)}, not a single value")
    text = str(value) if isinstance(value, int) else repr(value)
    # A category is known by its text: 1 is not "01" or "1.0". A number that is not one of the category
    # texts would silently become the unknown category, so it is refused instead.
    if feature.kind is FeatureKind.CATEGORICAL and text not in feature.categories:
        raise bad_request(
            f"{where} is the number {_short(text)}, which is not one of the field's categories as the data "
            "writes them: send the category as a string"
        )
    return text


def _short(text: str, limit: int = 40) -> str:
    """Echo at most `limit` characters of what a client sent."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _refuse_constant(name: str) -> Any:
    raise bad_request(f"the request body holds {name}, which is not JSON")


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
