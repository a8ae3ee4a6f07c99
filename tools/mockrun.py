"""Run the real Pulumi program under mocks for a stack's config and record what it registers.

The program (`__main__.py`) runs unchanged; a fake AWS provider answers each registration with the
attributes AWS would compute (ARNs, URLs, physical names), so the program's Outputs resolve to values of
the real shape. The result is the resolved resource graph: every resource with its type, logical name,
parent, explicit and per-input (property) dependencies, protect/retain options, inputs and outputs,
and the stack's outputs.
The synth command prints it; the tests assert on it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import runpy
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

PROJECT_DIR = Path(__file__).resolve().parent.parent
MOCK_ACCOUNT_ID = "123456789012"
CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"


class ProgramFailed(Exception):
    """The program raised; `resources` holds what it had registered by then."""

    def __init__(self, message: str, resources: list[Resource]) -> None:
        super().__init__(message)
        self.resources = resources


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    # The URNs each input depends on (an Output of another resource), as the engine records them.
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    # The physical id the provider gave it (what `resource.id` resolves to in the program).
    id: str = ""

    def json_input(self, key: str) -> Any:
        """An input that holds a JSON document (a policy, a redrive policy), parsed."""
        return json.loads(self.inputs[key])


@dataclass
class StackRun:
    stack: str
    config: dict[str, str]
    resources: list[Resource]
    outputs: dict[str, Any]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, **inputs: Any) -> Resource:
        """The single resource of this type whose inputs include the given values."""
        found = [r for r in self.of_type(type_) if all(r.inputs.get(k) == v for k, v in inputs.items())]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} with {inputs}, found {len(found)}")
        return found[0]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one resource named {name!r}, found {len(found)}")
        return found[0]

    def children(self, parent: Resource | None) -> list[Resource]:
        parent_urn = parent.urn if parent else ""
        return [r for r in self.resources if r.parent == parent_urn]

    def walk(self, parent: Resource | None = None, depth: int = 0) -> Iterator[tuple[int, Resource]]:
        for child in self.children(parent):
            yield depth, child
            yield from self.walk(child, depth + 1)

    def count_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            if r.custom and not r.type.startswith("pulumi:providers:"):
                counts[r.type] = counts.get(r.type, 0) + 1
        return dict(sorted(counts.items()))


def _suffix(urn: str) -> str:
    return hashlib.sha1(urn.encode()).hexdigest()[:7]  # noqa: S324 - a name, not a secret


class FakeAws(pulumi_mocks.Mocks):
    """Answers registrations with the attributes AWS would give, derived from the inputs."""

    def __init__(self, region: str, account_id: str = MOCK_ACCOUNT_ID) -> None:
        self.region = region
        self.account = account_id

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token != CALLER_IDENTITY:
            raise NotImplementedError(f"no fake for invoke {args.token}")
        identity = {
            "accountId": self.account,
            "arn": f"arn:aws:iam::{self.account}:user/deployer",
            "userId": "AIDAEXAMPLE",
            "id": self.account,
        }
        return identity, []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        if not args.custom:
            return "", inputs
        urn_key = f"{args.typ}::{args.name}"
        physical = inputs.get("name") or f"{inputs.get('namePrefix', args.name + '-')}{_suffix(urn_key)}"
        r, a = self.region, self.account
        match args.typ:
            case "aws:s3/bucket:Bucket":
                bucket = inputs.get("bucket") or physical
                return bucket, {**inputs, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
            case "aws:kms/key:Key":
                key_id = f"{_suffix(urn_key)}-0000-4000-8000-{_suffix(urn_key + 'k')}00000"
                return key_id, {**inputs, "keyId": key_id, "arn": f"arn:aws:kms:{r}:{a}:key/{key_id}"}
            case "aws:kms/alias:Alias":
                return physical, {**inputs, "name": physical, "arn": f"arn:aws:kms:{r}:{a}:{physical}"}
            case "aws:sns/topic:Topic":
                arn = f"arn:aws:sns:{r}:{a}:{physical}"
                return arn, {**inputs, "name": physical, "arn": arn}
            case "aws:sqs/queue:Queue":
                url = f"https://sqs.{r}.amazonaws.com/{a}/{physical}"
                return url, {**inputs, "name": physical, "url": url, "arn": f"arn:aws:sqs:{r}:{a}:{physical}"}
            case "aws:iam/role:Role":
                return physical, {**inputs, "name": physical, "arn": f"arn:aws:iam::{a}:role/{physical}"}
            case "aws:cloudwatch/logGroup:LogGroup":
                return physical, {
                    **inputs,
                    "name": physical,
                    "arn": f"arn:aws:logs:{r}:{a}:log-group:{physical}",
                }
            case "aws:lambda/function:Function":
                arn = f"arn:aws:lambda:{r}:{a}:function:{physical}"
                invoke = f"arn:aws:apigateway:{r}:lambda:path/2015-03-31/functions/{arn}/invocations"
                return physical, {**inputs, "name": physical, "arn": arn, "invokeArn": invoke}
            case "aws:cloudwatch/eventRule:EventRule":
                return physical, {
                    **inputs,
                    "name": physical,
                    "arn": f"arn:aws:events:{r}:{a}:rule/{physical}",
                }
            case "aws:apigateway/restApi:RestApi":
                api_id = _suffix(urn_key + "api")[:10]
                return api_id, {
                    **inputs,
                    "name": physical,
                    "rootResourceId": _suffix(urn_key + "root")[:6],
                    "executionArn": f"arn:aws:execute-api:{r}:{a}:{api_id}",
                    "arn": f"arn:aws:apigateway:{r}::/restapis/{api_id}",
                }
            case "aws:apigateway/stage:Stage":
                api_id, stage = inputs["restApi"], inputs["stageName"]
                return f"ags-{api_id}-{stage}", {
                    **inputs,
                    "invokeUrl": f"https://{api_id}.execute-api.{r}.amazonaws.com/{stage}",
                    "executionArn": f"arn:aws:execute-api:{r}:{a}:{api_id}/{stage}",
                    "arn": f"arn:aws:apigateway:{r}::/restapis/{api_id}/stages/{stage}",
                }
            case "aws:apigateway/apiKey:ApiKey":
                key_id = _suffix(urn_key)
                return key_id, {**inputs, "name": physical, "value": f"mock-api-key-{_suffix(urn_key + 'v')}"}
            case "aws:cloudwatch/dashboard:Dashboard":
                # The provider's id is the dashboard's name; dashboards are global, so the ARN has no region.
                dashboard = inputs["dashboardName"]
                return dashboard, {**inputs, "dashboardArn": f"arn:aws:cloudwatch::{a}:dashboard/{dashboard}"}
            case "aws:sns/topicSubscription:TopicSubscription":
                arn = f"{inputs['topic']}:{_suffix(urn_key)}"
                return arn, {**inputs, "arn": arn}
            case _:
                return f"{args.name}-id", {**inputs, "arn": f"arn:aws:mock:{r}:{a}:{args.name}"}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping what it drops: parents, dependencies, options, outputs."""

    def __init__(self, mocks: FakeAws) -> None:
        super().__init__(mocks)
        self.registered: dict[str, Resource] = {}
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            registration = self.resources.get(response.urn)
            self.registered[response.urn] = Resource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent="" if _is_stack(request.parent) else request.parent,
                custom=request.custom,
                inputs=_plain(rpc.deserialize_properties(request.object)),
                outputs=_secret_outputs(_plain(registration.state), request.additionalSecretOutputs)
                if registration
                else {},
                dependencies=list(request.dependencies),
                property_dependencies={
                    key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                },
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                replace_on_changes=list(request.replaceOnChanges),
                ignore_changes=list(request.ignoreChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
                id=registration.id if registration else "",
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if _is_stack(request.urn):
            self.stack_outputs = _plain(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def _secret_outputs(outputs: dict[str, Any], secret: Any) -> dict[str, Any]:
    """The outputs as the engine keeps them: those the resource declares secret (the provider schema's
    `secret: true`, sent as additionalSecretOutputs) wrapped as secrets."""
    return {
        key: {rpc._special_sig_key: rpc._special_secret_sig, "value": value} if key in secret else value
        for key, value in outputs.items()
    }


def _is_stack(urn: str) -> bool:
    return "::pulumi:pulumi:Stack::" in urn


def _plain(value: Any) -> Any:
    """Inputs as JSON-friendly data: archives and assets become their paths."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire protocol carries every number as a double
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"path": value.path}
    if isinstance(value, pulumi.AssetArchive):
        return {"assets": {k: _plain(v) for k, v in value.assets.items()}}
    return value


def stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """`Pulumi.<stack>.yaml`'s config, as strings the way the Pulumi engine passes them to a program."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no stack file {path.name} in {project_dir}")
    document = yaml.safe_load(path.read_text()) or {}
    return {key: _config_string(value) for key, value in (document.get("config") or {}).items()}


def config_override(text: str) -> tuple[str, str]:
    """A command line's `key=value` config override (argparse type)."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected key=value, e.g. tuningMaxJobs=4")
    return key, value


def with_overrides(config: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """`config` with `overrides` applied; a key without a namespace (`tracing`) is the project's."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["name"]
    merged = dict(config)
    for key, value in overrides.items():
        merged[key if ":" in key else f"{project}:{key}"] = value
    return merged


def _config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _run_main() -> None:
    runpy.run_path("__main__.py", run_name="__main__")


def run_program(stack: str, config: Mapping[str, str], project_dir: Path = PROJECT_DIR) -> StackRun:
    """Run `__main__.py` for `stack` with `config` under mocks; raise what the program raises."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    region = config.get("aws:region", "us-east-1")
    monitor = RecordingMonitor(FakeAws(region))
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config))
    # set_mocks starts a root stack of its own; the program runs in a fresh one, as under `pulumi up`,
    # so that its exports are registered as the stack's outputs.
    settings.set_root_resource(None)  # type: ignore[arg-type]
    sys.path.insert(0, str(project_dir))
    try:
        # Pulumi runs a program from its project directory; so does this.
        with contextlib.chdir(project_dir):
            _sync_await(run_in_stack(_run_main))
    except Exception as error:
        raise ProgramFailed(str(error), list(monitor.registered.values())) from error
    finally:
        sys.path.remove(str(project_dir))
    return StackRun(
        stack=stack,
        config=dict(config),
        resources=list(monitor.registered.values()),
        outputs=monitor.stack_outputs,
    )
