"""The cluster-wide circuit breaker (NVSentinel's): too many failures at once stop all remediation.

It counts the nodes of the pool (the nodes any rule selects) whose remediation was *detected*
within the window, since the last reset. When that count reaches the threshold (a number, or a
percent of the pool rounded up) the breaker trips, and stays tripped until an admin resets it
(``kubectl node-health reset-breaker``): a mass failure is more likely a broken rack switch or a bad
driver roll-out than fifty broken GPUs, and draining half the cluster would make it worse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kaip.remediation.spec import Amount
from kaip.resources import remediation as names
from kaip.resources import timestamps


@dataclass(frozen=True)
class Breaker:
    state: str = names.BREAKER_CLOSED
    tripped_at: str = ""
    reason: str = ""
    reset_at: str = ""
    reset_by: str = ""

    @property
    def tripped(self) -> bool:
        return self.state == names.BREAKER_TRIPPED

    def as_status(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in {
                "state": self.state,
                "trippedAt": self.tripped_at,
                "reason": self.reason,
                "resetAt": self.reset_at,
                "resetBy": self.reset_by,
            }.items()
            if v
        }


def read(config_status: Mapping[str, Any]) -> Breaker:
    raw = config_status.get("circuitBreaker") or {}
    return Breaker(
        state=str(raw.get("state") or names.BREAKER_CLOSED),
        tripped_at=str(raw.get("trippedAt") or ""),
        reason=str(raw.get("reason") or ""),
        reset_at=str(raw.get("resetAt") or ""),
        reset_by=str(raw.get("resetBy") or ""),
    )


def recent(detections: Sequence[datetime], *, window: timedelta, reset_at: str, now: datetime) -> int:
    start = now - window
    reset = timestamps.parse(reset_at)
    return sum(1 for when in detections if when >= start and (reset is None or when > reset))


def evaluate(
    current: Breaker,
    *,
    detections: Sequence[datetime],
    pool: int,
    threshold: Amount,
    window: timedelta,
    now: datetime,
    stamp: str,
) -> Breaker:
    """The breaker after looking at the detections (one time per node) of the window."""
    if current.tripped or pool == 0:
        return current
    limit = threshold.of(pool, round_up=True)
    count = recent(detections, window=window, reset_at=current.reset_at, now=now)
    if limit <= 0 or count < limit:
        return current
    minutes = window.total_seconds() / 60
    return Breaker(
        state=names.BREAKER_TRIPPED,
        tripped_at=stamp,
        reason=(
            f"{count} of {pool} nodes entered remediation within {minutes:g}m "
            f"(threshold {threshold} = {limit}); remediation stopped until reset"
        ),
        reset_at=current.reset_at,
        reset_by=current.reset_by,
    )


def reset(current: Breaker, *, stamp: str, by: str) -> Breaker:
    """Closed again; detections before ``stamp`` no longer count."""
    reason = f"reset (was: {current.reason})" if current.reason else ""
    return Breaker(state=names.BREAKER_CLOSED, reset_at=stamp, reset_by=by, reason=reason)
