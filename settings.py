"""The one typed, validated view of a stack's configuration.

Every key of the `serverless-ml-pipeline` namespace is declared once in `OPTIONS` with its default,
its allowed values and a one-line description; the README's config table is generated from the same
declarations (see `config_reference_markdown`). `load_settings` reads a stack's raw config, checks every
key and the rules that span keys, and raises one `InvalidStackConfig` that lists each bad key, its value
and what is allowed, before the program registers a single resource.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import botocore.session

from hyperparameters import (
    DEFAULT_RANGES,
    GRID_MAX_COMBINATIONS,
    METRIC_NAMES,
    METRICS_BY_PROBLEM,
    NUM_ROUND,
    InvalidRanges,
    Range,
    grid_combinations,
    metric_for,
    parameter_ranges,
    parse_ranges,
)
from xgboost_images import REGISTRY_ACCOUNTS

PROJECT = "serverless-ml-pipeline"

T = TypeVar("T")

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy, retentionInDays).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

# Lambda's own bounds (Lambda developer guide, "Configuring function memory / timeout").
LAMBDA_MEMORY_MB = (128, 10240)
LAMBDA_TIMEOUT_SECONDS = (1, 900)
# Runtimes that are supported by Lambda and have a Powertools v3 layer; 3.12 is the oldest the code targets.
LAMBDA_RUNTIMES = ("python3.12", "python3.13", "python3.14")
LAMBDA_ARCHITECTURES = ("arm64", "x86_64")
# Lambda LoggingConfig ApplicationLogLevel values that Python logging also knows.
LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")

# SQS event source mapping bounds (Lambda API reference, CreateEventSourceMapping): standard queues take
# batches of 1-10,000 records, but more than 10 only with a batching window of at least 1 second.
SQS_BATCH_SIZE = (1, 10_000)
SQS_UNWINDOWED_MAX_BATCH = 10
SQS_BATCHING_WINDOW_SECONDS = (0, 300)
SQS_MAX_CONCURRENCY = (2, 1000)
SQS_MAX_RECEIVE_COUNT = (1, 1000)
SQS_MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200
SQS_MAX_DELAY_SECONDS = 900
# Lambda developer guide, "Using Lambda with Amazon SQS": the queue's visibility timeout should be at
# least six times the function timeout plus the batching window, so a throttled batch can be retried
# before its messages reappear.
VISIBILITY_TIMEOUT_FACTOR = 6

KMS_DELETION_WINDOW_DAYS = (7, 30)

PROBLEM_TYPES = ("auto", "binary", "multiclass", "regression")
# Built-in XGBoost versions that both the SageMaker developer guide ("XGBoost algorithm", supported
# versions 1.0, 1.2, 1.3, 1.5, 1.7, 3.0) and the pinned sagemaker SDK's image_uri_config/xgboost.json list,
# and that the pipeline can serve with. Container citations are `branch:path:line` of
# aws/sagemaker-xgboost-container (one branch per version).
XGBOOST_VERSIONS = ("1.2-2", "1.3-1", "1.5-1", "1.7-1", "3.0-5")
# Versions SageMaker still has but the pipeline cannot use, each refused with its own reason.
# - 1.0-1 and 1.2-1 answer InvokeEndpoint with text/csv whatever Accept says
#   (1.0-1:src/sagemaker_xgboost_container/algorithm_mode/serve.py:234-239; the file is the same in
#   1.2-1); the JSON answer `{"predictions": [{"score": ...}]}` that the predict function parses starts at
#   1.2-2 (1.2-2:src/sagemaker_xgboost_container/algorithm_mode/serve_utils.py:467-479).
# - 1.0-1 pins xgboost 1.0.0 (1.0-1:docker/1.0-1/base/Dockerfile.cpu:14), whose CSV parser reads an
#   empty field as 0.0, not missing: the transform writes a missing value as an empty field.
_OLD_SERVING = (
    "answers text/csv whatever Accept says; the predict function reads the JSON answer introduced in 1.2-2"
)
REFUSED_XGBOOST_VERSIONS = {
    "1.0-1": f"{_OLD_SERVING}, and its xgboost 1.0.0 trains on an empty (missing) CSV field as 0.0",
    "1.2-1": _OLD_SERVING,
}
# 3.0-5 (and master) pass the container's scikit-learn metrics as `custom_metric=`
# (release-3.0.5:src/sagemaker_xgboost_container/algorithm_mode/train.py:372 and :437), which xgboost 3
# calls with probabilities, not margins; the metrics still threshold at a margin of 0
# (release-3.0.5:src/sagemaker_xgboost_container/metrics/custom_metrics.py:37-43, margin_to_class_label),
# so for binary:logistic every row counts as positive. 1.0-1 to 1.7-1 pass `feval=` (e.g.
# 1.7-1:src/sagemaker_xgboost_container/algorithm_mode/train.py:324), which xgboost calls with margins.
# Multiclass (multi:softprob) takes the argmax, the same for probabilities and margins, so it is unaffected;
# regression's identity link is too. Of the binary metrics a stack may tune, these are the container's own.
BROKEN_BINARY_METRICS = {"3.0-5": ("validation:accuracy", "validation:f1")}
# SageMaker API reference, ResourceConfig and StoppingCondition: volume 1-16,384 GB, MaxRuntimeInSeconds
# at most 28 days.
TRAINING_VOLUME_GB_RANGE = (1, 16_384)
TRAINING_MAX_RUNTIME_RANGE = (1, 2_419_200)
TUNING_STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
# ResourceConfig.KeepAlivePeriodInSeconds (SageMaker API reference): warm pools keep instances up to 1 hour.
WARM_POOL_SECONDS = (0, 3600)
# SageMaker developer guide, "Managed spot training": built-in algorithms that do not checkpoint "are
# currently limited to a MaxWaitTimeInSeconds of 3600 seconds"; tuning jobs here do not checkpoint.
SPOT_MAX_WAIT_SECONDS = 3600
# The tuning request template travels in the tune function's environment, which Lambda limits to
# 4 KB in all ("Working with Lambda environment variables"). The rest of it (the template without its
# ranges, and the other variables, TUNING_JOBS_PER_DAY included) takes 1.1 KB with the defaults and about
# 1.3 KB with every other key at its longest (measured by test_ranges_at_the_settings_limit_still_fit_
# lambdas_environment in tests/infra/test_training.py), which leaves some 300 bytes for a stack name and
# bucket name longer than the defaults.
TUNING_RANGES_MAX_BYTES = 2500
ENDPOINT_MODES = ("serverless", "instances")
# ServerlessConfig (SageMaker API reference): memory 1,024-6,144 MB in 1 GB steps, concurrency 1-200.
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = (1, 200)
# BlueGreenUpdatePolicy.TrafficRoutingConfiguration.WaitIntervalInSeconds: 0-3600.
BAKE_SECONDS = (0, 3600)
# API Gateway's default integration timeout (API Gateway developer guide, "Amazon API Gateway quotas"):
# a function still running when it passes is answered with a 504 that names nothing, so the predict
# function must time out first and answer itself.
API_INTEGRATION_TIMEOUT_SECONDS = 29
PREDICT_TIMEOUT_SECONDS = (1, API_INTEGRATION_TIMEOUT_SECONDS - 1)
# Lambda answers at most 6 MB synchronously: 10,000 records with their class probabilities stay below.
PREDICT_MAX_RECORDS = (1, 10_000)
# A usage plan's throttle cannot exceed the account's regional limits (10,000 requests per second, burst
# 5,000; API Gateway developer guide, "Amazon API Gateway quotas").
API_THROTTLE_RATE = (1, 10_000)
API_THROTTLE_BURST = (1, 5_000)
API_QUOTA_PER_DAY = (1, 1_000_000_000)
# MethodSetting loggingLevel (API Gateway API reference).
API_LOGGING_LEVELS = ("OFF", "ERROR", "INFO")
API_CLOUDWATCH_ROLES = ("create", "existing")
# Who may call the API's methods, on top of the API key (which AWS documents as identification for usage
# plans, not authorization: API Gateway developer guide, "Usage plans and API keys"): SigV4 signatures
# judged by the callers' IAM policies (method authorization AWS_IAM), or ID tokens of a Cognito user pool
# the stack creates (COGNITO_USER_POOLS).
API_AUTHORIZATIONS = ("iam", "cognito")
# A WAF rate-based rule's limit and evaluation window (botocore wafv2 model, RateBasedStatement: Limit 10 to
# 2,000,000,000; EvaluationWindowSec 60, 120, 300 or 600).
WAF_RATE_LIMIT = (10, 2_000_000_000)
WAF_WINDOWS = (60, 120, 300, 600)


def _training_instance_types() -> frozenset[str]:
    """Instance types SageMaker training accepts: the TrainingInstanceType enum of botocore's SageMaker
    model (botocore does not check it before sending; SageMaker would refuse every tuning request)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("TrainingInstanceType").enum)


