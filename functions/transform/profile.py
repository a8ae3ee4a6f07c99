"""What one pass over an upload learns of its columns: the facts its schema is inferred from, and the rows
its split is anchored on.

Every figure is a count, a sum, a minimum or maximum, or a set of values capped in size: each a fold over
rows that does not care for their order. The profile of a file is therefore a function of the set of its
rows, however they are sorted and however they fall into blocks, and its memory is bounded by the number
of columns and the caps, not by the size of the file.
"""

from __future__ import annotations

import itertools
import operator
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.dataset_schema import (
    MISSING_MARKERS,
    DecimalComma,
    OutOfRange,
    is_timestamp,
    missing_flags,
    parse_number,
    parse_timestamp,
)
from shared.encoding import NumberField, plain_numbers, whole_numbers

# Distinct words (values that are neither numbers nor dates) counted exactly per column: enough to tell
# a column's own spellings of "no value" (at most 3 of them) from a column of text.
WORD_KINDS = 4
# Fewest values of a column that can show it to be a row number.
MIN_ROW_NUMBERS = 10
# Values whose kind is remembered per column, so that a column of repeated words is classified once per
# distinct value, not once per row.
KIND_CACHE = 4096
# The split's digest buckets: a row goes to validation when its digest modulo SPLIT_BUCKETS is below the
# threshold of the validation share.
SPLIT_BUCKETS = 10_000
# Labels in a block up to which the anchors are found label by label, with one pass over the block each.
FEW_LABELS = 16
_SEPARATOR = "\x1f"
_NUMBERS = NumberField()


def joined(rows: Iterable[Sequence[str]]) -> list[str]:
    """Each row's fields as one text, separated by a character that `str.strip` takes for white space, so
    the text of a row of empty fields strips to nothing."""
    return list(map(_SEPARATOR.join, rows))


def digests(joined_rows: Iterable[str]) -> list[int]:
    """A digest of each row's raw fields (its `joined` text): the split's key, the same for the same row in
    any file."""
    return list(map(zlib.crc32, map(str.encode, joined_rows)))


class _Kind:
    NUMBER = 0
    OUT_OF_RANGE = 1
    TIMESTAMP = 2
    DECIMAL_COMMA = 3
    WORD = 4


def _kind_of(value: str) -> int:
    """The kind of a present, stripped value."""
    head = value[0]
    # Cheap first: float() accepts no text starting with a letter but inf, infinity and nan.
    if head.isalpha() and head not in "iInN":
        return _Kind.WORD
    try:
        parse_number(value)
    except OutOfRange:
        return _Kind.OUT_OF_RANGE
    except DecimalComma:
        return _Kind.DECIMAL_COMMA
    except ValueError:
        if is_timestamp(value):
            try:
                parse_timestamp(value)
            except ValueError:
                return _Kind.WORD  # written like a date, but no date (2024-02-30): refused by its row
            return _Kind.TIMESTAMP
        return _Kind.WORD
    return _Kind.NUMBER


@dataclass
class ColumnProfile:
    """One column's values, as far as its kind and codes are concerned. Values are counted stripped."""

    # Most distinct values kept in `values`; past it the column has too many to be categories or classes.
    value_limit: int
    present: int = 0  # values that are not a missing-value marker
    numbers: int = 0  # finite numbers within float32
    out_of_range: int = 0  # infinities and numbers beyond float32
    timestamps: int = 0  # valid ISO 8601 dates and timestamps
    decimal_commas: int = 0
    comma_example: str = ""
    # Numbers written as plain ASCII digits, their range, sum and sum of squares: enough to recognise a
    # row number (each whole number of a range exactly once) without keeping the values.
    digits_only: bool = True
    low: int | None = None
    high: int | None = None
    total: int = 0
    squares: int = 0
    # The first WORD_KINDS distinct words and their counts; `many_words` once there were more.
    words: Counter[str] = field(default_factory=Counter)
    many_words: bool = False
    # Every present value and its count, until there are more than `value_limit` distinct (then None).
    values: Counter[str] | None = field(default_factory=Counter)
    _kinds: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def word_count(self) -> int:
        return self.present - self.numbers - self.out_of_range - self.timestamps - self.decimal_commas

    def add(self, texts: Sequence[str]) -> None:
        """Count one block's values of this column."""
        if whole_numbers(texts):  # ASCII digits or empty: the common integer column
            present = list(filter(None, texts))
            self._add_numbers(present)
            self._add_digits(present)
            self._add_values(present)
            return
        cleaned = _NUMBERS.without_missing(texts)
        if plain_numbers(cleaned):  # plain decimals within float32, or missing
            present = list(filter(None, cleaned))
            self._add_numbers(present)
            if self.digits_only and whole_numbers(present):
                self._add_digits(present)
            elif present:
                self.digits_only = False
            self._add_values(present)
            return
        counts = Counter(map(str.strip, texts))
        for value in [value for value in counts if value.lower() in MISSING_MARKERS]:
            del counts[value]
        for value, count in counts.items():
            self._add_value(value, count)
        self._add_values(counts)

    def _add_value(self, value: str, count: int) -> None:
        kind = self._kinds.get(value)
        if kind is None:
            kind = _kind_of(value)
            if len(self._kinds) < KIND_CACHE:
                self._kinds[value] = kind
        self.present += count
        if kind == _Kind.NUMBER:
            self.numbers += count
            if self.digits_only and value.isascii() and value.isdecimal():
                self._add_digits([value] * count)
            else:
                self.digits_only = False
        elif kind == _Kind.OUT_OF_RANGE:
            self.out_of_range += count
        elif kind == _Kind.TIMESTAMP:
            self.timestamps += count
        elif kind == _Kind.DECIMAL_COMMA:
            self.decimal_commas += count
            self.comma_example = min(self.comma_example or value, value)
        elif value in self.words or len(self.words) < WORD_KINDS:
            self.words[value] += count
        else:
            self.many_words = True

    def _add_numbers(self, present: list[str]) -> None:
        self.present += len(present)
        self.numbers += len(present)

    def _add_digits(self, present: list[str]) -> None:
        if not self.digits_only or not present:
            return
        numbers = list(map(int, present))
        low, high = min(numbers), max(numbers)
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        self.total += sum(numbers)
        self.squares += sum(map(operator.mul, numbers, numbers))

    def _add_values(self, present: Iterable[str] | Counter[str]) -> None:
        if self.values is None:
            return
        self.values.update(present)
        if len(self.values) > self.value_limit:
            self.values = None

    @property
    def is_row_number(self) -> bool:
        """Whether the column holds each whole number of a range exactly once (checked by the count, sum
        and sum of squares of its values, which no other multiset of whole numbers of that range shares
        in practice)."""
        if not self.digits_only or self.low is None or self.high is None or self.present != self.numbers:
            return False
        count, low, high = self.present, self.low, self.high
        if count < MIN_ROW_NUMBERS or high - low + 1 != count:
            return False

        def squares_to(n: int) -> int:
            return n * (n + 1) * (2 * n + 1) // 6

        return self.total * 2 == count * (low + high) and self.squares == squares_to(high) - squares_to(
            low - 1
        )


