"""Retries with capped exponential back-off and full jitter, one policy for every store call.

Pure parts (the delays, the classification result) are data; the loop is short and takes its clock
and its sleep as parameters so that tests need no real waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from kaip.storage.errors import StorageError

T = TypeVar("T")


class Retryable(Exception):
    """Raised inside a retried call: try again after a back-off; ``final`` is raised when out of tries."""

    def __init__(self, final: StorageError, *, throttled: bool = False) -> None:
        super().__init__(str(final))
        self.final = final
        self.throttled = throttled


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 10
    base: float = 0.1
    cap: float = 20.0
    #: Throttling answers (503 SlowDown, 429) back off from a larger base: the store asked us to slow down.
    throttled_base: float = 0.5

    def delay(self, attempt: int, *, throttled: bool, rng: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        base = self.throttled_base if throttled else self.base
        return float(rng() * min(self.cap, base * (2**attempt)))


@dataclass
class RetryCounter:
    """Counts retries across threads (a lost increment under a race only blurs a statistic)."""

    retries: int = 0
    throttled: int = 0


def call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    counter: RetryCounter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn``; on :class:`Retryable` sleep and try again, at most ``policy.attempts`` times."""
    attempt = 0
    while True:
        try:
            return fn()
        except Retryable as exc:
            attempt += 1
            if attempt >= policy.attempts:
                raise exc.final from exc
            if counter is not None:
                counter.retries += 1
                if exc.throttled:
                    counter.throttled += 1
            sleep(policy.delay(attempt, throttled=exc.throttled))
