"""Run the program under mocks per stack config and hand tests the resolved resources.

    run = synth("prod")
    bucket = run.named("ingest-data")
    assert bucket.protect

Runs are cached per (stack, overrides), so a test file asserts freely over one run.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from tools.mockrun import StackRun, run_program, stack_config, with_overrides

STACKS = ("dev", "prod")
# What a team sets before deploying a stack file as shipped: prod refuses its placeholder alarm address.
DEPLOYABLE = {"prod": {"alarmEmail": "ml-platform-oncall@corp.internal"}}


def config_for(stack: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The stack file's config with `overrides` (keys without the project namespace) applied."""
    return with_overrides(stack_config(stack), {**DEPLOYABLE.get(stack, {}), **(overrides or {})})


@functools.cache
def _synth(stack: str, overrides: tuple[tuple[str, str], ...]) -> StackRun:
    return run_program(stack, config_for(stack, dict(overrides)))


def synth(stack: str, **overrides: str) -> StackRun:
    return _synth(stack, tuple(sorted(overrides.items())))
