"""Prediction under load: the rehearsal's local API against the local SageMaker runtime it calls.

    python -m tools.prediction_load_benchmark [--requests 3000] [--concurrency 8] [--records 3]

Stands up the rehearsal's dev stack with a tuned model deployed (`rehearsal.flows.serving`), then, from a
second process on 127.0.0.1, sends the same prediction requests two ways, each with at most
`--concurrency` in flight:

- `api`: `POST /predict` to the local API Gateway, as the stack's API client (SigV4-signed, or with its
  Cognito ID token, and the API key): authorization, usage plan, request validation, the Lambda proxy
  event, the predict function in its sandbox (the serving record, the schema, the encoding), and its
  InvokeEndpoint;
- `runtime` (the baseline): InvokeEndpoint straight to the local SageMaker runtime with the body the
  predict function sends for those records (encoded by its own code), through boto3.

It prints each one's p50 and p99 latency, throughput and errors (a 5xx, or an answer other than 200), and
the ratio of the two: what API Gateway's emulation, the function and the authorization cost on top of the
endpoint. The usage plan's throttle and quota are raised to their maximum for the run, so every request
is measured rather than answered 429. Both sides sign every request with SigV4 (boto3 signs each
InvokeEndpoint), so the signer's time is in both figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from settings import API_QUOTA_PER_DAY, API_THROTTLE_BURST, API_THROTTLE_RATE, PROJECT
from tools.mockrun import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR / "functions"))

# No 429s: the usage plan's limits at their maximum (settings.py bounds).
UNTHROTTLED = {
    f"{PROJECT}:apiThrottleRatePerSecond": str(API_THROTTLE_RATE[1]),
    f"{PROJECT}:apiThrottleBurst": str(API_THROTTLE_BURST[1]),
    f"{PROJECT}:apiQuotaPerDay": str(API_QUOTA_PER_DAY[1]),
}
SERVER_ERROR = 500


@dataclass(frozen=True)
class LoadSpec:
    """What the load process sends, as JSON on its stdin."""

    client: str  # rehearsal.api_client.ApiClient, as JSON
    records: list[dict[str, Any]]
    runtime_url: str
    endpoint: str
    # The predict function's body for `records`: CSV lines of the model's features.
    runtime_body: str
    access_key_id: str
    secret_access_key: str
    region: str
    requests: int
    concurrency: int


@dataclass(frozen=True)
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_errors: int
    other_errors: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.server_errors + self.other_errors


def percentile(sorted_values: list[float], share: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    rank = max(1, round(share * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def measure(call: Callable[[], int], requests: int, concurrency: int) -> Figures:
    """`requests` calls, `concurrency` at a time; each returns its HTTP status."""
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        began = time.perf_counter()
        status = call()
        elapsed = time.perf_counter() - began
        with lock:
            latencies.append(elapsed * 1000)
            statuses.append(status)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - began
    latencies.sort()
    return Figures(
        requests=requests,
        seconds=seconds,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
        server_errors=sum(1 for s in statuses if s >= SERVER_ERROR),
        other_errors=sum(1 for s in statuses if s != 200 and s < SERVER_ERROR),
    )


def run_load(spec: LoadSpec) -> dict[str, Figures]:
    """The load process's work: the same records through the API, then straight to the runtime."""
    import urllib.error
    import urllib.request

    import boto3
    import botocore.config

    from rehearsal.api_client import ApiClient

    client = ApiClient.from_json(spec.client)
    url = f"{client.url}/predict"
    body = json.dumps({"records": spec.records}).encode()

    def api_call() -> int:
        headers = client.headers("POST", url, body)
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - 127.0.0.1
                answer.read()
                return int(answer.status)
        except urllib.error.HTTPError as error:
            error.read()
            return int(error.code)

    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=spec.runtime_url,
        region_name=spec.region,
        aws_access_key_id=spec.access_key_id,
        aws_secret_access_key=spec.secret_access_key,
        config=botocore.config.Config(max_pool_connections=spec.concurrency, retries={"max_attempts": 1}),
    )
    runtime_body = spec.runtime_body.encode()

    def runtime_call() -> int:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=spec.endpoint,
                ContentType="text/csv",
                Accept="application/json",
                Body=runtime_body,
            )
            answer["Body"].read()
            return int(answer["ResponseMetadata"]["HTTPStatusCode"])
        except runtime.exceptions.ClientError as error:
            return int(error.response["ResponseMetadata"]["HTTPStatusCode"])

    # A warm-up round each, as many at once as will be measured: the local Lambda service starts a sandbox
    # per request in flight, and those cold starts are the rehearsal's figure, not this one's.
    for call in (api_call, runtime_call):
        measure(call, 2 * spec.concurrency, spec.concurrency)
    return {
        "api": measure(api_call, spec.requests, spec.concurrency),
        "runtime": measure(runtime_call, spec.requests, spec.concurrency),
    }


