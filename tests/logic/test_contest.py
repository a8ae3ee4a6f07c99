"""The champion/challenger decision, case by case."""

from __future__ import annotations

import pytest

from deploy.contest import Outcome, Score, dataset_id, judge

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
        (
            score("b", AUC, 0.9),
            score("a", AUC, 0.8),
            Outcome.DEPLOY,
            "better: validation:auc 0.9 vs champion 0.8",
        ),
        (score("b", AUC, 0.8), score("a", AUC, 0.8), Outcome.NOT_DEPLOYED, "not better"),
        (score("b", AUC, 0.7), score("a", AUC, 0.8), Outcome.NOT_DEPLOYED, "not better"),
        (score("b", RMSE, 2.0), score("a", RMSE, 3.0), Outcome.DEPLOY, "better"),
        (score("b", RMSE, 3.0), score("a", RMSE, 3.0), Outcome.NOT_DEPLOYED, "not better"),
        (score("b", RMSE, 4.0), score("a", RMSE, 3.0), Outcome.NOT_DEPLOYED, "not better"),
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
