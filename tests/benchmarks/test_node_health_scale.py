"""`kubectl node-health summary` and `list` on 5,000 GPU nodes beside `kubectl get nodes -o json`,
on the same real API server (issue 6, item 5).

Goal: wall time at most 1.5x kubectl's, peak memory (max RSS) under 400 MiB. Run on demand:
``pytest tests/benchmarks/test_node_health_scale.py -s`` (creating the nodes takes a few minutes).

The nodes look like a kubelet, the NVIDIA device plugin, GPU feature discovery and
node-problem-detector leave them: ~50 labels, 9 conditions, 50 images, GPU and MIG capacity, taints;
some NotReady, cordoned, with GPU problems or unhealthy devices."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed import binaries
from kaip_testbed.controlplane import ControlPlane

NODES = 5000
RUNS = 3
THREADS = 16
RATIO_GOAL = 1.5
MEMORY_GOAL_MIB = 400
PRODUCTS = ("NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3", "Tesla-V100-SXM2-32GB", "NVIDIA-A30")


def _stamp(ago: timedelta) -> str:
    return (datetime.now(timezone.utc) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def realistic_node(i: int) -> dict[str, Any]:
    product = PRODUCTS[i % len(PRODUCTS)]
    gpus = 4 if "A100" in product else (6 if "A30" in product else 8)
    broken = i % 50 == 7
    labels = {
        "kubernetes.io/hostname": f"gpu-{i:05d}",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": f"dgx-{product.lower()}",
        "topology.kubernetes.io/zone": f"rack-{i // 40:03d}",
        "kaip.dev/pool": ("train", "infer", "dev")[i % 3],
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": str(gpus),
        "nvidia.com/gpu.memory": "81920",
        "nvidia.com/gpu.family": "ampere",
        "nvidia.com/gpu.machine": "DGX-A100",
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.mode": "compute",
        "nvidia.com/cuda.driver-version.full": "550.127.05",
        "nvidia.com/cuda.runtime-version.full": "12.4",
        "nvidia.com/mig.strategy": "mixed",
        "nvidia.com/gpu.deploy.driver": "true",
        "nvidia.com/gpu.deploy.device-plugin": "true",
        "nvidia.com/gpu.deploy.dcgm-exporter": "true",
        "nvidia.com/gpu.deploy.gpu-feature-discovery": "true",
        "nvidia.com/gpu.deploy.container-toolkit": "true",
    }
    labels.update(
        {
            f"feature.node.kubernetes.io/cpu-cpuid.{f}": "true"
            for f in (
                "ADX",
                "AESNI",
                "AVX",
                "AVX2",
                "AVX512BW",
                "AVX512CD",
                "AVX512DQ",
                "AVX512F",
                "AVX512VL",
                "FMA3",
                "SHA",
                "SSE4",
                "VMX",
                "X87",
                "XSAVE",
            )
        }
    )
    labels.update(
        {f"feature.node.kubernetes.io/kernel-config.{f}": "true" for f in ("NO_HZ", "NO_HZ_FULL", "PREEMPT")}
    )
    labels.update(
        {
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "feature.node.kubernetes.io/pci-15b3.present": "true",
            "feature.node.kubernetes.io/rdma.available": "true",
            "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
        }
    )
    beat = _stamp(timedelta(seconds=30 + i % 200))
    conds = [
        {
            "type": "Ready",
            "status": "False" if i % 97 == 3 else "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": beat,
            "lastTransitionTime": _stamp(timedelta(days=3)),
        }
    ]
    for ctype, reason in (
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "KubeletHasSufficientPID"),
        ("GPUIsLost", "AllGPUsVisible"),
        ("GPUPendingPage", "NoPagePending"),
        ("DStateProcess", "NoDStateProcess"),
        ("PCIeLinkDegraded", "PCIeLinkFullWidth"),
        ("GPURuntimeError", "GPUWorkloadPassed"),
    ):
        status = (
            "True" if broken and ctype == ("GPUIsLost", "GPUPendingPage", "DStateProcess")[i % 3] else "False"
        )
        conds.append(
            {
                "type": ctype,
                "status": status,
                "reason": reason,
                "message": f"{ctype} check said {status}",
                "lastHeartbeatTime": beat,
                "lastTransitionTime": _stamp(timedelta(hours=1 + i % 48)),
            }
        )
    capacity = {
        "cpu": "128",
        "memory": "1056000Mi",
        "pods": "110",
        "ephemeral-storage": "3500Gi",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "rdma/hca_shared_devices_a": "1000",
        "nvidia.com/gpu": str(gpus),
    }
    allocatable = {
        **capacity,
        "cpu": "126",
        "memory": "1040000Mi",
        "nvidia.com/gpu": str(gpus - (1 if i % 40 == 11 else 0)),
    }
    if i % 10 == 5:
        capacity["nvidia.com/mig-1g.10gb"] = allocatable["nvidia.com/mig-1g.10gb"] = "14"
    images = [
        {
            "names": [
                f"registry.example.com/ml/team-{k % 9}/image-{k}@sha256:{(i * 131 + k):064x}",
                f"registry.example.com/ml/team-{k % 9}/image-{k}:v{k}.{i % 7}",
            ],
            "sizeBytes": 1_000_000_000 + k * 7919,
        }
        for k in range(50)
    ]
    return {
        "metadata": {
            "name": f"gpu-{i:05d}",
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "podCIDR": f"10.{i // 256 % 256}.{i % 256}.0/24",
            "unschedulable": i % 60 == 13,
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": conds,
            "images": images,
            "addresses": [
                {"type": "InternalIP", "address": f"10.200.{i // 256}.{i % 256}"},
                {"type": "Hostname", "address": f"gpu-{i:05d}"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": f"{i:032x}",
                "systemUUID": f"{i:08x}-0000-0000-0000-000000000000",
                "bootID": f"{i:08x}-1111-2222-3333-444444444444",
                "kernelVersion": "5.15.0-105-generic",
                "osImage": "Ubuntu 22.04.4 LTS",
                "containerRuntimeVersion": "containerd://1.7.20",
                "kubeletVersion": "v1.36.0",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def create_nodes(kube: Kube) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda i: kube.create(kinds.NODES, realistic_node(i)), range(NODES)))
    return time.perf_counter() - start


# Forked from a small helper, not from pytest: a forked child's max RSS starts at its parent's
# (Linux keeps the high-water mark across fork and exec), which would charge pytest's memory to it.
_MEASURE = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss / 1024)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(argv: list[str]) -> tuple[float, float]:
    """Median wall seconds of RUNS runs and the largest max RSS (MiB), output thrown away as a pipe would."""
    times, peaks = [], []
    for _ in range(RUNS):
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        wall, peak = (float(x) for x in done.stdout.split())
        times.append(wall)
        peaks.append(peak)
    return statistics.median(times), max(peaks)


@pytest.mark.timeout(1800)
def test_summary_and_list_at_5000_nodes(admin_kube: Kube, control_plane: ControlPlane) -> None:
    created = create_nodes(admin_kube)
    kubeconfig = str(control_plane.kubeconfig)
    plugin = os.path.join(sysconfig.get_path("scripts"), "kubectl-node_health")
    kubectl = [binaries.path_of("kubectl"), "get", "nodes", "-o", "json", "--kubeconfig", kubeconfig]
    ours = {
        "summary": [plugin, "summary", "--kubeconfig", kubeconfig],
        "list": [plugin, "list", "--kubeconfig", kubeconfig],
        "list -o wide": [plugin, "list", "-o", "wide", "--kubeconfig", kubeconfig],
    }
    listed = subprocess.run([*ours["list"], "-o", "name"], capture_output=True, text=True, check=True)
    assert len(listed.stdout.splitlines()) == NODES
    peer_time, peer_mem = measure(kubectl)
    table_time, table_mem = measure(kubectl[:3] + kubectl[5:])
    print(f"\ncreated {NODES} nodes in {created:.0f}s ({THREADS} threads)")
    print(f"kubectl get nodes -o json: median {peer_time:.2f}s, max RSS {peer_mem:.0f} MiB")
    print(f"(for reference) kubectl get nodes: median {table_time:.2f}s, max RSS {table_mem:.0f} MiB")
    results = {}
    for label, argv in ours.items():
        wall, mem = measure(argv)
        results[label] = (wall, mem)
        print(
            f"kubectl node-health {label}: median {wall:.2f}s ({wall / peer_time:.2f}x), max RSS {mem:.0f} MiB"
        )
    for label, (wall, mem) in results.items():
        assert wall <= RATIO_GOAL * peer_time, f"{label}: {wall:.2f}s > {RATIO_GOAL} x {peer_time:.2f}s"
        assert mem < MEMORY_GOAL_MIB, f"{label}: {mem:.0f} MiB"
