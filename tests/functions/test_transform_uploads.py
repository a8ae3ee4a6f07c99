"""Uploads through S3 -> SNS -> SQS (moto) into the transform handler, and what lands in the bucket."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

import transform.upload
from shared.dataset_schema import DatasetSchema, ProblemType
from shared.dataset_store import DatasetStore
from tests.functions.conftest import DATA_BUCKET, PROGRAM, TARGET, Pipeline, churn_csv
from tests.support.lambda_events import LambdaContext


def manifest_of(pipeline: Pipeline, dataset: str) -> dict[str, Any]:
    (key,) = [k for k in pipeline.keys(f"processed/{dataset}/") if k.endswith("/manifest.json")]
    return dict(pipeline.json(key))


def encoded_rows(pipeline: Pipeline, keys: list[str]) -> list[list[str]]:
    return [row for key in keys for row in csv.reader(io.StringIO(pipeline.read(key).decode()))]


def test_first_upload_becomes_part_files_schema_manifest_and_one_tuning_job_over_them(
    pipeline: Pipeline,
) -> None:
    body = churn_csv(400)
    response = pipeline.deliver(pipeline.upload("raw/churn/2026-11.csv", body))

    assert response == {"batchItemFailures": []}
    schema = DatasetSchema.from_json(pipeline.read("processed/churn/schema.json"))
    assert schema.target.name == TARGET and schema.target.problem_type == "binary"
    assert schema.target.classes == ("no", "yes")
    assert [(f.name, f.kind.value) for f in schema.features] == [
        ("customer_age", "numeric"),
        ("monthly_spend", "numeric"),
        ("city", "categorical"),
        ("plan", "categorical"),
    ]
    manifest = manifest_of(pipeline, "churn")
    run = f"processed/churn/{manifest['run']}/"
    assert manifest["rows"] == {
        "read": 400,
        "train": manifest["rows"]["train"],
        "validation": 400 - manifest["rows"]["train"],
        "rejected": 0,
        "unlabeled": 0,
    }
    assert 0.1 < manifest["rows"]["validation"] / 400 < 0.3, "validationPercent is 20 in dev"
    assert (
        manifest["schema"]["sha256"] == schema.digest and manifest["source"]["key"] == "raw/churn/2026-11.csv"
    )
    assert manifest["files"] == {
        "train": [f"{run}train/part-00000.csv"],
        "validation": [f"{run}validation/part-00000.csv"],
    }
    assert pipeline.read(f"{run}schema.json") == pipeline.read("processed/churn/schema.json")

    # Target first, then the features in schema order, numbers only; decoded, the rows are the upload's.
    source = list(csv.DictReader(io.StringIO(body.decode())))
    encoded = encoded_rows(pipeline, manifest["files"]["train"] + manifest["files"]["validation"])
    assert len(encoded) == 400
    city, plan = schema.features[2], schema.features[3]
    decoded = sorted(
        (
            schema.target.classes[int(row[0])],
            float(row[1]),
            float(row[2]),
            city.categories[int(row[3]) - 1],
            plan.categories[int(row[4]) - 1] if row[4] else "",
        )
        for row in encoded
    )
    expected = sorted(
        (
            r[TARGET],
            float(r["customer_age"]),
            float(r["monthly_spend"]),
            r["city"],
            "" if r["plan"] in ("", "NA") else r["plan"],
        )
        for r in source
    )
    assert decoded == expected

    (job_name,) = pipeline.tuning_jobs()
    job = pipeline.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=job_name)
    assert job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "validation:auc",
    }
    definition = job["TrainingJobDefinition"]
    assert definition["RoleArn"] == PROGRAM.named("training-role").outputs["arn"]
    assert definition["StaticHyperParameters"]["objective"] == "binary:logistic"
    sources = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in definition["InputDataConfig"]}
    assert {name: source["S3DataType"] for name, source in sources.items()} == {
        "train": "ManifestFile",
        "validation": "ManifestFile",
    }
    # Each channel's manifest lists the run's part files, relative to the dataset's folder.
    for channel, keys in manifest["files"].items():
        uri = sources[channel]["S3Uri"]
        assert uri == f"s3://{DATA_BUCKET}/processed/churn/{job_name}/{channel}.manifest"
        listed = pipeline.json(uri.removeprefix(f"s3://{DATA_BUCKET}/"))
        assert listed == [{"prefix": f"s3://{DATA_BUCKET}/processed/churn/"}] + [
            key.removeprefix("processed/churn/") for key in keys
        ]
    assert pipeline.unfinished_uploads() == []
    assert [pipeline.read("raw/churn/2026-11.csv")] == [body] and len(
        pipeline.versions("raw/churn/2026-11.csv")
    ) == 1


def test_redelivered_message_starts_no_second_tuning_job_and_rewrites_nothing(
    pipeline: Pipeline, log_lines: Any
) -> None:
    messages = pipeline.upload("raw/churn/a.csv", churn_csv(300))
    pipeline.deliver(messages)
    first = {key: pipeline.versions(key) for key in pipeline.keys("processed/")}

    assert pipeline.deliver(messages) == {"batchItemFailures": []}

    assert {key: pipeline.versions(key) for key in pipeline.keys("processed/")} == first
    # The redelivery asks for tuning again (the first delivery may have stopped before asking); the two
    # requests cover the same run: one job.
    requests = pipeline.tuning_requests()
    assert len(requests) == 2
    assert pipeline.tune(requests) == [{"batchItemFailures": []}]
    assert len(pipeline.tuning_jobs()) == 1
    outcomes = [line["message"] for line in log_lines() if str(line["message"]).startswith("upload ")]
    assert outcomes == ["upload transformed", "upload already transformed"]


def test_later_upload_is_encoded_through_the_stored_schema(pipeline: Pipeline) -> None:
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))
    stored = pipeline.read("processed/churn/schema.json")
    # Columns in another order and a city the schema has never seen.
    rows = list(csv.reader(io.StringIO(churn_csv(200, seed=2, cities=["Berlin", "Lagos"]).decode())))
    reordered = io.StringIO()
    csv.writer(reordered).writerows([[row[4], row[2], row[0], row[1], row[3]] for row in rows])

    assert pipeline.deliver(pipeline.upload("raw/churn/b.csv", reordered.getvalue().encode())) == {
        "batchItemFailures": []
    }

    assert pipeline.read("processed/churn/schema.json") == stored, "a later upload never changes the contract"
    (later,) = [m for m in manifests(pipeline, "churn") if m["source"]["key"] == "raw/churn/b.csv"]
    lagos = sum(1 for row in rows[1:] if row[2] == "Lagos")
    assert later["unknownCategoryCounts"] == {"city": lagos}
    city_codes = {
        row[3] for row in encoded_rows(pipeline, later["files"]["train"] + later["files"]["validation"])
    }
    assert "0" in city_codes, "an unknown category is written as code 0"
    # Both runs' requests were waiting when the quiet period ended: one job over both.
    assert len(pipeline.tuning_jobs()) == 1


BAD_FIRST_UPLOADS = {
    "empty file": (b"", "the file is empty"),
    "header only": (b"customer_age,target\r\n", "header but no data rows"),
    "no target column": (b"a,b\n1,2\n3,4\n", "no target column 'target'"),
    "ragged rows": (b"x,target\n" + b"1,yes\n2,no\n3,no,extra\n" * 50, "has 3 fields, the header has 2"),
    "latin-1 text": ("city,target\nMünchen,yes\n".encode("latin-1"), "not UTF-8"),
    "UTF-16 text": ("x,target\n1,yes\n".encode("utf-16"), "not UTF-8"),
    "a target with one class": (
        b"x,target\n" + b"1,yes\n2,yes\n" * 100,
        "fewer than 2 classes to learn from",
    ),
    "too few labeled rows": (b"x,target\n1,yes\n2,no\n", "2 labeled rows are too few to learn from"),
    "no usable feature": (
        b"id,target\n" + b"".join(b"c-%d,%s\n" % (i, b"yes" if i % 2 else b"no") for i in range(100)),
        "no column is usable as a feature ('id': 100 of its 100 values occur only once",
    ),
}


def manifests(pipeline: Pipeline, dataset: str) -> list[dict[str, Any]]:
    return [pipeline.json(k) for k in pipeline.keys(f"processed/{dataset}/") if k.endswith("/manifest.json")]


def runs(pipeline: Pipeline, dataset: str) -> set[str]:
    return {k.split("/")[2] for k in pipeline.keys(f"processed/{dataset}/") if k.count("/") > 2}


def assert_rejected_and_kept(pipeline: Pipeline, key: str, body: bytes, reason: str) -> dict[str, Any]:
    report = dict(pipeline.json(f"rejected/{key}.json"))
    assert reason in report["reason"] + json.dumps(report["rows"], ensure_ascii=False)
    assert report["source"]["key"] == key
    assert [pipeline.read(key)] == [body] and len(pipeline.versions(key)) == 1, "the upload is never changed"
    dataset = key.split("/")[1]
    finished = {m["run"] for m in manifests(pipeline, dataset)}
    assert runs(pipeline, dataset) == finished, "no run of the rejected upload was written"
    assert key not in {m["source"]["key"] for m in manifests(pipeline, dataset)}
    assert pipeline.unfinished_uploads() == []
    return report


@pytest.mark.parametrize("case", sorted(BAD_FIRST_UPLOADS))
def test_unusable_file_gets_a_rejection_report_and_stays_untouched(pipeline: Pipeline, case: str) -> None:
    body, reason = BAD_FIRST_UPLOADS[case]
    key = "raw/bad/upload.csv"
    assert TARGET == "target", "the cases are written for the dev stack's target column"
    response = pipeline.deliver(pipeline.upload(key, body))

    assert response == {"batchItemFailures": []}, "retrying cannot fix data: the message succeeds"
    assert_rejected_and_kept(pipeline, key, body, reason)
    assert pipeline.tuning_jobs() == []


LATER_UPLOAD_PROBLEMS = {
    "a missing column": (lambda row: row[:1] + row[2:], "missing column(s) 'monthly_spend'"),
    "a renamed column": (
        lambda row: ["age" if v == "customer_age" else v for v in row],
        "'age' not in the dataset",
    ),
    "text in a numeric column": (
        lambda row: [row[0] if row[0] == "customer_age" else "n/k", *row[1:]],
        "'n/k' is not a number",
    ),
}


@pytest.mark.parametrize("case", sorted(LATER_UPLOAD_PROBLEMS))
def test_later_upload_that_breaks_the_schema_is_rejected(pipeline: Pipeline, case: str) -> None:
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))
    change, reason = LATER_UPLOAD_PROBLEMS[case]
    rows = [change(row) for row in csv.reader(io.StringIO(churn_csv(100, seed=3).decode()))]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    body = buffer.getvalue().encode()

    pipeline.deliver(pipeline.upload("raw/churn/b.csv", body))

    report = assert_rejected_and_kept(pipeline, "raw/churn/b.csv", body, "")
    assert reason in report["reason"] + json.dumps(report["rows"])
    assert len(pipeline.tuning_jobs()) == 1


def test_few_bad_rows_are_reported_and_the_rest_is_transformed(pipeline: Pipeline) -> None:
    lines = churn_csv(1000).decode().splitlines()
    bad_rows = [17, 512]  # 0.2% of the rows: under the 1% allowed in dev
    for row in bad_rows:
        lines[row] = "forty,12.5,Berlin,basic,yes" if row == 17 else "33,12.5,Berlin,basic"
    body = ("\n".join(lines) + "\n").encode()

    assert pipeline.deliver(pipeline.upload("raw/churn/a.csv", body)) == {"batchItemFailures": []}

    report = pipeline.json("rejected/raw/churn/a.csv.json")
    assert report["rejectedRowCount"] == 2
    assert [(r["row"], r["line"]) for r in report["rows"]] == [(17, 18), (512, 513)]
    assert "column 'customer_age': 'forty' is not a number" in report["rows"][0]["reason"]
    assert "has 4 fields, the header has 5" in report["rows"][1]["reason"]
    assert manifest_of(pipeline, "churn")["rows"]["rejected"] == 2
    assert len(pipeline.tuning_jobs()) == 1


@dataclass
class ShortOnTime(LambdaContext):
    millis_left: int = 31_000

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return self.millis_left


def test_file_too_large_for_a_whole_run_is_rejected_not_truncated(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: at 10 bytes/s a 900 s run of a 1,024 MB function can take about 5 KB.
    monkeypatch.setattr(transform.upload, "ASSUMED_BYTES_PER_SECOND", 10)
    body = churn_csv(2000)

    pipeline.deliver(pipeline.upload("raw/churn/big.csv", body))

    report = assert_rejected_and_kept(
        pipeline, "raw/churn/big.csv", body, f"the file has {len(body):,} bytes"
    )
    assert "in its 900 s timeout with 1024 MB of memory" in report["reason"]
    assert "split it into smaller files" in report["reason"]
    assert pipeline.tuning_jobs() == []


def test_a_first_upload_read_twice_takes_half_what_a_later_one_may(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))
    body = churn_csv(2000)
    # Between what one pass and two passes over the file can read in a run.
    monkeypatch.setattr(
        transform.upload, "ASSUMED_BYTES_PER_SECOND", 1.5 * len(body) / (900 - 30) * 1769 / 1024
    )

    pipeline.deliver(pipeline.upload("raw/churn/b.csv", body))
    assert len(manifests(pipeline, "churn")) == 2, "a later upload: one pass, it fits"

    pipeline.deliver(pipeline.upload("raw/fresh/b.csv", body))
    report = assert_rejected_and_kept(pipeline, "raw/fresh/b.csv", body, f"the file has {len(body):,} bytes")
    assert (
        "a dataset's first upload is read twice, for its schema, and a later one may take" in report["reason"]
    )


def test_file_that_needs_more_time_than_is_left_is_retried_not_rejected(pipeline: Pipeline) -> None:
    # A later message of a batch starts with little of the invocation left: a fresh one can take the file.
    body = churn_csv(2000)
    messages = pipeline.upload("raw/churn/big.csv", body)

    with pytest.raises(BatchProcessingError, match="too little for"):
        pipeline.deliver(messages, context=ShortOnTime(millis_left=30_004))

    assert pipeline.keys("rejected/") == [] and pipeline.keys("processed/") == []
    assert pipeline.deliver(messages) == {"batchItemFailures": []}
    assert len(pipeline.tuning_jobs()) == 1


def test_key_without_a_dataset_folder_is_rejected_with_the_expected_layout(pipeline: Pipeline) -> None:
    body = churn_csv(50)
    pipeline.deliver(pipeline.upload("raw/loose.csv", body))
    report = pipeline.json("rejected/raw/loose.csv.json")
    assert "upload to raw/<dataset>/<file>" in report["reason"]
    assert pipeline.keys("processed/") == []


@contextlib.contextmanager
def throttled(client: Any, operation: str) -> Iterator[None]:
    """While the block runs, every call of `operation` on `client` fails with SlowDown (retries exhausted)."""

    def raise_throttling(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, operation
        )

    event = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register(event, raise_throttling)
    try:
        yield
    finally:
        client.meta.events.unregister(event, raise_throttling)


def test_throttled_write_fails_the_message_for_redelivery_and_leaves_no_half_run(pipeline: Pipeline) -> None:
    messages = pipeline.upload("raw/churn/a.csv", churn_csv(300))

    # A batch whose every record failed fails the invocation: Lambda returns the message to the queue.
    with (
        throttled(pipeline.handler.transformer._s3, "CompleteMultipartUpload"),
        pytest.raises(BatchProcessingError, match="SlowDown"),
    ):
        pipeline.deliver(messages)

    assert pipeline.keys("rejected/") == [] and pipeline.tuning_jobs() == []
    assert [k for k in pipeline.keys("processed/") if "/part-" in k] == []
    assert pipeline.unfinished_uploads() == [], "the run's multipart uploads were aborted"
    assert pipeline.deliver(messages) == {"batchItemFailures": []}
    assert len(pipeline.tuning_jobs()) == 1


def test_throttled_tuning_request_is_sent_again_from_the_finished_run(pipeline: Pipeline) -> None:
    messages = pipeline.upload("raw/churn/a.csv", churn_csv(300))

    with (
        throttled(pipeline.handler.transformer._sqs, "SendMessage"),
        pytest.raises(BatchProcessingError, match="SlowDown"),
    ):
        pipeline.deliver(messages)
    assert manifest_of(pipeline, "churn")["rows"]["read"] == 300, "the run itself is complete"
    assert pipeline.tuning_requests() == []

    assert pipeline.deliver(messages) == {"batchItemFailures": []}
    assert len(pipeline.tuning_jobs()) == 1


def test_two_first_uploads_racing_keep_one_schema_and_the_loser_retries_through_it(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (
        pipeline.upload("raw/churn/a.csv", churn_csv(300)),
        pipeline.upload("raw/churn/b.csv", churn_csv(300, seed=9)),
    )
    pipeline.deliver(first)
    winner = pipeline.read("processed/churn/schema.json")
    # The second upload read the store before the first one wrote its schema.
    monkeypatch.setattr(DatasetStore, "read_schema", lambda self, dataset: None)

    with pytest.raises(BatchProcessingError, match="got its schema from another upload first"):
        pipeline.deliver(second)

    assert pipeline.read("processed/churn/schema.json") == winner, "the conditional write keeps the first"
    assert [m["source"]["key"] for m in manifests(pipeline, "churn")] == ["raw/churn/a.csv"]
    monkeypatch.undo()
    assert pipeline.deliver(second) == {"batchItemFailures": []}
    assert {m["schema"]["sha256"] for m in manifests(pipeline, "churn")} == {
        DatasetSchema.from_json(winner).digest
    }


# ------------------------------------------------------------------------------- dataset.json settings


def species_csv(rows: int) -> bytes:
    lines = ["sample_id,bill_mm,island,species"]
    for i in range(rows):
        species = ["Adelie", "Gentoo", "Chinstrap"][i % 3]
        lines.append(f"s-{i % 40},{30 + (i * 7) % 25}.{i % 10},{['Biscoe', 'Dream'][i % 2]},{species}")
    return ("\n".join(lines) + "\n").encode()


def test_a_datasets_own_settings_name_its_target_and_ignored_columns(pipeline: Pipeline) -> None:
    settings = {"targetColumn": "species", "ignoreColumns": ["sample_id"], "minLabeledRows": 20}
    messages = pipeline.upload("raw/penguins/dataset.json", json.dumps(settings).encode())
    assert messages == [], "the settings file is no upload"

    assert pipeline.deliver(pipeline.upload("raw/penguins/a.csv", species_csv(300))) == {
        "batchItemFailures": []
    }

    schema = DatasetSchema.from_json(pipeline.read("processed/penguins/schema.json"))
    assert (schema.target.name, schema.target.problem_type) == ("species", "multiclass")
    sample_id = schema.features[0]
    assert (sample_id.name, sample_id.kind.value, sample_id.reason) == (
        "sample_id",
        "ignored",
        "listed in ignoreColumns",
    )
    assert manifest_of(pipeline, "penguins")["datasetSettings"] == settings
    assert len(pipeline.tuning_jobs()) == 1


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (b"{not json", "dataset.json is not JSON"),
        (b'{"targetColum": "species"}', "'targetColum' is not a setting"),
        (b'{"problemType": "ranking"}', "problemType = 'ranking': must be one of auto, binary"),
        (b'{"minLabeledRows": 0}', "minLabeledRows = 0: must be an integer from 2"),
        (b'{"ignoreColumns": "sample_id"}', 'ignoreColumns = "sample_id": must be a list of column names'),
        (b'{"targetColumn": "kind"}', "no target column 'kind' in the header"),
        (
            b'{"targetColumn": "species", "ignoreColumns": ["colour"]}',
            "ignoreColumns names column(s) 'colour'",
        ),
    ],
)
def test_bad_dataset_settings_get_a_rejection_report_naming_the_key(
    pipeline: Pipeline, settings: bytes, reason: str
) -> None:
    pipeline.upload("raw/penguins/dataset.json", settings)
    body = species_csv(300)
    assert pipeline.deliver(pipeline.upload("raw/penguins/a.csv", body)) == {"batchItemFailures": []}
    assert_rejected_and_kept(pipeline, "raw/penguins/a.csv", body, reason)
    assert pipeline.tuning_jobs() == []


def test_settings_changed_after_the_first_upload_refuse_later_uploads_rather_than_being_ignored(
    pipeline: Pipeline,
) -> None:
    pipeline.upload("raw/penguins/dataset.json", b'{"targetColumn": "species"}')
    pipeline.deliver(pipeline.upload("raw/penguins/a.csv", species_csv(300)))
    pipeline.upload("raw/penguins/dataset.json", b'{"targetColumn": "island"}')
    body = species_csv(200)
    pipeline.deliver(pipeline.upload("raw/penguins/b.csv", body))
    assert_rejected_and_kept(
        pipeline,
        "raw/penguins/b.csv",
        body,
        "dataset.json sets targetColumn 'island', but the dataset's schema",
    )
    assert len(pipeline.tuning_jobs()) == 1


def test_a_dataset_of_another_problem_type_than_the_stacks_tuning_metric_is_refused(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stack that tunes on validation:rmse (tuningObjectiveMetric, with problemType regression).
    stack = pipeline.handler.environment
    inference = replace(stack.options.inference, problem_type=ProblemType.REGRESSION)
    environment = replace(
        stack,
        tuning_objective_metric="validation:rmse",
        options=replace(stack.options, inference=inference),
    )
    own = pipeline.handler.transformer
    monkeypatch.setattr(
        pipeline.handler,
        "transformer",
        transform.upload.UploadTransformer(environment, own._s3, own._sqs),
    )
    pipeline.upload("raw/penguins/dataset.json", b'{"targetColumn": "species", "problemType": "multiclass"}')
    body = species_csv(300)
    pipeline.deliver(pipeline.upload("raw/penguins/a.csv", body))
    assert_rejected_and_kept(
        pipeline,
        "raw/penguins/a.csv",
        body,
        "the stack tunes every dataset on validation:rmse, a regression metric",
    )
    assert pipeline.tuning_jobs() == [] and pipeline.keys("processed/penguins/") == []
