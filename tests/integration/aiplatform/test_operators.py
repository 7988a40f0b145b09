"""`kubectl ai-platform` under the real Kubeflow operators, in the two shapes a cluster can have:
training-operator v1.9.2 serving every kind (MPIJob ``kubeflow.org/v1`` included), or
training-operator with its MPI scheme off beside mpi-operator v0.6.0 (MPIJob ``kubeflow.org/v2beta1``).

Everything goes through the plugin: `jobs submit training` with `--module-name`/`--package-path`,
then `jobs describe`/`list`/`stream-logs`/`cancel`. The operator's validating webhooks admit each job
(kube-apiserver calls them over TLS), the operator creates the replicas' Pods and Services,
kube-scheduler places them on kwok GPU nodes, and :class:`kaip_testbed.trainingpods.TrainingPods`
runs each container's command on this host: the module the test writes below runs with the
arguments kaip rendered, waits until the test releases it, and exits with the code the test chose.
The states the plugin shows come from the operator's own status.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources import kubeflow as kf
from kaip_testbed.catalog import HPC_CATALOG, admin_catalog
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.gpu_nodes import GPUNode
from kaip_testbed.kubeflow import SHAPES, KubeflowBed
from kaip_testbed.plugins import ai
from kaip_testbed.trainingpods import TrainingPods

pytestmark = pytest.mark.integration

NODES = (
    GPUNode("kf-a100-0", product="NVIDIA-A100-SXM4-80GB", kwok="kubeflow", kwok_taint=False),
    GPUNode("kf-a100-1", product="NVIDIA-A100-SXM4-80GB", kwok="kubeflow", kwok_taint=False),
    GPUNode("kf-t4-0", gpus=4, product="Tesla-T4", kwok="kubeflow", kwok_taint=False),
)

TASK = '''
"""The user's training module: prints what it was given, waits for the test, exits as told."""
import argparse, os, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--release", required=True)
parser.add_argument("--fail-on", default="")
parser.add_argument("--exit-code", type=int, default=0)
parser.add_argument("--message", default="")
parser.add_argument("--epochs", type=int, default=1)
args, unknown = parser.parse_known_args()
me = os.environ.get("HOSTNAME", "?")
print(f"{me} starts: epochs={args.epochs} unknown={unknown}", flush=True)
for name in ("TF_CONFIG", "MASTER_ADDR", "RANK", "WORLD_SIZE", "PADDLE_TRAINER_ID", "COORDINATOR_ADDRESS"):
    if name in os.environ:
        print(f"{me} {name}={os.environ[name]}", flush=True)
failing = args.fail_on and me.endswith(args.fail_on)
while not failing and not os.path.exists(args.release):  # the others wait, as ranks do for a lost peer
    time.sleep(0.1)
for epoch in range(args.epochs):
    print(f"{me} epoch {epoch} loss {1.0 / (epoch + 1):.3f}", flush=True)
if failing and args.message:
    print(f"{me} Traceback: CUDA error: an illegal memory access was encountered", file=sys.stderr, flush=True)
    with open(os.environ["KAIP_TESTBED_TERMINATION_LOG"], "w") as log:
        log.write(args.message)
    sys.exit(args.exit_code)
if failing:  # dies on an exception, writing no termination message
    raise RuntimeError("CUDA error: an illegal memory access was encountered")
