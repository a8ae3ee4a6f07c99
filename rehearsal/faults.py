"""Failures the rehearsal can stage, each where AWS would produce it, and what must hold afterwards.

- transform-fails-once: the transform's first invocation fails; the message comes back after the
  visibility timeout, the second delivery succeeds, nothing is in the dead-letter queue.
- transform-always-fails: every invocation fails; after `queueMaxReceiveCount` receives the message is in
  the dead-letter queue, the upload untouched, no run written, no tuning job.
- duplicate-delivery: the upload's notification is delivered twice (SNS and SQS deliver at least once):
  one run; the second delivery asks for tuning again, and the tune function starts no second job.
- training-fails: the training role cannot read its data: the tuning job fails, the deploy function
  records it, no endpoint.
- lucky-upload: a second upload whose rows in validation are the champion's own and whose training rows
  are mislabelled copies of the champion's, twice each: the tuning job trains on both runs, both models
  are scored on the same validation rows by batch transform, the challenger does not beat the champion
  there, is not deployed, and the champion keeps serving.
- rollback: the endpoint's error alarm fires while a better model bakes on an instance endpoint: the
  update rolls back and the old model keeps serving.

Faults use the bundled sample.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from deploy.contest import Outcome
from rehearsal.local_stack import LocalStack, Revocation
from rehearsal.rehearse import Pipeline, Rehearsal
from rehearsal.samples import SampleDataset, Upload
from transform.profile import digests, joined, to_validation, validation_threshold


class FaultNotContained(AssertionError):
    """The system did not contain the staged failure as it must."""


@dataclass
class FaultContext:
    stack: LocalStack
    pipeline: Pipeline
    dataset: SampleDataset
    result: Rehearsal


Step = Callable[[FaultContext], None]


def _nothing(_: FaultContext) -> None:
    return None


@dataclass(frozen=True)
class Fault:
    description: str
    before: Step = _nothing
    after: Step = _nothing
    revocations: tuple[Revocation, ...] = ()
    # Stack config the fault needs (blue/green updates exist on instance endpoints only).
    config: Mapping[str, str] = field(default_factory=dict)
    # The fault ends the path at the transform: `after` takes over from there.
    replaces_main_path: bool = False
    # The transform is expected to write its run (or rejection) before `after` runs.
    transform_finishes: bool = True
    # The upload that goes first, in place of the dataset's own good one.
    first_upload: Callable[[SampleDataset], Upload] | None = field(default=None)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise FaultNotContained(message)


def _transform_name(context: FaultContext) -> str:
    return context.stack.output("transform_function")


def _fail_first_transform(context: FaultContext) -> None:
    context.stack.lambda_.fail_next(_transform_name(context), times=1)


def _one_retry_then_success(context: FaultContext) -> None:
    invocations = context.stack.lambda_.invocations(_transform_name(context))
    _check(
        len(invocations) >= 2 and not invocations[0].ok and invocations[1].ok, "the transform was not retried"
    )
    _check(context.stack.queue_depth("dead_letter_queue_url") == 0, "a message is in the dead-letter queue")
    context.pipeline.progress(f"transform failed once, succeeded on delivery {len(invocations)}; DLQ empty")


def _fail_every_transform(context: FaultContext) -> None:
    context.stack.lambda_.fail_next(_transform_name(context), times=None)


def _in_dead_letter_queue(context: FaultContext) -> None:
    stack, upload = context.stack, context.dataset.good
    key = f"{stack.raw_prefix}{upload.key}"
    stack.wait_for(
        "the message in the dead-letter queue", lambda: stack.queue_depth("dead_letter_queue_url") == 1, 120
    )
    receives = len(stack.lambda_.invocations(_transform_name(context)))
    redrive = stack.aws.client("sqs").get_queue_attributes(
        QueueUrl=stack.output("queue_url"), AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
    expected = int(json.loads(redrive)["maxReceiveCount"])
    _check(receives == expected, f"the transform ran {receives} times, not maxReceiveCount {expected}")
    versions = (
        stack.aws.client("s3").list_object_versions(Bucket=stack.bucket, Prefix=key).get("Versions", [])
    )
    _check(len(versions) == 1 and versions[0]["Size"] == len(upload.body), "the upload was changed")
    _check(not stack.keys(f"processed/{upload.dataset}/"), "a failed transform wrote a run")
    context.pipeline.progress(
        f"after {receives} failed deliveries the message is in the DLQ; {key} untouched"
    )


def _deliver_again(context: FaultContext) -> None:
    stack = context.stack
    first = stack.lambda_.invocations(_transform_name(context))[0]
    body = first.event["Records"][0]["body"]
    before = len(stack.lambda_.invocations(_transform_name(context)))
    tune = stack.output("tune_function")
    tunings = len(stack.lambda_.invocations(tune))
    stack.aws.client("sqs").send_message(QueueUrl=stack.output("queue_url"), MessageBody=body)
    stack.wait_for(
        "the second delivery", lambda: len(stack.lambda_.invocations(_transform_name(context))) > before, 60
    )
    stack.wait_for("the queue to drain", lambda: stack.queue_depth("queue_url") == 0, 60)
    # The second delivery asks for tuning again, after the quiet period: the tune function must have
    # answered that request before the jobs are counted.
    stack.wait_for("the second tuning request", lambda: len(stack.lambda_.invocations(tune)) > tunings, 60)
    stack.wait_for("the tuning queue to drain", lambda: stack.queue_depth("tuning_queue_url") == 0, 60)
    jobs = context.pipeline.sagemaker.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    _check(len(jobs) == 1, f"a duplicate delivery started {len(jobs)} tuning jobs")
    context.pipeline.progress("the same notification delivered twice: one run, one tuning job")


def _training_failed(context: FaultContext) -> None:
    pipeline, outcome = context.pipeline, context.result.first
    pipeline.tune(outcome)
    _check(outcome.tuning_status == "Failed", f"the tuning job ended {outcome.tuning_status}, not Failed")
    pipeline.deployment(outcome)
    assert outcome.deployment is not None
    _check(outcome.deployment["outcome"] == Outcome.NOT_DEPLOYED, "a failed tuning job was not reported")
    endpoints = pipeline.sagemaker.list_endpoints()["Endpoints"]
    _check(not endpoints, "an endpoint exists after every training job failed")
    context.pipeline.progress(f"every training job failed; deploy recorded: {outcome.deployment['reason']}")


def _relabelled(upload: Upload, *, name: str, flip: float) -> Upload:
    """The same rows with a share `flip` of their labels shuffled among them: a worse dataset."""
    lines = upload.body.decode().splitlines()
    header, rows = lines[0], [line.rsplit(",", 1) for line in lines[1:]]
    rng = random.Random(7)  # noqa: S311 - a reproducible test dataset, not a secret
    chosen = rng.sample(range(len(rows)), int(len(rows) * flip))
    labels = [rows[i][1] for i in chosen]
    rng.shuffle(labels)
    for i, label in zip(chosen, labels, strict=True):
        rows[i][1] = label
    body = "\n".join([header, *(",".join(r) for r in rows)]) + "\n"
    return Upload(upload.dataset, name, body.encode())


def _a_few_rows(upload: Upload, *, keep: int) -> Upload:
    """`keep` of the upload's rows, drawn at random (the file may be sorted by class)."""
    lines = upload.body.decode().splitlines()
    rng = random.Random(11)  # noqa: S311 - a reproducible test dataset, not a secret
    chosen = sorted(rng.sample(range(1, len(lines)), keep))
    body = "\n".join([lines[0], *(lines[i] for i in chosen)]) + "\n"
    return Upload(upload.dataset, "a-few-rows.csv", body.encode())


