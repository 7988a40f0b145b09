"""Simulated GPU nodes for the demo and the tests: Node objects run by kwok, with GPU capacity,
the seed's custom conditions, cordons and taints, as a GPU cluster's nodes carry them."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from kaip.kube.client import Kube
from kaip.resources import kinds

KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}

#: Problem conditions the seed's node checks set, all healthy when False.
SEED_CONDITIONS = ("GPUIsLost", "GPUPendingPage", "DStateProcess", "PCIeLinkDegraded", "GPURuntimeError")


@dataclass(frozen=True)
class GPUNode:
    name: str
    gpus: int = 8
    product: str = "NVIDIA-A100-SXM4-80GB"
    unhealthy_gpus: int = 0  # capacity minus allocatable: GPUs the device plugin marked unhealthy
    problems: Mapping[str, str] = field(default_factory=dict)  # condition type -> message
    problem_age: timedelta = timedelta(hours=3)
    cordoned: bool = False
    taints: Sequence[Mapping[str, str]] = ()
    not_ready: bool = False  # not run by kwok: its kubelet is "gone"
    pool: str = "training"
    mig: Mapping[str, int] = field(default_factory=dict)  # e.g. {"nvidia.com/mig-1g.10gb": 7}
    driver: str = "550.90.07"
    kwok: str = "fake"  # which kwok runs it: the one started for nodes annotated kwok.x-k8s.io/node=<kwok>
    kwok_taint: bool = True  # keeps Pods that do not tolerate kwok's taint off the node


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(node: GPUNode) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kaip.dev/pool": node.pool,
    }
    if node.gpus or node.mig:
        labels |= {
            "nvidia.com/gpu.product": node.product,
            "nvidia.com/gpu.count": str(node.gpus),
            "nvidia.com/cuda.driver.major": node.driver.split(".")[0],
        }
    taints = [dict(t) for t in node.taints]
    if not node.not_ready and node.kwok_taint:
        taints.append(dict(KWOK_TAINT))
    meta: dict[str, Any] = {"name": node.name, "labels": labels}
    if not node.not_ready:
        meta["annotations"] = {"kwok.x-k8s.io/node": node.kwok}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta,
        "spec": {"unschedulable": node.cordoned, "taints": taints},
    }


def node_status(node: GPUNode, *, now: datetime | None = None) -> dict[str, Any]:
    at = now or datetime.now(timezone.utc)
    capacity: dict[str, str] = {"cpu": "96", "memory": "1Ti", "pods": "110", "ephemeral-storage": "3Ti"}
    allocatable = dict(capacity)
    if node.gpus:
        capacity["nvidia.com/gpu"] = str(node.gpus)
        allocatable["nvidia.com/gpu"] = str(node.gpus - node.unhealthy_gpus)
    for resource, count in node.mig.items():
        capacity[resource] = allocatable[resource] = str(count)
    conditions = []
    for ctype in SEED_CONDITIONS:
        message = node.problems.get(ctype)
        since = at - node.problem_age if message else at - timedelta(days=12)
        conditions.append(
            {
                "type": ctype,
                "status": "True" if message else "False",
                "reason": ctype if message else f"No{ctype}",
                "message": message or "ok",
                "lastHeartbeatTime": _stamp(at),
                "lastTransitionTime": _stamp(since),
            }
        )
    if node.not_ready:
        conditions.append(
            {
                "type": "Ready",
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastHeartbeatTime": _stamp(at - timedelta(minutes=47)),
                "lastTransitionTime": _stamp(at - timedelta(minutes=43)),
            }
        )
    status: dict[str, Any] = {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions,
        "nodeInfo": {
            "kernelVersion": "5.15.0-119-generic",
            "osImage": "Ubuntu 22.04.4 LTS",
            "kubeletVersion": "v1.36.3",
            "containerRuntimeVersion": "containerd://2.0.4",
            "architecture": "amd64",
            "operatingSystem": "linux",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }
    return status


def create(kube: Kube, nodes: Sequence[GPUNode], *, timeout: float = 60.0) -> None:
    """Create the nodes, wait for kwok to make the managed ones Ready, then set GPUs and conditions."""
    for node in nodes:
        kube.create(kinds.NODES, node_object(node))
    deadline = time.monotonic() + timeout
    pending = {n.name for n in nodes if not n.not_ready}
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            conds = (kube.get(kinds.NODES, name).get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
                pending.discard(name)
        time.sleep(0.3)
    if pending:
        raise RuntimeError(f"kwok did not make these nodes Ready: {sorted(pending)}")
    for node in nodes:
        kube.patch(
            kinds.NODES, node.name, {"status": node_status(node)}, kind="strategic", subresource="status"
        )


def gpu_pod(name: str, *, node: str, gpus: int, resource: str = "nvidia.com/gpu") -> dict[str, Any]:
    """A Pod pinned to a simulated node that holds GPUs while kwok keeps it Running."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "trainer"}},
        "spec": {
            "nodeName": node,
            "tolerations": [KWOK_TOLERATION],
            "containers": [
                {
                    "name": "train",
                    "image": "nvcr.io/nvidia/pytorch:24.08-py3",
                    "resources": {"limits": {resource: str(gpus)}},
                }
            ],
        },
    }


DEMO_NODES = (
    GPUNode("gpu-a100-0"),
    GPUNode(
        "gpu-a100-1",
        unhealthy_gpus=1,
        problems={"GPUIsLost": "7 of 8 GPUs visible to the driver (GPU 0000:4F:00.0 fell off the bus)"},
    ),
    GPUNode(
        "gpu-a100-2",
        cordoned=True,
        problems={"GPUPendingPage": "GPU 3 has 2 pages pending retirement; reset the GPU or reboot"},
        problem_age=timedelta(days=2),
    ),
    GPUNode(
        "gpu-a100-3",
        problems={"DStateProcess": "pid 48211 (python) in D state for 1260s"},
        problem_age=timedelta(minutes=21),
    ),
    GPUNode(
        "gpu-h100-0",
        product="NVIDIA-H100-80GB-HBM3",
        gpus=0,
        pool="inference",
        mig={"nvidia.com/mig-1g.10gb": 14, "nvidia.com/mig-3g.40gb": 4},
    ),
    GPUNode(
        "gpu-h100-1",
        product="NVIDIA-H100-80GB-HBM3",
        pool="inference",
        not_ready=True,
        taints=({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},),
    ),
    GPUNode(
        "gpu-h100-2",
        product="NVIDIA-H100-80GB-HBM3",
        pool="inference",
        problems={"PCIeLinkDegraded": "GPU 5 link width x8, max x16"},
        problem_age=timedelta(hours=30),
    ),
    GPUNode("cpu-0", gpus=0, pool="cpu"),
)
