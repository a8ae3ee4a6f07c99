"""Read an uploaded CSV as a stream of rows, in constant memory, whatever its dialect details.

UTF-8 with or without a byte-order mark; LF, CRLF or CR line ends; quoted fields with embedded
delimiters, quotes and newlines (RFC 4180); the delimiter (comma, semicolon, tab or pipe) is the one
the header line uses most.

Quoting is read strictly: a quoted field that is never closed, or a closing quote followed by anything
but a delimiter or a line end, is a syntax error of the whole file, never a field that silently swallows
the lines after it. Every row knows the line it starts on, so a report can point at it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

DELIMITERS = (",", ";", "\t", "|")
# A field longer than this is refused instead of buffered: it bounds memory per row.
FIELD_SIZE_LIMIT = 16 * 1024 * 1024
# Bytes decoded per read: large enough that decoding is not per-line work.
READ_CHUNK = 1024 * 1024

csv.field_size_limit(FIELD_SIZE_LIMIT)


@dataclass(frozen=True)
class RowBlock:
    rows: list[list[str]]
    # The line the block's first row starts on.
    first_line: int
    # The line each row starts on, where some row spans lines (a quoted line end) or blank lines were
    # dropped; None when every row is one line, so row i starts on first_line + i.
    row_lines: list[int] | None = None

    def line_of(self, index: int) -> int:
        return self.first_line + index if self.row_lines is None else self.row_lines[index]

    def spans_lines(self, index: int) -> bool:
        """Whether the row holds a quoted line end, and so ends on a later line than it starts."""
        return self.row_lines is not None and any(map(_has_line_end, self.rows[index]))


class UnreadableCsv(ValueError):
    """The object is not CSV text this pipeline can read; the message says where and why."""


class CsvSyntaxError(UnreadableCsv):
    """Broken quoting. The reader detects it at `line`; the row it breaks may start long before (a quote
    that is never closed), which `locate_syntax_error` finds by reading the file again row by row."""

    def __init__(self, error: str, line: int, row_line: int | None = None) -> None:
        self.error = error
        self.line = line
        self.row_line = row_line
        if row_line is None:
            where = f"at line {line}"
        elif error == "unexpected end of data":
            where = f"in the row that starts at line {row_line}: a quoted field opened there is never closed"
        else:
            where = f"in the row that starts at line {row_line} (at line {line})"
        super().__init__(f"CSV syntax error {where}: {error}; check the quotes of that row")


class NotUtf8(UnreadableCsv):
    """Bytes that are not UTF-8. Text is decoded ahead of the rows, a chunk at a time, so the line of the
    bad byte is found by `locate_decode_error`, which reads the file again as bytes."""

    def __init__(self, reason: str, line: int | None = None, byte: int | None = None) -> None:
        self.reason = reason
        self.line = line
        where = "" if line is None or byte is None else f"line {line} holds the byte 0x{byte:02x}: "
        super().__init__(f"the file is not UTF-8 text ({where}{reason}); save it as UTF-8")


def locate_decode_error(binary: IO[bytes]) -> NotUtf8 | None:
    """The first byte of the file that is not UTF-8, with its line; None when there is none."""
    line, last, pending = 1, b"", b""
    while True:
        chunk = binary.read(READ_CHUNK)
        data = pending + chunk
        try:
            _, consumed = codecs.utf_8_decode(data, "strict", not chunk)
        except UnicodeDecodeError as error:
            head = data[: error.start]
            return NotUtf8(
                error.reason, line + _line_ends_in(last + head) - _line_ends_in(last), data[error.start]
            )
        if not chunk:
            return None
        line += _line_ends_in(last + data[:consumed]) - _line_ends_in(last)
        last, pending = data[consumed - 1 : consumed] if consumed else last, data[consumed:]


def _line_ends_in(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def locate_syntax_error(binary: IO[bytes]) -> CsvSyntaxError | None:
    """The first syntax error of the file, naming the line its row starts on; None when there is none.
    Row by row, and so slow: for the report of a file already found broken."""
    rows = CsvRows(binary)
    reader = rows._reader
    start = rows.line_number + 1
    try:
        for _ in reader:
            start = rows.line_number + 1
    except csv.Error as error:
        return CsvSyntaxError(str(error), rows.line_number, start)
    return None


def _has_line_end(field: str) -> bool:
    return "\n" in field or "\r" in field


def _line_ends(field: str) -> int:
    return field.count("\n") + field.count("\r") - field.count("\r\n")


def _located(rows: list[list[str]], first_line: int) -> RowBlock:
    """A block where some row spans lines or blank lines (which csv yields as []) were read: each row's
    own start line, blank lines dropped."""
    kept: list[list[str]] = []
    lines: list[int] = []
    line = first_line
    for row in rows:
        if row:
            kept.append(row)
            lines.append(line)
        line += 1 + sum(map(_line_ends, row))
    return RowBlock(kept, lines[0] if lines else first_line, lines)


class CsvRows:
    """Iterate the rows after the header; `line_number` is the physical line the last row ended on."""

    def __init__(self, binary: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(
            io.BufferedReader(_RawStream(binary), READ_CHUNK), encoding="utf-8-sig", newline=""
        )
        # Bounded like a field: a file without line ends is not read into memory whole.
        first_line = self._decode(lambda: self._text.readline(FIELD_SIZE_LIMIT))
        self._lines_before_header = 0
        delimiter = _excel_separator_hint(first_line)
        if delimiter is not None:  # Excel's "sep=;" line names the delimiter and precedes the header
            first_line = self._decode(lambda: self._text.readline(FIELD_SIZE_LIMIT))
            self._lines_before_header = 1
        if not first_line.strip():
            raise UnreadableCsv("the file is empty" if not first_line else "the first line (header) is empty")
        delimiter = delimiter or _header_delimiter(first_line)
        self._reader = csv.reader(itertools.chain([first_line], self._text), delimiter=delimiter, strict=True)
        header = self._next_row()
        if header is None:  # the first line is not empty, so csv yields a row for it
            raise UnreadableCsv("the file is empty")
        self.header: list[str] = header

    @property
    def line_number(self) -> int:
        return self._reader.line_num + self._lines_before_header

    def blocks(self, size: int) -> Iterator[RowBlock]:
        """The rows after the header, in blocks of up to `size` (blank lines dropped)."""
        reader = self._reader
        with self._reading():
            while True:
                first_line = self.line_number + 1
                rows = list(itertools.islice(reader, size))
                if not rows:
                    return
                if self.line_number - first_line + 1 == len(rows):
                    yield RowBlock(rows, first_line)
                else:
                    yield _located(rows, first_line)

    def _next_row(self) -> list[str] | None:
        with self._reading():
            return next(self._reader, None)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except UnicodeDecodeError as error:
            raise NotUtf8(error.reason) from None
        except csv.Error as error:
            raise CsvSyntaxError(str(error), self.line_number) from None

    def _decode(self, read: Callable[[], str]) -> str:
        try:
            return read()
        except UnicodeDecodeError as error:
            raise NotUtf8(error.reason) from None


def _excel_separator_hint(line: str) -> str | None:
    text = line.strip()
    if len(text) == 5 and text.lower().startswith("sep=") and text[4] in DELIMITERS:
        return text[4]
    return None


def _header_delimiter(line: str) -> str:
    """The delimiter that splits the header into the most fields, read as CSV so that delimiters inside
    quoted names do not count; comma on a tie."""
    return max(DELIMITERS, key=lambda delimiter: len(next(csv.reader([line], delimiter=delimiter), [])))


class _RawStream(io.RawIOBase):
    """Adapts any object with `read(n)` (an S3 response body, a file) to the raw stream `io` buffers."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
