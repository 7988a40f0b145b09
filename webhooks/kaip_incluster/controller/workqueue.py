"""The controller's work queue (keys to look at, deduplicated, some after a delay, never one key in
two workers at once) and its metrics."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from kaip_incluster.requeue import Backoff, metrics_text

Key = tuple[str, str, str]  # (kind: "pvc" | "pod", namespace, name)


@dataclass
class Metrics:
    reconciles: int = 0
    errors: int = 0
    jobs_created: int = 0
    gates_removed: int = 0
    leader: int = 0
    #: The worker's back-off: ``kaip_preload_retries_total{reason}``,
    #: ``kaip_preload_permanent_errors_total{reason}``, ``kaip_preload_backoff_keys{kind}``.
    backoff: Backoff[Key] | None = None
    #: ``kaip_preload_api_calls_total{call}``: the controller's requests, e.g. ``create jobs``.
    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1) -> None:
        """Count ``amount`` more of the counter ``name`` (workers run at once)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def call(self, verb: str, resource: str) -> None:
        with self._lock:
            self.calls[f"{verb} {resource}"] += 1

    def text(self) -> str:
        rows = [
            ("kaip_preload_reconciles_total", "counter", self.reconciles),
            ("kaip_preload_reconcile_errors_total", "counter", self.errors),
            ("kaip_preload_jobs_created_total", "counter", self.jobs_created),
            ("kaip_preload_gates_removed_total", "counter", self.gates_removed),
            ("kaip_preload_leader", "gauge", self.leader),
        ]
        text = "".join(f"# TYPE {n} {t}\n{n} {v}\n" for n, t, v in rows)
        with self._lock:
            calls = sorted(self.calls.items())
        text += "# TYPE kaip_preload_api_calls_total counter\n" + "".join(
            f'kaip_preload_api_calls_total{{call="{call}"}} {count}\n' for call, count in calls
        )
        return text + (metrics_text("kaip_preload", self.backoff) if self.backoff is not None else "")


class Queue:
    """Keys to look at, each at most once in the queue, some of them after a delay.

    Several workers may take keys, never the same key at once (client-go's work queue): a key taken
    with :meth:`get` is in progress until :meth:`done`; added meanwhile, it waits and is queued
    again at :meth:`done`, so the worker that runs it then sees what changed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()  # in _ready, or waiting for its key to be done
        self._busy: set[Key] = set()
        self._later: dict[Key, float] = {}

    def __len__(self) -> int:
        with self._cond:
            return len(self._queued) + len(self._later)

    def _push(self, key: Key) -> None:
        if key in self._queued:
            return
        self._queued.add(key)
        if key not in self._busy:
            self._ready.append(key)
            self._cond.notify()

    def add(self, key: Key, *, after: float = 0.0) -> None:
        with self._cond:
            if after > 0:
                due = time.monotonic() + after
                self._later[key] = min(self._later.get(key, due), due)
                self._cond.notify()
            else:
                self._push(key)

    def get(self, timeout: float) -> Key | None:
        """The next key, now in progress until :meth:`done`; ``None`` when none came in ``timeout``."""
        with self._cond:
            deadline = time.monotonic() + timeout
            while True:
                now = time.monotonic()
                for key, due in list(self._later.items()):
                    if due <= now:
                        del self._later[key]
                        self._push(key)
                if self._ready:
                    key = self._ready.popleft()
                    self._queued.discard(key)
                    self._busy.add(key)
                    return key
                wait = min([deadline - now, *(due - now for due in self._later.values())])
                if wait <= 0:
                    return None
                self._cond.wait(wait)

    def done(self, key: Key) -> None:
        """The work on ``key`` is over; if it was added meanwhile, it is queued now."""
        with self._cond:
            self._busy.discard(key)
            if key in self._queued:
                self._ready.append(key)
                self._cond.notify()
