"""Part files on S3 (moto): multipart uploads that become visible only when the run completes."""

from __future__ import annotations

import boto3
import pytest

from shared.aws import client
from tests.functions.conftest import DATA_BUCKET, REGION
from transform.part_files import MIB, PART_BYTES, PartFiles

PREFIX = "processed/d/run/train/"


@pytest.fixture
def s3(aws: None) -> object:
    return boto3.client("s3", region_name=REGION)


def lines(count: int, width: int = 100) -> bytes:
    return b"".join(b"%0*d\n" % (width - 1, n) for n in range(count))


def test_rows_reach_s3_whole_in_numbered_part_files_of_the_configured_size(s3: object) -> None:
    parts = PartFiles(client("s3"), DATA_BUCKET, PREFIX, file_bytes=12 * MIB)
    block = lines(10_000)  # ~1 MB, written like one encoded block
    for _ in range(30):
        parts.write(block)

    keys = parts.complete()

    assert keys == [f"{PREFIX}part-00000.csv", f"{PREFIX}part-00001.csv", f"{PREFIX}part-00002.csv"]
    bodies = [s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read() for key in keys]  # type: ignore[attr-defined]
    assert b"".join(bodies) == block * 30, "no byte lost, duplicated or reordered"
    assert all(body.endswith(b"\n") for body in bodies), "a part file ends between two lines"
    # A file closes at the first block boundary at or past 12 MiB (12.58 MB): after 13 blocks of 1 MB.
    assert [len(body) // len(block) for body in bodies] == [13, 13, 4]
    head = s3.head_object(Bucket=DATA_BUCKET, Key=keys[0], ChecksumMode="ENABLED")  # type: ignore[attr-defined]
    # A multipart object's ETag ends in -<parts>: an 8 MiB part and the rest.
    assert head["ContentType"] == "text/csv" and head["ETag"].endswith('-2"')
    assert PART_BYTES >= 5 * MIB, "S3 refuses parts under 5 MiB except the last"


def test_nothing_is_visible_before_complete_and_abort_leaves_nothing(s3: object) -> None:
    parts = PartFiles(client("s3"), DATA_BUCKET, PREFIX, file_bytes=64 * MIB)
    parts.write(lines(100_000))  # 10 MB: one part already sent

    assert s3.list_objects_v2(Bucket=DATA_BUCKET).get("Contents", []) == []  # type: ignore[attr-defined]
    parts.abort()

    assert s3.list_objects_v2(Bucket=DATA_BUCKET).get("Contents", []) == []  # type: ignore[attr-defined]
    assert s3.list_multipart_uploads(Bucket=DATA_BUCKET).get("Uploads", []) == []  # type: ignore[attr-defined]


def test_an_empty_split_writes_no_file(s3: object) -> None:
    assert PartFiles(client("s3"), DATA_BUCKET, PREFIX, file_bytes=MIB).complete() == []
