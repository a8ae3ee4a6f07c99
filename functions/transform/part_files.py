"""Write a stream of CSV lines to S3 as numbered part files, each its own multipart upload.

No part file becomes visible before the whole run has been encoded: `complete` finishes the uploads at
the end, `abort` discards those not finished. An invocation that dies in between leaves only incomplete
uploads, which the bucket's AbortIncompleteMultipartUpload lifecycle rule removes; a retry of the same
upload rewrites the same keys with the same bytes, and the run counts only once its manifest exists.

Every part is sent with its CRC-32 and the completion names each part's checksum, so S3 verifies what it
stores end to end (S3 user guide, "Checking object integrity": multipart uploads with ChecksumAlgorithm).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shared.aws import S3Client

MIB = 1024 * 1024
# Parts other than the last must be at least 5 MiB (S3 user guide, "Amazon S3 multipart upload limits").
PART_BYTES = 8 * MIB
CONTENT_TYPE = "text/csv"
# Concurrent CompleteMultipartUpload calls at the end of a run (boto3 clients are thread-safe).
COMPLETION_THREADS = 8


@dataclass
class _Upload:
    key: str
    upload_id: str
    parts: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0


class PartFiles:
    """`prefix`part-00000.csv, part-00001.csv, ...: a new file starts once one holds `file_bytes`."""

    def __init__(self, s3: S3Client, bucket: str, prefix: str, *, file_bytes: int) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix
        self._file_bytes = file_bytes
        self._uploads: list[_Upload] = []
        self._buffer: list[bytes] = []
        self._buffered = 0

    @property
    def keys(self) -> list[str]:
        return [upload.key for upload in self._uploads]

    def write(self, lines: bytes) -> None:
        """Append whole lines; a part file ends only between two writes."""
        current = self._uploads[-1] if self._uploads else None
        if current is None or current.size + self._buffered >= self._file_bytes:
            if current is not None:
                self._flush(current)
            current = self._start()
        self._buffer.append(lines)
        self._buffered += len(lines)
        if self._buffered >= PART_BYTES:
            self._flush(current)

    def complete(self) -> list[str]:
        """Finish every part file and return their keys, in order.

        The completions run in parallel: a run of a large file ends with hundreds of them, and they must
        fit in the time the function keeps in reserve.
        """
        if self._uploads:
            self._flush(self._uploads[-1])
        keys = self.keys
        with ThreadPoolExecutor(max_workers=COMPLETION_THREADS) as pool:
            outcomes = list(pool.map(self._try_complete, self._uploads))
        self._uploads = [upload for upload, error in zip(self._uploads, outcomes, strict=True) if error]
        for error in outcomes:
            if error is not None:
                raise error
        return keys

    def _try_complete(self, upload: _Upload) -> Exception | None:
        try:
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=upload.key,
                UploadId=upload.upload_id,
                MultipartUpload={"Parts": upload.parts},
            )
        except Exception as error:  # handed back to complete(), which raises it
            return error
        return None

    def abort(self) -> None:
        """Discard every part file not completed yet (best effort: the lifecycle rule is the backstop)."""
        for upload in self._uploads:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=upload.key, UploadId=upload.upload_id)
        self._uploads.clear()
        self._buffer.clear()
        self._buffered = 0

    def _start(self) -> _Upload:
        key = f"{self._prefix}part-{len(self._uploads):05d}.csv"
        response = self._s3.create_multipart_upload(
            Bucket=self._bucket, Key=key, ContentType=CONTENT_TYPE, ChecksumAlgorithm="CRC32"
        )
        upload = _Upload(key=key, upload_id=response["UploadId"])
        self._uploads.append(upload)
        return upload

    def _flush(self, upload: _Upload) -> None:
        if not self._buffer:
            return
        body = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        number = len(upload.parts) + 1
        response = self._s3.upload_part(
            Bucket=self._bucket,
            Key=upload.key,
            UploadId=upload.upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="CRC32",
        )
        upload.parts.append(
            {"PartNumber": number, "ETag": response["ETag"], "ChecksumCRC32": response["ChecksumCRC32"]}
        )
        upload.size += len(body)
