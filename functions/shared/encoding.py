"""Encode records into the rows the model reads: the one encoding of training and serving.

The transform encodes CSV fields and the predict function encodes JSON values through the same field
encoders, so a record means the same thing to the model in both places:

- numeric: a plain decimal (digits, sign, point, exponent) is kept as written; any other text that is a
  finite number (` 1.5`, `1_000`, full-width digits) becomes Python's shortest repr of the float; a
  missing marker or NaN becomes an empty field, which XGBoost reads as missing; infinities and anything
  else are refused;
- categorical: the category's code from the schema (1, 2, ...), `UNKNOWN_CATEGORY_CODE` for a value the
  schema does not know, an empty field for a missing value; values compare with surrounding whitespace
  removed;
- target: the class code (0 .. classes - 1) for classification, the number for regression.

Each field encoder has `one(text)` for a single value and `many(texts)`, a fast path over a column of a
block of rows built from C-implemented builtins, which returns None whenever a value needs `one`'s care;
both give the same result for every value (tested property).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from shared.dataset_schema import (
    MISSING_MARKERS,
    UNKNOWN_CATEGORY_CODE,
    DatasetSchema,
    FeatureKind,
    ProblemType,
    Target,
    is_missing,
    parse_number,
)

_PLAIN_NUMBER_BYTES = b"0123456789.eE+-"
# Plain ASCII decimals, one per line, that are certainly finite floats: at most 200 integer digits and a
# two-digit exponent stay below 1e300, under float's 1.8e308. An empty line is a missing value, which stays
# an empty field. Possessive quantifiers: no backtracking, about a third faster on this hot path.
_PLAIN_FINITE_NUMBERS = re.compile(
    r"(?:(?:[+-]?+(?:[0-9]{1,200}+(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][+-]?+[0-9]{1,2}+)?+)?+\n)*+", re.ASCII
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


class RecordRejected(ValueError):
    """One record the model cannot take; the message names the field and what is wrong."""


class FieldEncoder(Protocol):
    def one(self, text: str) -> str: ...

    def many(self, texts: Sequence[str]) -> Sequence[str] | None: ...


def _is_plain(text: str) -> bool:
    return text.isascii() and not text.encode().translate(None, _PLAIN_NUMBER_BYTES)


def _whole_numbers(texts: Sequence[str]) -> bool:
    """Whether every text is empty or ASCII digits, at most 300 of them: a cheap test that most integer
    columns pass, and that needs no regular expression."""
    digits = "".join(texts)
    return digits.isascii() and digits.isdecimal() and max(map(len, texts), default=0) <= 300


def _plain_numbers(texts: Sequence[str]) -> bool:
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
        if _whole_numbers(texts):
            return texts
        # Missing-value markers become the empty field first: real columns have a few in every block.
        cleaned = list(map(self._spellings.get, texts, texts))
        return cleaned if _whole_numbers(cleaned) or _plain_numbers(cleaned) else None


_NUMBER = NumberField()


class _Codes:
    """A value -> code map that learns new values while `learning`, up to `limit` of them."""

    def __init__(
        self,
        known: Sequence[str],
        first_code: int,
        *,
        learning: bool,
        limit: int,
        spellings: int = MAX_SPELLINGS,
    ) -> None:
        self._first_code = first_code
        # Raw spellings remembered beyond `limit` values; 0 where requests, not files, bring the values.
        self._extra_spellings = spellings
        self._codes = {value: str(code) for code, value in enumerate(known, start=first_code)}
        # Every raw spelling met that maps to a code or to missing, so `many` is a plain dict lookup.
        self._spellings = dict(self._codes)
        self._learning = learning
        self._limit = limit
        # Values met while learning after the limit was reached: the file has more than the schema may hold.
        self.overflow = 0

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._codes)

    def many(self, texts: Sequence[str]) -> list[str] | None:
        codes = list(map(self._spellings.get, texts))
        return None if None in codes else codes  # type: ignore[return-value]

    def lookup(self, text: str) -> str | None:
        """The code of `text` ("" when missing), learning it if allowed; None when it is unknown."""
        value = text.strip()
        code = self._codes.get(value)
        if code is None:
            if is_missing(value):
                code = ""
            elif self._learning and len(self._codes) < self._limit:
                code = self._codes[value] = str(len(self._codes) + self._first_code)
            else:
                self.overflow += self._learning
                return None
        if len(self._spellings) < self._limit + self._extra_spellings:
            self._spellings[text] = code
        return code


class CategoryField(_Codes):
    def __init__(
        self, known: Sequence[str], *, learning: bool, limit: int, spellings: int = MAX_SPELLINGS
    ) -> None:
        super().__init__(known, 1, learning=learning, limit=limit, spellings=spellings)

    def one(self, text: str) -> str:
        code = self.lookup(text)
        return UNKNOWN_CODE if code is None else code


class ClassField(_Codes):
    def __init__(self, known: Sequence[str], *, learning: bool, limit: int) -> None:
        super().__init__(known, 0, learning=learning, limit=limit)

    def one(self, text: str) -> str:
        code = self.lookup(text)
        if code == "":
            raise ValueError("the target is empty")
        if code is None and self.overflow:
            raise ValueError(
                f"class {text.strip()[:40]!r} is one more than the {self._limit} classes allowed"
            )
        if code is None:
            known = ", ".join(map(repr, self.values[:10]))
            raise ValueError(f"class {text.strip()[:40]!r} is not one of the target's classes ({known})")
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


@dataclass(frozen=True)
class EncoderLimits:
    max_categories: int
    max_classes: int


@dataclass(frozen=True)
class EncodedBlock:
    lines: list[str]  # one per accepted row, without line end
    rejected: list[tuple[int, str]]  # (index in the block, reason)


class RowEncoder:
    """Encodes rows of one upload whose header has been matched to the schema.

    With `learning` (a dataset's first upload) new categories and classes are added to the schema as they
    are met, up to the limits; otherwise they map to the unknown code (features) or are refused (target).
    """

    def __init__(
        self, schema: DatasetSchema, header: Sequence[str], *, learning: bool, limits: EncoderLimits
    ) -> None:
        schema.check_header(header)
        position = {name.strip(): index for index, name in enumerate(header)}
        self.schema = schema
        self.width = len(header)
        self._classes: ClassField | None = None
        target: FieldEncoder = RegressionTarget()
        if schema.target.problem_type.is_classification:
            target = self._classes = ClassField(
                schema.target.classes, learning=learning, limit=limits.max_classes
            )
        self._categories: dict[str, CategoryField] = {}
        self._unknown: Counter[str] = Counter()
        self._class_counts: Counter[str] = Counter()
        self._fields: list[tuple[int, str, FieldEncoder]] = [
            (position[schema.target.name], schema.target.name, target)
        ]
        for feature in schema.model_features:
            encoder: FieldEncoder = NumberField(feature.missing)
            if feature.kind is FeatureKind.CATEGORICAL:
                encoder = self._categories[feature.name] = CategoryField(
                    feature.categories, learning=learning, limit=limits.max_categories
                )
            self._fields.append((position[feature.name], feature.name, encoder))
        # Fields are encoded in an order where those that learn come after those that only refuse: numbers
        # (refuse, never learn), then the target (refuses; learns classes), then categories (learn, never
        # refuse). A value is learned only from a row no earlier field refused, so a rejected row teaches
        # the schema nothing.
        rank = {NumberField: 0, RegressionTarget: 0, ClassField: 1, CategoryField: 2}
        self._order = sorted(range(len(self._fields)), key=lambda i: rank[type(self._fields[i][2])])

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
        for field_index in self._order:
            position, name, encoder = self._fields[field_index]
            column = columns[position] if columns else ()
            encoded = encoder.many(column)
            if encoded is None:
                encoded = self._one_by_one(encoder, name, column, bad, offsets)
            encoded_columns[field_index] = encoded
        rows_out: Iterable[tuple[str, ...]] = zip(*encoded_columns, strict=True)
        targets: Iterable[str] = encoded_columns[0]
        if len(bad) > len(rows) - len(well_formed):  # a well-formed row was rejected too
            keep = [index not in bad for index in (offsets if offsets is not None else range(len(rows)))]
            rows_out, targets = itertools.compress(rows_out, keep), itertools.compress(targets, keep)
        lines = list(map(",".join, rows_out))
        if self._classes is not None:
            self._class_counts.update(targets)
        return EncodedBlock(lines, sorted(bad.items()))

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
            if (offsets[index] if offsets else index) in bad:
                encoded.append("")  # refused already: neither encoded nor learned from
                continue
            try:
                code = encoder.one(text)
            except ValueError as error:
                bad.setdefault(offsets[index] if offsets else index, f"column {name!r}: {error}")
                code = ""
            else:
                if code == UNKNOWN_CODE and isinstance(encoder, CategoryField):
                    self._unknown[name] += 1
            encoded.append(code)
        return encoded

    @property
    def overflowing_categories(self) -> dict[str, int]:
        """Per column, values a learning encoder met after the column held `max_categories`."""
        return {name: codes.overflow for name, codes in self._categories.items() if codes.overflow}

    @property
    def unknown_categories(self) -> dict[str, int]:
        """Per column, how many values were written with the unknown code."""
        return dict(self._unknown)

    @property
    def class_counts(self) -> dict[str, int]:
        """Accepted rows per target class label (classification only)."""
        if self._classes is None:
            return {}
        labels = self._classes.values
        return {labels[int(code)]: count for code, count in sorted(self._class_counts.items())}

    def learned_schema(self, problem_type: ProblemType | None) -> DatasetSchema:
        """The schema with every category and class met so far; `problem_type` None infers binary or
        multiclass from the number of classes."""
        target = self.schema.target
        if self._classes is not None:
            classes = self._classes.values
            kind = problem_type or (ProblemType.BINARY if len(classes) <= 2 else ProblemType.MULTICLASS)
            target = Target(target.name, kind, classes)
        features = tuple(
            replace(feature, categories=self._categories[feature.name].values)
            if feature.name in self._categories
            else feature
            for feature in self.schema.features
        )
        return DatasetSchema(columns=self.schema.columns, target=target, features=features)


class ModelInput:
    """Encodes a record for the served model: its feature values, as text in `schema.model_features`
    order, through the same field encoders the transform uses, into the line the transform writes for
    that record without its target. Categories stay as the schema knows them (an unknown one gets the
    unknown code)."""

    def __init__(self, schema: DatasetSchema) -> None:
        self.features = schema.model_features
        self._encoders: list[FieldEncoder] = [
            # No spelling memo: a client could otherwise fill a warm container with padded variants.
            CategoryField(feature.categories, learning=False, limit=len(feature.categories), spellings=0)
            if feature.kind is FeatureKind.CATEGORICAL
            else NumberField(feature.missing)
            for feature in self.features
        ]

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
        return ",".join(fields)
