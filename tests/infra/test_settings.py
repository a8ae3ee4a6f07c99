"""Stack config: defaults, every bad value refused with its key named, before any resource exists."""

from __future__ import annotations

import json
import re

import pytest

from settings import (
    OPTIONS,
    PROJECT,
    XGBOOST_VERSION,
    XGBOOST_VERSIONS,
    InvalidStackConfig,
    config_reference_markdown,
    load_settings,
)
from tests.support.stacks import STACKS, config_for
from tools.mockrun import PROJECT_DIR, ProgramFailed, run_program, stack_config

# The least a stack config holds: its region and the tags of the stack "test".
REGION = {
    "aws:region": "eu-west-1",
    "aws:defaultTags": json.dumps({"tags": {"project": PROJECT, "stack": "test"}}),
}


def raw(**keys: str) -> dict[str, str]:
    return {**REGION, **{f"{PROJECT}:{key}": value for key, value in keys.items()}}


def problems(**keys: str) -> list[str]:
    with pytest.raises(InvalidStackConfig) as caught:
        load_settings(raw(**keys), stack="test")
    return caught.value.problems


def test_every_key_has_a_default_that_is_itself_valid() -> None:
    settings = load_settings(REGION, stack="test")
    assert settings.data.raw_prefix == "raw/" and settings.data.raw_suffix == ".csv"
    assert settings.queue.visibility_timeout_seconds == 6 * settings.transform.timeout_seconds
    for option in OPTIONS:
        assert option.default is None or option.valid(option.default), option.key
        assert option.description.endswith("."), option.key


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stack_files_are_valid(stack: str) -> None:
    # As a team deploys them: with its own alarm address where the file holds a placeholder.
    load_settings(config_for(stack), stack=stack)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rawPrefix", "raw"),  # no trailing slash: would also match "rawdata/"
        ("rawPrefix", "/raw/"),
        ("rawPrefix", "raw data/"),
        ("rawPrefix", "processed/"),  # the pipeline's own output would trigger it again
        ("rawPrefix", "rejected/in/"),
        ("rawSuffix", "csv"),
        ("rawSuffix", ".c sv"),
        ("transformBatchSize", "0"),
        ("transformBatchSize", "10001"),
        ("transformBatchingWindowSeconds", "301"),
        ("transformBatchingWindowSeconds", "-1"),
        ("transformMaxConcurrency", "1"),
        ("transformTimeoutSeconds", "901"),
        ("transformMemoryMb", "64"),
        ("queueMaxReceiveCount", "0"),
        ("queueVisibilityTimeoutSeconds", "43201"),
        ("logRetentionDays", "10"),
        ("lambdaRuntime", "python3.11"),
        ("lambdaArchitecture", "arm"),
        ("protectData", "yes"),
        ("kmsKeyDeletionWindowDays", "6"),
        ("alarmEmail", "oncall"),
        ("transformMemoryMb", "lots"),
        ("predictMemoryMb", "127"),
        ("predictMemoryMb", "10241"),
        ("predictTimeoutSeconds", "0"),
        # API Gateway's integration timeout is 29 s: the function must answer before it.
        ("predictTimeoutSeconds", "29"),
        ("predictMaxRecords", "0"),
        ("predictMaxRecords", "100001"),
        ("apiThrottleRatePerSecond", "0"),
        ("apiThrottleRatePerSecond", "10001"),
        ("apiThrottleBurst", "0"),
        ("apiThrottleBurst", "-5"),
        ("apiQuotaPerDay", "0"),
        ("apiQuotaPerDay", "1000000001"),
        ("apiTracing", "on"),
        ("tracing", "yes"),
        ("apiLoggingLevel", "DEBUG"),
        ("apiLoggingLevel", "error"),
        ("apiCloudWatchRole", "none"),
        ("minLabeledRows", "1"),
        ("minLabeledRows", "1000000001"),
        ("minLabeledRows", "some"),
        ("xgboostVersion", "2.0-1"),
        # A hosting-only type: batch transform has no serverless or ml.t2 instances.
        ("contestInstanceType", "ml.t2.medium"),
        ("contestInstanceType", "m5.large"),
    ],
)
def test_bad_value_is_refused_naming_key_value_and_what_is_allowed(key: str, value: str) -> None:
    (problem,) = problems(**{key: value})
    assert problem.startswith(f"{PROJECT}:{key} = {value!r}: must be ")


