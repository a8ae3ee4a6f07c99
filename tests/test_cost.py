"""The cost tool reads its numbers from the stack's settings: change a setting, the figure follows."""

from __future__ import annotations

import pytest

from settings import Settings, load_settings
from tests.support.stacks import config_for
from tools.cost import HOURS_PER_MONTH, SAGEMAKER_HOURLY, main, monthly, per_tuning_job, total


def settings_of(stack: str, **overrides: str) -> Settings:
    return load_settings(config_for(stack, overrides), stack=stack)


def test_a_tuning_job_costs_at_most_every_training_job_to_its_time_limit() -> None:
    dev = settings_of("dev")
    training = per_tuning_job(dev)[0]
    hours = dev.training.max_jobs * dev.training.max_runtime_seconds / 3600
    assert training.dollars == pytest.approx(hours * SAGEMAKER_HOURLY[dev.training.instance_type])
    doubled = per_tuning_job(settings_of("dev", tuningMaxJobs=str(2 * dev.training.max_jobs)))[0]
    assert training.dollars is not None and doubled.dollars == pytest.approx(2 * training.dollars)


def test_a_serverless_endpoint_costs_nothing_idle_and_instances_cost_around_the_clock() -> None:
    serverless = {line.what: line.dollars for line in monthly(settings_of("dev"), alarms=12)}
    assert serverless["endpoint (serverless)"] == 0
    prod = settings_of("prod", endpointMinInstances="2")
    (endpoint,) = [line for line in monthly(prod, alarms=12) if line.what.startswith("endpoint")]
    assert endpoint.dollars == pytest.approx(
        2 * HOURS_PER_MONTH * SAGEMAKER_HOURLY[prod.endpoint.instance_type]
    )


def test_a_firewall_and_an_unpriced_instance_type_are_shown() -> None:
    with_waf = [line.what for line in monthly(settings_of("dev", apiWafRateLimit="1000"), alarms=0)]
    assert "WAF web ACL" in with_waf
    unpriced = per_tuning_job(settings_of("dev", trainingInstanceType="ml.c5.2xlarge"))
    assert unpriced[0].dollars is None and total(unpriced).endswith("+ the unpriced lines")


def test_the_tool_prints_both_parts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev"]) == 0
    printed = capsys.readouterr().out
    assert "every month, idle:" in printed and "each tuning job at most" in printed
