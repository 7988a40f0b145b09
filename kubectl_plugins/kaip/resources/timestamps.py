"""API timestamps (RFC 3339) and kubectl's way of printing durations."""

from __future__ import annotations

from datetime import datetime, timezone


def parse(stamp: str | None) -> datetime | None:
    """An API timestamp as an aware datetime; ``None`` for a missing or unreadable one."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def now() -> datetime:
    return datetime.now(timezone.utc)


def human_duration(seconds: float) -> str:
    """kubectl's short duration: ``45s``, ``12m``, ``5h3m``, ``3d4h``, ``400d``."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = s // 86400
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d"


def age(stamp: str | None, *, at: datetime | None = None) -> str:
    """Age of an API timestamp as kubectl prints it, ``<unknown>`` when absent."""
    when = parse(stamp)
    if when is None:
        return "<unknown>"
    return human_duration(((at or now()) - when).total_seconds())
