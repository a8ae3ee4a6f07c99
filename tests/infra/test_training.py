"""The training side of every stack: the SageMaker execution role and its policy, the XGBoost image, and
the tuning request template that the transform function completes for each upload and sends to SageMaker.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from hyperparameters import (
    DEFAULT_RANGES,
    MAX_CATEGORICAL_VALUES,
    METRICS_BY_PROBLEM,
    TUNABLE,
    metric_direction,
    parameter_ranges,
    parse_ranges,
)
from rehearsal.iam_policy import Policy
from settings import (
    PROJECT,
    TRAINING_INSTANCE_TYPES,
    TUNING_RANGES_MAX_BYTES,
    XGBOOST_VERSIONS,
    InvalidStackConfig,
    Settings,
    load_settings,
)
from shared.dataset_schema import DatasetSchema, Feature, FeatureKind, ProblemType, Target
from tests.support.policies import as_list, granted, statements
from tests.support.stacks import STACKS, config_for, synth
from tools.mockrun import MOCK_ACCOUNT_ID, ProgramFailed, StackRun, run_program
from tune.plan import tuning_job_name
from tune.tuning import tuning_request
from xgboost_images import xgboost_image

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
# Lambda developer guide, "Working with Lambda environment variables": the total size of all environment
# variables may not exceed 4 KB; a bigger template makes `pulumi up` fail on the function.
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096
# SageMaker API reference, CreateHyperParameterTuningJob, HyperParameterTuningJobName; the pipeline uses
# lowercase only because tuning job ARNs carry the name lowercased.
JOB_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,31}$")
# `<account>.dkr.ecr.<region>.<domain>/<repository>:<tag>`: read independently of the program's parser.
IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.(?P<domain>amazonaws\.com(?:\.cn)?)"
    r"/(?P<repository>[a-z0-9._/-]+):(?P<tag>[A-Za-z0-9._-]+)$"
)
IMAGE_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
SAGEMAKER_MODEL = botocore.session.get_session().get_service_model("sagemaker")
CREATE_TUNING_JOB = SAGEMAKER_MODEL.operation_model("CreateHyperParameterTuningJob")


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> StackRun:
    return synth(request.param)


def settings_of(run: StackRun) -> Settings:
    return load_settings(run.config, stack=run.stack)


def partition_for(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def environment(run: StackRun) -> dict[str, str]:
    """The environment of the function that starts the tuning jobs."""
    return run.named("tune-function").inputs["environment"]["variables"]


def template(run: StackRun) -> dict[str, Any]:
    """The template exactly as the function reads it: the JSON in its environment, not the component's."""
    return json.loads(environment(run)["TUNING_REQUEST_TEMPLATE"])


def definition(run: StackRun) -> dict[str, Any]:
    return template(run)["TrainingJobDefinition"]


def training_policy(run: StackRun) -> dict[str, Any]:
    return run.named("training-role-policy").json_input("policy")


def bucket_arn(run: StackRun) -> str:
    return run.named("ingest-data").outputs["arn"]


def expected_repository_arn(image: str, partition: str) -> str:
    parts = IMAGE_URI.fullmatch(image)
    assert parts, f"{image!r} is not an ECR image URI"
    return f"arn:{partition}:ecr:{parts['region']}:{parts['account']}:repository/{parts['repository']}"


# --- 1. who can assume the role ----------------------------------------------------------------------


def test_training_role_can_be_assumed_by_sagemaker_only(run: StackRun) -> None:
    # Any other principal in the trust policy could run code with access to the training data and key.
    trust = statements(run.named("training-role").json_input("assumeRolePolicy"))
    assert len(trust) == 1, "one statement: nobody but SageMaker may assume the role"
    (statement,) = trust
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": SAGEMAKER_PRINCIPAL}
    assert as_list(statement["Action"]) == ["sts:AssumeRole"]
    assert "NotPrincipal" not in statement and "NotAction" not in statement


def test_training_role_and_its_policy_are_children_of_the_training_component(run: StackRun) -> None:
    # The parent is part of each URN: re-parenting later replaces the role, and its ARN with it.
    component = run.named("training")
    assert component.type == f"{PROJECT}:pipeline:Training"
    role, policy = run.named("training-role"), run.named("training-role-policy")
    assert role.parent == component.urn
    assert policy.parent == component.urn
    assert policy.inputs["role"] == role.outputs["name"], "the policy must be attached to the training role"
    assert run.outputs["training_role_arn"] == role.outputs["arn"]


# --- 2. what the role may do -------------------------------------------------------------------------


def test_training_role_allows_exactly_what_a_training_job_uses(run: StackRun) -> None:
    region = run.config["aws:region"]
    partition = partition_for(region)
    bucket = bucket_arn(run)
    key = run.named("ingest-key").outputs["arn"]
    log_group = f"arn:{partition}:logs:{region}:{MOCK_ACCOUNT_ID}:log-group:/aws/sagemaker/TrainingJobs"
    repository = expected_repository_arn(
        definition(run)["AlgorithmSpecification"]["TrainingImage"], partition
    )
    logs = {
        (action, resource)
        for action in (
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
        )
        for resource in (log_group, f"{log_group}:*")
    }
    assert granted(training_policy(run)) == {
        ("s3:GetObject", f"{bucket}/processed/*"),
        ("s3:ListBucket", bucket),
        ("s3:PutObject", f"{bucket}/models/*"),
        ("kms:Decrypt", key),
        ("kms:GenerateDataKey", key),
        ("kms:Encrypt", key),
        *logs,
        ("cloudwatch:PutMetricData", "*"),
        ("ecr:GetAuthorizationToken", "*"),
        *((action, repository) for action in IMAGE_PULL_ACTIONS),
    }
    assert all(s["Effect"] == "Allow" for s in statements(training_policy(run)))


