"""A `RowSink` for the transform's core that keeps, in memory, the lines it is given."""

from __future__ import annotations


class Lines:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, lines: bytes) -> None:
        assert lines.endswith(b"\n"), "whole lines only"
        self.data += lines

    def abort(self) -> None:
        self.data = bytearray()

    def rows(self) -> list[list[str]]:
        return [line.split(",") for line in self.data.decode().splitlines()]
