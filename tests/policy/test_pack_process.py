"""The pack as `pulumi preview --policy-pack policy_pack` runs it: its own process, serving the analyzer
protocol on the port it prints, reading the stack's config from the environment the engine gives it.

Each stack's recorded resources go through Analyze (each resource's inputs) and AnalyzeStack (every
resource's outputs) as the engine sends them: the real program gets no diagnostic, and every broken case
gets a mandatory one from its guardrail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from guardrails import GUARDRAILS
from tests.policy.broken import BROKEN
from tests.support.stacks import STACKS, synth
from tools.mockrun import PROJECT_DIR, Resource, StackRun

PACK_DIR = PROJECT_DIR / "policy_pack"


def _struct(values: dict[str, object]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def _options(r: Resource) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=r.protect, ignoreChanges=r.ignore_changes, parent=r.parent
    )


def _stack_request(run: StackRun) -> analyzer_pb2.AnalyzeStackRequest:
    return analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type,
                properties=_struct(r.outputs),
                urn=r.urn,
                name=r.name,
                options=_options(r),
                parent=r.parent,
                dependencies=r.dependencies,
                propertyDependencies={
                    key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns)
                    for key, urns in r.property_dependencies.items()
                },
            )
            for r in run.resources
        ]
    )


class Pack:
    def __init__(self, stub: analyzer_pb2_grpc.AnalyzerStub) -> None:
        self.stub = stub

    def diagnostics(self, run: StackRun) -> list[analyzer_pb2.AnalyzeDiagnostic]:
        found = list(self.stub.AnalyzeStack(_stack_request(run)).diagnostics)
        for r in run.resources:
            request = analyzer_pb2.AnalyzeRequest(
                type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name, options=_options(r)
            )
            found.extend(self.stub.Analyze(request).diagnostics)
        return found


def _started(stack: str) -> Iterator[Pack]:
    run = synth(stack)
    environment = {
        **os.environ,
        "PULUMI_CONFIG": json.dumps(run.config),
        "PULUMI_PROJECT": "serverless-ml-pipeline",
        "PULUMI_STACK": stack,
        "PULUMI_DRY_RUN": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-u", "__main__.py"],
        cwd=PACK_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Pack(analyzer_pb2_grpc.AnalyzerStub(channel))
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module", params=STACKS)
def pack(request: pytest.FixtureRequest) -> Iterator[tuple[str, Pack]]:
    for started in _started(request.param):
        yield request.param, started


def test_the_pack_serves_every_guardrail_as_mandatory(pack: tuple[str, Pack]) -> None:
    _, started = pack
    info = started.stub.GetAnalyzerInfo(empty_pb2.Empty())
    assert [p.name for p in info.policies] == [g.name for g in GUARDRAILS]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_the_program_gets_no_diagnostic(pack: tuple[str, Pack]) -> None:
    stack, started = pack
    assert [(d.policyName, d.message) for d in started.diagnostics(synth(stack))] == []


def test_each_broken_case_gets_a_mandatory_diagnostic_from_its_guardrail(pack: tuple[str, Pack]) -> None:
    stack, started = pack
    for name, broken in BROKEN.items():
        if broken.stack != stack:
            continue
        reported = {
            d.policyName
            for d in started.diagnostics(broken.run())
            if d.enforcementLevel == analyzer_pb2.MANDATORY
        }
        assert name in reported, broken.what
