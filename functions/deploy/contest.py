"""Champion and challenger: whether a tuning job's best model should replace the one serving.

Pure. A model's own score (the challenger's from DescribeHyperParameterTuningJob's BestTrainingJob, the
champion's from the tags of the endpoint config serving it) says which dataset and objective it was tuned
for, not whether it is better: each was computed on its own validation rows, and after early stopping on
more trees than the saved model serves (the container's EarlyStopping keeps the best iteration,
callback.py:112-121, while SageMaker's final metric is the last round's log line). So two comparable
models are judged only on the same rows, the challenger's validation channel, each predicted by a batch
transform of the model as it is served and scored by the same code (`judge_held_out`, deploy.evaluation).
The answers are `Verdict`s the deploy function acts on and records.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Score:
    """A trained model and its value of the tuning objective on its validation channel."""

    training_job: str
    metric: str
    direction: str  # "Maximize" or "Minimize", as HyperParameterTuningJobObjective.Type
    value: float
    # Which dataset the model was trained on (`dataset_id`): the endpoint serves one dataset's schema.
    dataset: str


def dataset_id(train_channel_uri: str) -> str:
    """A short, tag-safe identity of the dataset a run's training channel belongs to: the channel is
    `s3://<bucket>/processed/<dataset>/<run>/train/`, the dataset everything before `<run>/`."""
    dataset = train_channel_uri.rstrip("/").rsplit("/", 2)[0]
    return hashlib.sha256(dataset.encode()).hexdigest()[:16]


def dataset_name(train_channel_uri: str) -> str:
    """The dataset's name as uploads spell it (`processed/<dataset>/<run>/train/`), for the log."""
    return train_channel_uri.rstrip("/").rsplit("/", 2)[0].rsplit("/", 1)[-1]


class Outcome(StrEnum):
    DEPLOY = "deploy"
    # Nothing to do, and nothing wrong: the event was seen before.
    UNCHANGED = "unchanged"
    # Nothing deployed for a reason someone should know about: alarmed.
    NOT_DEPLOYED = "not-deployed"
    # Comparable with the champion: both are being scored on the same rows, and the transform jobs'
    # events bring the decision.
    JUDGING = "judging"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str


def judge(challenger: Score, champion: Score | None) -> Verdict:
    """Deploy a first model; judge on the same rows one comparable with the champion."""
    if champion is None:
        return Verdict(Outcome.DEPLOY, f"first model: {challenger.metric} = {challenger.value:g}")
    if challenger.training_job == champion.training_job:
        return Verdict(Outcome.UNCHANGED, f"{challenger.training_job} is already the champion")
    if challenger.dataset != champion.dataset:
        return Verdict(
            Outcome.NOT_DEPLOYED,
            f"challenger was trained on dataset {challenger.dataset}, the endpoint serves dataset "
            f"{champion.dataset or '(unknown)'}, whose clients send that dataset's columns: the champion "
            "keeps serving",
        )
    if (challenger.metric, challenger.direction) != (champion.metric, champion.direction):
        return Verdict(
            Outcome.NOT_DEPLOYED,
            f"challenger is scored on {challenger.metric} ({challenger.direction}), the champion on "
            f"{champion.metric} ({champion.direction}): not comparable, the champion keeps serving",
        )
    return Verdict(
        Outcome.JUDGING,
        f"both models are scored on the challenger's validation rows (own validation scores: challenger "
        f"{challenger.value:g}, champion {champion.value:g})",
    )


@dataclass(frozen=True)
class HeldOut:
    """Both models' values of the objective on the same rows."""

    metric: str
    direction: str  # "Maximize" or "Minimize"
    challenger: float
    champion: float
    rows: int


def judge_held_out(scores: HeldOut) -> Verdict:
    """Deploy only a challenger strictly better than the champion on the same rows."""
    comparison = (
        f"{scores.metric} on the same {scores.rows} validation rows: challenger {scores.challenger:g} vs "
        f"champion {scores.champion:g}"
    )
    if math.isnan(scores.challenger) or math.isnan(scores.champion):
        return Verdict(
            Outcome.NOT_DEPLOYED,
            f"cannot compare, {comparison} (AUC is undefined on rows of one class): the champion keeps "
            "serving",
        )
    maximize = scores.direction == "Maximize"
    better = scores.challenger > scores.champion if maximize else scores.challenger < scores.champion
    if better:
        return Verdict(Outcome.DEPLOY, f"better: {comparison}")
    return Verdict(Outcome.NOT_DEPLOYED, f"not better: {comparison}")
