"""`schema.json`: the one contract between the transform, training and prediction.

A dataset's schema names its columns in upload order, the target and its problem type, each feature's
kind (numeric, categorical, or ignored) with the category codes, and the XGBoost objective and tuning
metric that follow from the problem type. It is inferred from a dataset's first upload, stored beside its
processed runs, and every later upload and every prediction request is read through it.

Encoded rows are what SageMaker's built-in XGBoost reads from CSV: no header, target first, then the
features in schema order, numbers only, an empty field for a missing value (SageMaker developer guide,
"XGBoost algorithm", input/output interface for CSV).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1

# The code written for a category the schema does not know; known categories are numbered from 1.
UNKNOWN_CATEGORY_CODE = 0

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
    # Numeric only: the column's own spellings of a missing value, beyond the common markers.
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
        return {
            "schemaVersion": SCHEMA_VERSION,
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
            if document["schemaVersion"] != SCHEMA_VERSION:
                raise SchemaError(f"schemaVersion {document['schemaVersion']!r} is not {SCHEMA_VERSION}")
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
    if feature.kind is FeatureKind.NUMERIC and feature.missing:
        document["missingValues"] = list(feature.missing)
    if feature.kind is FeatureKind.IGNORED:
        document["reason"] = feature.reason
    return document


def is_missing(text: str) -> bool:
    return text.strip().lower() in MISSING_MARKERS


def parse_number(text: str) -> float | None:
    """The finite number a field holds, None for a missing value; ValueError for anything else."""
    try:
        value = float(text)
    except ValueError:
        if is_missing(text):
            return None
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError(f"{text[:40]!r} is not a finite number")
    return value
