"""Every IAM role of every stack grants exactly what its function or service does, statement by statement.

Each role has a table, Sid -> actions, resources, condition, written from what the synth says the role's
user touches: the bucket, key, queue and log group it is wired to, the names its function is told to use
(tuning-job prefix, endpoint, serving record, rollback alarm) and the AWS naming rules of the ARNs
(Service Authorization Reference, "Resource types" of each service). None of it comes from the policy
builders in `components/`, so a builder that widens a resource, or narrows one, fails here. The mutation
tests at the end widen each resource of each statement in a copy of the real policy and show the
comparison rejects every copy, so these tests can fail.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from deploy.contest import Score
from deploy.contest_jobs import contest_jobs, transform_request
from deploy.deferral import DEFERRED
from deploy.environment import DeployEnvironment, load_environment
from deploy.serving import Candidate, ServingPlan, endpoint_config_request
from deploy.serving_record import SERVING_RECORD
from rehearsal.iam_policy import Policy
from settings import load_settings
from shared.dataset_store import PROCESSED_PREFIX, REJECTED_PREFIX
from tests.support.policies import as_list
from tests.support.stacks import STACKS, synth
from tools.mockrun import MOCK_ACCOUNT_ID, Resource, StackRun

ROLE = "aws:iam/role:Role"
MANAGED_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LAMBDA = "lambda.amazonaws.com"
SAGEMAKER = "sagemaker.amazonaws.com"
APIGATEWAY = "apigateway.amazonaws.com"
# SageMaker developer guide, "Log Amazon SageMaker AI events with Amazon CloudWatch": training jobs log to
# this group, an endpoint to `/aws/sagemaker/Endpoints/<endpoint name>`; both publish metrics under
# `/aws/sagemaker/...` namespaces.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ENDPOINT_LOG_GROUPS = "/aws/sagemaker/Endpoints"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
VALIDATION = {"S3DataType": "S3Prefix", "S3Uri": "s3://b/processed/d/r/validation/"}
SAGEMAKER_METRIC_NAMESPACES = "/aws/sagemaker/*"
# Application Auto Scaling user guide, "Service-linked roles": the role scaling a SageMaker variant.
SCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
SCALING_ROLE_PATH = (
    f"aws-service-role/{SCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
# Application Auto Scaling names a target tracking policy's alarms `TargetTracking-<resource id>-...`, and
# a SageMaker variant's resource id is `endpoint/<endpoint>/variant/<variant>`.
TARGET_TRACKING_ALARMS = "TargetTracking-endpoint/{endpoint}/*"
# API Gateway developer guide, "Set up CloudWatch logging for REST APIs in API Gateway".
API_GATEWAY_LOGGING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
# ECR image URI: `<registry account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>`.
IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(?P<repository>[^:@]+)[:@]"
)


# ------------------------------------------------------------------------------- expected and compared


@dataclass(frozen=True)
class Allowed:
    """One Allow statement as it must read: these actions on these resources, under this condition."""

    actions: Sequence[str]
    resources: Sequence[str]
    condition: Mapping[str, Mapping[str, Any]] | None = None


Table = dict[str, Allowed]


def _condition(block: Any) -> Any:
    """A Condition block with each value list sorted: `"x"` and `["x"]` mean the same to IAM."""
    if block is None:
        return None
    if not isinstance(block, Mapping):
        return block
    return {
        operator: (
            {key: sorted(as_list(values)) for key, values in keys.items()}
            if isinstance(keys, Mapping)
            else keys
        )
        for operator, keys in block.items()
    }


def differences(document: Mapping[str, Any], expected: Table) -> list[str]:
    """What `document` grants beyond or short of `expected`, one line per difference; [] when exact."""
    problems: list[str] = []
    if document.get("Version") != "2012-10-17":
        problems.append(f"Version is {document.get('Version')!r}")
    found: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(as_list(document.get("Statement", []))):
        sid = raw.get("Sid")
        if sid is None:
            problems.append(f"statement {index} has no Sid: {raw}")
        elif sid in found:
            problems.append(f"{sid}: appears twice")
        else:
            found[sid] = raw
    problems += [f"{sid}: not in the table" for sid in sorted(found.keys() - expected.keys())]
    problems += [f"{sid}: missing" for sid in sorted(expected.keys() - found.keys())]
    for sid in sorted(found.keys() & expected.keys()):
        raw, want = found[sid], expected[sid]
        # Any other element (NotAction, NotResource, Principal) changes what the statement grants.
        elements = raw.keys() - {"Sid"}
        wanted = {"Effect", "Action", "Resource"} | ({"Condition"} if want.condition is not None else set())
        if elements != wanted:
            problems.append(f"{sid}: has elements {sorted(elements)}, expected {sorted(wanted)}")
        if raw.get("Effect") != "Allow":
            problems.append(f"{sid}: Effect is {raw.get('Effect')!r}")
        if sorted(as_list(raw.get("Action", []))) != sorted(want.actions):
            problems.append(f"{sid}: actions {as_list(raw.get('Action', []))}, expected {list(want.actions)}")
        if sorted(as_list(raw.get("Resource", []))) != sorted(want.resources):
            problems.append(
                f"{sid}: resources {as_list(raw.get('Resource', []))}, expected {list(want.resources)}"
            )
        if _condition(raw.get("Condition")) != _condition(want.condition):
            problems.append(f"{sid}: condition {raw.get('Condition')}, expected {want.condition}")
    return problems


# ------------------------------------------------------------------------------ what the synth wires


@dataclass(frozen=True)
class Stack:
    """The facts of one synth the tables are written from."""

    run: StackRun
    partition: str
    region: str
    account: str
    # The stack config's `tracing`: Lambda then sends each function's traces with its role.
    tracing: bool

    @staticmethod
    def of(run: StackRun) -> Stack:
        (bucket,) = [b for b in run.of_type("aws:s3/bucket:Bucket") if b.name == "ingest-data"]
        return Stack(
            run=run,
            partition=bucket.outputs["arn"].split(":")[1],
            region=run.config["aws:region"],
            # The account the fake provider's GetCallerIdentity answers: the account being deployed to.
            account=MOCK_ACCOUNT_ID,
            tracing=load_settings(run.config, stack=run.stack).functions.tracing,
        )

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def sagemaker(self, resource: str) -> str:
        # SageMaker puts resource names into its ARNs in lower case; IAM compares ARNs case-sensitively.
        return self.arn("sagemaker", resource.lower())

    def iam_role(self, path_and_name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{path_and_name}"

    def alarm(self, name: str) -> str:
        return self.arn("cloudwatch", f"alarm:{name}")

    def parameter(self, name: str) -> str:
        # Service Authorization Reference, Systems Manager: `parameter/${ParameterNameWithoutLeadingSlash}`.
        return self.arn("ssm", f"parameter/{name.removeprefix('/')}")

    def log_group(self, name: str) -> str:
        return self.arn("logs", f"log-group:{name}")

    def function(self, name: str) -> Resource:
        return self.run.named(name)

    def env(self, function: str) -> dict[str, str]:
        return dict(self.function(function).inputs["environment"]["variables"])

    def bucket_arn(self, bucket_name: str) -> str:
        (bucket,) = [
            b for b in self.run.of_type("aws:s3/bucket:Bucket") if b.outputs["bucket"] == bucket_name
        ]
        return str(bucket.outputs["arn"])

    def function_log_group_arn(self, function: str) -> str:
        """The log group the function is configured to write to."""
        name = self.function(function).inputs["loggingConfig"]["logGroup"]
        (group,) = [
            g for g in self.run.of_type("aws:cloudwatch/logGroup:LogGroup") if g.outputs["name"] == name
        ]
        return str(group.outputs["arn"])

    def stack_key_arn(self) -> str:
        (key,) = self.run.of_type("aws:kms/key:Key")
        return str(key.outputs["arn"])

    def tuning_request(self) -> dict[str, Any]:
        """The part of every CreateHyperParameterTuningJob the tune function sends (its environment)."""
        return dict(json.loads(self.env("tune-function")["TUNING_REQUEST_TEMPLATE"]))

    def deploy(self) -> DeployEnvironment:
        return load_environment(self.env("deploy-function"))

    def algorithm_repository_arn(self) -> str:
        image = self.tuning_request()["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"]
        found = IMAGE_URI.match(image)
        assert found, f"not an ECR image URI: {image}"
        return (
            f"arn:{self.partition}:ecr:{found['region']}:{found['account']}:repository/{found['repository']}"
        )


def contest_prefix(stack: Stack) -> str:
    """Where the deploy function's contest transform jobs write, whichever the tuning job: the folder
    above `<tuning job>/` of a job's output (deploy.contest_jobs)."""
    deploy = stack.deploy()
    tuning = f"{deploy.tuning_job_prefix}-x"
    challenger, _ = contest_jobs(deploy.plan, deploy.records_prefix, tuning, "a", "b")
    return s3_location(challenger.output)[1].split(f"{tuning}/")[0]


