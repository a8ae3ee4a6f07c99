"""Turn one CSV upload into encoded training and validation rows: the transform's core, free of AWS.

Rows stream from the source through the schema's encoder into two sinks, one row at a time, so memory
does not grow with the file. A row the schema cannot take is counted and reported; past the configured
share of bad rows, or when the file as a whole is unusable, `FileRejected` says why.
"""

from __future__ import annotations

import itertools
import operator
import time
import zlib
from dataclasses import dataclass, field
from typing import IO, Protocol

from shared.dataset_schema import DatasetSchema, ProblemType, SchemaError, SchemaMismatch
from shared.encoding import EncoderLimits, RowEncoder
from transform.csv_source import CsvRows, RowBlock, UnreadableCsv
from transform.schema_inference import InferenceOptions, infer_schema

# Rows encoded together, column by column; the deadline is checked once per block. Wide files get fewer
# rows per block, so a block never holds more than CELLS_PER_BLOCK fields (memory bounded by width too).
BLOCK_ROWS = 2048
CELLS_PER_BLOCK = 2048 * 64
# Rows a new dataset's column kinds are inferred from (fewer for wide files, by the same cell budget).
SAMPLE_ROWS = 2048
MIN_ROWS = 16


class Split:
    """Which encoded rows go to validation: a fixed pseudo-random pattern over the row's position among
    the file's accepted rows, so the same file always splits the same way, in blocks of any size."""

    PERIOD = 1 << 16
    BUCKETS = 10_000

    def __init__(self, validation_fraction: float) -> None:
        threshold = round(validation_fraction * self.BUCKETS)
        pattern = [
            zlib.crc32(position.to_bytes(4, "little")) % self.BUCKETS < threshold
            for position in range(self.PERIOD)
        ]
        self._pattern = pattern * 2

    def mask(self, start: int, count: int) -> list[bool]:
        """Validation flags of `count` rows from position `start` on."""
        flags: list[bool] = []
        while len(flags) < count:
            offset = (start + len(flags)) % self.PERIOD
            flags += self._pattern[offset : offset + min(count - len(flags), self.PERIOD)]
        return flags


class RowSink(Protocol):
    def write(self, lines: bytes) -> None:
        """Take whole encoded lines, each ending in a newline."""


@dataclass(frozen=True)
class RejectedRow:
    row: int  # 1-based data row, the header not counted
    line: int | None  # the file's line the row is on, when the row is a single line
    reason: str


