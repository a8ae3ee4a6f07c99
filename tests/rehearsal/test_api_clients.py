"""The API as its clients call it, against the rehearsal's stack with a model deployed: the README's Python
client, run as it is written, and the prediction load benchmark's two paths."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rehearsal.flows import RehearsalOptions, serving
from rehearsal.local_stack import LocalStack
from rehearsal.rehearse import records_from_csv
from rehearsal.samples import TARGET, sample_dataset
from tools.mockrun import PROJECT_DIR
from tools.prediction_load_benchmark import load_process, load_spec, report

README = PROJECT_DIR / "README.md"
RECORDS = records_from_csv(sample_dataset().good.body, TARGET, 3)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with serving(RehearsalOptions(trials=2), progress=lambda _: None) as (served, _result):
        yield served


def readme_python_client() -> str:
    """The Python block of the README's "Calling the API" section."""
    section = README.read_text().split("### Calling the API", 1)[1].split("\n### ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return block


def run_client(stack: LocalStack, tmp_path: Path, credentials: Any) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "predict.py"
    script.write_text(readme_python_client())
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"records": RECORDS}))
    # Only what the README says to set, and credentials by the standard environment variables.
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "API_URL": stack.api.url,
        "API_KEY": stack.api.api_key,
        "AWS_DEFAULT_REGION": stack.region,
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    return subprocess.run(
        [sys.executable, str(script), str(request)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_readme_python_client_signs_and_gets_predictions(stack: LocalStack, tmp_path: Path) -> None:
    credentials = stack.api_client.credentials
    assert credentials is not None
    done = run_client(stack, tmp_path, credentials)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert len(answer["predictions"]) == len(RECORDS)
    assert {p["label"] for p in answer["predictions"]} <= {"benign", "malignant"}


def test_the_readme_python_client_is_refused_with_a_wrong_secret(stack: LocalStack, tmp_path: Path) -> None:
    credentials = stack.api_client.credentials
    assert credentials is not None
    done = run_client(stack, tmp_path, replace(credentials, secret_access_key="x" * 40))
    assert done.returncode != 0
    assert "HTTP Error 403" in done.stderr


def test_the_load_benchmark_measures_the_api_and_the_runtime_without_errors(stack: LocalStack) -> None:
    spec = load_spec(stack, RECORDS, requests=6, concurrency=2)
    # The runtime body is what the predict function sends: one CSV line per record.
    assert len(spec.runtime_body.splitlines()) == len(RECORDS)
    figures = load_process(spec)
    for name in ("api", "runtime"):
        assert figures[name].requests == 6 and figures[name].errors == 0, figures[name]
        assert 0 < figures[name].p50_ms <= figures[name].p99_ms
    assert "api / runtime: p50 x" in report(figures, concurrency=2, records=len(RECORDS))
