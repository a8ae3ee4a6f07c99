"""The tune function's pure rules: which request speaks for a burst, the job's name, the day's budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tune.plan import (
    TUNING_JOB_NAME,
    RunSummary,
    channel_manifest,
    newer_run,
    next_utc_day,
    training_set,
    tuning_job_name,
    utc_day,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def test_only_the_request_of_the_last_completed_run_goes_on() -> None:
    completed = {"a": T0, "b": T0 + timedelta(seconds=5), "c": T0 + timedelta(seconds=2)}
    assert newer_run("a", completed) == "b" and newer_run("c", completed) == "b"
    assert newer_run("b", completed) is None


def test_runs_completed_in_the_same_second_both_go_on_and_ask_for_the_same_job() -> None:
    completed = {"a": T0, "b": T0}
    assert newer_run("a", completed) is None and newer_run("b", completed) is None
    assert tuning_job_name("dev-6147", "churn", ["a", "b"]) == tuning_job_name(
        "dev-6147", "churn", ["b", "a"]
    )


def test_a_job_name_names_exactly_its_dataset_and_runs_within_sagemakers_rule() -> None:
    names = {
        tuning_job_name("prod-6cad", "churn", ["a"]),
        tuning_job_name("prod-6cad", "churn", ["a", "b"]),
        tuning_job_name("prod-6cad", "churns", ["a"]),
    }
    assert len(names) == 3, "another run or dataset is another job"
    assert all(len(n) == 32 and TUNING_JOB_NAME.fullmatch(n) and n.startswith("prod-6cad-") for n in names)
    with pytest.raises(ValueError, match="naming rule"):
        tuning_job_name("Bad_Prefix", "churn", ["a"])


def test_runs_of_another_schema_are_left_out_with_the_reason() -> None:
    runs = [RunSummary("r2", "b" * 64, ("k2",), ("v2",)), RunSummary("r1", "a" * 64, ("k1",), ("v1",))]
    chosen = training_set("churn", runs, "a" * 64)
    assert chosen.run_ids == ["r1"] and chosen.train_files == ["k1"] and chosen.validation_files == ["v1"]
    (left_out,) = chosen.excluded
    assert left_out.run == "r2" and "bbbbbbbbbbbb" in left_out.reason and "aaaaaaaaaaaa" in left_out.reason


def test_the_budget_renews_at_midnight_utc_whatever_the_clock_zone() -> None:
    late = datetime(2026, 11, 2, 23, 59, 59, tzinfo=UTC)
    assert next_utc_day(late) == datetime(2026, 11, 3, tzinfo=UTC)
    # 01:00 on the 3rd in UTC+2 is still the 2nd in UTC.
    east = datetime(2026, 11, 3, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert utc_day(east) == "2026-11-02" and next_utc_day(east) == datetime(2026, 11, 3, tzinfo=UTC)


def test_a_channel_manifest_lists_keys_relative_to_its_prefix_and_refuses_others() -> None:
    keys = ["processed/churn/r1/train/part-00000.csv", "processed/churn/r2/train/part-00000.csv"]
    assert channel_manifest("b", "processed/churn/", keys) == [
        {"prefix": "s3://b/processed/churn/"},
        "r1/train/part-00000.csv",
        "r2/train/part-00000.csv",
    ]
    with pytest.raises(ValueError, match="not under"):
        channel_manifest("b", "processed/churn/", ["processed/other/r1/train/part-00000.csv"])
