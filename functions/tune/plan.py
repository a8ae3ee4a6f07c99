"""What to tune, and whether now: the pure rules of the tune function.

A tuning request names a dataset and the run whose completion sent it. The quiet period is the delay of
that message: when it is received, a run of the dataset stored after it means another upload arrived
within the quiet period, and that run's own request, still on its way, speaks for the burst. Otherwise
the burst is over and one tuning job covers every complete run of the dataset whose schema is the
dataset's schema. Its name is a digest of the dataset and of exactly those runs, so a redelivered or
duplicated request asks for the same job, and a new upload for a new one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# HyperParameterTuningJobName: 1-32 characters, ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31} (SageMaker API
# reference, CreateHyperParameterTuningJob). Names are case-insensitive and ARNs carry them lowercased,
# so the pipeline uses lowercase only.
TUNING_JOB_NAME_LENGTH = 32
TUNING_JOB_NAME = re.compile(r"[a-z0-9](-*[a-z0-9]){0,31}")


@dataclass(frozen=True)
class RunSummary:
    """A complete run, as its manifest.json tells it."""

    run: str
    schema_digest: str
    # Full keys of the run's part files.
    train_files: tuple[str, ...]
    validation_files: tuple[str, ...]


@dataclass(frozen=True)
class Excluded:
    run: str
    reason: str


@dataclass(frozen=True)
class TrainingSet:
    """The runs one tuning job trains on, and those it leaves out with the reason."""

    dataset: str
    runs: tuple[RunSummary, ...]
    excluded: tuple[Excluded, ...]

    @property
    def run_ids(self) -> list[str]:
        return [run.run for run in self.runs]

    @property
    def train_files(self) -> list[str]:
        return [key for run in self.runs for key in run.train_files]

    @property
    def validation_files(self) -> list[str]:
        return [key for run in self.runs for key in run.validation_files]


def newer_run(request_run: str, completed: Mapping[str, datetime]) -> str | None:
    """A run completed (its manifest stored) after the request's own: its request comes later and covers
    this one. None when the request's run is the last; runs completed in the same second (S3's
    LastModified has whole seconds) both pass and, covering the same runs, ask for the same job."""
    own = completed[request_run]
    later = [run for run, at in completed.items() if at > own]
    return max(later, key=lambda run: completed[run]) if later else None


def training_set(dataset: str, runs: Iterable[RunSummary], schema_digest: str) -> TrainingSet:
    """Every run written with the dataset's schema, oldest first; a run of another schema would encode its
    columns differently, so it is left out, with why."""
    included: list[RunSummary] = []
    excluded: list[Excluded] = []
    for run in sorted(runs, key=lambda r: r.run):
        if run.schema_digest == schema_digest:
            included.append(run)
        else:
            excluded.append(
                Excluded(
                    run.run,
                    f"written with schema {run.schema_digest[:12]}, not the dataset's schema.json "
                    f"{schema_digest[:12]}: its columns are encoded differently",
                )
            )
    return TrainingSet(dataset, tuple(included), tuple(excluded))


def tuning_job_name(prefix: str, dataset: str, runs: Sequence[str]) -> str:
    """The job of exactly these runs of this dataset."""
    digest = hashlib.sha256("\n".join([dataset, *sorted(runs)]).encode()).hexdigest()
    name = f"{prefix}-{digest}"[:TUNING_JOB_NAME_LENGTH]
    if not TUNING_JOB_NAME.fullmatch(name):
        raise ValueError(f"tuning job name {name!r} breaks SageMaker's naming rule")
    return name


def utc_day(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d}"


def next_utc_day(moment: datetime) -> datetime:
    """Midnight UTC after `moment`: when a dataset's daily budget renews."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


def channel_manifest(bucket: str, prefix: str, keys: Iterable[str]) -> list[object]:
    """A ManifestFile channel's document: a JSON list whose first element is {"prefix": <S3 URI>} and the
    rest object keys relative to it (SageMaker API reference, S3DataSource, S3Uri)."""
    relative = []
    for key in keys:
        if not key.startswith(prefix):
            raise ValueError(f"{key} is not under {prefix}")
        relative.append(key[len(prefix) :])
    return [{"prefix": f"s3://{bucket}/{prefix}"}, *relative]