def test_batches_over_ten_need_a_batching_window() -> None:
    (problem,) = problems(transformBatchSize="11")
    assert "transformBatchSize = 11" in problem and "transformBatchingWindowSeconds >= 1" in problem
    load_settings(raw(transformBatchSize="11", transformBatchingWindowSeconds="1"), stack="test")


def test_hand_set_visibility_timeout_must_keep_the_six_times_rule() -> None:
    (problem,) = problems(transformTimeoutSeconds="300", queueVisibilityTimeoutSeconds="1799")
    assert problem.startswith(f"{PROJECT}:queueVisibilityTimeoutSeconds = 1799: must be at least")
    assert "= 1800" in problem
    settings = load_settings(
        raw(transformTimeoutSeconds="300", queueVisibilityTimeoutSeconds="1800"), stack="test"
    )
    assert settings.queue.visibility_timeout_seconds == 1800


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    (problem,) = problems(logRetentionDay="14")
    assert problem == f"{PROJECT}:logRetentionDay: unknown key (did you mean logRetentionDays?)"


def test_missing_region_is_refused() -> None:
    with pytest.raises(InvalidStackConfig) as caught:
        load_settings({key: value for key, value in REGION.items() if key != "aws:region"}, stack="test")
    assert caught.value.problems == ["aws:region = '': must be an AWS region name such as eu-west-1"]


def test_every_problem_is_listed_in_one_error() -> None:
    found = problems(rawPrefix="raw", transformBatchSize="0", logRetentionDays="2")
    assert {p.split(" = ")[0] for p in found} == {
        f"{PROJECT}:rawPrefix",
        f"{PROJECT}:transformBatchSize",
        f"{PROJECT}:logRetentionDays",
    }


def test_program_refuses_a_bad_stack_before_registering_any_resource() -> None:
    config = config_for("dev", {"rawSuffix": "csv", "transformBatchSize": "20000"})
    with pytest.raises(ProgramFailed) as caught:
        run_program("dev", config)
    assert f"{PROJECT}:rawSuffix = 'csv'" in str(caught.value)
    assert f"{PROJECT}:transformBatchSize = '20000'" in str(caught.value)
    assert caught.value.resources == []


def test_readme_config_reference_is_the_settings_own() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    assert config_reference_markdown() in readme


def test_readme_documents_every_key_once() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    for option in OPTIONS:
        assert len(re.findall(rf"`{PROJECT}:{option.key}`", readme)) == 1, option.key


# --- training and tuning: rules that span keys ---------------------------------------------------------

# Tunable shares in (0, 1]: any value list of them is valid.
TUNABLE_SHARES = ("eta", "subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode")
TUNABLE_WEIGHTS = ("alpha", "gamma", "lambda", "min_child_weight")
NUMERIC_DEFAULTS_DROPPED = {
    "eta": None,
    "min_child_weight": None,
    "subsample": None,
    "colsample_bytree": None,
    "alpha": None,
    "lambda": None,
}


