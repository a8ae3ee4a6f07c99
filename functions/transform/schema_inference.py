"""Infer a dataset's first schema from the header and the first rows of its first upload.

The sample decides each column's kind; the transform then learns the categories and classes of the whole
file (`RowEncoder` with learning on), so the stored schema knows every value of the first upload.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shared.dataset_schema import (
    DatasetSchema,
    Feature,
    FeatureKind,
    ProblemType,
    SchemaMismatch,
    Target,
    is_missing,
    parse_number,
)


@dataclass(frozen=True)
class InferenceOptions:
    target_column: str
    # None: binary, multiclass or regression from the target's values.
    problem_type: ProblemType | None
    max_categories: int
    # Share of a sample column's values that may fail to parse while the column still counts as numeric:
    # those rows are then rejected one by one instead of turning the column into categories.
    numeric_tolerance: float


def infer_schema(
    header: Sequence[str], sample: Sequence[Sequence[str]], options: InferenceOptions
) -> DatasetSchema:
    """Column kinds from every well-formed sample row; categories and classes only from the rows whose
    numbers all parse, since the others will be rejected and must not shape the schema."""
    columns = tuple(name.strip() for name in header)
    _check_names(columns, options.target_column)
    rows = [row for row in sample if len(row) == len(columns)]
    target_index = columns.index(options.target_column)
    present = [_present(rows, index) for index in range(len(columns))]
    words = [[value for value in values if not _is_number(value)] for values in present]
    markers = {
        index: _missing_markers(present[index], words[index])
        for index in range(len(columns))
        if index != target_index
    }
    numeric = {
        index: bool(markers.get(index)) or _numeric(present[index], words[index], options.numeric_tolerance)
        for index in range(len(columns))
    }
    clean = [
        row
        for row in rows
        if all(
            _is_number(row[index]) or row[index].strip() in markers.get(index, ())
            for index, is_numeric in numeric.items()
            if is_numeric
        )
    ]
    for index, name in enumerate(columns):
        if not numeric[index]:
            _refuse_decimal_commas(name, present[index])
    features = []
    target: Target | None = None
    for index, name in enumerate(columns):
        values = _present(clean, index)
        if name == options.target_column:
            target = _infer_target(name, values, numeric[index], options)
        elif numeric[index]:
            features.append(Feature(name, FeatureKind.NUMERIC, missing=markers.get(index, ())))
        else:
            features.append(_categorical(name, values, options.max_categories))
    assert target is not None  # _check_names guarantees the target column
    return DatasetSchema(columns=columns, target=target, features=tuple(features))


NUMERIC_SHARE = 0.9
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+")
# Share of a column's values that, written with a decimal comma, makes it a column of numbers.
DECIMAL_COMMA_SHARE = 0.9


def _refuse_decimal_commas(name: str, values: Sequence[str]) -> None:
    """Numbers written with decimal commas (as European spreadsheets save semicolon CSVs) would become
    thousands of categories; the schema would be wrong for good, so the file is refused instead."""
    commas = [value for value in values if "," in value and _DECIMAL_COMMA.fullmatch(value)]
    if values and len(commas) >= DECIMAL_COMMA_SHARE * len(values):
        raise SchemaMismatch(
            f"column {name!r} holds numbers with decimal commas (e.g. {commas[0]!r}): save the file with "
            "decimal points"
        )


# At most this many distinct words may stand for "no value" in a column that is otherwise numbers, each
# used at least MIN_MARKER_USES times: a convention, not a one-off typo (which is refused with its row).
MAX_MISSING_MARKERS = 3
MIN_MARKER_USES = 3


def _missing_markers(values: Sequence[str], words: Sequence[str]) -> tuple[str, ...]:
    """The words a mostly-numeric column writes for a missing number (`-`, `unknown`, `n.a.`): at most
    MAX_MISSING_MARKERS of them, each used at least MIN_MARKER_USES times, none holding a digit, in a
    column where numbers are the majority. A column of words with a few numbers, or numbers with many kinds
    of words, gets none. `words` are the values that are not numbers."""
    distinct = sorted(set(words))
    if not words or len(words) * 2 >= len(values) or len(distinct) > MAX_MISSING_MARKERS:
        return ()
    if any(words.count(word) < MIN_MARKER_USES for word in distinct):
        return ()
    if any(character.isdigit() for word in distinct for character in word):
        return ()
    return tuple(distinct)


def _present(rows: Sequence[Sequence[str]], index: int) -> list[str]:
    return [row[index].strip() for row in rows if not is_missing(row[index])]


def _check_names(columns: Sequence[str], target_column: str) -> None:
    if not any(columns):
        raise SchemaMismatch("the header row has no column names")
    blank = [str(position) for position, name in enumerate(columns, start=1) if not name]
    if blank:
        raise SchemaMismatch(f"column(s) {', '.join(blank)} of the header have no name")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise SchemaMismatch(f"duplicate column name(s) {', '.join(map(repr, duplicates))}")
    if target_column not in columns:
        shown = ", ".join(map(repr, columns[:20]))
        raise SchemaMismatch(f"no target column {target_column!r} in the header (columns: {shown})")


def _is_number(text: str) -> bool:
    try:
        parse_number(text)
    except ValueError:
        return False
    return True


def _numeric(values: Sequence[str], words: Sequence[str], tolerance: float) -> bool:
    """A column is numeric when all but a few of its values are numbers: at least NUMERIC_SHARE of them,
    or all but `tolerance` when that is stricter. The others are then refused row by row, with the
    column named, instead of turning a column of numbers into categories."""
    return len(words) <= max(tolerance, 1 - NUMERIC_SHARE) * len(values)


def _categorical(name: str, values: Sequence[str], max_categories: int) -> Feature:
    distinct = set(values)
    if len(distinct) > max_categories:
        reason = (
            f"text column with more than {max_categories} distinct values in the first {len(values)} "
            "non-empty rows: treated as an identifier, not a feature"
        )
        return Feature(name, FeatureKind.IGNORED, reason=reason)
    return Feature(name, FeatureKind.CATEGORICAL, categories=tuple(sorted(distinct)))


def _infer_target(name: str, values: Sequence[str], numeric: bool, options: InferenceOptions) -> Target:
    distinct = set(values)
    problem_type = options.problem_type
    if problem_type is None:
        if numeric and len(distinct) > 2:
            problem_type = ProblemType.REGRESSION
        else:
            problem_type = ProblemType.BINARY if len(distinct) <= 2 else ProblemType.MULTICLASS
    if problem_type is ProblemType.REGRESSION:
        return Target(name, problem_type)
    if len(distinct) > options.max_categories:
        raise SchemaMismatch(
            f"target {name!r} has more than maxCategories ({options.max_categories}) classes in the first "
            f"{len(values)} rows; set problemType to regression if it is a quantity"
        )
    if problem_type is ProblemType.BINARY and len(distinct) > 2:
        shown = ", ".join(map(repr, sorted(distinct)[:10]))
        raise SchemaMismatch(
            f"problem type is binary but target {name!r} has {len(distinct)} classes: {shown}"
        )
    # Numeric labels in numeric order keep 0/1 targets as codes 0/1.
    order = sorted(distinct, key=_numeric_order) if numeric else sorted(distinct)
    return Target(name, problem_type, classes=tuple(order))


def _numeric_order(label: str) -> tuple[float, str]:
    return (parse_number(label) or 0.0, label) if _is_number(label) else (float("inf"), label)
