"""The Lambda service of the rehearsal: the program's functions run from their deployment packages in warm
execution environments, invoked synchronously (RequestResponse) or through the asynchronous queue (Event),
with the environment, context, errors, timeouts and retries Lambda gives them.

Each function's zip is unzipped once into its own task root; each execution environment is a process of
its own (`rehearsal.lambda_sandbox`) running the Python runtime (`rehearsal.lambda_worker`) with only the
task root and the virtualenv's site-packages importable (Powertools from site-packages stands in for its
layer). The process's environment is the function's variables, the rehearsal's (endpoint URLs), and the
variables Lambda defines (Lambda developer guide, "Defined runtime environment variables",
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
nothing of this process's.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal.clock import TimeScale
from rehearsal.iam_policy import glob_matches
from rehearsal.lambda_async import Activity, AsyncConfig, AsyncQueue
from rehearsal.lambda_sandbox import (
    FunctionLog,
    LogSettings,
    Sandbox,
    SandboxPool,
    SandboxSettings,
    install_runtime,
)

if TYPE_CHECKING:
    from tools.mockrun import Resource

__all__ = [
    "AsyncConfig",
    "FunctionNotFound",
    "FunctionSpec",
    "Invocation",
    "LambdaService",
    "RequestTooLarge",
]

FUNCTION = "aws:lambda/function:Function"
# Invoke API (botocore lambda/2015-03-31 Invoke): "For synchronous invocations, the maximum payload size
# is 6 MB. For asynchronous invocations, the maximum payload size is 1 MB."
SYNC_REQUEST_LIMIT_BYTES = 6 * 1024 * 1024
ASYNC_REQUEST_LIMIT_BYTES = 1024 * 1024
# CreateFunction refuses a package whose unzipped contents pass 250 MB (Lambda quotas).
UNZIPPED_LIMIT_BYTES = 262144000
# Lambda's defaults for a function that sets no memory size or timeout (CreateFunction).
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_CONCURRENCY_LIMIT = 4
VERSION = "$LATEST"

# Keys Lambda sets itself and refuses in a function's configuration (configuration-envvars.html).
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
CREDENTIAL_VARIABLES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


class FunctionNotFound(LookupError):
    """ResourceNotFoundException: no function of that name or ARN."""


class RequestTooLarge(ValueError):
    """RequestTooLargeException: the event is over the invocation type's payload quota."""


