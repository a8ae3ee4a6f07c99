"""Offline synth: run the program for a stack under mocks, print the resource tree, write it as JSON.

    python -m tools.synth dev                          # prints the tree, writes .synth/dev.json
    python -m tools.synth prod --config tracing=false  # a config override, without editing the stack file
    python -m tools.synth dev --tuning-request         # also the whole tuning request template

The tree is what the unchanged program registers (see tools.mockrun), not a second description of it.
It reads the same for the same program and config, byte for byte, so two synths can be diffed in review:
resources are listed by name and properties by key, not in the order the program's callbacks happened to
register them, and every secret is shown as [secret].
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pulumi.runtime import rpc

from tools.mockrun import (
    PROJECT_DIR,
    Resource,
    StackRun,
    config_override,
    run_program,
    stack_config,
    with_overrides,
)

MAX_VALUE_WIDTH = 90
REDACTED = "[secret]"
TUNING_REQUEST_VARIABLE = "TUNING_REQUEST_TEMPLATE"


def redacted(value: Any) -> Any:
    """`value` with every secret (the SDK's wire form `{<sig key>: <secret sig>, "value": ...}`) replaced."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return REDACTED
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def _short_type(type_: str) -> str:
    """'aws:s3/bucketPolicy:BucketPolicy' -> 'aws:s3:BucketPolicy'."""
    parts = type_.split(":")
    return f"{parts[0]}:{parts[1].split('/')[0]}:{parts[2]}" if len(parts) == 3 else type_


def _describe(value: Any) -> str:
    if isinstance(value, str) and value.startswith("{") and '"Statement"' in value:
        statements = json.loads(value)["Statement"]
        return "policy: " + ", ".join(s.get("Sid", "?") for s in statements)
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= MAX_VALUE_WIDTH else text[: MAX_VALUE_WIDTH - 3] + "..."


def key_properties(resource: Resource) -> list[str]:
    """Every input the program set, policy documents reduced to their statement ids, then the resource
    options that change what `pulumi up` or `destroy` does to it."""
    lines = []
    for key, value in sorted(redacted(resource.inputs).items()):
        if value in (None, [], {}, ""):
            continue
        lines.append(f"{key} = {_describe(value)}")
    if resource.protect:
        lines.append("(protected)")
    if resource.retain_on_delete:
        lines.append("(retained on delete)")
    if resource.ignore_changes:
        lines.append(f"(ignores changes to {', '.join(sorted(resource.ignore_changes))})")
    if resource.replace_on_changes:
        lines.append(f"(replaced on changes to {', '.join(sorted(resource.replace_on_changes))})")
    if resource.delete_before_replace:
        lines.append("(deleted before replaced)")
    return lines


def _children(run: StackRun, parent: Resource | None) -> list[Resource]:
    return sorted(run.children(parent), key=lambda r: (r.name, r.type))


def _tree(run: StackRun, parent: Resource | None, depth: int) -> list[str]:
    out = []
    for resource in _children(run, parent):
        indent = "  " * (depth + 1)
        out.append(f"{indent}{_short_type(resource.type)}  {resource.name}")
        if resource.custom:
            out.extend(f"{indent}    {line}" for line in key_properties(resource))
        out.extend(_tree(run, resource, depth + 1))
    return out


def render_tree(run: StackRun) -> str:
    out = [f"stack {run.stack}: {sum(run.count_by_type().values())} resources", *_tree(run, None, 0)]
    out.append("resources by type:")
    out.extend(f"  {count:3d}  {type_}" for type_, count in run.count_by_type().items())
    out.append("stack outputs:")
    for key, value in sorted(redacted(run.outputs).items()):
        out.append(f"  {key} = {value if isinstance(value, str) else json.dumps(value, sort_keys=True)}")
    return "\n".join(out)


def tuning_request_template(run: StackRun) -> dict[str, Any]:
    """The stack's part of every CreateHyperParameterTuningJob request, as the function that sends it has
    it in its environment."""
    for function in run.of_type("aws:lambda/function:Function"):
        variables = (function.inputs.get("environment") or {}).get("variables") or {}
        if TUNING_REQUEST_VARIABLE in variables:
            template: dict[str, Any] = json.loads(variables[TUNING_REQUEST_VARIABLE])
            return template
    raise LookupError(f"no function of the stack has {TUNING_REQUEST_VARIABLE} in its environment")


def synth_document(run: StackRun) -> dict[str, Any]:
    """The JSON the synth writes: every resource, by URN, secrets redacted."""
    resources = sorted((asdict(r) for r in run.resources), key=lambda r: r["urn"])
    for resource in resources:
        # Sets: their order is the order the inputs happened to resolve in.
        resource["dependencies"].sort()
        for urns in resource["property_dependencies"].values():
            urns.sort()
    document: dict[str, Any] = redacted({"stack": run.stack, "outputs": run.outputs, "resources": resources})
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name; reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--config",
        type=config_override,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable); a key without namespace is the project's",
    )
    parser.add_argument(
        "--tuning-request", action="store_true", help="also print the whole tuning request template"
    )
    parser.add_argument("--out", type=Path, help="JSON file to write (default .synth/<stack>.json)")
    args = parser.parse_args(argv)
    try:
        run = run_program(args.stack, with_overrides(stack_config(args.stack), dict(args.config)))
    except Exception as error:
        print(f"synth of stack {args.stack!r} failed: {error}", file=sys.stderr)
        return 1
    print(render_tree(run))
    if args.tuning_request:
        print("tuning request template:")
        print(json.dumps(tuning_request_template(run), indent=2, sort_keys=True))
    out = args.out or PROJECT_DIR / ".synth" / f"{args.stack}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(synth_document(run), indent=2, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(PROJECT_DIR) if out.is_relative_to(PROJECT_DIR) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
