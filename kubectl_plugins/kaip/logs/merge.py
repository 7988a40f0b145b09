"""One line once: the API server's live lines and Loki's stored ones, merged by time.

The API server's ``log`` with ``timestamps=true`` starts each line with the container runtime's
RFC 3339 timestamp (nanoseconds); Alloy's ``cri`` stage gives the Loki entry that same timestamp and
text. So a line is known by (Pod, container, nanosecond, text), whichever side it came from.
:class:`Seen` remembers, per (Pod, container), only the last nanosecond printed and the lines at it:
a stream is in time order on both sides, so anything older was printed already. Memory stays small
however many lines pass.
"""

from __future__ import annotations

import calendar
import heapq
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import TypeVar

T = TypeVar("T")


def parse_stamp(stamp: str) -> int:
    """``2026-01-02T03:04:05.123456789Z`` (or an offset) → nanoseconds since the epoch."""
    text = stamp.strip()
    frac = 0
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        zone = rest[len(digits) :]
        frac = int((digits + "000000000")[:9]) if digits else 0
        text = head + zone
    if text.endswith(("Z", "z")):
        moment = datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    else:
        moment = datetime.fromisoformat(text)
    return calendar.timegm(moment.utctimetuple()) * 1_000_000_000 + frac


def format_stamp(ns: int) -> str:
    """Nanoseconds → the kubelet's layout (RFC 3339, nanoseconds, ``Z``)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def split_stamped(raw: str) -> tuple[int | None, str]:
    """A live line ``<stamp> <text>`` → (nanoseconds or None when it has no stamp, text)."""
    stamp, sep, text = raw.partition(" ")
    if not sep:
        return None, raw.rstrip("\n")
    try:
        return parse_stamp(stamp), text.rstrip("\n")
    except ValueError:
        return None, raw.rstrip("\n")


class Seen:
    """Per stream, the last nanosecond printed and the lines at it: :meth:`admit` says print or skip."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[int, set[str]]] = {}

    def admit(self, pod: str, container: str, ts: int, line: str) -> bool:
        key = (pod, container)
        last = self._last.get(key)
        if last is not None:
            if ts < last[0]:
                return False
            if ts == last[0]:
                if line in last[1]:
                    return False
                last[1].add(line)
                return True
        self._last[key] = (ts, {line})
        return True

    def last(self, pod: str, container: str) -> int | None:
        found = self._last.get((pod, container))
        return found[0] if found else None

    def latest(self) -> int | None:
        return max((ts for ts, _ in self._last.values()), default=None)


def by_time(streams: Iterable[Iterator[tuple[int, T]]]) -> Iterator[tuple[int, T]]:
    """Merge streams each in time order into one in time order (stable for equal times)."""
    return heapq.merge(*streams, key=lambda item: item[0])