def validation_threshold(fraction: float) -> int:
    """The digest buckets below which a row goes to validation."""
    return round(fraction * SPLIT_BUCKETS)


def to_validation(row_digests: Iterable[int], threshold: int) -> list[bool]:
    """Whether each row goes to validation by its digest alone (before any anchor)."""
    return list(map(threshold.__gt__, map(SPLIT_BUCKETS.__rmod__, row_digests)))


@dataclass
class Anchors:
    """Per class (one entry, None, for regression): the smallest and largest row digest, and how many
    rows the digest alone sends to validation and to training. A class that one side would lack gets a row
    pinned there: the split sends the row of the smallest digest to validation, or of the largest to
    training, so both splits hold every class."""

    threshold: int
    by_label: dict[str | None, list[int]] = field(default_factory=dict)

    def add(self, labels: Sequence[str | None], hashes: Sequence[int]) -> None:
        distinct = set(labels)
        if len(distinct) > FEW_LABELS:
            blocks = [(label, [digest]) for label, digest in zip(labels, hashes, strict=True)]
        else:  # a pass over the block per label, in C, rather than a Python step per row
            blocks = [
                (label, list(itertools.compress(hashes, map(operator.eq, labels, itertools.repeat(label)))))
                for label in distinct
            ]
        extremes = self.by_label
        for label, digests_of_label in blocks:
            low, high = min(digests_of_label), max(digests_of_label)
            validation = sum(to_validation(digests_of_label, self.threshold))
            bounds = extremes.setdefault(label, [low, high, 0, 0])
            bounds[0], bounds[1] = min(bounds[0], low), max(bounds[1], high)
            bounds[2] += validation
            bounds[3] += len(digests_of_label) - validation


@dataclass
class TableProfile:
    """A whole upload: every feature column over its well-formed rows, the target over its labeled rows."""

    header: tuple[str, ...]
    target_index: int
    columns: list[ColumnProfile]
    # Overall, and per class label while the target has few enough distinct labels to be classes.
    anchors: Anchors
    class_anchors: Anchors | None
    rows: int = 0  # well-formed rows, labeled or not
    unlabeled: int = 0
    malformed: int = 0  # rows with another field count than the header

    @staticmethod
    def new(header: Sequence[str], target_column: str, value_limit: int, threshold: int) -> TableProfile:
        """`threshold`: the split's `validation_threshold`."""
        names = tuple(name.strip() for name in header)
        columns = [ColumnProfile(value_limit) for _ in names]
        return TableProfile(
            names, names.index(target_column), columns, Anchors(threshold), Anchors(threshold)
        )

    @property
    def target(self) -> ColumnProfile:
        return self.columns[self.target_index]

    @property
    def labeled(self) -> int:
        return self.rows - self.unlabeled

    def add(self, rows: Sequence[Sequence[str]], texts: Sequence[str]) -> None:
        """Count one block of well-formed, non-blank rows, with their `joined` texts."""
        if not rows:
            return
        self.rows += len(rows)
        columns = list(zip(*rows, strict=True))
        labels = columns[self.target_index]
        labeled = list(map(operator.not_, missing_flags(labels)))
        for index, column in enumerate(self.columns):
            if index != self.target_index:
                column.add(columns[index])
        if not all(labeled):
            self.unlabeled += labeled.count(False)
            texts = list(itertools.compress(texts, labeled))
            labels = tuple(itertools.compress(labels, labeled))
        if not texts:
            return
        self.target.add(labels)
        hashes = digests(texts)
        self.anchors.add([None] * len(hashes), hashes)
        if self.class_anchors is not None:
            if self.target.values is None:
                self.class_anchors = None  # more distinct labels than classes may be: not classification
            else:
                self.class_anchors.add(list(map(str.strip, labels)), hashes)
