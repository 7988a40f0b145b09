"""The progress message of the ``DataLoaded`` condition, written by the loader, read by the CLI.

Format (agreed between the controller side and the plugin): ``N/M objects, X/Y bytes``, integers
without separators, optionally followed by ``; free text`` (rate, retries). One formatter, one parser.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_MESSAGE = re.compile(r"^\s*(\d+)/(\d+) objects, (\d+)/(\d+) bytes(?:;\s*(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Progress:
    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int

    @property
    def fraction(self) -> float:
        """Done part in [0, 1], by bytes (by objects when there are no bytes)."""
        if self.bytes_total > 0:
            return min(self.bytes_done / self.bytes_total, 1.0)
        if self.objects_total > 0:
            return min(self.objects_done / self.objects_total, 1.0)
        return 1.0


def format_message(progress: Progress, *, note: str = "") -> str:
    text = (
        f"{progress.objects_done}/{progress.objects_total} objects, "
        f"{progress.bytes_done}/{progress.bytes_total} bytes"
    )
    return f"{text}; {note}" if note else text


def parse_message(message: str | None) -> Progress | None:
    """The progress in a condition message, or None when it holds none (a failure, a pending load)."""
    match = _MESSAGE.match(message or "")
    if not match:
        return None
    od, ot, bd, bt = (int(g) for g in match.groups()[:4])
    return Progress(objects_done=od, objects_total=ot, bytes_done=bd, bytes_total=bt)


def note_of(message: str | None) -> str:
    match = _MESSAGE.match(message or "")
    return (match.group(5) or "").strip() if match else ""


def rate(samples: Sequence[tuple[float, int]]) -> float | None:
    """Bytes per second between the first and last ``(time, bytes_done)`` samples."""
    if len(samples) < 2:
        return None
    (t0, b0), (t1, b1) = samples[0], samples[-1]
    if t1 <= t0 or b1 < b0:
        return None
    return (b1 - b0) / (t1 - t0)


def eta(samples: Sequence[tuple[float, int]], total: int) -> float | None:
    """Seconds left at the observed rate; None while the rate is unknown or zero."""
    speed = rate(samples)
    if not speed or not samples:
        return None
    return max(total - samples[-1][1], 0) / speed


def human_bytes(value: float) -> str:
    """``512 B``, ``1.5 KiB``, ``40.0 GiB``: binary units, as storage sizes are requested."""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} PiB"  # pragma: no cover - loop always returns