class FileRejected(Exception):
    """The upload as a whole cannot become training data; nothing of it may be used."""

    def __init__(
        self, reason: str, rejected_rows: tuple[RejectedRow, ...] = (), rejected_row_count: int = 0
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rejected_rows = rejected_rows
        self.rejected_row_count = max(rejected_row_count, len(rejected_rows))


class DeadlineReached(FileRejected):
    """The run reached its deadline before the end of the file."""


@dataclass(frozen=True)
class TransformOptions:
    validation_fraction: float
    max_rejected_fraction: float
    inference: InferenceOptions
    limits: EncoderLimits
    sample_rows: int = SAMPLE_ROWS
    max_reported_rows: int = 100


@dataclass(frozen=True)
class TransformOutcome:
    schema: DatasetSchema
    schema_learned: bool
    rows_read: int
    train_rows: int
    validation_rows: int
    rejected_rows: tuple[RejectedRow, ...]
    rejected_row_count: int
    unknown_categories: dict[str, int] = field(default_factory=dict)
    class_counts: dict[str, int] = field(default_factory=dict)


def transform_csv(
    source: IO[bytes],
    *,
    stored_schema: DatasetSchema | None,
    options: TransformOptions,
    train: RowSink,
    validation: RowSink,
    deadline: float | None = None,
) -> TransformOutcome:
    """Encode every row of `source` into `train` or `validation`; `deadline` is a `time.monotonic()`."""
    try:
        rows = CsvRows(source)
        return _Run(rows, stored_schema, options, deadline).into(train, validation)
    except (UnreadableCsv, SchemaMismatch) as error:
        raise FileRejected(str(error)) from None


class _Run:
    def __init__(
        self, rows: CsvRows, stored: DatasetSchema | None, options: TransformOptions, deadline: float | None
    ) -> None:
        self.rows = rows
        self.options = options
        self.deadline = deadline
        self.learning = stored is None
        cells_fit = max(MIN_ROWS, CELLS_PER_BLOCK // len(rows.header))
        self.blocks = rows.blocks(min(BLOCK_ROWS, cells_fit))
        # The first upload's schema is inferred from its first rows, which are then encoded first.
        self.read_ahead: list[RowBlock] = []
        if stored is None:
            sample: list[list[str]] = []
            sample_rows = min(options.sample_rows, cells_fit)
            while len(sample) < sample_rows and (block := next(self.blocks, None)) is not None:
                self.read_ahead.append(block)
                sample += block.rows
            stored = infer_schema(rows.header, sample[:sample_rows], options.inference)
        limits = options.limits
        if options.inference.problem_type is ProblemType.BINARY:
            limits = EncoderLimits(limits.max_categories, max_classes=2)
        self.encoder = RowEncoder(stored, rows.header, learning=self.learning, limits=limits)
        self.rejected: list[RejectedRow] = []
        self.rejected_count = 0
        self.split = Split(options.validation_fraction)

    def into(self, train: RowSink, validation: RowSink) -> TransformOutcome:
        train_rows = validation_rows = rows_read = 0
        for rows in itertools.chain(self.read_ahead, self.blocks):
            encoded = self.encoder.encode_block(rows.rows)
            blank = 0
            for index, reason in encoded.rejected:
                if not "".join(rows.rows[index]).strip():
                    blank += 1  # a row of empty fields (",,,", as spreadsheets export) is no row
                    continue
                self._reject(rows_read + index + 1 - blank, rows.line_of(index), reason)
            rows_read += len(rows.rows) - blank
            to_validation = self.split.mask(train_rows + validation_rows, len(encoded.lines))
            validation_lines = list(itertools.compress(encoded.lines, to_validation))
            train_lines = list(itertools.compress(encoded.lines, map(operator.not_, to_validation)))
            if train_lines:
                train.write(("\n".join(train_lines) + "\n").encode())
                train_rows += len(train_lines)
            if validation_lines:
                validation.write(("\n".join(validation_lines) + "\n").encode())
                validation_rows += len(validation_lines)
            self._check_deadline(rows_read)
        return self._outcome(rows_read, train_rows, validation_rows)

    def _reject(self, row: int, line: int | None, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < self.options.max_reported_rows:
            self.rejected.append(RejectedRow(row, line, reason))

    def _check_deadline(self, rows_read: int) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineReached(
                f"the file could not be transformed within the function's timeout: stopped after "
                f"{rows_read} rows (line {self.rows.line_number}); split it into smaller files",
                tuple(self.rejected),
                self.rejected_count,
            )

    def _refusal(self, reason: str) -> FileRejected:
        return FileRejected(reason, tuple(self.rejected), self.rejected_count)

    def _outcome(self, rows_read: int, train_rows: int, validation_rows: int) -> TransformOutcome:
        options = self.options
        if rows_read == 0:
            raise self._refusal("the file has a header but no data rows")
        if self.rejected_count > options.max_rejected_fraction * rows_read:
            raise self._refusal(
                f"{self.rejected_count} of {rows_read} rows cannot be used, more than the allowed "
                f"{options.max_rejected_fraction:.1%}"
            )
        if not train_rows or not validation_rows:
            raise self._refusal(
                f"{train_rows + validation_rows} usable rows are too few to fill both a training and a "
                f"validation split ({options.validation_fraction:.0%} validation)"
            )
        for name, count in self.encoder.overflowing_categories.items():
            raise self._refusal(
                f"column {name!r} has more than maxCategories ({options.limits.max_categories}) distinct "
                f"values ({count} rows past the limit): raise maxCategories, or leave the column out"
            )
        schema = (
            self.encoder.learned_schema(options.inference.problem_type)
            if self.learning
            else self.encoder.schema
        )
        class_counts = self.encoder.class_counts
        if schema.target.problem_type.is_classification and len(class_counts) < 2:
            raise self._refusal(
                f"target {schema.target.name!r} has a single class {next(iter(class_counts))!r}: "
                "there is nothing to learn"
            )
        try:
            schema.validate()
        except SchemaError as error:
            raise self._refusal(f"the file does not make a valid schema: {error}") from None
        return TransformOutcome(
            schema=schema,
            schema_learned=self.learning,
            rows_read=rows_read,
            train_rows=train_rows,
            validation_rows=validation_rows,
            rejected_rows=tuple(self.rejected),
            rejected_row_count=self.rejected_count,
            unknown_categories=self.encoder.unknown_categories,
            class_counts=class_counts,
        )
