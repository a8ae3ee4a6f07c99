"""When the local SageMaker's slow changes happen: an endpoint comes up minutes after CreateEndpoint, a
blue/green update bakes for its TerminationWaitInSeconds, a deletion takes a while.

Two clocks. A live scheduler runs each change on a thread once its AWS duration has passed, compressed by
the rehearsal's `TimeScale`; timestamps are the wall clock's. A manual scheduler never moves by itself: a
test moves it (`advance`) and the changes due by then run, in order, on the test's thread, so a test
decides exactly what SageMaker has finished when its code looks.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rehearsal.clock import TimeScale

logger = logging.getLogger(__name__)


@dataclass(order=True)
class Timer:
    due: float
    order: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Run actions once AWS time has passed. `manual_start` set: the manual clock, starting there."""

    def __init__(self, time_scale: TimeScale, manual_start: datetime | None = None) -> None:
        self._scale = time_scale
        self._manual = manual_start is not None
        # Manual: seconds since `manual_start`. Live: time.monotonic().
        self._origin = manual_start or datetime.now(UTC)
        self._manual_now = 0.0
        self._timers: list[Timer] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.failures: list[Exception] = []
        if not self._manual:
            self._thread = threading.Thread(target=self._run, name="sagemaker-scheduler", daemon=True)
            self._thread.start()

    @property
    def manual(self) -> bool:
        return self._manual

    def now(self) -> datetime:
        if self._manual:
            return self._origin + timedelta(seconds=self._manual_now)
        return datetime.now(UTC)

    def after(self, aws_seconds: float, action: Callable[[], None]) -> Timer:
        """Run `action` once what takes AWS `aws_seconds` has passed."""
        wait = aws_seconds if self._manual else self._scale.seconds(aws_seconds)
        with self._changed:
            timer = Timer(self._clock() + wait, next(self._order), action)
            heapq.heappush(self._timers, timer)
            self._changed.notify()
        return timer

    def advance(self, seconds: float) -> None:
        """Manual clock: let `seconds` of AWS time pass, running what falls due on the way, in order."""
        if not self._manual:
            raise RuntimeError("only a manual clock is moved by hand")
        until = self._manual_now + seconds
        while True:
            with self._changed:
                due = self._pop_due(until)
                if due is None:
                    self._manual_now = until
                    return
                self._manual_now = max(self._manual_now, due.due)
            due.action()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _clock(self) -> float:
        return self._manual_now if self._manual else time.monotonic()

    def _pop_due(self, until: float) -> Timer | None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        if self._timers and self._timers[0].due <= until:
            return heapq.heappop(self._timers)
        return None

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._closed:
                    return
                due = self._pop_due(time.monotonic())
                if due is None:
                    pending = [t.due for t in self._timers if not t.cancelled]
                    self._changed.wait(timeout=min(pending) - time.monotonic() if pending else None)
                    continue
            try:
                due.action()
            except Exception as error:  # a defect of the stand-in: kept for whoever runs it, and logged
                logger.exception("a scheduled SageMaker change failed")
                self.failures.append(error)