print(f"{me} done", flush=True)
'''


TRAINING, MPI = list(SHAPES)
#: Where a test runs: both shapes of cluster, or training-operator's alone where the shape changes
#: nothing the test looks at (the same operator runs the same TFJob or PyTorchJob in both).
BOTH = pytest.mark.parametrize("bed", [TRAINING, MPI], indirect=True, scope="module")
TRAINING_OPERATOR = pytest.mark.parametrize("bed", [TRAINING], indirect=True, scope="module")


@pytest.fixture(scope="module")
def bed(kwok: ControlPlane, admin_kube: Kube, request: pytest.FixtureRequest) -> Iterator[KubeflowBed]:
    """One shape of cluster, as the test asks: training-operator serving every kind (MPIJob v1), or
    training-operator with its MPI scheme off beside mpi-operator (MPIJob v2beta1). pytest runs the
    tests of one shape together and stops that bed before it starts the other."""
    bed = KubeflowBed(kwok, admin_kube, shape=request.param, nodes=NODES)
    try:
        bed.start()
        yield bed
    finally:
        bed.stop()


@pytest.fixture
def trainer(tmp_path: Path) -> Path:
    """A package folder with trainer/task.py, as a user's --package-path."""
    package = tmp_path / "src" / "trainer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text(textwrap.dedent(TASK))
    return package


@pytest.fixture
def pods(
    bed: KubeflowBed, kube: Kube, namespace: str, trainer: Path, tmp_path: Path
) -> Iterator[TrainingPods]:
    with TrainingPods(
        kube, bed.plane, namespace=namespace, workdir=tmp_path / "kubelet", code=trainer.parent
    ) as runner:
        yield runner


def wait_for(
    predicate: Callable[[], Any], what: str, timeout: float = 90.0, *, kube: Kube | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    seen = ""
    if kube is not None:  # what the operator and the Pods said, to read the failure by
        jobs = [j for r in (kf.TFJOBS, kf.PYTORCHJOBS) for j in kube.list(r).get("items") or []]
        seen = json.dumps([{"job": j["metadata"]["name"], "status": j.get("status")} for j in jobs])
        seen += json.dumps([(p["metadata"]["name"], p.get("status")) for p in kube.list(kinds.PODS)["items"]])
    raise AssertionError(f"timed out waiting for {what}: {seen[:6000]}")


def describe(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, job: str
) -> dict[str, Any]:
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", job, "-o", "json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def state_is(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, job: str, *states: str
) -> bool:
    return describe(capsys, kubeconfig, namespace, job)["state"] in states


FRAMEWORKS = {
    # framework: extra flags (gcloud's scale tiers and machine types) and the replicas expected
    "tensorflow": (["--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-4",
                    "--worker-count=1", "--parameter-server-machine-type=n1-standard-4", "--parameter-server-count=1"], 3),
    "pytorch": (["--scale-tier=custom", "--master-machine-type=n1-standard-8",
                 "--master-accelerator=type=nvidia-tesla-a100,count=2", "--worker-machine-type=n1-standard-8",
                 "--worker-accelerator=type=nvidia-tesla-a100,count=2", "--worker-count=1"], 2),
    "xgboost": (["--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-4",
                 "--worker-count=1"], 2),
    "jax": (["--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-4",
             "--worker-count=1"], 2),
    "paddle": (["--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-4",
                "--worker-count=1"], 2),
}  # fmt: skip


@pytest.mark.parametrize(
    ("bed", "framework"),
    # Every kind where training-operator serves them all; with its MPI scheme off, one kind shows
    # that it still runs the others.
    [(TRAINING, f) for f in FRAMEWORKS] + [(MPI, "tensorflow")],
    indirect=["bed"],
    scope="module",
)
def test_a_job_runs_under_the_operator_from_submit_to_succeeded(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    pods: TrainingPods,
    trainer: Path,
    tmp_path: Path,
    framework: str,
) -> None:
    flags, replicas = FRAMEWORKS[framework]
    release = tmp_path / "release"
    job = f"train_{framework}"
    code, _out, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", job, f"--framework={framework}", "--module-name=trainer.task",
        f"--package-path={trainer}", "--master-image-uri=registry.local/train:1", *flags,
        "--", f"--release={release}", "--epochs=2",
    )  # fmt: skip
    assert code == 0, err
    assert f"Job [{job}] submitted successfully." in err
    # Nothing runs yet (the nodes take a second to start a Pod, as pulling an image would).
    assert describe(capsys, kubeconfig, namespace, job)["state"] in ("QUEUED", "PREPARING")
    # Admitted by the operator's webhook, then its Pods are created, bound and started.
    wait_for(lambda: state_is(capsys, kubeconfig, namespace, job, "RUNNING"), f"{job} to be RUNNING")
    wait_for(lambda: len(pods.ran) == replicas, f"{replicas} replicas to run")
    for argv in pods.ran.values():
        # The module runs with the user's arguments after kaip's wrapper (sh -c ... python -m MODULE).
        assert "trainer.task" in argv and f"--release={release}" in argv and "--epochs=2" in argv
    release.touch()
    wait_for(lambda: state_is(capsys, kubeconfig, namespace, job, "SUCCEEDED"), f"{job} to succeed")
    described = describe(capsys, kubeconfig, namespace, job)
    assert described["state"] == "SUCCEEDED"
    # What each replica printed reached the kubelet's log (the stand-in's), served through pods/log.
    logs = "".join(pods.log_file(p).read_text() for p in pods.ran)
    assert "epoch 1 loss 0.500" in logs and "done" in logs


@BOTH
def test_a_failing_replica_fails_the_job_with_its_exit_code_message_and_last_lines(
    capsys: pytest.CaptureFixture[str],
    kube: Kube,
    kubeconfig: Path,
    namespace: str,
    pods: TrainingPods,
    trainer: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "doomed", "--framework=pytorch", "--module-name=trainer.task",
        f"--package-path={trainer}", "--master-image-uri=registry.local/train:1", "--scale-tier=custom",
        "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-4", "--worker-count=2",
        "--", f"--release={release}", "--fail-on=worker-1", "--exit-code=3", "--message=NCCL timeout on rank 2",
    )  # fmt: skip
    assert code == 0, err
    wait_for(
        lambda: state_is(capsys, kubeconfig, namespace, "doomed", "FAILED"), "the job to fail", kube=kube
    )
    described = describe(capsys, kubeconfig, namespace, "doomed")
    text = json.dumps(described)
    assert "worker-1" in text
    assert "3" in str(described.get("errorMessage", "")) or "exit code 3" in text or '"exitCode": 3' in text
    assert "NCCL timeout on rank 2" in text
    # ... and its last log lines, read through pods/log from the kubelet (the stand-in's) that ran it.
    assert "doomed-worker-1 Traceback: CUDA error" in text
    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "wide")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("doomed")]
    assert "FAILED" in row and "worker-1" in row


@TRAINING_OPERATOR
def test_a_replica_that_dies_without_a_message_is_explained_by_its_last_log_lines(
    capsys: pytest.CaptureFixture[str],
    kube: Kube,
    kubeconfig: Path,
    namespace: str,
    pods: TrainingPods,
    trainer: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "crashed", "--framework=tensorflow", "--module-name=trainer.task",
        f"--package-path={trainer}", "--master-image-uri=registry.local/train:1",
        "--", f"--release={release}", "--fail-on=master-0", "--exit-code=1",
    )  # fmt: skip
    assert code == 0, err
    wait_for(
        lambda: state_is(capsys, kubeconfig, namespace, "crashed", "FAILED"), "the job to fail", kube=kube
    )
    # kaip asks for FallbackToLogsOnError: the end of the log became the termination message.
    described = describe(capsys, kubeconfig, namespace, "crashed")
    assert "CUDA error: an illegal memory access was encountered" in described["errorMessage"]
    release.touch()


@TRAINING_OPERATOR
def test_cancel_stops_the_pods_and_ends_cancelled(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    pods: TrainingPods,
    trainer: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "never"
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "stopped", "--framework=tensorflow", "--module-name=trainer.task",
        f"--package-path={trainer}", "--master-image-uri=registry.local/train:1",
        "--", f"--release={release}",
    )  # fmt: skip
    assert code == 0, err
    wait_for(lambda: state_is(capsys, kubeconfig, namespace, "stopped", "RUNNING"), "the job to run")
    code, _, err = ai(capsys, kubeconfig, namespace, "jobs", "cancel", "stopped")
    assert code == 0, err
    wait_for(
        lambda: state_is(capsys, kubeconfig, namespace, "stopped", "CANCELLED"), "the job to be cancelled"
    )
    release.touch()  # lets the stand-in's process end; the Pod is gone already


@TRAINING_OPERATOR
def test_stream_logs_follows_the_replicas_and_ends_with_the_job(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    pods: TrainingPods,
    trainer: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    release.touch()
    code, out, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "followed", "--framework=tensorflow", "--module-name=trainer.task",
        f"--package-path={trainer}", "--master-image-uri=registry.local/train:1", "--scale-tier=custom",
        "--master-machine-type=n1-standard-4", "--worker-machine-type=n1-standard-4", "--worker-count=1",
        "--stream-logs", "--", f"--release={release}", "--epochs=3",
    )  # fmt: skip
    assert code == 0, err
    for line in ("followed-master-0 epoch 2 loss 0.333", "followed-worker-0 epoch 2 loss 0.333"):
        assert line in out + err


@BOTH
def test_an_mpi_job_runs_on_the_mpijob_api_the_cluster_serves(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    bed: KubeflowBed,
    pods: TrainingPods,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    release.touch()
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "allreduce", "--framework=mpi", "--module-name=trainer.task",
        "--master-image-uri=registry.local/horovod:1", "--scale-tier=custom", "--master-machine-type=n1-standard-4",
        "--worker-machine-type=n1-standard-8", "--worker-count=2", "--worker-accelerator=type=nvidia-tesla-a100,count=2",
        "--", f"--release={release}", "--epochs=2",
    )  # fmt: skip
    assert code == 0, err
    # Discovery chose the version this cluster's operator serves, and that operator ran it.
    job = kube.get(kf.MPIJOBS_V1 if bed.mpi_version == "v1" else kf.MPIJOBS, "allreduce")
    assert job["apiVersion"] == f"kubeflow.org/{bed.mpi_version}"
    wait_for(
        lambda: state_is(capsys, kubeconfig, namespace, "allreduce", "SUCCEEDED"), "the MPI job", kube=kube
    )
    (launcher,) = [p for p in pods.ran if "launcher" in p]
    argv = pods.ran[launcher]
    assert "mpirun" in argv[2] and "-np 4" in argv[2] and "trainer.task" in argv
    log = pods.log_file(launcher).read_text()
    assert f"{launcher} epoch 1 loss 0.500" in log and f"{launcher} done" in log


@TRAINING_OPERATOR
def test_the_accelerator_type_selects_the_nodes_and_a_job_without_room_waits_with_the_reason(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    pods: TrainingPods,
    trainer: Path,
    tmp_path: Path,
) -> None:
    release = tmp_path / "release"
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "on_t4", "--framework=pytorch", "--module-name=trainer.task",
        f"--package-path={trainer}", "--master-image-uri=registry.local/train:1", "--scale-tier=custom",
        "--master-machine-type=n1-standard-4", "--master-accelerator=type=nvidia-tesla-t4,count=2",
        "--worker-machine-type=n1-standard-4", "--worker-accelerator=type=nvidia-tesla-t4,count=1", "--worker-count=2",
        "--", f"--release={release}",
    )  # fmt: skip
    assert code == 0, err
    wait_for(
        lambda: state_is(capsys, kubeconfig, namespace, "on_t4", "RUNNING"), "the T4 job to run", kube=kube
    )
    placed = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in kube.list(kinds.PODS)["items"]}
    assert placed == {"on-t4-master-0": "kf-t4-0", "on-t4-worker-0": "kf-t4-0", "on-t4-worker-1": "kf-t4-0"}

    # Eight T4s on one replica: the only T4 node has four, and the A100 nodes do not qualify.
    code, _, err = ai(
        capsys, kubeconfig, namespace,
        "jobs", "submit", "training", "too_big", "--framework=pytorch", "--module-name=trainer.task",
        f"--package-path={trainer}", "--master-image-uri=registry.local/train:1", "--scale-tier=custom",
        "--master-machine-type=n1-standard-4", "--master-accelerator=type=nvidia-tesla-t4,count=8",
        "--", f"--release={release}",
    )  # fmt: skip
    assert code == 0, err

    def waiting_with_reason() -> bool:
        found = describe(capsys, kubeconfig, namespace, "too_big")
        return found["state"] == "PREPARING" and "cannot be scheduled" in json.dumps(found)

    wait_for(waiting_with_reason, "the job to wait for a node with room", kube=kube)
    found = json.dumps(describe(capsys, kubeconfig, namespace, "too_big"))
    assert "Insufficient nvidia.com/gpu" in found and "affinity/selector" in found
    release.touch()
    wait_for(
        lambda: state_is(capsys, kubeconfig, namespace, "on_t4", "SUCCEEDED"), "the T4 job to end", kube=kube
    )


@pytest.mark.parametrize(
    ("bed", "framework"),
    [(TRAINING, "mpi"), (TRAINING, "pytorch"), (TRAINING, "tensorflow"), (MPI, "mpi")],
    indirect=["bed"],
    scope="module",
)
def test_the_operator_keeps_tenancy_exclusive_cpus_rdma_and_volumes_in_the_pods_it_creates(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    admin_kube: Kube,
    bed: KubeflowBed,
    framework: str,
) -> None:
    claim = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "",
    }
    kube.create(kinds.PVCS, {"metadata": {"name": "lustre"}, "spec": claim})
    admin_kube.patch(kinds.NAMESPACES, namespace, {"metadata": {"labels": {"kaip.dev/tenant": "lab-a"}}})
    with admin_catalog(admin_kube, HPC_CATALOG):
        code, _, err = ai(
            capsys, kubeconfig, namespace,
            "jobs", "submit", "training", "hpc", f"--framework={framework}", "--module-name=trainer.task",
            "--master-image-uri=registry.local/train:1", "--scale-tier=custom", "--master-machine-type=n1-standard-4",
            "--worker-count=1", "--worker-machine-type=n1-standard-4", "--secondary-network=roce",
            "--volume=fast=pvc:lustre:/fast", "--run-as-user=30001",
        )  # fmt: skip
    assert code == 0, err
    burstable = framework == "pytorch"  # init-pytorch, which the operator adds to workers: said on stderr
    assert ("makes them Burstable" in " ".join(err.split())) is burstable

    def created() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = kube.list(kinds.PODS)["items"]
        return items if len(items) == 2 else []

    for pod in wait_for(created, "the operator to create both replicas' Pods", kube=kube):
        name = pod["metadata"]["name"]
        # What kaip rendered reached the Pod the operator made, and kube-apiserver classed it Guaranteed.
        assert pod["spec"]["securityContext"] == {"runAsUser": 30001, "runAsGroup": 20001, "fsGroup": 20001}
        worker_with_init_pytorch = burstable and "worker" in name
        assert pod["status"]["qosClass"] == ("Burstable" if worker_with_init_pytorch else "Guaranteed"), name
        assert pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "roce-net@net1"
        (main,) = [c for c in pod["spec"]["containers"] if c["name"] == framework]
        # (kube-apiserver writes n1-standard-4's 15360Mi in its canonical form)
        assert main["resources"]["limits"] == {"cpu": "4", "memory": "15Gi", "rdma/rdma_shared_device_a": "1"}
        assert main["securityContext"]["capabilities"] == {"add": ["IPC_LOCK"]}
        assert {"name": "UCX_NET_DEVICES", "value": "mlx5_0:1"} in main["env"]
        assert {"name": "fast", "mountPath": "/fast"} in main["volumeMounts"]