@pytest.mark.parametrize(
    ("keys", "message_start", "fragment"),
    [
        pytest.param(
            {"tuningMaxJobs": "3", "tuningMaxParallelJobs": "5"},
            f"{PROJECT}:tuningMaxParallelJobs = 5: ",
            "must not exceed tuningMaxJobs = 3",
            id="more-parallel-than-total-jobs",
        ),
        pytest.param(
            {"tuningRanges": '{"eta": {"min": 0.4, "max": 0.1}}'},
            f"{PROJECT}:tuningRanges = ",
            "eta: min 0.4 must be below max 0.1",
            id="range-min-above-max",
        ),
        pytest.param(
            {"tuningRanges": '{"learning_rate": {"min": 0.1, "max": 0.3}}'},
            f"{PROJECT}:tuningRanges = ",
            "'learning_rate' is not a tunable XGBoost hyperparameter",
            id="unknown-hyperparameter",
        ),
        pytest.param(
            {"tuningStrategy": "Grid", "tuningRanges": '{"max_depth": {"values": [4, 6]}}'},
            f"{PROJECT}:tuningStrategy = Grid: ",
            "needs every range as values",
            id="grid-with-numeric-ranges",
        ),
        pytest.param(
            {"problemType": "regression", "tuningObjectiveMetric": "validation:auc"},
            f"{PROJECT}:tuningObjectiveMetric = validation:auc: ",
            "does not measure a regression problem",
            id="metric-of-another-problem-type",
        ),
        pytest.param(
            {"tuningObjectiveMetric": "validation:logloss"},
            f"{PROJECT}:tuningObjectiveMetric = validation:logloss: ",
            "needs an explicit problemType",
            id="metric-with-problem-type-auto",
        ),
        pytest.param(
            {"tuningObjectiveMetric": "validation:r2", "problemType": "regression"},
            f"{PROJECT}:tuningObjectiveMetric = 'validation:r2': must be one of ",
            "",
            id="metric-the-algorithm-does-not-tune",
        ),
        pytest.param(
            {"trainingUseSpot": "true", "trainingWarmPoolSeconds": "600"},
            f"{PROJECT}:trainingWarmPoolSeconds = 600: ",
            "cannot be used with trainingUseSpot = true",
            id="spot-with-warm-pool",
        ),
        pytest.param(
            {
                "trainingUseSpot": "true",
                "trainingMaxRuntimeSeconds": "3600",
                "trainingMaxWaitSeconds": "1800",
            },
            f"{PROJECT}:trainingMaxWaitSeconds = 1800: ",
            "must be at least trainingMaxRuntimeSeconds = 3600",
            id="spot-wait-shorter-than-runtime",
        ),
        pytest.param(
            {"trainingMaxWaitSeconds": "7200"},
            f"{PROJECT}:trainingMaxWaitSeconds = 7200: ",
            "applies only with trainingUseSpot = true",
            id="wait-without-spot",
        ),
        pytest.param(
            {
                "tuningStrategy": "Random",
                "tuningRanges": json.dumps(
                    {
                        name: {"values": list(range(1, 31))}
                        for name in ("max_depth", "num_round", "max_delta_step")
                    }
                    | {name: {"values": [i / 100 for i in range(70, 100)]} for name in TUNABLE_SHARES}
                    | {name: {"values": [1.234567 * i for i in range(30)]} for name in TUNABLE_WEIGHTS}
                ),
            },
            f"{PROJECT}:tuningRanges = (too many values): ",
            "list fewer values",
            id="ranges-too-big-for-the-functions-environment",
        ),
        pytest.param(
            {"trainingUseSpot": "true", "trainingMaxRuntimeSeconds": "7200"},
            f"{PROJECT}:trainingMaxRuntimeSeconds = 7200: ",
            "must be at most 3600",
            id="spot-runtime-beyond-the-uncheckpointed-wait-limit",
        ),
        pytest.param(
            {"trainingUseSpot": "true", "trainingMaxWaitSeconds": "5400"},
            f"{PROJECT}:trainingMaxWaitSeconds = 5400: ",
            "must be at most 3600 with spot training",
            id="spot-wait-over-an-hour",
        ),
        pytest.param(
            {
                "tuningStrategy": "Hyperband",
                "tuningRanges": json.dumps(
                    {**NUMERIC_DEFAULTS_DROPPED, "max_depth": None, "num_round": {"min": 10, "max": 100}}
                ),
            },
            f"{PROJECT}:tuningRanges = (Hyperband): ",
            "tune at least one other range",
            id="hyperband-with-only-num-round",
        ),
        pytest.param(
            {"tuningStrategy": "Hyperband", "tuningEarlyStopping": "true"},
            f"{PROJECT}:tuningEarlyStopping = true: ",
            "must be false with Hyperband",
            id="hyperband-with-sagemaker-early-stopping",
        ),
        pytest.param(
            {"trainingWarmPoolSeconds": "3601"},
            f"{PROJECT}:trainingWarmPoolSeconds = '3601': must be ",
            "",
            id="warm-pool-over-an-hour",
        ),
    ],
)
def test_bad_training_combination_is_refused_naming_the_key(
    keys: dict[str, str], message_start: str, fragment: str
) -> None:
    (problem,) = problems(**keys)
    assert problem.startswith(message_start), problem
    assert fragment in problem, problem


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param({"tuningStrategy": "Hyperband"}, id="hyperband-early-stopping-left-default"),
        pytest.param({"tuningStrategy": "Hyperband", "tuningEarlyStopping": "false"}, id="hyperband"),
        pytest.param(
            {
                "tuningStrategy": "Grid",
                "tuningRanges": json.dumps(
                    {
                        **NUMERIC_DEFAULTS_DROPPED,
                        "max_depth": {"values": [4, 6]},
                        "num_round": {"values": [100, 200]},
                    }
                ),
            },
            id="grid-over-values",
        ),
        pytest.param(
            {
                "trainingUseSpot": "true",
                "trainingMaxRuntimeSeconds": "3600",
                "trainingMaxWaitSeconds": "3600",
            },
            id="spot-wait-equal-to-runtime",
        ),
        pytest.param({"problemType": "binary", "tuningObjectiveMetric": "validation:logloss"}, id="metric"),
        pytest.param({"trainingWarmPoolSeconds": "3600"}, id="warm-pool"),
    ],
)
def test_good_training_combination_is_accepted(keys: dict[str, str]) -> None:
    load_settings(raw(**keys), stack="test")


