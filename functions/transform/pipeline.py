"""Turn one CSV upload into encoded training and validation rows: the transform's core, free of AWS.

An upload is read as a stream of blocks, so memory does not grow with the file. A dataset's first upload
is read twice:

1. the profile pass (`transform.profile`) counts every column, and the schema is inferred from it (so it
   does not depend on the order of the rows); it also finds, per class, the rows that anchor the split
   where the digests alone would leave a class out of one side. A third read of the same kind follows
   only when the profile counted rows the encoder will refuse, so that they shape neither the
   categories, the classes nor the anchors;
2. the encoding pass writes each labeled row to `train` or `validation`.

A later upload, with its dataset's stored schema, is encoded in one pass; only when its split leaves a
class out of one side is it profiled and encoded again, anchored.

Rows without a target are unlabeled: left out, counted, reported, never an error. A row the schema cannot
take is refused alone, with its row, line and reason; past the configured share of bad rows, below the
minimum of labeled rows, or when the file as a whole is unusable, `FileRejected` says why.
"""

from __future__ import annotations

import itertools
import operator
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

from shared.dataset_schema import (
    DatasetSchema,
    FeatureKind,
    SchemaError,
    SchemaMismatch,
    is_missing,
    missing_flags,
)
from shared.encoding import RowEncoder
from transform.csv_source import (
    CsvRows,
    CsvSyntaxError,
    NotUtf8,
    RowBlock,
    UnreadableCsv,
    locate_decode_error,
    locate_syntax_error,
)
from transform.profile import TableProfile, digests, joined, to_validation, validation_threshold
from transform.schema_inference import InferenceOptions, check_names, infer_schema, refused_classes

# Rows encoded together, column by column; the deadline is checked once per block. Wide files get fewer
# rows per block, so a block never holds more than CELLS_PER_BLOCK fields (memory bounded by width too).
BLOCK_ROWS = 2048
CELLS_PER_BLOCK = 2048 * 64
MIN_ROWS = 16

OpenSource = Callable[[], IO[bytes]]


class Split:
    """Which encoded rows go to validation: a fixed pseudo-random choice by a digest of the row's own
    fields (`transform.profile.to_validation`), so the same row goes the same way in any file and in any
    order, and identical rows never straddle the two splits. Where that would leave a class without a
    row on one side, the class's anchor row is pinned there (`transform.profile.Anchors`)."""

    def __init__(self, threshold: int, anchors: Mapping[str | None, Sequence[int]]) -> None:
        self._threshold = threshold
        self._pinned: dict[tuple[str | None, int], bool] = {}
        # Classes whose rows are copies of one row (one digest): the first copy met goes to the side the
        # digest does not send them to (which copy cannot matter: they are the same row).
        self._copies: dict[tuple[str | None, int], bool] = {}
        for key, (low, high, in_validation, in_train) in anchors.items():
            if in_validation and in_train:
                continue
            if low == high:
                self._copies[key, low] = not in_validation
                continue
            if not in_validation:
                self._pinned[key, low] = True
            if not in_train:
                self._pinned[key, high] = False
        self._digests = {digest for _, digest in (*self._pinned, *self._copies)}

    def mask(self, digests: Sequence[int], keys: Sequence[str | None]) -> list[bool]:
        """Validation flags of rows with these digests and class keys (None for regression)."""
        flags = to_validation(digests, self._threshold)
        if self._digests.isdisjoint(digests):
            return flags
        for index, (digest, key) in enumerate(zip(digests, keys, strict=True)):
            pinned = self._pinned.get((key, digest))
            if pinned is not None:
                flags[index] = pinned
            elif (key, digest) in self._copies:
                flags[index] = self._copies.pop((key, digest))
        return flags


class RowSink(Protocol):
    def write(self, lines: bytes) -> None:
        """Take whole encoded lines, each ending in a newline."""

    def abort(self) -> None:
        """Discard every line taken so far; the next write starts afresh."""


class _SplitIncomplete(Exception):
    """An unanchored split left a class out of training or validation: the upload is split again,
    anchored."""


@dataclass(frozen=True)
class RejectedRow:
    row: int  # 1-based data row, the header and blank lines not counted
    line: int  # the file's line the row starts on
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
    # Fewest labeled rows an upload must keep to be trained on.
    min_labeled_rows: int
    max_reported_rows: int = 100


@dataclass(frozen=True)
class TransformOutcome:
    schema: DatasetSchema
    schema_learned: bool
    rows_read: int
    train_rows: int
    validation_rows: int
    unlabeled_rows: int
    rejected_rows: tuple[RejectedRow, ...]
    rejected_row_count: int
    unknown_categories: dict[str, int] = field(default_factory=dict)
    # Classification only: per class label, its rows in each split.
    class_counts: dict[str, dict[str, int]] = field(default_factory=dict)


