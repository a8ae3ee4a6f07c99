"""One deliberately broken stack per guardrail, each made by changing a real recorded resource the way a
careless edit of the program would: the guardrail must report it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.policy_pack import changed, edit_json, statement, without
from tests.support.stacks import synth
from tools.mockrun import StackRun


@dataclass(frozen=True)
class Broken:
    stack: str
    what: str
    make: Callable[[StackRun], StackRun]

    def run(self) -> StackRun:
        return self.make(synth(self.stack))


def _set(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda props: props.update(values)


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        for key in keys:
            props.pop(key, None)

    return change


def _statement(sid: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return edit_json("policy", lambda document: edit(statement(document, sid)))


def _tuning_template(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(props: dict[str, Any]) -> None:
        variables = props["environment"]["variables"]
        template = json.loads(variables["TUNING_REQUEST_TEMPLATE"])
        edit(template["TrainingJobDefinition"])
        variables["TUNING_REQUEST_TEMPLATE"] = json.dumps(template)

    return change


def _deny_covers_only_the_bucket(document: dict[str, Any]) -> None:
    deny = statement(document, "DenyInsecureTransport")
    deny["Resource"] = deny["Resource"][:1]


BROKEN: dict[str, Broken] = {
    "s3-block-public-access": Broken(
        "dev",
        "the data bucket lets public bucket policies take effect",
        lambda run: changed(run, "ingest-data-public-access-block", _set(restrictPublicBuckets=False)),
    ),
    "s3-kms-encryption": Broken(
        "dev",
        "the data bucket encrypts with SSE-S3",
        lambda run: changed(
            run,
            "ingest-data-encryption",
            _set(rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
        ),
    ),
    "s3-tls-only": Broken(
        "dev",
        "the TLS deny covers the bucket but not its objects",
        lambda run: changed(run, "ingest-data-policy", edit_json("policy", _deny_covers_only_the_bucket)),
    ),
    "s3-versioning": Broken(
        "dev",
        "the data bucket's versioning is suspended",
        lambda run: changed(
            run, "ingest-data-versioning", _set(versioningConfiguration={"status": "Suspended"})
        ),
    ),
    "s3-acls-disabled": Broken(
        "dev",
        "the access-log bucket's objects belong to their writer (ACLs on)",
        lambda run: changed(
            run, "ingest-access-logs-ownership", _set(rule={"objectOwnership": "ObjectWriter"})
        ),
    ),
    "s3-access-logging": Broken(
        "dev",
        "the data bucket's access logging is removed",
        lambda run: without(run, "ingest-bucket-logging"),
    ),
    "sns-kms-encryption": Broken(
        "dev",
        "the upload topic loses its key",
        lambda run: changed(run, "ingest-topic", _drop("kmsMasterKeyId")),
    ),
    "sqs-encryption": Broken(
        "dev",
        "the deploy dead-letter queue turns SSE-SQS off",
        lambda run: changed(run, "deploy-dlq", _set(sqsManagedSseEnabled=False)),
    ),
    "sns-policy-source-scoped": Broken(
        "dev",
        "S3 may publish to the topic from any bucket of any account",
        lambda run: changed(
            run, "ingest-topic-policy", _statement("AllowDataBucketToPublish", _drop("Condition"))
        ),
    ),
    "sqs-policy-source-scoped": Broken(
        "dev",
        "anyone may send to the upload queue",
        lambda run: changed(
            run, "ingest-queue-policy", _statement("AllowUploadTopicToSend", _set(Principal="*"))
        ),
    ),
    "sqs-dead-letter-queue": Broken(
        "dev",
        "the upload queue loses its redrive policy",
        lambda run: changed(run, "ingest-queue", _drop("redrivePolicy")),
    ),
    "sqs-dead-letter-retention": Broken(
        "prod",
        "the dead-letter queue keeps messages as long as the upload queue",
        lambda run: changed(run, "ingest-dlq", _set(messageRetentionSeconds=345_600)),
    ),
    "lambda-supported-runtime": Broken(
        "dev",
        "the transform runs on python3.10, deprecated since 2026-10-31",
        lambda run: changed(run, "transform-function", _set(runtime="python3.10")),
    ),
    "lambda-log-group-declared": Broken(
        "dev",
        "the transform's log group is no longer declared",
        lambda run: without(run, "transform-logs"),
    ),
    "lambda-tracing": Broken(
        "prod",
        "the deploy function is not traced although the stack's tracing is on",
        lambda run: changed(run, "deploy-function", _drop("tracingConfig")),
    ),
    "iam-no-wildcard-actions": Broken(
        "dev",
        "the deploy role may do anything to its models",
        lambda run: changed(
            run, "deploy-role-policy", _statement("ReadTuningResults", _set(Action=["sagemaker:*"]))
        ),
    ),
    "iam-star-resource-only-unscopable": Broken(
        "dev",
        "the predict role may invoke every endpoint",
        lambda run: changed(
            run, "predict-role-policy", _statement("InvokeStackEndpoint", _set(Resource=["*"]))
        ),
    ),
    "iam-pass-role-scoped": Broken(
        "dev",
        "the tune function may pass the training role to any service",
        lambda run: changed(run, "tune-role-policy", _statement("PassTrainingRole", _drop("Condition"))),
    ),
    "apigateway-method-auth": Broken(
        "dev",
        "POST /predict needs neither a key nor an authorizer",
        lambda run: changed(run, "predict-post-predict", _set(apiKeyRequired=False, authorization="NONE")),
    ),
    "apigateway-throttling": Broken(
        "dev",
        "the usage plan loses its throttle",
        lambda run: changed(run, "predict-usage-plan", _drop("throttleSettings")),
    ),
    "apigateway-access-logging": Broken(
        "dev",
        "the stage writes no access logs",
        lambda run: changed(run, "predict-stage", _drop("accessLogSettings")),
    ),
    "apigateway-tracing": Broken(
        "prod",
        "the stage is not traced although the stack's tracing is on",
        lambda run: changed(run, "predict-stage", _set(xrayTracingEnabled=False)),
    ),
    "sagemaker-training-output-kms": Broken(
        "dev",
        "training jobs write model artifacts without the stack key",
        lambda run: changed(
            run, "tune-function", _tuning_template(lambda d: d["OutputDataConfig"].pop("KmsKeyId"))
        ),
    ),
    "sagemaker-training-network-isolation": Broken(
        "dev",
        "training jobs may reach the network",
        lambda run: changed(
            run, "tune-function", _tuning_template(lambda d: d.update(EnableNetworkIsolation=False))
        ),
    ),
    "logs-retention": Broken(
        "dev",
        "the API's access logs never expire",
        lambda run: changed(run, "predict-access-logs", _drop("retentionInDays")),
    ),
    "logs-kms": Broken(
        "prod",
        "the deploy function's logs are not under the stack key",
        lambda run: changed(run, "deploy-logs", _drop("kmsKeyId")),
    ),
}