def test_training_role_conditions_narrow_listing_and_metrics(run: StackRun) -> None:
    # Without them the role could list every prefix (raw uploads included) and write any metric namespace.
    conditions = {
        action: s.get("Condition")
        for s in statements(training_policy(run))
        for action in as_list(s["Action"])
    }
    assert conditions.pop("s3:ListBucket") == {"StringLike": {"s3:prefix": ["processed/*"]}}
    assert conditions.pop("cloudwatch:PutMetricData") == {
        "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
    }
    assert set(conditions.values()) == {None}, conditions
    policy = Policy.parse(training_policy(run))
    bucket = bucket_arn(run)
    assert policy.allows("s3:ListBucket", bucket, {"s3:prefix": "processed/churn/run/train/"})
    assert not policy.allows("s3:ListBucket", bucket, {"s3:prefix": "raw/"})
    assert not policy.allows("s3:ListBucket", bucket)
    assert policy.allows(
        "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    )
    assert not policy.allows("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Billing"})
    assert not policy.allows("cloudwatch:PutMetricData", "*")


def test_image_pulls_are_limited_to_the_repository_of_the_configured_image() -> None:
    # A different version must still be pullable: repository and image come from the same SDK answer.
    run = synth("dev", xgboostVersion="1.7-1")
    image = definition(run)["AlgorithmSpecification"]["TrainingImage"]
    assert image.endswith(":1.7-1")
    pulls = {r for action, r in granted(training_policy(run)) if action in IMAGE_PULL_ACTIONS}
    assert pulls == {expected_repository_arn(image, "aws")}


# --- 3. the template in the tune function's environment -------------------------------------------------


def test_template_runs_jobs_as_the_training_role_with_the_configured_image(run: StackRun) -> None:
    settings = settings_of(run)
    job = definition(run)
    assert job["RoleArn"] == run.named("training-role").outputs["arn"]
    image = job["AlgorithmSpecification"]["TrainingImage"]
    assert image == xgboost_image(settings.region, settings.training.xgboost_version)
    assert image.endswith(f":{settings.training.xgboost_version}")
    parts = IMAGE_URI.fullmatch(image)
    assert parts and parts["region"] == settings.region, "an image of another region cannot be pulled"


def test_template_writes_encrypted_models_under_models_of_the_data_bucket(run: StackRun) -> None:
    output = definition(run)["OutputDataConfig"]
    assert output["S3OutputPath"] == f"s3://{run.named('ingest-data').outputs['bucket']}/models/"
    assert output["KmsKeyId"] == run.named("ingest-key").outputs["arn"]


def test_template_follows_the_stacks_training_settings(run: StackRun) -> None:
    training = settings_of(run).training
    job = definition(run)
    assert job["ResourceConfig"] == {
        "InstanceType": training.instance_type,
        "InstanceCount": training.instance_count,
        "VolumeSizeInGB": training.volume_gb,
    }
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": training.max_runtime_seconds}
    assert template(run)["HyperParameterTuningJobConfig"]["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": training.max_jobs,
        "MaxParallelTrainingJobs": training.max_parallel_jobs,
    }
    # The algorithm needs no network; isolation keeps a compromised container from sending data out.
    assert job["EnableNetworkIsolation"] is True
    assert {"Key": "stack", "Value": run.stack} in template(run)["Tags"]


def test_template_takes_every_training_key_from_config() -> None:
    # dev and prod both use the defaults: only overrides show that config reaches the template at all.
    run = synth(
        "dev",
        trainingInstanceType="ml.c5.2xlarge",
        trainingVolumeGb="100",
        trainingMaxRuntimeSeconds="7200",
        tuningMaxJobs="50",
        tuningMaxParallelJobs="5",
    )
    job = definition(run)
    assert job["ResourceConfig"] == {
        "InstanceType": "ml.c5.2xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 100,
    }
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert template(run)["HyperParameterTuningJobConfig"]["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": 50,
        "MaxParallelTrainingJobs": 5,
    }


def test_traffic_between_training_instances_is_encrypted() -> None:
    run = synth("dev", trainingInstanceCount="2")
    job = definition(run)
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["EnableInterContainerTrafficEncryption"] is True


def test_function_environment_fits_lambdas_4_kb_limit(run: StackRun) -> None:
    # Lambda counts keys and values of all variables together; over the limit the function cannot deploy.
    size = sum(len(k.encode()) + len(v.encode()) for k, v in environment(run).items())
    assert size < LAMBDA_ENVIRONMENT_LIMIT_BYTES, f"environment is {size} bytes"


# --- 4. the request the tune function sends --------------------------------------------------------------

