"""Tuning requests through the tune function (moto, the local SageMaker): one job per quiet burst of a
dataset over every run so far, a daily budget per dataset, nothing started twice, runs of another schema
left out and reported."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from shared.dataset_schema import DatasetSchema
from tests.functions.conftest import DATA_BUCKET, Pipeline, churn_csv
from tests.functions.test_transform_uploads import manifests
from tune.tuner import DatasetTuner

NOON = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The tune function's clock, at noon UTC unless a test moves it."""
    clock = Clock(NOON)
    monkeypatch.setattr(pipeline.tune_handler.tuner, "clock", clock)
    return clock


def with_budget(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, jobs_per_day: int) -> DatasetTuner:
    """The tune function as a stack with `tuningJobsPerDay` = jobs_per_day deploys it."""
    own = pipeline.tune_handler.tuner
    tuner = DatasetTuner(
        replace(own.environment, jobs_per_day=jobs_per_day),
        s3=own.s3,
        sagemaker=own.sagemaker,
        sqs=own.sqs,
        clock=own.clock,
    )
    monkeypatch.setattr(pipeline.tune_handler, "tuner", tuner)
    return tuner


@pytest.fixture
def sent_back(pipeline: Pipeline) -> Iterator[list[dict[str, Any]]]:
    """The requests the tune function sends back to its queue (deferred), as SendMessage carried them:
    moto keeps them invisible for their delay, so the test delivers them itself when it moves the clock."""
    sent: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    events = pipeline.tune_handler.tuner.sqs.meta.events
    events.register("provide-client-params.sqs.SendMessage", capture)
    yield sent
    events.unregister("provide-client-params.sqs.SendMessage", capture)


def tuning_records(pipeline: Pipeline, dataset: str) -> list[dict[str, Any]]:
    return [pipeline.json(k) for k in pipeline.keys(f"processed/{dataset}/") if k.endswith("/tuning.json")]


def job_definition(pipeline: Pipeline, name: str) -> dict[str, Any]:
    job = pipeline.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    return dict(job["TrainingJobDefinition"])


def channel_files(pipeline: Pipeline, name: str, channel: str) -> list[str]:
    """The keys a job's ManifestFile channel lists, resolved against its prefix."""
    (source,) = [
        c["DataSource"]["S3DataSource"]
        for c in job_definition(pipeline, name)["InputDataConfig"]
        if c["ChannelName"] == channel
    ]
    assert source["S3DataType"] == "ManifestFile"
    prefix, *relative = pipeline.json(source["S3Uri"].removeprefix(f"s3://{DATA_BUCKET}/"))
    base = prefix["prefix"].removeprefix(f"s3://{DATA_BUCKET}/")
    return [f"{base}{key}" for key in relative]


def outcomes(log_lines: Any) -> list[str]:
    return [str(line["message"]) for line in log_lines() if str(line["message"]).startswith("tuning ")]


def upload_burst(pipeline: Pipeline, dataset: str, count: int, *, rows: int = 60) -> None:
    for index in range(count):
        messages = pipeline.upload(f"raw/{dataset}/part-{index:03}.csv", churn_csv(rows, seed=index))
        assert pipeline.deliver(messages) == {"batchItemFailures": []}


def test_a_burst_of_100_uploads_starts_one_tuning_job_over_every_run(
    pipeline: Pipeline, clock: Clock, log_lines: Any, caplog: pytest.LogCaptureFixture
) -> None:
    upload_burst(pipeline, "churn", 100)
    requests = pipeline.tuning_requests()
    # Each run asks once, or more if SQS delivered its upload's notification again (the harness, like
    # SQS, redelivers a notification whose visibility timeout passed).
    asked = {json.loads(m["Body"])["run"] for m in requests}
    assert len(asked) == 100 <= len(requests)

    assert all(answer == {"batchItemFailures": []} for answer in pipeline.tune(requests))

    (job,) = pipeline.tuning_jobs()
    runs = manifests(pipeline, "churn")
    assert len(runs) == 100
    assert sorted(channel_files(pipeline, job, "train")) == sorted(
        k for m in runs for k in m["files"]["train"]
    )
    assert sorted(channel_files(pipeline, job, "validation")) == sorted(
        k for m in runs for k in m["files"]["validation"]
    )
    (record,) = tuning_records(pipeline, "churn")
    assert record["status"] == "started" and record["tuningJob"] == job
    assert sorted(record["runs"]) == sorted(m["run"] for m in runs) and record["excluded"] == []
    # The other 99 requests were superseded by a later run or found the job started: nothing else.
    told = outcomes(log_lines)
    assert told.count("tuning started") == 1 and len(told) == len(requests)
    assert set(told) <= {"tuning started", "tuning superseded", "tuning already started"}
    # Every line of a request says whose it is, as Powertools writes it (appended keys included).
    formatter = pipeline.tune_handler.logger.registered_formatter
    lines = [json.loads(formatter.format(r)) for r in caplog.records if r.getMessage().startswith("tuning ")]
    assert len(lines) == len(requests)
    for line in lines:
        assert line["dataset"] == "churn" and line["run"] in record["runs"]
    (started,) = [line for line in lines if line["message"] == "tuning started"]
    assert (started["tuning_job"], sorted(started["runs"])) == (job, sorted(record["runs"]))


