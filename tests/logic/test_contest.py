"""The champion/challenger decision, case by case."""

from __future__ import annotations

import math

import pytest

from deploy.contest import HeldOut, Outcome, Score, dataset_id, dataset_name, judge, judge_held_out

AUC = ("validation:auc", "Maximize")
RMSE = ("validation:rmse", "Minimize")


def score(job: str, metric: tuple[str, str], value: float, dataset: str = "sales") -> Score:
    return Score(job, metric[0], metric[1], value, dataset)


def test_dataset_identity_is_the_folder_above_the_run() -> None:
    one = dataset_id("s3://data/processed/sales/20260101T000000Z-abc/train/")
    assert one == dataset_id("s3://data/processed/sales/20260301T000000Z-def/train/")
    assert one != dataset_id("s3://data/processed/churn/20260101T000000Z-abc/train/")
    assert len(one) == 16 and one.isalnum()


@pytest.mark.parametrize(
    ("challenger", "champion", "outcome", "reason"),
    [
        (score("b", AUC, 0.7), None, Outcome.DEPLOY, "first model: validation:auc = 0.7"),
        # Comparable: however the own validation scores compare, the same rows decide.
        (score("b", AUC, 0.9), score("a", AUC, 0.8), Outcome.JUDGING, "challenger 0.9, champion 0.8"),
        (score("b", AUC, 0.7), score("a", AUC, 0.8), Outcome.JUDGING, "validation rows"),
        (score("b", RMSE, 4.0), score("a", RMSE, 3.0), Outcome.JUDGING, "validation rows"),
        # The same training job again: a redelivered event.
        (score("a", AUC, 0.8), score("a", AUC, 0.8), Outcome.UNCHANGED, "already the champion"),
        (score("b", RMSE, 0.1), score("a", AUC, 0.8), Outcome.NOT_DEPLOYED, "not comparable"),
        # A model of another dataset: the endpoint's clients send the champion's dataset's columns.
        (score("b", AUC, 0.99, dataset="churn"), score("a", AUC, 0.8), Outcome.NOT_DEPLOYED, "dataset"),
        # Same metric name, opposite direction: still not comparable.
        (
            score("b", ("validation:auc", "Minimize"), 0.1),
            score("a", AUC, 0.8),
            Outcome.NOT_DEPLOYED,
            "not comparable",
        ),
    ],
)
def test_decision_table(challenger: Score, champion: Score | None, outcome: Outcome, reason: str) -> None:
    verdict = judge(challenger, champion)
    assert verdict.outcome is outcome
    assert reason in verdict.reason


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "outcome", "reason"),
    [
        (
            AUC,
            0.9,
            0.8,
            Outcome.DEPLOY,
            "better: validation:auc on the same 50 validation rows: challenger 0.9 vs champion 0.8",
        ),
        (AUC, 0.8, 0.8, Outcome.NOT_DEPLOYED, "not better"),
        (AUC, 0.7, 0.8, Outcome.NOT_DEPLOYED, "not better"),
        (RMSE, 2.0, 3.0, Outcome.DEPLOY, "better"),
        (RMSE, 3.0, 3.0, Outcome.NOT_DEPLOYED, "not better"),
        (RMSE, 4.0, 3.0, Outcome.NOT_DEPLOYED, "not better"),
        # AUC of rows of one class is undefined (xgboost's NaN): nothing to compare.
        (AUC, math.nan, 0.8, Outcome.NOT_DEPLOYED, "cannot compare"),
        (AUC, 0.9, math.nan, Outcome.NOT_DEPLOYED, "cannot compare"),
    ],
)
def test_held_out_decision_table(
    metric: tuple[str, str], challenger: float, champion: float, outcome: Outcome, reason: str
) -> None:
    verdict = judge_held_out(HeldOut(metric[0], metric[1], challenger, champion, 50))
    assert verdict.outcome is outcome
    assert verdict.reason.startswith(reason)


def test_dataset_name_is_the_upload_folder() -> None:
    assert dataset_name("s3://data/processed/sales/20260101T000000Z-abc/train/") == "sales"
