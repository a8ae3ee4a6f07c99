"""Policy documents (IAM, bucket, topic and queue policies) read statement by statement."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .framework import as_list

Statement = Mapping[str, Any]


def statements(document: Any) -> list[Statement]:
    """The statements of a policy given as JSON text (how Pulumi passes it) or as a mapping."""
    parsed = json.loads(document) if isinstance(document, str) else document
    return [s for s in as_list(parsed.get("Statement")) if isinstance(s, Mapping)]


def allows(document: Any) -> list[Statement]:
    return [s for s in statements(document) if s.get("Effect") == "Allow"]


def condition_keys(statement: Statement) -> set[str]:
    """Every condition key the statement tests, lower-cased as IAM compares them."""
    return {key.lower() for operator in (statement.get("Condition") or {}).values() for key in operator}