TRAINING_INSTANCE_TYPES = _training_instance_types()


def _hosting_instance_types() -> frozenset[str]:
    """Instance types a real-time endpoint accepts: botocore's ProductionVariantInstanceType enum."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("ProductionVariantInstanceType").enum)


HOSTING_INSTANCE_TYPES = _hosting_instance_types()


def _transform_instance_types() -> frozenset[str]:
    """Instance types a batch transform job accepts: botocore's TransformInstanceType enum."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("TransformInstanceType").enum)


TRANSFORM_INSTANCE_TYPES = _transform_instance_types()

# Prefixes the pipeline writes to; an upload prefix inside one of them would feed the pipeline its own output.
PIPELINE_PREFIXES = ("processed/", "rejected/", "models/", "capture/", "deployments/")

_PREFIX = re.compile(r"^(?:[A-Za-z0-9!_.*'()-]+/)+$")
_SUFFIX = re.compile(r"^\.[A-Za-z0-9][A-Za-z0-9._-]{0,30}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d$")


class InvalidStackConfig(ValueError):
    """The stack's config has one or more bad keys; the message lists each of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Option(Generic[T]):
    """One config key: how to read it, what it may be, and its default."""

    key: str
    default: T
    description: str
    allowed: str
    parse: Callable[[str], T]
    valid: Callable[[T], bool]
    default_text: str | None = None

    @property
    def documented_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if isinstance(self.default, bool):
            return str(self.default).lower()
        return str(self.default)


def _parse_int(raw: str) -> int:
    return int(raw.strip())


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ValueError(raw)
    return value == "true"


def _integer(key: str, default: int, bounds: tuple[int, int], description: str) -> Option[int]:
    lo, hi = bounds
    return Option(
        key, default, description, f"an integer from {lo} to {hi}", _parse_int, lambda v: lo <= v <= hi
    )


def _boolean(key: str, default: bool, description: str) -> Option[bool]:
    return Option(key, default, description, "true or false", _parse_bool, lambda _: True)


def _choice(key: str, default: str, choices: tuple[str, ...], description: str) -> Option[str]:
    return Option(
        key, default, description, "one of " + ", ".join(choices), str.strip, lambda v: v in choices
    )


def _pattern(key: str, default: str, pattern: re.Pattern[str], allowed: str, description: str) -> Option[str]:
    return Option(key, default, description, allowed, str, lambda v: bool(pattern.fullmatch(v)))


RAW_PREFIX = Option(
    "rawPrefix",
    "raw/",
    "Key prefix under which uploaded CSVs start the pipeline (`<prefix><dataset>/<file>`).",
    "S3-safe path segments ending in '/', outside " + ", ".join(PIPELINE_PREFIXES),
    str,
    lambda v: (
        bool(_PREFIX.fullmatch(v)) and not any(v.startswith(p) or p.startswith(v) for p in PIPELINE_PREFIXES)
    ),
)
RAW_SUFFIX = _pattern(
    "rawSuffix",
    ".csv",
    _SUFFIX,
    "a '.' followed by 1-31 letters, digits, '.', '_' or '-'",
    "Key suffix (case-sensitive, as S3 filters are) of the uploads that start the pipeline.",
)
PROTECT_DATA = _boolean(
    "protectData",
    True,
    "Protect the data bucket, log bucket and KMS key (and the Cognito user pool, apiAuthorization "
    "cognito): `pulumi destroy` refuses, and they are retained if removed from the program. When false, "
    "destroy empties and deletes the buckets.",
)
KEY_DELETION_WINDOW = _integer(
    "kmsKeyDeletionWindowDays",
    30,
    KMS_DELETION_WINDOW_DAYS,
    "Waiting period before a deleted KMS key is really destroyed.",
)
NONCURRENT_VERSION_DAYS = _integer(
    "noncurrentVersionDays",
    90,
    (1, 36500),
    "Days an object version (data and access-log buckets) is kept after a newer version replaces it.",
)
INCOMPLETE_UPLOAD_DAYS = _integer(
    "incompleteUploadDays", 7, (1, 365), "Days after which unfinished multipart uploads are aborted."
)
ACCESS_LOG_DAYS = _integer(
    "accessLogDays", 365, (1, 36500), "Days the data bucket's server access logs are kept."
)
LOG_RETENTION = Option(
    "logRetentionDays",
    365,
    "Retention of the functions' CloudWatch log groups.",
    "one of " + ", ".join(map(str, LOG_RETENTION_DAYS)),
    _parse_int,
    lambda v: v in LOG_RETENTION_DAYS,
)
LAMBDA_RUNTIME = _choice("lambdaRuntime", "python3.13", LAMBDA_RUNTIMES, "Lambda runtime of every function.")
LAMBDA_ARCHITECTURE = _choice(
    "lambdaArchitecture",
    "arm64",
    LAMBDA_ARCHITECTURES,
    "Instruction set of every function (arm64 costs less per GB-second).",
)
POWERTOOLS_LAYER_VERSION = _integer(
    "powertoolsLayerVersion",
    27,
    (1, 10_000),
    "Version of the public AWS-managed layer `AWSLambdaPowertoolsPythonV3-<runtime>-<arch>`.",
)
LOG_LEVEL = _choice("logLevel", "INFO", LOG_LEVELS, "Application log level of every function.")
TRACING = _boolean(
    "tracing",
    False,
    "Active X-Ray tracing of every function, with the permission to send traces, and of the API stage "
    "whatever apiTracing says (billed per trace recorded and retrieved).",
)
TRANSFORM_MEMORY = _integer(
    "transformMemoryMb",
    1769,
    LAMBDA_MEMORY_MB,
    "Memory of the transform function (1,769 MB is one full vCPU).",
)
# The transform keeps 30 s of its timeout to finish its uploads (functions/transform/upload.py).
TRANSFORM_TIMEOUT = _integer(
    "transformTimeoutSeconds", 900, (60, LAMBDA_TIMEOUT_SECONDS[1]), "Timeout of the transform function."
)
TRANSFORM_BATCH_SIZE = _integer(
    "transformBatchSize",
    1,
    SQS_BATCH_SIZE,
    "Messages per transform invocation; more than 10 needs transformBatchingWindowSeconds >= 1.",
)
TRANSFORM_BATCHING_WINDOW = _integer(
    "transformBatchingWindowSeconds",
    0,
    SQS_BATCHING_WINDOW_SECONDS,
    "Seconds Lambda waits to fill a batch before invoking the transform.",
)
TRANSFORM_MAX_CONCURRENCY = _integer(
    "transformMaxConcurrency",
    10,
    SQS_MAX_CONCURRENCY,
    "Most concurrent transform invocations the queue may drive (event source mapping MaximumConcurrency).",
)
MAX_RECEIVE_COUNT = _integer(
    "queueMaxReceiveCount",
    5,
    SQS_MAX_RECEIVE_COUNT,
    "Deliveries of a message before it moves to the dead-letter queue.",
)
VISIBILITY_TIMEOUT = Option[int | None](
    "queueVisibilityTimeoutSeconds",
    None,
    "Visibility timeout of the upload queue; set by hand only to exceed the derived minimum.",
    f"an integer from the derived minimum to {SQS_MAX_VISIBILITY_TIMEOUT_SECONDS}",
    _parse_int,
    lambda v: v is not None and 0 <= v <= SQS_MAX_VISIBILITY_TIMEOUT_SECONDS,
    default_text=f"{VISIBILITY_TIMEOUT_FACTOR} x transformTimeoutSeconds + transformBatchingWindowSeconds",
)
RAW_MESSAGE_DELIVERY = _boolean(
    "rawMessageDelivery",
    False,
    "Deliver S3 events to the queue without the SNS envelope (the transform reads both forms).",
)
# RFC 2606: second-level domains and top-level domains reserved for documentation and tests; mail to them
# is never delivered.
RESERVED_EXAMPLE_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
RESERVED_TOP_LEVEL_DOMAINS = (".example", ".test", ".invalid", ".localhost")
ALARM_EMAIL = Option[str | None](
    "alarmEmail",
    None,
    "E-mail address subscribed to the alarm topic (AWS sends a confirmation mail first); where "
    "protectData is true, not at a domain RFC 2606 reserves for examples.",
    "an e-mail address",
    str.strip,
    lambda v: v is not None and bool(_EMAIL.fullmatch(v)),
    default_text="(none)",
)

TARGET_COLUMN = Option(
    "targetColumn",
    "target",
    "Header name of the column to predict: the stack's default, which a dataset may override in its own "
    "`<rawPrefix><dataset>/dataset.json` (keys targetColumn, problemType, ignoreColumns, maxCategories, "
    "minLabeledRows).",
    "a non-empty column name",
    str.strip,
    lambda v: bool(v),
)
PROBLEM_TYPE = _choice(
    "problemType",
    "auto",
    PROBLEM_TYPES,
    "Problem type of a new dataset unless its dataset.json sets one; auto: classification for a text "
    "target, a two-valued target, or whole numbers with at most 10 distinct values, else regression.",
)
VALIDATION_PERCENT = _integer(
    "validationPercent",
    20,
    (5, 50),
    "Share of each upload's rows held out for validation, chosen by a digest of each row's own fields "
    "(deterministic, whatever the row order), with every class in both splits.",
)
MAX_REJECTED_ROWS_PERCENT = _integer(
    "maxRejectedRowsPercent",
    1,
    (0, 50),
    "Most rows of an upload that may be refused (reported) before the whole file is rejected.",
)
MAX_CATEGORIES = _integer(
    "maxCategories",
    1000,
    (2, 100_000),
    "Most distinct values of a categorical column or classes of a target; a text column with more is "
    "ignored as an identifier. The stack's default; a dataset's dataset.json may set its own.",
)
# The same bounds as dataset.json's minLabeledRows (functions/transform/dataset_settings.py).
MIN_LABELED_ROWS = _integer(
    "minLabeledRows",
    50,
    (2, 1_000_000_000),
    "Fewest labeled rows (rows with a target) an upload must keep to be trained on; fewer refuses the "
    "file. 50 leaves 10 rows for validation at 20%. The stack's default; a dataset.json may set its own.",
)
PART_FILE_MB = _integer(
    "partFileMb",
    64,
    (1, 5000),
    "Size at which the transform starts a new training data part file (ShardedByS3Key unit).",
)
XGBOOST_VERSION = Option(
    "xgboostVersion",
    "3.0-5",
    "Version of SageMaker's built-in XGBoost algorithm; 1.0-1 and 1.2-1 are refused: they answer text/csv "
    "whatever Accept says, and the predict function reads the JSON answer of 1.2-2 and later.",
    "one of " + ", ".join(XGBOOST_VERSIONS),
    str.strip,
    # A refused version passes here so that _training_settings can say why it is refused.
    lambda v: v in XGBOOST_VERSIONS or v in REFUSED_XGBOOST_VERSIONS,
)
TRAINING_INSTANCE_TYPE = Option(
    "trainingInstanceType",
    "ml.m5.xlarge",
    "Instance type of each training job.",
    "a SageMaker training instance type (botocore's TrainingInstanceType list), e.g. ml.m5.xlarge",
    str.strip,
    lambda v: v in TRAINING_INSTANCE_TYPES,
)
TRAINING_INSTANCE_COUNT = _integer(
    "trainingInstanceCount",
    1,
    (1, 100),
    "Instances per training job; more than one shards the training files.",
)
TRAINING_VOLUME_GB = _integer(
    "trainingVolumeGb",
    30,
    TRAINING_VOLUME_GB_RANGE,
    "EBS volume per training instance (holds the training files).",
)
TRAINING_MAX_RUNTIME = _integer(
    "trainingMaxRuntimeSeconds", 3600, TRAINING_MAX_RUNTIME_RANGE, "Time limit of each training job."
)
TUNING_MAX_JOBS = _integer("tuningMaxJobs", 20, (1, 500), "Training jobs per tuning job.")
TUNING_MAX_PARALLEL_JOBS = _integer(
    "tuningMaxParallelJobs", 2, (1, 100), "Training jobs of one tuning job that run at once."
)
TUNING_QUIET_SECONDS = _integer(
    "tuningQuietSeconds",
    300,
    # SendMessage DelaySeconds: at most 900 (SQS API reference, SendMessage).
    (0, SQS_MAX_DELAY_SECONDS),
    "Quiet period: a dataset is tuned once no upload of it has completed for this long, over every run so "
    "far, so a burst of uploads starts one tuning job, not one per file.",
)
TUNING_JOBS_PER_DAY = _integer(
    "tuningJobsPerDay",
    4,
    (1, 1000),
    "Most tuning jobs started per dataset per UTC day; a request beyond it is deferred to the next UTC day "
    "(recorded in processed/<dataset>/<job>/tuning.json).",
)
TUNING_STRATEGY = _choice(
    "tuningStrategy",
    "Bayesian",
    TUNING_STRATEGIES,
    "Search strategy of each tuning job; Grid needs every range given as values.",
)


def _describe_ranges(ranges: dict[str, Range]) -> str:
    return "; ".join(
        f"{r.name} {r.minimum:g}-{r.maximum:g}" + ("" if r.scaling == "Auto" else f" {r.scaling.lower()}")
        for r in ranges.values()
    )


TUNING_RANGES = Option(
    "tuningRanges",
    DEFAULT_RANGES,
    'Overrides of the searched hyperparameter ranges: `{"eta": {"min": 0.05, "max": 0.3, "scaling": '
    '"Logarithmic"}, "max_depth": {"values": [4, 6]}, "alpha": null}` (null: not tuned).',
    "a JSON object of tunable XGBoost hyperparameters (see hyperparameters.py)",
    parse_ranges,
    lambda v: bool(v),
    default_text=_describe_ranges(DEFAULT_RANGES),
)
TUNING_OBJECTIVE_METRIC = _choice(
    "tuningObjectiveMetric",
    "auto",
    ("auto", *METRIC_NAMES),
    "Metric the tuning job optimises; auto: validation:auc (binary), validation:mlogloss (multiclass), "
    "validation:rmse (regression). Any other needs an explicit problemType it measures; with xgboostVersion "
    "3.0-5 not validation:accuracy or validation:f1 for binary (a container bug).",
)
TUNING_EARLY_STOPPING = _boolean(
    "tuningEarlyStopping",
    True,
    "Let SageMaker stop training jobs that are unlikely to beat the best so far (not with Hyperband, "
    "which stops jobs itself).",
)
TRAINING_USE_SPOT = _boolean(
    "trainingUseSpot", False, "Managed spot training: up to 90% cheaper, jobs may wait for capacity."
)
TRAINING_MAX_WAIT = Option[int | None](
    "trainingMaxWaitSeconds",
    None,
    "With spot training: time limit of each training job including waiting for spot capacity.",
    "an integer from trainingMaxRuntimeSeconds to 3600",
    _parse_int,
    lambda v: v is not None and 1 <= v <= TRAINING_MAX_RUNTIME_RANGE[1],
    default_text="2 x trainingMaxRuntimeSeconds, at most 3600",
)
TRAINING_WARM_POOL = _integer(
    "trainingWarmPoolSeconds",
    0,
    WARM_POOL_SECONDS,
    "Seconds a finished training job's instances stay warm for the next (billed while warm; not with spot).",
)
ENDPOINT_MODE = _choice(
    "endpointMode",
    "serverless",
    ENDPOINT_MODES,
    "serverless: billed per request, nothing when idle; instances: always-on instances with autoscaling, "
    "data capture and blue/green updates.",
)
ENDPOINT_MEMORY = Option(
    "endpointMemoryMb",
    2048,
    "Memory of the serverless endpoint.",
    "one of " + ", ".join(map(str, SERVERLESS_MEMORY_MB)),
    _parse_int,
    lambda v: v in SERVERLESS_MEMORY_MB,
)
ENDPOINT_MAX_CONCURRENCY = _integer(
    "endpointMaxConcurrency",
    5,
    SERVERLESS_MAX_CONCURRENCY,
    "Most concurrent invocations of the serverless endpoint (more are throttled).",
)
ENDPOINT_INSTANCE_TYPE = Option(
    "endpointInstanceType",
    "ml.m5.large",
    "Instance type of the endpoint in instances mode.",
    "a SageMaker hosting instance type (botocore's ProductionVariantInstanceType list)",
    str.strip,
    lambda v: v in HOSTING_INSTANCE_TYPES,
)
ENDPOINT_MIN_INSTANCES = _integer(
    "endpointMinInstances", 1, (1, 100), "Fewest endpoint instances autoscaling keeps (instances mode)."
)
ENDPOINT_MAX_INSTANCES = _integer(
    "endpointMaxInstances", 2, (1, 100), "Most endpoint instances autoscaling may run (instances mode)."
)
ENDPOINT_INVOCATIONS_TARGET = _integer(
    "endpointInvocationsPerInstance",
    100,
    (1, 1_000_000),
    "Autoscaling target: invocations per instance per minute (SageMakerVariantInvocationsPerInstance).",
)
ENDPOINT_CAPTURE_PERCENT = _integer(
    "endpointCapturePercent",
    20,
    (0, 100),
    "Share of requests and responses captured to capture/ (instances mode; 0: none).",
)
ENDPOINT_BAKE_SECONDS = _integer(
    "endpointBakeSeconds",
    300,
    BAKE_SECONDS,
    "Blue/green update: time the new fleet serves while the error alarm may still roll it back.",
)
CONTEST_INSTANCE_TYPE = Option(
    "contestInstanceType",
    "ml.m5.large",
    "Instance type of the two batch transform jobs that score a challenger and the champion on the same "
    "validation rows before a challenger may replace the champion.",
    "a SageMaker batch transform instance type (botocore's TransformInstanceType list)",
    str.strip,
    lambda v: v in TRANSFORM_INSTANCE_TYPES,
)
CHAMPION_STORES = ("endpoint-tags", "ssm-parameter")
CHAMPION_STORE = _choice(
    "championStore",
    "endpoint-tags",
    CHAMPION_STORES,
    "Where the serving model's score is kept: the tags of the endpoint config serving it, or also an SSM "
    "parameter /serverless-ml-pipeline/<stack prefix>/champion for readers outside the pipeline.",
)
PREDICT_MEMORY = _integer(
    "predictMemoryMb", 512, LAMBDA_MEMORY_MB, "Memory of the predict function behind the API."
)
PREDICT_TIMEOUT = _integer(
    "predictTimeoutSeconds",
    10,
    PREDICT_TIMEOUT_SECONDS,
    f"Timeout of the predict function; below API Gateway's {API_INTEGRATION_TIMEOUT_SECONDS} s integration "
    "timeout, so the function answers before the gateway gives up.",
)
PREDICT_MAX_RECORDS_OPTION = _integer(
    "predictMaxRecords",
    1000,
    PREDICT_MAX_RECORDS,
    "Most records one prediction request may carry (more is a 413 before the endpoint is called).",
)
API_THROTTLE_RATE_OPTION = _integer(
    "apiThrottleRatePerSecond",
    10,
    API_THROTTLE_RATE,
    "Steady requests per second the API key may make (usage plan throttle; more are answered 429).",
)
API_THROTTLE_BURST_OPTION = _integer(
    "apiThrottleBurst",
    20,
    API_THROTTLE_BURST,
    "Most requests the API key may make at once (usage plan burst: the size of its token bucket).",
)
API_QUOTA_PER_DAY_OPTION = _integer(
    "apiQuotaPerDay",
    10_000,
    API_QUOTA_PER_DAY,
    "Requests the API key may make per day (usage plan quota; more are answered 429).",
)
API_TRACING = _boolean(
    "apiTracing", False, "X-Ray tracing of the API stage (billed per trace recorded and retrieved)."
)
API_LOGGING_LEVEL = _choice(
    "apiLoggingLevel",
    "ERROR",
    API_LOGGING_LEVELS,
    "Execution logging of the API stage to CloudWatch (access logs are always written).",
)
API_CLOUDWATCH_ROLE = _choice(
    "apiCloudWatchRole",
    "create",
    API_CLOUDWATCH_ROLES,
    "API Gateway logs through one CloudWatch role per account and region: create sets it to a role of "
    "this stack, kept after destroy (the setting is shared: the last stack to set it wins); existing uses "
    "the one already set.",
)
API_AUTHORIZATION = _choice(
    "apiAuthorization",
    "iam",
    API_AUTHORIZATIONS,
    "Who may call POST /predict and GET /health besides holding the API key: iam, requests signed with "
    "SigV4 by an identity allowed execute-api:Invoke (the stack's api_invoke_policy_arn grants it); "
    "cognito, an ID token of the stack's user pool in the Authorization header.",
)

API_WAF_RATE_LIMIT = Option(
    "apiWafRateLimit",
    0,
    "Requests one client IP address may make per apiWafWindowSeconds before a WAF web ACL on the stage "
    "blocks it (403); 0: no web ACL (WAF bills each web ACL and rule monthly, and requests).",
    f"0 or an integer from {WAF_RATE_LIMIT[0]} to {WAF_RATE_LIMIT[1]}",
    _parse_int,
    lambda v: v == 0 or WAF_RATE_LIMIT[0] <= v <= WAF_RATE_LIMIT[1],
)
API_WAF_WINDOW = Option(
    "apiWafWindowSeconds",
    300,
    "The window apiWafRateLimit counts a client's requests over.",
    "one of " + ", ".join(str(w) for w in WAF_WINDOWS),
    _parse_int,
    lambda v: v in WAF_WINDOWS,
)

OPTIONS: tuple[Option[Any], ...] = (
    RAW_PREFIX,
    RAW_SUFFIX,
    PROTECT_DATA,
    KEY_DELETION_WINDOW,
    NONCURRENT_VERSION_DAYS,
    INCOMPLETE_UPLOAD_DAYS,
    ACCESS_LOG_DAYS,
    LOG_RETENTION,
    LAMBDA_RUNTIME,
    LAMBDA_ARCHITECTURE,
    POWERTOOLS_LAYER_VERSION,
    LOG_LEVEL,
    TRACING,
    TRANSFORM_MEMORY,
    TRANSFORM_TIMEOUT,
    TRANSFORM_BATCH_SIZE,
    TRANSFORM_BATCHING_WINDOW,
    TRANSFORM_MAX_CONCURRENCY,
    MAX_RECEIVE_COUNT,
    VISIBILITY_TIMEOUT,
    RAW_MESSAGE_DELIVERY,
    ALARM_EMAIL,
    TARGET_COLUMN,
    PROBLEM_TYPE,
    VALIDATION_PERCENT,
    MAX_REJECTED_ROWS_PERCENT,
    MAX_CATEGORIES,
    MIN_LABELED_ROWS,
    PART_FILE_MB,
    XGBOOST_VERSION,
    TRAINING_INSTANCE_TYPE,
    TRAINING_INSTANCE_COUNT,
    TRAINING_VOLUME_GB,
    TRAINING_MAX_RUNTIME,
    TUNING_MAX_JOBS,
    TUNING_MAX_PARALLEL_JOBS,
    TUNING_QUIET_SECONDS,
    TUNING_JOBS_PER_DAY,
    TUNING_STRATEGY,
    TUNING_RANGES,
    TUNING_OBJECTIVE_METRIC,
    TUNING_EARLY_STOPPING,
    TRAINING_USE_SPOT,
    TRAINING_MAX_WAIT,
    TRAINING_WARM_POOL,
    ENDPOINT_MODE,
    ENDPOINT_MEMORY,
    ENDPOINT_MAX_CONCURRENCY,
    ENDPOINT_INSTANCE_TYPE,
    ENDPOINT_MIN_INSTANCES,
    ENDPOINT_MAX_INSTANCES,
    ENDPOINT_INVOCATIONS_TARGET,
    ENDPOINT_CAPTURE_PERCENT,
    ENDPOINT_BAKE_SECONDS,
    CONTEST_INSTANCE_TYPE,
    CHAMPION_STORE,
    PREDICT_MEMORY,
    PREDICT_TIMEOUT,
    PREDICT_MAX_RECORDS_OPTION,
    API_THROTTLE_RATE_OPTION,
    API_THROTTLE_BURST_OPTION,
    API_QUOTA_PER_DAY_OPTION,
    API_TRACING,
    API_LOGGING_LEVEL,
    API_CLOUDWATCH_ROLE,
    API_AUTHORIZATION,
    API_WAF_RATE_LIMIT,
    API_WAF_WINDOW,
)

REGION_KEY = "aws:region"
# The AWS provider's default tags, which it puts on every resource that takes tags (pulumi-aws provider
# configuration, `defaultTags`): the program cannot set them on the default provider, so the stack config
# must, and these two are what cost allocation groups by.
DEFAULT_TAGS_KEY = "aws:defaultTags"
REQUIRED_TAGS = ("project", "stack")


@dataclass(frozen=True)
class DataSettings:
    raw_prefix: str
    raw_suffix: str
    protect: bool
    key_deletion_window_days: int
    noncurrent_version_days: int
    incomplete_upload_days: int
    access_log_days: int


@dataclass(frozen=True)
class QueueSettings:
    max_receive_count: int
    visibility_timeout_seconds: int
    raw_message_delivery: bool


@dataclass(frozen=True)
class FunctionRuntime:
    """What every function of the stack shares."""

    runtime: str
    architecture: str
    powertools_layer_version: int
    log_level: str
    log_retention_days: int
    # Active X-Ray tracing: Lambda samples invocations and sends their segments with the function's role.
    tracing: bool


@dataclass(frozen=True)
class TransformSettings:
    memory_mb: int
    timeout_seconds: int
    batch_size: int
    batching_window_seconds: int
    max_concurrency: int


@dataclass(frozen=True)
class DatasetSettings:
    """How the transform reads uploads and writes training data."""

    target_column: str
    problem_type: str
    validation_percent: int
    max_rejected_rows_percent: int
    max_categories: int
    min_labeled_rows: int
    part_file_mb: int


@dataclass(frozen=True)
class TrainingSettings:
    xgboost_version: str
    instance_type: str
    instance_count: int
    volume_gb: int
    max_runtime_seconds: int
    max_jobs: int
    max_parallel_jobs: int
    # How long a dataset's tuning request waits for more uploads, and its tuning jobs per UTC day.
    quiet_seconds: int
    jobs_per_day: int
    strategy: str
    ranges: dict[str, Range]
    # None: the default metric of the problem type the transform finds.
    objective_metric: str | None
    early_stopping: bool
    use_spot: bool
    max_wait_seconds: int
    warm_pool_seconds: int


@dataclass(frozen=True)
class EndpointSettings:
    """How the deploy function serves a promoted model, and what judges a challenger before it is."""

    mode: str
    memory_mb: int
    max_concurrency: int
    instance_type: str
    min_instances: int
    max_instances: int
    invocations_per_instance: int
    capture_percent: int
    bake_seconds: int
    contest_instance_type: str

    @property
    def serverless(self) -> bool:
        return self.mode == "serverless"


@dataclass(frozen=True)
class PredictionSettings:
    """The predict function behind the API."""

    memory_mb: int
    timeout_seconds: int
    max_records: int


@dataclass(frozen=True)
class ApiSettings:
    """The API's stage, usage plan and logging."""

    throttle_rate_per_second: int
    throttle_burst: int
    quota_per_day: int
    # X-Ray tracing of the stage: apiTracing, or the stack's tracing (a function's trace then starts at the
    # API that called it).
    tracing: bool
    logging_level: str
    # "create": the stack sets the region's API Gateway CloudWatch role; "existing": the account has one.
    cloudwatch_role: str
    # "iam" or "cognito" (API_AUTHORIZATIONS): what every method requires besides the API key.
    authorization: str
    # Requests per client IP address per window before WAF blocks it; 0: no web ACL.
    waf_rate_limit: int
    waf_window_seconds: int

    @property
    def firewall(self) -> bool:
        return self.waf_rate_limit > 0

    @property
    def creates_cloudwatch_role(self) -> bool:
        return self.cloudwatch_role == "create"


