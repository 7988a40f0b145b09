"""The controller's work queue: a key waits once, however many events name it; a delayed key
comes back after its delay; workers never hold one key at once."""

from __future__ import annotations

import threading
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


def test_a_key_in_progress_is_not_given_to_a_second_worker_until_it_is_done() -> None:
    queue = Queue()
    key = ("pvc", "ml", "data")
    queue.add(key)
    assert queue.get(timeout=0.1) == key
    queue.add(key)  # changed while a worker is on it
    queue.add(("pvc", "ml", "other"))
    assert queue.get(timeout=0.1) == ("pvc", "ml", "other")
    assert queue.get(timeout=0.1) is None
    queue.done(key)
    assert queue.get(timeout=0.1) == key  # once more, for what changed meanwhile
    queue.done(key)
    assert queue.get(timeout=0.1) is None


def test_a_delayed_key_in_progress_waits_for_it_to_be_done() -> None:
    queue = Queue()
    key = ("pvc", "ml", "data")
    queue.add(key)
    assert queue.get(timeout=0.1) == key
    queue.add(key, after=0.05)
    assert queue.get(timeout=0.2) is None
    queue.done(key)
    assert queue.get(timeout=0.1) == key


def test_workers_never_hold_one_key_at_once() -> None:
    queue = Queue()
    keys = [("pvc", "ml", f"d{i % 5}") for i in range(200)]
    busy: set[tuple[str, str, str]] = set()
    clash: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def worker() -> None:
        while (key := queue.get(timeout=0.2)) is not None:
            with lock:
                if key in busy:
                    clash.append(key)
                busy.add(key)
            time.sleep(0.001)
            with lock:
                busy.discard(key)
            queue.done(key)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for key in keys:
        queue.add(key)
    for thread in threads:
        thread.join()
    assert clash == []


def test_api_calls_are_counted_by_verb_and_resource() -> None:
    metrics = Metrics()
    metrics.call("create", "jobs")
    metrics.call("create", "jobs")
    metrics.add("jobs_created", 2)
    text = metrics.text()
    assert 'kaip_preload_api_calls_total{call="create jobs"} 2\n' in text
    assert "kaip_preload_jobs_created_total 2\n" in text
