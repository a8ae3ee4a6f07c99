"""Challengers that arrived while the endpoint was changing, kept until it settles.

A tuning job can finish while a blue/green update is still baking; UpdateEndpoint would be refused. Its
name is kept as an empty marker object under `deployments/deferred/`, and the endpoint's next InService
event judges it. A marker goes only once its job has been judged, so nothing waits forever unseen: the
markers are also listed in the deploy function's log on every endpoint event.
"""

from __future__ import annotations

from typing import Any

DEFERRED = "deferred/"


class DeferredChallengers:
    def __init__(self, s3: Any, bucket: str, records_prefix: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = f"{records_prefix}{DEFERRED}"

    def defer(self, tuning_job: str) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=f"{self._prefix}{tuning_job}", Body=b"")

    def waiting(self) -> list[str]:
        """Deferred tuning jobs, in name order (names carry no time: the order is only stable)."""
        jobs = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self._prefix
        ):
            jobs += [item["Key"].removeprefix(self._prefix) for item in page.get("Contents", [])]
        return jobs

    def judged(self, tuning_job: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=f"{self._prefix}{tuning_job}")
