"""GPU Node objects as a kubelet, the NVIDIA device plugin, GPU feature discovery and
node-problem-detector would leave them, created on the real API server (no kubelet runs)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from kaip.kube.client import Kube
from kaip.resources import kinds

RUN_LABEL = "kaip.dev/test-run"
DETECTOR_CONDITIONS = ("GPUIsLost", "GPUPendingPage", "DStateProcess", "PCIeLinkDegraded", "GPURuntimeError")


def stamp(ago: timedelta) -> str:
    return (datetime.now(timezone.utc) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    ctype: str,
    status: str,
    *,
    since: timedelta,
    beat: timedelta = timedelta(minutes=1),
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": reason or f"{ctype}{status}",
        "message": message,
        "lastTransitionTime": stamp(since),
        "lastHeartbeatTime": stamp(beat),
    }


def gpu_node(
    name: str,
    run: str,
    *,
    ready: str = "True",
    problems: dict[str, str] | None = None,
    problem_since: timedelta = timedelta(hours=3),
    gpus: tuple[int, int] = (8, 8),
    mig: dict[str, tuple[int, int]] | None = None,
    product: str = "NVIDIA-A100-SXM4-80GB",
    pool: str = "train-a",
    unschedulable: bool = False,
    taints: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    extra_conditions: list[dict[str, Any]] | None = None,
    stale: bool = False,
) -> dict[str, Any]:
    beat = timedelta(minutes=25) if stale else timedelta(minutes=1)
    conds = [
        condition(
            "Ready",
            ready,
            since=timedelta(days=2) if ready == "True" else timedelta(hours=5),
            reason="KubeletReady" if ready == "True" else "KubeletNotReady",
        ),
        condition("MemoryPressure", "False", since=timedelta(days=2)),
        condition("DiskPressure", "False", since=timedelta(days=2)),
        condition("PIDPressure", "False", since=timedelta(days=2)),
    ]
    for ctype in DETECTOR_CONDITIONS:
        status = (problems or {}).get(ctype, "False")
        conds.append(
            condition(
                ctype,
                status,
                since=problem_since if status != "False" else timedelta(days=2),
                beat=beat,
                message=f"{ctype} check: {status}",
            )
        )
    conds += extra_conditions or []
    capacity = {"cpu": "128", "memory": "1056000Mi", "pods": "110", "nvidia.com/gpu": str(gpus[0])}
    allocatable = {"cpu": "126", "memory": "1040000Mi", "pods": "110", "nvidia.com/gpu": str(gpus[1])}
    for res, (cap, alloc) in (mig or {}).items():
        capacity[res], allocatable[res] = str(cap), str(alloc)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                RUN_LABEL: run,
                "kubernetes.io/hostname": name,
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": str(gpus[0]),
                "nvidia.com/cuda.driver-version.full": "550.127.05",
                "kaip.dev/pool": pool,
                **(labels or {}),
            },
        },
        "spec": {
            "unschedulable": unschedulable,
            "taints": [
                {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
                *(taints or []),
            ],
        },
        "status": {
            "conditions": conds,
            "capacity": capacity,
            "allocatable": allocatable,
            "nodeInfo": {
                "kernelVersion": "5.15.0-105-generic",
                "osImage": "Ubuntu 22.04.4 LTS",
                "kubeletVersion": "v1.36.0",
                "containerRuntimeVersion": "containerd://1.7.20",
                "architecture": "amd64",
                "operatingSystem": "linux",
            },
        },
    }


def create(kube: Kube, nodes: Iterable[dict[str, Any]]) -> list[str]:
    return [kube.create(kinds.NODES, n)["metadata"]["name"] for n in nodes]


def delete(kube: Kube, names: Iterable[str]) -> None:
    for name in names:
        kube.delete(kinds.NODES, name, ignore_missing=True)
