"""An answer other than predictions: the HTTP status and a message that says what is wrong."""

from __future__ import annotations


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> Refused:
    return Refused(400, message)
