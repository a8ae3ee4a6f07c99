"""Infer a dataset's schema from the profile of its whole first upload.

The profile counts every row (`transform.profile`), so the schema is a function of the upload's set of
rows: the same for any order of them. How each column is decided:

- a column listed in `ignore_columns`, or without a value in any row, is ignored;
- numeric when at least 90% of its values are numbers (the others are then refused row by row), or
  when its only other values are a few words used as its own spelling of "no value" (`-`, `unknown`);
  a column that would be numeric but for numbers written with decimal commas refuses the file;
- timestamp when at least 90% of its values are ISO 8601 dates or timestamps;
- otherwise text: categorical with its values as categories, in sorted order, unless it is an
  identifier (more than half of its values occur once, or more than `max_categories` distinct values)
  or holds one value in every row;
- a numeric column holding each whole number of a range exactly once is a row number, and ignored.

The target: under `problem_type` auto, text is classification, and so is a numeric target of whole
numbers with at most `MAX_INTEGER_CLASSES` distinct values, or of two values; any other numeric target is
regression. A label with fewer than `MIN_CLASS_ROWS` rows cannot be in both splits, so it is no class: its
rows are refused. Binary classes are ordered so that the positive label (1, true, yes, ...) is code 1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from shared.dataset_schema import (
    DatasetSchema,
    Feature,
    FeatureKind,
    ProblemType,
    SchemaMismatch,
    Target,
    decimal_comma_refusal,
    parse_number,
)
from transform.profile import ColumnProfile, TableProfile

# Share of a column's values that must be numbers (or dates) for it to be numeric (or timestamp); the
# rest are refused row by row instead of turning a column of numbers into categories.
NUMERIC_SHARE = 0.9
# At most this many distinct words may stand for "no value" in a column that is otherwise numbers, each
# used at least MIN_MARKER_USES times: a convention, not a one-off typo (which is refused with its row).
MAX_MISSING_MARKERS = 3
MIN_MARKER_USES = 3
# A text column where more than this share of the values occur only once is an identifier (names, ids,
# free text): a value seen once teaches the model nothing, and later uploads bring new ones.
IDENTIFIER_SHARE = 0.5
# A numeric target of whole numbers with at most this many distinct values is a class label (digits 0-9,
# wine cultivars 1-3, ratings 1-5), not a quantity; problemType regression overrides.
MAX_INTEGER_CLASSES = 10
# Rows a class needs: one for training and one for validation.
MIN_CLASS_ROWS = 2
# Binary labels whose positive value is code 1, whatever their order in the file (lowercase).
POSITIVE_LABELS = {
    frozenset({"0", "1"}): "1",
    frozenset({"false", "true"}): "true",
    frozenset({"no", "yes"}): "yes",
    frozenset({"n", "y"}): "y",
    frozenset({"f", "t"}): "t",
    frozenset({"negative", "positive"}): "positive",
}


@dataclass(frozen=True)
class InferenceOptions:
    target_column: str
    # None: binary, multiclass or regression from the target's values.
    problem_type: ProblemType | None
    max_categories: int
    # Share of a column's values that may fail to parse while the column still counts as numeric, where it
    # is larger than 1 - NUMERIC_SHARE (the stack's maxRejectedRowsPercent).
    numeric_tolerance: float
    ignore_columns: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Inference:
    schema: DatasetSchema
    # Labels of the upload that are not classes, with the reason their rows are refused.
    refused_classes: Mapping[str, str]


def check_names(header: Sequence[str], target_column: str) -> tuple[str, ...]:
    """The header's column names, stripped; SchemaMismatch for a header no schema can be made of."""
    columns = tuple(name.strip() for name in header)
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
    return columns


