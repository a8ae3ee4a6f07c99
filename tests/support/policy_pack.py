"""Run the policy pack's guardrails on a stack's recorded resources the way the Pulumi engine runs them.

A resource policy sees each resource's inputs, a stack policy every resource's outputs, with parents,
dependencies and property dependencies as objects; values arrive wrapped in the SDK's unknown-checking
proxy, as in a real run. The stack's config is the one the program ran with, which is what the pack reads
through `pulumi.Config()` under `pulumi preview`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
    unknown_checking_proxy,
)

from guardrails import GUARDRAILS, Guardrail
from tools.mockrun import Resource, StackRun


@dataclass(frozen=True)
class Reported:
    message: str
    urn: str


def _options(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=resource.ignore_changes,
        delete_before_replace=resource.delete_before_replace,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


def _stack_resources(run: StackRun) -> list[PolicyResource]:
    by_urn = {
        r.urn: PolicyResource(
            r.type, unknown_checking_proxy(r.outputs), r.urn, r.name, _options(r), None, None, [], {}
        )
        for r in run.resources
    }
    # Links to resources outside the stack are dropped, as the engine drops them.
    for r in run.resources:
        policy_resource = by_urn[r.urn]
        policy_resource.parent = by_urn.get(r.parent)
        policy_resource.dependencies = [by_urn[u] for u in r.dependencies if u in by_urn]
        policy_resource.property_dependencies = {
            key: [by_urn[u] for u in urns if u in by_urn] for key, urns in r.property_dependencies.items()
        }
    return list(by_urn.values())


def evaluate(guardrail: Guardrail, run: StackRun) -> tuple[list[Reported], int]:
    """What the guardrail reports on the stack, and on how many resources (or the stack) it could not
    run because a value it reads is unknown, which the SDK reports as "can't run during preview"."""
    pulumi.runtime.set_all_config(run.config)
    reported: list[Reported] = []
    unknown = 0
    policy = guardrail.policy
    if isinstance(policy, ResourceValidationPolicy):
        for r in run.resources:
            args = ResourceValidationArgs(
                r.type, unknown_checking_proxy(r.inputs), r.urn, r.name, _options(r), None
            )
            try:
                policy.validate(
                    args, lambda message, urn, at=r.urn: reported.append(Reported(message, urn or at))
                )
            except UnknownValueError:
                unknown += 1
    else:
        try:
            policy.validate(
                StackValidationArgs(_stack_resources(run)),
                lambda message, urn: reported.append(Reported(message, urn or "")),
            )
        except UnknownValueError:
            unknown += 1
    return reported, unknown


def violations(guardrail: Guardrail, run: StackRun) -> list[Reported]:
    """What the guardrail reports on a stack whose values are all known; empty when it complies."""
    reported, unknown = evaluate(guardrail, run)
    assert unknown == 0, f"{guardrail.name} met an unknown value in a stack with none"
    return reported


def first_preview(run: StackRun) -> StackRun:
    """The run as the first `pulumi preview` of a new stack sees it: every value AWS assigns (an id, an
    ARN, a generated name) is unknown, and so is every value computed from one: a nested field that holds
    it, or a whole document (a policy) that embeds it. Literals stay known."""
    preview = copy.deepcopy(run)
    assigned = {r.id for r in run.resources if r.id} | {
        value
        for r in run.resources
        for key, value in r.outputs.items()
        if key not in r.inputs and isinstance(value, str) and value
    }
    for r in preview.resources:
        r.inputs = _hide(r.inputs, assigned)
        r.outputs = {
            k: _unknown(v) if k not in run.named(r.name).inputs else _hide(v, assigned)
            for k, v in r.outputs.items()
        }
    return preview


def _hide(value: Any, assigned: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _hide(v, assigned) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v, assigned) for v in value]
    if isinstance(value, str) and any(a in value for a in assigned):
        return UNKNOWN_STRING_VALUE
    return value


def _unknown(value: Any) -> str:
    if isinstance(value, bool):
        return UNKNOWN_BOOLEAN_VALUE
    if isinstance(value, int | float):
        return UNKNOWN_NUMBER_VALUE
    if isinstance(value, list):
        return UNKNOWN_ARRAY_VALUE
    if isinstance(value, dict):
        return UNKNOWN_OBJECT_VALUE
    return UNKNOWN_STRING_VALUE


def guardrail(name: str) -> Guardrail:
    (found,) = [g for g in GUARDRAILS if g.name == name]
    return found


# Broken stacks are made from the recorded real ones, changing one resource the way a careless edit of
# the program would.


def changed(run: StackRun, name: str, change: Callable[[dict[str, Any]], None]) -> StackRun:
    """A copy of the run in which `change` is applied to the named resource's inputs and outputs."""
    broken = copy.deepcopy(run)
    target = broken.named(name)
    change(target.inputs)
    change(target.outputs)
    return broken


def without(run: StackRun, name: str) -> StackRun:
    """A copy of the run without the named resource."""
    broken = copy.deepcopy(run)
    broken.resources = [r for r in broken.resources if r.name != name]
    return broken


def edit_json(key: str, edit: Callable[[Any], None]) -> Callable[[dict[str, Any]], None]:
    """A change that edits the JSON document held in the input `key` (a policy, a redrive policy)."""

    def change(props: dict[str, Any]) -> None:
        document = json.loads(props[key])
        edit(document)
        props[key] = json.dumps(document)

    return change


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in document["Statement"] if s.get("Sid") == sid]
    return found  # type: ignore[no-any-return]