@dataclass(frozen=True)
class Settings:
    project: str
    stack: str
    region: str
    data: DataSettings
    queue: QueueSettings
    functions: FunctionRuntime
    transform: TransformSettings
    dataset: DatasetSettings
    training: TrainingSettings
    endpoint: EndpointSettings
    # "endpoint-tags" or "ssm-parameter".
    champion_store: str
    prediction: PredictionSettings
    api: ApiSettings
    alarm_email: str | None

    @property
    def alarm_name_prefix(self) -> str:
        """Every CloudWatch alarm name of this stack starts with it; policies admit exactly these alarms."""
        return f"{self.project}-{self.stack}-"

    @property
    def endpoint_name(self) -> str:
        """The stack's SageMaker endpoint (at most 63 characters: the prefix is short)."""
        return f"{self.project}-{self.tuning_job_prefix}"

    @property
    def metrics_namespace(self) -> str:
        """CloudWatch namespace of the functions' own metrics, one per stack."""
        return f"{self.project}/{self.stack}"

    @property
    def tuning_job_prefix(self) -> str:
        """Every tuning job name of this stack starts with it: the stack name's first letters and a digest
        of project and stack, short enough to leave a 22-character upload digest in SageMaker's 32."""
        letters = re.sub(r"[^a-z0-9]+", "-", self.stack.lower()).strip("-")[:5].strip("-") or "stack"
        digest = hashlib.sha256(f"{self.project}/{self.stack}".encode()).hexdigest()[:4]
        return f"{letters}-{digest}"


