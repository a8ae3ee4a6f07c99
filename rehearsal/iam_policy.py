"""Evaluate one IAM identity policy the way IAM does, so tests can check a role's policy request by request.

Scope: one identity-based policy on its own (no resource policies, SCPs, boundaries or session policies).
Within that scope the rules are IAM's, from the IAM User Guide
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html and the
Action, Resource and Condition element pages): an explicit Deny wins, then any Allow, else the request is
implicitly denied. Whatever this module cannot judge faithfully (policy variables, multivalued-key
operators, unknown condition operators, Principal in an identity policy) raises PolicyError instead of
guessing, because a guess that allows would hide a missing or excess permission.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, NamedTuple, cast

Effect = Literal["Allow", "Deny"]

_VERSION = "2012-10-17"
_DOCUMENT_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"})
_ARN_PARTS = 6


class PolicyError(ValueError):
    """The document is not an identity policy this evaluator can judge faithfully."""


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: `*` is any run of characters (colons and slashes included), `?` exactly one.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Action names are case-insensitive ("s3:getobject" is "s3:GetObject")."""
    return glob_matches(pattern, action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    """Resource ARNs match case-sensitively; a `*` may run across the colons between ARN segments, as the
    Resource element page documents for a `*` at the end of a segment."""
    return glob_matches(pattern, resource)


def _arn_like(value: str, policy_value: str) -> bool:
    # The Arn* condition operators compare each of the six colon-delimited ARN components on its own.
    pattern_parts = policy_value.split(":", _ARN_PARTS - 1)
    value_parts = value.split(":", _ARN_PARTS - 1)
    if len(pattern_parts) != _ARN_PARTS or len(value_parts) != _ARN_PARTS:
        return False
    return all(glob_matches(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _bool_equals(value: str, policy_value: str) -> bool:
    return value.lower() == policy_value.lower()


def _string_like(value: str, policy_value: str) -> bool:
    return glob_matches(policy_value, value)


def _string_equals(value: str, policy_value: str) -> bool:
    return value == policy_value


# Base operator -> (how one context value compares with one policy value, whether the operator is negated).
# A negated operator holds when no policy value matches, and also when the key is absent from the request
# (IAM User Guide, condition operators: "If the policy condition requires that the key is not matched ...
# and the right key is not present, the condition is true").
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool_equals, False),
}
_IF_EXISTS = "IfExists"
_NULL = "Null"


def _as_tuple(value: Any, what: str) -> tuple[Any, ...]:
    items = tuple(value) if isinstance(value, list) else (value,)
    if not items:
        raise PolicyError(f"{what} is empty")
    return items


def _condition_value(value: Any) -> str:
    # JSON lets policies write `true` or `42` where IAM compares the text "true" or "42".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PolicyError(f"condition value {value!r} is not a string, number or boolean")


def _refuse_policy_variables(text: str) -> str:
    if "${" in text:
        raise PolicyError(f"policy variables are not supported: {text!r}")
    return text


@dataclass(frozen=True)
class Condition:
    """One operator/key pair of a Condition block, e.g. StringLike s3:prefix ["raw/*"]."""

    operator: str
    key: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        base = self.operator.removesuffix(_IF_EXISTS)
        if base not in _OPERATORS and self.operator != _NULL:
            raise PolicyError(f"condition operator {self.operator!r} is not supported")
        if self.operator == _NULL and self.values not in (("true",), ("false",)):
            raise PolicyError(f"Null takes one of true or false, got {self.values!r}")
        for value in self.values:
            _refuse_policy_variables(value)

    def holds(self, context: Mapping[str, str]) -> bool:
        # Condition key names are case-insensitive; their values are compared as the operator says.
        value = {k.lower(): v for k, v in context.items()}.get(self.key.lower())
        if self.operator == _NULL:
            return (value is None) == (self.values[0] == "true")
        if value is None:
            return self.operator.endswith(_IF_EXISTS) or self._negated
        test = _OPERATORS[self.operator.removesuffix(_IF_EXISTS)][0]
        matched = any(test(value, policy_value) for policy_value in self.values)
        return not matched if self._negated else matched

    @property
    def _negated(self) -> bool:
        return _OPERATORS[self.operator.removesuffix(_IF_EXISTS)][1]


def _parse_conditions(block: Any) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise PolicyError(f"Condition must be an object, got {block!r}")
    conditions = []
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            raise PolicyError(f"Condition {operator} must map keys to values, got {keys!r}")
        for key, values in keys.items():
            as_text = tuple(_condition_value(v) for v in _as_tuple(values, f"{operator} {key}"))
            conditions.append(Condition(operator, key, as_text))
    return tuple(conditions)


class Grant(NamedTuple):
    """One (action pattern, resource pattern) pair an Allow statement grants; a plain triple on purpose, so
    tests can compare it with tuples."""

    sid: str
    action: str
    resource: str

    def covers(self, action: str, resource: str) -> bool:
        return action_matches(self.action, action) and resource_matches(self.resource, resource)


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: Effect
    actions: tuple[str, ...]
    actions_negated: bool
    resources: tuple[str, ...]
    resources_negated: bool
    conditions: tuple[Condition, ...]

    def applies_to(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        action_listed = any(action_matches(p, action) for p in self.actions)
        resource_listed = any(resource_matches(p, resource) for p in self.resources)
        return (
            action_listed != self.actions_negated
            and resource_listed != self.resources_negated
            and all(c.holds(context) for c in self.conditions)
        )

    def grants(self) -> list[Grant]:
        if self.actions_negated or self.resources_negated:
            # "Everything but X" has no finite list of patterns to check for use.
            raise PolicyError(f"statement {self.sid!r} allows with NotAction/NotResource; list what it means")
        return [Grant(self.sid, a, r) for a in self.actions for r in self.resources]


def _patterns(
    raw: Mapping[str, Any], positive: str, negative: str, label: str
) -> tuple[tuple[str, ...], bool]:
    present = [k for k in (positive, negative) if k in raw]
    if len(present) != 1:
        raise PolicyError(f"statement {label!r} needs exactly one of {positive}/{negative}, has {present}")
    values = _as_tuple(raw[present[0]], f"{label} {present[0]}")
    if not all(isinstance(v, str) for v in values):
        raise PolicyError(f"statement {label!r} {present[0]} must hold strings, got {values!r}")
    return tuple(_refuse_policy_variables(v) for v in values), present[0] == negative


def _parse_statement(raw: Any, index: int) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"statement {index} must be an object, got {raw!r}")
    label = str(raw.get("Sid", f"#{index}"))
    unknown = raw.keys() - _STATEMENT_KEYS
    if unknown:
        # Principal/NotPrincipal belong to resource policies; anything else is a typo IAM would reject.
        raise PolicyError(f"statement {label!r} has keys an identity policy cannot have: {sorted(unknown)}")
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError(f"statement {label!r} has Effect {raw.get('Effect')!r}")
    actions, actions_negated = _patterns(raw, "Action", "NotAction", label)
    bad_actions = [a for a in actions if a != "*" and ":" not in a]
    if bad_actions:
        raise PolicyError(f"statement {label!r} has actions without a service prefix: {bad_actions}")
    resources, resources_negated = _patterns(raw, "Resource", "NotResource", label)
    return Statement(
        sid=label,
        effect=cast(Effect, raw["Effect"]),
        actions=actions,
        actions_negated=actions_negated,
        resources=resources,
        resources_negated=resources_negated,
        conditions=_parse_conditions(raw.get("Condition", {})),
    )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, document: Mapping[str, Any] | str) -> Policy:
        doc = json.loads(document) if isinstance(document, str) else document
        if not isinstance(doc, Mapping):
            raise PolicyError(f"a policy document is a JSON object, got {doc!r}")
        unknown = doc.keys() - _DOCUMENT_KEYS
        if unknown:
            raise PolicyError(f"policy document has unknown keys {sorted(unknown)}")
        if doc.get("Version") != _VERSION:
            raise PolicyError(f"policy Version must be {_VERSION}, got {doc.get('Version')!r}")
        raw_statements = _as_tuple(doc.get("Statement", []), "Statement")
        return cls(tuple(_parse_statement(s, i) for i, s in enumerate(raw_statements)))

    def allows(self, action: str, resource: str, context: Mapping[str, str] | None = None) -> bool:
        applicable = [s for s in self.statements if s.applies_to(action, resource, context or {})]
        if any(s.effect == "Deny" for s in applicable):
            return False
        return any(s.effect == "Allow" for s in applicable)

    def grants(self) -> list[Grant]:
        """Every (sid, action pattern, resource pattern) the Allow statements grant, conditions aside."""
        return [g for s in self.statements if s.effect == "Allow" for g in s.grants()]


def unused_grants(policy: Policy, used: Iterable[tuple[str, str]]) -> list[Grant]:
    """Grants that no used (action, resource) pair falls under: permissions the policy gives for nothing."""
    pairs = list(used)
    return [g for g in policy.grants() if not any(g.covers(action, resource) for action, resource in pairs)]
