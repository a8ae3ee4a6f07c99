"""Read policy documents statement by statement, the way IAM evaluates them."""

from __future__ import annotations

from typing import Any


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert doc["Version"] == "2012-10-17"
    return as_list(doc["Statement"])


def statement(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in statements(doc) if s.get("Sid") == sid]
    assert len(found) == 1, f"expected one statement {sid!r}, found {len(found)}"
    return found[0]


def denies_insecure_transport(doc: dict[str, Any], resources: set[str], actions: set[str]) -> bool:
    """True when a statement denies everyone the actions on all `resources` whenever TLS is not used."""
    for s in statements(doc):
        if (
            s["Effect"] == "Deny"
            and s.get("Principal") in ("*", {"AWS": "*"})
            and actions <= set(as_list(s["Action"]))
            and resources <= set(as_list(s["Resource"]))
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ):
            return True
    return False


def allows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in statements(doc) if s["Effect"] == "Allow"]


def granted(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (action, resource) pair the Allow statements grant."""
    return {
        (action, resource)
        for s in allows(doc)
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    }