def transform_csv(
    open_source: OpenSource,
    *,
    stored_schema: DatasetSchema | None,
    options: TransformOptions,
    train: RowSink,
    validation: RowSink,
    deadline: float | None = None,
) -> TransformOutcome:
    """Encode every row of the upload into `train` or `validation`. `open_source` opens the same object
    afresh for each pass; `deadline` is a `time.monotonic()`."""
    try:
        return _Transform(open_source, stored_schema, options, deadline).into(train, validation)
    except CsvSyntaxError as error:
        located = error if error.row_line is not None else locate_syntax_error(open_source())
        raise FileRejected(str(located or error)) from None
    except NotUtf8 as error:
        raise FileRejected(str(locate_decode_error(open_source()) or error)) from None
    except (UnreadableCsv, SchemaMismatch) as error:
        raise FileRejected(str(error)) from None


@dataclass
class _Rows:
    """Rows of one block, blank ones dropped, and where each stands: its number among the file's data
    rows and the line it starts on (worked out only for the few rows a report names)."""

    rows: list[list[str]]
    texts: list[str]  # each row `joined`
    block: RowBlock
    first_number: int
    # Each row's rank among the block's non-blank rows, and its index in the block; None while they are
    # the row's own position.
    ranks: list[int] | None = None
    block_indexes: list[int] | None = None

    def number(self, index: int) -> int:
        return self.first_number + (self.ranks[index] if self.ranks is not None else index)

    def line(self, index: int) -> int:
        return self.block.line_of(self._in_block(index))

    def spans_lines(self, index: int) -> bool:
        return self.block.spans_lines(self._in_block(index))

    def _in_block(self, index: int) -> int:
        return self.block_indexes[index] if self.block_indexes is not None else index

    def compress(self, keep: Sequence[bool]) -> _Rows:
        positions = range(len(self.rows))
        return _Rows(
            list(itertools.compress(self.rows, keep)),
            list(itertools.compress(self.texts, keep)),
            self.block,
            self.first_number,
            list(itertools.compress(self.ranks if self.ranks is not None else positions, keep)),
            list(
                itertools.compress(self.block_indexes if self.block_indexes is not None else positions, keep)
            ),
        )