@dataclass(frozen=True)
class FunctionSpec:
    """A function as the program declares it (aws:lambda/function:Function)."""

    name: str
    arn: str
    # The deployment package, the zip the program builds (its `code` FileArchive).
    package: Path
    handler: str
    runtime: str
    environment: dict[str, str]
    memory_mb: int
    timeout_seconds: int
    role_arn: str
    # loggingConfig.logGroup; None means Lambda's default, /aws/lambda/<name>.
    log_group: str | None
    log_format: str = "Text"
    application_log_level: str | None = None
    system_log_level: str | None = None

    def __post_init__(self) -> None:
        if not self.runtime.startswith("python3."):
            raise ValueError(f"{self.name}: only Python runtimes are emulated, not {self.runtime}")
        reserved = sorted(RESERVED_VARIABLES & self.environment.keys())
        if reserved:
            # CreateFunction refuses these ("Keys aren't reserved by Lambda", configuration-envvars.html).
            raise ValueError(
                f"{self.name}: environment sets variables Lambda reserves: {', '.join(reserved)}"
            )

    @classmethod
    def from_resource(cls, resource: Resource, *, project_dir: Path) -> FunctionSpec:
        if resource.type != FUNCTION:
            raise ValueError(f"{resource.name} is a {resource.type}, not a {FUNCTION}")
        inputs, outputs = resource.inputs, resource.outputs
        code = inputs.get("code")
        if not isinstance(code, Mapping) or "path" not in code:
            raise ValueError(f"{resource.name}: code is not a file archive with a path: {code!r}")
        logging_config = inputs.get("loggingConfig") or {}
        return cls(
            name=str(outputs.get("name") or inputs.get("name") or resource.id),
            arn=str(outputs["arn"]),
            package=project_dir / str(code["path"]),
            handler=str(inputs["handler"]),
            runtime=str(inputs["runtime"]),
            environment={
                str(k): str(v) for k, v in ((inputs.get("environment") or {}).get("variables") or {}).items()
            },
            memory_mb=int(inputs.get("memorySize", DEFAULT_MEMORY_MB)),
            timeout_seconds=int(inputs.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
            role_arn=str(inputs["role"]),
            log_group=logging_config.get("logGroup"),
            log_format=str(logging_config.get("logFormat", "Text")),
            application_log_level=logging_config.get("applicationLogLevel"),
            system_log_level=logging_config.get("systemLogLevel"),
        )

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"


@dataclass(frozen=True)
class Invocation:
    """One invocation's answer. `error` is the document Lambda returns with X-Amz-Function-Error
    (errorMessage, errorType, requestId, stackTrace from the runtime; errorType and errorMessage alone
    for the service's own: Sandbox.Timedout, Runtime.ExitError, ...)."""

    request_id: str
    payload: Any | None
    error: dict[str, Any] | None
    duration_ms: float
    # The event the function was invoked with.
    event: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Permission:
    """A statement of the function's resource-based policy (AddPermission): lambda:InvokeFunction for a
    service principal, limited to one source ARN when given (an ArnLike condition on AWS:SourceArn)."""

    principal: str
    source_arn: str | None = None

    def allows(self, principal: str, source_arn: str | None) -> bool:
        if principal != self.principal:
            return False
        if self.source_arn is None:
            return True
        return source_arn is not None and _arn_like(source_arn, self.source_arn)


def _arn_like(value: str, pattern: str) -> bool:
    # ArnLike compares each of the six colon-separated components with wildcards (IAM condition operators).
    values, patterns = value.split(":", 5), pattern.split(":", 5)
    return len(values) == len(patterns) == 6 and all(
        glob_matches(p, v) for p, v in zip(patterns, values, strict=True)
    )


@dataclass
class _Function:
    spec: FunctionSpec
    task_root: Path
    log: FunctionLog
    pool: SandboxPool
    config: AsyncConfig = field(default_factory=AsyncConfig)
    permissions: list[Permission] = field(default_factory=list)
    # How many of the next invocations fail by injection (LambdaService.fail_next); None: all of them.
    faults: int | None = 0
    history: list[Invocation] = field(default_factory=list)


class LambdaService:
    """The functions of one stack, invoked by name or ARN.

    Past a function's `concurrency_limit` an invocation waits for an environment to free up, where
    Lambda would throttle it (TooManyRequestsException) at the account's or the function's reserved
    concurrency; the program reserves none, and the rehearsal's machine is small.
    """

    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        *,
        environment: Mapping[str, str],
        credentials: Callable[[FunctionSpec], Mapping[str, str]],
        time_scale: TimeScale,
        log_dir: Path,
        destinations: Callable[[str, dict[str, Any]], None],
        concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
    ) -> None:
        """`environment` is added to every function's own variables (endpoint URLs); `credentials` gives
        a function's role session (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) for each
        new environment; `destinations(arn, record)` delivers an asynchronous invocation record to a
        queue or topic; `concurrency_limit` caps each function's environments."""
        self._environment = dict(environment)
        self._credentials = credentials
        self._root = Path(tempfile.mkdtemp(prefix="rehearsal-lambda-"))
        self._bootstrap = install_runtime(self._root / "runtime")
        self._activity = Activity()
        self._lock = threading.Lock()
        self._functions: dict[str, _Function] = {}
        try:
            for spec in functions:
                if spec.name in self._functions:
                    raise ValueError(f"two functions named {spec.name}")
                self._functions[spec.name] = self._install(spec, log_dir, concurrency_limit)
        except BaseException:
            self._remove_files()
            raise
        self._queue = AsyncQueue(
            attempt=self._attempt,
            config=lambda name: self._function(name).config,
            destinations=destinations,
            time_scale=time_scale,
            activity=self._activity,
        )

    def _install(self, spec: FunctionSpec, log_dir: Path, concurrency_limit: int) -> _Function:
        task_root = self._root / "functions" / spec.name
        with zipfile.ZipFile(spec.package) as package:
            unzipped = sum(entry.file_size for entry in package.infolist())
            if unzipped > UNZIPPED_LIMIT_BYTES:
                raise ValueError(f"{spec.name}: unzipped package is {unzipped} bytes, over Lambda's 250 MB")
            package.extractall(task_root)
        settings = LogSettings(spec.log_format, spec.application_log_level, spec.system_log_level)
        log = FunctionLog(log_dir / f"{spec.name}.log", settings, spec.memory_mb)
        sandbox_settings = SandboxSettings(
            handler=spec.handler,
            timeout_seconds=spec.timeout_seconds,
            task_root=task_root,
            bootstrap=self._bootstrap,
            environment=lambda stream: self._process_environment(spec, task_root, stream),
            log=log,
        )
        pool = SandboxPool(lambda: Sandbox(sandbox_settings), concurrency_limit)
        return _Function(spec, task_root, log, pool)

    def _process_environment(self, spec: FunctionSpec, task_root: Path, log_stream: str) -> dict[str, str]:
        credentials = dict(self._credentials(spec))
        unexpected = sorted(credentials.keys() - CREDENTIAL_VARIABLES)
        if unexpected or "AWS_ACCESS_KEY_ID" not in credentials or "AWS_SECRET_ACCESS_KEY" not in credentials:
            raise ValueError(
                f"credentials for {spec.name} must be an access key and secret, got {sorted(credentials)}"
            )
        defined = {
            "_HANDLER": spec.handler,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": VERSION,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_ACCESS_KEY": credentials["AWS_ACCESS_KEY_ID"],
            **credentials,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(self._bootstrap.parent),
        }
        if spec.log_format.upper() == "JSON":
            # Advanced logging controls: the runtime and Powertools read the format and level from these
            # (awslambdaric bootstrap.py: AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL).
            defined["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            if spec.application_log_level:
                defined["AWS_LAMBDA_LOG_LEVEL"] = spec.application_log_level
        conflicting = sorted(k for k, v in self._environment.items() if k in defined and defined[k] != v)
        if conflicting:
            raise ValueError(
                f"the rehearsal's environment contradicts what Lambda sets: {', '.join(conflicting)}"
            )
        # The unreserved variables Lambda sets, which a function's configuration may override.
        unreserved = {
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        }
        return {**unreserved, **spec.environment, **self._environment, **defined}

    # -- lookups ---------------------------------------------------------------------------------------

    def _function(self, function: str) -> _Function:
        """By name, ARN or partial ARN (account:function:name), unqualified or $LATEST, as Invoke takes
        FunctionName (botocore lambda/2015-03-31 Invoke)."""
        parts = function.split(":")
        arn = None
        if parts[0] == "arn" and len(parts) in (7, 8) and parts[2] == "lambda" and parts[5] == "function":
            arn, name, qualifier = ":".join(parts[:7]), parts[6], parts[7:]
        elif len(parts) in (3, 4) and parts[1] == "function":
            name, qualifier = parts[2], parts[3:]
        elif len(parts) in (1, 2):
            name, qualifier = parts[0], parts[1:]
        else:
            raise FunctionNotFound(f"Function not found: {function}")
        found = self._functions.get(name)
        if found is None or qualifier not in ([], [VERSION]) or arn not in (None, found.spec.arn):
            raise FunctionNotFound(f"Function not found: {function}")
        return found

    def spec(self, function: str) -> FunctionSpec:
        return self._function(function).spec

    def log_path(self, function: str) -> Path:
        return self._function(function).log.path

    def environments(self, function: str) -> int:
        """How many execution environments the function has now (warm or busy)."""
        return self._function(function).pool.environments

    # -- configuration ---------------------------------------------------------------------------------

    def configure_async(self, function: str, config: AsyncConfig) -> None:
        self._function(function).config = config

    def add_permission(self, function: str, principal: str, source_arn: str | None = None) -> None:
        """An aws:lambda/permission:Permission (action lambda:InvokeFunction)."""
        self._function(function).permissions.append(Permission(principal, source_arn))

    def permits(self, function: str, principal: str, source_arn: str | None) -> bool:
        """Whether the function's resource-based policy lets `principal` invoke it for `source_arn`."""
        return any(p.allows(principal, source_arn) for p in self._function(function).permissions)

    # -- invocation ------------------------------------------------------------------------------------

    @contextmanager
    def _running(self) -> Iterator[None]:
        self._activity.begin()
        try:
            yield
        finally:
            self._activity.end()

    @staticmethod
    def _payload(event: Any, limit: int, invocation_type: str) -> str:
        payload = json.dumps(event)
        size = len(payload.encode("utf-8"))
        if size > limit:
            # The service's wording (Invoke, RequestTooLargeException).
            raise RequestTooLarge(
                f"{size} byte payload is too large for the {invocation_type} invocation type "
                f"(limit {limit} bytes)"
            )
        return payload

    def _attempt(self, function: str, request_id: str, payload_json: str) -> Invocation:
        target = self._function(function)
        with self._lock:
            inject = target.faults is None or target.faults > 0
            if target.faults:
                target.faults -= 1
        fault = f"fault injected by the rehearsal into {target.spec.name}" if inject else None
        with self._running():
            outcome = target.pool.run(
                lambda sandbox: sandbox.invoke(request_id, payload_json, target.spec.arn, fault)
            )
        invocation = Invocation(
            request_id, outcome.payload, outcome.error, outcome.duration_ms, json.loads(payload_json)
        )
        with self._lock:
            target.history.append(invocation)
        return invocation

    def invoke(self, function: str, event: Any) -> Invocation:
        """InvocationType RequestResponse: run the event now and answer what the function answered."""
        target = self._function(function)
        payload = self._payload(event, SYNC_REQUEST_LIMIT_BYTES, "RequestResponse")
        return self._attempt(target.spec.name, str(uuid.uuid4()), payload)

    def invoke_async(self, function: str, event: Any) -> str:
        """InvocationType Event: queue the event (retries and destinations per the function's AsyncConfig)
        and answer its request id."""
        target = self._function(function)
        payload = self._payload(event, ASYNC_REQUEST_LIMIT_BYTES, "Event")
        request_id = str(uuid.uuid4())
        self._queue.submit(target.spec.name, target.spec.arn, request_id, payload)
        return request_id

    def fail_next(self, function: str, times: int | None = 1) -> None:
        """Make the function's next `times` invocations (None: every one from now on, 0: none) fail as
        if its handler raised at once: a rehearsal's staged fault, answered and logged as the runtime
        answers a function error."""
        target = self._function(function)
        with self._lock:
            target.faults = times

    def invocations(self, function: str) -> list[Invocation]:
        """Every invocation of the function so far, synchronous and asynchronous attempts alike, in the
        order they ended."""
        target = self._function(function)
        with self._lock:
            return list(target.history)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no invocation runs and no asynchronous event is queued or waiting for a retry."""
        return self._activity.wait_idle(timeout)

    def close(self) -> None:
        self._queue.close()
        for target in self._functions.values():
            target.pool.close()
        self._remove_files()

    def _remove_files(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> LambdaService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
