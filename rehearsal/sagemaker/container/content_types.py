"""The content types the container reads, for channels and request bodies alike (data_utils.py:43-53
and 86-122), and the header parsing it reads them with.

Citations are into release-3.0.5 as the package docstring says.
"""

from __future__ import annotations

from collections.abc import Iterator

from rehearsal.sagemaker.container.errors import UserError

CSV = "csv"
LIBSVM = "libsvm"
PARQUET = "parquet"
RECORDIO_PROTOBUF = "recordio-protobuf"
# data_utils.py:43-53, with the content types of sagemaker_containers/_content_types.py and
# constants/xgb_content_types.py.
VALID_CONTENT_TYPES = (
    CSV,
    LIBSVM,
    PARQUET,
    RECORDIO_PROTOBUF,
    "text/csv",
    "text/libsvm",
    "text/x-libsvm",
    "application/x-parquet",
    "application/x-recordio-protobuf",
)


def parse_header(line: str) -> tuple[str, dict[str, str]]:
    """cgi.parse_header (Python 3.10, which the container runs; the module is gone from 3.13)."""

    def params(text: str) -> Iterator[str]:
        while text[:1] == ";":
            text = text[1:]
            end = text.find(";")
            while end > 0 and (text.count('"', 0, end) - text.count('\\"', 0, end)) % 2:
                end = text.find(";", end + 1)
            if end < 0:
                end = len(text)
            yield text[:end].strip()
            text = text[end:]

    parts = params(";" + line)
    key = next(parts)
    found = {}
    for part in parts:
        i = part.find("=")
        if i >= 0:
            name = part[:i].strip().lower()
            value = part[i + 1 :].strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace("\\\\", "\\").replace('\\"', '"')
            found[name] = value
    return key, found


def get_content_type(content_type: str | None) -> str:
    """data_utils.py:86-122: csv, libsvm, parquet or recordio-protobuf; no content type is libsvm."""
    if content_type is None:
        return LIBSVM
    kind, params = parse_header(content_type.lower())
    if kind in (CSV, "text/csv"):
        if params and "label_size" in params and params["label_size"] != "1":
            raise UserError(
                f"{kind} is not an accepted csv ContentType. Optional parameter label_size must be equal to 1"
            )
        return CSV
    if kind in (LIBSVM, "text/libsvm", "text/x-libsvm"):
        return LIBSVM
    if kind in (PARQUET, "application/x-parquet"):
        return PARQUET
    if kind in (RECORDIO_PROTOBUF, "application/x-recordio-protobuf"):
        return RECORDIO_PROTOBUF
    raise UserError(f"{content_type} is not an accepted ContentType: " + ", ".join(VALID_CONTENT_TYPES) + ".")