def contest_key(plan: ServingPlan) -> str:
    """The KMS key the contest's transform requests name for their output."""
    job = contest_jobs(plan, "deployments/", "t", "a", "b")[0]
    return str(transform_request(plan, job, VALIDATION, "t")["TransformOutput"]["KmsKeyId"])


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, key prefix) of `s3://bucket/prefix`."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


# ----------------------------------------------------------------------------------- the tables


def traced_function(stack: Stack) -> Table:
    """What Lambda's active tracing needs of a function's role, when the stack traces: the two uploads of
    the AWS-managed AWSXRayDaemonWriteAccess policy, on `*` because neither has a resource type (Service
    Authorization Reference, AWS X-Ray)."""
    if not stack.tracing:
        return {}
    return {"SendTraces": Allowed(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"])}


def transform_table(stack: Stack) -> Table:
    env = stack.env("transform-function")
    bucket = stack.bucket_arn(env["DATA_BUCKET"])
    processed = f"{bucket}/{PROCESSED_PREFIX}*"
    return {
        "ReadUploads": Allowed(["s3:GetObject", "s3:GetObjectVersion"], [f"{bucket}/{env['RAW_PREFIX']}*"]),
        "ReadDatasets": Allowed(["s3:GetObject"], [processed]),
        "TellMissingKeys": Allowed(["s3:ListBucket"], [bucket]),
        "WriteResults": Allowed(["s3:PutObject"], [processed, f"{bucket}/{REJECTED_PREFIX}*"]),
        "DiscardUnfinishedResults": Allowed(["s3:AbortMultipartUpload"], [processed]),
        # The queue its event source mapping polls with the role.
        "ConsumeUploadQueue": Allowed(
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            [stack.run.named("transform-trigger").inputs["eventSourceArn"]],
        ),
        # The queue its environment names for the tuning requests of complete runs.
        "RequestTuning": Allowed(["sqs:SendMessage"], [queue_with_url(stack, env["TUNING_QUEUE_URL"])]),
        "UseDataKey": Allowed(["kms:Decrypt", "kms:GenerateDataKey"], [stack.stack_key_arn()]),
        "WriteOwnLogs": Allowed(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{stack.function_log_group_arn('transform-function')}:*"],
        ),
        **traced_function(stack),
    }


def queue_with_url(stack: Stack, url: str) -> str:
    (queue,) = [q for q in stack.run.of_type("aws:sqs/queue:Queue") if q.outputs["url"] == url]
    return str(queue.outputs["arn"])


def tune_table(stack: Stack) -> Table:
    env = stack.env("tune-function")
    bucket = stack.bucket_arn(env["DATA_BUCKET"])
    processed = f"{bucket}/{PROCESSED_PREFIX}*"
    requests = stack.run.named("tune-trigger").inputs["eventSourceArn"]
    definition = stack.tuning_request()["TrainingJobDefinition"]
    return {
        "ReadDatasets": Allowed(["s3:GetObject"], [processed]),
        "ListRuns": Allowed(["s3:ListBucket"], [bucket]),
        "WriteTuningSets": Allowed(["s3:PutObject"], [processed]),
        "ConsumeTuningRequests": Allowed(
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], [requests]
        ),
        # Deferred requests go back to the queue its environment names: the one it consumes.
        "DeferTuningRequests": Allowed(["sqs:SendMessage"], [queue_with_url(stack, env["TUNING_QUEUE_URL"])]),
        "UseDataKey": Allowed(["kms:Decrypt", "kms:GenerateDataKey"], [stack.stack_key_arn()]),
        "StartTuningJobs": Allowed(
            ["sagemaker:CreateHyperParameterTuningJob", "sagemaker:AddTags"],
            [stack.sagemaker(f"hyper-parameter-tuning-job/{env['TUNING_JOB_PREFIX']}-*")],
        ),
        # The role its tuning requests name, and only for SageMaker.
        "PassTrainingRole": Allowed(
            ["iam:PassRole"],
            [definition["RoleArn"]],
            {"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        ),
        "WriteOwnLogs": Allowed(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{stack.function_log_group_arn('tune-function')}:*"],
        ),
        **traced_function(stack),
    }


def deploy_table(stack: Stack) -> Table:
    deploy = stack.deploy()
    plan, prefix = deploy.plan, deploy.tuning_job_prefix
    bucket = stack.bucket_arn(deploy.bucket)
    configs = stack.sagemaker(f"endpoint-config/{prefix}-*")
    endpoint = stack.sagemaker(f"endpoint/{plan.endpoint_name}")
    deferred = f"{deploy.records_prefix}{DEFERRED}"
    champion = (
        {
            "KeepChampionRecord": Allowed(
                ["ssm:GetParameter", "ssm:PutParameter"], [stack.parameter(plan.champion_parameter)]
            )
        }
        if plan.champion_parameter
        else {}
    )
    return {
        **champion,
        "ReadTuningResults": Allowed(
            ["sagemaker:DescribeHyperParameterTuningJob", "sagemaker:StopHyperParameterTuningJob"],
            [stack.sagemaker(f"hyper-parameter-tuning-job/{prefix}-*")],
        ),
        "ReadBestTrainingJob": Allowed(
            ["sagemaker:DescribeTrainingJob"], [stack.sagemaker(f"training-job/{prefix}-*")]
        ),
        # List actions have no resource type (Service Authorization Reference, SageMaker).
        "FindStackResources": Allowed(
            [
                "sagemaker:ListHyperParameterTuningJobs",
                "sagemaker:ListEndpointConfigs",
                "sagemaker:ListModels",
                "sagemaker:ListTransformJobs",
            ],
            ["*"],
        ),
        # The contest's transform jobs, named after their tuning job; teardown stops running ones.
        "ScoreOnSameRows": Allowed(
            [
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
            ],
            [stack.sagemaker(f"transform-job/{prefix}-*")],
        ),
        # The validation rows (the transform writes them under `processed/`) and both predictions of them.
        "ReadContestRows": Allowed(
            ["s3:GetObject"], [f"{bucket}/{PROCESSED_PREFIX}*", f"{bucket}/{contest_prefix(stack)}*"]
        ),
        "FindValidationRows": Allowed(
            ["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": [f"{PROCESSED_PREFIX}*"]}}
        ),
        "DecryptContestRows": Allowed(["kms:Decrypt"], [plan.key_arn]),
        "HostModels": Allowed(
            [
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:DeleteModel",
                "sagemaker:AddTags",
            ],
            [stack.sagemaker(f"model/{prefix}-*")],
        ),
        "ConfigureEndpoint": Allowed(
            [
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:ListTags",
                "sagemaker:AddTags",
            ],
            [configs],
        ),
        "ServeFromConfigs": Allowed(["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"], [configs]),
        "ManageEndpoint": Allowed(
            [
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:AddTags",
            ],
            [endpoint],
        ),
        "PassModelRole": Allowed(
            ["iam:PassRole"], [plan.model_role_arn], {"StringEquals": {"iam:PassedToService": SAGEMAKER}}
        ),
        # Scalable targets have no ARN before they are registered: the condition is the whole limit.
        "ScaleEndpoint": Allowed(
            [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeregisterScalableTarget",
            ],
            ["*"],
            {
                "StringEquals": {
                    "application-autoscaling:service-namespace": "sagemaker",
                    "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
                }
            },
        ),
        "ReadRollbackAlarm": Allowed(["cloudwatch:DescribeAlarms"], [stack.alarm(plan.rollback_alarm)]),
        "LetScalingResizeEndpoint": Allowed(["sagemaker:UpdateEndpointWeightsAndCapacities"], [endpoint]),
        "LetScalingManageAlarms": Allowed(
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            [stack.alarm(TARGET_TRACKING_ALARMS.format(endpoint=plan.endpoint_name))],
        ),
        "CreateScalingServiceRole": Allowed(
            ["iam:CreateServiceLinkedRole"],
            [stack.iam_role(SCALING_ROLE_PATH)],
            {"StringLike": {"iam:AWSServiceName": SCALING_SERVICE}},
        ),
        "WriteRecords": Allowed(["s3:PutObject"], [f"{bucket}/{deploy.records_prefix}*"]),
        "FindDeferredChallengers": Allowed(
            ["s3:ListBucket"], [bucket], {"StringEquals": {"s3:prefix": deferred}}
        ),
        "ClearDeferredChallengersAndServingRecord": Allowed(
            ["s3:DeleteObject"],
            [f"{bucket}/{deferred}*", f"{bucket}/{deploy.records_prefix}{SERVING_RECORD}"],
        ),
        "EncryptRecords": Allowed(["kms:GenerateDataKey"], [plan.key_arn]),
        # The on-failure destination of its asynchronous invocations, which Lambda sends to with the role.
        "SendFailedEvents": Allowed(
            ["sqs:SendMessage"],
            [stack.run.named("deploy-async").inputs["destinationConfig"]["onFailure"]["destination"]],
        ),
        "WriteOwnLogs": Allowed(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{stack.function_log_group_arn('deploy-function')}:*"],
        ),
        **traced_function(stack),
    }


def predict_table(stack: Stack) -> Table:
    env = stack.env("predict-function")
    bucket = stack.bucket_arn(env["DATA_BUCKET"])
    return {
        "InvokeStackEndpoint": Allowed(
            ["sagemaker:InvokeEndpoint"], [stack.sagemaker(f"endpoint/{env['ENDPOINT_NAME']}")]
        ),
        # The serving record, and the schema it names: `processed/<dataset>/<run>/schema.json`.
        "ReadServingModelAndSchema": Allowed(
            ["s3:GetObject"],
            [f"{bucket}/{env['SERVING_RECORD_KEY']}", f"{bucket}/{PROCESSED_PREFIX}*/schema.json"],
        ),
        "TellMissingKeys": Allowed(["s3:ListBucket"], [bucket]),
        "DecryptData": Allowed(["kms:Decrypt"], [stack.stack_key_arn()]),
        "WriteOwnLogs": Allowed(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{stack.function_log_group_arn('predict-function')}:*"],
        ),
        **traced_function(stack),
    }


def algorithm_container(stack: Stack, *log_groups: str) -> Table:
    """What SageMaker needs to run the built-in algorithm's image with the role."""
    groups = [stack.log_group(name) for name in log_groups]
    return {
        # GetAuthorizationToken and PutMetricData have no resource type (Service Authorization Reference).
        "AuthenticateToRegistry": Allowed(["ecr:GetAuthorizationToken"], ["*"]),
        "PullAlgorithmImage": Allowed(
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            [stack.algorithm_repository_arn()],
        ),
        "WriteContainerLogs": Allowed(
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [arn for group in groups for arn in (group, f"{group}:*")],
        ),
        "PutContainerMetrics": Allowed(
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringLike": {"cloudwatch:namespace": SAGEMAKER_METRIC_NAMESPACES}},
        ),
    }


def training_table(stack: Stack) -> Table:
    definition = stack.tuning_request()["TrainingJobDefinition"]
    bucket_name, models = s3_location(definition["OutputDataConfig"]["S3OutputPath"])
    bucket = stack.bucket_arn(bucket_name)
    return {
        # The transform writes the part files and the tune function the channel manifests under
        # `processed/`.
        "ReadTrainingData": Allowed(["s3:GetObject"], [f"{bucket}/{PROCESSED_PREFIX}*"]),
        "ListTrainingData": Allowed(
            ["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": [f"{PROCESSED_PREFIX}*"]}}
        ),
        "WriteModelArtifacts": Allowed(["s3:PutObject"], [f"{bucket}/{models}*"]),
        "UseDataKey": Allowed(
            ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"],
            [definition["OutputDataConfig"]["KmsKeyId"]],
        ),
        **algorithm_container(stack, TRAINING_LOG_GROUP),
    }


def model_table(stack: Stack) -> Table:
    plan = stack.deploy().plan
    bucket = stack.bucket_arn(plan.bucket)
    _, models = s3_location(
        stack.tuning_request()["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]
    )
    table = {
        "ReadModelArtifacts": Allowed(["s3:GetObject"], [f"{bucket}/{models}*"]),
        "DecryptModelArtifacts": Allowed(["kms:Decrypt"], [plan.key_arn]),
        **algorithm_container(stack, f"{ENDPOINT_LOG_GROUPS}/{plan.endpoint_name}", TRANSFORM_LOG_GROUP),
        "ReadRollbackAlarm": Allowed(["cloudwatch:DescribeAlarms"], [stack.alarm(plan.rollback_alarm)]),
        # Contest transform jobs run as the model's role: the validation rows in, predictions out under the
        # key their requests name.
        "ReadValidationRows": Allowed(["s3:GetObject"], [f"{bucket}/{PROCESSED_PREFIX}*"]),
        "ListValidationRows": Allowed(
            ["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": [f"{PROCESSED_PREFIX}*"]}}
        ),
        "WriteContestPredictions": Allowed(["s3:PutObject"], [f"{bucket}/{contest_prefix(stack)}*"]),
        "EncryptContestPredictions": Allowed(["kms:GenerateDataKey", "kms:Encrypt"], [contest_key(plan)]),
    }
    # Captured data goes where the deploy function's endpoint configs tell SageMaker to put it, if anywhere.
    probe = Candidate("t", Score("t-001", "validation:auc", "Maximize", 0.5, "d"), "image", "s3://b/m")
    capture = endpoint_config_request(plan, probe).get("DataCaptureConfig")
    if capture:
        capture_bucket, capture_prefix = s3_location(capture["DestinationS3Uri"])
        table["WriteCapturedData"] = Allowed(
            ["s3:PutObject"], [f"{stack.bucket_arn(capture_bucket)}/{capture_prefix}*"]
        )
        table["EncryptCapturedData"] = Allowed(["kms:GenerateDataKey", "kms:Encrypt"], [capture["KmsKeyId"]])
    return table


@dataclass(frozen=True)
class RoleSpec:
    """How to find a role from what uses it, who may assume it, and what its one policy must grant."""

    role_arn: Callable[[Stack], str]
    assumed_by: str
    table: Callable[[Stack], Table]


ROLES: dict[str, RoleSpec] = {
    "transform": RoleSpec(lambda s: s.function("transform-function").inputs["role"], LAMBDA, transform_table),
    "tune": RoleSpec(lambda s: s.function("tune-function").inputs["role"], LAMBDA, tune_table),
    "deploy": RoleSpec(lambda s: s.function("deploy-function").inputs["role"], LAMBDA, deploy_table),
    "predict": RoleSpec(lambda s: s.function("predict-function").inputs["role"], LAMBDA, predict_table),
    # The role every tuning request names for its training jobs.
    "training": RoleSpec(
        lambda s: s.tuning_request()["TrainingJobDefinition"]["RoleArn"], SAGEMAKER, training_table
    ),
    # The role the deploy function creates its models with.
    "model": RoleSpec(lambda s: s.deploy().plan.model_role_arn, SAGEMAKER, model_table),
}
CASES = [pytest.param(stack, role, id=f"{stack}-{role}") for stack in STACKS for role in ROLES]


def role_with_arn(run: StackRun, arn: str) -> Resource:
    (role,) = [r for r in run.of_type(ROLE) if r.outputs["arn"] == arn]
    return role


def inline_policies(run: StackRun, role: Resource) -> list[Resource]:
    return [p for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role.id]


def policy_of(stack: Stack, name: str) -> dict[str, Any]:
    (policy,) = inline_policies(stack.run, role_with_arn(stack.run, ROLES[name].role_arn(stack)))
    return dict(policy.json_input("policy"))


# ------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize(("stack_name", "name"), CASES)
def test_role_grants_exactly_its_table(stack_name: str, name: str) -> None:
    stack = Stack.of(synth(stack_name))
    spec = ROLES[name]
    role = role_with_arn(stack.run, spec.role_arn(stack))
    assert json.loads(role.inputs["assumeRolePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": spec.assumed_by},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    policies = inline_policies(stack.run, role)
    assert len(policies) == 1, f"{role.name} has {len(policies)} inline policies"
    assert differences(policies[0].json_input("policy"), spec.table(stack)) == []
    # A managed policy attached beside the inline one would grant what no table shows.
    assert [a.name for a in stack.run.of_type(ATTACHMENT) if a.inputs["role"] == role.id] == []


@pytest.mark.parametrize("stack_name", STACKS)
def test_every_role_and_iam_resource_of_the_stack_is_tabled(stack_name: str) -> None:
    stack = Stack.of(synth(stack_name))
    tabled = {role_with_arn(stack.run, spec.role_arn(stack)).urn for spec in ROLES.values()}
    assert len(tabled) == len(ROLES), "two uses share one role"
    # The one other role: API Gateway's account-level logging role, with only the AWS-managed policy.
    logging = role_with_arn(
        stack.run, stack.run.one("aws:apigateway/account:Account").inputs["cloudwatchRoleArn"]
    )
    assert {r.urn for r in stack.run.of_type(ROLE)} == tabled | {logging.urn}
    assert json.loads(logging.inputs["assumeRolePolicy"])["Statement"] == [
        {
            "Sid": "ServiceAssumesRole",
            "Effect": "Allow",
            "Principal": {"Service": APIGATEWAY},
            "Action": "sts:AssumeRole",
        }
    ]
    assert inline_policies(stack.run, logging) == []
    assert [(a.inputs["role"], a.inputs["policyArn"]) for a in stack.run.of_type(ATTACHMENT)] == [
        (logging.id, API_GATEWAY_LOGGING_POLICY.replace(":aws:", f":{stack.partition}:", 1))
    ]
    # The one managed policy: what the API's callers are given (apiAuthorization iam), attached to no role
    # of the stack, and exactly execute-api:Invoke on the stage's two methods.
    (invoke,) = stack.run.of_type(MANAGED_POLICY)
    api_arn = stack.run.one("aws:apigateway/restApi:RestApi").outputs["executionArn"]
    assert json.loads(invoke.inputs["policy"])["Statement"] == [
        {
            "Sid": "InvokePredictionApi",
            "Effect": "Allow",
            "Action": ["execute-api:Invoke"],
            "Resource": [f"{api_arn}/v1/POST/predict", f"{api_arn}/v1/GET/health"],
        }
    ]
    assert {r.type for r in stack.run.resources if r.type.startswith("aws:iam/")} == {
        ROLE,
        ROLE_POLICY,
        ATTACHMENT,
        MANAGED_POLICY,
    }


# --------------------------------------------------------------------------------------- mutations


WIDENED = "zz9-other"


def widenings(resource: str) -> Iterator[str]:
    """Patterns that admit more than `resource`: everything, anything after it, its parent's children."""
    if resource == "*":
        return
    yield "*"
    if not resource.endswith("*"):
        yield f"{resource}*"
    stem = resource.rstrip("*").rstrip("/:-")
    parent = stem[: max(stem.rfind("/"), stem.rfind(":")) + 1] + "*"
    if parent not in (resource, "*"):
        yield parent


def satisfying(condition: Mapping[str, Mapping[str, Any]] | None) -> dict[str, str]:
    """A request context meeting the condition: each key takes the first value it is compared with."""
    return {key: as_list(values)[0] for keys in (condition or {}).values() for key, values in keys.items()}


def _with(document: dict[str, Any], index: int, **elements: Any) -> dict[str, Any]:
    """A copy of `document` whose statement `index` has these elements (None removes one)."""
    mutant = copy.deepcopy(document)
    statement = mutant["Statement"][index]
    statement.update(elements)
    for key in [k for k, v in elements.items() if v is None]:
        del statement[key]
    return mutant


def mutants(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], tuple[str, str] | None]]:
    """(sid, what changed, the changed copy, an (action, resource) only the copy allows, if a widening)."""
    for index, raw in enumerate(document["Statement"]):
        sid, actions, resources = raw["Sid"], as_list(raw["Action"]), as_list(raw["Resource"])

        for i, resource in enumerate(resources):
            for wider in widenings(resource):
                probe = wider.replace("*", WIDENED)
                swapped = [*resources[:i], wider, *resources[i + 1 :]]
                yield (
                    sid,
                    f"{resource} -> {wider}",
                    _with(document, index, Resource=swapped),
                    (actions[0], probe),
                )
            yield (
                sid,
                f"drop {resource}",
                _with(document, index, Resource=resources[:i] + resources[i + 1 :]),
                None,
            )
        if "*" not in resources:
            yield sid, "add *", _with(document, index, Resource=[*resources, "*"]), (actions[0], WIDENED)
        service = actions[0].split(":")[0]
        yield sid, f"add {service}:*", _with(document, index, Action=[*actions, f"{service}:*"]), None
        if "Condition" in raw:
            probe = resources[0].replace("*", WIDENED)
            yield sid, "drop the condition", _with(document, index, Condition=None), (actions[0], probe)


