"""`kubectl ai-platform` on Kubeflow Trainer v2: the same gcloud command line becomes a TrainJob that
references the upstream torch-distributed runtime, beside training-operator's v1 jobs in one cluster.

Everything goes through the plugin, on the real controllers: trainer-controller-manager v2.0.0 (its
validating webhooks called by kube-apiserver over TLS) renders the TrainJob into a JobSet, the JobSet
controller v0.8.2 (with its webhooks) makes Jobs, kube-controller-manager's Job controller makes their
Pods, kube-scheduler binds them to kwok nodes, and :class:`kaip_testbed.trainingpods.TrainingPods`
runs each node's command on this host. The states the plugin shows come from the TrainJob's and the
JobSet's own conditions and the Pods.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.resources import trainer as tr
from kaip_testbed import releasedjobs
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.gpu_nodes import GPUNode
from kaip_testbed.kubeflow import KubeflowBed
from kaip_testbed.plugins import ai
from kaip_testbed.releasedjobs import write_package
from kaip_testbed.trainer import TrainerBed
from kaip_testbed.trainingpods import TrainingPods

pytestmark = pytest.mark.integration

NODES = (
    GPUNode("tv2-a100-0", product="NVIDIA-A100-SXM4-80GB", kwok="kubeflow", kwok_taint=False),
    GPUNode("tv2-a100-1", product="NVIDIA-A100-SXM4-80GB", kwok="kubeflow", kwok_taint=False),
)

TASK = '''
"""The user's training module: prints what it was given, waits for the test, exits as told."""
import argparse, os, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--release", required=True)
parser.add_argument("--epochs", type=int, default=1)
args, unknown = parser.parse_known_args()
rank = os.environ.get("RANK", "?")
print(f"rank {rank} of {os.environ.get('WORLD_SIZE')} starts: epochs={args.epochs}", flush=True)
while not os.path.exists(args.release):
    time.sleep(0.1)
for epoch in range(args.epochs):
    print(f"rank {rank} epoch {epoch} loss {1.0 / (epoch + 1):.3f}", flush=True)
