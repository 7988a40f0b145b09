"""Gang scheduling for real: `kubectl ai-platform jobs submit training --scheduler scheduler-plugins`
under training-operator run with ``--gang-scheduler-name`` and scheduler-plugins' coscheduling
scheduler (beside the bed's kube-scheduler), on kwok GPU nodes.

The issue's scenario: 6 replicas of 4 GPUs (24 GPUs) on two nodes of 8. Under kube-scheduler alone
(the issue's report) the replicas that fit started and held 16 GPUs for nothing; gang-scheduled (the
catalog's default for a job of more than one replica on GPUs) no Pod starts, and `jobs list -o wide` /
`describe` say why; a job that fits beside it starts all its replicas at once. The same for
mpi-operator's MPIJob v2beta1 (launcher and workers in one gang).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.kube.objects import condition_of
from kaip.resources import kinds
from kaip_testbed import releasedjobs
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.coscheduling import PODGROUPS, SCHEDULER_NAME, Coscheduling
from kaip_testbed.gpu_nodes import GPUNode
from kaip_testbed.kubeflow import KubeflowBed
from kaip_testbed.plugins import ai
from kaip_testbed.releasedjobs import write_package
from kaip_testbed.trainingpods import TrainingPods

pytestmark = pytest.mark.integration

NODES = (
    GPUNode("gang-a100-0", product="NVIDIA-A100-SXM4-80GB", kwok="gang", kwok_taint=False),
    GPUNode("gang-a100-1", product="NVIDIA-A100-SXM4-80GB", kwok="gang", kwok_taint=False),
)
FOUR_BY_FOUR = (
    "--framework=pytorch", "--scale-tier=custom",
    "--master-machine-type=n1-standard-8", "--master-accelerator=type=nvidia-tesla-a100,count=4",
    "--worker-count=3", "--worker-machine-type=n1-standard-8", "--worker-accelerator=type=nvidia-tesla-a100,count=4",
)  # fmt: skip
SIX_BY_FOUR = (
    "--framework=pytorch", "--scale-tier=custom",
    "--master-machine-type=n1-standard-8", "--master-accelerator=type=nvidia-tesla-a100,count=4",
    "--worker-count=5", "--worker-machine-type=n1-standard-8", "--worker-accelerator=type=nvidia-tesla-a100,count=4",
)  # fmt: skip


@pytest.fixture(scope="module")
def coscheduling(kwok: ControlPlane, admin_kube: Kube) -> Iterator[Coscheduling]:
    gang = Coscheduling(kwok, admin_kube)
    try:
        gang.start()
        yield gang
    finally:
        gang.stop()


@pytest.fixture(scope="module")
def bed(coscheduling: Coscheduling, request: pytest.FixtureRequest) -> Iterator[KubeflowBed]:
    """The operators with gang scheduling through the coscheduling scheduler (its PodGroup CRD is
    installed first: they check for it when they start): training-operator, or beside it mpi-operator."""
    bed = KubeflowBed(
        coscheduling.plane,
        coscheduling.kube,
        shape=request.param,
        nodes=NODES,
        gang_scheduler=SCHEDULER_NAME,
    )
    try:
        bed.start()
        yield bed
    finally:
        bed.stop()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return write_package(tmp_path / "src")


@pytest.fixture
def pods(
    bed: KubeflowBed, kube: Kube, namespace: str, package: Path, tmp_path: Path
) -> Iterator[TrainingPods]:
    with TrainingPods(
        kube, bed.plane, namespace=namespace, workdir=tmp_path / "kubelet", code=package.parent
    ) as runner:
        yield runner


def wait_for(predicate: Callable[[], Any], what: str, *, kube: Kube) -> Any:
    def seen() -> str:
        return json.dumps(
            [(p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status")) for p in job_pods(kube)]
        )

    return releasedjobs.wait_for(predicate, what, seen=seen)


def job_pods(kube: Kube, job: str = "wide") -> list[dict[str, Any]]:
    return list(kube.list(kinds.PODS, label_selector=f"training.kubeflow.org/job-name={job}")["items"])


def rejected(pod: dict[str, Any]) -> bool:
    cond = condition_of(pod, "PodScheduled")
    return cond is not None and cond.get("status") == "False"


def turned_away(kube: Kube, job: str, *, replicas: int) -> dict[str, Any]:
    """Wait until the operator's PodGroup for ``job`` asks for all ``replicas`` and the coscheduling
    scheduler has turned every one of them away; none may be bound. Returns the PodGroup."""
    group: dict[str, Any] = wait_for(lambda: kube.list(PODGROUPS)["items"], "the PodGroup", kube=kube)[0]
    assert group["metadata"]["name"] == job and group["spec"]["minMember"] == replicas
    wait_for(
        lambda: len(found := job_pods(kube, job)) == replicas and all(rejected(p) for p in found),
        f"the scheduler to turn the {replicas} replicas of {job} away",
        kube=kube,
    )
    assert {p["spec"]["schedulerName"] for p in job_pods(kube, job)} == {SCHEDULER_NAME}
    assert not [p for p in job_pods(kube, job) if p["spec"].get("nodeName")]
    return group


@pytest.mark.parametrize("bed", ["training-operator"], indirect=True, scope="module")
def test_a_gang_that_does_not_fit_starts_no_pod_and_one_that_fits_starts_whole(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    pods: TrainingPods,
    package: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "wide", "--module-name=trainer.task", f"--package-path={package}",
        "--master-image-uri=registry.local/train:1", "--scheduler=scheduler-plugins", *SIX_BY_FOUR,
        "--", f"--release={release}",
    )  # fmt: skip
    assert code == 0, err
    # The operator made the PodGroup from kaip's schedulingPolicy (all six replicas or none); 24 GPUs
    # asked, 16 there: the coscheduling scheduler turns every replica away, none is bound.
    group = turned_away(kube, "wide", replicas=6)
    assert group["spec"]["minResources"]["nvidia.com/gpu"] == "24"
    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "describe", "wide", "-o", "json")
    described = json.loads(out)
    assert described["state"] == "PREPARING" and "cannot be scheduled" in described["stateReason"]
    assert described["kubernetes"]["scheduling"]["gang"]["minMember"] == 6
    assert described["kubernetes"]["scheduling"]["gang"]["running"] == 0
    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "wide")
    (row,) = [line for line in out.splitlines() if line.startswith("wide ")]
    assert " 0/6 " in row

    # A job that fits (4 replicas of 4 GPUs): the waiting gang holds no GPU, so all four start together.
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "fits", "--module-name=trainer.task", f"--package-path={package}",
        "--master-image-uri=registry.local/train:1", "--scheduler=scheduler-plugins", *FOUR_BY_FOUR,
        "--", f"--release={release}",
    )  # fmt: skip
    assert code == 0, err
    wait_for(lambda: len(pods.ran) == 4, "the four replicas that fit to run", kube=kube)
    assert sorted(p["spec"]["nodeName"] for p in job_pods(kube, "fits")) == sorted(
        [n.name for n in NODES] * 2
    )

    def running_whole() -> bool:
        _, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "wide")
        (row,) = [line for line in out.splitlines() if line.startswith("fits ")]
        return row.split()[1] == "RUNNING" and " 4/4 " in row

    wait_for(running_whole, "the job that fits to run whole", kube=kube)
    assert not [p for p in job_pods(kube) if p["spec"].get("nodeName")]  # the other still holds nothing
    release.touch()


@pytest.mark.parametrize("bed", ["mpi-operator"], indirect=True, scope="module")
def test_an_mpi_job_starts_its_launcher_and_workers_together_or_not_at_all(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    pods: TrainingPods,
    tmp_path: Path,
) -> None:
    """The seed's Horovod job: mpi-operator's launcher and three 8-GPU workers (24 GPUs) on 16."""
    release = tmp_path / "release"
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "ring", "--framework=mpi", "--module-name=trainer.task",
        "--master-image-uri=registry.local/horovod:1", "--scheduler=scheduler-plugins", "--scale-tier=custom",
        "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-8", "--worker-count=3",
        "--worker-accelerator=type=nvidia-tesla-a100,count=8", "--", f"--release={release}",
    )  # fmt: skip
    assert code == 0, err
    turned_away(kube, "ring", replicas=4)  # the launcher and the three workers

    # A launcher and one 8-GPU worker fit: both start together.
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "duo", "--framework=mpi", "--module-name=trainer.task",
        "--master-image-uri=registry.local/horovod:1", "--scheduler=scheduler-plugins", "--scale-tier=custom",
        "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-8", "--worker-count=1",
        "--worker-accelerator=type=nvidia-tesla-a100,count=8", "--", f"--release={release}",
    )  # fmt: skip
    assert code == 0, err
    wait_for(
        lambda: len([p for p in job_pods(kube, "duo") if p["spec"].get("nodeName")]) == 2,
        "the launcher and its worker to be placed together",
        kube=kube,
    )
    assert not [p for p in job_pods(kube, "ring") if p["spec"].get("nodeName")]
    release.touch()