class _Reader:
    """Reads options from raw config strings, collecting every problem instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def __call__(self, option: Option[T]) -> T:
        if option.key not in self.raw:
            return option.default
        text = self.raw[option.key]
        try:
            value = option.parse(text)
        except InvalidRanges as error:
            self.problems.append(f"{PROJECT}:{option.key} = {text!r}: {error}")
            return option.default
        except ValueError:
            value = None
        if value is None or not option.valid(value):
            self.problems.append(f"{PROJECT}:{option.key} = {text!r}: must be {option.allowed}")
            return option.default
        return value


def load_settings(raw: Mapping[str, str], *, stack: str) -> Settings:
    """Build the settings from a stack's config, given as Pulumi hands it over (`project:key` -> string).

    Raises `InvalidStackConfig` naming every bad or unknown key.
    """
    own = {key.split(":", 1)[1]: value for key, value in raw.items() if key.startswith(f"{PROJECT}:")}
    read = _Reader(own)
    problems = read.problems

    known = {option.key for option in OPTIONS}
    for key in sorted(own.keys() - known):
        hint = difflib.get_close_matches(key, sorted(known), n=1)
        suggestion = f" (did you mean {hint[0]}?)" if hint else ""
        problems.append(f"{PROJECT}:{key}: unknown key{suggestion}")

    region = raw.get(REGION_KEY, "")
    if not _REGION.fullmatch(region):
        problems.append(f"{REGION_KEY} = {region!r}: must be an AWS region name such as eu-west-1")
    elif region not in REGISTRY_ACCOUNTS:
        problems.append(
            f"{REGION_KEY} = {region!r}: SageMaker publishes no built-in XGBoost image there; regions "
            f"that have one: {', '.join(sorted(REGISTRY_ACCOUNTS))}"
        )

    problems.extend(_default_tag_problems(raw.get(DEFAULT_TAGS_KEY), stack))

    transform = TransformSettings(
        memory_mb=read(TRANSFORM_MEMORY),
        timeout_seconds=read(TRANSFORM_TIMEOUT),
        batch_size=read(TRANSFORM_BATCH_SIZE),
        batching_window_seconds=read(TRANSFORM_BATCHING_WINDOW),
        max_concurrency=read(TRANSFORM_MAX_CONCURRENCY),
    )
    if transform.batch_size > SQS_UNWINDOWED_MAX_BATCH and transform.batching_window_seconds < 1:
        problems.append(
            f"{PROJECT}:{TRANSFORM_BATCH_SIZE.key} = {transform.batch_size}: more than "
            f"{SQS_UNWINDOWED_MAX_BATCH} needs {TRANSFORM_BATCHING_WINDOW.key} >= 1 (it is "
            f"{transform.batching_window_seconds})"
        )

    minimum_visibility = (
        VISIBILITY_TIMEOUT_FACTOR * transform.timeout_seconds + transform.batching_window_seconds
    )
    visibility = read(VISIBILITY_TIMEOUT)
    if visibility is None:
        visibility = minimum_visibility
    elif visibility < minimum_visibility:
        problems.append(
            f"{PROJECT}:{VISIBILITY_TIMEOUT.key} = {visibility}: must be at least "
            f"{VISIBILITY_TIMEOUT_FACTOR} x "
            f"{TRANSFORM_TIMEOUT.key} + {TRANSFORM_BATCHING_WINDOW.key} = {minimum_visibility}, or unset "
            "to derive it"
        )

    training = _training_settings(read, own, problem_type=read(PROBLEM_TYPE))
    endpoint = _endpoint_settings(read, own)
    functions = FunctionRuntime(
        runtime=read(LAMBDA_RUNTIME),
        architecture=read(LAMBDA_ARCHITECTURE),
        powertools_layer_version=read(POWERTOOLS_LAYER_VERSION),
        log_level=read(LOG_LEVEL),
        log_retention_days=read(LOG_RETENTION),
        tracing=read(TRACING),
    )
    settings = Settings(
        project=PROJECT,
        stack=stack,
        region=region,
        data=DataSettings(
            raw_prefix=read(RAW_PREFIX),
            raw_suffix=read(RAW_SUFFIX),
            protect=read(PROTECT_DATA),
            key_deletion_window_days=read(KEY_DELETION_WINDOW),
            noncurrent_version_days=read(NONCURRENT_VERSION_DAYS),
            incomplete_upload_days=read(INCOMPLETE_UPLOAD_DAYS),
            access_log_days=read(ACCESS_LOG_DAYS),
        ),
        queue=QueueSettings(
            max_receive_count=read(MAX_RECEIVE_COUNT),
            visibility_timeout_seconds=visibility,
            raw_message_delivery=read(RAW_MESSAGE_DELIVERY),
        ),
        functions=functions,
        transform=transform,
        dataset=DatasetSettings(
            target_column=read(TARGET_COLUMN),
            problem_type=read(PROBLEM_TYPE),
            validation_percent=read(VALIDATION_PERCENT),
            max_rejected_rows_percent=read(MAX_REJECTED_ROWS_PERCENT),
            max_categories=read(MAX_CATEGORIES),
            min_labeled_rows=read(MIN_LABELED_ROWS),
            part_file_mb=read(PART_FILE_MB),
        ),
        training=training,
        endpoint=endpoint,
        champion_store=read(CHAMPION_STORE),
        prediction=PredictionSettings(
            memory_mb=read(PREDICT_MEMORY),
            timeout_seconds=read(PREDICT_TIMEOUT),
            max_records=read(PREDICT_MAX_RECORDS_OPTION),
        ),
        api=ApiSettings(
            throttle_rate_per_second=read(API_THROTTLE_RATE_OPTION),
            throttle_burst=read(API_THROTTLE_BURST_OPTION),
            quota_per_day=read(API_QUOTA_PER_DAY_OPTION),
            tracing=read(API_TRACING) or functions.tracing,
            logging_level=read(API_LOGGING_LEVEL),
            cloudwatch_role=read(API_CLOUDWATCH_ROLE),
            authorization=read(API_AUTHORIZATION),
            waf_rate_limit=read(API_WAF_RATE_LIMIT),
            waf_window_seconds=read(API_WAF_WINDOW),
        ),
        alarm_email=read(ALARM_EMAIL),
    )
    if settings.data.protect and settings.alarm_email is not None:
        problems.extend(_production_alarm_problems(settings.alarm_email))
    if problems:
        raise InvalidStackConfig(problems)
    return settings


def _default_tag_problems(raw: str | None, stack: str) -> list[str]:
    """Every resource is tagged with the project and the stack, through the provider's default tags."""
    expected = {"project": PROJECT, "stack": stack}
    try:
        document = json.loads(raw) if raw is not None else {}
        tags = document.get("tags") if isinstance(document, dict) else None
    except json.JSONDecodeError:
        tags = None
    tags = tags if isinstance(tags, dict) else {}
    wrong = [tag for tag in REQUIRED_TAGS if tags.get(tag) != expected[tag]]
    if not wrong:
        return []
    commands = " and ".join(
        f"pulumi config set --path {DEFAULT_TAGS_KEY}.tags.{tag} {expected[tag]}" for tag in wrong
    )
    return [
        f"{DEFAULT_TAGS_KEY} = {raw!r}: must tag every resource with "
        f"{', '.join(f'{tag}={expected[tag]}' for tag in REQUIRED_TAGS)}, so its cost can be allocated: "
        f"{commands}"
    ]


