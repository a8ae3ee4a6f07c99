"""The README's promises that a new user acts on first."""

from __future__ import annotations

import re

from tools.mockrun import PROJECT_DIR


def setup_commands() -> list[str]:
    readme = (PROJECT_DIR / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.DOTALL)
    assert first_block, "README has no command block"
    return [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_setup_commands_that_exist() -> None:
    assert setup_commands() == ["make rehearse", "make test"]
    makefile = (PROJECT_DIR / "Makefile").read_text()
    for command in setup_commands():
        assert re.search(rf"^{command.split()[1]}:", makefile, re.MULTILINE), command


def test_ci_runs_the_readme_test_command() -> None:
    ci = (PROJECT_DIR / ".ci" / "run").read_text()
    assert setup_commands()[1] in ci.splitlines()


def test_readme_resource_counts_are_what_the_program_creates() -> None:
    from tests.support.stacks import synth

    readme = (PROJECT_DIR / "README.md").read_text()
    stated = re.search(r"The dev stack creates (\d+) resources, prod (\d+)", readme)
    assert stated, "the README states how many resources each stack creates"
    created = [sum(synth(stack).count_by_type().values()) for stack in ("dev", "prod")]
    assert [int(stated[1]), int(stated[2])] == created


def test_readme_policy_pack_section_is_the_pack() -> None:
    from guardrails import GUARDRAILS
    from tests.policy.test_first_preview import JUDGED_IN_FULL

    readme = (PROJECT_DIR / "README.md").read_text()
    stated = re.search(r"CrossGuard policy pack of the controls above: (\d+) policies", readme)
    deferred = re.search(r"On a new stack's first preview, the (\d+) policies", readme)
    assert stated and deferred, "the README states the pack's policy count and what a first preview defers"
    assert int(stated[1]) == len(GUARDRAILS)
    assert int(deferred[1]) == len(GUARDRAILS) - len(JUDGED_IN_FULL)
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (.+?) \| (.+?) \|$", readme, re.MULTILINE)
    assert rows == [(g.name, ", ".join(g.controls), g.summary) for g in GUARDRAILS]
