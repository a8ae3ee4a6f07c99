"""Execution environments of one function, as Lambda keeps them: a process per environment, started on
the first invocation that finds none free, kept warm for the next, replaced after a timeout or a crash.

Lambda developer guide, "Understanding the Lambda execution environment lifecycle"
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html): the Init phase (the
runtime starting and importing the handler) is limited to 10 seconds, after which Lambda retries it
within the first invocation under the function's timeout; "the function's timeout setting limits the
duration of the entire Invoke phase"; "if the Lambda function crashes or times out during the Invoke
phase, Lambda resets the execution environment". An environment serves one invocation at a time, so a
second concurrent invocation needs a second environment.

Timeouts run on the wall clock, not the rehearsal's `TimeScale`: the function's code runs at this
machine's real speed, so the time it is allowed is the time it is configured with.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

INIT_LIMIT_SECONDS = 10.0
# What the Invoke API answers for a response over its 6 MB quota (Lambda quotas page; the message and
# error type are the service's, byte count included).
RESPONSE_LIMIT_BYTES = 6291556
BOOTSTRAP = "bootstrap.py"
_WORKER_SOURCE = Path(__file__).with_name("lambda_worker.py")


def install_runtime(runtime_dir: Path) -> Path:
    """Put the runtime (lambda_worker.py) in `runtime_dir` as the bootstrap script environments run."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = runtime_dir / BOOTSTRAP
    bootstrap.write_bytes(_WORKER_SOURCE.read_bytes())
    return bootstrap


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def timed_out(request_id: str, timeout_seconds: float) -> dict[str, Any]:
    """The Invoke answer for an invocation killed at its timeout (troubleshooting-invocation.html,
    "Sandbox.Timedout"; the message names the configured timeout with two decimals)."""
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_seconds:.2f} seconds",
    }


def exited(request_id: str, returncode: int) -> dict[str, Any]:
    """The Invoke answer when the runtime process ends during an invocation (Runtime.ExitError; the
    status is worded as Go's os.ProcessState prints it, as the service does)."""
    if returncode < 0:
        status = f"signal: {signal.strsignal(-returncode) or signal.Signals(-returncode).name}".lower()
    else:
        status = f"exit status {returncode}"
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {status}",
    }


def response_too_large() -> dict[str, Any]:
    limit = RESPONSE_LIMIT_BYTES
    return {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": f"Response payload size exceeded maximum allowed payload size ({limit} bytes).",
    }


@dataclass(frozen=True)
class LogSettings:
    """The function's logging configuration (LoggingConfig of the Lambda API)."""

    log_format: str = "Text"
    application_log_level: str | None = None
    system_log_level: str | None = None

    def platform_records(self) -> bool:
        # Log levels apply to JSON logs only; platform events (start, report) are INFO, so a system log
        # level of WARN or above drops them (docs: configuration-logging.html, "Log-level filtering").
        if self.log_format.upper() != "JSON":
            return True
        return (self.system_log_level or "INFO").upper() in ("DEBUG", "INFO")


class FunctionLog:
    """`<log_dir>/<function>.log`: what CloudWatch Logs would hold for the function, all its
    environments' streams in one file. The runtimes append their output to it; this writes the
    platform's lines (START/END/REPORT, or their JSON records)."""

    def __init__(self, path: Path, settings: LogSettings, memory_mb: int) -> None:
        self.path = path
        self.settings = settings
        self._memory_mb = memory_mb
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def _write(self, line: str) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def _json(self) -> bool:
        return self.settings.log_format.upper() == "JSON"

    def start(self, request_id: str) -> None:
        if not self.settings.platform_records():
            return
        if self._json():
            record = {"requestId": request_id, "version": "$LATEST"}
            self._write(json.dumps({"time": _now_iso(), "type": "platform.start", "record": record}))
        else:
            self._write(f"START RequestId: {request_id} Version: $LATEST")

    def report(
        self,
        request_id: str,
        *,
        duration_ms: float,
        init_ms: float | None,
        max_memory_mb: int | None,
        error: dict[str, Any] | None,
    ) -> None:
        timeout = error is not None and error.get("errorType") == "Sandbox.Timedout"
        if not self.settings.platform_records():
            return
        billed = math.ceil(duration_ms)
        if self._json():
            metrics: dict[str, Any] = {
                "durationMs": round(duration_ms, 3),
                "billedDurationMs": billed,
                "memorySizeMB": self._memory_mb,
            }
            if max_memory_mb is not None:
                metrics["maxMemoryUsedMB"] = max_memory_mb
            if init_ms is not None:
                metrics["initDurationMs"] = round(init_ms, 3)
            record: dict[str, Any] = {
                "requestId": request_id,
                "metrics": metrics,
                "status": "timeout" if timeout else "error" if error else "success",
            }
            if error:
                record["errorType"] = error.get("errorType")
            self._write(json.dumps({"time": _now_iso(), "type": "platform.report", "record": record}))
            return
        if error is not None and not timeout and str(error.get("errorType", "")).startswith("Runtime.Exit"):
            self._write(f"{error['errorMessage']}\n{error['errorType']}")
        self._write(f"END RequestId: {request_id}")
        fields = [
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {billed} ms",
            f"Memory Size: {self._memory_mb} MB",
        ]
        if max_memory_mb is not None:
            fields.append(f"Max Memory Used: {max_memory_mb} MB")
        if init_ms is not None:
            fields.append(f"Init Duration: {init_ms:.2f} ms")
        self._write(f"REPORT RequestId: {request_id}\t" + "\t".join(fields) + "\t")
        if timeout and error is not None:
            message = str(error["errorMessage"]).split(" Error: ", 1)[-1]
            self._write(f"{_now_iso()} {request_id} {message}")


