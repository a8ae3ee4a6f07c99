"""The batch transform jobs of a contest: the challenger and the champion each predict the challenger's
validation rows, so both are scored on the same rows by the same code (deploy.evaluation).

Pure: names and requests. Names derive from the tuning job, so a redelivered event asks for the same
jobs; the champion's also from the champion, so a champion replaced while a contest ran gets a job of
its own. Every name starts with the tuning job's, hence with the stack's prefix, which the deploy role's
policy and the teardown rely on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from deploy.serving import ServingPlan

CHALLENGER = "challenger"
CHAMPION = "champion"
# Under the records prefix: `deployments/contest/<tuning job>/<transform job>/`.
CONTEST_FOLDER = "contest/"
CSV = "text/csv"
# The transform function writes the label first (functions/transform: "moves the target first"); the
# model sees only the features, as in training (DataProcessing InputFilter, SageMaker developer guide,
# "Associate Prediction Results with Input Records": `$[1:]` drops a CSV's first column).
DROP_LABEL = "$[1:]"
# The container's own limit (algorithm_mode/serve.py:35, MAX_CONTENT_LENGTH 6 MiB, which
# /execution-parameters reports as MaxPayloadInMB).
MAX_PAYLOAD_MB = 6
# DescribeTransformJob TransformJobStatus values of a job that will not change again.
COMPLETED = "Completed"
FINISHED = frozenset({"Completed", "Failed", "Stopped"})
_NAME = re.compile(rf"^(?P<tuning_job>.+)-(?:{CHALLENGER}|{CHAMPION}-[0-9a-f]{{8}})$")


@dataclass(frozen=True)
class ContestJob:
    """One model's transform job in a contest."""

    role: str  # CHALLENGER or CHAMPION
    name: str
    model: str  # the model's name: its training job's, as the deploy function names models
    output: str  # s3:// folder of its `.out` objects

    def describe_outcome(self, status: str, failure: str | None) -> str:
        return f"the {self.role}'s transform job {self.name} {status}: {failure or 'no reason given'}"


def contest_jobs(
    plan: ServingPlan, records_prefix: str, tuning_job: str, challenger: str, champion: str
) -> tuple[ContestJob, ContestJob]:
    """The challenger's and the champion's transform jobs; `challenger` and `champion` are their training
    jobs. Tuning job names are at most 32 characters, so these stay within TransformJobName's 63."""
    digest = hashlib.sha256(champion.encode()).hexdigest()[:8]
    names = (f"{tuning_job}-{CHALLENGER}", f"{tuning_job}-{CHAMPION}-{digest}")
    folder = f"s3://{plan.bucket}/{records_prefix}{CONTEST_FOLDER}{tuning_job}/"
    return (
        ContestJob(CHALLENGER, names[0], challenger, f"{folder}{names[0]}/"),
        ContestJob(CHAMPION, names[1], champion, f"{folder}{names[1]}/"),
    )


def tuning_job_of(transform_job: str) -> str | None:
    """The tuning job whose contest `transform_job` belongs to; None for any other transform job."""
    match = _NAME.fullmatch(transform_job)
    return match["tuning_job"] if match else None


def transform_request(
    plan: ServingPlan, job: ContestJob, validation: dict[str, Any], tuning_job: str
) -> dict[str, Any]:
    """CreateTransformJob for `job` on the validation channel's data source (its S3DataSource, S3Prefix
    or ManifestFile, as the tuning job's TrainingJobDefinition has it)."""
    return {
        "TransformJobName": job.name,
        "ModelName": job.model,
        # One record per line, as many lines per request as fit (the container answers one line each).
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": validation["S3DataType"], "S3Uri": validation["S3Uri"]}
            },
            "ContentType": CSV,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": job.output,
            "Accept": CSV,
            "AssembleWith": "Line",
            "KmsKeyId": plan.key_arn,
        },
        "TransformResources": {"InstanceType": plan.contest_instance_type, "InstanceCount": 1},
        "DataProcessing": {"InputFilter": DROP_LABEL, "JoinSource": "None"},
        "Tags": [
            {"Key": "stack", "Value": plan.stack},
            {"Key": "tuning-job", "Value": tuning_job},
        ],
    }
