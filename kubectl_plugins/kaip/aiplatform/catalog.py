"""The cluster catalog: what gcloud's machine types, accelerators, scale tiers and runtime versions
mean on this cluster (resources, node selection, tolerations, images).

Built-in defaults below follow AI Platform's documented machine types and tiers; the cluster admin
overrides or extends any entry with the ConfigMap ``kaip-system/ai-platform-catalog`` (key
``catalog.yaml``, the same layout as :data:`BUILTIN`). Pure: parsing, merging and lookups.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaip.errors import OperationFailed, UsageError

GPU = "nvidia.com/gpu"
_GPU_TAINT = ({"key": GPU, "operator": "Exists", "effect": "NoSchedule"},)

#: The node label NVIDIA GPU feature discovery (GFD) sets to the GPU's name as the driver reports it
#: (``nvidia-smi --query-gpu=name``) with every space turned into '-': "Tesla V100-SXM2-16GB" becomes
#: ``Tesla-V100-SXM2-16GB``. Source: NVIDIA/k8s-device-plugin docs/gpu-feature-discovery/README.md
#: ("Generated Labels") and the labeler, NVIDIA/gpu-feature-discovery internal/lm/resource.go
#: (``productLabel``). With GFD's MIG strategy "mixed" this label keeps the parent GPU's name and each
#: slice is its own resource ``nvidia.com/mig-<profile>`` (internal/lm/mig-strategy.go,
#: ``newMigStrategyMixedLabeler``); with "single" the slices are counted as ``nvidia.com/gpu`` and the
#: label becomes ``<parent>-MIG-<profile>`` (``newMigStrategySingleLabeler``; README example
#: ``A100-SXM4-40GB-MIG-1g.5gb``). The strategy in use is in label ``nvidia.com/mig.strategy``.
PRODUCT_LABEL = "nvidia.com/gpu.product"


def _n1(kind: str, per_cpu_gib: float, sizes: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    return {f"n1-{kind}-{n}": {"cpu": str(n), "memory": f"{round(n * per_cpu_gib * 1024)}Mi"} for n in sizes}


def _a2(gpus: int, cpus: int, memory_gib: int) -> dict[str, Any]:
    return {
        "cpu": str(cpus),
        "memory": f"{memory_gib}Gi",
        "accelerator": {"type": "nvidia-tesla-a100", "count": gpus},
    }


# GPU names as drivers report them (nvidia-smi --query-gpu=name) in GFD's form. No NVIDIA document
# lists them all: the strings were cross-checked against public manifests and node listings that
# select on nvidia.com/gpu.product (GitHub code search), and drivers before R470 left "NVIDIA " off the
# A100's name (GFD's README example above), hence both forms for it. One gcloud type stands for every
# board of its GPU: PCIe and SXM, each memory size (an 80GB A100 serves any job a 40GB one does; ask
# for nvidia-a100-80gb to insist on 80GB). Admins add the names their nodes carry.
_A100_40GB = ["NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB", "A100-SXM4-40GB", "A100-PCIE-40GB"]
_A100_80GB = ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe", "A100-SXM4-80GB", "A100-80GB-PCIe"]
_H100_80GB = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"]
_PRODUCTS: dict[str, list[str]] = {
    # gcloud ai-platform's accelerator types (https://cloud.google.com/ai-platform/training/docs/using-gpus)
    "nvidia-tesla-k80": ["Tesla-K80"],
    "nvidia-tesla-p4": ["Tesla-P4"],
    "nvidia-tesla-p100": ["Tesla-P100-PCIE-16GB", "Tesla-P100-PCIE-12GB", "Tesla-P100-SXM2-16GB"],
    "nvidia-tesla-t4": ["Tesla-T4"],
    "nvidia-tesla-v100": [
        "Tesla-V100-SXM2-16GB",
        "Tesla-V100-SXM2-32GB",
        "Tesla-V100-SXM3-32GB",
        "Tesla-V100-PCIE-16GB",
        "Tesla-V100-PCIE-32GB",
        "Tesla-V100S-PCIE-32GB",
    ],
    "nvidia-tesla-a100": _A100_40GB + _A100_80GB,
    # Later GPUs under Compute Engine's names for them (https://cloud.google.com/compute/docs/gpus)
    "nvidia-a100-80gb": _A100_80GB,
    "nvidia-h100-80gb": _H100_80GB,
    "nvidia-l4": ["NVIDIA-L4"],
}
# MIG profiles per parent GPU: NVIDIA's MIG user guide, "Supported MIG Profiles"
# (https://docs.nvidia.com/datacenter/tesla/mig-user-guide/#supported-mig-profiles).
_MIG: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "nvidia-a100-mig": (_A100_40GB, ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")),
    "nvidia-a100-80gb-mig": (_A100_80GB, ("1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")),
    "nvidia-h100-80gb-mig": (_H100_80GB, ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")),
}


def _accelerators() -> dict[str, dict[str, Any]]:
    """Whole GPUs as ``nvidia.com/gpu``; MIG slices as GFD's mixed strategy names them, on nodes whose
    product is the parent GPU (mixed) or the slice itself (single: see docs/ai-platform.md)."""
    out = {
        name: {"resource": GPU, "products": list(products), "tolerations": list(_GPU_TAINT)}
        for name, products in _PRODUCTS.items()
    }
    for prefix, (parents, profiles) in _MIG.items():
        for profile in profiles:
            out[f"{prefix}-{profile}"] = {
                "resource": f"nvidia.com/mig-{profile}",
                "products": [*parents, *(f"{p}-MIG-{profile}" for p in parents)],
                "tolerations": list(_GPU_TAINT),
            }
    return out


def _images(python: str, cpu: str, gpu: str | None = None) -> dict[str, dict[str, str]]:
    return {python: {"cpu": cpu, "gpu": gpu or cpu}}


# Runtime versions: per framework, per Python version the image carries, an image for CPU replicas
# and one for GPU replicas. Where each image's Python comes from:
# - tensorflow/tensorflow up to 2.13: tensorflow/tensorflow tensorflow/tools/dockerfiles (spec.yml,
#   partials/ubuntu/version and python: TensorFlow goes into the Ubuntu release's python3). 1.15:
#   Ubuntu 18.04, Python 3.6 (as tensorflow/tensorflow#41153 shows for the images of that base);
#   2.11.0: the image's layer history reads FROM ubuntu:20.04 and pip-installs TensorFlow with
#   python3, i.e. 3.8. The Python 2 images of 1.x are left out.
# - tensorflow/tensorflow 2.14 and later: tensorflow/build tensorflow_runtime_dockerfiles/{cpu,gpu}.
#   Dockerfile (ARG PYTHON_VERSION=python3.11; tensorflow/tensorflow#82529 shows 3.11 in the image).
#   2.15.1 has no image on Docker Hub (rlan/notebooks#136), hence 2.15.0.
# - pytorch/pytorch: pytorch/pytorch docker.Makefile (PYTHON_VERSION 3.10 with CUDA 11.6 for 1.13,
#   3.10 for the 2.1 images); one CUDA image serves CPU replicas too.
# - horovod/horovod, horovod/horovod-cpu: horovod/horovod docker/horovod{,-cpu}/Dockerfile
#   (ARG PYTHON_VERSION=3.8 on Ubuntu 20.04); 0.28.1 is Horovod's last release.
# - paddlepaddle/paddle: PaddlePaddle/Paddle tools/dockerfile/Dockerfile.release18 (python3.7, the
#   2.4 images) and Dockerfile.release.ubuntu20 (python3.10, the 2.6 images).
# - xgboost: no XGBoost project image; RAPIDS images carry it (the "rapids" conda package) and run on
#   CPU nodes too. rapidsai/docker generated-dockerfiles/rapidsai-core_ubuntu22.04-runtime.amd64.
#   Dockerfile (PYTHON_VER=3.10, the rapids env first on PATH) and rapidsai/docker Dockerfile
#   (rapidsai/base: PYTHON_VER=3.10 into the base env); the tag names the Python too.
# - jax: no JAX project image; NVIDIA's (NGC nvcr.io/nvidia/jax, built by NVIDIA/JAX-Toolbox
#   .github/container/Dockerfile.base: Ubuntu 22.04's python3, 3.10). JAX falls back to its CPU
#   backend where no GPU is present, so it serves CPU replicas too.
_RUNTIMES: dict[str, dict[str, Any]] = {
    "1.15": {
        "images": {
            "tensorflow": _images(
                "3.6", "tensorflow/tensorflow:1.15.5-py3", "tensorflow/tensorflow:1.15.5-gpu-py3"
            ),
        },
    },
    "2.11": {
        "images": {
            "tensorflow": _images("3.8", "tensorflow/tensorflow:2.11.0", "tensorflow/tensorflow:2.11.0-gpu"),
            "pytorch": _images("3.10", "pytorch/pytorch:1.13.1-cuda11.6-cudnn8-runtime"),
            "xgboost": _images("3.10", "rapidsai/rapidsai-core:23.06-cuda11.8-runtime-ubuntu22.04-py3.10"),
            "jax": _images("3.10", "nvcr.io/nvidia/jax:23.10-py3"),
            "paddle": _images(
                "3.7", "paddlepaddle/paddle:2.4.2", "paddlepaddle/paddle:2.4.2-gpu-cuda11.7-cudnn8.4-trt8.4"
            ),
            "mpi": _images("3.8", "horovod/horovod-cpu:0.28.1", "horovod/horovod:0.28.1"),
        },
    },
    "2.15": {
        "images": {
            "tensorflow": _images("3.11", "tensorflow/tensorflow:2.15.0", "tensorflow/tensorflow:2.15.0-gpu"),
            "pytorch": _images("3.10", "pytorch/pytorch:2.1.2-cuda12.1-cudnn8-runtime"),
            "xgboost": _images("3.10", "rapidsai/base:23.12-cuda12.0-py3.10"),
            "jax": _images("3.10", "nvcr.io/nvidia/jax:23.10-py3"),
            "paddle": _images(
                "3.10", "paddlepaddle/paddle:2.6.0", "paddlepaddle/paddle:2.6.0-gpu-cuda11.7-cudnn8.4-trt8.4"
            ),
            "mpi": _images("3.8", "horovod/horovod-cpu:0.28.1", "horovod/horovod:0.28.1"),
        },
    },
}

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
    "accelerators": _accelerators(),
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
    "runtimeVersions": _RUNTIMES,
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
    #: Node selector requirements that must all hold (one required node affinity term).
    match_expressions: tuple[Mapping[str, Any], ...] = ()


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


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

    # -- images ----------------------------------------------------------------------------------
    def runtime_image(self, *, version: str, framework: str, python: str | None, gpu: bool) -> str:
        """The image of ``framework`` in runtime ``version`` that carries ``python`` (default: the
        newest Python served), for a GPU replica or a CPU one."""
        images = self.runtime(version).get("images") or {}
        images = images if isinstance(images, Mapping) else {}
        entry = images.get(framework)
        if isinstance(entry, Mapping) and ("cpu" in entry or "gpu" in entry):
            return self._flat_image(entry, version=version, framework=framework, python=python, gpu=gpu)
        where = f"runtimeVersions.{version}.images.{framework}"
        by_python = self._by_python(entry, where=where) if isinstance(entry, Mapping) else {}
        if not by_python:
            frameworks = ", ".join(sorted(str(k) for k, v in images.items() if v)) or "none"
            raise UsageError(
                f"runtime version {version} has no image for --framework {framework} in the {self.source} "
                f"catalog (frameworks served: {frameworks}); give --master-image-uri or ask the admin to "
                "add one"
            )
        served = sorted(by_python, key=_version_key)
        chosen = python or served[-1]
        if chosen not in by_python:
            raise UsageError(
                f"--python-version {chosen} is not served with runtime version {version} for --framework "
                f"{framework} (served: {', '.join(served)})"
            )
        variant = "gpu" if gpu else "cpu"
        image = by_python[chosen].get(variant)
        if not image:
            others = [p for p in served if by_python[p].get(variant)]
            hint = f" (Python versions with one: {', '.join(others)})" if others else ""
            raise UsageError(
                f"runtime version {version} has no {variant.upper()} image for --framework {framework} with "
                f"Python {chosen} in the {self.source} catalog{hint}; give --master-image-uri or ask the "
                "admin to add one"
            )
        return str(image)

    def _by_python(self, entry: Mapping[Any, Any], *, where: str) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        for key, images in entry.items():
            if not isinstance(key, str):
                # YAML reads 3.10 as the number 3.1: refuse rather than serve the wrong Python.
                raise OperationFailed(
                    f"catalog {self.source}: {where}: Python version {key!r} must be a quoted string "
                    '(e.g. "3.10")'
                )
            if isinstance(images, Mapping):
                out[key] = images
            elif images is not None:
                raise OperationFailed(
                    f"catalog {self.source}: {where}.{key} must be a mapping with keys cpu and gpu"
                )
        return out

    def _flat_image(
        self, entry: Mapping[str, Any], *, version: str, framework: str, python: str | None, gpu: bool
    ) -> str:
        """The layout before per-Python images (``images.FRAMEWORK.{cpu,gpu}``), still honoured for
        admins' catalogs: one image for every Python in the runtime's ``pythonVersions``."""
        allowed = [str(v) for v in self.runtime(version).get("pythonVersions") or []]
        if python and allowed and python not in allowed:
            raise UsageError(
                f"--python-version {python} is not served with runtime version {version} for --framework "
                f"{framework} (served: {', '.join(allowed)})"
            )
        image = entry.get("gpu" if gpu else "cpu") or entry.get("cpu")
        if not image:
            raise UsageError(
                f"runtime version {version} has no image for --framework {framework} in the {self.source} "
                "catalog; give --master-image-uri or ask the admin to add one"
            )
        return str(image)

    # -- placement -------------------------------------------------------------------------------
    def placement(
        self, *, machine_type: str, accelerator: Mapping[str, Any] | None, region: str | None = None
    ) -> Placement:
        """Resources and placement of one replica of ``machine_type`` with an optional accelerator,
        in an optional catalog region."""
        machine = self.machine(machine_type)
        requests = {k: str(machine[k]) for k in ("cpu", "memory") if machine.get(k)}
        limits = {"memory": requests["memory"]} if "memory" in requests else {}
        tolerations = list(machine.get("tolerations") or [])
        sources: list[tuple[str, Mapping[str, Any]]] = [(f"machineTypes.{machine_type}", machine)]
        products: list[str] = []
        acc = accelerator or machine.get("accelerator")
        if acc:
            name = str(acc["type"])
            entry = self.accelerator(name)
            limits[str(entry.get("resource") or GPU)] = str(acc.get("count", 1))
            tolerations += [t for t in entry.get("tolerations") or [] if t not in tolerations]
            sources.append((f"accelerators.{name}", entry))
            products = self._strings(entry.get("products"), where=f"accelerators.{name}.products")
        where = self.region(region) if region else None
        if where is not None:
            sources.append((f"regions.{region}", where))
        selector, expressions = self._node_selection(sources, products)
        return Placement(requests, limits, selector, tuple(tolerations), tuple(expressions))

    def _node_selection(
        self, sources: Sequence[tuple[str, Mapping[str, Any]]], products: Sequence[str]
    ) -> tuple[dict[str, str], list[Mapping[str, Any]]]:
        """Node selectors merged in order (a later one wins a key) and the requirements, all ANDed.

        An explicit choice of the product label (a ``nodeSelector`` or a ``matchExpressions`` entry on
        it) overrides the accelerator's ``products``, so the two never contradict each other."""
        selector: dict[str, str] = {}
        expressions: list[Mapping[str, Any]] = []
        for where, entry in sources:
            selector.update({str(k): str(v) for k, v in (entry.get("nodeSelector") or {}).items()})
            for requirement in self._requirements(entry.get("matchExpressions"), where=where):
                if requirement not in expressions:
                    expressions.append(requirement)
        constrained = set(selector) | {str(e.get("key")) for e in expressions}
        if products and PRODUCT_LABEL not in constrained:
            expressions.append({"key": PRODUCT_LABEL, "operator": "In", "values": list(products)})
        return selector, expressions

    def _strings(self, value: Any, *, where: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, (str, Mapping)) or not isinstance(value, Iterable):
            raise OperationFailed(
                f"catalog {self.source}: {where} must be a list (of {PRODUCT_LABEL} values)"
            )
        return [str(v) for v in value]

    def _requirements(self, value: Any, *, where: str) -> list[Mapping[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise OperationFailed(f"catalog {self.source}: {where}.matchExpressions must be a list")
        for item in value:
            if not isinstance(item, Mapping) or not item.get("key") or not item.get("operator"):
                raise OperationFailed(
                    f"catalog {self.source}: {where}.matchExpressions entries need key, operator "
                    "(and values for In, NotIn, Gt, Lt), as in a Pod's node affinity"
                )
        return [copy.deepcopy(dict(item)) for item in value]  # the rendered job never shares a list


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
