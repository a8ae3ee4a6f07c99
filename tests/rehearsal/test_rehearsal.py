"""The whole pipeline on this machine, end to end, and the failures it must contain.

Each test stands the dev stack up from the program, runs its functions from their packages and trains
real XGBoost models; what it asserts is read back from what the system wrote (the run's manifest, the
rejection report, the deployment record, the API's answer), never from the rehearsal's own bookkeeping.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deploy.contest import Outcome
from rehearsal import __main__ as cli
from rehearsal.faults import FAULTS
from rehearsal.flows import CONFIG, RehearsalOptions, run_rehearsal
from rehearsal.local_stack import LocalStack, Revocation, StackOptions
from rehearsal.report import write_report
from rehearsal.samples import TARGET, sample_dataset

QUIET = lambda _: None  # noqa: E731 - the rehearsal's progress is not what these tests read
FEW_TRIALS = 2
# The faults that wait out the queue's visibility timeout (5400 s in dev) pass it faster.
FASTER = {"transform-fails-once": 3000.0, "transform-always-fails": 3000.0}
# Time limit of their training jobs: at 3000x dev's 1800 s would be 0.6 s of this machine's time, which
# training on a busy machine can exceed (the jobs end Stopped, MaxRuntimeExceeded); 9000 s is the 3 s that
# the other faults' 600x gives.
FASTER_TRAINING = {"serverless-ml-pipeline:trainingMaxRuntimeSeconds": "9000"}


def test_the_sample_goes_from_upload_to_predictions_and_the_broken_file_to_a_rejection(
    tmp_path: Path,
) -> None:
    result = run_rehearsal(RehearsalOptions(trials=4), progress=QUIET, work_dir=tmp_path)
    first = result.first
    assert first.manifest is not None
    rows = first.manifest["rows"]
    assert rows["read"] == 569 and rows["train"] + rows["validation"] == 569 and rows["rejected"] == 0
    schema = first.manifest["schema"]
    assert first.tuning_status == "Completed" and len(first.trials) == 4
    # Early stopping (TrainingJobEarlyStoppingType Auto) may stop a trial that trails the others.
    assert all(t.status in ("Completed", "Stopped") and t.objective is not None for t in first.trials)
    assert first.objective_metric == "validation:auc" and max(t.objective or 0 for t in first.trials) > 0.9
    assert first.deployment is not None and first.deployment["outcome"] == Outcome.DEPLOY

    assert result.predictions is not None
    predictions = result.predictions["predictions"]
    assert len(predictions) == len(result.sample_records) == 3
    assert {p["label"] for p in predictions} <= {"benign", "malignant"}, predictions
    assert "sample_id" not in result.feature_importance and result.feature_importance
    assert schema["inferred"]

    broken = result.outcomes[1]
    assert broken.rejection is not None and broken.manifest is None
    assert "decimal comma" in broken.rejection["reason"]

    report = write_report(result, first.objective_direction, tmp_path / "report.html")
    assert report.read_text().count("data:image/png;base64,") == 2

    # The README's Logs Insights query over the functions' logs: one dataset's story, upload to deployment.
    story = dataset_story(tmp_path / "logs", first.manifest["dataset"])
    transformed = next(line for line in story if line["message"] == "upload transformed")
    started = next(line for line in story if line["message"] == "tuning started")
    decided = next(line for line in story if line["service"] == "deploy" and line.get("outcome") == "deploy")
    assert transformed["run"] == first.manifest["run"] and transformed["run"] in started["runs"]
    assert started["tuning_job"] == decided["tuning_job"] == first.deployment["tuning_job"]
    assert story.index(transformed) < story.index(started) < story.index(decided)
    assert any(line["message"] == "upload rejected" for line in story)  # the broken file of the dataset


def dataset_story(log_dir: Path, dataset: str) -> list[dict[str, Any]]:
    """`filter dataset = "<dataset>" | sort @timestamp asc` over every function's log, as Logs Insights
    runs it over their log groups: the JSON lines (Powertools' structured logs) with that dataset key."""
    lines = []
    for log in sorted(log_dir.glob("*.log")):
        for text in log.read_text().splitlines():
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                continue  # START, END and REPORT lines, which are not JSON
            if isinstance(line, dict) and line.get("dataset") == dataset:
                lines.append(line)
    return sorted(lines, key=lambda line: line["timestamp"])


def test_a_csv_of_the_users_own_goes_the_same_way(tmp_path: Path) -> None:
    """`rehearse --csv`: another table, another problem type, its target named by the user."""
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]

    iris = load_iris()
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    lines += [
        ",".join([*map(str, row), str(iris.target_names[t])])
        for row, t in zip(iris.data, iris.target, strict=True)
    ]
    path = tmp_path / "iris.csv"
    path.write_text("\n".join(lines) + "\n")
    options = RehearsalOptions(csv=path, settings={"targetColumn": "species"}, trials=FEW_TRIALS)
    result = run_rehearsal(options, progress=QUIET, work_dir=tmp_path / "work")
    assert result.dataset == "iris" and result.first.objective_metric == "validation:mlogloss"
    assert result.first.objective_direction == "Minimize"
    assert result.predictions is not None
    predicted = result.predictions["predictions"]
    assert [p["label"] for p in predicted] == ["setosa"] * 3  # the file's first rows
    assert all(set(p["probabilities"]) == {"setosa", "versicolor", "virginica"} for p in predicted)