class _Transform:
    def __init__(
        self,
        open_source: OpenSource,
        stored: DatasetSchema | None,
        options: TransformOptions,
        deadline: float | None,
    ) -> None:
        self.open_source = open_source
        self.stored = stored
        self.options = options
        self.deadline = deadline
        self.rejected: list[RejectedRow] = []
        self.rejected_count = 0
        self._threshold = validation_threshold(options.validation_fraction)

    # --- passes over the file -------------------------------------------------------------------

    def _read(self) -> tuple[list[str], Iterator[_Rows]]:
        rows = CsvRows(self.open_source())
        if self.stored is not None:
            self.stored.check_header(rows.header)
        else:
            check_names(rows.header, self.options.inference.target_column)
        size = min(BLOCK_ROWS, max(MIN_ROWS, CELLS_PER_BLOCK // len(rows.header)))
        return rows.header, self._numbered(rows, rows.blocks(size))

    def _numbered(self, source: CsvRows, blocks: Iterator[RowBlock]) -> Iterator[_Rows]:
        number = 0
        for block in blocks:
            texts = joined(block.rows)
            if "" in map(str.strip, texts):  # a row of empty fields (",,,", as spreadsheets export) is no row
                keep = [bool(text.strip()) for text in texts]
                rows = _Rows(
                    list(itertools.compress(block.rows, keep)),
                    list(itertools.compress(texts, keep)),
                    block,
                    number + 1,
                    block_indexes=list(itertools.compress(range(len(texts)), keep)),
                )
            else:
                rows = _Rows(block.rows, texts, block, number + 1)
            number += len(rows.rows)
            yield rows
            self._check_deadline(number, source.line_number)

    def _profile(self, accept: Callable[[_Rows], list[bool]] | None = None) -> TableProfile:
        header, blocks = self._read()
        target = self.stored.target.name if self.stored else self.options.inference.target_column
        profile = TableProfile.new(header, target, self.options.inference.max_categories + 1, self._threshold)
        width = len(header)
        for rows in blocks:
            well_formed = list(map(width.__eq__, map(len, rows.rows)))
            if not all(well_formed):
                profile.malformed += well_formed.count(False)
                for index, good in enumerate(well_formed):
                    if not good and rows.spans_lines(index):
                        raise self._swallowed(rows, index, f"has {len(rows.rows[index])} fields, not {width}")
            keep = well_formed if accept is None else list(map(operator.and_, well_formed, accept(rows)))
            if not all(keep):
                rows = rows.compress(keep)
            profile.add(rows.rows, rows.texts)
        return profile

    def _schema(self) -> tuple[DatasetSchema, TableProfile, Mapping[str, str]]:
        """The upload's schema, the profile of the rows it accepts, and the labels it refuses as classes."""
        profile = self._profile()
        if profile.rows + profile.malformed == 0:
            raise self._refusal("the file has a header but no data rows")
        self._check_labeled(profile.labeled, "labeled rows")
        inference = None
        if self.stored is not None:
            schema = self.stored
            labels = profile.target.values if schema.target.problem_type.is_classification else None
            refused = refused_classes(labels or {})
        else:
            inference = infer_schema(profile, self.options.inference)
            schema, refused = inference.schema, dict(inference.refused_classes)
        if _would_reject(schema, profile, refused):
            encoder = RowEncoder(schema, profile.header, refused_classes=refused)
            profile = self._profile(lambda rows: _accepted(encoder, rows.rows))
            if inference is not None:
                inference = infer_schema(profile, self.options.inference, kinds=schema)
                schema, refused = inference.schema, {**refused, **inference.refused_classes}
        return schema, profile, refused

    def into(self, train: RowSink, validation: RowSink) -> TransformOutcome:
        """A later upload is encoded in one pass, its split unanchored; only when that leaves a class out of
        a split (a small file, a rare class) is it profiled and encoded again, anchored. A first upload is
        profiled first, for its schema."""
        if self.stored is not None:
            try:
                return self._encode(self.stored, None, {}, train, validation)
            except _SplitIncomplete:
                train.abort()
                validation.abort()
                self.rejected, self.rejected_count = [], 0
        schema, profile, refused = self._schema()
        return self._encode(schema, _anchors(schema, profile), refused, train, validation)

    def _encode(
        self,
        schema: DatasetSchema,
        anchors: Mapping[str | None, Sequence[int]] | None,
        refused: Mapping[str, str],
        train: RowSink,
        validation: RowSink,
    ) -> TransformOutcome:
        """The encoding pass; `anchors` None: unanchored, `_SplitIncomplete` when a class misses a split."""
        header, blocks = self._read()
        encoder = RowEncoder(schema, header, refused_classes=refused)
        classes = schema.target.classes
        split = Split(self._threshold, anchors or {})
        target, width, label_of = (
            encoder.target_position,
            len(header),
            operator.itemgetter(encoder.target_position),
        )
        # Accepted rows per side (True: validation) and class code (None for regression).
        counts: dict[bool, Counter[str | None]] = {True: Counter(), False: Counter()}
        rows_read = unlabeled = 0
        for rows in blocks:
            rows_read += len(rows.rows)
            if all(map(width.__eq__, map(len, rows.rows))):
                labeled = list(map(operator.not_, missing_flags(map(label_of, rows.rows))))
            else:  # a short row is refused for its width, not taken for unlabeled
                labeled = [len(row) <= target or not is_missing(row[target]) for row in rows.rows]
            if not all(labeled):
                unlabeled += labeled.count(False)
                rows = rows.compress(labeled)
            encoded = encoder.encode_block(rows.rows)
            accepted = [True] * len(rows.rows)
            for index, reason in encoded.rejected:
                if rows.spans_lines(index):
                    raise self._swallowed(rows, index, reason)
                accepted[index] = False
                self._reject(rows.number(index), rows.line(index), reason)
            row_digests = digests(
                itertools.compress(rows.texts, accepted) if encoded.rejected else rows.texts
            )
            keys: Sequence[str | None] = encoded.targets if classes else [None] * len(row_digests)
            to_validation = split.mask(row_digests, keys)
            to_train = list(map(operator.not_, to_validation))
            for side, sink, flags in ((True, validation, to_validation), (False, train, to_train)):
                lines = list(itertools.compress(encoded.lines, flags))
                if lines:
                    sink.write(("\n".join(lines) + "\n").encode())
                counts[side].update(itertools.compress(keys, flags))
        return self._outcome(schema, encoder, rows_read, unlabeled, counts, anchored=anchors is not None)

    # --- checks and reports ---------------------------------------------------------------------

    def _outcome(
        self,
        schema: DatasetSchema,
        encoder: RowEncoder,
        rows_read: int,
        unlabeled: int,
        counts: dict[bool, Counter[str | None]],
        *,
        anchored: bool,
    ) -> TransformOutcome:
        options = self.options
        if rows_read == 0:
            raise self._refusal("the file has a header but no data rows")
        labeled = rows_read - unlabeled
        if self.rejected_count > options.max_rejected_fraction * labeled:
            raise self._refusal(
                f"{self.rejected_count} of {labeled} labeled rows cannot be used, more than the allowed "
                f"{options.max_rejected_fraction:.1%}"
            )
        validation_rows, train_rows = sum(counts[True].values()), sum(counts[False].values())
        self._check_labeled(train_rows + validation_rows, "usable labeled rows")
        class_counts = {}
        if schema.target.problem_type.is_classification:
            codes = sorted({code for code in (*counts[True], *counts[False]) if code is not None}, key=int)
            class_counts = {
                encoder.label_of(code): {"train": counts[False][code], "validation": counts[True][code]}
                for code in codes
            }
            if len(codes) < 2:
                only = ", ".join(map(repr, class_counts)) or "none"
                raise self._refusal(
                    f"target {schema.target.name!r} has a single class ({only}): nothing to learn"
                )
            if not all(all(sides.values()) for sides in class_counts.values()):
                if not anchored:
                    raise _SplitIncomplete
                missing = {label: sides for label, sides in class_counts.items() if not all(sides.values())}
                raise self._refusal(f"classes did not reach both splits: {missing}")  # anchors prevent it
        if not train_rows or not validation_rows:
            if not anchored:
                raise _SplitIncomplete
            raise self._refusal(
                f"{train_rows + validation_rows} usable rows are too few to fill both a training and a "
                f"validation split ({options.validation_fraction:.0%} validation)"
            )
        try:
            schema.validate()
        except SchemaError as error:
            raise self._refusal(f"the file does not make a valid schema: {error}") from None
        return TransformOutcome(
            schema=schema,
            schema_learned=self.stored is None,
            rows_read=rows_read,
            train_rows=train_rows,
            validation_rows=validation_rows,
            unlabeled_rows=unlabeled,
            rejected_rows=tuple(self.rejected),
            rejected_row_count=self.rejected_count,
            unknown_categories=encoder.unknown_categories,
            class_counts=class_counts,
        )

    def _check_labeled(self, count: int, what: str) -> None:
        least = self.options.min_labeled_rows
        if count < least:
            raise self._refusal(
                f"{count} {what} are too few to learn from: at least minLabeledRows ({least}) are needed"
            )

    def _reject(self, row: int, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < self.options.max_reported_rows:
            self.rejected.append(RejectedRow(row, line, reason))

    def _swallowed(self, rows: _Rows, index: int, reason: str) -> FileRejected:
        """A refused row that spans lines: a quote opened in it may have swallowed the rows after it."""
        return FileRejected(
            f"the row that starts at line {rows.line(index)} runs over several lines through a quoted field "
            f"and {reason}: a quote that is never closed there swallows the rows after it; check its quotes"
        )

    def _check_deadline(self, rows_read: int, line: int) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineReached(
                f"the file could not be transformed within the function's timeout: stopped after "
                f"{rows_read} rows (line {line}); split it into smaller files",
                tuple(self.rejected),
                self.rejected_count,
            )

    def _refusal(self, reason: str) -> FileRejected:
        return FileRejected(reason, tuple(self.rejected), self.rejected_count)


def _anchors(schema: DatasetSchema, profile: TableProfile) -> dict[str | None, list[int]]:
    """The split's anchors, by class code (classification) or under None (regression)."""
    classes = schema.target.classes
    if not classes:
        return dict(profile.anchors.by_label)
    by_label = profile.class_anchors.by_label if profile.class_anchors is not None else {}
    return {str(classes.index(label)): bounds for label, bounds in by_label.items() if label in classes}


def _accepted(encoder: RowEncoder, rows: Sequence[Sequence[str]]) -> list[bool]:
    """Which rows the encoder takes (unlabeled rows count as taken: the profile counts them apart)."""
    target = encoder.target_position
    flags = [True] * len(rows)
    for index, _ in encoder.encode_block(rows).rejected:
        row = rows[index]
        flags[index] = len(row) > target and is_missing(row[target])
    return flags


def _would_reject(schema: DatasetSchema, profile: TableProfile, refused: Mapping[str, str]) -> bool:
    """Whether the encoder will refuse some well-formed, labeled row that the profile counted."""
    columns = dict(zip(profile.header, profile.columns, strict=True))
    for feature in schema.model_features:
        column = columns[feature.name]
        markers = sum(column.words[marker] for marker in feature.missing)
        if feature.kind is FeatureKind.NUMERIC and column.numbers + markers < column.present:
            return True
        if feature.kind is FeatureKind.TIMESTAMP and column.timestamps + markers < column.present:
            return True
    target = profile.target
    if not schema.target.problem_type.is_classification:
        return target.numbers < target.present
    return target.values is None or bool(refused) or not set(target.values) <= set(schema.target.classes)
