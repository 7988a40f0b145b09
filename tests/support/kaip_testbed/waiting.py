"""Waiting in tests: poll a predicate on a deadline (never a fixed sleep), and say what never came."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    what: str = "condition",
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    seen: Callable[[], str] | None = None,
) -> T:
    """``predicate()``'s first true value; after ``timeout`` seconds an AssertionError naming ``what``
    and, where given, what ``seen()`` says the state is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = f": {seen()[:6000]}" if seen is not None else ""
    raise AssertionError(f"{what} not met within {timeout:.0f}s{detail}")