def test_a_cognito_stack_is_called_with_the_id_token_of_a_user_of_its_pool(tmp_path: Path) -> None:
    """apiAuthorization cognito: the pool and app client stand up in moto, a user signs in, and only its
    ID token opens the API."""
    seen: dict[str, object] = {}

    def keep(stack: LocalStack, _result: object) -> None:
        client = stack.api_client
        seen["token"] = client.id_token
        seen["without"] = replace(client, id_token="not-a-token").call("GET", "/health")[0]

    options = RehearsalOptions(trials=FEW_TRIALS, config={f"{CONFIG}:apiAuthorization": "cognito"})
    result = run_rehearsal(options, progress=QUIET, work_dir=tmp_path, keep=keep)
    assert result.predictions is not None and len(result.predictions["predictions"]) == 3
    assert isinstance(seen["token"], str) and seen["token"].count(".") == 2
    assert seen["without"] == 401


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_staged_fault_is_contained(fault: str, tmp_path: Path) -> None:
    """Each fault's own checks (rehearsal/faults.py) raise FaultNotContained if the system lets it through."""
    options = RehearsalOptions(
        trials=FEW_TRIALS,
        fault=fault,
        time_scale=FASTER.get(fault, 600.0),
        config=FASTER_TRAINING if fault in FASTER else {},
    )
    result = run_rehearsal(options, progress=QUIET, work_dir=tmp_path)
    assert result.outcomes or fault == "transform-always-fails"


def test_a_permission_taken_from_the_program_is_an_access_denied_in_the_rehearsal(tmp_path: Path) -> None:
    """The transform's role without s3:GetObject: moto denies the read, the function fails, the message
    ends in the dead-letter queue, and nothing is written."""
    sample = sample_dataset()
    revoked = (Revocation("transform-role-policy", "s3:GetObject"),)
    options = StackOptions(
        revocations=revoked, work_dir=tmp_path, time_scale=FASTER["transform-always-fails"]
    )
    with LocalStack(options) as stack:
        stack.upload(sample.good.key, sample.good.body)
        stack.wait_for("the dead letter", lambda: stack.queue_depth("dead_letter_queue_url") == 1, 120)
        transform = str(stack.run.outputs["transform_function"])
        errors = [i.error for i in stack.lambda_.invocations(transform) if i.error]
        assert errors and all("AccessDenied" in json.dumps(e) for e in errors), errors
        assert not stack.keys("processed/") and not stack.keys("rejected/")


def test_the_cli_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], ["rehearse"], ["serve"], ["predict"], ["synth"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*command, "--help"])
        assert exit_.value.code == 0
        assert "usage: python -m rehearsal" in capsys.readouterr().out


def test_the_bundled_sample_names_its_target_and_carries_an_identifier() -> None:
    sample = sample_dataset()
    header = sample.good.body.decode().splitlines()[0].split(",")
    assert header[0] == "sample_id" and header[-1] == TARGET and sample.settings == {"targetColumn": TARGET}
