"""A function deployed without what it needs refuses to start, naming what is missing or unreadable."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from predict.environment import load_environment as predict_environment

from deploy.environment import load_environment as deploy_environment
from shared.environment import MissingEnvironment
from transform.environment import load_environment as transform_environment
from tune.environment import load_environment as tune_environment


@pytest.mark.parametrize(
    ("load", "function"),
    [
        (transform_environment, "transform"),
        (tune_environment, "tune"),
        (deploy_environment, "deploy"),
        (predict_environment, "predict"),
    ],
)
def test_an_empty_environment_is_refused_naming_every_variable(
    load: Callable[..., object], function: str
) -> None:
    with pytest.raises(MissingEnvironment, match=f"^{function} function environment lacks DATA_BUCKET, "):
        load({})


def test_a_variable_that_cannot_be_read_is_named() -> None:
    env = {
        "DATA_BUCKET": "b",
        "ENDPOINT_NAME": "e",
        "SERVING_RECORD_KEY": "deployments/serving.json",
        "MAX_RECORDS": "many",
        "MAX_PAYLOAD_BYTES": "6000000",
    }
    with pytest.raises(MissingEnvironment, match=r"predict function environment is invalid: .*'many'"):
        predict_environment(env)
    deploy = {"DATA_BUCKET": "b", "TUNING_JOB_PREFIX": "p", "SERVING_PLAN": "{}", "RECORDS_PREFIX": "d/"}
    with pytest.raises(MissingEnvironment, match="deploy function environment is invalid: SERVING_PLAN: "):
        deploy_environment(deploy)
    tune = {
        "DATA_BUCKET": "b",
        "TUNING_JOB_PREFIX": "p",
        "TUNING_REQUEST_TEMPLATE": "{}",
        "TUNING_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        "TUNING_JOBS_PER_DAY": "four",
    }
    with pytest.raises(MissingEnvironment, match=r"tune function environment is invalid: .*'four'"):
        tune_environment(tune)