@pytest.mark.parametrize("version", ["1.0-1", "1.2-1"])
def test_xgboost_versions_without_a_json_answer_are_refused_saying_why(version: str) -> None:
    # Their endpoints answer text/csv whatever Accept says: the predict function could not read an answer.
    (problem,) = problems(xgboostVersion=version)
    assert problem.startswith(f"{PROJECT}:xgboostVersion = {version}: "), problem
    why = "answers text/csv whatever Accept says; the predict function reads the JSON answer introduced in "
    assert f"{why}1.2-2" in problem, problem
    assert "use 1.2-2 or later" in problem, problem
    assert version not in XGBOOST_VERSIONS, "a refused version is not in the allowed list"
    assert f"one of {', '.join(XGBOOST_VERSIONS)}" == XGBOOST_VERSION.allowed


def test_xgboost_1_0_1_is_refused_also_for_reading_empty_fields_as_zero() -> None:
    (problem,) = problems(xgboostVersion="1.0-1")
    assert "empty (missing) CSV field as 0.0" in problem, problem


@pytest.mark.parametrize("version", XGBOOST_VERSIONS)
def test_every_allowed_xgboost_version_is_accepted(version: str) -> None:
    assert load_settings(raw(xgboostVersion=version), stack="test").training.xgboost_version == version


def test_xgboost_version_defaults_to_3_0_5() -> None:
    assert load_settings(REGION, stack="test").training.xgboost_version == "3.0-5"
    for stack in STACKS:
        assert load_settings(config_for(stack), stack=stack).training.xgboost_version == "3.0-5", stack


@pytest.mark.parametrize("metric", ["validation:accuracy", "validation:f1"])
@pytest.mark.parametrize("version", [{}, {"xgboostVersion": "3.0-5"}], ids=["default", "3.0-5"])
def test_binary_metrics_that_3_0_5_computes_wrong_are_refused_naming_both_keys(
    metric: str, version: dict[str, str]
) -> None:
    # release-3.0.5 train.py:372 passes custom_metric=: the container's accuracy and f1 threshold
    # probabilities at 0, so every row counts as positive.
    (problem,) = problems(problemType="binary", tuningObjectiveMetric=metric, **version)
    assert problem.startswith(f"{PROJECT}:tuningObjectiveMetric = {metric}: "), problem
    assert "problemType = binary" in problem and "xgboostVersion = 3.0-5" in problem, problem
    assert "custom_metric" in problem and "all-positive" in problem, problem
    assert "validation:auc, validation:logloss or validation:error" in problem, problem


