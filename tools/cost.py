"""What a stack costs: the fixed monthly part, and at most per quiet burst of uploads of a dataset.

    python -m tools.cost dev
    python -m tools.cost prod --config alarmEmail=oncall@corp.internal --config endpointMinInstances=2

Figures come from the stack's own settings and the program's own resources (the alarms it declares),
multiplied by the list prices below. Usage that scales with traffic (requests, log volume, data kept)
is given as its unit price, not guessed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from settings import Settings, load_settings
from tools.mockrun import config_override, run_program, stack_config, with_overrides

HOURS_PER_MONTH = 730
# On-demand list prices in us-east-1, from the AWS Price List (offer files published July to October 2026;
# eu-west-1 is within a few percent for these services, SageMaker instances a little higher):
# https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<service>/current/us-east-1/index.json
SAGEMAKER_HOURLY = {"ml.m5.large": 0.115, "ml.m5.xlarge": 0.23}  # training, hosting and batch transform
KMS_KEY_MONTHLY = 1.00
DASHBOARD_MONTHLY = 3.00  # the first 3 dashboards of an account are free
ALARM_MONTHLY = 0.10  # standard resolution; the first 10 alarms of an account are free
WAF_ACL_MONTHLY, WAF_RULE_MONTHLY, WAF_PER_MILLION = 5.00, 1.00, 0.60
# Usage, per unit: shown as they are.
USAGE_PRICES = (
    ("API Gateway REST requests", "$3.50 per million"),
    ("Lambda (arm64)", "$0.0000133334 per GB-second, $0.20 per million requests"),
    ("serverless endpoint", "$0.00002 per GB-second of inference (2,048 MB: $0.00004 a second), $0 idle"),
    ("SQS and SNS", "$0.40 and $0.50 per million requests"),
    ("S3 Standard", "$0.023 per GB-month kept (noncurrent versions too), $0.005 per 1,000 PUTs"),
    ("CloudWatch Logs", "$0.50 per GB ingested, $0.03 per GB-month kept, $0.005 per GB Logs Insights scans"),
    ("KMS requests", "$0.03 per 10,000"),
    ("X-Ray (tracing on)", "$5.00 per million traces recorded, the first 100,000 a month free"),
    ("Cognito user pool (Lite)", "the first 10,000 monthly active users free, then $0.0055 each"),
)
# A batch transform job's instance is billed from its start-up; AWS publishes no figure for it.
TRANSFORM_JOB_HOURS = 10 / 60


@dataclass(frozen=True)
class Line:
    what: str
    formula: str
    dollars: float | None  # None: the instance type has no price in the table


def _hourly(instance_type: str) -> float | None:
    return SAGEMAKER_HOURLY.get(instance_type)


def _times(hours: float, instance_type: str) -> float | None:
    price = _hourly(instance_type)
    return None if price is None else hours * price


def monthly(settings: Settings, alarms: int) -> list[Line]:
    """What the stack costs with no upload and no request."""
    lines = [
        Line("KMS key", f"1 key x ${KMS_KEY_MONTHLY:.2f}", KMS_KEY_MONTHLY),
        Line("dashboard", f"1 x ${DASHBOARD_MONTHLY:.2f}", DASHBOARD_MONTHLY),
        Line("alarms", f"{alarms} x ${ALARM_MONTHLY:.2f}", alarms * ALARM_MONTHLY),
    ]
    endpoint = settings.endpoint
    if endpoint.serverless:
        lines.append(Line("endpoint (serverless)", "no requests, no charge", 0.0))
    else:
        hours = endpoint.min_instances * HOURS_PER_MONTH
        lines.append(
            Line(
                f"endpoint ({endpoint.instance_type}, always on)",
                f"{endpoint.min_instances} instance(s) x {HOURS_PER_MONTH} h x hourly price",
                _times(hours, endpoint.instance_type),
            )
        )
    if settings.api.firewall:
        lines.append(
            Line(
                "WAF web ACL",
                f"${WAF_ACL_MONTHLY:.2f} + 1 rule x ${WAF_RULE_MONTHLY:.2f} (+ ${WAF_PER_MILLION}/million)",
                WAF_ACL_MONTHLY + WAF_RULE_MONTHLY,
            )
        )
    return lines


def per_tuning_job(settings: Settings) -> list[Line]:
    """The most one tuning job and its contest can cost: every training job running to its time limit
    on demand (spot is cheaper), then two batch transform jobs."""
    training = settings.training
    job_hours = training.max_jobs * training.instance_count * training.max_runtime_seconds / 3600
    # A warm pool keeps each parallel lane's instances for the keep-alive period after its last job.
    pool_hours = training.max_parallel_jobs * training.instance_count * training.warm_pool_seconds / 3600
    lines = [
        Line(
            f"training ({training.instance_type})",
            f"{training.max_jobs} jobs x {training.instance_count} instance(s) x "
            f"{training.max_runtime_seconds} s = {job_hours:g} h at most",
            _times(job_hours, training.instance_type),
        )
    ]
    if pool_hours:
        lines.append(
            Line(
                "training warm pool",
                f"{training.max_parallel_jobs} x {training.instance_count} instance(s) x "
                f"{training.warm_pool_seconds} s",
                _times(pool_hours, training.instance_type),
            )
        )
    contest_type = settings.endpoint.contest_instance_type
    lines.append(
        Line(
            f"contest ({contest_type}, when a champion serves)",
            f"2 transform jobs x about {TRANSFORM_JOB_HOURS * 60:.0f} min each",
            _times(2 * TRANSFORM_JOB_HOURS, contest_type),
        )
    )
    return lines


def total(lines: list[Line]) -> str:
    known = [line.dollars for line in lines if line.dollars is not None]
    suffix = " + the unpriced lines" if len(known) < len(lines) else ""
    return f"${sum(known):,.2f}{suffix}"


def render(settings: Settings, alarms: int) -> str:
    def table(lines: list[Line]) -> list[str]:
        return [
            f"  {line.what:<46} {line.formula:<62} "
            f"{'$' + format(line.dollars, ',.2f') if line.dollars is not None else 'see the price list'}"
            for line in lines
        ]

    idle, job = monthly(settings, alarms), per_tuning_job(settings)
    per_day = settings.training.jobs_per_day
    out = [f"stack {settings.stack} ({settings.region}), on-demand list prices (us-east-1, 2026)"]
    out += [
        "every month, idle:",
        *table(idle),
        f"  total {total(idle)}",
    ]
    out += [
        f"each tuning job at most (one per dataset per quiet burst of {settings.training.quiet_seconds} s, "
        f"at most {per_day} per dataset per UTC day):",
        *table(job),
        f"  total {total(job)}; a dataset's day at most {per_day} x that",
    ]
    out += ["with use:", *(f"  {what:<46} {price}" for what, price in USAGE_PRICES)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name; reads Pulumi.<stack>.yaml")
    parser.add_argument("--config", type=config_override, action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    config = with_overrides(stack_config(args.stack), dict(args.config))
    try:
        settings = load_settings(config, stack=args.stack)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    alarms = len(run_program(args.stack, config).of_type("aws:cloudwatch/metricAlarm:MetricAlarm"))
    print(render(settings, alarms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
