"""The controller's work queue (keys to look at, deduplicated, some after a delay) and its metrics."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

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

    def text(self) -> str:
        rows = [
            ("kaip_preload_reconciles_total", "counter", self.reconciles),
            ("kaip_preload_reconcile_errors_total", "counter", self.errors),
            ("kaip_preload_jobs_created_total", "counter", self.jobs_created),
            ("kaip_preload_gates_removed_total", "counter", self.gates_removed),
            ("kaip_preload_leader", "gauge", self.leader),
        ]
        text = "".join(f"# TYPE {n} {t}\n{n} {v}\n" for n, t, v in rows)
        return text + (metrics_text("kaip_preload", self.backoff) if self.backoff is not None else "")


class Queue:
    """Keys to look at, each at most once in the queue, some of them after a delay."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ready: list[Key] = []
        self._later: dict[Key, float] = {}

    def add(self, key: Key, *, after: float = 0.0) -> None:
        with self._cond:
            if after > 0:
                due = time.monotonic() + after
                self._later[key] = min(self._later.get(key, due), due)
            elif key not in self._ready:
                self._ready.append(key)
            self._cond.notify()

    def get(self, timeout: float) -> Key | None:
        with self._cond:
            deadline = time.monotonic() + timeout
            while True:
                now = time.monotonic()
                for key, due in list(self._later.items()):
                    if due <= now:
                        del self._later[key]
                        if key not in self._ready:
                            self._ready.append(key)
                if self._ready:
                    return self._ready.pop(0)
                wait = min([deadline - now, *(due - now for due in self._later.values())])
                if wait <= 0:
                    return None
                self._cond.wait(wait)