@pytest.mark.parametrize(
    "keys",
    [
        # xgboost's own metrics are not affected on 3.0-5.
        *(
            {"problemType": "binary", "tuningObjectiveMetric": m}
            for m in ("validation:auc", "validation:error")
        ),
        # Multiclass accuracy takes the argmax, the same of probabilities as of margins.
        {"problemType": "multiclass", "tuningObjectiveMetric": "validation:accuracy"},
        # Versions up to 1.7-1 pass feval=, which xgboost calls with margins.
        *(
            {"problemType": "binary", "tuningObjectiveMetric": m, "xgboostVersion": v}
            for m in ("validation:accuracy", "validation:f1")
            for v in ("1.2-2", "1.3-1", "1.5-1", "1.7-1")
        ),
    ],
    ids=lambda keys: "-".join(keys.values()),
)
def test_metrics_the_container_computes_right_are_accepted(keys: dict[str, str]) -> None:
    load_settings(raw(**keys), stack="test")


def test_spot_wait_defaults_to_twice_the_runtime() -> None:
    training = load_settings(
        raw(trainingUseSpot="true", trainingMaxRuntimeSeconds="1800"), stack="test"
    ).training
    assert training.use_spot and training.max_wait_seconds == 3600


# --- the dataset keys ------------------------------------------------------------------------------------


def test_min_labeled_rows_defaults_to_50_and_is_read() -> None:
    assert load_settings(REGION, stack="test").dataset.min_labeled_rows == 50
    assert load_settings(raw(minLabeledRows="2"), stack="test").dataset.min_labeled_rows == 2
    assert load_settings(raw(minLabeledRows="1000000000"), stack="test").dataset.min_labeled_rows == 10**9
    keys = [option.key for option in OPTIONS]
    assert keys.index("minLabeledRows") == keys.index("maxCategories") + 1


@pytest.mark.parametrize("key", ["targetColumn", "problemType", "maxCategories", "minLabeledRows"])
def test_dataset_keys_are_described_as_defaults_a_dataset_json_may_override(key: str) -> None:
    (option,) = [o for o in OPTIONS if o.key == key]
    assert "dataset.json" in option.description, key


def test_descriptions_say_how_auto_problem_types_and_the_split_are_decided() -> None:
    described = {o.key: o.description for o in OPTIONS}
    assert "whole numbers with at most 10 distinct values" in described["problemType"]
    assert "a text column with more is ignored as an identifier" in described["maxCategories"]
    assert "digest of each row's own fields" in described["validationPercent"]
    assert "every class in both splits" in described["validationPercent"]
    for key in ("targetColumn", "problemType", "ignoreColumns", "maxCategories", "minLabeledRows"):
        assert key in described["targetColumn"], key


# --- the prediction API ----------------------------------------------------------------------------------


def test_contest_instance_type_defaults_to_ml_m5_large_and_is_read() -> None:
    assert load_settings(REGION, stack="test").endpoint.contest_instance_type == "ml.m5.large"
    chosen = load_settings(raw(contestInstanceType="ml.c5.xlarge"), stack="test")
    assert chosen.endpoint.contest_instance_type == "ml.c5.xlarge"


def test_prediction_api_defaults() -> None:
    settings = load_settings(REGION, stack="test")
    prediction, api = settings.prediction, settings.api
    assert (prediction.memory_mb, prediction.timeout_seconds, prediction.max_records) == (512, 10, 1000)
    assert (api.throttle_rate_per_second, api.throttle_burst, api.quota_per_day) == (10, 20, 10_000)
    assert (api.tracing, api.logging_level, api.cloudwatch_role) == (False, "ERROR", "create")
    assert api.creates_cloudwatch_role


