"""Encode records into the rows the model reads: the one encoding of training and serving.

The transform encodes CSV fields and the predict function encodes JSON values through the same field
encoders, so a record means the same thing to the model in both places:

- numeric: a plain decimal (digits, sign, point, exponent) is kept as written; any other text that is a
  finite number (` 1.5`, `1_000`, full-width digits) becomes Python's shortest repr of the float; a
  missing marker or NaN becomes an empty field, which XGBoost reads as missing; infinities, numbers beyond
  float32 (XGBoost's value type) and anything else are refused;
- timestamp: an ISO 8601 date or timestamp becomes its days since 1970-01-01 UTC;
- categorical: the category's code from the schema (1, 2, ...), `UNKNOWN_CATEGORY_CODE` for a value the
  schema does not know, an empty field for a missing value; values compare with surrounding whitespace
  removed;
- target: the class code (0 .. classes - 1) for classification, the number for regression.

A schema of version 2 or later ends every line with `WIDTH_MARKER` (`1`), a constant last column. XGBoost's
CSV reader stores a row sparsely and counts a file's columns up to the last value it holds, so without it
a run whose last feature is empty in every row would train a model one feature short, and the serving
container, which strips a request body, would lose a record whose fields are all empty.

Each field encoder has `one(text)` for a single value and `many(texts)`, a fast path over a column of a
block of rows built from C-implemented builtins, which returns None whenever a value needs `one`'s care;
both give the same result for every value (tested property).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.dataset_schema import (
    MISSING_MARKERS,
    UNKNOWN_CATEGORY_CODE,
    WIDTH_MARKER,
    DatasetSchema,
    DecimalComma,
    Feature,
    FeatureKind,
    decimal_comma_refusal,
    is_missing,
    parse_number,
    parse_timestamp,
)

_PLAIN_NUMBER_BYTES = b"0123456789.eE+-"
# Plain ASCII decimals, one per line, that are certainly within float32 (XGBoost's value type, max 3.4e38):
# up to 38 integer digits without an exponent (< 1e38), or up to 20 with an exponent of at most +17
# (< 1e37); any negative exponent only underflows towards 0. Other numbers take `one`'s exact check. An
# empty line is a missing value, which stays an empty field. Possessive quantifiers: no backtracking,
# about a third faster on this hot path.
_PLAIN_FINITE_NUMBERS = re.compile(
    r"(?:(?:[+-]?+(?:"
    r"(?:[0-9]{1,20}+(?:\.[0-9]*+)?+|\.[0-9]++)[eE](?:-[0-9]{1,3}+|\+?+(?:1[0-7]|0?+[0-9]))"
    r"|[0-9]{1,38}+(?:\.[0-9]*+)?+|\.[0-9]++"
    r"))?+\n)*+",
    re.ASCII,
)
# The usual spellings of the missing-value markers, each mapped to the empty field `one` writes for it.
_MISSING_SPELLINGS = {
    spelling: ""
    for marker in MISSING_MARKERS
    for spelling in {marker, marker.upper(), marker.title(), marker.capitalize()}
}
UNKNOWN_CODE = str(UNKNOWN_CATEGORY_CODE)
# Raw spellings remembered per column for the fast path, beyond the canonical values themselves.
MAX_SPELLINGS = 4096
# Integers of at most this many digits are below 1e38, within float32.
_MAX_WHOLE_DIGITS = 38


class RecordRejected(ValueError):
    """One record the model cannot take; the message names the field and what is wrong."""


class FieldEncoder(Protocol):
    def one(self, text: str) -> str: ...

    def many(self, texts: Sequence[str]) -> Sequence[str] | None: ...


def _is_plain(text: str) -> bool:
    return text.isascii() and not text.encode().translate(None, _PLAIN_NUMBER_BYTES)


def whole_numbers(texts: Sequence[str]) -> bool:
    """Whether every text is empty or ASCII digits, few enough to stay within float32: a cheap test that
    most integer columns pass, and that needs no regular expression."""
    digits = "".join(texts)
    return digits.isascii() and digits.isdecimal() and max(map(len, texts), default=0) <= _MAX_WHOLE_DIGITS


def plain_numbers(texts: Sequence[str]) -> bool:
    """Whether every text is empty or a plain ASCII decimal that is a finite float."""
    lines = "\n".join(texts)
    # A field holding a line end of its own would pass as two numbers; `one` handles it.
    return lines.count("\n") == len(texts) - 1 and _PLAIN_FINITE_NUMBERS.fullmatch(lines + "\n") is not None


class NumberField:
    """A numeric column; `missing` adds the column's own spellings of "no value" (a dataset that writes
    `-` or `unknown` for a missing number) to the common markers."""

    def __init__(self, missing: Sequence[str] = ()) -> None:
        self._missing = frozenset(missing)
        self._spellings = _MISSING_SPELLINGS | dict.fromkeys(missing, "")

    def one(self, text: str) -> str:
        if text.strip() in self._missing:
            return ""
        value = parse_number(text)
        if value is None:
            return ""
        return text if _is_plain(text) else repr(value)

    def many(self, texts: Sequence[str]) -> Sequence[str] | None:
        if whole_numbers(texts):
            return texts
        cleaned = self.without_missing(texts)
        return cleaned if whole_numbers(cleaned) or plain_numbers(cleaned) else None

    def without_missing(self, texts: Sequence[str]) -> list[str]:
        """`texts` with the usual spellings of a missing value as empty fields: real columns have a few
        in every block."""
        return list(map(self._spellings.get, texts, texts))


_NUMBER = NumberField()


class TimestampField:
    """An ISO 8601 date or timestamp column, as days since 1970-01-01 UTC; `missing` as for numbers."""

    def __init__(self, missing: Sequence[str] = ()) -> None:
        self._missing = frozenset(missing)

    def one(self, text: str) -> str:
        if text.strip() in self._missing:
            return ""
        days = parse_timestamp(text)
        if days is None:
            return ""
        return str(int(days)) if days.is_integer() else repr(round(days, 6))

    @staticmethod
    def many(texts: Sequence[str]) -> Sequence[str] | None:
        return None  # no fast path: dates are parsed one by one


class _Codes:
    """A value -> code map over the values the schema knows."""

    def __init__(self, known: Sequence[str], first_code: int, *, spellings: int = MAX_SPELLINGS) -> None:
        self._codes = {value: str(code) for code, value in enumerate(known, start=first_code)}
        # Every raw spelling met that maps to a code or to missing, so `many` is a plain dict lookup; at
        # most `spellings` beyond the values themselves (0 where requests, not files, bring the values).
        self._spellings = dict(self._codes)
        self._spelling_limit = len(self._codes) + spellings

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._codes)

    def many(self, texts: Sequence[str]) -> list[str] | None:
        codes = list(map(self._spellings.get, texts))
        return None if None in codes else codes  # type: ignore[return-value]

    def lookup(self, text: str) -> str | None:
        """The code of `text` ("" when missing); None when it is unknown."""
        value = text.strip()
        code = self._codes.get(value)
        if code is None:
            if not is_missing(value):
                return None
            code = ""
        if len(self._spellings) < self._spelling_limit:
            self._spellings[text] = code
        return code


class CategoryField(_Codes):
    def __init__(self, known: Sequence[str], *, spellings: int = MAX_SPELLINGS) -> None:
        super().__init__(known, 1, spellings=spellings)

    def one(self, text: str) -> str:
        code = self.lookup(text)
        return UNKNOWN_CODE if code is None else code


class ClassField(_Codes):
    """Class labels; `refused` gives the reason for labels that are known not to be classes (a class of
    the file with too few rows to be learned)."""

    def __init__(self, known: Sequence[str], refused: Mapping[str, str] | None = None) -> None:
        super().__init__(known, 0)
        # A refused label may be a class of the schema (a later upload with one row of it): never coded.
        self._refused = dict(refused or {})
        for label in self._refused:
            self._spellings.pop(label, None)

    def one(self, text: str) -> str:
        label = text.strip()
        if label in self._refused:
            raise ValueError(self._refused[label])
        code = self.lookup(text)
        if code == "":
            raise ValueError("the target is empty")
        if code is None:
            known = ", ".join(map(repr, self.values[:10]))
            raise ValueError(f"class {label[:40]!r} is not one of the target's classes ({known})")
        return code

    def many(self, texts: Sequence[str]) -> list[str] | None:
        codes = super().many(texts)
        return None if codes is None or "" in codes else codes


class RegressionTarget:
    @staticmethod
    def one(text: str) -> str:
        code = _NUMBER.one(text)
        if not code:
            raise ValueError("the target is empty")
        return code

    @staticmethod
    def many(texts: Sequence[str]) -> Sequence[str] | None:
        codes = _NUMBER.many(texts)
        return None if codes is None or "" in codes else codes  # an empty target is refused by `one`


def feature_encoder(feature: Feature, *, spellings: int = MAX_SPELLINGS) -> FieldEncoder:
    """The encoder of one model feature."""
    if feature.kind is FeatureKind.CATEGORICAL:
        return CategoryField(feature.categories, spellings=spellings)
    if feature.kind is FeatureKind.TIMESTAMP:
        return TimestampField(feature.missing)
    return NumberField(feature.missing)


@dataclass(frozen=True)
class EncodedBlock:
    lines: list[str]  # one per accepted row, without line end
    targets: list[str]  # the encoded target of each accepted row
    rejected: list[tuple[int, str]]  # (index in the block, reason)


class RowEncoder:
    """Encodes rows of one upload whose header has been matched to the schema.

    `refused_classes` names labels of the upload that are not classes of the schema, with the reason.
    """

    def __init__(
        self,
        schema: DatasetSchema,
        header: Sequence[str],
        *,
        refused_classes: Mapping[str, str] | None = None,
    ) -> None:
        schema.check_header(header)
        position = {name.strip(): index for index, name in enumerate(header)}
        self.schema = schema
        self.width = len(header)
        self.target_position = position[schema.target.name]
        self._classes: ClassField | None = None
        target: FieldEncoder = RegressionTarget()
        if schema.target.problem_type.is_classification:
            target = self._classes = ClassField(schema.target.classes, refused_classes)
        self._categories: set[str] = set()
        self._unknown: Counter[str] = Counter()
        self._fields: list[tuple[int, str, FieldEncoder]] = [
            (self.target_position, schema.target.name, target)
        ]
        for feature in schema.model_features:
            if feature.kind is FeatureKind.CATEGORICAL:
                self._categories.add(feature.name)
            self._fields.append((position[feature.name], feature.name, feature_encoder(feature)))
        self._suffix = [WIDTH_MARKER] if schema.width_marker else []

    def encode(self, row: Sequence[str]) -> str:
        """The encoded line (no line end) of one row; `RecordRejected` says why it cannot be encoded."""
        block = self.encode_block([row])
        if block.rejected:
            raise RecordRejected(block.rejected[0][1])
        return block.lines[0]

    def encode_block(self, rows: Sequence[Sequence[str]]) -> EncodedBlock:
        """Encode a block of rows column by column; a bad row is rejected alone, with the first reason."""
        bad: dict[int, str] = {}
        if any(map(self.width.__ne__, map(len, rows))):
            for index, row in enumerate(rows):
                if len(row) != self.width:
                    bad[index] = f"has {len(row)} fields, the header has {self.width}"
        well_formed = [row for index, row in enumerate(rows) if index not in bad] if bad else rows
        offsets = [index for index in range(len(rows)) if index not in bad] if bad else None
        columns = list(zip(*well_formed, strict=True)) if well_formed else []
        encoded_columns: list[Sequence[str]] = [()] * len(self._fields)
        # The target last: a row refused for a feature and for its label (a class learned only from rows
        # the schema refuses) is reported for the feature, the cause.
        for index in [*range(1, len(self._fields)), 0]:
            position, name, encoder = self._fields[index]
            column = columns[position] if columns else ()
            encoded = encoder.many(column)
            if encoded is None:
                encoded = self._one_by_one(encoder, name, column, bad, offsets)
            encoded_columns[index] = encoded
        if self._suffix:
            encoded_columns.append(self._suffix * len(well_formed))
        rows_out: Iterable[tuple[str, ...]] = zip(*encoded_columns, strict=True)
        targets: Iterable[str] = encoded_columns[0]
        if len(bad) > len(rows) - len(well_formed):  # a well-formed row was rejected too
            keep = [index not in bad for index in (offsets if offsets is not None else range(len(rows)))]
            rows_out, targets = itertools.compress(rows_out, keep), itertools.compress(targets, keep)
        return EncodedBlock(list(map(",".join, rows_out)), list(targets), sorted(bad.items()))

    def _one_by_one(
        self,
        encoder: FieldEncoder,
        name: str,
        column: Sequence[str],
        bad: dict[int, str],
        offsets: list[int] | None,
    ) -> list[str]:
        encoded = []
        for index, text in enumerate(column):
            try:
                code = encoder.one(text)
            except DecimalComma:
                raise decimal_comma_refusal(f"column {name!r}", text.strip()) from None
            except ValueError as error:
                bad.setdefault(offsets[index] if offsets else index, f"column {name!r}: {error}")
                code = ""
            else:
                if code == UNKNOWN_CODE and name in self._categories:
                    self._unknown[name] += 1
            encoded.append(code)
        return encoded

    @property
    def unknown_categories(self) -> dict[str, int]:
        """Per column, how many values were written with the unknown code."""
        return dict(self._unknown)

    def label_of(self, code: str) -> str:
        """The class label of an encoded target (classification only)."""
        assert self._classes is not None
        return self._classes.values[int(code)]


class ModelInput:
    """Encodes a record for the served model: its feature values, as text in `schema.model_features`
    order, through the same field encoders the transform uses, into the line the transform writes for
    that record without its target. Categories stay as the schema knows them (an unknown one gets the
    unknown code)."""

    def __init__(self, schema: DatasetSchema) -> None:
        self.features = schema.model_features
        # No spelling memo: a client could otherwise fill a warm container with padded variants.
        self._encoders = [feature_encoder(feature, spellings=0) for feature in self.features]
        self._suffix = [WIDTH_MARKER] if schema.width_marker else []

    def encode(self, values: Sequence[str]) -> str:
        """The line (no line end) for one record; `RecordRejected` names the first field refused."""
        if len(values) != len(self.features):
            raise RecordRejected(f"has {len(values)} values, the model takes {len(self.features)}")
        fields = []
        for feature, encoder, text in zip(self.features, self._encoders, values, strict=True):
            try:
                fields.append(encoder.one(text))
            except ValueError as error:
                raise RecordRejected(f"field {feature.name!r}: {error}") from None
        return ",".join(fields + self._suffix)
