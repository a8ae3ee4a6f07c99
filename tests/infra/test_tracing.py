"""X-Ray tracing follows the stack's `tracing` key: with it on, every function traces actively, its role may
send the traces and nothing more for them, and the API stage traces; with it off, none of these.

The send permission is written here from the AWS-managed AWSXRayDaemonWriteAccess policy's two upload
actions, on `*` because neither has a resource type (Service Authorization Reference, AWS X-Ray), not
taken from the program's policy builders.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from settings import load_settings
from tests.support.policies import as_list
from tests.support.stacks import config_for, synth
from tools.mockrun import Resource, StackRun

FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
STAGE = "aws:apigateway/stage:Stage"
SEND_TRACES = {
    "Sid": "SendTraces",
    "Effect": "Allow",
    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    "Resource": ["*"],
}
# (stack, overrides): each stack as it is, and each with tracing turned the other way.
CASES = [
    pytest.param("prod", {}, id="prod"),
    pytest.param("dev", {}, id="dev"),
    pytest.param("dev", {"tracing": "true"}, id="dev-tracing-on"),
    pytest.param("prod", {"tracing": "false", "apiTracing": "false"}, id="prod-tracing-off"),
]


def tracing_on(run: StackRun) -> bool:
    return load_settings(run.config, stack=run.stack).functions.tracing


def role_policies(run: StackRun, function: Resource) -> list[dict[str, Any]]:
    """The inline policy documents of the role the function runs with."""
    (role,) = [r for r in run.of_type(ROLE) if r.outputs["arn"] == function.inputs["role"]]
    return [p.json_input("policy") for p in run.of_type(ROLE_POLICY) if p.inputs["role"] == role.id]


def xray_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in as_list(document["Statement"])
        if any(action.lower().startswith("xray:") for action in as_list(s.get("Action", [])))
    ]


def tracing_problems(run: StackRun, *, on: bool) -> list[str]:
    """How the run's functions, their roles and the API stage differ from tracing being `on` (or off)."""
    problems = []
    functions = run.of_type(FUNCTION)
    assert functions, "the stack has no function"
    for function in functions:
        mode = (function.inputs.get("tracingConfig") or {}).get("mode")
        if mode != ("Active" if on else None):
            problems.append(f"{function.name}: tracing mode {mode!r}")
        granted = [s for document in role_policies(run, function) for s in xray_statements(document)]
        normalized = [
            {**s, "Action": sorted(as_list(s["Action"])), "Resource": as_list(s.get("Resource"))}
            for s in granted
        ]
        wanted = [{**SEND_TRACES, "Action": sorted(SEND_TRACES["Action"])}] if on else []
        if normalized != wanted:
            problems.append(f"{function.name}: role grants {granted} for X-Ray")
    if on:
        for stage in run.of_type(STAGE):
            if stage.inputs.get("xrayTracingEnabled") is not True:
                problems.append(f"{stage.name}: X-Ray tracing {stage.inputs.get('xrayTracingEnabled')!r}")
    return problems


def test_prod_traces_and_dev_does_not() -> None:
    assert load_settings(config_for("prod"), stack="prod").functions.tracing
    assert not load_settings(config_for("dev"), stack="dev").functions.tracing


@pytest.mark.parametrize(("stack", "overrides"), CASES)
def test_functions_roles_and_stage_trace_exactly_when_tracing_is_on(
    stack: str, overrides: dict[str, str]
) -> None:
    run = synth(stack, **overrides)
    on = tracing_on(run)
    assert on == (overrides.get("tracing", "true" if stack == "prod" else "false") == "true")
    assert tracing_problems(run, on=on) == []


def test_stage_does_not_trace_with_tracing_and_api_tracing_off() -> None:
    run = synth("prod", tracing="false", apiTracing="false")
    assert [s.inputs["xrayTracingEnabled"] for s in run.of_type(STAGE)] == [False]


def _without(run: StackRun, name: str, change: Any) -> StackRun:
    """A copy of the run in which resource `name`'s inputs are changed by `change(inputs)`."""
    resources = []
    for resource in run.resources:
        if resource.name == name:
            inputs = copy.deepcopy(resource.inputs)
            change(inputs)
            resource = dataclasses.replace(resource, inputs=inputs)
        resources.append(resource)
    return dataclasses.replace(run, resources=resources)


@pytest.mark.parametrize(
    "function", ["transform-function", "tune-function", "deploy-function", "predict-function"]
)
def test_a_prod_function_without_tracing_is_caught(function: str) -> None:
    run = synth("prod")
    untraced = _without(run, function, lambda inputs: inputs.pop("tracingConfig"))
    assert tracing_problems(untraced, on=True) == [f"{function}: tracing mode None"]


def test_a_missing_or_widened_send_permission_and_an_untraced_stage_are_caught() -> None:
    run = synth("prod")
    policy = next(
        p.name
        for p in run.of_type(ROLE_POLICY)
        if any(s.get("Sid") == "SendTraces" for s in p.json_input("policy")["Statement"])
    )

    def edit(statements: Any) -> Any:
        def change(inputs: dict[str, Any]) -> None:
            document = json.loads(inputs["policy"])
            document["Statement"] = statements(document["Statement"])
            inputs["policy"] = json.dumps(document)

        return change

    dropped = _without(run, policy, edit(lambda ss: [s for s in ss if s["Sid"] != "SendTraces"]))
    widened = _without(
        run,
        policy,
        edit(lambda ss: [{**s, "Action": ["xray:*"]} if s["Sid"] == "SendTraces" else s for s in ss]),
    )
    for mutant in (dropped, widened):
        (problem,) = tracing_problems(mutant, on=True)
        assert "role grants" in problem
    untraced_stage = _without(run, "predict-stage", lambda inputs: inputs.update(xrayTracingEnabled=False))
    assert tracing_problems(untraced_stage, on=True) == ["predict-stage: X-Ray tracing False"]
    # Judged as a stack with tracing off, each of the four functions traces and holds the permission.
    assert len(tracing_problems(run, on=False)) == 4 * 2
