"""The message that asks the tune function to consider tuning a dataset: sent by the transform once a run
is complete (delayed by the quiet period), and by the tune function itself to come back to a request its
dataset's daily budget deferred.

    {"dataset": "churn", "run": "20261201T101500Z-0123456789ab", "notBefore": "2026-12-02T00:00:00+00:00"}

`notBefore` is only in a deferred request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

# SendMessage DelaySeconds: 0 to 900 seconds (SQS API reference, SendMessage).
MAX_DELAY_SECONDS = 900


class MalformedRequest(ValueError):
    """A message that is not a tuning request."""


@dataclass(frozen=True)
class TuningRequest:
    dataset: str
    run: str
    # A deferred request is not acted on before this (UTC) time.
    not_before: datetime | None = None

    def to_json(self) -> str:
        body = {"dataset": self.dataset, "run": self.run}
        if self.not_before is not None:
            body["notBefore"] = self.not_before.isoformat()
        return json.dumps(body)


def parse_request(body: str) -> TuningRequest:
    try:
        document = json.loads(body)
        dataset, run = document["dataset"], document["run"]
        not_before = document.get("notBefore")
        if not (isinstance(dataset, str) and dataset and isinstance(run, str) and run):
            raise ValueError("dataset and run must be non-empty strings")
        when = None if not_before is None else datetime.fromisoformat(not_before)
        if when is not None and when.tzinfo is None:
            raise ValueError("notBefore must name its time zone")
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise MalformedRequest(f"not a tuning request ({error!r}): {body[:200]!r}") from None
    return TuningRequest(dataset, run, when)
