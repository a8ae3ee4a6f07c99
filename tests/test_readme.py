"""The README's promises that a new user acts on first, and the documents it links to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.mockrun import PROJECT_DIR

README = PROJECT_DIR / "README.md"
ARCHITECTURE = PROJECT_DIR / "docs" / "architecture.md"
DOCUMENTS = [README, *sorted((PROJECT_DIR / "docs").glob("*.md"))]


def setup_commands() -> list[str]:
    readme = README.read_text()
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

    readme = README.read_text()
    stated = re.search(r"The dev stack creates (\d+) resources, prod (\d+)", readme)
    assert stated, "the README states how many resources each stack creates"
    created = [sum(synth(stack).count_by_type().values()) for stack in ("dev", "prod")]
    assert [int(stated[1]), int(stated[2])] == created


def test_architecture_policy_pack_section_is_the_pack() -> None:
    from guardrails import GUARDRAILS
    from tests.policy.test_first_preview import JUDGED_IN_FULL

    architecture = ARCHITECTURE.read_text()
    stated = re.search(r"CrossGuard policy pack of the controls above: (\d+) policies", architecture)
    deferred = re.search(r"On a new stack's first preview, the (\d+) policies", architecture)
    assert stated and deferred, "architecture.md states the policy count and what a first preview defers"
    assert int(stated[1]) == len(GUARDRAILS)
    assert int(deferred[1]) == len(GUARDRAILS) - len(JUDGED_IN_FULL)
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (.+?) \| (.+?) \|$", architecture, re.MULTILINE)
    assert rows == [(g.name, ", ".join(g.controls), g.summary) for g in GUARDRAILS]


def _without_code(markdown: str) -> str:
    """The text outside fenced blocks and inline code, where a link is a link."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`", "", heading.strip()).lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text))


def _anchors(document: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", _without_code(document.read_text()), re.MULTILINE)
    return {_anchor(heading) for heading in headings}


def _relative_links(document: Path) -> list[str]:
    targets = re.findall(r"\]\(([^)\s]+)\)", _without_code(document.read_text()))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_anchor_rule_is_githubs() -> None:
    assert _anchor("After an upload: where to look") == "after-an-upload-where-to-look"
    assert _anchor("What happens next, and how long it takes") == "what-happens-next-and-how-long-it-takes"
    assert _anchor("The contest's scoring") == "the-contests-scoring"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_every_relative_link_points_to_a_file_and_heading_that_exist(document: Path) -> None:
    links = _relative_links(document)
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (document.parent / path).resolve() if path else document
        if not target.exists():
            broken.append(f"{link}: no file {target}")
        elif anchor and (target.suffix != ".md" or anchor not in _anchors(target)):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert not broken, broken


def test_the_readme_links_every_document() -> None:
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in _relative_links(README)}
    for document in DOCUMENTS[1:]:
        assert document.resolve() in linked, document.name
