"""The transform over real public tables, as a data team would upload them.

Each table is loaded at test time with its package's own loader (scikit-learn, palmerpenguins,
vega-datasets, bokeh-sampledata: all offline), written with `DataFrame.to_csv(index=False)` and
transformed with the stack's default options (validationPercent 20, maxRejectedRowsPercent 1,
maxCategories 1000, minLabeledRows 50, problemType auto). For every table:

- every labeled row is kept, every row without a target is counted as unlabeled, none is refused;
- every written line decodes back to the table's own values (a multiset over the model features);
- the part files are read by xgboost 3.0.5 exactly as the built-in 3.0-5 container reads a training
  channel (`csv.Sniffer` on the first line, then `DMatrix("<dir>?format=csv&label_column=0&delimiter=,")`),
  both at the schema's width;
- the schema's decisions are the expected ones (problem type, which columns are ignored and why), and
  the same rows in another order give the same schema.

Then broken variants of a few tables, as real uploads break: a quote that is never closed, Excel's
"General" decimal commas, Windows-1252 text, and targets left empty (not an error).
"""

from __future__ import annotations

import collections
import csv
import functools
import importlib.resources
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import xgboost
from bokeh_sampledata import lincoln, sample_superstore, titanic
from palmerpenguins import load_penguins, load_penguins_raw
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from vega_datasets import local_data

from shared.dataset_schema import WIDTH_MARKER, DatasetSchema, Feature, FeatureKind, ProblemType
from tests.support.sinks import Lines
from transform.pipeline import FileRejected, TransformOptions, TransformOutcome, transform_csv
from transform.schema_inference import InferenceOptions

# The stack's defaults (settings.py): validationPercent 20, maxRejectedRowsPercent 1 (also the numeric
# tolerance, as transform.environment sets it), maxCategories 1000, minLabeledRows 50.
VALIDATION_FRACTION = 0.2
MAX_REJECTED_FRACTION = 0.01
MAX_CATEGORIES = 1000
MIN_LABELED_ROWS = 50

IDENTIFIER = "an identifier"
CONSTANT = "nothing to learn"
ROW_NUMBER = "a row number"


@dataclass(frozen=True)
class Table:
    key: str
    load: Callable[[], pd.DataFrame]
    target: str
    problem_type: ProblemType  # what auto must decide
    # Column -> a phrase of the reason it is ignored; every other column must reach the model.
    ignored: dict[str, str] = field(default_factory=dict)
    min_labeled_rows: int = MIN_LABELED_ROWS

    def frame(self) -> pd.DataFrame:
        return _loaded(self.load).copy()

    def __str__(self) -> str:
        return self.key


