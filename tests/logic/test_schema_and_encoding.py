"""schema.json and the shared encoding: what a dataset's contract says and how records become rows."""

from __future__ import annotations

import json

import pytest

from shared.dataset_schema import (
    DatasetSchema,
    Feature,
    FeatureKind,
    ProblemType,
    SchemaError,
    SchemaMismatch,
    Target,
)
from shared.encoding import NumberField, RecordRejected, RowEncoder
from transform.profile import TableProfile, joined
from transform.schema_inference import InferenceOptions, check_names, infer_schema


def churn_schema(problem_type: ProblemType = ProblemType.BINARY) -> DatasetSchema:
    classes = {"binary": ("no", "yes"), "multiclass": ("a", "b", "c"), "regression": ()}[problem_type.value]
    return DatasetSchema(
        columns=("age", "city", "id", "target"),
        target=Target("target", problem_type, classes),
        features=(
            Feature("age", FeatureKind.NUMERIC),
            Feature("city", FeatureKind.CATEGORICAL, ("Berlin", "Paris")),
            Feature("id", FeatureKind.IGNORED, reason="identifier"),
        ),
    )


def options(**overrides: object) -> InferenceOptions:
    values: dict[str, object] = {
        "target_column": "target",
        "problem_type": None,
        "max_categories": 5,
        "numeric_tolerance": 0.0,
    }
    return InferenceOptions(**(values | overrides))  # type: ignore[arg-type]


def inferred(header: list[str], rows: list[list[str]], settings: InferenceOptions) -> DatasetSchema:
    """The schema inferred from the profile of these rows, as the transform infers a first upload's."""
    check_names(header, settings.target_column)
    profile = TableProfile.new(header, settings.target_column, settings.max_categories + 1, threshold=2000)
    profile.add(rows, joined(rows))
    return infer_schema(profile, settings).schema


@pytest.mark.parametrize("problem_type", list(ProblemType))
def test_schema_document_round_trips_and_names_the_xgboost_settings(problem_type: ProblemType) -> None:
    schema = churn_schema(problem_type)
    document = json.loads(schema.to_json())
    assert DatasetSchema.from_json(schema.to_json()) == schema
    assert document["unknownCategoryCode"] == 0
    assert document["xgboost"] == {
        "binary": {"objective": "binary:logistic", "evalMetric": "auc", "numClass": None,
                   "tuningMetric": "validation:auc", "tuningDirection": "Maximize"},
        "multiclass": {"objective": "multi:softprob", "evalMetric": "mlogloss", "numClass": 3,
                       "tuningMetric": "validation:mlogloss", "tuningDirection": "Minimize"},
        "regression": {"objective": "reg:squarederror", "evalMetric": "rmse", "numClass": None,
                       "tuningMetric": "validation:rmse", "tuningDirection": "Minimize"},
    }[problem_type.value]  # fmt: skip


def test_digest_changes_with_any_category() -> None:
    schema = churn_schema()
    changed = DatasetSchema(
        schema.columns,
        schema.target,
        (
            schema.features[0],
            Feature("city", FeatureKind.CATEGORICAL, ("Paris", "Berlin")),
            schema.features[2],
        ),
    )
    assert schema.digest != changed.digest


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schemaVersion=3), "schemaVersion 3"),
        (lambda d: d["target"].update(classes=["only"]), "binary target needs 2 classes"),
        (lambda d: d["columns"].append("extra"), "exactly the target plus the features"),
        (lambda d: d["features"][0].update(type="date"), "invalid"),
        (lambda d: d.pop("target"), "invalid"),
    ],
)
def test_a_hand_edited_schema_that_is_not_valid_is_refused(edit: object, message: str) -> None:
    document = churn_schema().to_document()
    edit(document)  # type: ignore[operator]
    with pytest.raises(SchemaError, match=message):
        DatasetSchema.from_document(document)


def test_header_check_names_missing_renamed_and_duplicate_columns() -> None:
    with pytest.raises(SchemaMismatch, match=r"missing column\(s\) 'city'.*'town' not in the dataset"):
        churn_schema().check_header(["age", "town", "id", "target"])
    with pytest.raises(SchemaMismatch, match="duplicate column names"):
        churn_schema().check_header(["age", "city", "id", "target", "age"])
    churn_schema().check_header([" target", "id ", "city", "age"])  # order and padding do not matter


def test_rows_are_target_first_then_features_in_schema_order_ignored_columns_left_out() -> None:
    encoder = RowEncoder(churn_schema(), ["target", "id", "city", "age"])
    assert encoder.encode(["yes", "c-17", " Paris ", "41"]) == "1,41,2,1", "the width marker comes last"
    assert encoder.encode(["no", "c-18", "Lisbon", "NA"]) == "0,,0,1", "unknown category: code 0; NA: missing"
    assert encoder.unknown_categories == {"city": 1}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["maybe", "x", "Paris", "1"], "column 'target': class 'maybe' is not one of the target's classes"),
        (["", "x", "Paris", "1"], "column 'target': the target is empty"),
        (["yes", "x", "Paris", "forty"], "column 'age': 'forty' is not a number"),
        (["yes", "x", "Paris", "inf"], "column 'age': 'inf' is not a finite number"),
        (["yes", "x", "Paris"], "has 3 fields, the header has 4"),
    ],
)
def test_a_bad_record_is_refused_naming_the_field(row: list[str], reason: str) -> None:
    encoder = RowEncoder(churn_schema(), ["target", "id", "city", "age"])
    with pytest.raises(RecordRejected, match=reason):
        encoder.encode(row)


