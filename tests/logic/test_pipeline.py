"""The transform's pure core: whole-file rejections, the deadline, and the size limit per run."""

from __future__ import annotations

import io
import time

import pytest

from shared.encoding import EncoderLimits
from transform.pipeline import FileRejected, Split, TransformOptions, transform_csv
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