print(f"rank {rank} done", flush=True)
'''

#: gcloud's machines for two nodes alike: the master and one worker.
TWO_NODES = (
    "--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-4",
    "--worker-count=1",
)  # fmt: skip


@pytest.fixture(scope="module")
def bed(kwok: ControlPlane, admin_kube: Kube) -> Iterator[TrainerBed]:
    """training-operator (v1 kinds) and Trainer v2 with JobSet in one cluster, on kwok GPU nodes."""
    kubeflow = KubeflowBed(kwok, admin_kube, shape="training-operator", nodes=NODES)
    trainer = TrainerBed(kwok, admin_kube)
    try:
        kubeflow.start()
        trainer.start()
        yield trainer
    finally:
        trainer.stop()
        kubeflow.stop()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """``trainer/task.py`` (:data:`TASK`), as a user's ``--package-path``."""
    package = write_package(tmp_path / "src")
    (package / "task.py").write_text(textwrap.dedent(TASK))
    return package


@pytest.fixture
def pods(
    bed: TrainerBed, kube: Kube, namespace: str, package: Path, tmp_path: Path
) -> Iterator[TrainingPods]:
    """The kubelet stand-in for both kinds of Pods: JobSet's (TrainJob) and training-operator's."""
    with (
        TrainingPods(
            kube, bed.plane, namespace=namespace, workdir=tmp_path / "jobset", code=package.parent,
            label=tr.LABEL_JOBSET_NAME,
        ) as runner,
        TrainingPods(kube, bed.plane, namespace=namespace, workdir=tmp_path / "v1", code=package.parent),
    ):  # fmt: skip
        yield runner


def wait_for(predicate: Callable[[], Any], what: str, *, kube: Kube) -> Any:
    """``predicate()``'s first true value; on timeout, what the TrainJobs' status said."""

    def seen() -> str:
        return json.dumps([j.get("status") for j in kube.list(tr.TRAINJOBS).get("items") or []])

    return releasedjobs.wait_for(predicate, what, seen=seen, timeout=90.0)


def listed(capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str) -> dict[str, dict[str, Any]]:
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "json")
    assert code == 0, err
    return {d["jobId"]: d for d in json.loads(out)["items"]}


def state(capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, job: str) -> str:
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", job, "-o", "json")
    assert code == 0, err
    return str(json.loads(out)["state"])


def submit(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, job: str, package: Path, *flags: str
) -> None:
    code, _, err = ai(
        capsys, kubeconfig, namespace, "jobs", "submit", "training", job, "--module-name=trainer.task",
        f"--package-path={package}", "--master-image-uri=registry.local/train:1", *flags,
    )  # fmt: skip
    assert code == 0, err
    assert f"Job [{job}] submitted successfully." in err


def test_a_pytorch_job_runs_as_a_trainjob_beside_a_tfjob_and_streams_its_nodes_logs(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    pods: TrainingPods,
    package: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    # No --backend: the cluster serves TrainJob, so PyTorch goes to Trainer v2; TensorFlow stays v1.
    submit(capsys, kubeconfig, namespace, "torch_v2", package, "--framework=pytorch", *TWO_NODES,
           "--", f"--release={release}", "--epochs=2")  # fmt: skip
    submit(
        capsys,
        kubeconfig,
        namespace,
        "tf_v1",
        package,
        "--framework=tensorflow",
        "--",
        f"--release={release}",
    )
    trainjob = kube.get(tr.TRAINJOBS, "torch-v2")
    assert trainjob["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert trainjob["spec"]["trainer"]["numNodes"] == 2
    jobs = wait_for(
        lambda: (
            (found := listed(capsys, kubeconfig, namespace))
            and found["torch_v2"]["state"] == "RUNNING"
            and found["tf_v1"]["state"] == "RUNNING"
            and found
        ),
        "both jobs to run",
        kube=kube,
    )
    assert jobs["torch_v2"]["kubernetes"]["kind"] == "TrainJob"
    assert jobs["tf_v1"]["kubernetes"]["kind"] == "TFJob"
    assert jobs["torch_v2"]["trainingInput"]["workerCount"] == 1
    # Each node ran the module with the user's arguments, rank and world size from the runtime.
    wait_for(lambda: len(pods.ran) == 2, "two nodes to run", kube=kube)
    for argv in pods.ran.values():
        assert "trainer.task" in argv and f"--release={release}" in argv and "--epochs=2" in argv
    release.touch()
    wait_for(
        lambda: state(capsys, kubeconfig, namespace, "torch_v2") == "SUCCEEDED",
        "the TrainJob to succeed",
        kube=kube,
    )
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "stream-logs", "torch_v2")
    assert code == 0, err
    assert "\tmaster-replica-0\trank 0 of 2 starts: epochs=2" in out
    assert "\tworker-replica-0\trank 1 epoch 1 loss 0.500" in out
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", "torch_v2", "--summarize")
    assert code == 0, err
    assert "SUCCEEDED" in out and "master-replica-0" in out and "worker-replica-0" in out
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "wide")
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if line.startswith("torch_v2")]
    assert "SUCCEEDED" in row and "TrainJob" in row


def test_cancel_suspends_the_trainjob_and_update_changes_its_labels(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    pods: TrainingPods,
    package: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "never"
    submit(capsys, kubeconfig, namespace, "stopped", package, "--backend=trainer-v2", "--framework=pytorch",
           "--labels=team=vision", "--", f"--release={release}")  # fmt: skip
    wait_for(
        lambda: state(capsys, kubeconfig, namespace, "stopped") == "RUNNING", "the job to run", kube=kube
    )
    code, _, err = ai(capsys, kubeconfig, namespace, "jobs", "update", "stopped", "--update-labels=stage=try")
    assert code == 0, err
    code, _, err = ai(capsys, kubeconfig, namespace, "jobs", "cancel", "stopped")
    assert code == 0, err
    assert kube.get(tr.TRAINJOBS, "stopped")["spec"]["suspend"] is True
    wait_for(
        lambda: state(capsys, kubeconfig, namespace, "stopped") == "CANCELLED",
        "the job to be cancelled",
        kube=kube,
    )
    assert listed(capsys, kubeconfig, namespace)["stopped"]["labels"] == {"team": "vision", "stage": "try"}
    release.touch()


def test_a_horovod_job_runs_on_the_mpi_runtime_under_mpirun(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    pods: TrainingPods,
    package: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    release.touch()
    submit(capsys, kubeconfig, namespace, "horovod", package, "--framework=mpi", "--", f"--release={release}")
    assert kube.get(tr.TRAINJOBS, "horovod")["spec"]["runtimeRef"]["name"] == "mpi-distributed"
    wait_for(
        lambda: state(capsys, kubeconfig, namespace, "horovod") == "SUCCEEDED",
        "the MPI TrainJob to succeed",
        kube=kube,
    )
    # The launcher ran the module under mpirun; the runtime's node only ran its SSH server.
    (argv,) = pods.ran.values()
    assert "mpirun python -m" in argv[2] and "trainer.task" in argv
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "stream-logs", "horovod")
    assert code == 0, err
    assert "\tmaster-replica-0\trank ? done" in out
