"""Every guardrail passes on the real program for each stack and fails on its deliberately broken case."""

from __future__ import annotations

import pytest

from guardrails import GUARDRAILS
from tests.policy.broken import BROKEN
from tests.support.policy_pack import guardrail, violations
from tests.support.stacks import STACKS, synth

NAMES = [g.name for g in GUARDRAILS]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", NAMES)
def test_the_program_passes_every_guardrail(name: str, stack: str) -> None:
    assert violations(guardrail(name), synth(stack)) == []


@pytest.mark.parametrize("name", NAMES)
def test_each_guardrail_reports_its_broken_case(name: str) -> None:
    broken = BROKEN[name]
    assert violations(guardrail(name), broken.run()), f"{name} misses: {broken.what}"


def test_every_guardrail_has_a_broken_case_and_every_case_a_guardrail() -> None:
    assert sorted(BROKEN) == sorted(NAMES)


def test_counts_agree_policies_pass_on_both_stacks_and_fail_on_their_broken_cases() -> None:
    passing = {stack: sum(not violations(g, synth(stack)) for g in GUARDRAILS) for stack in STACKS}
    failing = sum(bool(violations(g, BROKEN[g.name].run())) for g in GUARDRAILS)
    n = len(GUARDRAILS)
    summary = "{} policies, {} pass on dev, {} on prod, {} fail on their broken cases"
    assert summary.format(n, passing["dev"], passing["prod"], failing) == summary.format(n, n, n, n)


def test_names_are_unique_and_each_cites_a_control() -> None:
    assert len(set(NAMES)) == len(NAMES)
    for g in GUARDRAILS:
        assert g.controls, g.name
        assert all(c in g.policy.description for c in g.controls)