@functools.cache
def _loaded(load: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    return load()


def _wine() -> pd.DataFrame:
    # The UCI labels 1-3 (scikit-learn ships 0-2): a class set that is not 0..K-1.
    return load_wine(as_frame=True).frame.assign(target=lambda frame: frame.target + 1)


def _cars() -> pd.DataFrame:
    # Not `local_data("cars")`: it passes pandas' deprecated `convert_dates` (Pandas4Warning).
    return pd.read_json(importlib.resources.files("vega_datasets") / "_data/cars.json")


TABLES = [
    Table("iris", lambda: load_iris(as_frame=True).frame, "target", ProblemType.MULTICLASS),
    Table("wine_1to3", _wine, "target", ProblemType.MULTICLASS),
    Table("breast_cancer", lambda: load_breast_cancer(as_frame=True).frame, "target", ProblemType.BINARY),
    Table(
        "diabetes_raw",
        lambda: load_diabetes(scaled=False, as_frame=True).frame,
        "target",
        ProblemType.REGRESSION,
    ),
    # Wide (64 features); pixel_0_0, pixel_4_0 and pixel_4_7 are 0 in every row: numeric, kept (the
    # rules ignore only a text column of one value).
    Table("digits", lambda: load_digits(as_frame=True).frame, "target", ProblemType.MULTICLASS),
    # 11 penguins have no recorded sex: unlabeled, not refused.
    Table("penguins_sex", load_penguins, "sex", ProblemType.BINARY),
    # Long text labels, ISO dates (Date Egg), free-text comments, and two text columns of one value.
    # "Individual ID" (190 values over 344 rows, each bird seen in up to 3 seasons) stays categorical.
    Table(
        "penguins_raw",
        load_penguins_raw,
        "Species",
        ProblemType.MULTICLASS,
        ignored={"Region": CONSTANT, "Stage": CONSTANT},
    ),
    # 8 cars without a mileage; Year is an ISO date string; Name is near-unique.
    Table("cars", _cars, "Miles_per_Gallon", ProblemType.REGRESSION, ignored={"Name": IDENTIFIER}),
    # Dates parsed by the loader, written back as ISO; an imbalanced 5-class text target.
    Table("seattle_weather", lambda: local_data("seattle-weather"), "weather", ProblemType.MULTICLASS),
    # `country` is no target here (USA and 4 one-row labels): latitude is. iata codes are unique; name
    # and city have more distinct values than maxCategories.
    Table(
        "airports",
        lambda: local_data("airports"),
        "latitude",
        ProblemType.REGRESSION,
        ignored={"iata": IDENTIFIER, "name": IDENTIFIER, "city": IDENTIFIER},
    ),
    # 63 rows, one without an age: 62 labeled rows, above minLabeledRows 50, so the default applies.
    Table(
        "la_riots",
        lambda: local_data("la-riots"),
        "age",
        ProblemType.REGRESSION,
        ignored={"first_name": IDENTIFIER, "last_name": IDENTIFIER, "address": IDENTIFIER},
    ),
    # Names hold commas and quotes; 557 ages missing; class has a stray "*".
    Table("titanic", lambda: titanic.data, "survived", ProblemType.BINARY, ignored={"name": IDENTIFIER}),
    Table("titanic_age", lambda: titanic.data, "age", ProblemType.REGRESSION, ignored={"name": IDENTIFIER}),
    # Every field quoted in the shipped file; one day without TMAX (and TMIN).
    Table(
        "lincoln",
        lambda: lincoln.data,
        "TMAX",
        ProblemType.REGRESSION,
        ignored={"STATION": CONSTANT, "NAME": CONSTANT},
    ),
    # The largest (9994 rows): negative profits, 531 cities as categories, one country.
    Table(
        "superstore",
        lambda: sample_superstore.data,
        "Profit",
        ProblemType.REGRESSION,
        ignored={"Country": CONSTANT},
    ),
]
BY_KEY = {table.key: table for table in TABLES}


def tables(*keys: str) -> list[Table]:
    return [BY_KEY[key] for key in keys]


# --- running the transform --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    outcome: TransformOutcome
    train: bytes
    validation: bytes


def options(table: Table) -> TransformOptions:
    return TransformOptions(
        validation_fraction=VALIDATION_FRACTION,
        max_rejected_fraction=MAX_REJECTED_FRACTION,
        inference=InferenceOptions(
            table.target, None, max_categories=MAX_CATEGORIES, numeric_tolerance=MAX_REJECTED_FRACTION
        ),
        min_labeled_rows=table.min_labeled_rows,
    )


def transform(table: Table, data: bytes) -> Run:
    train, validation = Lines(), Lines()
    outcome = transform_csv(
        lambda: io.BytesIO(data),
        stored_schema=None,
        options=options(table),
        train=train,
        validation=validation,
    )
    return Run(outcome, bytes(train.data), bytes(validation.data))


def written(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@functools.cache
def transformed(key: str) -> Run:
    table = BY_KEY[key]
    return transform(table, written(table.frame()))


def rejected(table: Table, data: bytes) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        transform(table, data)
    return caught.value


# --- decoding ---------------------------------------------------------------------------------------

EPOCH = pd.Timestamp("1970-01-01")
Value = str | float | None


def days_since_epoch(value: object) -> float:
    moment = pd.Timestamp(value)  # type: ignore[arg-type]
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return (moment - EPOCH) / pd.Timedelta(days=1)


def expected_value(feature: Feature, value: object) -> Value:
    """What a table's value means to the model, missing as None."""
    if pd.isna(value):  # type: ignore[call-overload]
        return None
    if feature.kind is FeatureKind.NUMERIC:
        return float(value)  # type: ignore[arg-type]
    if feature.kind is FeatureKind.TIMESTAMP:
        return days_since_epoch(value)
    return str(value).strip()  # categories compare without surrounding whitespace


def decoded_value(feature: Feature, text: str) -> Value:
    if text == "":
        return None
    if feature.kind is FeatureKind.CATEGORICAL:
        code = int(text)
        assert code >= 1, f"{feature.name!r}: the unknown code in the schema's own first upload"
        return feature.categories[code - 1]
    return float(text)  # numbers as written; timestamps as days since 1970


def decoded_label(schema: DatasetSchema, text: str) -> Value:
    if schema.target.problem_type.is_classification:
        return schema.target.classes[int(text)]
    return float(text)


def expected_label(schema: DatasetSchema, value: object) -> Value:
    if schema.target.problem_type.is_classification:
        return str(value).strip()  # integer labels are ints in the frame and "1" in the CSV
    return float(value)  # type: ignore[arg-type]


def decoded_rows(schema: DatasetSchema, data: bytes) -> list[tuple[Value, ...]]:
    features = schema.model_features
    rows = []
    for line in data.decode().splitlines():
        fields = line.split(",")
        assert len(fields) == len(features) + 2, line
        assert fields[-1] == WIDTH_MARKER, line
        values = map(decoded_value, features, fields[1:-1])
        rows.append((decoded_label(schema, fields[0]), *values))
    return rows


def expected_rows(schema: DatasetSchema, frame: pd.DataFrame) -> list[tuple[Value, ...]]:
    labeled = frame[frame[schema.target.name].notna()]
    features = schema.model_features
    columns = [labeled[schema.target.name].tolist()] + [
        labeled[feature.name].tolist() for feature in features
    ]
    return [
        (expected_label(schema, row[0]), *map(expected_value, features, row[1:]))
        for row in zip(*columns, strict=True)
    ]


def read_channel(directory: Path, part: bytes) -> xgboost.DMatrix:
    """One channel of one part file, read as the 3.0-5 container reads a CSV training channel."""
    directory.mkdir()
    (directory / "part-00000.csv").write_bytes(part)
    first = part.decode().split("\n", 1)[0]
    assert csv.Sniffer().sniff(first).delimiter == ","
    return xgboost.DMatrix(f"{directory}?format=csv&label_column=0&delimiter=,")


# --- accepted tables --------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES, ids=str)
def test_every_labeled_row_is_kept_and_every_unlabeled_row_counted(table: Table) -> None:
    frame = table.frame()
    outcome = transformed(table.key).outcome
    unlabeled = int(frame[table.target].isna().sum())
    assert outcome.rejected_row_count == 0 and outcome.rejected_rows == (), outcome.rejected_rows[:5]
    assert outcome.rows_read == len(frame)
    assert outcome.unlabeled_rows == unlabeled
    assert outcome.train_rows + outcome.validation_rows == len(frame) - unlabeled
    assert outcome.train_rows and outcome.validation_rows
    if outcome.schema.target.problem_type.is_classification:
        labels = frame[table.target].dropna().astype(str).str.strip().value_counts().to_dict()
        assert {label: sum(sides.values()) for label, sides in outcome.class_counts.items()} == labels
        assert all(sides["train"] and sides["validation"] for sides in outcome.class_counts.values())
        assert sum(sides["validation"] for sides in outcome.class_counts.values()) == outcome.validation_rows


@pytest.mark.parametrize("table", TABLES, ids=str)
def test_every_written_line_decodes_to_the_tables_own_values(table: Table) -> None:
    run = transformed(table.key)
    schema = run.outcome.schema
    train = decoded_rows(schema, run.train)
    validation = decoded_rows(schema, run.validation)
    assert (len(train), len(validation)) == (run.outcome.train_rows, run.outcome.validation_rows)
    got = collections.Counter(train + validation)
    want = collections.Counter(expected_rows(schema, table.frame()))
    extra, lost = list((got - want).items())[:3], list((want - got).items())[:3]
    assert got == want, f"written, not in the table: {extra}; in the table, not written: {lost}"


@pytest.mark.parametrize("table", TABLES, ids=str)
def test_the_part_files_are_read_by_xgboost_as_the_container_reads_them(table: Table, tmp_path: Path) -> None:
    run = transformed(table.key)
    width = len(run.outcome.schema.model_features) + 1  # the width marker
    for name, part, rows in (
        ("train", run.train, run.outcome.train_rows),
        ("validation", run.validation, run.outcome.validation_rows),
    ):
        matrix = read_channel(tmp_path / name, part)
        assert (matrix.num_row(), matrix.num_col()) == (rows, width), name
        labels = matrix.get_label()
        assert not any(map(math.isnan, labels)), name


@pytest.mark.parametrize("table", TABLES, ids=str)
def test_the_schema_decides_the_problem_type_and_which_columns_to_ignore(table: Table) -> None:
    schema = transformed(table.key).outcome.schema
    ignored = {
        feature.name: feature.reason for feature in schema.features if feature.kind is FeatureKind.IGNORED
    }
    kinds = collections.Counter(feature.kind.value for feature in schema.model_features)
    print(f"{table.key}: {schema.target.problem_type} {schema.target.classes or ''} {dict(kinds)}")
    for name, reason in ignored.items():
        print(f"  ignored {name!r}: {reason}")
    assert schema.target.problem_type is table.problem_type
    assert set(ignored) == set(table.ignored)
    for name, phrase in table.ignored.items():
        assert phrase in ignored[name], (name, ignored[name])
    assert schema.xgboost.num_class == (
        len(schema.target.classes) if table.problem_type is ProblemType.MULTICLASS else None
    )


@pytest.mark.parametrize("table", TABLES, ids=str)
def test_the_same_rows_in_another_order_give_the_same_schema(table: Table) -> None:
    shuffled = table.frame().sample(frac=1, random_state=20240531)
    again = transform(table, written(shuffled))
    first = transformed(table.key)
    assert again.outcome.schema.digest == first.outcome.schema.digest
    # Each row goes to the same split wherever it stands.
    assert sorted(again.train.splitlines()) == sorted(first.train.splitlines())
    assert sorted(again.validation.splitlines()) == sorted(first.validation.splitlines())


@pytest.mark.parametrize("table", tables("iris", "titanic", "superstore"), ids=str)
def test_a_written_index_is_ignored_as_a_row_number(table: Table) -> None:
    # A data team that forgets index=False but names the index writes 0 .. n-1 as a first column.
    data = table.frame().rename_axis("row").to_csv().encode()
    schema = transform(table, data).outcome.schema
    row = schema.features[0]
    assert row.name == "row" and row.kind is FeatureKind.IGNORED and ROW_NUMBER in row.reason
    assert schema.model_features == transformed(table.key).outcome.schema.model_features


# --- broken variants --------------------------------------------------------------------------------


@pytest.mark.parametrize("table", tables("iris", "digits", "penguins_raw", "airports", "titanic"), ids=str)
def test_a_quote_never_closed_refuses_the_file_naming_the_line_its_row_starts_on(table: Table) -> None:
    lines = table.frame().to_csv(index=False).split("\n")
    middle = len(lines) // 2  # line `middle + 1` of the file
    lines[middle] = '"' + lines[middle]
    error = rejected(table, "\n".join(lines).encode())
    assert "CSV syntax error" in error.reason
    assert f"in the row that starts at line {middle + 1}" in error.reason, error.reason


def excel_general(value: object) -> str:
    """A number as Excel's "General" format writes it under a decimal-comma locale: 12, 12,5."""
    if pd.isna(value):  # type: ignore[call-overload]
        return ""
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if number.is_integer() else repr(number).replace(".", ",")


@pytest.mark.parametrize("table", tables("iris", "penguins_sex", "cars", "titanic", "la_riots"), ids=str)
def test_excel_decimal_commas_refuse_the_file_naming_the_column(table: Table) -> None:
    frame = table.frame()
    numbers = [name for name in frame.columns if pd.api.types.is_float_dtype(frame[name])]
    assert all("e" not in repr(value) for name in numbers for value in frame[name].dropna())
    fractional = [
        name
        for name in numbers
        if name != table.target and not frame[name].dropna().map(float.is_integer).all()
    ]
    for name in numbers:
        frame[name] = frame[name].map(excel_general)
    error = rejected(table, frame.to_csv(index=False, sep=";").encode())
    assert f"column {fractional[0]!r} holds numbers with decimal commas" in error.reason, error.reason


@pytest.mark.parametrize("table", tables("cars", "titanic_age"), ids=str)
def test_a_regression_target_with_excel_decimal_commas_refuses_the_file_naming_it(table: Table) -> None:
    # Only the target: read as text it would be classes ("14,5"), or its fractional rows refused one by one.
    frame = table.frame()
    frame[table.target] = frame[table.target].map(excel_general)
    error = rejected(table, frame.to_csv(index=False, sep=";").encode())
    assert f"column {table.target!r} (the target) holds numbers with decimal commas" in error.reason, (
        error.reason
    )
    assert error.rejected_row_count == 0


def test_a_target_of_one_class_and_rare_labels_is_refused_alike_in_any_order() -> None:
    # airports by country: USA and four countries of one airport each, which cannot be in both splits.
    table = Table("airports_country", lambda: local_data("airports"), "country", ProblemType.MULTICLASS)
    frame = table.frame()
    reasons = {rejected(table, written(frame.sample(frac=1, random_state=seed))).reason for seed in range(3)}
    reasons.add(rejected(table, written(frame)).reason)
    assert len(reasons) == 1, reasons
    assert (
        "'country' has fewer than 2 classes to learn from (a class needs 2 labeled rows): 'USA'"
        in reasons.pop()
    )


ACCENTED = str.maketrans({"e": "é", "u": "ü", "a": "à"})
NON_ASCII_TEXT = {
    "titanic": "name",
    "cars": "Name",
    "airports": "city",
    "penguins_raw": "Comments",
    "la_riots": "neighborhood",
}


def windows_1252(table: Table) -> tuple[bytes, int]:
    """The table with accents in a text column from its middle row on, encoded as Windows-1252, and the
    line of the first non-ASCII character."""
    frame = table.frame()
    column = NON_ASCII_TEXT[table.key]
    middle = len(frame) // 2
    texts = frame[column].astype(object)
    texts.iloc[middle:] = [
        text.translate(ACCENTED) if isinstance(text, str) else text for text in texts.iloc[middle:]
    ]
    frame[column] = texts
    data = frame.to_csv(index=False).encode("cp1252")
    lines = data.split(b"\n")
    first = next(number for number, line in enumerate(lines, start=1) if not line.isascii())
    return data, first


@pytest.mark.parametrize("table", tables(*NON_ASCII_TEXT), ids=str)
def test_windows_1252_text_is_refused_naming_the_line_of_the_first_bad_byte(table: Table) -> None:
    data, first = windows_1252(table)
    reason = rejected(table, data).reason
    assert "the file is not UTF-8 text" in reason and "save it as UTF-8" in reason
    assert f"(line {first} holds the byte 0x" in reason, reason


@pytest.mark.parametrize(
    "table", tables("iris", "digits", "penguins_raw", "cars", "titanic", "superstore"), ids=str
)
def test_emptied_targets_make_unlabeled_rows_and_every_other_row_is_kept(table: Table) -> None:
    frame = table.frame()
    emptied = frame.index[::7]
    frame[table.target] = frame[table.target].astype(object)
    frame.loc[emptied, table.target] = None
    unlabeled = int(frame[table.target].isna().sum())
    assert unlabeled >= len(emptied)
    run = transform(table, written(frame))
    outcome = run.outcome
    assert outcome.rows_read == len(frame) and outcome.rejected_row_count == 0
    assert outcome.unlabeled_rows == unlabeled
    assert outcome.train_rows + outcome.validation_rows == len(frame) - unlabeled
    got = collections.Counter(decoded_rows(outcome.schema, run.train + run.validation))
    assert got == collections.Counter(expected_rows(outcome.schema, frame))
