"""Benchmark of the transform function's CSV engine: speed and memory against a naive pandas transform.

    .venv-dev/bin/python -m tools.benchmark                    # 100 MB and 1 GB files
    .venv-dev/bin/python -m tools.benchmark --quick            # 10 MB and 30 MB files
    .venv-dev/bin/python -m tools.benchmark --sizes 50 --json .build/benchmark/result.json

Per file size it measures, each in a fresh interpreter so that the peak RSS is that measurement's own:
the shipped `transform_csv` writing its train and validation lines to local files (in Lambda the same
bytes go to S3 multipart uploads), both as a dataset's first upload (the schema inferred from the profile
pass) and as a later upload (the schema the first upload stored, read back from
`<data file>.schema.json`), the profile pass alone (for information), a pandas transform that reads the
whole file first (the baseline the streaming design has to beat), and a raw read of the file in 1 MiB
chunks (the I/O ceiling). It also times the cold import of the handler module. It prints the figures
against the targets of the issue, for both kinds of upload, and exits 0 whatever they are: it is a
report, not a test.

The generated CSVs are cached under .build/benchmark/, keyed by size, seed and generator version. The
files are read from the page cache (generation or the raw read has just touched them), so the figures are
CPU cost, which is what bounds the function: an S3 stream is faster than the transform.
The options are the dev stack's, read through the program's own settings and the function's own
`load_environment`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.dataset_schema import DatasetSchema

PROJECT_DIR = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = PROJECT_DIR / "functions"
CACHE_DIR = PROJECT_DIR / ".build" / "benchmark"
STACK = "dev"

DEFAULT_SIZES_MB = (100, 1000)
QUICK_SIZES_MB = (10, 30)
DEFAULT_SEED = 20240611
# Bump when the generated data changes, so cached files of the old shape are not reused.
GENERATOR_VERSION = 1
MB = 1_000_000  # figures are in decimal megabytes, as file sizes are quoted
MIB = 1024 * 1024
IMPORT_RUNS = 3
# Runs of each measurement: one run's speed varies by 10-20% on a shared machine, and the ratios with it.
DEFAULT_REPEAT = 3

# Targets of the issue.
MAX_RSS_GROWTH_MB = 64.0  # memory flat in file size
# 10 GB in one 15-minute run: 10e9 B / (900 s - 30 s reserve) = 11.5 MB/s; a first upload, read twice, half.
MIN_TRANSFORM_MB_PER_S = 12.0
MIN_SPEEDUP_OVER_PANDAS = 1.5
MIN_MEMORY_SAVING_OVER_PANDAS = 4.0  # transform peak RSS <= pandas peak RSS / 4
MAX_COLD_IMPORT_S = 1.0
# A 1-minute load average at the start above this means other work had a core busy: the figures may be low.
BUSY_LOAD = 1.0

# A dataset's first upload infers its schema (stored_schema=None); a later one is given the stored schema.
TRANSFORM_FIRST = "transform, first upload (shipped)"
TRANSFORM_LATER = "transform, later upload (shipped)"
TRANSFORMS = {TRANSFORM_FIRST: "first upload", TRANSFORM_LATER: "later upload"}
# For information: the first of the transform's passes alone (column counts, no encoding, no writing).
PROFILE = "profile pass only"
PANDAS = "pandas read-all (baseline)"
RAW_READ = "raw read"
# The engine not chosen, for the record: pyarrow's streaming reader (in the AWS SDK for pandas layer), parsing
# only, with no encoding or writing.
PYARROW_PARSE = "pyarrow stream, parse only"
# In this order: the first upload writes the schema the later upload reads.
MEASUREMENTS = {
    RAW_READ: "raw",
    TRANSFORM_FIRST: "transform-first",
    TRANSFORM_LATER: "transform-later",
    PROFILE: "profile",
    PANDAS: "pandas",
    PYARROW_PARSE: "pyarrow",
}
NAME_WIDTH = max(map(len, MEASUREMENTS))

# Run with the function's environment in a fresh interpreter: only the handler import is timed, not the
# interpreter's start, which the Lambda runtime has done before it imports the handler.
IMPORT_PROBE = (
    "import importlib, sys, time\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[2])\n"
    "print(time.perf_counter() - started)\n"
)
# The other function timed the same way: it answers API requests, so its cold start is felt by users.
PREDICT_HANDLER = "predict.handler"


def progress(message: str) -> None:
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


# --- The function's configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class StackFacts:
    """What the benchmark takes from the dev stack: the function's environment and its limits."""

    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int


