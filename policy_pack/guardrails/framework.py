"""How a guardrail is declared: the control it stands for, what it checks, and the policy Pulumi runs.

A check is a plain function that yields what violates the control. Resource checks see one resource's
inputs (`pulumi preview` runs them before each resource is created or updated); stack checks see every
resource's outputs (they run once the whole stack is known) and answer for controls that span resources,
such as a bucket and the separate resources that configure it in pulumi-aws v7.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

Props = Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    message: str
    urn: str


@dataclass(frozen=True)
class Guardrail:
    """One policy of the pack and the published controls it stands for."""

    name: str
    # Security Hub (AWS Foundational Security Best Practices) control ids and Checkov check ids; where
    # neither exists, the AWS guide the rule comes from.
    controls: tuple[str, ...]
    summary: str
    policy: Policy


def _description(summary: str, controls: tuple[str, ...]) -> str:
    return f"{summary} [{', '.join(controls)}]"


def resource_guardrail(
    name: str,
    controls: tuple[str, ...],
    summary: str,
    types: frozenset[str],
    check: Callable[[str, Props], Iterable[str]],
) -> Guardrail:
    """A guardrail on each resource of `types`: `check(type, inputs)` yields what is wrong with one."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type in types:
            for message in check(args.resource_type, args.props):
                report_violation(message, None)

    policy = ResourceValidationPolicy(
        name=name,
        description=_description(summary, controls),
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )
    return Guardrail(name, controls, summary, policy)


class Stack:
    """The stack's resources as a stack policy sees them, with the links between them."""

    def __init__(self, resources: Iterable[PolicyResource]) -> None:
        self.resources = list(resources)

    def of_type(self, *types: str) -> list[PolicyResource]:
        return [r for r in self.resources if r.resource_type in types]

    def referring(
        self, candidates: Iterable[PolicyResource], prop: str, target: PolicyResource, key: str
    ) -> list[PolicyResource]:
        """The candidates whose input `prop` names `target` (its output `key`, e.g. a bucket's name).

        The engine records which resources an input was computed from, which holds even while the value
        itself is unknown (a first preview, before AWS names anything); a value given as a literal is
        compared instead.
        """
        return [c for c in candidates if _refers_to(c, prop, target, key)]


def _refers_to(resource: PolicyResource, prop: str, target: PolicyResource, key: str) -> bool:
    computed_from = resource.property_dependencies.get(prop)
    if computed_from:
        return target in computed_from
    return prop in resource.props and key in target.props and resource.props[prop] == target.props[key]


def stack_guardrail(
    name: str, controls: tuple[str, ...], summary: str, check: Callable[[Stack], Iterable[Violation]]
) -> Guardrail:
    """A guardrail over the whole stack: `check(stack)` yields each violation and the resource at fault."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for violation in check(Stack(args.resources)):
            report_violation(violation.message, violation.urn)

    policy = StackValidationPolicy(
        name=name,
        description=_description(summary, controls),
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )
    return Guardrail(name, controls, summary, policy)


def is_set(props: Props, key: str) -> bool:
    """`key` has a value: a non-empty one, or one not known yet during a preview (a key's ARN, say)."""
    if key not in list(props):
        return False
    try:
        return bool(props[key])
    except UnknownValueError:
        return True


def as_list(value: Any) -> list[Any]:
    """A property or policy field that may hold one item or a list of them (during a real run, lists
    arrive wrapped in the SDK's unknown-checking proxy, a Sequence)."""
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def each(
    items: Iterable[PolicyResource], check: Callable[[PolicyResource], str | None]
) -> Iterator[Violation]:
    """A violation at each resource for which `check` answers what is wrong."""
    for item in items:
        message = check(item)
        if message:
            yield Violation(message, item.urn)
