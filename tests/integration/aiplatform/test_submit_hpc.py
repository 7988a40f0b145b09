"""`jobs submit training` for HPC jobs against the real API server with Kubeflow's CRDs: existing PVCs
(``--volume``) checked before anything is created, and RDMA networks, tenancy and ``--exclusive``
accepted by kube-apiserver as rendered (strict field validation, nothing pruned)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources import kubeflow as kf
from kaip_testbed.catalog import HPC_CATALOG, admin_catalog
from kaip_testbed.plugins import ai

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kubeflow")]

TWO_WORKERS = (
    "--master-image-uri=registry.local/train:1", "--scale-tier=custom", "--master-machine-type=n1-standard-8",
    "--worker-count=2", "--worker-machine-type=n1-standard-8",
)  # fmt: skip


def submit(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, *args: str
) -> tuple[int, str, str]:
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "submit", "training", *args)
    return code, out, " ".join(err.split())


def claim(kube: Kube, name: str, *modes: str) -> None:
    spec = {"accessModes": list(modes), "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": ""}
    kube.create(kinds.PVCS, {"metadata": {"name": name}, "spec": spec})


def test_a_volume_is_checked_against_its_claim_before_anything_is_created(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    code, _, err = submit(capsys, kubeconfig, namespace, "j1", *TWO_WORKERS, "--volume=fast=pvc:lustre:/fast")
    assert code == 2
    assert (
        f"error: --volume fast: PersistentVolumeClaim lustre not found in namespace {namespace}; name an "
        "existing claim ('kubectl get pvc') or create it first"
    ) in err
    claim(kube, "scratch", "ReadWriteOnce")
    code, _, err = submit(
        capsys, kubeconfig, namespace, "j1", *TWO_WORKERS, "--volume=s=pvc:scratch:/scratch"
    )
    assert (
        code == 2 and "--volume s: PVC scratch is ReadWriteOnce, which cannot serve the job's 3 Pods" in err
    )
    claim(kube, "archive", "ReadOnlyMany")
    code, _, err = submit(
        capsys, kubeconfig, namespace, "j1", *TWO_WORKERS, "--volume=a=pvc:archive:/archive"
    )
    assert code == 2 and "which mounts only read-only; add :ro" in err
    assert kube.list(kf.TFJOBS)["items"] == []  # refused before anything was created
    # One replica may have a ReadWriteOnce claim; many a ReadOnlyMany one read-only.
    code, _, err = submit(
        capsys, kubeconfig, namespace, "one", "--master-image-uri=i", "--volume=s=pvc:scratch:/scratch"
    )
    assert code == 0, err
    claim(kube, "lustre", "ReadWriteMany")
    code, out, err = submit(
        capsys, kubeconfig, namespace, "many", *TWO_WORKERS, "-o", "yaml",
        "--volume=fast=pvc:lustre:/fast", "--volume=a=pvc:archive:/archive:ro",
    )  # fmt: skip
    assert code == 0, err
    sent = yaml.safe_load(out)
    stored = kube.get(kf.TFJOBS, "many")
    assert stored["spec"] == sent["spec"]  # the server kept every field
    worker = stored["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert {"name": "a", "persistentVolumeClaim": {"claimName": "archive", "readOnly": True}} in worker[
        "volumes"
    ]


@pytest.fixture
def hpc_catalog(admin_kube: Kube) -> Iterator[None]:
    """The admin's catalog with a RoCE network and tenants."""
    with admin_catalog(admin_kube, HPC_CATALOG):
        yield


def pod_specs(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t: r["template"] for t, r in job["spec"]["mpiReplicaSpecs"].items()}


@pytest.mark.usefixtures("hpc_catalog")
def test_the_tenants_ids_a_roce_network_and_exclusive_cpus_are_accepted_by_the_api_server(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube, admin_kube: Kube
) -> None:
    admin_kube.patch(kinds.NAMESPACES, namespace, {"metadata": {"labels": {"kaip.dev/tenant": "lab-a"}}})
    args = (
        "--framework=mpi", "--module-name=tf_cnn_benchmarks", "--master-image-uri=horovod/horovod:0.28.1",
        "--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-count=2",
        "--worker-machine-type=a2-highgpu-8g", "--secondary-network=roce", "--run-as-user=30001",
    )  # fmt: skip
    code, out, err = submit(capsys, kubeconfig, namespace, "bench", *args, "--dry-run=server")
    assert code == 0 and "created (server dry run)" in out, err
    code, out, err = submit(capsys, kubeconfig, namespace, "bench", *args, "-o", "yaml")
    assert code == 0, err
    stored = kube.get(kf.MPIJOBS, "bench")
    assert stored["spec"] == yaml.safe_load(out)["spec"]
    for rtype, template in pod_specs(stored).items():
        spec = template["spec"]
        # The flag wins over the tenant's UID; the tenant gives the rest.
        assert spec["securityContext"] == {"runAsUser": 30001, "runAsGroup": 20001, "fsGroup": 20001}
        main = spec["containers"][0]
        assert main["resources"]["requests"] == main["resources"]["limits"], rtype
        assert main["securityContext"] == {"capabilities": {"add": ["IPC_LOCK"]}}
        assert {"name": "NCCL_IB_GID_INDEX", "value": "3"} in main["env"]
        assert template["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "roce-net@net1"
    worker = pod_specs(stored)["Worker"]["spec"]["containers"][0]["resources"]["limits"]
    assert worker == {"cpu": "96", "memory": "680Gi", "nvidia.com/gpu": "8", "rdma/rdma_shared_device_a": "1"}