SCHEMAS = {
    ProblemType.BINARY: DatasetSchema(
        columns=("tenure", "plan", "churned"),
        target=Target("churned", ProblemType.BINARY, ("no", "yes")),
        features=(
            Feature("tenure", FeatureKind.NUMERIC),
            Feature("plan", FeatureKind.CATEGORICAL, ("basic", "pro")),
        ),
    ),
    ProblemType.MULTICLASS: DatasetSchema(
        columns=("petal_length", "petal_width", "species"),
        target=Target("species", ProblemType.MULTICLASS, ("setosa", "versicolor", "virginica")),
        features=(Feature("petal_length", FeatureKind.NUMERIC), Feature("petal_width", FeatureKind.NUMERIC)),
    ),
    ProblemType.REGRESSION: DatasetSchema(
        columns=("rooms", "customer_id", "price"),
        target=Target("price", ProblemType.REGRESSION),
        features=(
            Feature("rooms", FeatureKind.NUMERIC),
            Feature("customer_id", FeatureKind.IGNORED, reason="identifier"),
        ),
    ),
}
# (objective metric, direction, objective, eval_metric, num_class) per problem type (SageMaker developer
# guide, "XGBoost hyperparameters" and "Tune an XGBoost model").
EXPECTED_OBJECTIVES = {
    ProblemType.BINARY: ("validation:auc", "Maximize", "binary:logistic", "auc", None),
    ProblemType.MULTICLASS: ("validation:mlogloss", "Minimize", "multi:softprob", "mlogloss", "3"),
    ProblemType.REGRESSION: ("validation:rmse", "Minimize", "reg:squarederror", "rmse", None),
}
DATASET = "churn"


RUNS = ("20250601T123000Z-0123456789ab", "20250601T123500Z-ba9876543210")


def job_name(run: StackRun) -> str:
    return tuning_job_name(settings_of(run).tuning_job_prefix, DATASET, RUNS)


def manifest_uri(run: StackRun, channel: str) -> str:
    bucket = run.named("ingest-data").outputs["bucket"]
    return f"s3://{bucket}/processed/{DATASET}/{job_name(run)}/{channel}.manifest"


def request_for(run: StackRun, problem: ProblemType, train_files: int = 4) -> dict[str, Any]:
    """The request the tune function's own code builds for a training set, from the template the program
    gave it."""
    schema = SCHEMAS[problem]
    schema.validate()
    return tuning_request(
        template(run),
        job_name=job_name(run),
        schema=schema,
        train_manifest_uri=manifest_uri(run, "train"),
        validation_manifest_uri=manifest_uri(run, "validation"),
        train_files=train_files,
        tags={"dataset": DATASET, "runs": str(len(RUNS)), "lastRun": RUNS[-1]},
    )


def validation_errors(request: dict[str, Any]) -> str:
    report = ParamValidator().validate(request, CREATE_TUNING_JOB.input_shape)
    return report.generate_report() if report.has_errors() else ""