def infer_schema(
    profile: TableProfile, options: InferenceOptions, kinds: DatasetSchema | None = None
) -> Inference:
    """The schema of an upload from its profile. `kinds`: a schema inferred before from a profile of the
    same file that still counted the rows this one leaves out; its feature kinds are kept, and only the
    categories and the target are learned again."""
    columns = check_names(profile.header, options.target_column)
    unknown = sorted(options.ignore_columns - set(columns))
    if unknown:
        raise SchemaMismatch(
            f"ignoreColumns names column(s) {', '.join(map(repr, unknown))} not in the header"
        )
    if options.target_column in options.ignore_columns:
        raise SchemaMismatch(f"ignoreColumns names the target column {options.target_column!r}")
    earlier = {feature.name: feature for feature in kinds.features} if kinds is not None else {}
    features = []
    for name, column in zip(columns, profile.columns, strict=True):
        if name == options.target_column:
            continue
        kept = earlier.get(name)
        if kept is None:
            features.append(_feature(name, column, profile.rows, options))
        elif kept.kind is FeatureKind.CATEGORICAL:
            features.append(replace(kept, categories=tuple(sorted(column.values or ()))))
        else:
            features.append(kept)
    if not any(feature.kind is not FeatureKind.IGNORED for feature in features):
        reasons = "; ".join(f"{f.name!r}: {f.reason}" for f in features) or "the file has only the target"
        raise SchemaMismatch(f"no column is usable as a feature ({reasons})")
    target, refused = _target(options.target_column, profile.target, options)
    schema = DatasetSchema(columns=columns, target=target, features=tuple(features))
    return Inference(schema, refused)


def _feature(name: str, column: ColumnProfile, rows: int, options: InferenceOptions) -> Feature:
    if name in options.ignore_columns:
        return Feature(name, FeatureKind.IGNORED, reason="listed in ignoreColumns")
    if column.present == 0:
        return Feature(name, FeatureKind.IGNORED, reason="no value in any row of the first upload")
    markers = _missing_markers(column)
    marker_uses = sum(column.words[marker] for marker in markers)
    considered = column.present - marker_uses
    numbers = column.numbers + column.out_of_range
    share = _numeric_share(options)
    if column.decimal_commas and numbers + column.decimal_commas >= share * considered:
        raise decimal_comma_refusal(f"column {name!r}", column.comma_example, column.decimal_commas)
    if markers or numbers >= share * considered:
        if column.is_row_number and column.present == rows:
            reason = f"each whole number from {column.low} to {column.high} once: a row number, not a feature"
            return Feature(name, FeatureKind.IGNORED, reason=reason)
        return Feature(name, FeatureKind.NUMERIC, missing=markers)
    if column.timestamps >= share * column.present:
        return Feature(name, FeatureKind.TIMESTAMP, missing=_missing_markers(column))
    return _categorical(name, column, options)


def _numeric_share(options: InferenceOptions) -> float:
    """Share of a column's values that makes it numeric: NUMERIC_SHARE, or less where the stack lets more
    rows be refused."""
    return min(NUMERIC_SHARE, 1 - options.numeric_tolerance)


def _categorical(name: str, column: ColumnProfile, options: InferenceOptions) -> Feature:
    values = column.values
    if values is None:
        reason = f"more than maxCategories ({options.max_categories}) distinct values: an identifier"
        return Feature(name, FeatureKind.IGNORED, reason=reason)
    once = sum(1 for count in values.values() if count == 1)
    if once > IDENTIFIER_SHARE * column.present:
        reason = f"{once} of its {column.present} values occur only once: an identifier, not a feature"
        return Feature(name, FeatureKind.IGNORED, reason=reason)
    if len(values) == 1 and column.present == sum(values.values()) and not column.many_words:
        only = next(iter(values))
        return Feature(name, FeatureKind.IGNORED, reason=f"the one value {only[:40]!r}: nothing to learn")
    return Feature(name, FeatureKind.CATEGORICAL, categories=tuple(sorted(values)))


def _missing_markers(column: ColumnProfile) -> tuple[str, ...]:
    """The words a mostly-numeric (or date) column writes for a missing value (`-`, `unknown`, `n.a.`):
    at most MAX_MISSING_MARKERS of them, each used at least MIN_MARKER_USES times, none holding a digit,
    in a column where numbers or dates are the majority."""
    words = column.words
    if not words or column.many_words or column.word_count * 2 >= column.present:
        return ()
    if len(words) > MAX_MISSING_MARKERS or any(count < MIN_MARKER_USES for count in words.values()):
        return ()
    if any(character.isdigit() for word in words for character in word):
        return ()
    return tuple(sorted(words))


