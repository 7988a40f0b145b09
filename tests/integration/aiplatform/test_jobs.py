"""`jobs list/describe/cancel/update` with gcloud's states, against the real API server. The Training
Operator is not running here, so the test plays its part: it creates the replicas' Pods (kwok runs
them on a simulated node) and writes the job's status conditions, as the operator would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.cli.app import run
from kaip.commands.ai_platform import cli
from kaip.kube.client import Kube
from kaip.kube.errors import ApiError
from kaip.resources import kinds
from kaip.resources import kubeflow as kf
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.plugins import ai

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kubeflow")]


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def node(kwok: ControlPlane, admin_kube: Kube) -> Iterator[str]:
    name = "kwok-ai-platform"
    taint = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}
    make_node(admin_kube, name, kwok="fake", labels={"type": "kwok"}, spec={"taints": [taint]})
    yield name
    admin_kube.delete(kinds.NODES, name, ignore_missing=True)


def make_node(
    admin_kube: Kube,
    name: str,
    *,
    kwok: str,
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> None:
    """A Node for the kwok that runs those annotated ``kwok.x-k8s.io/node: <kwok>``, once Ready."""
    admin_kube.delete(kinds.NODES, name, ignore_missing=True)
    admin_kube.create(
        kinds.NODES,
        {
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": kwok}, "labels": labels or {}},
            "spec": spec or {},
            "status": {
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "110"},
            },
        },
    )
    wait_for(
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (admin_kube.get(kinds.NODES, name).get("status") or {}).get("conditions", [])
        )
    )


def replica_pod(job: str, rtype: str, index: int, *, gated: bool = False) -> dict[str, Any]:
    """A replica's Pod as the operator makes it: its labels, on the kwok node."""
    spec: dict[str, Any] = {
        "nodeSelector": {"type": "kwok"},
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "tensorflow", "image": "registry.local/train:1"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "imagenet"}}],
    }
    if gated:  # what the data loader's webhook does to a Pod whose PVC is not loaded yet
        spec["schedulingGates"] = [{"name": "kaip.dev/data-preload"}]
    labels = {kf.LABEL_JOB_NAME: job, kf.LABEL_REPLICA_TYPE: rtype, kf.LABEL_REPLICA_INDEX: str(index)}
    if rtype == "master":
        labels[kf.LABEL_JOB_ROLE] = "master"
    return {"metadata": {"name": f"{job}-{rtype}-{index}", "labels": labels}, "spec": spec}


PVS = kinds.core("persistentvolumes", "PersistentVolume", namespaced=False)


def bind_volume(admin_kube: Kube, namespace: str, claim: str) -> None:
    """A volume for the preload PVC (the cluster's provisioner would make one)."""
    name = f"pv-{namespace}"[:63]
    admin_kube.create(
        PVS,
        {
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": "100Gi"},
                "accessModes": ["ReadWriteMany"],
                "hostPath": {"path": "/var/lib/kaip-test"},
                "claimRef": {"namespace": namespace, "name": claim},
                "persistentVolumeReclaimPolicy": "Delete",
            },
        },
    )
    wait_for(
        lambda: (
            (admin_kube.get(kinds.PVCS, claim, namespace=namespace).get("status") or {}).get("phase")
            == "Bound"
        )
    )


def set_conditions(kube: Kube, name: str, *types: str, message: str = "") -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {
            "type": t,
            "status": "True",
            "reason": f"TFJob{t}",
            "message": message or t,
            "lastTransitionTime": now,
        }
        for t in types
    ]
    kube.patch(
        kf.TFJOBS, name, {"status": {"conditions": conditions, "startTime": now}}, subresource="status"
    )


def status_of(capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str) -> dict[str, str]:
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "json")
    assert code == 0, err
    return {d["jobId"]: d["state"] for d in json.loads(out)["items"]}


def running(kube: Kube, pod: str) -> bool:
    return (kube.get(kinds.PODS, pod).get("status") or {}).get("phase") == "Running"


