"""`kubectl ai-platform jobs submit training --queue Q` under the real Kueue (v0.17.0, with its
webhooks called by kube-apiserver over TLS) and the real Kubeflow operators: training-operator for its
v1 kinds, mpi-operator for MPIJob v2beta1 (every Kubeflow kind Kueue integrates).

Kueue suspends a job its ClusterQueue's GPU quota cannot hold; the plugin shows it QUEUED with
Kueue's own reason (`jobs describe`, `jobs list -o wide`), and once quota frees Kueue admits it, the
operator creates its Pods and the job runs. A queued job's `jobs cancel` stops it for good.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed import releasedjobs
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.gpu_nodes import GPUNode
from kaip_testbed.kubeflow import KubeflowBed
from kaip_testbed.kueue import CLUSTER_QUEUES, WORKLOADS, Kueue
from kaip_testbed.plugins import ai
from kaip_testbed.releasedjobs import write_package
from kaip_testbed.trainingpods import TrainingPods

pytestmark = pytest.mark.integration

NODES = (
    GPUNode("kq-a100-0", product="NVIDIA-A100-SXM4-80GB", kwok="kueue", kwok_taint=False),
    GPUNode("kq-a100-1", product="NVIDIA-A100-SXM4-80GB", kwok="kueue", kwok_taint=False),
)
#: Eight A100s on one replica: the whole quota of the tests' ClusterQueue.
EIGHT_GPUS = (
    "--scale-tier=custom", "--master-machine-type=n1-standard-8", "--master-accelerator=type=nvidia-tesla-a100,count=8",
)  # fmt: skip


@pytest.fixture(scope="module")
def bed(kwok: ControlPlane, admin_kube: Kube) -> Iterator[KubeflowBed]:
    """training-operator (its v1 kinds) beside mpi-operator (MPIJob v2beta1), and Kueue over them."""
    bed = KubeflowBed(kwok, admin_kube, shape="mpi-operator", nodes=NODES)
    try:
        bed.start()
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="module")
def kueue(bed: KubeflowBed) -> Iterator[Kueue]:
    kueue = Kueue(bed.plane, bed.kube)
    try:
        kueue.start()
        yield kueue
    finally:
        kueue.stop()


@pytest.fixture
def quota(kueue: Kueue, namespace: str) -> Iterator[str]:
    """A ClusterQueue of 8 GPUs (named after the namespace) and the namespace's LocalQueue ``gpus``."""
    kueue.gpu_quota(namespace, gpus=8, namespaces=[namespace], local_queue="gpus")
    try:
        yield namespace
    finally:
        kueue.remove_quota(namespace)


@pytest.fixture
def pods(bed: KubeflowBed, kube: Kube, namespace: str, tmp_path: Path) -> Iterator[TrainingPods]:
    package = write_package(tmp_path / "src")
    with TrainingPods(
        kube, bed.plane, namespace=namespace, workdir=tmp_path / "kubelet", code=package.parent
    ) as runner:
        yield runner


def wait_for(predicate: Callable[[], Any], what: str, *, kube: Kube) -> Any:
    def seen() -> str:
        return json.dumps([(w["metadata"]["name"], w.get("status")) for w in kube.list(WORKLOADS)["items"]])

    return releasedjobs.wait_for(predicate, what, seen=seen)


class Plugin:
    """The plugin as the user runs it, in the test's namespace."""

    def __init__(
        self, capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, *, package: Path
    ) -> None:
        self.capsys, self.kubeconfig, self.namespace, self.package = capsys, kubeconfig, namespace, package

    def __call__(self, *args: str) -> tuple[int, str, str]:
        return ai(self.capsys, self.kubeconfig, self.namespace, *args)

    def submit(self, job: str, *flags: str, release: Path) -> None:
        code, _, err = self(
            "jobs", "submit", "training", job, "--module-name=trainer.task", f"--package-path={self.package}",
            "--master-image-uri=registry.local/train:1", "--queue=gpus", *flags, "--", f"--release={release}",
        )  # fmt: skip
        assert code == 0, err

    def describe(self, job: str) -> dict[str, Any]:
        code, out, err = self("jobs", "describe", job, "-o", "json")
        assert code == 0, err
        found: dict[str, Any] = json.loads(out)
        return found

    def state(self, job: str) -> str:
        return str(self.describe(job)["state"])

    def wide_row(self, job: str) -> str:
        code, out, err = self("jobs", "list", "-o", "wide")
        assert code == 0, err
        (row,) = [line for line in out.splitlines() if line.startswith(job + " ")]
        return row


@pytest.fixture
def plugin(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, pods: TrainingPods, tmp_path: Path
) -> Plugin:
    """The plugin; the package is the one the pods fixture wrote (the runner has it on PYTHONPATH)."""
    return Plugin(capsys, kubeconfig, namespace, package=tmp_path / "src" / "trainer")


