"""The offline synth as a reviewer reads it: the same bytes for the same program, no secret in any output,
config overrides without editing a stack file, the tuning request in full, and the resource options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stacks import DEPLOYABLE, synth
from tools.synth import REDACTED, main, tuning_request_template

PROJECT_DIR = Path(__file__).resolve().parent.parent


def deployable(stack: str) -> list[str]:
    """The synth's --config flags that set what a team sets before deploying the shipped stack file."""
    return [f"--config={key}={value}" for key, value in DEPLOYABLE.get(stack, {}).items()]


def synth_in_a_fresh_process(out: Path, *args: str) -> str:
    answer = subprocess.run(
        [sys.executable, "-m", "tools.synth", *args, "--out", str(out)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return answer.stdout


def test_two_synths_are_byte_identical(tmp_path: Path) -> None:
    # Separate processes: the order the program's callbacks register resources in differs between runs.
    first = synth_in_a_fresh_process(tmp_path / "1.json", "dev")
    second = synth_in_a_fresh_process(tmp_path / "2.json", "dev")
    assert first.replace("1.json", "") == second.replace("2.json", "")
    assert (tmp_path / "1.json").read_bytes() == (tmp_path / "2.json").read_bytes()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_value_reaches_the_tree_or_the_json(
    stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = synth(stack)
    api_key = run.outputs["api_key"]["value"]  # what the mock gave the key, in the SDK's secret wrapper
    assert main([stack, *deployable(stack), "--out", str(tmp_path / "out.json")]) == 0
    printed = capsys.readouterr().out
    written = (tmp_path / "out.json").read_text()
    for text in (printed, written):
        assert api_key not in text
        assert "4dabf18193072939515e22adb298388d" not in text  # the wire format's secret signature
    assert f"api_key = {REDACTED}" in printed
    assert json.loads(written)["outputs"]["api_key"] == REDACTED


def test_a_config_override_changes_the_program_without_the_stack_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dev", "--out", str(tmp_path / "a.json")]) == 0
    assert main(["dev", "--config", "tracing=true", "--out", str(tmp_path / "b.json")]) == 0
    plain, traced = capsys.readouterr().out.split("stack dev:")[1:]
    assert '"mode": "Active"' not in plain
    assert '"mode": "Active"' in traced


def test_a_malformed_override_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dev", "--config", "tracing"])
    assert "expected key=value" in capsys.readouterr().err


def test_the_tuning_request_is_printed_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--tuning-request", "--out", str(tmp_path / "out.json")]) == 0
    printed = capsys.readouterr().out
    body = printed.split("tuning request template:\n", 1)[1].rsplit("\nwrote ", 1)[0]
    assert json.loads(body) == tuning_request_template(synth("dev"))
    assert "TrainingJobDefinition" in json.loads(body)


@pytest.mark.parametrize(
    ("stack", "option", "shown"),
    [("prod", "protect", "(protected)"), ("dev", "ignore_changes", "(ignores changes to ")],
)
def test_resource_options_are_shown(
    stack: str, option: str, shown: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([stack, *deployable(stack), "--out", str(tmp_path / "out.json")]) == 0
    having = [r for r in synth(stack).resources if getattr(r, option)]
    assert having
    assert capsys.readouterr().out.count(shown) == len(having)
