"""`schema.json`: the one contract between the transform, training and prediction.

A dataset's schema names its columns in upload order, the target and its problem type, each feature's
kind (numeric, timestamp, categorical, or ignored) with the category codes, and the XGBoost objective
and tuning metric that follow from the problem type. It is inferred from a dataset's whole first upload,
stored beside its processed runs, and every later upload and every prediction request is read through it.

Encoded rows are what SageMaker's built-in XGBoost reads from CSV: no header, target first, then the
features in schema order, numbers only, an empty field for a missing value (SageMaker developer guide,
"XGBoost algorithm", input/output interface for CSV), and from schema version 2 on a constant last column
(`WIDTH_MARKER`) that keeps XGBoost from reading a file narrower than it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 2
# Version 1 lines end with the last feature; a stored version-1 schema is still read and served as it is.
SCHEMA_VERSIONS = (1, 2)

# The code written for a category the schema does not know; known categories are numbered from 1.
UNKNOWN_CATEGORY_CODE = 0
# The constant last column of every encoded line from schema version 2 on; 1, not 0, so that no sparse
# reading could take it for an absent value.
WIDTH_MARKER = "1"

# Text that means "no value" in real-world CSVs: pandas' default NA markers plus "?" (UCI datasets).
MISSING_MARKERS = frozenset(
    {"", "#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "-nan", "1.#ind", "1.#qnan", "<na>", "n/a",
     "na", "null", "nan", "none", "?"}
)  # fmt: skip


class ProblemType(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"

    @property
    def is_classification(self) -> bool:
        return self is not ProblemType.REGRESSION


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    # ISO 8601 dates and timestamps, encoded as days since 1970-01-01 UTC.
    TIMESTAMP = "timestamp"
    CATEGORICAL = "categorical"
    IGNORED = "ignored"


class SchemaError(ValueError):
    """A schema document that is not a valid schema of this version."""


class SchemaMismatch(ValueError):
    """An upload whose header does not fit its dataset's schema; the whole file is rejected."""


@dataclass(frozen=True)
class XGBoostSettings:
    """What training needs from the problem type (SageMaker docs, "XGBoost hyperparameters" and
    "Tune an XGBoost model": validation:auc, validation:mlogloss and validation:rmse are tunable)."""

    objective: str
    eval_metric: str
    num_class: int | None
    tuning_metric: str
    tuning_direction: str

    @staticmethod
    def for_problem(problem_type: ProblemType, class_count: int) -> XGBoostSettings:
        if problem_type is ProblemType.BINARY:
            return XGBoostSettings("binary:logistic", "auc", None, "validation:auc", "Maximize")
        if problem_type is ProblemType.MULTICLASS:
            return XGBoostSettings(
                "multi:softprob", "mlogloss", class_count, "validation:mlogloss", "Minimize"
            )
        return XGBoostSettings("reg:squarederror", "rmse", None, "validation:rmse", "Minimize")


