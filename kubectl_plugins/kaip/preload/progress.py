"""Progress as a person follows it: the rate and the time left of a load, and sizes in binary units.

The progress *message* of the ``DataLoaded`` condition (``N/M objects, X/Y bytes``), agreed between
the loader and the plugin, is part of the status contract: :mod:`kaip.preload.status`.
"""

from __future__ import annotations

from collections.abc import Sequence


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