@pytest.mark.parametrize(
    ("text", "encoded"),
    [("1.50", "1.50"), (" 2.5 ", "2.5"), ("1_000", "1000.0"), ("٣", "3.0"), ("1e5", "1e5"), ("-0", "-0"),
     ("", ""), ("NaN", ""), ("null", "")],
)  # fmt: skip
def test_numbers_are_written_in_a_form_xgboost_parses(text: str, encoded: str) -> None:
    assert NumberField().one(text) == encoded


def test_a_block_rejects_only_its_bad_rows_and_keeps_the_order_of_the_rest() -> None:
    encoder = RowEncoder(churn_schema(), ["target", "id", "city", "age"])
    block = encoder.encode_block(
        [["yes", "a", "Paris", "1"], ["yes", "a"], ["no", "b", "Berlin", "x"], ["no", "c", "Berlin", "3"]]
    )
    assert block.lines == ["1,1,2,1", "0,3,1,1"]
    assert [index for index, _ in block.rejected] == [1, 2]


def test_inference_reads_kinds_problem_type_and_identifier_columns_from_the_sample() -> None:
    header = ["age", "plan", "customer", "target"]
    sample = [[str(20 + i), ["a", "b"][i % 2], f"cust-{i}", "1" if i % 3 else "0"] for i in range(10)]
    schema = inferred(header, sample, options())
    assert [f.kind for f in schema.features] == [
        FeatureKind.IGNORED,
        FeatureKind.CATEGORICAL,
        FeatureKind.IGNORED,
    ]
    assert "each whole number from 20 to 29 once: a row number" in schema.features[0].reason
    assert "more than maxCategories (5) distinct values" in schema.features[2].reason
    assert schema.target.problem_type == "binary" and schema.target.classes == ("0", "1")


@pytest.mark.parametrize(
    ("targets", "given", "problem_type"),
    [
        (["1.5", "2.5", "3.5"], None, ProblemType.REGRESSION),
        ([str(label) for label in range(11)], None, ProblemType.REGRESSION),
        ([str(label) for label in range(10)], None, ProblemType.MULTICLASS),
        (["1", "2", "3"], None, ProblemType.MULTICLASS),
        (["0.5", "1.5"], None, ProblemType.BINARY),
        (["0", "1", "0"], None, ProblemType.BINARY),
        (["low", "mid", "high"], None, ProblemType.MULTICLASS),
        (["0", "1", "2"], ProblemType.MULTICLASS, ProblemType.MULTICLASS),
        (["10", "9", "8"], ProblemType.BINARY, None),
    ],
)
def test_problem_type_is_inferred_or_taken_from_config(
    targets: list[str], given: ProblemType | None, problem_type: ProblemType | None
) -> None:
    sample = [[str(index % 3), target] for index, target in enumerate(targets * 2)]
    if problem_type is None:
        with pytest.raises(SchemaMismatch, match="problem type is binary but target 'target' has 3 classes"):
            inferred(["x", "target"], sample, options(problem_type=given, max_categories=20))
        return
    assert (
        inferred(["x", "target"], sample, options(problem_type=given, max_categories=20)).target.problem_type
        == problem_type
    )


def test_a_column_of_numbers_with_a_few_words_stays_numeric_so_the_words_are_refused_by_name() -> None:
    # 5% "unknown": the column stays numeric, and those rows are refused naming the column and the value.
    sample = [[str(i) if i % 20 else "unknown", "yes" if i % 2 else "no"] for i in range(400)]
    assert inferred(["x", "target"], sample, options(max_categories=1000)).features[0].kind == "numeric"
    # A column that is mostly words is text.
    words = [[str(i) if i % 4 == 0 else f"w{i % 7}", "yes" if i % 2 else "no"] for i in range(400)]
    assert inferred(["x", "target"], words, options(max_categories=1000)).features[0].kind == "categorical"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["a", "b"], "no target column 'target' in the header"),
        (["a", "", "target"], r"column\(s\) 2 of the header have no name"),
        (["a", "a", "target"], "duplicate column name"),
    ],
)
def test_a_header_that_cannot_become_a_schema_is_refused(header: list[str], message: str) -> None:
    with pytest.raises(SchemaMismatch, match=message):
        inferred(header, [], options())


def test_a_numeric_columns_own_word_for_missing_is_learned_stored_and_read_as_missing() -> None:
    sample = [[str(i) if i % 10 else "-", "yes" if i % 2 else "no"] for i in range(300)]
    schema = inferred(["income", "target"], sample, options(max_categories=1000))
    income = schema.features[0]
    assert (income.kind, income.missing) == (FeatureKind.NUMERIC, ("-",))
    assert schema.to_document()["features"][0]["missingValues"] == ["-"]
    assert DatasetSchema.from_json(schema.to_json()) == schema
    encoder = RowEncoder(schema, ["income", "target"])
    assert encoder.encode([" - ", "yes"]) == "1,,1", "the column's marker is a missing value"
    with pytest.raises(RecordRejected, match="'n/k' is not a number"):
        encoder.encode(["n/k", "yes"])


@pytest.mark.parametrize(
    "column",
    [
        ["S", "M", "L", "M", "S", "10"] * 50,  # mostly words: a text column
        [*map(str, range(270)), *["-", "?!", "x", "y"] * 10],  # too many kinds of words
        [*map(str, range(299)), "forty"],  # a one-off word is a typo, refused with its row
        [*map(str, range(250)), *["N1"] * 50],  # a word with a digit is a value, not a marker
    ],
)
def test_words_that_are_not_a_missing_value_convention_are_not_learned_as_one(column: list[str]) -> None:
    sample = [[value, "ab"[i % 2], "yes" if i % 2 else "no"] for i, value in enumerate(column)]
    feature = inferred(["x", "k", "target"], sample, options(max_categories=1000)).features[0]
    assert feature.missing == ()