def test_a_job_from_queued_to_cancelled(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    admin_kube: Kube,
    node: str,
    request: pytest.FixtureRequest,
) -> None:
    code, _, err = ai(
        capsys, kubeconfig, namespace, "jobs", "submit", "training", "mnist_run", "--master-image-uri=registry.local/train:1",
        "--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-count=1", "--worker-machine-type=n1-standard-4",
        "--data=imagenet=s3://datasets/imagenet",
    )  # fmt: skip
    assert code == 0, err
    assert status_of(capsys, kubeconfig, namespace) == {"mnist_run": "QUEUED"}
    bind_volume(admin_kube, namespace, "imagenet")
    request.addfinalizer(lambda: admin_kube.delete(PVS, f"pv-{namespace}"[:63], ignore_missing=True))

    # The operator made the Pods; the master waits for its data (gated by the data loader).
    set_conditions(kube, "mnist-run", "Created", "Running")
    kube.create(kinds.PODS, replica_pod("mnist-run", "master", 0, gated=True))
    kube.create(kinds.PODS, replica_pod("mnist-run", "worker", 0))
    wait_for(lambda: running(kube, "mnist-run-worker-0"))
    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "wide")
    header, row = out.splitlines()
    assert header.split() == ["JOB_ID", "STATUS", "CREATED", "KIND", "NAME", "QUEUE", "GANG", "REASON"]
    assert row.split()[:2] == ["mnist_run", "PREPARING"]
    assert "mnist-run-master-0 waits for its data to be loaded (imagenet)" in row

    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "describe", "mnist_run", "--summarize")
    assert (
        "waits for its data to be loaded" in out and "master-replica-0" in out and "worker-replica-0" in out
    )

    # The data is loaded: the gate goes, the scheduler places the master, kwok runs it.
    kube.patch(
        kinds.PODS, "mnist-run-master-0", [{"op": "remove", "path": "/spec/schedulingGates"}], kind="json"
    )
    wait_for(lambda: running(kube, "mnist-run-master-0"))
    assert status_of(capsys, kubeconfig, namespace) == {"mnist_run": "RUNNING"}

    code, _, err = ai(capsys, kubeconfig, namespace, "jobs", "cancel", "mnist_run")
    assert code == 0, err
    job = kube.get(kf.TFJOBS, "mnist-run")
    assert job["spec"]["runPolicy"]["suspend"] is True
    assert status_of(capsys, kubeconfig, namespace) == {"mnist_run": "CANCELLING"}

    # The operator deletes the Pods of a suspended job; the record stays.
    for pod in ("mnist-run-master-0", "mnist-run-worker-0"):
        kube.delete(kinds.PODS, pod, propagation="Background")
    wait_for(lambda: not kube.list(kinds.PODS)["items"])
    set_conditions(kube, "mnist-run", "Created", "Suspended")
    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "describe", "mnist_run")
    assert "state: CANCELLED" in out and "errorMessage: cancelled by user" in out

    code, _, err = ai(capsys, kubeconfig, namespace, "jobs", "cancel", "mnist_run")
    assert code == 0 and "Job [mnist_run] is already CANCELLED; nothing to cancel." in err


