"""The data-loader controller's throughput: N annotated PVCs created at once -> N loader Jobs
(issue 7, item 2).

Goal: 1,000 PVCs -> 1,000 Jobs in under 30 s with kube-controller-manager running (it makes the
Jobs' Pods meanwhile), exactly one Job per PVC, controller peak RSS under 200 MiB. 5,000 PVCs are
reported with ``KAIP_BENCH_PVCS=1000,5000`` (default ``1000``). Run on demand:
``python -m pytest tests/benchmarks/test_controller_throughput.py -s -p no:cacheprovider``.

The controller runs as the tests run it (a ``kaip-controller`` subprocess under the manifest's RBAC,
``--resync=5``), started and leading before the PVCs are made; the clock starts with the first
create (16 threads) and stops when a watch of loader Jobs has seen N of them. Its ``/metrics`` give
the reconciles and the API calls per PVC (the profile in docs/data-loader.md, "Throughput").
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kaip.kube import watching
from kaip.kube.client import Kube
from kaip.kube.objects import labels_of, name_of, owners_of, uid_of
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.dataloader import ControllerProcess, grant_lease, install_controller_rbac

SIZES = [int(n) for n in os.environ.get("KAIP_BENCH_PVCS", "1000").split(",") if n.strip()]
GOAL_SECONDS = {1000: 30.0}
MEMORY_GOAL_MIB = 200
THREADS = 16
#: ``--workers`` of the controller (its default when unset), to compare.
WORKERS = os.environ.get("KAIP_BENCH_WORKERS", "")
LOADER = "app.kubernetes.io/component=kaip-data-loader"


@pytest.fixture(scope="module")
def controller_kubeconfig(cluster_controllers: ControlPlane, admin_kube: Kube) -> Iterator[Path]:
    kubeconfig, undo = install_controller_rbac(admin_kube, cluster_controllers)
    yield kubeconfig
    undo()


def metrics_of(proc: ControllerProcess) -> str:
    url = f"http://127.0.0.1:{proc.health_port}/metrics"
    return str(urllib.request.urlopen(url, timeout=10).read().decode())


def sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(proc: ControllerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "kaip_preload_leader 1" in metrics_of(proc):
                with urllib.request.urlopen(f"http://127.0.0.1:{proc.health_port}/readyz", timeout=5):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the controller did not become ready and lead")


def pvc(name: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "annotations": {"preload.kaip.dev/source": f"s3://bench/sets/{name}"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


@pytest.mark.parametrize("count", SIZES)
def test_annotated_pvcs_created_at_once_get_one_loader_job_each(
    count: int,
    kube: Kube,
    admin_kube: Kube,
    namespace: str,
    controller_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    grant_lease(admin_kube, namespace)
    args = [f"--workers={WORKERS}"] if WORKERS else []
    proc = ControllerProcess(controller_kubeconfig, namespace, "bench", tmp_path, args=args)
    try:
        wait_ready(proc)
        seen: set[str] = set()
        done = threading.Event()
        stop = threading.Event()

        def follow() -> None:
            for kind, obj in watching.list_watch(kube, kinds.JOBS, label_selector=LOADER, stop=stop):
                if kind in ("ADDED", "LISTED"):
                    seen.add(name_of(obj))
                    if len(seen) >= count:
                        done.set()
                        return

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        names = [f"data-{i:05d}" for i in range(count)]
        cpu_before = cpu_seconds(proc.proc.pid)
        started = time.monotonic()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda n: kube.create(kinds.PVCS, pvc(n)), names))
        created = time.monotonic() - started
        limit = max(120.0, count * 0.25)
        assert done.wait(limit), f"only {len(seen)} of {count} Jobs after {limit:.0f}s"
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(proc.proc.pid) - cpu_before
        stop.set()
        time.sleep(3)  # anything late (a second Job) shows now

        jobs = kube.list_all(kinds.JOBS, label_selector=LOADER)
        pvcs = {uid_of(p): name_of(p) for p in kube.list_all(kinds.PVCS)}
        per_pvc = Counter(
            pvcs.get(str(o.get("uid")), "?")
            for j in jobs
            for o in owners_of(j)
            if o.get("kind") == "PersistentVolumeClaim"
        )
        text = metrics_of(proc)
        rss = peak_rss_mib(proc.proc.pid)
    finally:
        proc.stop()

    calls = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^kaip_preload_api_calls_total\{call="([^"]+)"\} (\S+)$', text, re.MULTILINE)
    }
    reconciles = sample(text, "kaip_preload_reconciles_total")
    print(
        f"\n{count} PVCs created in {created:.1f}s; {count} Jobs after {elapsed:.1f}s "
        f"({count / elapsed:.1f} Jobs/s); controller peak RSS {rss:.0f} MiB, CPU {cpu:.1f}s "
        f"({cpu / elapsed:.0%} of a core); "
        f"{reconciles / count:.2f} reconciles per PVC; "
        f"API calls per PVC {sum(calls.values()) / count:.2f}: "
        + ", ".join(f"{k} {v / count:.2f}" for k, v in sorted(calls.items()))
    )
    assert len(jobs) == count, f"{len(jobs)} Jobs for {count} PVCs"
    assert set(per_pvc) == set(pvcs.values()) and set(per_pvc.values()) == {1}
    assert all(labels_of(j).get("preload.kaip.dev/pvc") for j in jobs)
    assert rss < MEMORY_GOAL_MIB
    goal = GOAL_SECONDS.get(count)
    if goal is not None:
        assert elapsed < goal, f"{count} Jobs took {elapsed:.1f}s (goal < {goal:.0f}s)"