PROBLEMS = list(SCHEMAS)


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_completed_request_is_one_sagemaker_accepts(run: StackRun, problem: ProblemType) -> None:
    # botocore refuses a request that breaks the API model before it is sent: the upload would fail.
    request = request_for(run, problem)
    assert validation_errors(request) == ""
    instance_types = SAGEMAKER_MODEL.shape_for("TrainingInstanceType").enum
    assert request["TrainingJobDefinition"]["ResourceConfig"]["InstanceType"] in instance_types


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_request_optimises_the_metric_of_the_problem_type(run: StackRun, problem: ProblemType) -> None:
    metric, direction, objective, eval_metric, num_class = EXPECTED_OBJECTIVES[problem]
    request = request_for(run, problem)
    assert request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": direction,
        "MetricName": metric,
    }
    static = request["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["objective"] == objective
    assert static["eval_metric"] == eval_metric
    # The tuned metric must be one the jobs compute, or the tuning job has nothing to compare.
    assert metric == f"validation:{static['eval_metric']}"
    assert static.get("num_class") == num_class
    assert all(isinstance(v, str) for v in static.values()), "hyperparameter values are strings"
    tuned = {
        r["Name"]
        for ranges in request["HyperParameterTuningJobConfig"]["ParameterRanges"].values()
        for r in ranges
    }
    assert not tuned & static.keys(), "a hyperparameter cannot be both static and tuned"


def expected_channels(run: StackRun, *, sharded: bool) -> list[dict[str, Any]]:
    def channel(name: str, distribution: str) -> dict[str, Any]:
        return {
            "ChannelName": name,
            "ContentType": "text/csv",
            "CompressionType": "None",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "ManifestFile",
                    "S3Uri": manifest_uri(run, name),
                    "S3DataDistributionType": distribution,
                }
            },
        }

    return [
        channel("train", "ShardedByS3Key" if sharded else "FullyReplicated"),
        channel("validation", "FullyReplicated"),
    ]


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_request_reads_the_training_sets_train_and_validation_manifests(
    run: StackRun, problem: ProblemType
) -> None:
    request = request_for(run, problem)
    assert request["TrainingJobDefinition"]["InputDataConfig"] == expected_channels(run, sharded=False)


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_several_instances_shard_the_training_files_only(problem: ProblemType) -> None:
    # Replicated training data on N instances trains on the same rows N times; validation stays whole.
    run = synth("dev", trainingInstanceCount="2")
    request = request_for(run, problem)
    assert validation_errors(request) == ""
    assert request["TrainingJobDefinition"]["InputDataConfig"] == expected_channels(run, sharded=True)


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_fewer_training_files_than_instances_are_replicated_so_no_instance_is_paid_to_idle(
    problem: ProblemType,
) -> None:
    run = synth("dev", trainingInstanceCount="2")
    request = request_for(run, problem, train_files=1)
    assert request["TrainingJobDefinition"]["InputDataConfig"] == expected_channels(run, sharded=False)


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_request_names_a_job_the_tune_role_may_create_and_pass_the_role_to(
    run: StackRun, problem: ProblemType
) -> None:
    # A name outside the role's ARN pattern makes every upload fail with AccessDenied at the last step.
    settings = settings_of(run)
    request = request_for(run, problem)
    name = request["HyperParameterTuningJobName"]
    assert JOB_NAME.fullmatch(name), name
    assert re.fullmatch(
        CREATE_TUNING_JOB.input_shape.members["HyperParameterTuningJobName"].metadata["pattern"], name
    )
    assert name.startswith(f"{settings.tuning_job_prefix}-")
    assert name == tuning_job_name(settings.tuning_job_prefix, DATASET, RUNS[::-1]), (
        "redeliveries must reuse the name, in whatever order the runs are listed"
    )
    transform = Policy.parse(run.named("tune-role-policy").json_input("policy"))
    job_arn = (
        f"arn:{partition_for(settings.region)}:sagemaker:{settings.region}:{MOCK_ACCOUNT_ID}:"
        f"hyper-parameter-tuning-job/{name}"
    )
    assert transform.allows("sagemaker:CreateHyperParameterTuningJob", job_arn)
    assert transform.allows("sagemaker:AddTags", job_arn), "the request is tagged"
    role = request["TrainingJobDefinition"]["RoleArn"]
    assert transform.allows("iam:PassRole", role, {"iam:PassedToService": SAGEMAKER_PRINCIPAL})
    assert not transform.allows("iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_training_role_can_read_the_channels_and_write_the_output_of_the_request(
    run: StackRun, problem: ProblemType
) -> None:
    # The role and the request are built apart; a prefix that drifts makes every training job fail.
    request = request_for(run, problem)
    job = request["TrainingJobDefinition"]
    policy = Policy.parse(training_policy(run))
    bucket = bucket_arn(run)
    for channel in job["InputDataConfig"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        prefix = uri.removeprefix(f"s3://{run.named('ingest-data').outputs['bucket']}/")
        assert policy.allows("s3:ListBucket", bucket, {"s3:prefix": prefix}), uri
        assert policy.allows("s3:GetObject", f"{bucket}/{prefix}part-00000.csv"), uri
    output = job["OutputDataConfig"]
    key = output["S3OutputPath"].removeprefix(f"s3://{run.named('ingest-data').outputs['bucket']}/")
    artifact = f"{bucket}/{key}{request['HyperParameterTuningJobName']}-001-abcdef12/output/model.tar.gz"
    assert policy.allows("s3:PutObject", artifact)
    assert policy.allows("kms:GenerateDataKey", output["KmsKeyId"])
    assert policy.allows("kms:Decrypt", output["KmsKeyId"])
    repository = expected_repository_arn(
        job["AlgorithmSpecification"]["TrainingImage"], partition_for(run.config["aws:region"])
    )
    assert all(policy.allows(action, repository) for action in IMAGE_PULL_ACTIONS)


def test_dev_binary_request_as_the_tune_function_sends_it(capsys: pytest.CaptureFixture[str]) -> None:
    request = request_for(synth("dev"), ProblemType.BINARY)
    # Shown in every test run, past pytest's capture, so a reader sees the real request once.
    with capsys.disabled():
        print("\n--- CreateHyperParameterTuningJob request of a dev training set (binary, two runs) ---")
        print(json.dumps(request, indent=1, default=str))
    assert validation_errors(request) == ""
    assert set(request) == {
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobConfig",
        "TrainingJobDefinition",
        "Tags",
    }
    assert {t["Key"]: t["Value"] for t in request["Tags"]} == {
        "stack": "dev",
        "dataset": DATASET,
        "runs": "2",
        "lastRun": RUNS[-1],
    }


# --- 3b. search strategy, ranges, objective, spot and warm pools from config --------------------------

# Every tunable hyperparameter with a numeric range: the biggest ParameterRanges a stack can configure.
ALL_RANGES = {
    "alpha": {"min": 0, "max": 2},
    "colsample_bylevel": {"min": 0.5, "max": 1, "scaling": "Linear"},
    "colsample_bynode": {"min": 0.5, "max": 1, "scaling": "Linear"},
    "colsample_bytree": {"min": 0.5, "max": 1, "scaling": "Linear"},
    "eta": {"min": 0.01, "max": 0.5, "scaling": "Logarithmic"},
    "gamma": {"min": 0, "max": 5},
    "lambda": {"min": 0, "max": 2},
    "max_delta_step": {"min": 0, "max": 10},
    "max_depth": {"min": 3, "max": 10},
    "min_child_weight": {"min": 1, "max": 10},
    "num_round": {"min": 50, "max": 500},
    "subsample": {"min": 0.5, "max": 1, "scaling": "Linear"},
}
# Hyperband over every range, spot with a long wait, an objective override and two instances: the
# largest template the tune function's environment has to carry.
RICHEST = {
    "tuningStrategy": "Hyperband",
    "tuningRanges": json.dumps(ALL_RANGES),
    "problemType": "multiclass",
    "tuningObjectiveMetric": "validation:accuracy",
    "trainingUseSpot": "true",
    "trainingMaxWaitSeconds": "3600",
    "trainingInstanceCount": "2",
    "trainingInstanceType": "ml.m5.12xlarge",
}
# Grid search needs categorical ranges only: every default range is replaced or dropped.
GRID_RANGES = {
    **dict.fromkeys(DEFAULT_RANGES),
    "eta": {"values": [0.1, 0.3]},
    "max_depth": {"values": [4, 6, 8]},
    "num_round": {"values": [200]},
}


def tuning_config(run: StackRun) -> dict[str, Any]:
    return template(run)["HyperParameterTuningJobConfig"]


def tuned(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Searched ranges by name, each with its kind (Continuous, Integer or Categorical)."""
    return {
        r["Name"]: {**r, "Kind": kind.removesuffix("ParameterRanges")}
        for kind, ranges in config["ParameterRanges"].items()
        for r in ranges
    }


def test_template_searches_the_default_ranges_with_bayesian_search_and_early_stopping(run: StackRun) -> None:
    config = tuning_config(run)
    assert config["Strategy"] == "Bayesian"
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert "StrategyConfig" not in config
    # Without a stack objective the transform picks the metric of the dataset's problem type.
    assert "HyperParameterTuningJobObjective" not in config
    ranges = tuned(config)
    assert ranges.keys() == DEFAULT_RANGES.keys()
    assert ranges["eta"] == {
        "Name": "eta",
        "MinValue": "0.01",
        "MaxValue": "0.5",
        "ScalingType": "Logarithmic",
        "Kind": "Continuous",
    }
    assert ranges["num_round"] == {
        "Name": "num_round",
        "MinValue": "50",
        "MaxValue": "500",
        "ScalingType": "Auto",
        "Kind": "Integer",
    }
    assert "num_round" not in definition(run)["StaticHyperParameters"]


# Type of each tunable hyperparameter as the built-in container declares it, with the declaring line in
# aws/sagemaker-xgboost-container: src/sagemaker_xgboost_container/algorithm_mode/hyperparameter_validation.py
# on branches 1.0-1 and release-3.0.5 (the types are the same in every version branch).
CONTAINER_HYPERPARAMETER_VALIDATION = (
    "src/sagemaker_xgboost_container/algorithm_mode/hyperparameter_validation.py"
)
CONTAINER_TUNABLE_TYPES = {
    # name: (type, line in 1.0-1, line in release-3.0.5)
    "num_round": ("Integer", 117, 143),
    "eta": ("Continuous", 129, 155),
    "gamma": ("Continuous", 133, 162),
    "max_depth": ("Integer", 137, 169),
    "min_child_weight": ("Continuous", 141, 176),
    "max_delta_step": ("Continuous", 145, 183),
    "subsample": ("Continuous", 149, 190),
    "colsample_bytree": ("Continuous", 153, 197),
    "colsample_bylevel": ("Continuous", 157, 204),
    "colsample_bynode": ("Continuous", 161, 211),
    "lambda": ("Continuous", 165, 218),
    "alpha": ("Continuous", 169, 225),
}
CONTAINER_MIRROR = Path("/work/.mirror/aws+sagemaker-xgboost-container/repo")


def test_every_tunable_has_the_type_the_container_declares() -> None:
    # SageMaker sends an Integer range's values as integer strings and the container parses them with int():
    # a kind that differs from the container's either narrows the search or has every job refused.
    assert TUNABLE.keys() == CONTAINER_TUNABLE_TYPES.keys()
    wrong = {
        name: (tunable.kind, CONTAINER_TUNABLE_TYPES[name][0])
        for name, tunable in TUNABLE.items()
        if tunable.kind != CONTAINER_TUNABLE_TYPES[name][0]
    }
    assert not wrong, f"kind (ours, the container's) differs for {', '.join(sorted(wrong))}: {wrong}"


@pytest.mark.skipif(not CONTAINER_MIRROR.exists(), reason="no local copy of aws/sagemaker-xgboost-container")
@pytest.mark.parametrize("branch", ["1.0-1", "release-3.0.5"])
def test_container_type_table_is_what_the_container_source_says(branch: str) -> None:
    source = subprocess.run(
        ["git", "-C", str(CONTAINER_MIRROR), "show", f"{branch}:{CONTAINER_HYPERPARAMETER_VALIDATION}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    column = 1 if branch == "1.0-1" else 2
    for name, cited in CONTAINER_TUNABLE_TYPES.items():
        line = cited[column]
        assert f'name="{name}"' in source[line - 1], f"{name}: not declared at {branch} line {line}"
        declaration = " ".join(source[line - 2 : line])
        assert f"hpv.{cited[0]}Hyperparameter(" in declaration, f"{name}: not {cited[0]} at {branch}"


def test_max_delta_step_is_searched_as_a_continuous_range() -> None:
    run = synth("dev", tuningRanges=json.dumps({"max_delta_step": {"min": 0.5, "max": 10}}))
    config = tuning_config(run)
    assert {"Name": "max_delta_step", "MinValue": "0.5", "MaxValue": "10.0", "ScalingType": "Auto"} in config[
        "ParameterRanges"
    ]["ContinuousParameterRanges"], "max_delta_step must render in ContinuousParameterRanges"
    assert all(r["Name"] != "max_delta_step" for r in config["ParameterRanges"]["IntegerParameterRanges"])
    assert validation_errors(request_for(run, ProblemType.BINARY)) == ""


def test_configured_ranges_replace_and_drop_the_defaults() -> None:
    run = synth(
        "dev",
        tuningRanges=json.dumps(
            {"eta": {"min": 0.05, "max": 0.3}, "max_depth": {"values": [4, 6]}, "alpha": None}
        ),
    )
    ranges = tuned(tuning_config(run))
    assert ranges["eta"] == {
        "Name": "eta",
        "MinValue": "0.05",
        "MaxValue": "0.3",
        "ScalingType": "Auto",
        "Kind": "Continuous",
    }
    assert ranges["max_depth"] == {"Name": "max_depth", "Values": ["4", "6"], "Kind": "Categorical"}
    assert "alpha" not in ranges
    assert ranges.keys() == DEFAULT_RANGES.keys() - {"alpha"}
    assert validation_errors(request_for(run, ProblemType.BINARY)) == ""


def test_untuned_num_round_is_a_static_hyperparameter() -> None:
    # num_round is required by the built-in algorithm: dropping its range must not drop it from the jobs.
    run = synth("dev", tuningRanges=json.dumps({"num_round": None}))
    assert "num_round" not in tuned(tuning_config(run))
    assert definition(run)["StaticHyperParameters"]["num_round"] == "500"
    request = request_for(run, ProblemType.REGRESSION)
    assert request["TrainingJobDefinition"]["StaticHyperParameters"]["num_round"] == "500"


def test_random_search_without_early_stopping() -> None:
    run = synth("dev", tuningStrategy="Random", tuningEarlyStopping="false")
    config = tuning_config(run)
    assert config["Strategy"] == "Random"
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert "StrategyConfig" not in config
    assert validation_errors(request_for(run, ProblemType.BINARY)) == ""


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_hyperband_spends_num_round_itself_with_sagemaker_early_stopping_off(problem: ProblemType) -> None:
    # SageMaker refuses Hyperband with TrainingJobEarlyStoppingType Auto, and infers MaxResource only from
    # epochs-like static hyperparameters: the rounds must be given as resources and num_round fixed at the
    # most, which Hyperband cuts short itself.
    run = synth("dev", tuningStrategy="Hyperband")
    config = tuning_config(run)
    assert config["Strategy"] == "Hyperband"
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    assert config["StrategyConfig"] == {"HyperbandStrategyConfig": {"MinResource": 50, "MaxResource": 500}}
    assert config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 4
    assert "num_round" not in tuned(config)
    assert tuned(config).keys() == DEFAULT_RANGES.keys() - {"num_round"}
    request = request_for(run, problem)
    assert validation_errors(request) == ""
    static = request["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["num_round"] == "500", "the transform must keep the template's num_round"
    assert not tuned(request["HyperParameterTuningJobConfig"]).keys() & static.keys()


@pytest.mark.parametrize(
    ("values", "resources"),
    [
        pytest.param([100, 300, 200], (100, 300), id="several-values"),
        pytest.param([200], (1, 200), id="one-value"),
    ],
)
def test_hyperband_takes_its_resources_from_categorical_num_round(
    values: list[int], resources: tuple[int, int]
) -> None:
    run = synth("dev", tuningStrategy="Hyperband", tuningRanges=json.dumps({"num_round": {"values": values}}))
    config = tuning_config(run)
    low, high = resources
    assert config["StrategyConfig"] == {"HyperbandStrategyConfig": {"MinResource": low, "MaxResource": high}}
    assert "num_round" not in tuned(config)
    assert definition(run)["StaticHyperParameters"]["num_round"] == str(high)
    assert validation_errors(request_for(run, ProblemType.MULTICLASS)) == ""


def test_grid_search_runs_every_combination_of_the_categorical_values() -> None:
    run = synth("dev", tuningStrategy="Grid", tuningRanges=json.dumps(GRID_RANGES))
    config = tuning_config(run)
    assert config["Strategy"] == "Grid"
    # SageMaker computes the job count from the combinations; a different MaxNumberOfTrainingJobs is refused.
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2}
    assert config["ParameterRanges"] == {
        "CategoricalParameterRanges": [
            {"Name": "eta", "Values": ["0.1", "0.3"]},
            {"Name": "max_depth", "Values": ["4", "6", "8"]},
            {"Name": "num_round", "Values": ["200"]},
        ]
    }
    assert "StrategyConfig" not in config
    request = request_for(run, ProblemType.BINARY)
    assert validation_errors(request) == ""
    assert "num_round" not in request["TrainingJobDefinition"]["StaticHyperParameters"]


def test_grid_search_over_sagemakers_750_combinations_is_refused_naming_the_ranges() -> None:
    # 30 x 30 = 900 jobs: SageMaker would refuse the tuning job at the first upload.
    ranges = {
        **GRID_RANGES,
        "eta": {"values": [round(0.01 * i, 2) for i in range(1, 31)]},
        "max_depth": {"values": list(range(1, 31))},
    }
    config = config_for("dev", {"tuningStrategy": "Grid", "tuningRanges": json.dumps(ranges)})
    with pytest.raises(ProgramFailed) as caught:
        run_program("dev", config)
    assert f"{PROJECT}:tuningRanges" in str(caught.value)
    assert "900 combinations" in str(caught.value)
    assert not [r for r in caught.value.resources if r.name.startswith("training")]


def test_spot_training_waits_for_capacity_at_most_the_configured_time() -> None:
    run = synth("dev", trainingUseSpot="true")
    job = definition(run)
    assert job["EnableManagedSpotTraining"] is True
    stopping = job["StoppingCondition"]
    # Default: twice the runtime; SageMaker refuses a wait shorter than the runtime.
    assert stopping == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    assert stopping["MaxWaitTimeInSeconds"] >= stopping["MaxRuntimeInSeconds"]
    assert validation_errors(request_for(run, ProblemType.BINARY)) == ""
    explicit = definition(synth("dev", trainingUseSpot="true", trainingMaxWaitSeconds="2700"))
    assert explicit["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 2700}


def test_on_demand_training_has_no_spot_settings(run: StackRun) -> None:
    job = definition(run)
    assert "EnableManagedSpotTraining" not in job
    assert "MaxWaitTimeInSeconds" not in job["StoppingCondition"]


def test_warm_pool_keeps_training_instances_for_the_configured_time() -> None:
    run = synth("dev", trainingWarmPoolSeconds="600")
    assert definition(run)["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600
    assert validation_errors(request_for(run, ProblemType.REGRESSION)) == ""


def test_no_warm_pool_is_kept_by_default(run: StackRun) -> None:
    # Warm instances are billed: none unless a stack asks.
    assert "KeepAlivePeriodInSeconds" not in definition(run)["ResourceConfig"]


@pytest.mark.parametrize(
    ("problem", "metric", "direction", "eval_metric", "version"),
    [
        (ProblemType.BINARY, "validation:logloss", "Minimize", "logloss", "3.0-5"),
        # 3.0-5 computes a binary f1 wrong and is refused for it (settings.BROKEN_BINARY_METRICS).
        (ProblemType.BINARY, "validation:f1", "Maximize", "f1", "1.7-1"),
        (ProblemType.MULTICLASS, "validation:accuracy", "Maximize", "accuracy", "3.0-5"),
        (ProblemType.REGRESSION, "validation:mae", "Minimize", "mae", "3.0-5"),
    ],
    ids=str,
)
def test_stack_objective_metric_is_tuned_and_computed_by_every_job(
    problem: ProblemType, metric: str, direction: str, eval_metric: str, version: str
) -> None:
    run = synth("dev", problemType=str(problem), tuningObjectiveMetric=metric, xgboostVersion=version)
    objective = {"Type": direction, "MetricName": metric}
    assert tuning_config(run)["HyperParameterTuningJobObjective"] == objective
    request = request_for(run, problem)
    assert validation_errors(request) == ""
    assert request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == objective
    static = request["TrainingJobDefinition"]["StaticHyperParameters"]
    # A tuned metric the jobs do not compute leaves the tuning job nothing to compare.
    assert static["eval_metric"] == eval_metric
    assert static["objective"] == EXPECTED_OBJECTIVES[problem][2], "the objective stays the problem's"
    assert static.get("num_class") == EXPECTED_OBJECTIVES[problem][4]


def test_a_metric_is_better_the_same_way_for_every_problem_type_it_measures() -> None:
    for metrics in METRICS_BY_PROBLEM.values():
        for metric in metrics:
            assert metric_direction(metric.name) == metric.direction, metric.name
    with pytest.raises(ValueError, match="validation:ndcg"):
        metric_direction("validation:ndcg")


def test_richest_training_config_still_fits_lambdas_environment_and_sagemakers_api() -> None:
    assert ALL_RANGES.keys() == TUNABLE.keys(), "the richest config must tune every tunable hyperparameter"
    run = synth("dev", **RICHEST)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in environment(run).items())
    assert size < LAMBDA_ENVIRONMENT_LIMIT_BYTES, f"environment is {size} bytes"
    config = tuning_config(run)
    assert len(tuned(config)) == len(TUNABLE) - 1, "all but num_round, which Hyperband spends"
    request = request_for(run, ProblemType.MULTICLASS)
    assert validation_errors(request) == ""
    job = request["TrainingJobDefinition"]
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"]["MaxWaitTimeInSeconds"] == 3600
    assert request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "validation:accuracy",
    }


def near_limit_ranges() -> dict[str, Any]:
    """Categorical ranges over every tunable whose rendering is as close to TUNING_RANGES_MAX_BYTES as
    values of 30 characters' steps allow: the most `tuningRanges` the settings let through."""
    ranges: dict[str, Any] = {}
    for name, tunable in TUNABLE.items():
        values: list[float] = []
        for i in range(1, MAX_CATEGORICAL_VALUES + 1):
            if tunable.kind == "Integer":
                value: float = i
            elif tunable.highest == 1:
                value = round(1 - i / 997, 12)
            else:
                value = round(i * 1.2345678901, 10)
            candidate = {**ranges, name: {"values": [*values, value]}}
            if len(
                json.dumps(parameter_ranges(parse_ranges(json.dumps(candidate))), separators=(",", ":"))
            ) > (TUNING_RANGES_MAX_BYTES):
                break
            values.append(value)
        if values:
            ranges[name] = {"values": values}
    return ranges


@pytest.mark.parametrize("strategy", ["Random", "Hyperband"])
def test_ranges_at_the_settings_limit_still_fit_lambdas_environment(strategy: str) -> None:
    # TUNING_RANGES_MAX_BYTES assumes the rest of the tune function's environment stays below 4 KB minus
    # it; every other value here is at its longest the settings allow (names such as the stack at their
    # defaults), tuningJobsPerDay included. Hyperband swaps num_round's range for its StrategyConfig.
    ranges = near_limit_ranges()
    rendered = len(json.dumps(parameter_ranges(parse_ranges(json.dumps(ranges))), separators=(",", ":")))
    assert TUNING_RANGES_MAX_BYTES - 50 < rendered <= TUNING_RANGES_MAX_BYTES, rendered
    run = synth(
        "prod",
        tuningStrategy=strategy,
        tuningRanges=json.dumps(ranges),
        problemType="multiclass",
        tuningObjectiveMetric="validation:accuracy",
        trainingUseSpot="true",
        trainingMaxRuntimeSeconds="3600",
        trainingMaxWaitSeconds="3600",
        trainingInstanceCount="10",
        trainingInstanceType=max(sorted(TRAINING_INSTANCE_TYPES), key=len),
        trainingVolumeGb="16384",
        trainingWarmPoolSeconds="0",
        tuningMaxJobs="500",
        tuningMaxParallelJobs="100",
        validationPercent="50",
        maxRejectedRowsPercent="50",
        maxCategories="100000",
        minLabeledRows="1000000000",
        partFileMb="5000",
        tuningJobsPerDay="1000",
    )
    variables = environment(run)
    assert variables["TUNING_JOBS_PER_DAY"] == "1000"
    size = sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
    assert size < LAMBDA_ENVIRONMENT_LIMIT_BYTES, f"environment is {size} bytes"
    assert validation_errors(request_for(run, ProblemType.MULTICLASS)) == ""


# --- 5. bad training config is refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "message_start"),
    [
        pytest.param(
            {"tuningMaxJobs": "3", "tuningMaxParallelJobs": "5"},
            f"{PROJECT}:tuningMaxParallelJobs = 5: must not exceed tuningMaxJobs = 3",
            id="more-parallel-than-total-jobs",
        ),
        pytest.param(
            {"xgboostVersion": "2.0-1"},
            f"{PROJECT}:xgboostVersion = '2.0-1': must be one of ",
            id="unlisted-xgboost-version",
        ),
        pytest.param(
            {"trainingInstanceType": "m5.xlarge"},  # the EC2 name: SageMaker's need the `ml.` prefix
            f"{PROJECT}:trainingInstanceType = 'm5.xlarge': must be ",
            id="instance-type-without-ml-prefix",
        ),
        pytest.param(
            {"trainingInstanceType": "ml.m5.3xlarge"},  # well formed, but no such size exists
            f"{PROJECT}:trainingInstanceType = 'ml.m5.3xlarge': must be ",
            id="instance-type-sagemaker-does-not-have",
        ),
        pytest.param(
            {"trainingInstanceCount": "0"},
            f"{PROJECT}:trainingInstanceCount = '0': must be ",
            id="no-instances",
        ),
        pytest.param(
            {"trainingVolumeGb": "0"}, f"{PROJECT}:trainingVolumeGb = '0': must be ", id="no-volume"
        ),
        pytest.param(
            {"trainingMaxRuntimeSeconds": "2419201"},  # over SageMaker's 28 days
            f"{PROJECT}:trainingMaxRuntimeSeconds = '2419201': must be ",
            id="runtime-over-28-days",
        ),
    ],
)
def test_bad_training_config_is_refused_naming_the_key(keys: dict[str, str], message_start: str) -> None:
    with pytest.raises(InvalidStackConfig) as caught:
        load_settings(config_for("dev", keys), stack="dev")
    (problem,) = caught.value.problems
    assert problem.startswith(message_start), problem


def test_program_refuses_bad_training_config_before_registering_any_resource() -> None:
    # A bad value found by SageMaker only at the first upload would fail every upload; refuse at preview.
    config = config_for("dev", {"tuningMaxJobs": "3", "tuningMaxParallelJobs": "5", "xgboostVersion": "9.9"})
    with pytest.raises(ProgramFailed) as caught:
        run_program("dev", config)
    assert f"{PROJECT}:tuningMaxParallelJobs = 5" in str(caught.value)
    assert f"{PROJECT}:xgboostVersion = '9.9'" in str(caught.value)
    assert caught.value.resources == []


@pytest.mark.parametrize("version", XGBOOST_VERSIONS)
@pytest.mark.parametrize("region", ["eu-west-1", "cn-north-1", "us-gov-west-1"])
def test_every_allowed_xgboost_version_has_an_image(version: str, region: str) -> None:
    # Each partition's kind of region: the URI is ECR's, of that region and that version.
    parts = IMAGE_URI.fullmatch(xgboost_image(region, version))
    assert parts, version
    assert parts["region"] == region
    assert parts["tag"].startswith(version)


# --- 6. the image of the stack's region --------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition", "domain"),
    [
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
        ("ap-southeast-2", "aws", "amazonaws.com"),
    ],
)
def test_image_and_its_repository_follow_the_stacks_region(region: str, partition: str, domain: str) -> None:
    run = synth("dev", **{"aws:region": region})
    image = definition(run)["AlgorithmSpecification"]["TrainingImage"]
    parts = IMAGE_URI.fullmatch(image)
    assert parts, image
    assert (parts["region"], parts["domain"]) == (region, domain)
    assert image == xgboost_image(region, settings_of(run).training.xgboost_version)
    pulls = {r for action, r in granted(training_policy(run)) if action in IMAGE_PULL_ACTIONS}
    assert pulls == {f"arn:{partition}:ecr:{region}:{parts['account']}:repository/{parts['repository']}"}
    log_groups = {r for action, r in granted(training_policy(run)) if action.startswith("logs:")}
    assert all(r.startswith(f"arn:{partition}:logs:{region}:{MOCK_ACCOUNT_ID}:") for r in log_groups)