def test_a_job_over_quota_waits_queued_with_kueues_reason_and_runs_when_quota_frees(
    plugin: Plugin, quota: str, kube: Kube, pods: TrainingPods, tmp_path: Path
) -> None:
    first, second, third = (tmp_path / f"release-{i}" for i in range(3))
    plugin.submit("first", *EIGHT_GPUS, release=first)
    wait_for(lambda: plugin.state("first") == "RUNNING", "the first job to run", kube=kube)
    described = plugin.describe("first")
    assert described["kubernetes"]["scheduling"]["queue"] == {
        "name": "gpus", "admitted": True, "workload": described["kubernetes"]["scheduling"]["queue"]["workload"],
        "clusterQueue": quota,
    }  # fmt: skip

    # The quota is spent: Kueue suspends the next job and says why; no Pod of it exists.
    plugin.submit("second", *EIGHT_GPUS, release=second)
    wait_for(lambda: "insufficient" in json.dumps(plugin.describe("second")), "Kueue's reason", kube=kube)
    described = plugin.describe("second")
    assert described["state"] == "QUEUED"
    assert described["stateReason"].startswith("waiting in queue gpus: ")
    assert "nvidia.com/gpu" in described["stateReason"]
    assert described["kubernetes"]["scheduling"]["queue"]["admitted"] is False
    row = plugin.wide_row("second")
    assert row.split()[1] == "QUEUED" and "gpus (waiting)" in row and "waiting in queue gpus" in row
    assert not [p for p in kube.list(kinds.PODS)["items"] if p["metadata"]["name"].startswith("second-")]

    # A queued job cancelled: CANCELLED, and it stays so when quota frees (its Workload is deactivated).
    plugin.submit("third", *EIGHT_GPUS, release=third)
    code, _, err = plugin("jobs", "cancel", "third")
    assert code == 0, err
    assert plugin.state("third") == "CANCELLED"

    first.touch()
    wait_for(lambda: plugin.state("first") == "SUCCEEDED", "the first job to end", kube=kube)
    wait_for(lambda: plugin.state("second") == "RUNNING", "the second job to be admitted and run", kube=kube)
    assert plugin.describe("second")["kubernetes"]["scheduling"]["queue"]["admitted"] is True
    assert "gpus (admitted)" in plugin.wide_row("second")
    third_view = plugin.describe("third")
    assert third_view["state"] == "CANCELLED"
    assert third_view["kubernetes"]["scheduling"]["queue"]["admitted"] is False
    assert not [p for p in kube.list(kinds.PODS)["items"] if p["metadata"]["name"].startswith("third-")]
    second.touch()
    wait_for(lambda: plugin.state("second") == "SUCCEEDED", "the second job to end", kube=kube)
    # All quota free, and Kueue neither admits nor keeps the cancelled job pending: it stays cancelled.
    wait_for(lambda: idle(kube, quota), "the ClusterQueue to be idle", kube=kube)
    assert plugin.state("third") == "CANCELLED"
    assert not [p for p in kube.list(kinds.PODS)["items"] if p["metadata"]["name"].startswith("third-")]


def idle(kube: Kube, cluster_queue: str) -> bool:
    status = kube.get(CLUSTER_QUEUES, cluster_queue).get("status") or {}
    counts = [status.get(k) for k in ("pendingWorkloads", "reservingWorkloads", "admittedWorkloads")]
    return counts == [0, 0, 0]


KINDS = {
    # framework: flags beyond the queue; every replica asks for GPUs, 8 in all (the quota made room for).
    "pytorch": ["--worker-count=1", "--worker-machine-type=n1-standard-8",
                "--worker-accelerator=type=nvidia-tesla-a100,count=4", "--scale-tier=custom",
                "--master-machine-type=n1-standard-8", "--master-accelerator=type=nvidia-tesla-a100,count=4"],
    "xgboost": list(EIGHT_GPUS),
    "jax": list(EIGHT_GPUS),
    "paddle": list(EIGHT_GPUS),
    "tensorflow": list(EIGHT_GPUS),
}  # fmt: skip


@pytest.mark.parametrize("framework", [*KINDS, "mpi"])
def test_every_kind_kueue_integrates_is_held_by_the_queue_until_quota_is_there(
    plugin: Plugin, quota: str, kueue: Kueue, kube: Kube, tmp_path: Path, framework: str
) -> None:
    kueue.set_gpus(quota, 0)
    job = f"held_{framework}"
    release = tmp_path / "release"
    release.touch()
    if framework == "mpi":
        # MPIJob v2beta1 (mpi-operator): no package staging; the image holds the code.
        code, _, err = plugin(
            "jobs", "submit", "training", job, "--framework=mpi", "--module-name=trainer.task",
            "--master-image-uri=registry.local/horovod:1", "--scale-tier=custom", "--master-machine-type=n1-standard-4",
            "--worker-machine-type=n1-standard-8", "--worker-count=2", "--worker-accelerator=type=nvidia-tesla-a100,count=4",
            "--queue=gpus", "--", f"--release={release}",
        )  # fmt: skip
        assert code == 0, err
    else:
        plugin.submit(job, f"--framework={framework}", *KINDS[framework], release=release)
    wait_for(lambda: "insufficient" in json.dumps(plugin.describe(job)), "Kueue's reason", kube=kube)
    described = plugin.describe(job)
    assert described["state"] == "QUEUED" and "waiting in queue gpus" in described["stateReason"]
    kueue.set_gpus(quota, 8)
    wait_for(
        lambda: plugin.state(job) in ("RUNNING", "SUCCEEDED"), f"{job} to be admitted and run", kube=kube
    )
    assert plugin.describe(job)["kubernetes"]["scheduling"]["queue"]["admitted"] is True