def _lucky_upload(upload: Upload, validation_percent: int) -> Upload:
    """An upload that looks good where it is scored and teaches wrong where it is learnt from: the rows
    the transform's split sends to validation (profile.to_validation, keyed on each row's raw fields) as
    they are, and each of the others twice with its label flipped, kept where the flipped row still goes
    to training. Twice: once would only cancel the champion's rows it copies, in a job that trains on both
    uploads, and leave a model as good as the champion."""
    lines = upload.body.decode().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    threshold = validation_threshold(validation_percent / 100)
    held_out = to_validation(digests(joined(rows)), threshold)
    labels = sorted({row[-1] for row in rows})
    assert len(labels) == 2, "the lucky upload flips a binary target"
    flipped = [
        [*row[:-1], labels[1 - labels.index(row[-1])]]
        for row, validation in zip(rows, held_out, strict=True)
        if not validation
    ]
    stays_in_training = [not v for v in to_validation(digests(joined(flipped)), threshold)]
    chosen = [
        *(line for line, validation in zip(lines[1:], held_out, strict=True) if validation),
        *(
            ",".join(row)
            for row, training in zip(flipped, stays_in_training, strict=True)
            if training
            for _ in range(2)
        ),
    ]
    body = "\n".join([lines[0], *chosen]) + "\n"
    return Upload(upload.dataset, "lucky-upload.csv", body.encode())


