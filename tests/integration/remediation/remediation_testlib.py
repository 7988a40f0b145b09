"""Helpers of the remediation tests: kwok nodes with the seed's conditions, our objects, the controller
in a thread or as processes (``conftest.py`` holds the fixtures)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kaip.errors import KaipError
from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import kinds
from kaip.resources import remediation as names
from kaip.resources.kinds import Resource
from kaip_incluster.remediation.loop import Reconciler, Settings
from kaip_testbed import gpu_nodes
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.processes import terminate

ROOT = Path(__file__).resolve().parents[3]
CRDS = ROOT / "manifests" / "remediation" / "crds"
CRD = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False
)
ALL = (names.REMEDIATIONS, names.RULES, names.BUDGETS, names.CONFIGS)


def create_nodes(kube: Kube, prefix: str, count: int, *, pool: str) -> list[str]:
    nodes = [gpu_nodes.GPUNode(f"{prefix}-{i:02d}", pool=pool) for i in range(count)]
    gpu_nodes.create(kube, nodes, timeout=120)
    return [n.name for n in nodes]


def delete_nodes(kube: Kube, names_: list[str]) -> None:
    for name in names_:
        kube.delete(kinds.NODES, name, ignore_missing=True)


def set_condition(kube: Kube, node: str, ctype: str, status: str, *, message: str = "") -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cond = {
        "type": ctype,
        "status": status,
        "reason": ctype if status == "True" else f"No{ctype}",
        "message": message or ("problem" if status == "True" else "ok"),
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }
    kube.patch(kinds.NODES, node, {"status": {"conditions": [cond]}}, kind="strategic", subresource="status")


def gpu_rule(name: str, *, pool: str, **spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "conditions": [{"type": "GPUPendingPage", "status": "True", "duration": "1s"}],
        "nodeSelector": {"matchLabels": {"kaip.dev/pool": pool}},
        "drain": {"timeout": "2m"},
        "operations": [
            {
                "name": "reboot",
                "type": "Reboot",
                "timeout": "60s",
                # kwok's own taint: the real cluster's GPU taints are tolerated the same way.
                "template": {"spec": {"tolerations": [gpu_nodes.KWOK_TOLERATION]}},
            }
        ],
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": names.RULES.api_version,
        "kind": names.RULES.kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def budget(name: str, *, pool: str, max_unavailable: int | str) -> dict[str, Any]:
    return {
        "apiVersion": names.BUDGETS.api_version,
        "kind": names.BUDGETS.kind,
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"kaip.dev/pool": pool}}, "maxUnavailable": max_unavailable},
    }


def config(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": names.CONFIGS.api_version,
        "kind": names.CONFIGS.kind,
        "metadata": {"name": names.CONFIG_NAME},
        "spec": spec,
    }


def get_or_none(kube: Kube, resource: Resource, name: str) -> dict[str, Any] | None:
    try:
        return kube.get(resource, name)
    except NotFound:
        return None


class ThreadController:
    """The reconciler run in rounds on a thread (the single-leader case, fast to start)."""

    def __init__(self, kube: Kube, settings: Settings, *, interval: float = 0.3) -> None:
        self.reconciler = Reconciler(kube, settings)
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.interval = interval

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.reconciler.tick()
            except Exception as exc:  # surfaced by the test through .errors
                self.errors.append(exc)
            self.stop.wait(self.interval)

    def __enter__(self) -> ThreadController:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


class ProcessController:
    """``python -m kaip_incluster.remediation.main`` as a real process, killable with SIGKILL."""

    def __init__(
        self,
        plane: ControlPlane,
        *,
        namespace: str,
        identity: str,
        log_dir: Path,
        kubeconfig: Path | None = None,
    ) -> None:
        self.identity = identity
        self.log = (log_dir / f"{identity}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kaip_incluster.remediation.main",
                f"--kubeconfig={kubeconfig or plane.kubeconfig}",
                f"--namespace={namespace}",
                f"--identity={identity}",
                "--interval=0.3",
                "--lease-duration=3",
                "--renew-deadline=2",
                "--retry-period=0.5",
                "--health-port=0",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()


class CordonWatch:
    """Every change of the pool's Nodes, from a watch: which are cordoned, and the most at once."""

    def __init__(self, kube: Kube, selector: str) -> None:
        self.kube, self.selector = kube, selector
        self.cordoned: set[str] = set()
        self.ever: set[str] = set()
        self.max_at_once = 0
        self.cordon_times: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        listing = kube.list(kinds.NODES, label_selector=selector)
        self.rv = listing["metadata"]["resourceVersion"]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self._follow()
            except KaipError:
                return  # the control plane is gone at the end of the session

    def _follow(self) -> None:
        for kind, node in self.kube.watch(
            kinds.NODES, label_selector=self.selector, resource_version=self.rv, timeout_seconds=60
        ):
            if self.stop.is_set():
                return
            self.rv = node["metadata"].get("resourceVersion", self.rv)
            if kind == "BOOKMARK":
                continue
            name = node["metadata"]["name"]
            with self.lock:
                if node.get("spec", {}).get("unschedulable"):
                    if name not in self.cordoned:
                        self.cordon_times[name] = time.time()
                    self.cordoned.add(name)
                    self.ever.add(name)
                else:
                    self.cordoned.discard(name)
                self.max_at_once = max(self.max_at_once, len(self.cordoned))


class NodeProblemDetectorStandIn:
    """Clears GPUPendingPage on a node once its reboot Job has completed: the node "came back"."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.enabled = True
        self.stop = threading.Event()
        self.done: set[str] = set()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                jobs = self.kube.list(kinds.JOBS, namespace=self.namespace)["items"]
                for job in jobs:
                    name = job["metadata"]["name"]
                    if self.enabled and (job.get("status") or {}).get("succeeded") and name not in self.done:
                        node = job["metadata"]["annotations"][f"{names.GROUP}/node"]
                        set_condition(self.kube, node, "GPUPendingPage", "False")
                        self.done.add(name)
            except Exception:  # the API server is shared with the test; try again next round
                pass
            self.stop.wait(0.3)
