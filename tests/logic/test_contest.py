"""The champion/challenger decision, case by case."""

from __future__ import annotations

import pytest

from deploy.contest import Outcome, Score, judge

AUC = ("validation:auc", "Maximize")
RMSE = ("validation:rmse", "Minimize")


def score(job: str, metric: tuple[str, str], value: float) -> Score:
    return Score(job, metric[0], metric[1], value)


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