def _production_alarm_problems(email: str) -> list[str]:
    """A stack that protects its data is one whose alarms someone must read: not an example address."""
    fix = f"set the on-call address: pulumi config set {ALARM_EMAIL.key} <address>"
    domain = email.rpartition("@")[2].lower()
    reserved = {domain, domain.split(".", 1)[-1]} & RESERVED_EXAMPLE_DOMAINS
    if reserved or domain.endswith(RESERVED_TOP_LEVEL_DOMAINS):
        return [
            f"{PROJECT}:{ALARM_EMAIL.key} = {email!r}: {domain} is reserved for examples (RFC 2606), so no "
            f"alarm would reach anyone; {fix}"
        ]
    return []


def _training_settings(read: _Reader, own: Mapping[str, str], *, problem_type: str) -> TrainingSettings:
    problems = read.problems
    max_runtime = read(TRAINING_MAX_RUNTIME)
    max_wait = read(TRAINING_MAX_WAIT)
    use_spot = read(TRAINING_USE_SPOT)
    training = TrainingSettings(
        xgboost_version=read(XGBOOST_VERSION),
        instance_type=read(TRAINING_INSTANCE_TYPE),
        instance_count=read(TRAINING_INSTANCE_COUNT),
        volume_gb=read(TRAINING_VOLUME_GB),
        max_runtime_seconds=max_runtime,
        max_jobs=read(TUNING_MAX_JOBS),
        max_parallel_jobs=read(TUNING_MAX_PARALLEL_JOBS),
        quiet_seconds=read(TUNING_QUIET_SECONDS),
        jobs_per_day=read(TUNING_JOBS_PER_DAY),
        strategy=read(TUNING_STRATEGY),
        ranges=read(TUNING_RANGES),
        objective_metric=None if (metric := read(TUNING_OBJECTIVE_METRIC)) == "auto" else metric,
        early_stopping=read(TUNING_EARLY_STOPPING),
        use_spot=use_spot,
        max_wait_seconds=max_wait or max(min(2 * max_runtime, SPOT_MAX_WAIT_SECONDS), max_runtime),
        warm_pool_seconds=read(TRAINING_WARM_POOL),
    )

    def refuse(option: Option[Any], value: Any, why: str) -> None:
        problems.append(f"{PROJECT}:{option.key} = {value}: {why}")

    refused_reason = REFUSED_XGBOOST_VERSIONS.get(training.xgboost_version)
    if refused_reason is not None:
        refuse(
            XGBOOST_VERSION,
            training.xgboost_version,
            f"{refused_reason}: use 1.2-2 or later ({', '.join(XGBOOST_VERSIONS)})",
        )
    # A grid's job count is its combinations, not tuningMaxJobs.
    if training.strategy != "Grid" and training.max_parallel_jobs > training.max_jobs:
        refuse(
            TUNING_MAX_PARALLEL_JOBS,
            training.max_parallel_jobs,
            f"must not exceed {TUNING_MAX_JOBS.key} = {training.max_jobs}",
        )
    if training.objective_metric is not None:
        if problem_type == "auto":
            refuse(
                TUNING_OBJECTIVE_METRIC,
                training.objective_metric,
                f"needs an explicit {PROBLEM_TYPE.key} (binary, multiclass or regression), not auto",
            )
        elif metric_for(problem_type, training.objective_metric) is None:
            fitting = ", ".join(m.name for m in METRICS_BY_PROBLEM[problem_type])
            refuse(
                TUNING_OBJECTIVE_METRIC,
                training.objective_metric,
                f"does not measure a {problem_type} problem ({PROBLEM_TYPE.key}); use one of {fitting}",
            )
        elif problem_type == "binary" and training.objective_metric in BROKEN_BINARY_METRICS.get(
            training.xgboost_version, ()
        ):
            # See BROKEN_BINARY_METRICS: release-3.0.5 train.py:372 passes custom_metric=.
            refuse(
                TUNING_OBJECTIVE_METRIC,
                training.objective_metric,
                f"with {PROBLEM_TYPE.key} = binary and {XGBOOST_VERSION.key} = {training.xgboost_version} "
                "is that of an all-positive classifier: the container passes its scikit-learn metrics to "
                "xgboost as custom_metric (train.py:372), which gets probabilities, and thresholds them at "
                "0 as if they were margins; use validation:auc, validation:logloss or validation:error "
                f"(computed by xgboost itself), or {XGBOOST_VERSION.key} 1.7-1",
            )
    numeric = sorted(r.name for r in training.ranges.values() if not r.categorical)
    # Strategy rules of the SageMaker developer guide, "Understand the hyperparameter tuning strategies":
    # grid search takes categorical ranges only; Hyperband stops jobs itself, so SageMaker's early
    # stopping must be off.
    if (
        training.strategy == "Grid"
        and not numeric
        and grid_combinations(training.ranges) > GRID_MAX_COMBINATIONS
    ):
        refuse(
            TUNING_RANGES,
            "(grid)",
            f"{grid_combinations(training.ranges)} combinations exceed SageMaker's {GRID_MAX_COMBINATIONS} "
            "training jobs of a grid search",
        )
    ranges_bytes = len(json.dumps(parameter_ranges(training.ranges), separators=(",", ":")))
    if ranges_bytes > TUNING_RANGES_MAX_BYTES:
        refuse(
            TUNING_RANGES,
            "(too many values)",
            f"the ranges take {ranges_bytes} bytes of the transform's 4 KB environment, more than the "
            f"{TUNING_RANGES_MAX_BYTES} left for them: list fewer values",
        )
    if training.strategy == "Hyperband" and set(training.ranges) <= {NUM_ROUND}:
        refuse(TUNING_RANGES, "(Hyperband)", "Hyperband sets num_round itself: tune at least one other range")
    if use_spot and max_runtime > SPOT_MAX_WAIT_SECONDS:
        refuse(
            TRAINING_MAX_RUNTIME,
            max_runtime,
            f"with {TRAINING_USE_SPOT.key} = true must be at most {SPOT_MAX_WAIT_SECONDS}: SageMaker limits "
            "the spot wait of built-in algorithms without checkpoints to an hour",
        )
    if use_spot and max_wait is not None and max_wait > SPOT_MAX_WAIT_SECONDS:
        refuse(TRAINING_MAX_WAIT, max_wait, f"must be at most {SPOT_MAX_WAIT_SECONDS} with spot training")
    if training.strategy == "Grid" and numeric:
        refuse(
            TUNING_STRATEGY,
            "Grid",
            f"needs every range as values; {', '.join(numeric)} in {TUNING_RANGES.key} are min/max ranges",
        )
    if training.strategy == "Hyperband" and training.early_stopping and TUNING_EARLY_STOPPING.key in own:
        refuse(
            TUNING_EARLY_STOPPING, "true", "must be false with Hyperband, which stops training jobs itself"
        )
    if use_spot and max_wait is not None and max_wait < max_runtime:
        refuse(TRAINING_MAX_WAIT, max_wait, f"must be at least {TRAINING_MAX_RUNTIME.key} = {max_runtime}")
    if max_wait is not None and not use_spot:
        refuse(TRAINING_MAX_WAIT, max_wait, f"applies only with {TRAINING_USE_SPOT.key} = true")
    if use_spot and training.warm_pool_seconds:
        refuse(
            TRAINING_WARM_POOL,
            training.warm_pool_seconds,
            f"warm pools cannot be used with {TRAINING_USE_SPOT.key} = true",
        )
    return training


