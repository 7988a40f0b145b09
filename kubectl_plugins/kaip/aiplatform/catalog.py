"""The cluster catalog: what gcloud's machine types, accelerators, scale tiers and runtime versions
mean on this cluster (resources, node selectors, tolerations, images).

Built-in defaults below follow AI Platform's documented machine types and tiers; the cluster admin
overrides or extends any entry with the ConfigMap ``kaip-system/ai-platform-catalog`` (key
``catalog.yaml``, the same layout as :data:`BUILTIN`). Pure: parsing, merging and lookups.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaip.errors import OperationFailed, UsageError

GPU = "nvidia.com/gpu"
_GPU_TAINT = ({"key": GPU, "operator": "Exists", "effect": "NoSchedule"},)


def _n1(kind: str, per_cpu_gib: float, sizes: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    return {f"n1-{kind}-{n}": {"cpu": str(n), "memory": f"{round(n * per_cpu_gib * 1024)}Mi"} for n in sizes}


def _a2(gpus: int, cpus: int, memory_gib: int) -> dict[str, Any]:
    return {
        "cpu": str(cpus),
        "memory": f"{memory_gib}Gi",
        "accelerator": {"type": "nvidia-tesla-a100", "count": gpus},
    }


_GPU_TYPES = ("nvidia-tesla-k80", "nvidia-tesla-p4", "nvidia-tesla-p100", "nvidia-tesla-t4")
_MIG_PROFILES = ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")

#: The built-in catalog (documented in docs/ai-platform.md). Memory of n1 types: 3.75, 6.5 and
#: 0.9 GiB per vCPU, as Compute Engine sizes them.
BUILTIN: dict[str, Any] = {
    "defaultRuntimeVersion": "2.11",
    "machineTypes": {
        **_n1("standard", 3.75, (4, 8, 16, 32, 64, 96)),
        **_n1("highmem", 6.5, (2, 4, 8, 16, 32, 64, 96)),
        **_n1("highcpu", 0.9, (8, 16, 32, 64, 96)),
        "a2-highgpu-1g": _a2(1, 12, 85),
        "a2-highgpu-2g": _a2(2, 24, 170),
        "a2-highgpu-4g": _a2(4, 48, 340),
        "a2-highgpu-8g": _a2(8, 96, 680),
    },
    "accelerators": {
        **{name: {"resource": GPU, "tolerations": list(_GPU_TAINT)} for name in _GPU_TYPES},
        "nvidia-tesla-v100": {"resource": GPU, "tolerations": list(_GPU_TAINT)},
        "nvidia-tesla-a100": {"resource": GPU, "tolerations": list(_GPU_TAINT)},
        # MIG slices of an A100 (the device plugin's "mixed" strategy names each profile).
        **{
            f"nvidia-a100-mig-{p}": {"resource": f"nvidia.com/mig-{p}", "tolerations": list(_GPU_TAINT)}
            for p in _MIG_PROFILES
        },
    },
    "scaleTiers": {
        "basic": {"masterType": "n1-standard-4"},
        "basic-gpu": {
            "masterType": "n1-standard-8",
            "masterAccelerator": {"type": "nvidia-tesla-k80", "count": 1},
        },
        "standard-1": {
            "masterType": "n1-highcpu-8",
            "workerType": "n1-highcpu-8",
            "workerCount": 4,
            "parameterServerType": "n1-standard-4",
            "parameterServerCount": 3,
        },
        "premium-1": {
            "masterType": "n1-highcpu-16",
            "workerType": "n1-highcpu-16",
            "workerCount": 19,
            "parameterServerType": "n1-highmem-8",
            "parameterServerCount": 11,
        },
    },
    "runtimeVersions": {
        "1.15": {
            "pythonVersions": ["3.7", "2.7"],
            "images": {
                "tensorflow": {
                    "cpu": "tensorflow/tensorflow:1.15.5-py3",
                    "gpu": "tensorflow/tensorflow:1.15.5-gpu-py3",
                },
            },
        },
        "2.11": {
            "pythonVersions": ["3.7"],
            "images": {
                "tensorflow": {
                    "cpu": "tensorflow/tensorflow:2.11.0",
                    "gpu": "tensorflow/tensorflow:2.11.0-gpu",
                },
                "pytorch": {
                    "cpu": "pytorch/pytorch:1.13.1-cuda11.6-cudnn8-runtime",
                    "gpu": "pytorch/pytorch:1.13.1-cuda11.6-cudnn8-runtime",
                },
                "xgboost": {"cpu": "python:3.7-slim", "gpu": "python:3.7-slim"},
                "jax": {"cpu": "python:3.10-slim", "gpu": "python:3.10-slim"},
                "paddle": {
                    "cpu": "paddlepaddle/paddle:2.4.2",
                    "gpu": "paddlepaddle/paddle:2.4.2-gpu-cuda11.7-cudnn8.4-trt8.4",
                },
                "mpi": {"cpu": "horovod/horovod:0.28.1", "gpu": "horovod/horovod:0.28.1"},
            },
        },
    },
    "regions": {},
    "images": {
        "wait": "busybox:1.36",
        "fetch": {"gs": "google/cloud-sdk:slim", "s3": "amazon/aws-cli:2.15.0"},
    },
    "data": {"size": "100Gi"},
    "scheduling": {"queueing": "kueue"},
    "secondaryNetworks": {},
}


@dataclass(frozen=True)
class Placement:
    """What a catalog entry adds to a Pod: resources, where it may run."""

    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Catalog:
    """The merged catalog document, with lookups that name the missing entry and its alternatives."""

    doc: Mapping[str, Any]
    source: str = "built-in"

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.doc.get(name) or {}
        return value if isinstance(value, Mapping) else {}

    def _entry(self, section: str, name: str, what: str) -> Mapping[str, Any]:
        entries = self.section(section)
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise UsageError(f"unknown {what} {name!r} in the {self.source} catalog (known: {known})")
        entry = entries[name]
        return entry if isinstance(entry, Mapping) else {}

    def machine(self, name: str) -> Mapping[str, Any]:
        return self._entry("machineTypes", name, "machine type")

    def accelerator(self, name: str) -> Mapping[str, Any]:
        if name.startswith("tpu-"):
            raise UsageError(f"accelerator type {name!r} is a Cloud TPU, which exists only on Google Cloud")
        return self._entry("accelerators", name, "accelerator type")

    def scale_tier(self, name: str) -> Mapping[str, Any]:
        if name == "basic-tpu":
            raise UsageError("--scale-tier=basic-tpu needs a Cloud TPU, which exists only on Google Cloud")
        return self._entry("scaleTiers", name, "scale tier")

    def runtime(self, version: str) -> Mapping[str, Any]:
        return self._entry("runtimeVersions", version, "runtime version")

    def region(self, name: str) -> Mapping[str, Any] | None:
        regions = self.section("regions")
        return self._entry("regions", name, "region") if regions else None

    def secondary_network(self, name: str) -> Mapping[str, Any]:
        return self.section("secondaryNetworks").get(name) or {}

    @property
    def default_runtime(self) -> str:
        return str(self.doc.get("defaultRuntimeVersion") or "")

    def image(self, role: str) -> str:
        return str(self.section("images").get(role) or BUILTIN["images"][role])

    def fetch_image(self, scheme: str) -> str:
        fetch = self.section("images").get("fetch") or {}
        return str(fetch.get(scheme) or BUILTIN["images"]["fetch"][scheme])

    def placement(self, *, machine_type: str, accelerator: Mapping[str, Any] | None) -> Placement:
        """Resources and placement of one replica of ``machine_type`` with an optional accelerator."""
        machine = self.machine(machine_type)
        requests = {k: str(machine[k]) for k in ("cpu", "memory") if machine.get(k)}
        limits = {"memory": requests["memory"]} if "memory" in requests else {}
        selector = dict(machine.get("nodeSelector") or {})
        tolerations = list(machine.get("tolerations") or [])
        acc = accelerator or machine.get("accelerator")
        if acc:
            entry = self.accelerator(str(acc["type"]))
            limits[str(entry.get("resource") or GPU)] = str(acc.get("count", 1))
            selector.update(entry.get("nodeSelector") or {})
            tolerations += [t for t in entry.get("tolerations") or [] if t not in tolerations]
        return Placement(requests, limits, selector, tuple(tolerations))


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """The admin's document over the built-in one: mappings merge key by key, anything else replaces.

    An entry set to null removes it (``machineTypes: {n1-highcpu-96: null}``).
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def from_configmap_text(text: str | None, *, where: str) -> Catalog:
    """The catalog from the ConfigMap's ``catalog.yaml`` merged over the built-in one."""
    if not text:
        return Catalog(BUILTIN)
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OperationFailed(f"catalog {where}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(doc, Mapping):
        raise OperationFailed(f"catalog {where}: catalog.yaml must be a mapping")
    unknown = sorted(set(doc) - set(BUILTIN))
    if unknown:
        raise OperationFailed(f"catalog {where}: unknown section(s) {', '.join(unknown)}")
    return Catalog(merge(BUILTIN, doc), source=f"cluster ({where})")
