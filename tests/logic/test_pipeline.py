"""The transform's pure core: whole-file rejections, the deadline, and the size limit per run."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from shared.dataset_schema import DatasetSchema, FeatureKind, ProblemType
from tests.support.sinks import Lines
from transform.pipeline import FileRejected, Split, TransformOptions, TransformOutcome, transform_csv
from transform.profile import digests, joined, validation_threshold
from transform.schema_inference import InferenceOptions
from transform.upload import ASSUMED_BYTES_PER_SECOND, ONE_VCPU_MB, RESERVE_SECONDS, max_object_bytes

OPTIONS = TransformOptions(
    validation_fraction=0.2,
    max_rejected_fraction=0.01,
    inference=InferenceOptions("target", None, max_categories=100, numeric_tolerance=0.01),
    min_labeled_rows=2,
)


class Discard:
    def write(self, lines: bytes) -> None:
        pass

    def abort(self) -> None:
        pass


def transform(data: bytes, deadline: float | None = None) -> None:
    transform_csv(
        lambda: io.BytesIO(data),
        stored_schema=None,
        options=OPTIONS,
        train=Discard(),
        validation=Discard(),
        deadline=deadline,
    )


def test_a_run_past_its_deadline_is_rejected_not_truncated() -> None:
    data = b"x,target\n" + b"1,yes\n2,no\n" * 100_000
    with pytest.raises(FileRejected, match="could not be transformed within the function's timeout"):
        transform(data, deadline=time.monotonic() - 1)


def test_a_file_of_only_blank_lines_after_the_header_has_no_data_rows() -> None:
    with pytest.raises(FileRejected, match="header but no data rows"):
        transform(b"x,target\n\n\r\n\n")


def test_an_unterminated_quote_is_a_csv_error_naming_the_line() -> None:
    with pytest.raises(FileRejected, match=r"CSV syntax error in the row that starts at line 3"):
        transform(b'x,target\n1,yes\n"2,no\n' + b"x" * 20_000_000)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_the_split_holds_the_configured_share_and_follows_each_rows_own_fields(fraction: float) -> None:
    rows = [[str(i), f"c{i % 7}", "yes" if i % 3 else "no"] for i in range(100_000)]
    split = Split(validation_threshold(fraction), {})
    flags = split.mask(digests(joined(rows)), [None] * len(rows))
    assert abs(sum(flags) / len(flags) - fraction) < 0.01
    again = Split(validation_threshold(fraction), {}).mask(digests(joined(rows[::-1])), [None] * len(rows))
    assert again == flags[::-1], "a row goes to the same side wherever it stands"


def test_the_largest_object_per_run_follows_the_time_left_and_the_cpu_share() -> None:
    assert max_object_bytes(900, ONE_VCPU_MB) == int((900 - RESERVE_SECONDS) * ASSUMED_BYTES_PER_SECOND)
    assert max_object_bytes(900, ONE_VCPU_MB) >= 10 * 10**9, "a 10 GB later upload fits one 15-minute run"
    assert max_object_bytes(900, ONE_VCPU_MB, passes=2) == max_object_bytes(900, ONE_VCPU_MB) // 2
    assert max_object_bytes(900, 3008) == max_object_bytes(900, ONE_VCPU_MB), "one thread uses one vCPU"
    assert max_object_bytes(900, ONE_VCPU_MB // 2) == pytest.approx(
        max_object_bytes(900, ONE_VCPU_MB) / 2, rel=1e-3
    )
    assert max_object_bytes(RESERVE_SECONDS, ONE_VCPU_MB) == 0


def run(data: bytes, options: TransformOptions = OPTIONS) -> tuple[TransformOutcome, bytes]:
    train, validation = Lines(), Lines()
    outcome = transform_csv(
        lambda: io.BytesIO(data), stored_schema=None, options=options, train=train, validation=validation
    )
    return outcome, bytes(train.data + validation.data)


def csv(header: str, rows: list[str]) -> bytes:
    return (header + "\n" + "\n".join(rows) + "\n").encode()


def with_inference(**changes: object) -> TransformOptions:
    return replace(OPTIONS, inference=replace(OPTIONS.inference, **changes))


def test_rows_without_a_target_are_unlabeled_left_out_and_counted_not_refused() -> None:
    # 18% of the targets empty, as in real public tables: not errors, and not a reason to refuse the file.
    rows = [f"{i % 50},{'' if i % 11 < 2 else i * 1.5}" for i in range(1, 1000)]
    outcome, written = run(csv("x,target", rows))
    assert outcome.schema.target.problem_type == "regression"
    assert (
        outcome.unlabeled_rows == sum(1 for i in range(1, 1000) if i % 11 < 2) and not outcome.rejected_rows
    )
    assert outcome.train_rows + outcome.validation_rows + outcome.unlabeled_rows == outcome.rows_read == 999
    assert all(line.split(b",")[0] for line in written.splitlines()), "no row without a label"


def test_too_few_labeled_rows_refuse_the_file_naming_the_minimum() -> None:
    rows = [f"{i % 9},{'yes' if i < 15 else 'no' if i < 30 else ''}" for i in range(100)]
    with pytest.raises(FileRejected, match=r"30 labeled rows are too few .* minLabeledRows \(50\)"):
        run(csv("x,target", rows), replace(OPTIONS, min_labeled_rows=50))


def test_a_file_without_a_usable_feature_is_refused_naming_why_each_column_is_not_one() -> None:
    rows = [f"id-{i},{'yes' if i % 2 else 'no'}" for i in range(200)]
    with pytest.raises(FileRejected, match=r"no column is usable as a feature \('id': 200 of its 200 values"):
        run(csv("id,target", rows), with_inference(max_categories=1000))


def test_a_rejected_row_teaches_the_schema_no_class_and_no_category() -> None:
    rows = [f"{i % 40},{'red' if i % 2 else 'blue'},{'yes' if i % 3 else 'no'}" for i in range(1, 1000)]
    rows += ["forty,purple,maybe", "fifty,purple,maybe"]  # bad numbers: no colour, no class learned from them
    outcome, _ = run(csv("x,colour,target", rows))
    assert outcome.rejected_row_count == 2
    assert outcome.schema.target.classes == ("no", "yes") and outcome.schema.target.problem_type == "binary"
    assert outcome.schema.features[1].categories == ("blue", "red")


def test_a_text_column_with_more_values_than_categories_may_hold_is_ignored_as_an_identifier() -> None:
    rows = [f"{i % 7},c{i % 500},{'yes' if i % 2 else 'no'}" for i in range(6000)]
    outcome, _ = run(csv("x,city,target", rows))
    city = outcome.schema.features[1]
    assert city.kind is FeatureKind.IGNORED and "more than maxCategories (100)" in city.reason


def test_identifiers_row_numbers_and_constant_columns_are_ignored_with_their_reason() -> None:
    rows = [f"{i},name {i},{1000 + i},{i % 9},same,{'yes' if i % 2 else 'no'}" for i in range(574)]
    outcome, _ = run(csv("n,name,code,x,constant,target", rows), with_inference(max_categories=1000))
    kinds = {f.name: (f.kind, f.reason) for f in outcome.schema.features}
    assert kinds["n"][0] is FeatureKind.IGNORED and "each whole number from 0 to 573 once" in kinds["n"][1]
    assert kinds["code"][0] is FeatureKind.IGNORED and "from 1000 to 1573" in kinds["code"][1]
    assert (
        kinds["name"][0] is FeatureKind.IGNORED
        and "574 of its 574 values occur only once" in kinds["name"][1]
    )
    assert kinds["constant"][0] is FeatureKind.IGNORED and "the one value 'same'" in kinds["constant"][1]
    assert kinds["x"][0] is FeatureKind.NUMERIC


def test_iso_dates_and_timestamps_become_days_since_1970() -> None:
    days = ["2024-01-15", "2024-01-15T12:00:00Z", "2024-01-16 06:00", "2024-01-15T12:00:00+12:00"]
    rows = [f"{days[i % 4]},{i % 5},{'yes' if i % 2 else 'no'}" for i in range(400)]
    outcome, written = run(csv("when,x,target", rows))
    assert outcome.schema.features[0].kind is FeatureKind.TIMESTAMP
    assert {line.split(b",")[1] for line in written.splitlines()} == {b"19737", b"19737.5", b"19738.25"}


@pytest.mark.parametrize(
    ("labels", "problem_type", "classes"),
    [
        ([str(d) for d in range(10)], "multiclass", tuple(str(d) for d in range(10))),  # digits
        (["1", "2", "3"], "multiclass", ("1", "2", "3")),  # wine cultivars
        (["3", "10", "2"], "multiclass", ("2", "3", "10")),  # numeric order, not text order
        ([f"{d}.5" for d in range(12)], "regression", ()),
    ],
)
def test_a_numeric_target_of_few_whole_values_is_classification(
    labels: list[str], problem_type: str, classes: tuple[str, ...]
) -> None:
    rows = [f"{i % 13},{labels[i % len(labels)]}" for i in range(600)]
    outcome, _ = run(csv("x,target", rows))
    assert (outcome.schema.target.problem_type, outcome.schema.target.classes) == (problem_type, classes)


@pytest.mark.parametrize(
    ("negative", "positive"),
    [("0", "1"), ("false", "true"), ("No", "Yes"), ("N", "Y"), ("FALSE", "TRUE"), ("-1", "1")],
)
def test_the_positive_binary_label_is_code_1_whatever_comes_first(negative: str, positive: str) -> None:
    # Sorted by the target: the first 2,048 rows all positive.
    rows = [f"{i % 17},{positive}" for i in range(3000)] + [f"{i % 17},{negative}" for i in range(300)]
    outcome, written = run(csv("x,target", rows))
    assert outcome.schema.target.classes == (negative, positive)
    assert written.count(b"\n1,") + written.startswith(b"1,") == 3000


def test_a_quote_that_is_never_closed_refuses_the_file_naming_the_line_it_opened_on() -> None:
    # One stray quote before data row 5,000 of 10,000: the rest of the file must not vanish silently.
    rows = [f"{i % 50},{'yes' if i % 2 else 'no'}" for i in range(10_000)]
    rows[4999] = '"' + rows[4999]
    with pytest.raises(
        FileRejected, match="starts at line 5001: a quoted field opened there is never closed"
    ):
        run(csv("x,target", rows))


def test_a_quote_that_swallows_rows_up_to_a_later_quote_refuses_the_file() -> None:
    rows = [f"{i % 50},{'yes' if i % 2 else 'no'}" for i in range(10_000)]
    rows[4999] = rows[4999].replace(",", ',"')
    rows[6999] = rows[6999] + '"'  # closes it 2,000 lines later: one row with a huge target, silently
    with pytest.raises(FileRejected, match="the row that starts at line 5001 runs over several lines"):
        run(csv("x,target", rows))


@pytest.mark.parametrize(
    "values",
    [
        lambda i: f"{i % 90},5" if i % 20 else f"{i % 90}",  # Excel "General": 12 and 12,5 in one column
        lambda i: f"{i % 10},{i % 7}",  # every value with a decimal comma
    ],
)
def test_a_number_with_a_decimal_comma_in_a_numeric_column_refuses_the_file(
    values: Callable[[int], str],
) -> None:
    rows = [f"{values(i)};{'yes' if i % 2 else 'no'}" for i in range(2000)]
    with pytest.raises(FileRejected, match=r"column 'Alter' holds numbers with decimal commas .* e\.g\. '"):
        run(csv("Alter;target", rows))


def test_a_number_beyond_float32_is_refused_with_its_row_naming_the_column() -> None:
    rows = [f"{i % 30}.5,{'yes' if i % 2 else 'no'}" for i in range(999)] + ["1e39,yes"]
    outcome, _ = run(csv("x,target", rows))
    assert outcome.rejected_row_count == 1
    assert "column 'x': '1e39' is beyond the range XGBoost holds" in outcome.rejected_rows[0].reason


def test_a_class_with_one_row_is_no_class_and_its_row_is_refused_by_name() -> None:
    rows = [f"{i % 30},{'abc'[i % 3]}" for i in range(600)] + ["1,d"]
    outcome, _ = run(csv("x,target", rows))
    assert outcome.schema.target.classes == ("a", "b", "c")
    assert "class 'd' has 1 labeled row(s), fewer than the 2 needed" in outcome.rejected_rows[0].reason


def test_every_class_is_in_both_splits_even_with_two_rows_of_it() -> None:
    rows = [f"{i % 30},{'yes' if i < 2 else 'no'}" for i in range(300)]
    outcome, _ = run(csv("x,target", rows))
    assert outcome.class_counts["yes"] == {"train": 1, "validation": 1}


def test_multiclass_from_config_with_two_classes_is_refused_before_a_broken_schema_is_stored() -> None:
    rows = [f"{i % 9},{'yes' if i % 2 else 'no'}" for i in range(200)]
    with pytest.raises(FileRejected, match="problem type is multiclass but target 'target' has 2 classes"):
        run(csv("x,target", rows), with_inference(problem_type=ProblemType.MULTICLASS))


def test_a_whole_file_refusal_counts_every_bad_row_not_only_the_listed_ones() -> None:
    rows = [f"{f'bad{i}' if i % 68 == 0 else i % 97},{'yes' if i % 2 else 'no'}" for i in range(1, 3000)]
    with pytest.raises(FileRejected) as refused:
        run(csv("x,target", rows))
    assert refused.value.rejected_row_count == 44 and len(refused.value.rejected_rows) == 44
    many = replace(OPTIONS, max_reported_rows=10)
    with pytest.raises(FileRejected) as refused:
        run(csv("x,target", rows), many)
    assert refused.value.rejected_row_count == 44 and len(refused.value.rejected_rows) == 10


def test_delimiters_inside_quoted_header_names_do_not_decide_the_delimiter() -> None:
    rows = [f"{i % 31};{i % 17};{'yes' if i % 2 else 'no'}" for i in range(200)]
    outcome, _ = run(csv('"Price, EUR";"Size, m2";target', rows))
    assert [f.name for f in outcome.schema.features] == ["Price, EUR", "Size, m2"]


def test_excels_separator_line_names_the_delimiter_and_is_not_the_header() -> None:
    rows = [f"{i % 31};{'yes' if i % 2 else 'no'}" for i in range(200)]
    outcome, _ = run(csv("sep=;\nx;target", rows))
    assert outcome.schema.columns == ("x", "target") and outcome.rows_read == 200


def test_rows_of_empty_fields_at_the_end_of_a_spreadsheet_export_are_no_rows() -> None:
    rows = [f"{i % 31},{'yes' if i % 2 else 'no'}" for i in range(500)]
    outcome, _ = run(csv("x,target", rows) + b",\n" * 40 + b" , \n")
    assert outcome.rows_read == 500 and outcome.rejected_row_count == 0 and outcome.unlabeled_rows == 0


def test_a_date_that_does_not_exist_is_refused_with_its_row_and_teaches_nothing() -> None:
    rows = [f"2024-01-{1 + i % 28:02d},{i % 7},{'yes' if i % 2 else 'no'}" for i in range(600)]
    rows.append("2024-02-30,3,maybe")
    rows.append("2024-02-31,4,maybe")
    outcome, _ = run(csv("when,x,target", rows))
    assert outcome.schema.features[0].kind is FeatureKind.TIMESTAMP
    assert outcome.schema.target.classes == ("no", "yes"), "the refused rows' class is not learned"
    assert [row.reason for row in outcome.rejected_rows] == [
        "column 'when': '2024-02-30' is not a valid date (day is out of range for month)",
        "column 'when': '2024-02-31' is not a valid date (day is out of range for month)",
    ]


class Opens:
    """A source that counts how often the transform reads it."""

    def __init__(self, data: bytes) -> None:
        self.data, self.count = data, 0

    def __call__(self) -> io.BytesIO:
        self.count += 1
        return io.BytesIO(self.data)


def later(data: bytes, stored: DatasetSchema) -> tuple[TransformOutcome, int]:
    source = Opens(data)
    outcome = transform_csv(source, stored_schema=stored, options=OPTIONS, train=Lines(), validation=Lines())
    return outcome, source.count


def test_a_first_upload_is_read_twice_and_a_later_one_once() -> None:
    rows = [f"{i % 31},{'yes' if i % 3 else 'no'}" for i in range(3000)]
    source = Opens(csv("x,target", rows))
    first = transform_csv(source, stored_schema=None, options=OPTIONS, train=Lines(), validation=Lines())
    assert source.count == 2, "profile, then encode"
    outcome, reads = later(csv("x,target", rows[::-1]), first.schema)
    assert reads == 1 and outcome.train_rows + outcome.validation_rows == 3000


def test_anchors_change_nothing_where_the_digests_alone_fill_both_splits() -> None:
    rows = [f"{i % 31},{i % 7},{'yes' if i % 3 else 'no'}" for i in range(5000)]
    first_train, first_validation = Lines(), Lines()
    first = transform_csv(
        Opens(csv("x,y,target", rows)), stored_schema=None, options=OPTIONS, train=first_train,
        validation=first_validation,
    )  # fmt: skip
    later_train, later_validation = Lines(), Lines()
    transform_csv(
        Opens(csv("x,y,target", rows)), stored_schema=first.schema, options=OPTIONS, train=later_train,
        validation=later_validation,
    )  # fmt: skip
    assert (later_train.data, later_validation.data) == (first_train.data, first_validation.data)


def test_a_later_upload_whose_split_misses_a_class_is_split_again_anchored() -> None:
    rows = [f"{i % 31},{'yes' if i % 3 else 'no'}" for i in range(3000)]
    first, _ = run(csv("x,target", rows))
    small = [f"{i},{'no' if i < 102 else 'yes'}" for i in range(100, 160)]  # two rows of "no"
    outcome, reads = later(csv("x,target", small), first.schema)
    assert outcome.class_counts["no"] == {"train": 1, "validation": 1}
    assert reads in (1, 3), "one pass, or the unanchored pass then profile and encode"
    single = [*small[1:]]  # one row of "no": it cannot be in both splits, and "yes" alone is no lesson
    with pytest.raises(FileRejected, match="1 of 59 labeled rows cannot be used") as refused:
        later(csv("x,target", single), first.schema)
    assert "class 'no' has 1 labeled row(s), fewer than the 2 needed" in refused.value.rejected_rows[0].reason


@pytest.mark.parametrize("column", ["x", "target"])
def test_a_later_upload_with_decimal_commas_in_a_number_column_is_refused_whole(column: str) -> None:
    rows = [f"{i % 31}.5;{i * 0.5}" for i in range(600)]
    first, _ = run(csv("x;target", rows))
    bad = [f"{i % 31};{i}" for i in range(300)] + (["3,5;12"] if column == "x" else ["3;12,5"])
    with pytest.raises(FileRejected, match=f"column '{column}' holds numbers with decimal commas"):
        later(csv("x;target", bad), first.schema)
