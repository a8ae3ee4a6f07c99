"""How the rehearsal compresses time: AWS's waits (visibility timeouts, retry back-off, endpoint creation,
blue/green bake) pass `factor` times faster, so a run that takes AWS an hour takes the rehearsal seconds,
in the same order and with the same outcomes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimeScale:
    factor: float = 1.0

    def __post_init__(self) -> None:
        if self.factor <= 0:
            raise ValueError(f"time scale factor must be positive, not {self.factor}")

    def seconds(self, aws_seconds: float) -> float:
        """How long the rehearsal waits for what takes AWS `aws_seconds`."""
        return aws_seconds / self.factor
