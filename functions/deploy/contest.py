"""Champion and challenger: whether a tuning job's best model should replace the one serving.

Pure: the scores come from SageMaker (the challenger's from DescribeHyperParameterTuningJob's
BestTrainingJob, the champion's from the tags of the endpoint config serving it), the answer is a
`Verdict` the deploy function acts on and records.
"""

from __future__ import annotations

import hashlib
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

    def beats(self, other: Score) -> bool:
        return self.value > other.value if self.direction == "Maximize" else self.value < other.value


def dataset_id(train_channel_uri: str) -> str:
    """A short, tag-safe identity of the dataset a run's training channel belongs to: the channel is
    `s3://<bucket>/processed/<dataset>/<run>/train/`, the dataset everything before `<run>/`."""
    dataset = train_channel_uri.rstrip("/").rsplit("/", 2)[0]
    return hashlib.sha256(dataset.encode()).hexdigest()[:16]


class Outcome(StrEnum):
    DEPLOY = "deploy"
    # Nothing to do, and nothing wrong: the event was seen before.
    UNCHANGED = "unchanged"
    # Nothing deployed for a reason someone should know about: alarmed.
    NOT_DEPLOYED = "not-deployed"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str


def judge(challenger: Score, champion: Score | None) -> Verdict:
    """Deploy only a first model or one strictly better on the same objective."""
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
    comparison = f"{challenger.metric} {challenger.value:g} vs champion {champion.value:g}"
    if challenger.beats(champion):
        return Verdict(Outcome.DEPLOY, f"better: {comparison}")
    return Verdict(Outcome.NOT_DEPLOYED, f"not better: {comparison}")