def load_process(spec: LoadSpec) -> dict[str, Figures]:
    """Run the load in a second Python process, as another program on the machine would call."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.prediction_load_benchmark", "--load"],
        input=json.dumps(asdict(spec)),
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed:\n{done.stderr}")
    return {name: Figures(**figures) for name, figures in json.loads(done.stdout).items()}


def load_spec(stack: Any, records: list[dict[str, Any]], *, requests: int, concurrency: int) -> LoadSpec:
    """The requests for a served stack: its API client, and the runtime body the predict function sends
    for `records` (encoded by the function's own code from the serving record's schema)."""
    from predict.records import feature_values
    from predict.served_model import ServedModels

    model = ServedModels(stack.aws.client("s3"), stack.bucket, "deployments/serving.json").current()
    assert model is not None, "no model serves"
    rows = feature_values({"records": records}, model.schema, len(records))
    deployer = stack.aws.deployer
    return LoadSpec(
        client=stack.api_client.to_json(),
        records=records,
        runtime_url=stack.sagemaker_server.url,
        endpoint=stack.output("endpoint_name"),
        runtime_body="".join(model.encoder.encode(values) + "\n" for values in rows),
        access_key_id=deployer.access_key_id,
        secret_access_key=deployer.secret_access_key,
        region=stack.region,
        requests=requests,
        concurrency=concurrency,
    )


def report(figures: dict[str, Figures], *, concurrency: int, records: int) -> str:
    api, runtime = figures["api"], figures["runtime"]
    lines = [
        f"{api.requests} requests of {records} records each, {concurrency} in flight, from a second process",
        f"{'':<10}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'5xx':>6}{'other':>7}",
    ]
    for name, f in (("api", api), ("runtime", runtime)):
        lines.append(
            f"{name:<10}{f.p50_ms:>9.1f}{f.p99_ms:>9.1f}{f.throughput:>9.1f}{f.server_errors:>6}{f.other_errors:>7}"
        )
    lines.append(
        f"api / runtime: p50 x{api.p50_ms / runtime.p50_ms:.1f}, p99 x{api.p99_ms / runtime.p99_ms:.1f}, "
        f"throughput x{api.throughput / runtime.throughput:.2f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per target (default 3000)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--records", type=int, default=3, help="records per request (default 3)")
    parser.add_argument("--trials", type=int, default=2, help="tuning trials before serving (default 2)")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        figures = run_load(LoadSpec(**json.loads(sys.stdin.read())))
        print(json.dumps({name: asdict(f) for name, f in figures.items()}))
        return 0

    from rehearsal.flows import RehearsalOptions, serving
    from rehearsal.rehearse import records_from_csv
    from rehearsal.samples import TARGET, sample_dataset

    records = records_from_csv(sample_dataset().good.body, TARGET, args.records)
    options = RehearsalOptions(trials=args.trials, config=UNTHROTTLED)
    with serving(options, progress=lambda _: None) as (stack, _result):
        spec = load_spec(stack, records, requests=args.requests, concurrency=args.concurrency)
        figures = load_process(spec)
    print(report(figures, concurrency=args.concurrency, records=args.records))
    failed = figures["api"].server_errors + figures["runtime"].server_errors
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
