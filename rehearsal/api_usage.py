"""Throttling and quotas of the local gateway, counted in AWS time.

API Gateway throttles with token buckets, "where a token counts for a request": a bucket holds at most
the burst limit and refills at the rate limit per second; a request that finds no token is answered
429 (developer guide, "Throttle API requests for better throughput"). A usage plan's quota caps the
requests of each API key per DAY, WEEK or MONTH. Both run on the rehearsal's compressed time (a second
of AWS refills a bucket in `TimeScale.seconds(1)`, a day of quota passes in `TimeScale.seconds(86400)`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Protocol

from rehearsal.api_definition import Quota, Throttle
from rehearsal.clock import TimeScale


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


class AwsTime:
    """AWS's time as the rehearsal runs it: it starts at the clock's now and passes `time_scale.factor`
    times faster than the clock."""

    def __init__(self, clock: Clock, time_scale: TimeScale) -> None:
        self._clock = clock
        self._scale = time_scale
        self._start = clock.monotonic()
        self._start_wall = clock.now()

    def seconds(self) -> float:
        """AWS seconds since the start."""
        return (self._clock.monotonic() - self._start) / self._scale.seconds(1.0)

    def now(self) -> datetime:
        return self._start_wall + timedelta(seconds=self.seconds())


def quota_window(period: str, at: datetime) -> datetime:
    """The start of the quota period holding `at`: UTC calendar days, weeks from Monday, months. API
    Gateway's usage reports count by UTC day (developer guide, "Maintain a usage plan"); where a week
    starts is not documented."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "DAY":
        return day
    if period == "WEEK":
        return day - timedelta(days=day.weekday())
    if period == "MONTH":
        return day.replace(day=1)
    raise ValueError(f"quota period {period!r} is not DAY, WEEK or MONTH")


class Refusal(Enum):
    THROTTLED = "THROTTLED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


@dataclass
class _Bucket:
    throttle: Throttle
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.throttle.burst), self.tokens + (now - self.at) * self.throttle.rate)
        self.at = now


@dataclass
class _QuotaCount:
    window: datetime
    used: int
    first_window: bool


class UsageMeter:
    """Token buckets and quota counts, shared by the gateway's request threads."""

    def __init__(self, aws_time: AwsTime) -> None:
        self._time = aws_time
        self._lock = threading.Lock()
        self._buckets: dict[Hashable, _Bucket] = {}
        self._quotas: dict[Hashable, _QuotaCount] = {}

    def admit(
        self, throttles: Sequence[tuple[Hashable, Throttle]], quota: tuple[Hashable, Quota] | None
    ) -> Refusal | None:
        """Spend a token of every bucket and one request of the quota, or refuse and spend nothing.

        A spent quota refuses before a bucket is looked at: its limit holds whatever the rate.
        """
        with self._lock:
            seconds, now = self._time.seconds(), self._time.now()
            if quota is not None and self._quota_left(quota[0], quota[1], now) <= 0:
                return Refusal.QUOTA_EXCEEDED
            buckets = []
            for key, throttle in throttles:
                bucket = self._buckets.get(key)
                if bucket is None or bucket.throttle != throttle:
                    bucket = self._buckets[key] = _Bucket(throttle, float(throttle.burst), seconds)
                bucket.refill(seconds)
                if bucket.tokens < 1:
                    return Refusal.THROTTLED
                buckets.append(bucket)
            for bucket in buckets:
                bucket.tokens -= 1
            if quota is not None:
                self._quotas[quota[0]].used += 1
            return None

    def _quota_left(self, key: Hashable, quota: Quota, now: datetime) -> int:
        window = quota_window(quota.period, now)
        count = self._quotas.get(key)
        if count is None:
            count = self._quotas[key] = _QuotaCount(window, 0, first_window=True)
        elif count.window != window:
            count.window, count.used, count.first_window = window, 0, False
        limit = quota.limit - (quota.offset if count.first_window else 0)
        return limit - count.used
