"""The data-loader controller meeting a permanent error, against the real API server.

A ResourceQuota of zero Jobs makes the API server refuse the loader Job with 403 Forbidden, which
trying again cannot fix: the controller says so once on the PVC, does not try again in a loop (its
``/metrics`` count every attempt) nor on its resync, even after the cause is gone, and tries at once
when the PVC changes. The controller runs as a subprocess under the manifest's RBAC, as in
test_controller.py.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources.kinds import core
from kaip_testbed.dataloader import ControllerProcess, grant_lease
from kaip_testbed.waiting import wait_for

pytestmark = pytest.mark.integration

QUOTAS = core("resourcequotas", "ResourceQuota")
RESYNC_SECONDS = 5  # ControllerProcess runs the controller with --resync=5


@pytest.fixture
def controller(
    controller_kubeconfig: Path, admin_kube: Kube, namespace: str, tmp_path: Path
) -> Iterator[Callable[[], ControllerProcess]]:
    grant_lease(admin_kube, namespace)
    started: list[ControllerProcess] = []

    def start() -> ControllerProcess:
        started.append(ControllerProcess(controller_kubeconfig, namespace, "solo", tmp_path))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


def metric(proc: ControllerProcess, name: str) -> float:
    """One sample of the controller's /metrics (``name`` with its labels); 0 when absent."""
    url = f"http://127.0.0.1:{proc.health_port}/metrics"
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except ConnectionRefusedError:
        return 0.0  # not listening yet
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return 0.0
        raise
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def warnings_of(kube: Kube, name: str) -> list[dict[str, Any]]:
    items = kube.list(kinds.EVENTS).get("items") or []
    return [e for e in items if e["involvedObject"]["name"] == name and e["type"] == "Warning"]


def loader_jobs(kube: Kube) -> list[dict[str, Any]]:
    selector = "app.kubernetes.io/component=kaip-data-loader"
    return kube.list(kinds.JOBS, label_selector=selector).get("items") or []


def test_a_forbidden_job_is_not_retried_in_a_loop_and_is_retried_at_once_when_the_pvc_changes(
    kube: Kube, controller: Callable[[], ControllerProcess]
) -> None:
    kube.create(QUOTAS, {"metadata": {"name": "no-jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}})
    kube.create(
        kinds.PVCS,
        {
            "metadata": {"name": "data", "annotations": {"preload.kaip.dev/source": "s3://bucket/data"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    proc = controller()
    refused = 'kaip_preload_permanent_errors_total{reason="Forbidden"}'
    wait_for(lambda: metric(proc, refused) >= 1, what="the Job refused")
    (told,) = wait_for(lambda: warnings_of(kube, "data"), what="a Warning Event on the PVC")
    assert told["reason"] == "ReconcileFailed"
    assert told["message"].startswith("Forbidden: ") and "quota" in told["message"]
    assert told["message"].endswith("not tried again until the PVC changes")

    # Its own condition write (a change of the PVC) may give it one more look; then nothing.
    time.sleep(1.5)
    attempts = metric(proc, refused)
    assert 1 <= attempts <= 2
    kube.delete(QUOTAS, "no-jobs")  # the cause is gone, but nothing tells the controller
    time.sleep(RESYNC_SECONDS + 2)  # a resync sees the PVC unchanged
    assert metric(proc, refused) == attempts
    assert metric(proc, 'kaip_preload_backoff_keys{kind="permanent"}') == 1
    assert loader_jobs(kube) == []
    assert [e["reason"] for e in warnings_of(kube, "data")] == ["ReconcileFailed"]

    # A change of the PVC runs it at once (long before the next resync could).
    changed = time.monotonic()
    kube.patch(kinds.PVCS, "data", {"metadata": {"annotations": {"example.com/touched": "yes"}}})
    wait_for(lambda: loader_jobs(kube), timeout=RESYNC_SECONDS, what="the loader Job")
    assert time.monotonic() - changed < RESYNC_SECONDS
    assert metric(proc, refused) == attempts
    assert metric(proc, 'kaip_preload_backoff_keys{kind="permanent"}') == 0
