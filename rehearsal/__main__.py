"""The rehearsal's command line: `python -m rehearsal <command> --help`.

rehearse   the whole path on the bundled sample (or on your CSV): upload, transform, tuning,
           deployment, predictions from the local API; a summary table and an HTML report
serve      the same, then keep the local stack and API up; prints the URL and the key
predict    send records from a CSV or JSON file to an API (the local one by default)
synth      the resource tree `pulumi up` would create (tools.synth)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools.mockrun import PROJECT_DIR

# The functions' shared code (schema, encoding), importable as the Lambda packages import it.
sys.path.insert(0, str(PROJECT_DIR / "functions"))

from rehearsal.api_client import ApiClient, region_of
from rehearsal.faults import FAULTS
from rehearsal.flows import RehearsalOptions, rehearse, serve
from rehearsal.moto_server import Credentials
from rehearsal.rehearse import records_from_csv

STATE_FILE = PROJECT_DIR / ".rehearsal" / "serving.json"


def _add_rehearsal_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to rehearse (default dev)"
    )
    parser.add_argument("--csv", type=Path, help="your CSV instead of the bundled sample")
    parser.add_argument("--dataset", help="dataset name for --csv (default: from the file name)")
    parser.add_argument("--target", help="the target column of --csv (dataset.json targetColumn)")
    parser.add_argument(
        "--settings",
        type=Path,
        help="a dataset.json for --csv (targetColumn, problemType, ignoreColumns, ...)",
    )
    parser.add_argument("--trials", type=int, default=8, help="training jobs of the tuning job (default 8)")
    parser.add_argument(
        "--config", action="append", default=[], metavar="KEY=VALUE", help="stack config override, repeatable"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=600.0,
        help="AWS's waits (retries, visibility timeouts, endpoint changes) pass this many times faster",
    )
    parser.add_argument("--report", type=Path, default=PROJECT_DIR / ".rehearsal" / "report.html")


def _options(args: argparse.Namespace) -> RehearsalOptions:
    config = dict(item.split("=", 1) for item in args.config)
    settings = json.loads(args.settings.read_text()) if args.settings else {}
    if args.target:
        settings["targetColumn"] = args.target
    return RehearsalOptions(
        stack=args.stack,
        csv=args.csv,
        dataset=args.dataset,
        settings=settings,
        trials=args.trials,
        config=config,
        time_scale=args.time_scale,
        report=args.report,
        fault=getattr(args, "fault", None),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    rehearse_parser = commands.add_parser(
        "rehearse", help="the whole pipeline on one dataset, offline", description=rehearse.__doc__
    )
    _add_rehearsal_options(rehearse_parser)
    rehearse_parser.add_argument(
        "--fault", choices=sorted(FAULTS), help="rehearse a failure (see docs/rehearsal.md)"
    )

    serve_parser = commands.add_parser(
        "serve", help="rehearse, then keep the stack and API up", description=serve.__doc__
    )
    _add_rehearsal_options(serve_parser)

    predict_parser = commands.add_parser(
        "predict",
        help="send records to the API",
        description="Send records to the local API `serve` runs, as its API client (signed or with its "
        "token), or to a deployed one (--url, --key): signed with your AWS credentials (the standard "
        "chain: environment, profile, ...), or with a Cognito ID token (--token).",
    )
    predict_parser.add_argument(
        "file", type=Path, help="a CSV with a header, or a JSON request ({records: [...]})"
    )
    predict_parser.add_argument("--target", help="a CSV column to leave out (the target)")
    predict_parser.add_argument("--rows", type=int, default=5, help="CSV rows to send (default 5)")
    predict_parser.add_argument("--url", help="API URL (default: the one `serve` runs)")
    predict_parser.add_argument("--key", help="API key (default: the one `serve` runs)")
    predict_parser.add_argument("--token", help="a Cognito ID token (stacks with apiAuthorization cognito)")

    synth_parser = commands.add_parser("synth", help="print what `pulumi up` would create")
    synth_parser.add_argument("stack", nargs="?", default="dev")

    args = parser.parse_args(argv)
    if getattr(args, "fault", None) and args.csv:
        parser.error("--fault stages its failure on the bundled sample: leave out --csv")
    if args.command == "synth":
        from tools import synth

        return synth.main([args.stack])
    if args.command == "predict":
        return _predict(args)
    if args.command == "serve":
        return serve(_options(args), state_file=STATE_FILE)
    return rehearse(_options(args))


def _client(args: argparse.Namespace) -> ApiClient | str:
    """The client to call with, or why there is none."""
    if not (args.url and args.key):
        if not STATE_FILE.is_file():
            return "no local API is up: run `python -m rehearsal serve`, or pass --url and --key"
        return ApiClient.from_json(STATE_FILE.read_text())
    region = region_of(args.url)
    if region is None:
        return (
            f"{args.url} is no API Gateway invoke URL (https://<id>.execute-api.<region>.amazonaws.com/...)"
        )
    if args.token:
        return ApiClient(args.url, args.key, region, id_token=args.token)
    import botocore.session

    found = botocore.session.Session().get_credentials()
    if found is None:
        return "no AWS credentials to sign with (or pass --token for a Cognito stack)"
    frozen = found.get_frozen_credentials()
    return ApiClient(
        args.url, args.key, region, Credentials(frozen.access_key, frozen.secret_key, frozen.token)
    )


def _predict(args: argparse.Namespace) -> int:
    client = _client(args)
    if isinstance(client, str):
        print(client, file=sys.stderr)
        return 2
    if args.file.suffix.lower() == ".json":
        request = json.loads(args.file.read_text())
    else:
        request = {"records": records_from_csv(args.file.read_bytes(), args.target or "", args.rows)}
    status, answer = client.call("POST", "/predict", request)
    print(status, json.dumps(answer, indent=1))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
