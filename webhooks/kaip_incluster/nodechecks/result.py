"""A check's outcome, as node-problem-detector's custom plugin monitor reads it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.IntEnum):
    """Exit codes of a custom plugin: NPD sets the condition False, True or Unknown."""

    OK = 0
    PROBLEM = 1
    UNKNOWN = 2


#: NPD trims the output to its max_output_length (our monitor configs say 200); stay within it.
MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class Result:
    status: Status
    message: str

    def line(self) -> str:
        flat = " ".join(self.message.split())
        return flat if len(flat) <= MESSAGE_LIMIT else flat[: MESSAGE_LIMIT - 1] + "…"


def ok(message: str) -> Result:
    return Result(Status.OK, message)


def problem(message: str) -> Result:
    return Result(Status.PROBLEM, message)


def unknown(message: str) -> Result:
    return Result(Status.UNKNOWN, message)