def test_list_filters_sorts_and_labels(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    for job in ("alpha_one", "beta_two", "gamma_three"):
        code, _, err = ai(
            capsys,
            kubeconfig,
            namespace,
            "jobs",
            "submit",
            "training",
            job,
            "--master-image-uri=i",
            "--framework=pytorch" if job == "beta_two" else "--framework=tensorflow",
        )
        assert code == 0, err
        time.sleep(1.1)  # distinct creation times
    set_conditions(kube, "alpha-one", "Created", "Succeeded")
    kube.patch(
        kf.PYTORCHJOBS,
        "beta-two",
        {
            "status": {
                "conditions": [{"type": "Failed", "status": "True", "message": "master exited with code 1"}]
            }
        },
        subresource="status",
    )

    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list")
    rows = [line.split()[:2] for line in out.splitlines()[1:]]
    assert rows == [
        ["gamma_three", "QUEUED"],
        ["beta_two", "FAILED"],
        ["alpha_one", "SUCCEEDED"],
    ]  # newest first

    code, out, _ = ai(
        capsys, kubeconfig, namespace, "jobs", "list", "--sort-by=jobId", "--limit=2", "-o", "name"
    )
    assert out.split() == ["alpha_one", "beta_two"]
    code, out, _ = ai(
        capsys, kubeconfig, namespace, "jobs", "list", "--filter=state!=QUEUED AND jobId:a", "-o", "name"
    )
    assert out.split() == ["beta_two", "alpha_one"]

    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "describe", "beta_two", "-o", "json")
    doc = json.loads(out)
    assert doc["state"] == "FAILED" and doc["errorMessage"] == "master exited with code 1"
    assert doc["kubernetes"]["kind"] == "PyTorchJob"

    assert (
        ai(
            capsys,
            kubeconfig,
            namespace,
            "jobs",
            "update",
            "gamma_three",
            "--update-labels=team=vision,tier=gold",
        )[0]
        == 0
    )
    assert ai(capsys, kubeconfig, namespace, "jobs", "update", "gamma_three", "--remove-labels=tier")[0] == 0
    labels = kube.get(kf.TFJOBS, "gamma-three")["metadata"]["labels"]
    assert labels["team"] == "vision" and "tier" not in labels
    assert labels[kf.LABEL_JOB_ID] == "gamma_three"  # ours survive
    code, out, _ = ai(
        capsys, kubeconfig, namespace, "jobs", "list", "--filter=labels.team=vision", "-o", "name"
    )
    assert out.split() == ["gamma_three"]
    assert ai(capsys, kubeconfig, namespace, "jobs", "update", "gamma_three", "--clear-labels")[0] == 0
    assert "team" not in kube.get(kf.TFJOBS, "gamma-three")["metadata"]["labels"]

    code, _, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", "no_such_job")
    assert code == 7 and f"job no_such_job not found in namespace {namespace}" in err


def _finish_later(kube: Kube, name: str, condition: str, message: str) -> threading.Thread:
    def finish() -> None:
        time.sleep(1.5)
        set_conditions(kube, name, "Created", condition, message=message)

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def test_stream_logs_ends_with_the_job_and_submit_reports_its_outcome(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    assert (
        ai(capsys, kubeconfig, namespace, "jobs", "submit", "training", "waited", "--master-image-uri=i")[0]
        == 0
    )
    thread = _finish_later(kube, "waited", "Succeeded", "done")
    code, _, err = ai(capsys, kubeconfig, namespace, "jobs", "stream-logs", "waited", "--polling-interval=1")
    thread.join()
    assert code == 0, err

    # --stream-logs: exit 1 unless the job ends SUCCEEDED (a PyTorchJob, to follow any kind).
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "message": "exit 1"}]}}

    def fail_it() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                kube.patch(kf.PYTORCHJOBS, "doomed", failed, subresource="status")
                return
            except ApiError:  # not created yet, or the server's cache of the new CRD still warming up
                time.sleep(0.5)

    failing = threading.Thread(target=fail_it, daemon=True)
    failing.start()
    code, _, err = ai(
        capsys,
        kubeconfig,
        namespace,
        "jobs",
        "submit",
        "training",
        "doomed",
        "--framework=pytorch",
        "--master-image-uri=i",
        "--stream-logs",
    )
    failing.join()
    assert code == 1
    assert "Job [doomed] submitted successfully." in err


# -- stream-logs over real Pod logs: kube-apiserver's pods/log proxied to a kubelet (kwok's) ---------
LOG_NODE = "kwok-logs"
STAMP = "2026-12-02T05:00:0{}.000000000Z"


