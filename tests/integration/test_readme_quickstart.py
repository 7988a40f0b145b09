"""The README's quick start, run as written: each of its ``bash`` blocks, in order, in a shell whose
kubectl finds the installed plugins, against the real API server with kube-controller-manager, kwok
GPU nodes, the data-loader controller (its loader Pods run by the test bed's kubelet stand-in), the
Kubeflow CRDs and MinIO holding ``s3://datasets/imagenet``. The user's side is what the quick start
says it assumes: a kubeconfig whose context names a namespace, the S3 keys in ``AWS_*`` and a
training package in ``./trainer``."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources.kubeflow import TFJOBS
from kaip_testbed import gpu_nodes
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.dataloader import ControllerProcess, Kubelet, grant_lease, install_controller_rbac
from kaip_testbed.demo import plugin_env
from kaip_testbed.kueue import Kueue
from kaip_testbed.objectstores import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

README = Path(__file__).parents[2] / "README.md"
DATASET = {f"imagenet/train/n01440764/{i:04d}.JPEG": bytes([i]) * (1000 + i) for i in range(40)} | {
    "imagenet/labels.txt": b"n01440764 tench\n"
}


def quick_start_blocks() -> list[str]:
    section = README.read_text().split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def test_the_quick_start_has_the_blocks_this_test_prepares_for() -> None:
    blocks = "\n".join(quick_start_blocks())
    for command in (
        "create secret",
        "node-health summary",
        "pvc-preload create",
        "ai-platform jobs submit",
        "ai-platform jobs list",
    ):
        assert f"kubectl {command}" in blocks, f"the quick start no longer runs `kubectl {command}`"


@pytest.fixture
def datasets_bucket(s3_server: S3Server) -> Iterator[None]:
    """The bucket the quick start names; it is global to the S3 server, so it is emptied afterwards."""
    client: Any = s3_server.client()
    existing = {b["Name"] for b in client.list_buckets().get("Buckets") or ()}
    if "datasets" not in existing:
        client.create_bucket(Bucket="datasets")
    for key, body in DATASET.items():
        client.put_object(Bucket="datasets", Key=key, Body=body)
    yield
    for key in DATASET:
        client.delete_object(Bucket="datasets", Key=key)


@pytest.fixture
def gpu_cluster(kwok: ControlPlane, admin_kube: Kube, namespace: str) -> Iterator[list[str]]:
    suffix = namespace[-6:]
    nodes = [
        gpu_nodes.GPUNode(f"qs-a100-0-{suffix}"),
        gpu_nodes.GPUNode(
            f"qs-a100-1-{suffix}",
            unhealthy_gpus=1,
            problems={"GPUIsLost": "7 of 8 GPUs visible to the driver"},
        ),
    ]
    gpu_nodes.create(admin_kube, nodes)
    yield [n.name for n in nodes]
    for node in nodes:
        admin_kube.delete(kinds.NODES, node.name, ignore_missing=True)


@pytest.fixture
def data_loader(
    kwok: ControlPlane, admin_kube: Kube, kube: Kube, namespace: str, tmp_path: Path
) -> Iterator[Kubelet]:
    kubeconfig, undo = install_controller_rbac(admin_kube, kwok)
    grant_lease(admin_kube, namespace)
    controller = ControllerProcess(kubeconfig, namespace, "quickstart", tmp_path)
    try:
        with Kubelet(kube, kwok, tmp_path / "volumes") as kubelet:
            yield kubelet
    finally:
        controller.stop()
        undo()


@pytest.fixture
def queue(kwok: ControlPlane, admin_kube: Kube, kubeflow: list[str], namespace: str) -> Iterator[Kueue]:
    """Kueue (after the Kubeflow CRDs it integrates) with the LocalQueue ``gpus`` of 16 GPUs."""
    kueue = Kueue(kwok, admin_kube)
    try:
        kueue.start()
        kueue.gpu_quota(namespace, gpus=16, namespaces=[namespace], local_queue="gpus")
        yield kueue
    finally:
        kueue.remove_quota(namespace)
        kueue.stop()


@pytest.fixture
def user_shell(
    kwok: ControlPlane, s3_server: S3Server, namespace: str, tmp_path: Path
) -> tuple[dict[str, str], Path]:
    """The user's environment: a kubeconfig whose context names the namespace, AWS_* and ./trainer."""
    kubeconfig = kwok.user_kubeconfig("quickstart-user", groups=("system:masters",), namespace=namespace)
    env = plugin_env(kubeconfig)
    env |= {
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_ENDPOINT_URL": s3_server.endpoint,
    }
    workdir = tmp_path / "user"
    (workdir / "trainer").mkdir(parents=True)
    (workdir / "trainer" / "__init__.py").write_text("")
    (workdir / "trainer" / "task.py").write_text("import sys\nprint('training with', sys.argv[1:])\n")
    return env, workdir


