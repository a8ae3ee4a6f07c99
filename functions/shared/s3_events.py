"""Parse the S3 upload notifications that reach the pipeline's queue.

A queue message body is either an SNS envelope (`{"Type": "Notification", "Message": "<S3 event JSON>"}`)
or, with raw message delivery on, the S3 event itself. The S3 event is either the `s3:TestEvent` that S3
sends when a notification configuration is written, or `{"Records": [...]}` with one record per object
(event structure: Amazon S3 user guide, "Event message structure", eventVersion 2.x).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

S3_TEST_EVENT = "s3:TestEvent"
OBJECT_CREATED = "ObjectCreated:"


class MalformedMessage(ValueError):
    """The message is not an S3 notification this pipeline understands; retrying cannot fix it."""


@dataclass(frozen=True)
class S3ObjectRef:
    """One uploaded object version, as its notification names it (key URL-decoded)."""

    bucket: str
    key: str
    version_id: str | None
    etag: str
    size: int
    event_name: str
    sequencer: str


@dataclass(frozen=True)
class UploadFilter:
    """Which objects this stack's pipeline takes: its bucket, under its prefix, with its suffix."""

    bucket: str
    prefix: str
    suffix: str

    def reason_to_skip(self, ref: S3ObjectRef) -> str | None:
        if ref.bucket != self.bucket:
            return f"bucket {ref.bucket!r} is not this pipeline's bucket {self.bucket!r}"
        if not ref.event_name.startswith(OBJECT_CREATED):
            return f"event {ref.event_name!r} is not an object creation"
        if not ref.key.startswith(self.prefix):
            return f"key is outside the upload prefix {self.prefix!r}"
        if not ref.key.endswith(self.suffix):
            return f"key does not end with {self.suffix!r}"
        if ref.key.endswith("/"):
            return "key is a folder marker"
        return None


@dataclass(frozen=True)
class S3Notification:
    """What one queue message carries: a test event, or the objects it announces."""

    is_test_event: bool
    objects: tuple[S3ObjectRef, ...]


def parse_queue_message(body: str) -> S3Notification:
    """Unwrap a queue message body into the S3 objects it announces.

    Raises `MalformedMessage` naming what is wrong when the body is not a notification of either form.
    """
    document = _json(body, "message body")
    if isinstance(document, dict) and document.get("Type") == "Notification":
        message = document.get("Message")
        if not isinstance(message, str):
            raise MalformedMessage("SNS envelope has no string 'Message'")
        document = _json(message, "SNS 'Message'")
    elif isinstance(document, dict) and "Type" in document:
        raise MalformedMessage(f"SNS message of type {document['Type']!r} is not a notification")
    if not isinstance(document, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(document).__name__}")
    if document.get("Event") == S3_TEST_EVENT:
        return S3Notification(is_test_event=True, objects=())
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        raise MalformedMessage("no S3 event 'Records' in the message")
    return S3Notification(is_test_event=False, objects=tuple(_object_refs(document)))


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError) as error:
        raise MalformedMessage(f"{what} is not JSON ({error}): {text[:120]!r}") from None


def _object_refs(document: dict[str, Any]) -> list[S3ObjectRef]:
    refs = []
    for index, record in enumerate(S3Event(document).records):
        if not isinstance(record.raw_event, dict) or record.get("eventSource") != "aws:s3":
            raise MalformedMessage(f"record {index} is not an S3 event record")
        try:
            s3 = record.s3
            refs.append(
                S3ObjectRef(
                    bucket=s3.bucket.name,
                    # S3 URL-encodes keys in notifications, with '+' for spaces.
                    key=unquote_plus(s3.get_object.key),
                    version_id=s3.get_object.version_id,
                    etag=s3.get_object.etag,
                    size=s3.get_object.size,
                    event_name=record.event_name,
                    sequencer=str(s3.get_object.get("sequencer") or ""),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MalformedMessage(f"S3 record {index} lacks a usable field: {error!r}") from None
    return refs
