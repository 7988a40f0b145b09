"""The built-in catalog: AI Platform's documented machine types, scale tiers and accelerators (with
the GPU product names that select their nodes) and the runtime versions' images, as
:mod:`kaip.aiplatform.catalog` reads them and the cluster admin's ConfigMap overrides them. Each fact
names its source. Pure data.
"""

from __future__ import annotations

from typing import Any

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
    # gang (under volcano or scheduler-plugins): multiReplicaGPU | always | never (kaip.aiplatform.scheduling).
    "scheduling": {"queueing": "kueue", "gang": "multiReplicaGPU"},
    "secondaryNetworks": {},
    # Per-namespace UID/GID/fsGroup and --exclusive defaults (kaip.aiplatform.tenancy).
    "tenancy": {},
    # Kubeflow Trainer v2: the backend of `jobs submit training` (auto: Trainer v2 for the frameworks
    # it serves when the cluster serves TrainJob) and the ClusterTrainingRuntime of each framework.
    "trainer": {
        "backend": "auto",
        "runtimes": {
            "pytorch": "torch-distributed",
            "mpi": "mpi-distributed",
            "deepspeed": "deepspeed-distributed",
        },
    },
}