def _target(name: str, column: ColumnProfile, options: InferenceOptions) -> tuple[Target, dict[str, str]]:
    labels = column.values
    numbers = column.numbers + column.out_of_range
    share = _numeric_share(options)
    numeric = column.present > 0 and numbers >= share * column.present
    # A quantity written with decimal commas (12,5) would otherwise be text: classes, or rows refused.
    explicit_classes = options.problem_type is not None and options.problem_type.is_classification
    if (
        column.decimal_commas
        and not explicit_classes
        and numbers + column.decimal_commas >= share * column.present
    ):
        raise decimal_comma_refusal(
            f"column {name!r} (the target)", column.comma_example, column.decimal_commas
        )
    refused = {
        label: f"class {label[:40]!r} has {count} labeled row(s), fewer than the {MIN_CLASS_ROWS} needed to "
        "train on it and validate it"
        for label, count in (labels or {}).items()
        if count < MIN_CLASS_ROWS
    }
    classes = [label for label in labels or () if label not in refused]
    problem_type = options.problem_type or _problem_type(numeric, labels, len(classes))
    if problem_type is ProblemType.REGRESSION:
        return Target(name, problem_type), {}
    if labels is None:
        raise SchemaMismatch(
            f"target {name!r} has more than maxCategories ({options.max_categories}) distinct values; set "
            "problemType to regression if it is a quantity"
        )
    if len(classes) < 2:
        # Most rows first, ties by label: the same message for any order of the rows.
        common = sorted(labels.items(), key=lambda item: (-item[1], item[0]))[:3]
        shown = ", ".join(f"{label!r} ({count} rows)" for label, count in common)
        raise SchemaMismatch(
            f"target {name!r} has fewer than 2 classes to learn from (a class needs {MIN_CLASS_ROWS} labeled "
            f"rows): {shown or 'none'}"
        )
    if problem_type is ProblemType.BINARY and len(classes) > 2:
        shown = ", ".join(map(repr, sorted(classes)[:10]))
        raise SchemaMismatch(
            f"problem type is binary but target {name!r} has {len(classes)} classes: {shown}"
        )
    if problem_type is ProblemType.MULTICLASS and len(classes) < 3:
        raise SchemaMismatch(
            f"problem type is multiclass but target {name!r} has 2 classes: set problemType to binary or auto"
        )
    return Target(name, problem_type, classes=_class_order(classes, numeric)), refused


def _problem_type(numeric: bool, labels: Counter[str] | None, classes: int) -> ProblemType:
    """auto: regression for a numeric target of many values (or of few that are not whole); otherwise
    binary or multiclass by the labels that are classes."""
    distinct = len(labels) if labels is not None else None
    few_whole = (
        labels is not None
        and len(labels) <= MAX_INTEGER_CLASSES
        and all(float(label).is_integer() for label in labels if _is_number(label))
    )
    if numeric and (distinct is None or distinct > 2) and not few_whole:
        return ProblemType.REGRESSION
    return ProblemType.BINARY if classes <= 2 else ProblemType.MULTICLASS


def _class_order(classes: Sequence[str], numeric: bool) -> tuple[str, ...]:
    """Binary labels negative first (the positive one is code 1); numbers in numeric order; text sorted."""
    if len(classes) == 2:
        positive = POSITIVE_LABELS.get(frozenset(label.lower() for label in classes))
        if positive is not None:
            return tuple(sorted(classes, key=lambda label: label.lower() == positive))
    if numeric and all(_is_number(label) for label in classes):
        return tuple(sorted(classes, key=lambda label: (parse_number(label) or 0.0, label)))
    return tuple(sorted(classes))


def _is_number(text: str) -> bool:
    try:
        parse_number(text)
    except ValueError:
        return False
    return True


def refused_classes(labels: Mapping[str, int]) -> dict[str, str]:
    """The labels of an upload that cannot be classes, with the reason their rows are refused: a label
    with fewer than MIN_CLASS_ROWS rows cannot be in both splits."""
    return {
        label: f"class {label[:40]!r} has {count} labeled row(s), fewer than the {MIN_CLASS_ROWS} needed to "
        "train on it and validate it"
        for label, count in labels.items()
        if count < MIN_CLASS_ROWS
    }
