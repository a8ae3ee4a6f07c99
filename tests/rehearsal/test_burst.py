"""A burst of 200 uploads into the local stack, broken files and duplicate deliveries mixed in.

Everything is counted from what the system wrote and what the queues hold: each good file is transformed
exactly once and is in exactly one tuning job's data, each dataset's burst starts exactly one job, each
broken file gets exactly one rejection report, and no message is lost, stuck or dead-lettered.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from rehearsal.local_stack import LocalStack, StackOptions

DATASETS = ("orders", "churn", "fraud", "sensors")
GOOD_PER_DATASET = 45
BROKEN_PER_DATASET = 5  # 4 x (45 + 5) = 200 uploads
DUPLICATE_DELIVERIES = 10
ROWS_PER_FILE = 60  # above the default minLabeledRows (50)
# Longer than the gap between two transforms of one dataset while the burst is worked off (the transform
# runs at most transformMaxConcurrency at once), so each dataset's burst is one quiet period.
QUIET_SECONDS = 20
CONFIG = {
    "serverless-ml-pipeline:tuningQuietSeconds": str(QUIET_SECONDS),
    "serverless-ml-pipeline:tuningMaxJobs": "1",
    "serverless-ml-pipeline:tuningMaxParallelJobs": "1",
}
QUEUES = ("queue_url", "dead_letter_queue_url", "tuning_queue_url", "tuning_dead_letter_queue_url")


def good_csv(rng: random.Random, dataset: str, number: int) -> bytes:
    """Rows of a learnable binary problem, each with an identifier the transform ignores."""
    lines = ["id,amount,score,region,target"]
    for row in range(ROWS_PER_FILE):
        amount, score = rng.uniform(0, 100), rng.gauss(0, 1)
        label = "yes" if amount / 50 + score > 1.2 else "no"
        lines.append(f"{dataset}-{number}-{row},{amount:.2f},{score:.3f},{rng.choice('NESW')},{label}")
    return ("\n".join(lines) + "\n").encode()


def broken_csv(number: int) -> bytes:
    """An Excel export with decimal commas, quoted: a text column where the dataset has numbers."""
    rows = [f'{number}-{row},"{row},5",0.1,N,yes' for row in range(ROWS_PER_FILE)]
    return ("id,amount,score,region,target\n" + "\n".join(rows) + "\n").encode()


def test_a_burst_of_200_uploads_is_worked_off_exactly_once_each(tmp_path: Path) -> None:
    rng = random.Random(7)
    good = {f"{d}/part-{n:03d}.csv": good_csv(rng, d, n) for d in DATASETS for n in range(GOOD_PER_DATASET)}
    # A dataset's first upload sets its schema: the broken files come after it.
    broken = {f"{d}/excel-{n}.csv": broken_csv(n) for d in DATASETS for n in range(BROKEN_PER_DATASET)}
    first_of_each = [f"{d}/part-000.csv" for d in DATASETS]
    with LocalStack(StackOptions(config=CONFIG, work_dir=tmp_path)) as stack:
        for key in first_of_each:
            stack.upload(key, good[key])
        stack.wait_for(
            "each dataset's schema",
            lambda: all(stack.read_json(f"processed/{d}/schema.json") for d in DATASETS),
            120,
        )
        rest = [k for k in good if k not in first_of_each] + list(broken)
        rng.shuffle(rest)
        for key in rest:
            stack.upload(key, good.get(key) or broken[key])

        transform = stack.output("transform_function")
        stack.wait_for("a first transform of every upload", lambda: _transformed(stack) == len(good), 600)
        # At least once: the same notifications of ten good uploads delivered again.
        deliveries = [i.event["Records"][0]["body"] for i in stack.lambda_.invocations(transform)]
        for body in rng.sample(deliveries, DUPLICATE_DELIVERIES):
            stack.aws.client("sqs").send_message(QueueUrl=stack.output("queue_url"), MessageBody=body)
        invocations = len(good) + len(broken) + DUPLICATE_DELIVERIES
        stack.wait_for("every delivery", lambda: _delivered(stack, transform) >= invocations, 300)
        stack.wait_for("every queue to drain", lambda: all(stack.queue_depth(q) == 0 for q in QUEUES), 300)
        records = stack.wait_for(
            "a decision on every tuning job",
            lambda: (
                (found := stack.keys("deployments/")) and len(_decisions(found)) >= len(DATASETS) and found
            ),
            600,
        )

        manifests = [k for k in stack.keys("processed/") if k.endswith("/manifest.json")]
        sources = [stack.read_json(k)["source"]["key"] for k in manifests]
        assert sorted(sources) == sorted(f"{stack.raw_prefix}{k}" for k in good)  # each good file once

        rejected = stack.keys("rejected/")
        assert sorted(rejected) == sorted(f"rejected/{stack.raw_prefix}{k}.json" for k in broken)

        jobs = stack.sagemaker.tuning_jobs
        assert len(jobs) == len(DATASETS)
        runs_by_dataset = {
            d: sorted(k.split("/")[2] for k in manifests if k.split("/")[1] == d) for d in DATASETS
        }
        trained_on = {}
        for job in jobs.values():
            channel = job.definition["InputDataConfig"][0]["DataSource"]["S3DataSource"]
            assert channel["S3DataType"] == "ManifestFile"
            manifest = _read_manifest(stack, channel["S3Uri"])
            dataset = manifest[0]["prefix"].rstrip("/").rsplit("/", 1)[1]
            trained_on[dataset] = sorted({key.split("/")[0] for key in manifest[1:]})
        assert trained_on == runs_by_dataset  # each dataset: one job, over every one of its runs

        for queue in QUEUES:
            assert stack.queue_depth(queue) == 0, queue
        assert stack.queue_depth("deploy_dead_letter_queue_url") == 0
        assert len(_decisions(records)) == len(DATASETS)


def _transformed(stack: LocalStack) -> int:
    return sum(1 for k in stack.keys("processed/") if k.endswith("/manifest.json"))


def _delivered(stack: LocalStack, transform: str) -> int:
    return sum(len(i.event["Records"]) for i in stack.lambda_.invocations(transform))


def _decisions(keys: list[str]) -> list[str]:
    return [k for k in keys if k.count("/") == 1 and k.endswith(".json") and not k.endswith("serving.json")]


def _read_manifest(stack: LocalStack, uri: str) -> list[dict[str, str] | str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    assert bucket == stack.bucket
    document: list[dict[str, str] | str] = json.loads(
        stack.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    )
    return document