def _peak_memory_mb(pid: int) -> int | None:
    # The runtime process's peak resident set size (Linux /proc), for REPORT's "Max Memory Used".
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class Outcome:
    """What one invocation in one environment came to."""

    payload: Any | None
    error: dict[str, Any] | None
    duration_ms: float
    # Whether the environment can take the next invocation (False after a timeout, a crash, an Init error).
    reusable: bool


@dataclass(frozen=True)
class SandboxSettings:
    handler: str
    timeout_seconds: float
    task_root: Path
    bootstrap: Path
    # Called once per environment: the process's whole environment (its credentials are its own).
    environment: Callable[[str], Mapping[str, str]]
    log: FunctionLog


class Sandbox:
    """One execution environment: one runtime process, one invocation at a time."""

    def __init__(self, settings: SandboxSettings) -> None:
        self._settings = settings
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: Connection | None = None
        self._init_ms: float | None = None
        self._lock = threading.Lock()
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _spawn(self) -> None:
        parent, child = socket.socketpair()
        with open(self._settings.log.path, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our bootstrap, no shell
                [sys.executable, "-I", "-B", str(self._settings.bootstrap), str(child.fileno())],
                env=dict(self._settings.environment(self.log_stream)),
                cwd=self._settings.task_root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(child.fileno(),),
                # Its own process group, so a kill takes whatever the function started with it.
                start_new_session=True,
            )
        child.close()
        self._channel = Connection(parent.detach())

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        """The runtime's next message, or None at the deadline. Raises EOFError if the runtime ended."""
        assert self._channel is not None
        if not self._channel.poll(max(0.0, deadline - time.monotonic())):
            return None
        message: dict[str, Any] = json.loads(self._channel.recv_bytes())
        return message

    def _exit_code(self) -> int:
        assert self._process is not None
        try:
            return self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return self._process.wait()

    def _init(self, request_id: str) -> dict[str, Any] | None:
        """Start the runtime and wait for its Init phase: None when ready, else the invocation's error."""
        started = time.monotonic()
        self._spawn()
        # Past the 10-second Init limit Lambda re-runs Init inside the invocation under the function's
        # timeout; letting this Init go on that long more comes to the same for a deterministic Init.
        deadline = started + INIT_LIMIT_SECONDS + self._settings.timeout_seconds
        try:
            message = self._receive(deadline)
        except EOFError:
            return exited(request_id, self._exit_code())
        if message is None:
            self.kill()
            return timed_out(request_id, self._settings.timeout_seconds)
        self._init_ms = (time.monotonic() - started) * 1000
        if message["type"] == "init_error":
            self._exit_code()
            error: dict[str, Any] = message["error"]
            return error
        return None

    def invoke(
        self, request_id: str, event_json: str, invoked_function_arn: str, inject_fault: str | None = None
    ) -> Outcome:
        """Run one invocation; `inject_fault` makes the runtime fail it with that message instead of
        running the handler."""
        with self._lock:
            return self._invoke(request_id, event_json, invoked_function_arn, inject_fault)

    def _invoke(
        self, request_id: str, event_json: str, invoked_function_arn: str, inject_fault: str | None
    ) -> Outcome:
        started = time.monotonic()
        cold = self._process is None
        # Init comes first, what the handler's module prints on import ahead of the invocation's START.
        init_error = self._init(request_id) if cold else None
        self._settings.log.start(request_id)
        if init_error is not None:
            return self._finish(request_id, started, None, init_error, reusable=False)
        init_ms = self._init_ms if cold else None
        assert self._channel is not None and self._process is not None
        invoked = time.monotonic()
        deadline = invoked + self._settings.timeout_seconds
        request = {
            "type": "invoke",
            "request_id": request_id,
            "event": event_json,
            "deadline_ms": int((time.time() + self._settings.timeout_seconds) * 1000),
            "invoked_function_arn": invoked_function_arn,
            "inject_fault": inject_fault,
        }
        try:
            self._channel.send_bytes(json.dumps(request).encode("utf-8"))
            message = self._receive(deadline)
        except (EOFError, OSError):
            return self._finish(
                request_id,
                invoked,
                None,
                exited(request_id, self._exit_code()),
                reusable=False,
                init_ms=init_ms,
            )
        if message is None:
            peak = _peak_memory_mb(self._process.pid)
            self.kill()
            error = timed_out(request_id, self._settings.timeout_seconds)
            return self._finish(request_id, invoked, None, error, reusable=False, init_ms=init_ms, peak=peak)
        if message["type"] == "error":
            return self._finish(request_id, invoked, None, message["error"], reusable=True, init_ms=init_ms)
        body: str = message["payload"]
        if len(body.encode("utf-8")) > RESPONSE_LIMIT_BYTES:
            return self._finish(
                request_id, invoked, None, response_too_large(), reusable=True, init_ms=init_ms
            )
        payload: Any = json.loads(body) if message["content_type"] == "application/json" else body
        return self._finish(request_id, invoked, payload, None, reusable=True, init_ms=init_ms)

    def _finish(
        self,
        request_id: str,
        started: float,
        payload: Any | None,
        error: dict[str, Any] | None,
        *,
        reusable: bool,
        init_ms: float | None = None,
        peak: int | None = None,
    ) -> Outcome:
        duration_ms = (time.monotonic() - started) * 1000
        if peak is None and self._process is not None:
            peak = _peak_memory_mb(self._process.pid)
        self._settings.log.report(
            request_id, duration_ms=duration_ms, init_ms=init_ms, max_memory_mb=peak, error=error
        )
        if not reusable:
            self.kill()
        return Outcome(payload, error, duration_ms, reusable)

    def kill(self) -> None:
        """End the runtime and anything the function started with it. An invocation in progress sees the
        runtime exit; the environment cannot serve another."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def dispose(self) -> None:
        """Kill the environment and release its channel; only once no invocation is using it."""
        self.kill()
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None


class SandboxPool:
    """A function's environments: an idle one serves the next invocation, else a new one starts, up to
    `limit` at once (the function's concurrency); past that an invocation waits for one to free up."""

    def __init__(self, factory: Callable[[], Sandbox], limit: int) -> None:
        if limit < 1:
            raise ValueError(f"concurrency limit must be at least 1, not {limit}")
        self._factory = factory
        self._limit = limit
        self._idle: list[Sandbox] = []
        self._all: set[Sandbox] = set()
        self._busy = 0
        self._closed = False
        self._changed = threading.Condition()

    def run(self, invoke: Callable[[Sandbox], Outcome]) -> Outcome:
        sandbox = self._acquire()
        outcome: Outcome | None = None
        try:
            outcome = invoke(sandbox)
            return outcome
        finally:
            self._release(sandbox, reusable=outcome is not None and outcome.reusable)

    def _acquire(self) -> Sandbox:
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError("the function's environments are shut down")
                if self._idle:
                    sandbox = self._idle.pop()
                    break
                if len(self._all) < self._limit:
                    sandbox = self._factory()
                    self._all.add(sandbox)
                    break
                self._changed.wait()
            self._busy += 1
            return sandbox

    def _release(self, sandbox: Sandbox, *, reusable: bool) -> None:
        with self._changed:
            self._busy -= 1
            if reusable and not self._closed:
                self._idle.append(sandbox)
            else:
                sandbox.dispose()
                self._all.discard(sandbox)
            self._changed.notify_all()

    @property
    def environments(self) -> int:
        """How many environments exist (warm or busy)."""
        with self._changed:
            return len(self._all)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            idle, busy = list(self._idle), [s for s in self._all if s not in self._idle]
            self._idle.clear()
            self._all.difference_update(idle)
            self._changed.notify_all()
        for sandbox in idle:
            sandbox.dispose()
        # A busy environment is killed now and disposed of when its invocation returns.
        for sandbox in busy:
            sandbox.kill()