@dataclass(frozen=True)
class Feature:
    name: str
    kind: FeatureKind
    # Categorical only: known values in code order; the code of categories[i] is i + 1.
    categories: tuple[str, ...] = ()
    # Numeric and timestamp only: the column's own spellings of a missing value, beyond the common markers.
    missing: tuple[str, ...] = ()
    # Ignored only: why the column does not reach the model.
    reason: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    problem_type: ProblemType
    # Classification only: labels in code order; the code of classes[i] is i.
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSchema:
    columns: tuple[str, ...]
    target: Target
    features: tuple[Feature, ...]
    version: int = SCHEMA_VERSION

    @property
    def width_marker(self) -> bool:
        """Whether encoded lines end with the constant width marker column."""
        return self.version >= 2

    @property
    def xgboost(self) -> XGBoostSettings:
        return XGBoostSettings.for_problem(self.target.problem_type, len(self.target.classes))

    @property
    def model_features(self) -> tuple[Feature, ...]:
        """The features the model sees, in the order they follow the target in every encoded row."""
        return tuple(feature for feature in self.features if feature.kind is not FeatureKind.IGNORED)

    def check_header(self, header: Sequence[str]) -> None:
        """Refuse an upload whose columns differ from the schema's (order may differ, names may not)."""
        names = [name.strip() for name in header]
        missing = [name for name in self.columns if name not in names]
        unknown = [name for name in names if name not in self.columns]
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(map(repr, missing))}")
        if unknown:
            problems.append(f"column(s) {', '.join(map(repr, unknown))} not in the dataset's schema")
        if len(set(names)) != len(names):
            problems.append("duplicate column names")
        if problems:
            raise SchemaMismatch(f"header does not match the dataset's schema: {'; '.join(problems)}")

    def to_document(self) -> dict[str, Any]:
        xgboost = self.xgboost
        document: dict[str, Any] = {
            "schemaVersion": self.version,
            "columns": list(self.columns),
            "target": {
                "name": self.target.name,
                "problemType": self.target.problem_type.value,
                "classes": list(self.target.classes),
            },
            "features": [_feature_document(feature) for feature in self.features],
            "xgboost": {
                "objective": xgboost.objective,
                "evalMetric": xgboost.eval_metric,
                "numClass": xgboost.num_class,
                "tuningMetric": xgboost.tuning_metric,
                "tuningDirection": xgboost.tuning_direction,
            },
            "unknownCategoryCode": UNKNOWN_CATEGORY_CODE,
        }
        if self.width_marker:
            document["widthMarker"] = WIDTH_MARKER
        return document

    def to_json(self) -> bytes:
        return (json.dumps(self.to_document(), indent=2, ensure_ascii=False) + "\n").encode()

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical document: the run manifest names the exact contract it used."""
        canonical = json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @staticmethod
    def from_json(data: bytes | str) -> DatasetSchema:
        try:
            document = json.loads(data)
        except ValueError as error:
            raise SchemaError(f"schema is not JSON: {error}") from None
        return DatasetSchema.from_document(document)

    @staticmethod
    def from_document(document: Mapping[str, Any]) -> DatasetSchema:
        try:
            version = document["schemaVersion"]
            if version not in SCHEMA_VERSIONS:
                raise SchemaError(f"schemaVersion {version!r} is not one of {SCHEMA_VERSIONS}")
            target = document["target"]
            schema = DatasetSchema(
                columns=tuple(str(name) for name in document["columns"]),
                target=Target(
                    name=str(target["name"]),
                    problem_type=ProblemType(target["problemType"]),
                    classes=tuple(str(label) for label in target.get("classes", ())),
                ),
                features=tuple(
                    Feature(
                        name=str(feature["name"]),
                        kind=FeatureKind(feature["type"]),
                        categories=tuple(str(value) for value in feature.get("categories", ())),
                        missing=tuple(str(value) for value in feature.get("missingValues", ())),
                        reason=str(feature.get("reason", "")),
                    )
                    for feature in document["features"]
                ),
                version=version,
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, SchemaError):
                raise
            raise SchemaError(f"schema document is invalid: {error!r}") from None
        schema.validate()
        return schema

    def validate(self) -> None:
        names = [feature.name for feature in self.features]
        if sorted([*names, self.target.name]) != sorted(self.columns):
            raise SchemaError("columns must be exactly the target plus the features")
        classes = len(self.target.classes)
        if self.target.problem_type is ProblemType.BINARY and classes != 2:
            raise SchemaError(f"a binary target needs 2 classes, has {classes}")
        if self.target.problem_type is ProblemType.MULTICLASS and classes < 3:
            raise SchemaError(f"a multiclass target needs at least 3 classes, has {classes}")
        if self.target.problem_type is ProblemType.REGRESSION and classes:
            raise SchemaError("a regression target has no classes")


def _feature_document(feature: Feature) -> dict[str, Any]:
    document: dict[str, Any] = {"name": feature.name, "type": feature.kind.value}
    if feature.kind is FeatureKind.CATEGORICAL:
        document["categories"] = list(feature.categories)
    if feature.kind in (FeatureKind.NUMERIC, FeatureKind.TIMESTAMP) and feature.missing:
        document["missingValues"] = list(feature.missing)
    if feature.kind is FeatureKind.IGNORED:
        document["reason"] = feature.reason
    return document


# XGBoost holds every value as a 32-bit float (DMatrix): a larger magnitude cannot be represented, and the
# built-in container reads it as the largest float32 in training but refuses it (415) when serving.
FLOAT32_MAX = 3.4028234663852886e38
# The ISO 8601 forms every Python from 3.11 on reads with `datetime.fromisoformat`: a date, optionally a
# time of at least hours and minutes, optionally a UTC offset. Other date spellings (01/02/2024) are text.
ISO_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECONDS_PER_DAY = 86_400


# A number written with a decimal comma (12,5) or a thousands separator (1,250): no number to XGBoost.
DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+(?:,[0-9]+)+")


class OutOfRange(ValueError):
    """A number XGBoost cannot hold: infinite, or beyond the float32 range."""


class DecimalComma(ValueError):
    """A number written with a decimal comma or a thousands separator."""


def decimal_comma_refusal(column: str, example: str, count: int | None = None) -> SchemaMismatch:
    """The whole-file refusal of a numeric column written with decimal commas: row by row, every such
    row would be left out, a biased sample."""
    values = f"{count} values, " if count is not None else ""
    return SchemaMismatch(
        f"{column} holds numbers with decimal commas or thousands separators ({values}e.g. "
        f"{example[:40]!r}): save the file with decimal points and no thousands separators"
    )


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING_MARKERS


def missing_flags(texts: Iterable[str]) -> list[bool]:
    """`is_missing` of each text, with C-implemented builtins only: for a column of a block."""
    return list(map(MISSING_MARKERS.__contains__, map(str.lower, map(str.strip, texts))))


def parse_number(text: str) -> float | None:
    """The number a field holds, None for a missing value; `OutOfRange` for a number XGBoost cannot hold,
    `DecimalComma` for one written with a comma, ValueError for anything else."""
    try:
        value = float(text)
    except ValueError:
        if is_missing(text):
            return None
        if DECIMAL_COMMA.fullmatch(text.strip()):
            raise DecimalComma(
                f"{text[:40]!r} is written with a decimal comma or a thousands separator"
            ) from None
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise OutOfRange(f"{text[:40]!r} is not a finite number")
    if abs(value) > FLOAT32_MAX:
        raise OutOfRange(f"{text[:40]!r} is beyond the range XGBoost holds (±3.4e38, float32)")
    return value


def is_timestamp(text: str) -> bool:
    """Whether the text is written as an ISO 8601 date or timestamp (valid or not, e.g. 2024-02-30)."""
    return ISO_TIMESTAMP.fullmatch(text.strip()) is not None


def parse_timestamp(text: str) -> float | None:
    """Days since 1970-01-01 UTC of an ISO 8601 date or timestamp (one without an offset counts as UTC),
    None for a missing value; ValueError for anything else."""
    value = text.strip()
    if ISO_TIMESTAMP.fullmatch(value) is None:
        if is_missing(value):
            return None
        raise ValueError(f"{text[:40]!r} is not an ISO 8601 date or timestamp (e.g. 2024-01-31)")
    try:
        moment = datetime.fromisoformat(value.replace(",", "."))
    except ValueError as error:
        raise ValueError(f"{text[:40]!r} is not a valid date ({error})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH).total_seconds() / SECONDS_PER_DAY