def test_the_quick_start_runs_as_written(
    gpu_cluster: list[str],
    datasets_bucket: None,
    data_loader: Kubelet,
    kubeflow: list[str],
    queue: Kueue,
    user_shell: tuple[dict[str, str], Path],
    kube: Kube,
) -> None:
    env, workdir = user_shell
    outputs: list[str] = []
    for block in quick_start_blocks():
        started = time.monotonic()
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        transcript = f"$ {block}\n{done.stdout}{done.stderr}(exit {done.returncode}, {time.monotonic() - started:.1f}s)"
        print(transcript)
        assert done.returncode == 0, transcript
        assert "Traceback" not in done.stderr, transcript
        outputs.append(done.stdout)
    shown = "\n".join(outputs)

    # What the user sees: the broken node among the GPU nodes, the loaded dataset, the job.
    assert gpu_cluster[1] in shown and "GPUIsLost" in shown
    assert "imagenet" in shown and "Loaded" in shown
    assert "resnet" in shown

    # What is in the cluster: the Secret, the PVC loaded with the bucket's objects, the job using both.
    secret = kube.get(kinds.SECRETS, "s3-reader")
    assert secret["type"] == "kaip.dev/aws-credentials"
    pvc = kube.get(kinds.PVCS, "imagenet")
    loaded = {c["type"]: c for c in pvc["status"]["conditions"]}["DataLoaded"]
    assert loaded["status"] == "True", loaded
    volume = data_loader.volume("imagenet")
    on_disk = {str(p.relative_to(volume)): p.read_bytes() for p in volume.rglob("*") if p.is_file()}
    for key, body in DATASET.items():
        assert on_disk.get(key.removeprefix("imagenet/")) == body, key
    tfjobs = kube.list(TFJOBS)["items"]
    (job,) = [j for j in tfjobs if j["metadata"]["name"] == "resnet"]
    template = job["spec"]["tfReplicaSpecs"]["Master"]["template"]
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in template["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["imagenet"]
    assert template["metadata"]["annotations"]["kaip.dev/credentials"] == "s3-reader"

    # The queue-and-gang job: all six replicas as one gang, held by Kueue (24 GPUs over a 16-GPU quota).
    bert = kube.get(TFJOBS, "bert")
    assert bert["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    gang = bert["spec"]["runPolicy"]["schedulingPolicy"]
    assert gang["minAvailable"] == 6 and gang["minResources"]["nvidia.com/gpu"] == "24"
    assert "gpus (" in shown
    deadline = time.monotonic() + 60
    while "insufficient" not in (row := _wide_row(env, workdir, "bert")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "QUEUED" in row and "gpus (waiting)" in row and "waiting in queue gpus" in row, row


def _wide_row(env: dict[str, str], workdir: Path, job: str) -> str:
    done = subprocess.run(
        ["kubectl", "ai-platform", "jobs", "list", "-o", "wide"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return next(line for line in done.stdout.splitlines() if line.startswith(job + " "))
