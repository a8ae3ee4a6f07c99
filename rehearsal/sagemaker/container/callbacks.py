"""The callbacks a training job runs with, besides xgboost's EvaluationMonitor and EarlyStopping that
the container's get_callbacks (callback.py:63-123) sets: each round's metrics handed to the caller, who
may stop the job, and the callbacks run in the container's order.

Citations are into release-3.0.5 as the package docstring says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import xgboost

from rehearsal.sagemaker.container.metrics import parse_metrics


class RoundReporter(xgboost.callback.TrainingCallback):
    """After EvaluationMonitor has printed a round: the round's metrics as SageMaker reads them, handed
    to `on_round`; a False answer is the tuner stopping the job (SIGTERM in AWS)."""

    def __init__(
        self,
        lines: list[str],
        on_round: Callable[[int, Mapping[str, float]], bool] | None,
        save_on_stop: Callable[[Any], None] | None,
    ) -> None:
        super().__init__()
        self.lines = lines
        self.on_round = on_round
        self.save_on_stop = save_on_stop
        self.history: dict[str, list[float]] = {}
        self.last: dict[str, float] = {}
        self.stopped = False
        self.error: BaseException | None = None

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        metrics = parse_metrics(self.lines[-1]) if self.lines else {}
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(value)
        self.last = metrics
        if self.on_round is None:
            return False
        try:
            carry_on = self.on_round(epoch + 1, dict(metrics))
        except BaseException as error:
            self.error = error
            return False
        if not carry_on:
            self.stopped = True
            if self.save_on_stop is not None:
                self.save_on_stop(model)
        # The stop itself is Stop's, after EarlyStopping has seen this round: stopping here would keep
        # EarlyStopping from recording a best round, which its save_best needs at the end.
        return False


class InOrder(xgboost.callback.TrainingCallback):
    """The container's callbacks, run in its list's order. xgboost 3.0.5 keeps a set of them
    (callback.py:162 of the xgboost package) and stops at the first that asks to stop, so in the
    container the log may lack the line of the round EarlyStopping ends on; here the monitor always
    prints first."""

    def __init__(self, callbacks: list[Any]) -> None:
        super().__init__()
        self.callbacks = callbacks

    def before_training(self, model: Any) -> Any:
        for callback in self.callbacks:
            model = callback.before_training(model)
        return model

    def after_training(self, model: Any) -> Any:
        for callback in self.callbacks:
            model = callback.after_training(model)
        return model

    def before_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return any(callback.before_iteration(model, epoch, evals_log) for callback in self.callbacks)

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return any(callback.after_iteration(model, epoch, evals_log) for callback in self.callbacks)


class Stop(xgboost.callback.TrainingCallback):
    def __init__(self, reporter: RoundReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        return self.reporter.stopped or self.reporter.error is not None