@pytest.fixture(scope="module")
def log_files(
    kwok: ControlPlane, admin_kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    """Log files of the Pods streamed-master-0 and streamed-worker-0, served by a kwok kubelet."""
    folder = tmp_path_factory.mktemp("pod-logs")
    files = {task: folder / f"{task}.log" for task in ("master", "worker")}
    files["master"].write_text(
        f"{STAMP.format(1)} stdout F epoch 1 loss 0.9\n{STAMP.format(2)} stdout F epoch 2 loss 0.5\n"
    )
    files["worker"].write_text(f"{STAMP.format(3)} stderr F worker 0 connected to the master\n")
    logs = [
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": f"streamed-{task}"},
            "spec": {
                "selector": {"matchNames": [f"streamed-{task}-0"]},
                "logs": [{"containers": ["tensorflow"], "logsFile": str(path), "follow": True}],
            },
        }
        for task, path in files.items()
    ]
    kwok.start_log_kwok("kwok-logs", node_annotation="logs", logs=logs)
    make_node(admin_kube, LOG_NODE, kwok="logs")
    try:
        yield files
    finally:
        admin_kube.delete(kinds.NODES, LOG_NODE, ignore_missing=True)
        kwok.servers.pop("kwok-logs").stop()


def _logged_pod(rtype: str) -> dict[str, Any]:
    pod = replica_pod("streamed", rtype, 0)
    pod["spec"] = {"nodeName": LOG_NODE, "containers": pod["spec"]["containers"]}
    return pod


def test_stream_logs_prints_every_replicas_log_as_it_comes_and_ends_with_the_job(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    log_files: dict[str, Path],
) -> None:
    assert (
        ai(capsys, kubeconfig, namespace, "jobs", "submit", "training", "streamed", "--master-image-uri=i")[0]
        == 0
    )
    kube.create(kinds.PODS, _logged_pod("master"))
    wait_for(lambda: running(kube, "streamed-master-0"))

    result: dict[str, Any] = {}

    def stream() -> None:
        result["code"] = run(
            cli,
            [
                "jobs",
                "stream-logs",
                "streamed",
                "--polling-interval=1",
                "--kubeconfig",
                str(kubeconfig),
                "-n",
                namespace,
            ],
            prog_name="kubectl ai-platform",
        )

    streamer = threading.Thread(target=stream, daemon=True)
    started = time.monotonic()
    streamer.start()
    time.sleep(3)
    # A replica that starts later is followed too, and lines written meanwhile arrive.
    kube.create(kinds.PODS, _logged_pod("worker"))
    wait_for(lambda: running(kube, "streamed-worker-0"))
    with log_files["master"].open("a") as log:
        log.write(f"{STAMP.format(4)} stdout F epoch 3 loss 0.2\n")
    time.sleep(3)
    set_conditions(kube, "streamed", "Created", "Running", "Succeeded")
    streamer.join(60)
    assert not streamer.is_alive(), "stream-logs did not end with the job"
    assert result["code"] == 0
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if "master-replica-0" in line] == [
        f"INFO\t{STAMP.format(1)}\tmaster-replica-0\tepoch 1 loss 0.9",
        f"INFO\t{STAMP.format(2)}\tmaster-replica-0\tepoch 2 loss 0.5",
        f"INFO\t{STAMP.format(4)}\tmaster-replica-0\tepoch 3 loss 0.2",
    ]
    assert [line for line in out if "worker-replica-0" in line] == [
        f"INFO\t{STAMP.format(3)}\tworker-replica-0\tworker 0 connected to the master"
    ]
    assert time.monotonic() - started < 40

    # One task only; the job has ended, so what its log holds is printed and the command ends.
    code, out_text, err = ai(
        capsys, kubeconfig, namespace, "jobs", "stream-logs", "streamed", "--task-name=worker-replica-0"
    )
    assert code == 0, err
    assert out_text.splitlines() == [
        f"INFO\t{STAMP.format(3)}\tworker-replica-0\tworker 0 connected to the master"
    ]