def _serving_model(context: FaultContext) -> str:
    return str(context.pipeline.serving()["model"])


def _lucky_upload_loses(context: FaultContext) -> None:
    pipeline, dataset = context.pipeline, context.dataset
    champion = _serving_model(context)
    # The champion's validation rows again, unchanged, so the split (keyed on a row's fields) keeps them in
    # validation, where the challenger is scored; its training rows are mislabelled copies of the
    # champion's. The tuning job trains on both runs, and the contest scores both models on the same rows.
    percent = int(
        context.stack.lambda_.spec(context.stack.output("transform_function")).environment[
            "VALIDATION_PERCENT"
        ]
    )
    outcome = pipeline.transform(_lucky_upload(dataset.good, percent))
    pipeline.tune(outcome)
    pipeline.deployment(outcome)
    context.result.outcomes.append(outcome)
    assert outcome.deployment is not None
    replaced = outcome.deployment["outcome"] != Outcome.NOT_DEPLOYED
    _check(not replaced, "the lucky upload's model replaced the champion")
    contest = outcome.deployment.get("contest") or {}
    held_out = contest.get("heldOut") or {}
    _check(
        held_out.get("rows", 0) > 0 and held_out["champion"] >= held_out["challenger"],
        f"the challenger was not judged on the same rows as the champion: {contest}",
    )
    _check(_serving_model(context) == champion, "the champion no longer serves")
    status, answer = pipeline.predict(context.result.sample_records)
    _check(status == 200 and answer["model"] == champion, f"predictions came from {answer.get('model')}")
    reason = outcome.deployment["reason"]
    pipeline.progress(f"the lucky upload's model lost ({reason}); {champion} still serves")


def _rollback_keeps_the_old_model(context: FaultContext) -> None:
    pipeline, stack = context.pipeline, context.stack
    champion = _serving_model(context)
    outcome = pipeline.transform(context.dataset.good)
    pipeline.tune(outcome)
    alarm = json.loads(stack.lambda_.spec(stack.output("deploy_function")).environment["SERVING_PLAN"])[
        "rollback_alarm"
    ]
    endpoint = context.result.endpoint
    stack.wait_for(
        "the endpoint update",
        lambda: pipeline.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating",
        120,
    )
    stack.aws.client("cloudwatch").set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="rehearsal: the new model answers with errors"
    )
    pipeline.progress(f"alarm {alarm} fired during the blue/green bake")
    stack.wait_for(
        "the rollback",
        lambda: pipeline.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService",
        120,
    )
    context.result.outcomes.append(outcome)
    reason = pipeline.sagemaker.describe_endpoint(EndpointName=endpoint).get("FailureReason", "")
    _check("rolled back" in reason, f"the endpoint does not say it rolled back: {reason!r}")
    _check(_serving_model(context) == champion, "the rolled-back model does not serve")
    status, answer = pipeline.predict(context.result.sample_records)
    _check(status == 200 and answer["model"] == champion, f"predictions came from {answer.get('model')}")
    pipeline.progress(f"{reason}; {champion} still serves")


FAULTS: dict[str, Fault] = {
    "transform-fails-once": Fault(
        "the transform's first invocation fails", before=_fail_first_transform, after=_one_retry_then_success
    ),
    "transform-always-fails": Fault(
        "every transform invocation fails",
        before=_fail_every_transform,
        after=_in_dead_letter_queue,
        replaces_main_path=True,
        transform_finishes=False,
    ),
    "duplicate-delivery": Fault("the upload's notification is delivered twice", after=_deliver_again),
    "training-fails": Fault(
        "the training role cannot read its data",
        revocations=(Revocation("training-role-policy", "s3:GetObject"),),
        after=_training_failed,
        replaces_main_path=True,
    ),
    "lucky-upload": Fault(
        "an upload of the champion's validation rows and mislabelled training rows",
        after=_lucky_upload_loses,
    ),
    "rollback": Fault(
        "a better model's blue/green update trips the endpoint's error alarm",
        # An hour's bake (6 s at the default time scale) leaves the fault ample time to fire the alarm in it.
        config={
            "serverless-ml-pipeline:endpointMode": "instances",
            "serverless-ml-pipeline:endpointBakeSeconds": "3600",
        },
        # A weak champion, from a few rows with noisy labels; the full table then trains, with them, a model
        # that is better on the same rows (its validation split holds both uploads' validation rows).
        first_upload=lambda dataset: _relabelled(
            _a_few_rows(dataset.good, keep=80), name="a-few-noisy-rows.csv", flip=0.3
        ),
        after=_rollback_keeps_the_old_model,
    ),
}