@pytest.mark.parametrize(("stack_name", "name"), CASES)
def test_exactness_rejects_each_statement_widened_or_narrowed(stack_name: str, name: str) -> None:
    stack = Stack.of(synth(stack_name))
    document, table = policy_of(stack, name), ROLES[name].table(stack)
    assert differences(document, table) == []
    original = Policy.parse(document)
    tried = 0
    for sid, change, mutant, probe in mutants(document):
        found = differences(mutant, table)
        assert found and all(line.startswith(f"{sid}:") for line in found), (sid, change, found)
        if probe is not None:
            # The copy really grants more: a request the real policy refuses and the copy allows.
            (statement,) = [s for s in mutant["Statement"] if s["Sid"] == sid]
            context = satisfying(statement.get("Condition") if change != "drop the condition" else None)
            action, resource = probe
            assert Policy.parse(mutant).allows(action, resource, context), (sid, change, probe)
            assert not original.allows(action, resource, context), (sid, change, probe)
        tried += 1
    assert tried >= 3 * len(table)


def test_exactness_rejects_an_extra_statement_and_a_not_resource() -> None:
    stack = Stack.of(synth("dev"))
    document, table = policy_of(stack, "deploy"), ROLES["deploy"].table(stack)
    extra = copy.deepcopy(document)
    extra["Statement"].append({"Sid": "Extra", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert differences(extra, table) == ["Extra: not in the table"]
    inverted = copy.deepcopy(document)
    (configs,) = [s for s in inverted["Statement"] if s["Sid"] == "ConfigureEndpoint"]
    configs["NotResource"] = configs.pop("Resource")
    assert any(line.startswith("ConfigureEndpoint: has elements") for line in differences(inverted, table))