def test_the_job_trains_on_the_whole_dataset_and_a_row_keeps_its_split(
    pipeline: Pipeline, clock: Clock
) -> None:
    # The same rows uploaded twice (two parts of one dataset) land in the same split both times.
    body = churn_csv(300, seed=7)
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", body))
    pipeline.deliver(pipeline.upload("raw/churn/b.csv", body))
    first, second = sorted(manifests(pipeline, "churn"), key=lambda m: m["source"]["key"])
    for channel in ("train", "validation"):
        rows = [sorted(pipeline.read(k) for k in m["files"][channel]) for m in (first, second)]
        assert rows[0] == rows[1], f"a row changed split between uploads ({channel})"
    (job,) = pipeline.tuning_jobs()
    assert set(channel_files(pipeline, job, "train")) == set(
        first["files"]["train"] + second["files"]["train"]
    )


def test_the_budget_defers_the_next_job_to_the_next_utc_day_with_a_record_saying_when(
    pipeline: Pipeline,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    sent_back: list[dict[str, Any]],
    log_lines: Any,
) -> None:
    tuner = with_budget(pipeline, monkeypatch, jobs_per_day=1)
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))
    (first,) = pipeline.tuning_jobs()
    pipeline.deliver(pipeline.upload("raw/churn/b.csv", churn_csv(300, seed=2)))

    assert pipeline.tuning_jobs() == [first], "over budget: nothing started"
    (deferred,) = [r for r in tuning_records(pipeline, "churn") if r["status"] == "deferred"]
    midnight = datetime(2026, 11, 3, tzinfo=UTC)
    assert deferred["runAt"] == midnight.isoformat()
    assert "tuningJobsPerDay" in deferred["reason"] and len(deferred["runs"]) == 2
    assert "tuning deferred" in outcomes(log_lines)
    # Sent back, delayed as far as SQS allows (15 minutes); it keeps coming back until midnight.
    (request,) = sent_back
    assert request["DelaySeconds"] == 900
    assert json.loads(request["MessageBody"])["notBefore"] == midnight.isoformat()

    clock.now = midnight - timedelta(seconds=40)
    pipeline.path.sqs.send_message(QueueUrl=pipeline.tuning_queue, MessageBody=request["MessageBody"])
    assert pipeline.tuning_jobs() == [first], "not before its time"
    assert sent_back[-1]["DelaySeconds"] == 40

    clock.now = midnight + timedelta(minutes=1)
    for _ in range(2):  # the request, and a duplicate of it: one job, counted once
        pipeline.path.sqs.send_message(QueueUrl=pipeline.tuning_queue, MessageBody=request["MessageBody"])
    jobs = pipeline.tuning_jobs()
    assert len(jobs) == 2 and first in jobs
    (second,) = set(jobs) - {first}
    assert pipeline.keys("processed/churn/tuning/2026-11-03/") == [
        f"processed/churn/tuning/2026-11-03/{second}.json"
    ]
    assert {r["tuningJob"]: r["status"] for r in tuning_records(pipeline, "churn")} == {
        first: "started",
        second: "started",
    }
    assert tuner.environment.jobs_per_day == 1


def test_redeliveries_and_duplicates_start_nothing_twice_and_do_not_spend_the_budget(
    pipeline: Pipeline, clock: Clock, monkeypatch: pytest.MonkeyPatch, log_lines: Any
) -> None:
    with_budget(pipeline, monkeypatch, jobs_per_day=1)
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))
    requests = pipeline.tuning_requests()
    pipeline.tune(requests)
    # The same request again (SQS delivers at least once), and in one batch twice.
    pipeline.tune(requests)
    pipeline.tune(requests * 2)

    assert len(pipeline.tuning_jobs()) == 1
    assert outcomes(log_lines) == ["tuning started"] + ["tuning already started"] * 3
    assert [r["status"] for r in tuning_records(pipeline, "churn")] == ["started"]
    assert len(pipeline.keys("processed/churn/tuning/")) == 1, "the budget counts the job once"


