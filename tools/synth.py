"""Offline synth: run the program for a stack under mocks, print the resource tree, write it as JSON.

    python -m tools.synth dev            # prints the tree, writes .synth/dev.json

The tree is what the unchanged program registers (see tools.mockrun), not a second description of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.mockrun import PROJECT_DIR, Resource, StackRun, run_program, stack_config

MAX_VALUE_WIDTH = 90


def _short_type(type_: str) -> str:
    """'aws:s3/bucketPolicy:BucketPolicy' -> 'aws:s3:BucketPolicy'."""
    parts = type_.split(":")
    return f"{parts[0]}:{parts[1].split('/')[0]}:{parts[2]}" if len(parts) == 3 else type_


def _describe(value: Any) -> str:
    if isinstance(value, str) and value.startswith("{") and '"Statement"' in value:
        statements = json.loads(value)["Statement"]
        return "policy: " + ", ".join(s.get("Sid", "?") for s in statements)
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= MAX_VALUE_WIDTH else text[: MAX_VALUE_WIDTH - 3] + "..."


def key_properties(resource: Resource) -> list[str]:
    """Every input the program set, policy documents reduced to their statement ids."""
    lines = []
    for key, value in sorted(resource.inputs.items()):
        if value in (None, [], {}, ""):
            continue
        lines.append(f"{key} = {_describe(value)}")
    if resource.protect:
        lines.append("(protected)")
    if resource.retain_on_delete:
        lines.append("(retained on delete)")
    return lines


def render_tree(run: StackRun) -> str:
    out = [f"stack {run.stack}: {sum(run.count_by_type().values())} resources"]
    for depth, resource in run.walk():
        indent = "  " * (depth + 1)
        out.append(f"{indent}{_short_type(resource.type)}  {resource.name}")
        if resource.custom:
            out.extend(f"{indent}    {line}" for line in key_properties(resource))
    out.append("resources by type:")
    out.extend(f"  {count:3d}  {type_}" for type_, count in run.count_by_type().items())
    out.append("stack outputs:")
    out.extend(f"  {key} = {value}" for key, value in sorted(run.outputs.items()))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name; reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="JSON file to write (default .synth/<stack>.json)")
    args = parser.parse_args(argv)
    try:
        run = run_program(args.stack, stack_config(args.stack))
    except Exception as error:
        print(f"synth of stack {args.stack!r} failed: {error}", file=sys.stderr)
        return 1
    print(render_tree(run))
    out = args.out or PROJECT_DIR / ".synth" / f"{args.stack}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"stack": run.stack, "outputs": run.outputs, "resources": [asdict(r) for r in run.resources]},
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