def stack_facts(stack: str = STACK, function: str = "transform-function") -> StackFacts:
    """The variables the program itself gives the transform function for `stack` (run under Pulumi mocks,
    as `make synth` does), plus what the Lambda runtime adds. The credentials are dummies: boto3 builds
    its clients without talking to AWS, and nothing here calls it."""
    from settings import load_settings
    from tools.mockrun import run_program, stack_config

    config = stack_config(stack)
    settings = load_settings(config, stack=stack)
    resource = run_program(stack, config).named(function)
    environment = dict(resource.inputs["environment"]["variables"]) | {
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        # Dummies: with credentials in the environment boto3 looks no further.
        "AWS_ACCESS_KEY_ID": "benchmark",
        "AWS_SECRET_ACCESS_KEY": "benchmark",
        # Keep the developer's own AWS files out: Lambda has none, and they would change the import.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return StackFacts(environment, settings.transform.timeout_seconds, settings.transform.memory_mb)


def child_environment(function_environment: dict[str, str]) -> dict[str, str]:
    """A clean environment: the function's variables, not the shell's (PYTHONPATH, AWS_PROFILE...)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"} | function_environment


# --- Test data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    render: Callable[[random.Random], str]
    missing: bool = True  # ~1% of its fields are "" or "NA"


def _weighted(values: Sequence[str], skew: float) -> Callable[[random.Random], str]:
    """Draws from `values` with Zipf-like weights: real categories are a few common values and a tail."""
    weights = [1 / (rank**skew) for rank in range(1, len(values) + 1)]
    return lambda rng: rng.choices(values, weights)[0]


def _quoted(value: str) -> str:
    return f'"{value}"' if "," in value else value


CITY_NAMES = [
    "Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview", "Salem",
    "Madison", "Georgetown", "Arlington", "Ashland", "Dover", "Oxford", "Jackson", "Burlington",
    "Manchester", "Milton", "Newport", "Auburn",
]  # fmt: skip
STATES = ["CA", "TX", "NY", "OH", "IL", "WA", "GA", "VA", "MA", "OR"]
# 200 cities; half spelled "Name, ST", which CSV has to quote.
CITIES = [
    _quoted(f"{name}, {state}") if index % 2 else f"{name} {state}"
    for name in CITY_NAMES
    for index, state in enumerate(STATES)
]
PLANS = ["basic", "standard", "premium", "enterprise", "trial"]
COLORS = [
    f"{shade}{hue}"
    for hue in ["red", "blue", "green", "yellow", "purple", "orange", "grey", "teal"]
    for shade in ["", "dark ", "light "]
]
CHANNELS = [_quoted(c) for c in ["web", "store", "phone", "web, mobile", "email, phone", "partner", "kiosk"]]


def _exponent(rng: random.Random) -> str:
    text = f"{rng.lognormvariate(-6, 4):.4e}"  # 1e-08 .. 1e+03, sign of the exponent both ways
    return text.upper() if rng.random() < 0.3 else text


# ~12 columns of the kinds uploads have; the target sits among the features, so the transform moves it.
COLUMNS = (
    Column("age", lambda rng: str(rng.randint(18, 90))),
    Column("orders", lambda rng: str(int(rng.expovariate(1 / 12)))),
    Column("income", lambda rng: f"{rng.lognormvariate(10.8, 0.5):.2f}"),
    Column("balance", lambda rng: f"{rng.gauss(1500, 4000):.2f}"),
    Column("city", _weighted(CITIES, 0.8)),
    Column("score", lambda rng: f"{rng.random():.6f}"),
    Column("plan", _weighted(PLANS, 1.0)),
    Column("target", lambda rng: "yes" if rng.random() < 0.3 else "no", missing=False),
    Column("temperature", lambda rng: f"{rng.gauss(12, 9):.3f}"),
    Column("ratio", _exponent),
    Column("color", _weighted(COLORS, 0.5)),
    Column("channel", _weighted(CHANNELS, 1.2)),
)
POOL_SIZE = 1 << 14  # pre-rendered fields per column
MISSING_RATE = 0.01
CHUNK_ROWS = 50_000


def _pool(column: Column, rng: random.Random, delimiter: str) -> list[bytes]:
    fields = []
    for _ in range(POOL_SIZE):
        text = column.render(rng)
        if column.missing and rng.random() < MISSING_RATE:
            text = rng.choice(("", "NA"))
        fields.append((text + delimiter).encode())
    return fields


@dataclass(frozen=True)
class DataFile:
    path: Path
    size_mb: int
    seed: int
    bytes: int
    rows: int


def data_file(size_mb: int, seed: int, cache_dir: Path = CACHE_DIR) -> DataFile:
    """The cached CSV of `size_mb` MB for `seed`, generated when missing."""
    path = cache_dir / f"data-{size_mb}mb-seed{seed}-v{GENERATOR_VERSION}.csv"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        facts = json.loads(meta.read_text())
        if facts.get("bytes") == path.stat().st_size:
            return DataFile(path, size_mb, seed, int(facts["bytes"]), int(facts["rows"]))
    cache_dir.mkdir(parents=True, exist_ok=True)
    progress(f"generating {path.name}")
    started = time.perf_counter()
    written = generate_csv(path, size_mb * MB, seed)
    meta.write_text(json.dumps({"bytes": written.bytes, "rows": written.rows, "seed": seed}))
    progress(
        f"generated {written.bytes / MB:,.0f} MB, {written.rows:,} rows "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return DataFile(path, size_mb, seed, written.bytes, written.rows)


@dataclass(frozen=True)
class Written:
    bytes: int
    rows: int


def generate_csv(path: Path, target_bytes: int, seed: int) -> Written:
    """Write a CSV of about `target_bytes` (whole rows) deterministically for `seed`.

    Rows are assembled from per-column pools of pre-rendered fields picked by numpy: fast enough for a GB
    in seconds, and every row is a fresh combination, so neither engine sees a repeated line.
    """
    import numpy as np

    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    delimiters = [","] * (len(COLUMNS) - 1) + ["\n"]
    pools = np.array([_pool(c, rng, d) for c, d in zip(COLUMNS, delimiters, strict=True)], dtype=object)
    picks = np.random.default_rng(seed)
    columns = np.arange(len(COLUMNS))
    partial = path.with_suffix(".partial")
    size = rows = 0
    with partial.open("wb") as out:
        header = (",".join(c.name for c in COLUMNS) + "\n").encode()
        size += out.write(header)
        while size < target_bytes:
            chosen = picks.integers(0, POOL_SIZE, size=(CHUNK_ROWS, len(COLUMNS)), dtype=np.int64)
            chunk = b"".join(pools[columns, chosen].ravel().tolist())
            if size + len(chunk) > target_bytes:  # end on the last whole row that fits
                chunk = chunk[: chunk.rfind(b"\n", 0, target_bytes - size) + 1]
                if not chunk:
                    break
            size += out.write(chunk)
            rows += chunk.count(b"\n")
    partial.replace(path)  # an interrupted run leaves no truncated file under the cached name
    return Written(size, rows)


# --- Measurements, in the child ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChildResult:
    seconds: float
    start_rss_kib: int
    peak_rss_kib: int
    output_bytes: int
    detail: dict[str, int] = field(default_factory=dict)


def memory_kib() -> tuple[int, int]:
    """(current, peak) resident set of this process, in KiB.

    VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so a child would inherit the parent's peak.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere
    return peak, peak


class FileSink:
    """A `RowSink` on a local file: the same bytes the function streams into an S3 multipart upload."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self.bytes = 0

    def write(self, lines: bytes) -> None:
        self.bytes += self._file.write(lines)

    def abort(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self.bytes = 0

    def __enter__(self) -> FileSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._file.close()


def schema_file(path: Path) -> Path:
    """Where the first upload of the data file at `path` leaves the schema it inferred, for later uploads."""
    return path.with_name(f"{path.name}.schema.json")


def measure_first_upload(path: Path, out_dir: Path) -> ChildResult:
    """The dataset's first upload: the schema is inferred, and stored for `measure_later_upload`."""
    result, schema = _measure_transform(path, out_dir, stored_schema=None)
    stored = schema_file(path)
    partial = stored.with_suffix(".partial")
    partial.write_bytes(schema.to_json())
    partial.replace(stored)
    return result


def measure_later_upload(path: Path, out_dir: Path) -> ChildResult:
    """A later upload of the same dataset: the schema its first upload stored is checked and used."""
    from shared.dataset_schema import DatasetSchema

    stored = DatasetSchema.from_json(schema_file(path).read_bytes())  # read before the clock starts
    return _measure_transform(path, out_dir, stored_schema=stored)[0]


def _measure_transform(
    path: Path, out_dir: Path, stored_schema: DatasetSchema | None
) -> tuple[ChildResult, DatasetSchema]:
    from shared.dataset_schema import FeatureKind
    from transform.environment import load_environment
    from transform.pipeline import transform_csv

    options = load_environment().options  # parsed from the function's variables, as in Lambda
    start_rss, _ = memory_kib()
    started = time.perf_counter()
    with (
        contextlib.ExitStack() as sources,
        FileSink(out_dir / "train.csv") as train,
        FileSink(out_dir / "validation.csv") as validation,
    ):
        outcome = transform_csv(
            lambda: sources.enter_context(path.open("rb")),
            stored_schema=stored_schema,
            options=options,
            train=train,
            validation=validation,
        )
    seconds = time.perf_counter() - started
    detail = {
        "rows_read": outcome.rows_read,
        "train_rows": outcome.train_rows,
        "validation_rows": outcome.validation_rows,
        "rejected_rows": outcome.rejected_row_count,
        "categorical_columns": sum(1 for f in outcome.schema.features if f.kind is FeatureKind.CATEGORICAL),
        "schema_learned": int(outcome.schema_learned),
    }
    result = ChildResult(seconds, start_rss, memory_kib()[1], train.bytes + validation.bytes, detail)
    return result, outcome.schema


def measure_profile(path: Path, out_dir: Path) -> ChildResult:
    """The profile pass alone, as on a first upload: what the transform reads before it encodes a row.
    transform.pipeline has no public function for it, so this calls its internal pass directly."""
    from transform.environment import load_environment
    from transform.pipeline import _Transform

    options = load_environment().options
    start_rss, _ = memory_kib()
    started = time.perf_counter()
    with contextlib.ExitStack() as sources:
        transform = _Transform(lambda: sources.enter_context(path.open("rb")), None, options, None)
        profile = transform._profile()
    seconds = time.perf_counter() - started
    detail = {
        "rows_read": profile.rows + profile.malformed,
        "malformed_rows": profile.malformed,
        "unlabeled_rows": profile.unlabeled,
    }
    return ChildResult(seconds, start_rss, memory_kib()[1], 0, detail)


def measure_pandas(path: Path, out_dir: Path) -> ChildResult:
    """The obvious pandas transform: read it all, encode column by column, split, write both parts."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]

    target_column = os.environ["TARGET_COLUMN"]
    validation_fraction = int(os.environ["VALIDATION_PERCENT"]) / 100
    start_rss, _ = memory_kib()
    started = time.perf_counter()
    frame = pd.read_csv(path)  # "" and "NA" are missing by default
    target = frame.pop(target_column)
    classes = sorted(target.dropna().unique())
    encoded = {target_column: target.map({label: code for code, label in enumerate(classes)})}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            encoded[name] = column
        else:  # categories to 1..n, missing left empty
            codes, _ = pd.factorize(column, sort=True)
            encoded[name] = pd.arrays.IntegerArray(codes + 1, codes < 0)
    table = pd.DataFrame(encoded)
    buckets = pd.util.hash_array(np.arange(len(table), dtype=np.int64)) % 10_000
    to_validation = buckets < round(validation_fraction * 10_000)
    train, validation = out_dir / "train.csv", out_dir / "validation.csv"
    table[~to_validation].to_csv(train, header=False, index=False)
    table[to_validation].to_csv(validation, header=False, index=False)
    seconds = time.perf_counter() - started
    detail = {"rows_read": len(table), "validation_rows": int(to_validation.sum())}
    output_bytes = train.stat().st_size + validation.stat().st_size
    return ChildResult(seconds, start_rss, memory_kib()[1], output_bytes, detail)


def measure_raw_read(path: Path, out_dir: Path) -> ChildResult:
    start_rss, _ = memory_kib()
    started = time.perf_counter()
    total = 0
    with path.open("rb", buffering=0) as source:
        while chunk := source.read(MIB):
            total += len(chunk)
    seconds = time.perf_counter() - started
    return ChildResult(seconds, start_rss, memory_kib()[1], 0, {"bytes_read": total})


def measure_pyarrow_parse(path: Path, out_dir: Path) -> ChildResult:
    import pyarrow.csv  # type: ignore[import-untyped]

    start_rss, _ = memory_kib()
    started = time.perf_counter()
    rows = sum(batch.num_rows for batch in pyarrow.csv.open_csv(path))
    seconds = time.perf_counter() - started
    return ChildResult(seconds, start_rss, memory_kib()[1], 0, {"rows_read": rows})


CHILDREN: dict[str, Callable[[Path, Path], ChildResult]] = {
    "transform-first": measure_first_upload,
    "transform-later": measure_later_upload,
    "profile": measure_profile,
    "pandas": measure_pandas,
    "raw": measure_raw_read,
    "pyarrow": measure_pyarrow_parse,
}


def run_child(kind: str, path: Path, out_dir: Path) -> None:
    sys.path.insert(0, str(FUNCTIONS_DIR))
    result = CHILDREN[kind](path, out_dir)
    print(json.dumps(asdict(result)))


# --- Measurements, in the parent --------------------------------------------------------------------


class MeasurementFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Measurement:
    name: str
    file_bytes: int
    rows: int
    seconds: float
    start_rss_mb: float
    peak_rss_mb: float
    output_bytes: int
    detail: dict[str, int]

    @property
    def mb_per_s(self) -> float:
        return self.file_bytes / MB / self.seconds

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"mb_per_s": self.mb_per_s, "rows_per_s": self.rows_per_s}


def measure(name: str, data: DataFile, environment: dict[str, str]) -> Measurement:
    """Run one measurement in a fresh interpreter; its outputs go to a temporary directory, deleted after."""
    progress(f"{data.size_mb} MB: {name} ...")
    with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE_DIR) as out_dir:
        command = [sys.executable, "-m", "tools.benchmark", "--child", MEASUREMENTS[name]]
        command += ["--file", str(data.path), "--out-dir", out_dir]
        completed = subprocess.run(  # noqa: S603 - our own interpreter and module
            command, cwd=PROJECT_DIR, env=environment, stdout=subprocess.PIPE, text=True, check=False
        )
    if completed.returncode != 0:
        raise MeasurementFailed(f"{name} exited with status {completed.returncode}")
    result = ChildResult(**json.loads(completed.stdout.splitlines()[-1]))
    measurement = Measurement(
        name=name,
        file_bytes=data.bytes,
        rows=data.rows,
        seconds=result.seconds,
        start_rss_mb=result.start_rss_kib * 1024 / MB,
        peak_rss_mb=result.peak_rss_kib * 1024 / MB,
        output_bytes=result.output_bytes,
        detail=result.detail,
    )
    progress(
        f"{data.size_mb} MB: {name}: {measurement.seconds:.2f} s, {measurement.mb_per_s:.1f} MB/s, "
        f"peak RSS {measurement.peak_rss_mb:.0f} MB"
    )
    return measurement


@dataclass
class SizeResult:
    data: DataFile
    measurements: dict[str, Measurement]
    failures: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "size_mb": self.data.size_mb,
            "file": {"path": str(self.data.path), "bytes": self.data.bytes, "rows": self.data.rows},
            "measurements": {name: m.to_json() for name, m in self.measurements.items()},
            "failures": self.failures,
            "ratios": {ratio.key: ratio.to_json() for ratio in ratios(self)},
        }


@dataclass(frozen=True)
class Ratio:
    """`numerator` / `denominator` of one figure (MB/s or peak RSS MB) at one size."""

    key: str  # its name in the JSON output
    figure: str  # the Measurement's attribute: "mb_per_s", "peak_rss_mb" or "seconds"
    numerator: str
    denominator: str
    value: float
    numerator_value: float
    denominator_value: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# (key, figure, numerator, denominator): the ratios each size reports, when both sides ran.
RATIOS = (
    ("later_over_first_mb_per_s", "mb_per_s", TRANSFORM_LATER, TRANSFORM_FIRST),
    ("first_over_pandas_mb_per_s", "mb_per_s", TRANSFORM_FIRST, PANDAS),
    ("later_over_pandas_mb_per_s", "mb_per_s", TRANSFORM_LATER, PANDAS),
    ("pandas_over_first_peak_rss", "peak_rss_mb", PANDAS, TRANSFORM_FIRST),
    ("pandas_over_later_peak_rss", "peak_rss_mb", PANDAS, TRANSFORM_LATER),
    ("first_over_raw_read_mb_per_s", "mb_per_s", TRANSFORM_FIRST, RAW_READ),
    ("later_over_raw_read_mb_per_s", "mb_per_s", TRANSFORM_LATER, RAW_READ),
    # The profile pass's share of a first upload's time.
    ("profile_over_first_seconds", "seconds", PROFILE, TRANSFORM_FIRST),
)


def ratios(result: SizeResult) -> list[Ratio]:
    found = []
    for key, figure, numerator, denominator in RATIOS:
        top, bottom = result.measurements.get(numerator), result.measurements.get(denominator)
        if top is not None and bottom is not None:
            a, b = getattr(top, figure), getattr(bottom, figure)
            found.append(Ratio(key, figure, numerator, denominator, a / b, a, b))
    return found


def best_of(runs: list[Measurement]) -> Measurement:
    """The fastest run's time (the least disturbed by other work on the machine) with the highest peak RSS
    of all runs (memory is not noise)."""
    fastest = min(runs, key=lambda run: run.seconds)
    return replace(fastest, peak_rss_mb=max(run.peak_rss_mb for run in runs))


def measure_size(data: DataFile, environment: dict[str, str], repeat: int) -> SizeResult:
    # The raw read goes first: on a cached file it also brings the file into the page cache for the rest.
    result = SizeResult(data, {}, {})
    # The later upload uses the schema this run's first upload stores, not one an older version of the
    # code left behind.
    schema_file(data.path).unlink(missing_ok=True)
    for name in MEASUREMENTS:
        try:
            if name == TRANSFORM_LATER and not schema_file(data.path).is_file():
                # The first upload writes it on every run; only a failed first upload leaves none.
                progress(f"{data.size_mb} MB: no stored schema, running a first upload (not counted)")
                measure(TRANSFORM_FIRST, data, environment)
            result.measurements[name] = best_of([measure(name, data, environment) for _ in range(repeat)])
        except MeasurementFailed as error:  # pandas may run out of memory: report it, go on
            progress(str(error))
            result.failures[name] = str(error)
    for name in (*TRANSFORMS, PROFILE):
        rows_read = result.measurements[name].detail["rows_read"] if name in result.measurements else None
        if rows_read is not None and rows_read != data.rows:
            progress(f"warning: {name} read {rows_read:,} rows of {data.rows:,}")
    return result


def cold_imports(
    environment: dict[str, str], module: str = "transform.handler", runs: int = IMPORT_RUNS
) -> list[float]:
    """Seconds to import a handler module in a fresh interpreter, `runs` times."""
    seconds = []
    for run in range(1, runs + 1):
        completed = subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", IMPORT_PROBE, str(FUNCTIONS_DIR), module],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        seconds.append(float(completed.stdout.split()[-1]))
        progress(f"cold import of {module} {run}/{runs}: {seconds[-1]:.3f} s")
    return seconds


# --- Targets and report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    target: str  # what the figure stands for, in the words
    figure: str  # the measured figure and the bound, as printed
    passed: bool | None  # None: not measurable in this run


def _fmt_check(check: Check) -> str:
    verdict = {True: "PASS", False: "FAIL", None: "n/a "}[check.passed]
    return f"  {verdict}  {check.target}: {check.figure}"


def memory_flat_check(results: list[SizeResult], name: str) -> Check:
    target = f"memory flat in file size, {TRANSFORMS[name]}"
    with_transform = [r for r in results if name in r.measurements]
    if len(with_transform) < 2:
        return Check(target, "needs two sizes", None)
    small, large = with_transform[0], with_transform[-1]
    growth = large.measurements[name].peak_rss_mb - small.measurements[name].peak_rss_mb
    figure = (
        f"{name} peak RSS at {large.data.size_mb} MB minus at {small.data.size_mb} MB = {growth:+.1f} MB "
        f"(target <= {MAX_RSS_GROWTH_MB:.0f} MB)"
    )
    return Check(target, figure, growth <= MAX_RSS_GROWTH_MB)


def size_checks(result: SizeResult, name: str) -> list[Check]:
    """The speed and memory targets at one size, for the upload kind measured as `name`."""
    at, kind = f"at {result.data.size_mb} MB", TRANSFORMS[name]
    transform = result.measurements.get(name)
    pandas = result.measurements.get(PANDAS)
    if transform is None:
        return [Check(f"{name} {at}", "failed to run", False)]
    from transform.upload import FIRST_UPLOAD_PASSES

    # A first upload is read twice (profile, encode): its size limit per run is half a later upload's.
    passes, gigabytes = (FIRST_UPLOAD_PASSES, 5) if name == TRANSFORM_FIRST else (1, 10)
    least = MIN_TRANSFORM_MB_PER_S / passes
    checks = [
        Check(
            f"{gigabytes} GB inside one 15-minute Lambda run, {kind}",
            f"{name} {at} = {transform.mb_per_s:.1f} MB/s (target >= {least:.0f})",
            transform.mb_per_s >= least,
        )
    ]
    if pandas is None:
        return [*checks, Check(f"faster and smaller than pandas, {kind} {at}", "pandas failed to run", None)]
    speedup = transform.mb_per_s / pandas.mb_per_s
    saving = pandas.peak_rss_mb / transform.peak_rss_mb
    checks.append(
        Check(
            f"faster than pandas read-all, {kind}",
            f"{kind} / pandas MB/s {at} = {speedup:.2f} ({transform.mb_per_s:.1f} vs "
            f"{pandas.mb_per_s:.1f} MB/s; target >= {MIN_SPEEDUP_OVER_PANDAS})",
            speedup >= MIN_SPEEDUP_OVER_PANDAS,
        )
    )
    checks.append(
        Check(
            f"smaller than pandas read-all, {kind}",
            f"pandas / {kind} peak RSS {at} = {saving:.1f}x ({pandas.peak_rss_mb:.0f} MB vs "
            f"{transform.peak_rss_mb:.0f} MB; target >= {MIN_MEMORY_SAVING_OVER_PANDAS:.0f}x)",
            saving >= MIN_MEMORY_SAVING_OVER_PANDAS,
        )
    )
    return checks


def import_check(module: str, seconds: list[float]) -> Check:
    median = statistics.median(seconds)
    runs = ", ".join(f"{s:.3f}" for s in seconds)
    figure = f"median {median:.3f} s of {len(seconds)} runs ({runs}; target < {MAX_COLD_IMPORT_S:.0f} s)"
    return Check(f"cold import of {module}", figure, median < MAX_COLD_IMPORT_S)


def size_table(result: SizeResult) -> list[str]:
    data = result.data
    lines = [
        f"== {data.size_mb} MB file: {data.bytes / MB:,.1f} MB, {data.rows:,} rows, {len(COLUMNS)} columns "
        f"({data.path.name})",
        f"  {'measurement':<{NAME_WIDTH}} {'seconds':>9} {'MB/s':>8} {'rows/s':>11} "
        f"{'peak RSS MB':>12} {'start RSS MB':>13}",
    ]
    for name, m in result.measurements.items():
        lines.append(
            f"  {name:<{NAME_WIDTH}} {m.seconds:>9.2f} {m.mb_per_s:>8,.1f} {m.rows_per_s:>11,.0f} "
            f"{m.peak_rss_mb:>12.1f} {m.start_rss_mb:>13.1f}"
        )
    lines += [f"  {name:<{NAME_WIDTH}} FAILED: {reason}" for name, reason in result.failures.items()]
    for name, kind in TRANSFORMS.items():
        transform = result.measurements.get(name)
        if transform is not None:
            d = transform.detail
            lines.append(
                f"  {kind} wrote {d['train_rows']:,} train + {d['validation_rows']:,} validation rows, "
                f"{d['rejected_rows']:,} rejected, {transform.output_bytes / MB:,.1f} MB"
            )
    return lines


@dataclass(frozen=True)
class Capacity:
    """The largest object one run can take: by the function's own limit and by the measured speed, on one
    full vCPU and on the CPU share the stack's memory buys, for a later upload (one pass over the file)
    and a dataset's first upload (two passes)."""

    timeout_seconds: int
    reserve_seconds: float
    assumed_bytes_per_second: int  # one pass, per full vCPU
    one_vcpu_mb: int
    memory_mb: int  # the stack's transformMemoryMb
    assumed_max_bytes: int  # max_object_bytes(timeout, one_vcpu_mb): a later upload
    assumed_max_bytes_at_memory: int  # max_object_bytes(timeout, memory_mb)
    assumed_first_max_bytes: int  # max_object_bytes(timeout, one_vcpu_mb, passes=2)
    assumed_first_max_bytes_at_memory: int  # max_object_bytes(timeout, memory_mb, passes=2)
    # One pass over the file on one core here, at the largest size: the later upload's speed.
    measured_mb_per_s: float | None

    @property
    def vcpu_share(self) -> float:
        return min(1.0, self.memory_mb / self.one_vcpu_mb)

    @property
    def measured_max_bytes(self) -> int | None:
        if self.measured_mb_per_s is None:
            return None
        return int(self.measured_mb_per_s * MB * (self.timeout_seconds - self.reserve_seconds))

    def lines(self) -> list[str]:
        one, stack = (
            f"one vCPU ({self.one_vcpu_mb} MB)",
            f"{STACK} ({self.memory_mb} MB, {self.vcpu_share:.2f} vCPU)",
        )
        assumed = f"function's limit, {self.assumed_bytes_per_second / MB:.0f} MB/s per vCPU and pass"
        lines = [
            f"  largest object one run can take, GB ({self.timeout_seconds} s timeout, "
            f"{self.reserve_seconds:.0f} s reserve; transform.upload.max_object_bytes):",
            f"    {'':<52} {one:>20} {stack:>28}",
            _capacity_row(
                f"{assumed}, later upload", self.assumed_max_bytes, self.assumed_max_bytes_at_memory
            ),
            _capacity_row(
                "the same, first upload (two passes)",
                self.assumed_first_max_bytes,
                self.assumed_first_max_bytes_at_memory,
            ),
        ]
        measured_bytes = self.measured_max_bytes
        if self.measured_mb_per_s is None or measured_bytes is None:
            return [*lines, "    measured: n/a (the later upload's transform did not run)"]
        measured = f"measured here, later upload, {self.measured_mb_per_s:.1f} MB/s/core"
        share = self.assumed_bytes_per_second / MB / self.measured_mb_per_s
        return [
            *lines,
            _capacity_row(measured, measured_bytes, measured_bytes * self.vcpu_share),
            f"  the assumed speed per pass is {share:.2f} of the measured one (upload.py means it to be "
            "half);",
            "  the measured row takes a Lambda vCPU to be as fast as one core of this machine",
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"measured_max_bytes": self.measured_max_bytes, "vcpu_share": self.vcpu_share}


def _capacity_row(label: str, one_vcpu_bytes: float, stack_bytes: float) -> str:
    return f"    {label:<52} {one_vcpu_bytes / 1e9:>20.2f} {stack_bytes / 1e9:>28.2f}"


def capacity(results: list[SizeResult], facts: StackFacts) -> Capacity:
    from transform.upload import (
        ASSUMED_BYTES_PER_SECOND,
        FIRST_UPLOAD_PASSES,
        ONE_VCPU_MB,
        RESERVE_SECONDS,
        max_object_bytes,
    )

    largest = next(
        (r.measurements[TRANSFORM_LATER] for r in reversed(results) if TRANSFORM_LATER in r.measurements),
        None,
    )
    return Capacity(
        timeout_seconds=facts.timeout_seconds,
        reserve_seconds=RESERVE_SECONDS,
        assumed_bytes_per_second=ASSUMED_BYTES_PER_SECOND,
        one_vcpu_mb=ONE_VCPU_MB,
        memory_mb=facts.memory_mb,
        assumed_max_bytes=max_object_bytes(facts.timeout_seconds, ONE_VCPU_MB),
        assumed_max_bytes_at_memory=max_object_bytes(facts.timeout_seconds, facts.memory_mb),
        assumed_first_max_bytes=max_object_bytes(
            facts.timeout_seconds, ONE_VCPU_MB, passes=FIRST_UPLOAD_PASSES
        ),
        assumed_first_max_bytes_at_memory=max_object_bytes(
            facts.timeout_seconds, facts.memory_mb, passes=FIRST_UPLOAD_PASSES
        ),
        measured_mb_per_s=None if largest is None else largest.mb_per_s,
    )


RATIO_LABELS = {
    "later_over_first_mb_per_s": "later / first upload MB/s",
    "first_over_pandas_mb_per_s": "first upload / pandas MB/s",
    "later_over_pandas_mb_per_s": "later upload / pandas MB/s",
    "pandas_over_first_peak_rss": "pandas / first upload peak RSS",
    "pandas_over_later_peak_rss": "pandas / later upload peak RSS",
    "first_over_raw_read_mb_per_s": "first upload / raw read MB/s",
    "later_over_raw_read_mb_per_s": "later upload / raw read MB/s",
    "profile_over_first_seconds": "profile pass / first upload seconds",
}


def ratio_lines(results: list[SizeResult]) -> list[str]:
    lines = []
    for result in results:
        for ratio in ratios(result):
            unit, digits = {"mb_per_s": ("MB/s", 1), "peak_rss_mb": ("MB", 1), "seconds": ("s", 2)}[
                ratio.figure
            ]
            label = f"{RATIO_LABELS[ratio.key]} at {result.data.size_mb} MB:"
            lines.append(
                f"  {label:<48} {ratio.value:.4f} "
                f"({ratio.numerator_value:,.{digits}f} vs {ratio.denominator_value:,.{digits}f} {unit})"
            )
    return lines


@dataclass(frozen=True)
class Report:
    results: list[SizeResult]
    import_seconds: list[float]
    predict_import_seconds: list[float]
    checks: list[Check]
    capacity: Capacity
    facts: StackFacts
    # 1-minute load averages before and after: other work on the machine slows every figure down.
    load_average: tuple[float, float]
    repeat: int

    def lines(self) -> list[str]:
        lines = [
            f"Transform benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"options of the {STACK} stack (validation {self.facts.environment['VALIDATION_PERCENT']}%, "
            f"max rejected {self.facts.environment['MAX_REJECTED_ROWS_PERCENT']}%, "
            f"max categories {self.facts.environment['MAX_CATEGORIES']}, "
            f"problem type {self.facts.environment['PROBLEM_TYPE']}); "
            f"each figure the best of {self.repeat} runs",
            self._load_line(),
            "",
        ]
        for result in self.results:
            lines += [*size_table(result), ""]
        lines += ["Targets", *map(_fmt_check, self.checks), "", "Figures (no target)"]
        lines += [*ratio_lines(self.results), *self.capacity.lines(), ""]
        failed = [c for c in self.checks if c.passed is False]
        if failed:
            lines.append(f"{len(failed)} of {len(self.checks)} targets FAIL:")
            lines += [f"  - {c.target}: {c.figure}" for c in failed]
        else:
            lines.append(f"All {sum(c.passed is True for c in self.checks)} measurable targets pass.")
        return lines

    def _load_line(self) -> str:
        before, after = self.load_average  # after includes the benchmark's own last minute
        busy = before >= BUSY_LOAD
        return f"load average {before:.2f} before, {after:.2f} after" + (
            ": other work kept the machine busy, the speeds may be low" if busy else ""
        )

    def to_json(self) -> dict[str, Any]:
        public_env = {k: v for k, v in self.facts.environment.items() if not k.startswith("AWS_")}
        return {
            "python": sys.version,
            "cpu_count": os.cpu_count(),
            "function_environment": public_env,
            "sizes": [r.to_json() for r in self.results],
            "cold_import_seconds": {
                "runs": self.import_seconds,
                "median": statistics.median(self.import_seconds),
            },
            "predict_cold_import_seconds": {
                "runs": self.predict_import_seconds,
                "median": statistics.median(self.predict_import_seconds),
            },
            "targets": [asdict(c) for c in self.checks],
            "capacity": self.capacity.to_json(),
            "load_average": self.load_average,
        }


def benchmark(sizes_mb: Sequence[int], seed: int, repeat: int) -> Report:
    sys.path.insert(0, str(FUNCTIONS_DIR))
    load_before = os.getloadavg()[0]
    facts = stack_facts()
    environment = child_environment(facts.environment)
    files = [data_file(size, seed) for size in sizes_mb]
    results = [measure_size(data, environment, repeat) for data in files]
    import_seconds = cold_imports(environment)
    predict_environment = child_environment(stack_facts(function="predict-function").environment)
    predict_seconds = cold_imports(predict_environment, PREDICT_HANDLER)
    checks = [memory_flat_check(results, name) for name in TRANSFORMS]
    for result in results:
        for name in TRANSFORMS:
            checks += size_checks(result, name)
    checks.append(import_check("transform.handler", import_seconds))
    checks.append(import_check(PREDICT_HANDLER, predict_seconds))
    load = (load_before, os.getloadavg()[0])
    return Report(
        results, import_seconds, predict_seconds, checks, capacity(results, facts), facts, load, repeat
    )


# --- Command line ------------------------------------------------------------------------------------


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes are whole MB separated by commas") from None
    if not sizes or sizes[0] <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one size above 0 MB")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--sizes", type=_sizes, default=DEFAULT_SIZES_MB, help="file sizes in MB, e.g. 100,1000"
    )
    group.add_argument("--quick", action="store_true", help=f"sizes {','.join(map(str, QUICK_SIZES_MB))} MB")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the generated data")
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help="runs per measurement; the fastest one counts"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    # The parent runs each measurement as `--child KIND --file CSV --out-dir DIR` in a fresh interpreter.
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args.file, args.out_dir)
        return 0
    sizes: tuple[int, ...] = QUICK_SIZES_MB if args.quick else args.sizes
    report = benchmark(sizes, args.seed, max(1, args.repeat))
    print("\n".join(report.lines()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        progress(f"wrote {args.json}")
    return 0  # a report: failing targets are printed, not an error


if __name__ == "__main__":
    sys.exit(main())
