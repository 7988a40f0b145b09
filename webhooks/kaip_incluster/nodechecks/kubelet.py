"""What the kubelet says about the devices on this node, read from its device manager checkpoint.

The kubelet's pod-resources API (gRPC on ``/var/lib/kubelet/pod-resources/kubelet.sock``) needs gRPC,
which the standard library lacks; the same allocations are in the device manager's checkpoint, a JSON
file the kubelet rewrites on every allocation, ``/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint``
(kubernetes/kubernetes, pkg/kubelet/cm/devicemanager/checkpoint/checkpoint.go)::

    {"Data": {"PodDeviceEntries": [{"PodUID": "…", "ContainerName": "…",
                                    "ResourceName": "nvidia.com/gpu",
                                    "DeviceIDs": {"-1": ["GPU-…"]}, "AllocResp": "…"}],
              "RegisteredDevices": {"nvidia.com/gpu": ["GPU-…", …]}},
     "Checksum": 123}

``DeviceIDs`` is a map from NUMA node to IDs since Kubernetes 1.20 (a plain list before).
``RegisteredDevices`` holds the device plugin's *healthy* devices, i.e. what the node offers as
allocatable. Entries of Pods that have ended stay until the kubelet's next allocation, so an entry
whose Pod directory (``/var/lib/kubelet/pods/<uid>``) is gone is ignored when that directory is
readable. The NVIDIA device plugin names GPUs by UUID; time-slicing replicas as ``<uuid>::<n>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

CHECKPOINT = Path("var/lib/kubelet/device-plugins/kubelet_internal_checkpoint")
PODS = Path("var/lib/kubelet/pods")


@dataclass(frozen=True)
class Checkpoint:
    #: device ID (replica suffix removed) -> "pod-uid/container" holding it
    allocated: dict[str, str] = field(default_factory=dict)
    #: resource name -> distinct healthy device IDs the plugin registered (replicas folded)
    registered: dict[str, set[str]] = field(default_factory=dict)


def device_id(raw: str) -> str:
    """``GPU-abc::3`` (a time-slicing replica) is the GPU ``GPU-abc``."""
    return raw.split("::", 1)[0]


def _ids(value: object) -> list[str]:
    if isinstance(value, dict):
        return [str(i) for ids in value.values() if isinstance(ids, list) for i in ids]
    if isinstance(value, list):
        return [str(i) for i in value]
    return []


def read_checkpoint(root: Path, prefix: str = "nvidia.com/") -> Checkpoint | None:
    """The checkpoint under ``root``, for resources starting with ``prefix``; None when unreadable."""
    try:
        doc = json.loads((root / CHECKPOINT).read_text())
    except (OSError, ValueError):
        return None
    data = doc.get("Data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        return None
    pods_dir = root / PODS
    live: set[str] | None = None
    if pods_dir.is_dir():
        live = {p.name for p in pods_dir.iterdir()}
    allocated: dict[str, str] = {}
    for entry in data.get("PodDeviceEntries") or []:
        if not isinstance(entry, dict) or not str(entry.get("ResourceName", "")).startswith(prefix):
            continue
        uid = str(entry.get("PodUID", ""))
        if live is not None and uid not in live:
            continue  # the Pod has ended; the kubelet drops its entry at the next allocation
        for raw in _ids(entry.get("DeviceIDs")):
            allocated[device_id(raw)] = f"{uid}/{entry.get('ContainerName', '')}"
    registered = {
        str(name): {device_id(i) for i in _ids(ids)}
        for name, ids in (data.get("RegisteredDevices") or {}).items()
        if str(name).startswith(prefix)
    }
    return Checkpoint(allocated, registered)
