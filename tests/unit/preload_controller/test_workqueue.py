"""The controller's work queue: a key waits once, however many events name it; a delayed key
comes back after its delay."""

from __future__ import annotations

import time

from kaip_incluster.controller.workqueue import Metrics, Queue


def test_a_key_named_many_times_is_worked_on_once() -> None:
    queue = Queue()
    for _ in range(3):
        queue.add(("pvc", "ml", "data"))
    queue.add(("pod", "ml", "train"))
    assert queue.get(timeout=0.1) == ("pvc", "ml", "data")
    assert queue.get(timeout=0.1) == ("pod", "ml", "train")
    assert queue.get(timeout=0.1) is None


def test_a_delayed_key_comes_back_after_its_delay() -> None:
    queue = Queue()
    queue.add(("pvc", "ml", "data"), after=0.3)
    started = time.monotonic()
    assert queue.get(timeout=0.1) is None
    assert queue.get(timeout=2.0) == ("pvc", "ml", "data")
    assert time.monotonic() - started >= 0.3


def test_metrics_are_prometheus_text() -> None:
    text = Metrics(reconciles=3, leader=1).text()
    assert "# TYPE kaip_preload_reconciles_total counter\nkaip_preload_reconciles_total 3\n" in text
    assert "kaip_preload_leader 1\n" in text
