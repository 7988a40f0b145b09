"""When a controller tries a key again after an error: per-key exponential back-off, capped, jittered.

One policy for both controllers (the data-loader's work queue and the remediation rounds). It reads
:attr:`kaip.errors.KaipError.temporary`:

* a temporary error (409, 429, 5xx, unreachable) is tried again after ``base * factor**(n-1)``
  seconds for the key's ``n``-th failure in a row, capped, with equal jitter (half fixed, half
  random, so the delay still grows but replicas do not move in step);
* a permanent error (401, 403, 404, 422, a refused object) is not tried again until the object
  changes: a watch event for the key (the caller calls :meth:`Backoff.forget`) or a resync that sees
  another ``resourceVersion`` (:meth:`Backoff.held`);
* a success forgets the key: the next failure starts from ``base`` again.

Rule: no I/O. The clock and the random source are injected, so tests are deterministic; the
counters the metrics show (retries by reason, keys held) are kept here, where every failure passes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from kaip.errors import KaipError, shorten

K = TypeVar("K", bound=Hashable)

#: Event reasons: a temporary error that keeps coming back; a permanent one, held until a change.
REASON_BACKOFF = "RetryBackoff"
REASON_FAILED = "ReconcileFailed"

#: Exponents past this give the cap anyway; it keeps ``factor ** n`` from overflowing.
_MAX_EXPONENT = 64


@dataclass(frozen=True)
class RequeuePolicy:
    base: float = 0.5
    factor: float = 2.0
    cap: float = 300.0
    #: ``equal``: uniform in [d/2, d]; ``full``: uniform in [0, d] (d: the capped exponential delay).
    jitter: Literal["equal", "full"] = "equal"
    #: A temporary error is told (an Event) from its ``report_after``-th failure in a row on: one
    #: lost race (409) is normal and not worth an Event.
    report_after: int = 3

    def ceiling(self, failures: int) -> float:
        """The delay before jitter after ``failures`` failures in a row (``failures >= 1``)."""
        exponent = min(max(failures - 1, 0), _MAX_EXPONENT)
        return float(min(self.cap, self.base * self.factor**exponent))

    def delay(self, failures: int, *, rng: Callable[[], float] = random.random) -> float:
        top = self.ceiling(failures)
        if self.jitter == "full":
            return float(rng() * top)
        return float(top / 2 + rng() * top / 2)

    def notice(
        self, error: KaipError, *, delay: float | None, failures: int, what: str
    ) -> tuple[str, str] | None:
        """(Event reason, message) for a failure worth telling on the object, or ``None``.

        The message names the error class and the next attempt; the error's own message is already
        cut short and never quotes a request body (:mod:`kaip.kube.errors`), so no secret reaches it.
        """
        said = f"{reason_of(error)}: {shorten(error.message, 300)}"
        if delay is None:
            return REASON_FAILED, f"{said}; not tried again until the {what} changes"
        if failures < self.report_after:
            return None
        return REASON_BACKOFF, f"{said}; failed {failures} times in a row, next attempt in {delay:.1f}s"


@dataclass
class _Entry:
    failures: int = 0
    permanent: bool = False
    version: str | None = None  # resourceVersion of the object when it failed, if known
    due: float = 0.0  # clock() time of the next attempt (temporary errors)


class Backoff(Generic[K]):
    """Per-key failure state; safe to call from the watch threads and the worker at once."""

    def __init__(
        self,
        policy: RequeuePolicy | None = None,
        *,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or RequeuePolicy()
        self._rng, self._clock = rng, clock
        self._lock = threading.Lock()
        self._entries: dict[K, _Entry] = {}
        #: Temporary errors tried again, by error class; permanent errors held, by error class.
        self.retries: Counter[str] = Counter()
        self.permanent: Counter[str] = Counter()

    def next_delay(self, key: K, error: KaipError, *, version: str | None = None) -> float | None:
        """Seconds until ``key`` is tried again, or ``None``: not until its object changes.

        ``version`` is the ``resourceVersion`` of the object as read for the failed attempt; a resync
        that sees another one lets the key run again (:meth:`held`).
        """
        reason = reason_of(error)
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            entry.failures += 1
            entry.version = version
            if not error.temporary:
                entry.permanent = True
                self.permanent[reason] += 1
                return None
            entry.permanent = False
            delay = self.policy.delay(entry.failures, rng=self._rng)
            entry.due = self._clock() + delay
            self.retries[reason] += 1
            return delay

    def forget(self, key: K) -> None:
        """The key succeeded, or its object changed (a watch event): its back-off starts over."""
        with self._lock:
            self._entries.pop(key, None)

    def retain(self, keys: Collection[K]) -> None:
        """Forget every key not in ``keys`` (their objects are gone)."""
        with self._lock:
            for key in [k for k in self._entries if k not in keys]:
                del self._entries[key]

    def held(self, key: K, *, version: str | None = None) -> bool:
        """Whether a resync should leave ``key`` alone: it waits for its delay or for a change.

        A ``version`` other than the one recorded at the failure is a change: the key is forgotten
        and may run. ``None`` (not known to the caller) changes nothing.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            if version is not None and entry.version is not None and version != entry.version:
                del self._entries[key]
                return False
            return entry.permanent or entry.due > self._clock()

    def failures(self, key: K) -> int:
        """Failures of ``key`` in a row since its last success or change."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.failures if entry else 0

    def counts(self) -> tuple[int, int]:
        """(keys waiting for their delay, keys waiting for their object to change)."""
        with self._lock:
            permanent = sum(1 for e in self._entries.values() if e.permanent)
            return len(self._entries) - permanent, permanent

    def tallies(self) -> tuple[dict[str, int], dict[str, int]]:
        """A copy of (temporary retries by reason, permanent errors by reason)."""
        with self._lock:
            return dict(self.retries), dict(self.permanent)


def reason_of(error: KaipError) -> str:
    """The reason a metric label and an Event name: the error's class (a few, known values)."""
    return type(error).__name__


def metrics_text(prefix: str, backoff: Backoff[K]) -> str:
    """Prometheus text of the back-off: retries and held errors by reason, keys in back-off."""
    retries, permanent = backoff.tallies()
    rows = [f"# TYPE {prefix}_retries_total counter\n"]
    rows += [f'{prefix}_retries_total{{reason="{r}"}} {n}\n' for r, n in sorted(retries.items())]
    rows.append(f"# TYPE {prefix}_permanent_errors_total counter\n")
    rows += [f'{prefix}_permanent_errors_total{{reason="{r}"}} {n}\n' for r, n in sorted(permanent.items())]
    waiting, held = backoff.counts()
    rows.append(f"# TYPE {prefix}_backoff_keys gauge\n")
    rows.append(f'{prefix}_backoff_keys{{kind="temporary"}} {waiting}\n')
    rows.append(f'{prefix}_backoff_keys{{kind="permanent"}} {held}\n')
    return "".join(rows)
