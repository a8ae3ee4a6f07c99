"""The whole path on one dataset, as a team lives it: upload, transform, tuning, deployment, prediction.

Each step waits for what the deployed system produces (the run's manifest, the tuning job's end, the
serving record, the API's answer), never for a step of its own, so the rehearsal shows only what the
functions and services did. Faults are injected where AWS would produce them (see `Fault`).
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import xgboost

from deploy.contest import Outcome
from rehearsal.local_stack import LocalStack
from rehearsal.sagemaker.container.training import MODEL_NAME, train
from rehearsal.sagemaker.training import channel_objects
from rehearsal.samples import SampleDataset, Upload
from shared.dataset_schema import DatasetSchema

FINISHED = ("Completed", "Failed", "Stopped")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrialRow:
    training_job: str
    status: str
    objective: float | None
    hyperparameters: dict[str, str]


@dataclass
class RunOutcome:
    """What one upload became, read back from what the system wrote."""

    upload: str
    manifest: dict[str, Any] | None = None
    rejection: dict[str, Any] | None = None
    tuning_job: str | None = None
    tuning_status: str | None = None
    objective_metric: str | None = None
    # "Maximize" or "Minimize", as the tuning job's objective says.
    objective_direction: str = "Maximize"
    trials: list[TrialRow] = field(default_factory=list)
    deployment: dict[str, Any] | None = None


@dataclass
class Rehearsal:
    dataset: str
    outcomes: list[RunOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    baseline: float | None = None
    api_url: str = ""
    api_key: str = ""
    endpoint: str = ""
    predictions: dict[str, Any] | None = None
    sample_records: list[dict[str, Any]] = field(default_factory=list)
    xgboost_version: str = ""
    # The tuning job's training image: the built-in container the stack asks for.
    image: str = ""
    feature_importance: dict[str, float] = field(default_factory=dict)

    @property
    def first(self) -> RunOutcome:
        return self.outcomes[0]


class Pipeline:
    """Drives a started `LocalStack` through uploads and reads back what each became."""

    def __init__(self, stack: LocalStack, *, progress: Progress = print, timeout: float = 300.0) -> None:
        self.stack = stack
        self.progress = progress
        self.timeout = timeout
        assert stack.aws.deployer is not None
        deployer = stack.aws.deployer
        self.sagemaker = boto3.client(
            "sagemaker",
            endpoint_url=stack.sagemaker_server.url,
            region_name=stack.region,
            aws_access_key_id=deployer.access_key_id,
            aws_secret_access_key=deployer.secret_access_key,
        )

    # ------------------------------------------------------------------------------------- uploads

    def put_settings(self, dataset: SampleDataset) -> None:
        if dataset.settings:
            self.stack.upload(f"{dataset.dataset}/dataset.json", dataset.settings_body)

    def transform(self, upload: Upload) -> RunOutcome:
        """Upload `upload` and wait until the transform has written its manifest or its rejection."""
        outcome = RunOutcome(upload.key)
        known = set(self.stack.keys(f"processed/{upload.dataset}/"))
        self.stack.upload(upload.key, upload.body)
        where = f"s3://{self.stack.bucket}/{self.stack.raw_prefix}{upload.key}"
        self.progress(f"uploaded {where} ({len(upload.body):,} bytes)")
        rejection_key = f"rejected/{self.stack.raw_prefix}{upload.key}.json"

        def written() -> bool:
            outcome.rejection = self.stack.read_json(rejection_key)
            manifests = [
                k
                for k in self.stack.keys(f"processed/{upload.dataset}/")
                if k.endswith("/manifest.json") and k not in known
            ]
            if manifests:
                outcome.manifest = self.stack.read_json(manifests[0])
            return bool(outcome.manifest)

        self.stack.wait_for(
            f"the transform of {upload.key}", lambda: written() or outcome.rejection, self.timeout
        )
        if outcome.manifest:
            rows = outcome.manifest["rows"]
            self.progress(f"transform: {_rows(rows)}")
        if outcome.rejection:
            self.progress(f"transform: rejected: {outcome.rejection['reason']}")
        return outcome

    def tune(self, outcome: RunOutcome) -> RunOutcome:
        """Wait for the tuning job the tune function starts over the run once the quiet period has passed
        (its record, `processed/<dataset>/<job>/tuning.json`, names the runs it covers), reporting each
        trial as it ends."""
        manifest = outcome.manifest
        assert manifest is not None
        dataset, run = manifest["dataset"], manifest["run"]

        def started() -> str | None:
            for key in self.stack.keys(f"processed/{dataset}/"):
                if key.endswith("/tuning.json"):
                    record = self.stack.read_json(key)
                    if record and record["status"] == "started" and run in record["runs"]:
                        return str(record["tuningJob"])
            return None

        name = self.stack.wait_for(f"the tuning job over run {run}", started, self.timeout)
        self.progress(f"tune: {name} over run {run}, started once the quiet period passed")
        outcome.tuning_job = name
        reported: set[str] = set()

        def finished() -> bool:
            job = self.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
            for trial in self._trials(name):
                if trial.status in FINISHED and trial.training_job not in reported:
                    reported.add(trial.training_job)
                    metric = f"{trial.objective:.4f}" if trial.objective is not None else "-"
                    self.progress(f"trial {trial.training_job}: {trial.status}, objective {metric}")
            outcome.tuning_status = job["HyperParameterTuningJobStatus"]
            objective = job["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
            outcome.objective_metric, outcome.objective_direction = objective["MetricName"], objective["Type"]
            return outcome.tuning_status in FINISHED

        self.stack.wait_for(f"tuning job {name}", lambda: self._exists(name) and finished(), self.timeout)
        outcome.trials = self._trials(name)
        self.progress(f"tuning job {name}: {outcome.tuning_status}")
        return outcome

    def deployment(self, outcome: RunOutcome) -> RunOutcome:
        """Wait for the deploy function's decision on this tuning job: its record, once it is no longer
        `judging` (a challenger scored on the same rows as the champion by two transform jobs)."""
        key = f"deployments/{outcome.tuning_job}.json"
        judging: list[str] = []

        def decided() -> Any:
            record = self.stack.read_json(key)
            if record and record.get("outcome") == Outcome.JUDGING:
                if not judging:
                    judging.append(record["reason"])
                    self.progress(f"deploy: judging ({record['reason']})")
                return None
            return record

        outcome.deployment = self.stack.wait_for(f"the deployment record {key}", decided, self.timeout)
        self.progress(f"deploy: {json.dumps(outcome.deployment)[:200]}")
        return outcome

    def serving(self, model: str | None = None) -> dict[str, Any]:
        """The serving record once the endpoint serves (`model`, if given), reporting the endpoint's
        states on the way."""
        endpoint = self.stack.output("endpoint_name")
        states: list[str] = []

        def record() -> Any:
            try:
                status = self.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
            except self.sagemaker.exceptions.ClientError:
                status = "(none)"
            if not states or states[-1] != status:
                states.append(status)
                self.progress(f"endpoint {endpoint}: {status}")
            found = self.stack.read_json("deployments/serving.json")
            return found if found and (model is None or found.get("model") == model) else None

        served: dict[str, Any] = self.stack.wait_for("the endpoint serving", record, self.timeout)
        self.progress(f"endpoint {served['endpoint']}: serving {served['model']}")
        return served

    def predict(self, records: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        return self.stack.api_client.call("POST", "/predict", {"records": records})

    # ------------------------------------------------------------------------------------- reading back

    def _exists(self, name: str) -> bool:
        try:
            self.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        except self.sagemaker.exceptions.ResourceNotFound:
            return False
        return True

    def _trials(self, name: str) -> list[TrialRow]:
        pages = self.sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=name
        )
        rows = []
        for page in pages:
            for summary in page["TrainingJobSummaries"]:
                final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
                rows.append(
                    TrialRow(
                        summary["TrainingJobName"],
                        summary["TrainingJobStatus"],
                        final.get("Value"),
                        dict(summary.get("TunedHyperParameters", {})),
                    )
                )
        return sorted(rows, key=lambda r: r.training_job)

    def baseline(self, outcome: RunOutcome, directory: Path) -> tuple[float, str, str]:
        """Plain XGBoost on the same split, with the xgboost version that trained it and the tuning job's
        training image: the tuning job's static hyperparameters alone (the tuned ones at
        XGBoost's defaults; num_round, which the container requires, at 100 like xgboost's own
        `n_estimators`), trained by the same container code on the same channels."""
        job = self.sagemaker.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=outcome.tuning_job
        )
        definition = job["TrainingJobDefinition"]
        channels = {}
        s3 = self.stack.aws.client("s3")
        for channel in definition["InputDataConfig"]:
            target = directory / channel["ChannelName"]
            for bucket, key, relative in channel_objects(s3, channel["DataSource"]["S3DataSource"]):
                local = target / relative
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            channels[channel["ChannelName"]] = target
        static = {
            k: v for k, v in definition["StaticHyperParameters"].items() if not k.startswith("sagemaker_")
        }
        static.setdefault("num_round", "100")
        trained = train(static, channels)
        metric = str(outcome.objective_metric)
        image = str(definition["AlgorithmSpecification"]["TrainingImage"])
        return trained.final_metrics[metric], trained.xgboost_version, image


def records_from_csv(body: bytes, target: str, count: int) -> list[dict[str, Any]]:
    """The first `count` rows of a CSV as API records: the columns as written, the target left out."""
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    records = []
    for row in reader:
        records.append({k: v for k, v in row.items() if k != target})
        if len(records) == count:
            break
    return records


def _rows(rows: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in rows.items())


def feature_importance(stack: LocalStack, model_data_url: str, schema_uri: str) -> dict[str, float]:
    """The model's total gain per column name: its `xgboost-model` from model.tar.gz, columns named by
    the run's schema (the features in model order; the target, column 0 of training, is no feature)."""
    s3 = stack.aws.client("s3")

    def read(uri: str) -> bytes:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    with tarfile.open(fileobj=io.BytesIO(read(model_data_url))) as archive:
        member = archive.extractfile(MODEL_NAME)
        assert member is not None, f"{model_data_url} holds no {MODEL_NAME}"
        booster = xgboost.Booster()
        booster.load_model(bytearray(member.read()))
    schema = DatasetSchema.from_json(read(schema_uri))
    names = [feature.name for feature in schema.model_features]
    gains = booster.get_score(importance_type="total_gain")
    # xgboost names columns f0, f1, ... in order; past the features is the width marker, constant.
    return {names[int(f[1:])]: float(str(g)) for f, g in gains.items() if int(f[1:]) < len(names)}
