"""`pulumi up` runs on the runtime lock alone, and the dev lock agrees with it.

requirements.txt is what `pulumi install` puts into Pulumi's virtualenv; the make targets use another one,
filled from requirements-dev.txt, so a test run never changes what a stack deploys with.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (PROJECT_DIR / lock).read_text()
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(text)}


def test_every_runtime_pin_is_the_dev_locks() -> None:
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert runtime
    disagreeing = {name: (pin, dev.get(name)) for name, pin in runtime.items() if dev.get(name) != pin}
    assert disagreeing == {}


def test_pulumi_and_make_use_different_virtualenvs() -> None:
    runtime = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["runtime"]
    pulumi_venv = runtime["options"]["virtualenv"]
    make_venv = re.search(r"^VENV := (\S+)$", (PROJECT_DIR / "Makefile").read_text(), re.MULTILINE)
    assert make_venv
    assert make_venv[1].rstrip("/") != pulumi_venv.rstrip("/")


# Runs the program under mocks in a fresh interpreter that can import, of the installed distributions, only
# those the runtime lock pins, as in Pulumi's virtualenv: a module of any other distribution is not found
# (an optional import falls back, a required one fails the program). It prints the distributions used.
_PROGRAM_ON_THE_RUNTIME_LOCK = """
import importlib.machinery, importlib.metadata, json, os, site, sys
runtime = set(json.loads(sys.argv[1]))
normal = lambda name: name.lower().replace("_", "-")
owner = {}
for dist in importlib.metadata.distributions():
    name = normal(dist.metadata["Name"])
    for file in dist.files or ():
        owner[os.path.normpath(dist.locate_file(file))] = name

class RuntimeLockOnly:
    def find_spec(self, name, path, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        dist = owner.get(os.path.normpath(spec.origin)) if spec and spec.origin else None
        if dist is not None and dist not in runtime:
            raise ModuleNotFoundError(f"{name}: {dist} is not in the runtime lock", name=name)
        return None

sys.meta_path.insert(0, RuntimeLockOnly())
from tests.support.stacks import config_for
from tools.mockrun import run_program
run = run_program("dev", config_for("dev"))
assert run.resources
files = [m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
used = {owner.get(os.path.normpath(file)) for file in files}
print(json.dumps(sorted(used - {None})))
"""


def test_the_program_runs_on_the_runtime_lock_and_uses_every_runtime_dependency() -> None:
    runtime = pins("requirements.txt")
    answer = subprocess.run(
        [sys.executable, "-c", _PROGRAM_ON_THE_RUNTIME_LOCK, json.dumps(sorted(runtime))],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    used = set(json.loads(answer.stdout.splitlines()[-1]))
    declared = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["dependencies"]
    direct = {PIN.match(spec)[1].lower() for spec in declared}  # type: ignore[index]
    assert direct - used == set(), "a runtime dependency the program does not import"
    assert "sagemaker" not in runtime
