"""A dataset's own settings: `raw/<dataset>/dataset.json`, uploaded beside its CSVs by the team that owns
the data, overriding the stack's defaults for that dataset alone:

    {"targetColumn": "species", "problemType": "multiclass", "ignoreColumns": ["sample_id"],
     "maxCategories": 200, "minLabeledRows": 100}

Every key is optional. `targetColumn`, `problemType`, `ignoreColumns` and `maxCategories` shape the schema,
so they take effect with the dataset's first upload; `minLabeledRows` applies to every upload. The file is
not an upload (it does not end in the upload suffix), so writing it starts nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from shared.dataset_schema import ProblemType
from transform.pipeline import TransformOptions

SETTINGS_FILE = "dataset.json"
PROBLEM_TYPES = ("auto", *(kind.value for kind in ProblemType))
# The same bounds as the stack's own keys (settings.py): maxCategories, and a minimum of labeled rows.
MAX_CATEGORIES = (2, 100_000)
MIN_LABELED_ROWS = (2, 1_000_000_000)
MAX_IGNORED_COLUMNS = 10_000


class InvalidDatasetSettings(ValueError):
    """dataset.json is not valid; the message names each bad key."""


@dataclass(frozen=True)
class DatasetSettings:
    """What a dataset's dataset.json sets; None (or empty) where it leaves the stack's default."""

    target_column: str | None = None
    problem_type: str | None = None
    ignore_columns: tuple[str, ...] = ()
    max_categories: int | None = None
    min_labeled_rows: int | None = None

    def applied_to(self, options: TransformOptions) -> TransformOptions:
        inference = options.inference
        if self.target_column is not None:
            inference = replace(inference, target_column=self.target_column)
        if self.problem_type is not None:
            problem = None if self.problem_type == "auto" else ProblemType(self.problem_type)
            inference = replace(inference, problem_type=problem)
        if self.ignore_columns:
            inference = replace(inference, ignore_columns=frozenset(self.ignore_columns))
        if self.max_categories is not None:
            inference = replace(inference, max_categories=self.max_categories)
        applied = replace(options, inference=inference)
        if self.min_labeled_rows is not None:
            applied = replace(applied, min_labeled_rows=self.min_labeled_rows)
        return applied

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "targetColumn": self.target_column,
            "problemType": self.problem_type,
            "ignoreColumns": list(self.ignore_columns),
            "maxCategories": self.max_categories,
            "minLabeledRows": self.min_labeled_rows,
        }
        return {key: value for key, value in document.items() if value not in (None, [])}


def settings_key(raw_prefix: str, dataset: str) -> str:
    return f"{raw_prefix}{dataset}/{SETTINGS_FILE}"


def parse_dataset_settings(data: bytes) -> DatasetSettings:
    """The settings of a dataset.json document; `InvalidDatasetSettings` lists every bad key."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidDatasetSettings(f"{SETTINGS_FILE} is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise InvalidDatasetSettings(f"{SETTINGS_FILE} must be a JSON object of settings")
    problems: list[str] = []
    known = {"targetColumn", "problemType", "ignoreColumns", "maxCategories", "minLabeledRows"}
    for key in sorted(set(document) - known):
        problems.append(f"{key!r} is not a setting (settings: {', '.join(sorted(known))})")
    target = document.get("targetColumn")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        problems.append(f"targetColumn = {target!r}: must be a non-empty column name")
    problem = document.get("problemType")
    if problem is not None and problem not in PROBLEM_TYPES:
        problems.append(f"problemType = {problem!r}: must be one of {', '.join(PROBLEM_TYPES)}")
    ignored = document.get("ignoreColumns", [])
    if (
        not isinstance(ignored, list)
        or len(ignored) > MAX_IGNORED_COLUMNS
        or not all(isinstance(name, str) and name.strip() for name in ignored)
    ):
        problems.append(f"ignoreColumns = {_short(ignored)}: must be a list of column names")
        ignored = []
    max_categories = _integer(document, "maxCategories", MAX_CATEGORIES, problems)
    min_rows = _integer(document, "minLabeledRows", MIN_LABELED_ROWS, problems)
    if problems:
        raise InvalidDatasetSettings(f"{SETTINGS_FILE}: " + "; ".join(problems))
    return DatasetSettings(
        target_column=target.strip() if target is not None else None,
        problem_type=problem,
        ignore_columns=tuple(name.strip() for name in ignored),
        max_categories=max_categories,
        min_labeled_rows=min_rows,
    )


def _integer(document: dict[str, Any], key: str, bounds: tuple[int, int], problems: list[str]) -> int | None:
    value = document.get(key)
    if value is None:
        return None
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{key} = {_short(value)}: must be an integer from {low} to {high}")
        return None
    return value


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else f"{text[:60]}..."
