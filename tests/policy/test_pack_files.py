"""The pack's own files agree with the program's: the same pulumi, the same pulumi-policy the tests run,
and the program's defaults for the keys it reads."""

from __future__ import annotations

import re
import tomllib

import yaml

import settings
from guardrails import stack_config
from tools.mockrun import PROJECT_DIR

PACK_DIR = PROJECT_DIR / "policy_pack"


def _pins(lines: list[str]) -> dict[str, str]:
    return dict(re.findall(r"^\s*([A-Za-z0-9_.-]+)==([^\s;]+)", "\n".join(lines), re.MULTILINE))


def test_the_pack_pins_the_programs_pulumi_and_the_pulumi_policy_the_tests_run() -> None:
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    program = _pins(project["dependencies"])
    dev = _pins(project["optional-dependencies"]["dev"])
    pack = _pins((PACK_DIR / "requirements.txt").read_text().splitlines())
    assert pack == {"pulumi": program["pulumi"], "pulumi-policy": dev["pulumi-policy"]}


def test_the_pack_is_a_python_policy_project() -> None:
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"


def test_the_pack_reads_tracing_with_the_programs_defaults() -> None:
    assert (
        settings.TRACING.default,
        settings.API_TRACING.default,
    ) == (stack_config.TRACING_DEFAULT, stack_config.API_TRACING_DEFAULT)
