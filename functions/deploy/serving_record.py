"""The serving record: which model the endpoint serves and where its schema is, for the predict function.

Written to `deployments/serving.json` whenever the endpoint is InService with nothing pending, so it names
what really serves (after an update, or after a rollback), and removed at teardown. The endpoint serves
one dataset (deploy.contest), whose schema never changes, so a record a few seconds behind a new model
still holds the right schema.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

SERVING_RECORD = "serving.json"


@dataclass(frozen=True)
class ServingRecord:
    endpoint: str
    model: str  # the endpoint config, model and training job share this name
    schema: str  # s3:// URI of the run's schema.json
    recorded_at: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()


def serving_record(sagemaker: Any, endpoint: str, config_name: str, now: datetime) -> ServingRecord | None:
    """The record for `config_name`, from its training job's channels; None for a config this stack's
    deploy function did not make (it has no training job of that name)."""
    job = sagemaker.describe_training_job(TrainingJobName=config_name)
    for channel in job.get("InputDataConfig", []):
        if channel["ChannelName"] == "train":
            train = str(channel["DataSource"]["S3DataSource"]["S3Uri"]).rstrip("/")
            return ServingRecord(
                endpoint, config_name, f"{train.rsplit('/', 1)[0]}/schema.json", now.isoformat()
            )
    return None
