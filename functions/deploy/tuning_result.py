"""The outcome of a finished tuning job, read from SageMaker: its status and its best model.

The state-change event does not carry the best training job, so DescribeHyperParameterTuningJob is the
source; DescribeTrainingJob adds what hosting the model needs (its image and artifact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploy.contest import Score, dataset_id
from deploy.serving import Candidate

COMPLETED = "Completed"
FINISHED = frozenset({"Completed", "Failed", "Stopped"})


@dataclass(frozen=True)
class TuningResult:
    job_name: str
    status: str
    candidate: Candidate | None
    # Why there is no candidate, for the record and the alarm.
    problem: str | None
    training_data: str | None
    # The validation channel's S3DataSource (S3DataType S3Prefix or ManifestFile, S3Uri): the rows a
    # contest scores both models on.
    validation_data: dict[str, Any] | None


def read_tuning_result(sagemaker: Any, job_name: str) -> TuningResult:
    job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=job_name)
    status = job["HyperParameterTuningJobStatus"]
    train = _channel(job, "train")
    training_data = str(train["S3Uri"]) if train else None
    validation_data = _channel(job, "validation")
    if status != COMPLETED:
        reason = job.get("FailureReason") or "no reason given"
        return TuningResult(
            job_name, status, None, f"tuning job {status}: {reason}", training_data, validation_data
        )
    best = job.get("BestTrainingJob")
    objective = (best or {}).get("FinalHyperParameterTuningJobObjectiveMetric")
    if not best or best.get("TrainingJobStatus") != COMPLETED or not objective:
        counters = job.get("TrainingJobStatusCounters", {})
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counters.items())) or "no counts"
        return TuningResult(
            job_name,
            status,
            None,
            f"no training job completed with an objective value ({summary})",
            training_data,
            validation_data,
        )
    training_job = sagemaker.describe_training_job(TrainingJobName=best["TrainingJobName"])
    score = Score(
        training_job=best["TrainingJobName"],
        metric=objective["MetricName"],
        direction=job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"],
        value=float(objective["Value"]),
        dataset=dataset_id(training_data) if training_data else "",
    )
    candidate = Candidate(
        tuning_job=job_name,
        score=score,
        image=training_job["AlgorithmSpecification"]["TrainingImage"],
        model_data_url=training_job["ModelArtifacts"]["S3ModelArtifacts"],
    )
    return TuningResult(job_name, status, candidate, None, training_data, validation_data)


def _channel(job: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The S3DataSource of the tuning job's channel `name`. The training channel's S3Uri names the run:
    its schema.json sits beside the channel's folder."""
    channels = job.get("TrainingJobDefinition", {}).get("InputDataConfig", [])
    for channel in channels:
        if channel.get("ChannelName") == name:
            return dict(channel["DataSource"]["S3DataSource"])
    return None