def test_predict_timeout_stays_below_the_gateways_29_seconds() -> None:
    assert load_settings(raw(predictTimeoutSeconds="28"), stack="test").prediction.timeout_seconds == 28
    (problem,) = problems(predictTimeoutSeconds="29")
    assert "must be an integer from 1 to 28" in problem


def test_prediction_api_keys_are_read() -> None:
    settings = load_settings(
        raw(
            predictMemoryMb="1024",
            predictTimeoutSeconds="20",
            predictMaxRecords="5000",
            apiThrottleRatePerSecond="100",
            apiThrottleBurst="50",
            apiQuotaPerDay="1",
            apiTracing="true",
            apiLoggingLevel="OFF",
            apiCloudWatchRole="existing",
        ),
        stack="test",
    )
    assert (settings.prediction.memory_mb, settings.prediction.timeout_seconds) == (1024, 20)
    assert settings.prediction.max_records == 5000
    assert (settings.api.throttle_rate_per_second, settings.api.throttle_burst) == (100, 50)
    assert settings.api.quota_per_day == 1 and settings.api.tracing and settings.api.logging_level == "OFF"
    assert not settings.api.creates_cloudwatch_role


def test_prod_traces_its_api_and_dev_does_not() -> None:
    assert load_settings(config_for("prod"), stack="prod").api.tracing
    assert not load_settings(config_for("dev"), stack="dev").api.tracing


def test_tracing_is_off_by_default_and_traces_the_api_stage_too() -> None:
    assert not load_settings(REGION, stack="test").functions.tracing
    traced = load_settings(raw(tracing="true"), stack="test")
    # A function's trace starts at the API that called it: the stage traces whatever apiTracing says.
    assert traced.functions.tracing and traced.api.tracing
    assert load_settings(raw(tracing="true", apiTracing="false"), stack="test").api.tracing


# --- the alarm address of a stack that protects its data -----------------------------------------------


def test_the_shipped_prod_file_refuses_its_placeholder_alarm_address() -> None:
    with pytest.raises(InvalidStackConfig) as caught:
        load_settings(stack_config("prod"), stack="prod")
    assert str(caught.value).count(f"{PROJECT}:alarmEmail = 'ml-platform-oncall@example.com'") == 1
    assert "reserved for examples (RFC 2606)" in str(caught.value)


@pytest.mark.parametrize(
    "address",
    ["oncall@example.org", "oncall@mail.example.net", "oncall@team.test", "a@host.invalid", "a@b.localhost"],
)
def test_an_rfc_2606_address_is_refused_where_data_is_protected(address: str) -> None:
    with pytest.raises(InvalidStackConfig, match=rf"alarmEmail = '{re.escape(address)}': .*RFC 2606"):
        load_settings(config_for("prod", {"alarmEmail": address}), stack="prod")
    # A disposable stack may keep an example address while trying things out.
    load_settings(config_for("dev", {"alarmEmail": address}), stack="dev")


# --- the project and stack tags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tags",
    [None, "{}", '{"tags": {"project": "serverless-ml-pipeline"}}', '{"tags": {"stack": "dev"}}', "not json"],
)
def test_every_resource_must_be_tagged_with_project_and_stack(tags: str | None) -> None:
    config = {key: value for key, value in config_for("dev").items() if key != "aws:defaultTags"}
    if tags is not None:
        config["aws:defaultTags"] = tags
    with pytest.raises(InvalidStackConfig) as caught:
        load_settings(config, stack="staging")
    (problem,) = caught.value.problems
    assert problem.startswith("aws:defaultTags = ")
    assert "pulumi config set --path aws:defaultTags.tags.stack staging" in problem


def test_more_tags_are_welcome() -> None:
    tags = {"tags": {"project": PROJECT, "stack": "dev", "cost-center": "ml-42"}}
    load_settings(config_for("dev", {"aws:defaultTags": json.dumps(tags)}), stack="dev")