def _endpoint_settings(read: _Reader, own: Mapping[str, str]) -> EndpointSettings:
    endpoint = EndpointSettings(
        mode=read(ENDPOINT_MODE),
        memory_mb=read(ENDPOINT_MEMORY),
        max_concurrency=read(ENDPOINT_MAX_CONCURRENCY),
        instance_type=read(ENDPOINT_INSTANCE_TYPE),
        min_instances=read(ENDPOINT_MIN_INSTANCES),
        max_instances=read(ENDPOINT_MAX_INSTANCES),
        invocations_per_instance=read(ENDPOINT_INVOCATIONS_TARGET),
        capture_percent=read(ENDPOINT_CAPTURE_PERCENT),
        bake_seconds=read(ENDPOINT_BAKE_SECONDS),
        contest_instance_type=read(CONTEST_INSTANCE_TYPE),
    )
    if endpoint.min_instances > endpoint.max_instances:
        read.problems.append(
            f"{PROJECT}:{ENDPOINT_MIN_INSTANCES.key} = {endpoint.min_instances}: must not exceed "
            f"{ENDPOINT_MAX_INSTANCES.key} = {endpoint.max_instances}"
        )
    # Keys of the other mode would be silently ignored: name them instead.
    other_mode = (
        (
            ENDPOINT_INSTANCE_TYPE,
            ENDPOINT_MIN_INSTANCES,
            ENDPOINT_MAX_INSTANCES,
            ENDPOINT_INVOCATIONS_TARGET,
            ENDPOINT_CAPTURE_PERCENT,
            ENDPOINT_BAKE_SECONDS,
        )
        if endpoint.serverless
        else (ENDPOINT_MEMORY, ENDPOINT_MAX_CONCURRENCY)
    )
    for option in other_mode:
        if option.key in own:
            read.problems.append(
                f"{PROJECT}:{option.key}: does not apply to {ENDPOINT_MODE.key} = {endpoint.mode}"
            )
    return endpoint


def config_reference_markdown() -> str:
    """The README's config table, generated from `OPTIONS` so the two cannot drift apart."""
    rows = [
        "| key | default | allowed | description |",
        "| --- | --- | --- | --- |",
        f"| `{REGION_KEY}` | (required) | an AWS region name | Region the stack deploys to. |",
        f'| `{DEFAULT_TAGS_KEY}` | (required) | `{{"tags": {{"project": "{PROJECT}", "stack": '
        '"<stack>"}}` and any more tags | Tags the provider puts on every resource, so costs can be '
        "allocated by project and stack. |",
    ]
    rows += [
        f"| `{PROJECT}:{o.key}` | `{o.documented_default}` | {o.allowed} | {o.description} |" for o in OPTIONS
    ]
    return "\n".join(rows)


def read_stack_config() -> dict[str, str]:
    """The stack's config as the Pulumi engine hands it to the program: `namespace:key` -> string."""
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in merged.items()}
