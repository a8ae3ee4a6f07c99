"""The transform's pure core: whole-file rejections, the deadline, and the size limit per run."""

from __future__ import annotations

import io
import time

import pytest

from shared.dataset_schema import ProblemType
from shared.encoding import EncoderLimits
from transform.pipeline import FileRejected, Split, TransformOptions, TransformOutcome, transform_csv
from transform.schema_inference import InferenceOptions
from transform.upload import ASSUMED_BYTES_PER_SECOND, ONE_VCPU_MB, RESERVE_SECONDS, max_object_bytes

OPTIONS = TransformOptions(
    validation_fraction=0.2,
    max_rejected_fraction=0.01,
    inference=InferenceOptions("target", None, max_categories=100, numeric_tolerance=0.01),
    limits=EncoderLimits(100, 100),
)


class Discard:
    def write(self, lines: bytes) -> None:
        pass


def transform(data: bytes, deadline: float | None = None) -> None:
    transform_csv(
        io.BytesIO(data),
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
    with pytest.raises(FileRejected, match=r"line \d+"):
        transform(b'x,target\n1,yes\n"2,no\n' + b"x" * 20_000_000)


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_the_split_holds_the_configured_share_and_is_fixed_per_position(fraction: float) -> None:
    split = Split(fraction)
    flags = split.mask(0, 100_000)
    assert abs(sum(flags) / len(flags) - fraction) < 0.01
    assert split.mask(12_345, 70_000) == flags[12_345:82_345], "any block boundary gives the same flags"


def test_the_largest_object_per_run_follows_the_time_left_and_the_cpu_share() -> None:
    assert max_object_bytes(900, ONE_VCPU_MB) == int((900 - RESERVE_SECONDS) * ASSUMED_BYTES_PER_SECOND)
    assert max_object_bytes(900, ONE_VCPU_MB) >= 10 * 10**9, "a 10 GB file fits one 15-minute run"
    assert max_object_bytes(900, 3008) == max_object_bytes(900, ONE_VCPU_MB), "one thread uses one vCPU"
    assert max_object_bytes(900, ONE_VCPU_MB // 2) == pytest.approx(
        max_object_bytes(900, ONE_VCPU_MB) / 2, rel=1e-3
    )
    assert max_object_bytes(RESERVE_SECONDS, ONE_VCPU_MB) == 0


class Lines:
    def __init__(self) -> None:
        self.data = b""

    def write(self, lines: bytes) -> None:
        self.data += lines


def run(data: bytes, options: TransformOptions = OPTIONS) -> tuple[TransformOutcome, bytes]:
    train, validation = Lines(), Lines()
    outcome = transform_csv(
        io.BytesIO(data), stored_schema=None, options=options, train=train, validation=validation
    )
    return outcome, train.data + validation.data


def test_a_numeric_target_with_many_values_is_regression_and_a_missing_one_refuses_its_row() -> None:
    rows = [f"{i},{i * 1.5}" for i in range(1, 500)] + ["7,NA", "8,"]
    outcome, written = run(("x,target\n" + "\n".join(rows) + "\n").encode())
    assert outcome.schema.target.problem_type == "regression"
    assert outcome.schema.xgboost.objective == "reg:squarederror"
    assert outcome.rejected_row_count == 2 and "the target is empty" in outcome.rejected_rows[0].reason
    assert all(line.split(b",")[0] for line in written.splitlines()), "no row without a label"


def test_a_rejected_row_teaches_the_schema_no_class_and_no_category() -> None:
    rows = [f"{i},{'red' if i % 2 else 'blue'},{'yes' if i % 3 else 'no'}" for i in range(1, 1000)]
    rows.append("forty,purple,Yes")  # bad number: its new colour and new class must not be learned
    outcome, _ = run(("x,colour,target\n" + "\n".join(rows) + "\n").encode())
    assert outcome.rejected_row_count == 1
    assert outcome.schema.target.classes == ("no", "yes") and outcome.schema.target.problem_type == "binary"
    assert outcome.schema.features[1].categories == ("blue", "red")


def test_a_first_upload_with_more_categories_than_allowed_is_refused_not_silently_coded_unknown() -> None:
    options = TransformOptions(
        0.2, 0.01, InferenceOptions("target", None, 100, 0.01), EncoderLimits(100, 100)
    )
    rows = [
        f"{i % 7},{'a' if i < 2048 else 'c'}{i % (50 if i < 2048 else 5000)},{'yes' if i % 2 else 'no'}"
        for i in range(6000)
    ]
    with pytest.raises(FileRejected, match=r"column 'city' has more than maxCategories \(100\)"):
        run(("x,city,target\n" + "\n".join(rows) + "\n").encode(), options)


def test_multiclass_from_config_with_two_classes_is_refused_before_a_broken_schema_is_stored() -> None:
    options = TransformOptions(
        0.2, 0.01, InferenceOptions("target", ProblemType.MULTICLASS, 100, 0.01), EncoderLimits(100, 100)
    )
    rows = [f"{i},{'yes' if i % 2 else 'no'}" for i in range(200)]
    with pytest.raises(FileRejected, match="a multiclass target needs at least 3 classes, has 2"):
        run(("x,target\n" + "\n".join(rows) + "\n").encode(), options)


def test_a_whole_file_refusal_counts_every_bad_row_not_only_the_listed_ones() -> None:
    # Bad numbers only after the rows the column's kind is inferred from, so the column stays numeric.
    rows = [f"{'x' if i > 2100 and i % 4 == 0 else i},{'yes' if i % 2 else 'no'}" for i in range(1, 3000)]
    with pytest.raises(FileRejected) as refused:
        run(("x,target\n" + "\n".join(rows) + "\n").encode())
    assert refused.value.rejected_row_count == 224 and len(refused.value.rejected_rows) == 100


def test_delimiters_inside_quoted_header_names_do_not_decide_the_delimiter() -> None:
    rows = [f"{i};{i * 2};{'yes' if i % 2 else 'no'}" for i in range(200)]
    outcome, _ = run(('"Price, EUR";"Size, m2";target\n' + "\n".join(rows) + "\n").encode())
    assert [f.name for f in outcome.schema.features] == ["Price, EUR", "Size, m2"]


def test_excels_separator_line_names_the_delimiter_and_is_not_the_header() -> None:
    rows = [f"{i};{'yes' if i % 2 else 'no'}" for i in range(200)]
    outcome, _ = run(("sep=;\nx;target\n" + "\n".join(rows) + "\n").encode())
    assert outcome.schema.columns == ("x", "target") and outcome.rows_read == 200


def test_rows_of_empty_fields_at_the_end_of_a_spreadsheet_export_are_no_rows() -> None:
    rows = [f"{i},{'yes' if i % 2 else 'no'}" for i in range(500)]
    outcome, _ = run(("x,target\n" + "\n".join(rows) + "\n" + ",\n" * 40 + " , \n").encode())
    assert outcome.rows_read == 500 and outcome.rejected_row_count == 0


def test_numbers_with_decimal_commas_are_refused_with_the_fix() -> None:
    rows = [f"{i},{i % 10};{'yes' if i % 2 else 'no'}" for i in range(200)]
    with pytest.raises(
        FileRejected, match=r"column 'Preis' holds numbers with decimal commas \(e.g. '0,0'\)"
    ):
        run(("Preis;target\n" + "\n".join(rows) + "\n").encode())