def test_a_job_started_before_its_record_was_written_is_recorded_on_redelivery(
    pipeline: Pipeline, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The function stops between CreateHyperParameterTuningJob and its records: the redelivery is told
    # ResourceInUse and records the job then, so the budget still counts it.
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))
    requests = pipeline.tuning_requests()
    tuner = pipeline.tune_handler.tuner
    original = tuner.store.write_json

    def crash_on_ledger(key: str, document: Any) -> None:
        if "/tuning/" in key:
            raise RuntimeError("the function was stopped")
        original(key, document)

    monkeypatch.setattr(tuner.store, "write_json", crash_on_ledger)
    # A batch whose every record failed fails the invocation: SQS delivers the message again.
    with pytest.raises(BatchProcessingError, match="the function was stopped"):
        pipeline.tune(requests)
    monkeypatch.setattr(tuner.store, "write_json", original)

    assert pipeline.tune(requests) == [{"batchItemFailures": []}]
    (job,) = pipeline.tuning_jobs()
    assert pipeline.keys("processed/churn/tuning/") == [f"processed/churn/tuning/2026-11-02/{job}.json"]
    (record,) = tuning_records(pipeline, "churn")
    assert (record["status"], record["createdNow"]) == ("started", False)


def test_a_run_written_with_another_schema_is_left_out_and_reported(
    pipeline: Pipeline, clock: Clock, log_lines: Any
) -> None:
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))
    (old,) = manifests(pipeline, "churn")
    # Someone replaces the dataset's schema.json by hand (here: one category fewer); later runs use it.
    schema = DatasetSchema.from_json(pipeline.read("processed/churn/schema.json"))
    city = schema.features[2]
    changed = replace(
        schema,
        features=(*schema.features[:2], replace(city, categories=city.categories[:-1]), *schema.features[3:]),
    )
    pipeline.path.s3.put_object(Bucket=DATA_BUCKET, Key="processed/churn/schema.json", Body=changed.to_json())
    pipeline.deliver(pipeline.upload("raw/churn/b.csv", churn_csv(300, seed=2)))
    (new,) = [m for m in manifests(pipeline, "churn") if m["run"] != old["run"]]
    assert new["schema"]["sha256"] == changed.digest != old["schema"]["sha256"]

    (job,) = pipeline.tuning_jobs()

    assert set(channel_files(pipeline, job, "train")) == set(new["files"]["train"])
    (record,) = tuning_records(pipeline, "churn")
    assert record["runs"] == [new["run"]]
    (excluded,) = record["excluded"]
    assert excluded["run"] == old["run"]
    assert old["schema"]["sha256"][:12] in excluded["reason"] and "schema.json" in excluded["reason"]
    (told,) = [line for line in log_lines() if line["message"] == "tuning started"]
    assert told["level"] == "WARNING" and told["excluded"] == record["excluded"]
    # The job trains on the schema the dataset has now, which the deploy function reads beside the channel.
    assert (
        DatasetSchema.from_json(pipeline.read(f"processed/churn/{job}/schema.json")).digest == changed.digest
    )


def test_a_request_that_is_not_one_fails_alone_for_the_dead_letter_queue(
    pipeline: Pipeline, clock: Clock
) -> None:
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))
    (good,) = pipeline.tuning_requests()
    pipeline.path.sqs.send_message(QueueUrl=pipeline.tuning_queue, MessageBody='{"dataset": "churn"}')
    pipeline.path.sqs.send_message(
        QueueUrl=pipeline.tuning_queue,
        MessageBody='{"dataset": "churn", "run": "20990101T000000Z-000000000000"}',
    )
    bad = pipeline.tuning_requests()

    (answer,) = pipeline.tune([good, *bad])

    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(
        m["MessageId"] for m in bad
    )
    assert len(pipeline.tuning_jobs()) == 1


def test_the_transform_delays_each_request_by_the_stacks_quiet_period(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.functions.conftest import TRANSFORM_ENVIRONMENT

    monkeypatch.setenv("TUNING_QUIET_SECONDS", TRANSFORM_ENVIRONMENT["TUNING_QUIET_SECONDS"])
    handler: ModuleType = importlib.reload(pipeline.handler)
    assert handler.environment.tuning_quiet_seconds == 300
    pipeline.handler = handler
    pipeline.deliver(pipeline.upload("raw/churn/a.csv", churn_csv(300)))

    attributes = pipeline.path.sqs.get_queue_attributes(
        QueueUrl=pipeline.tuning_queue, AttributeNames=["All"]
    )
    counts = attributes["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesDelayed"]) == ("0", "1")
    assert pipeline.tuning_requests() == [], "invisible until the quiet period has passed"
