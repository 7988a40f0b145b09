"""A failed job keeps what the user needs, and a missing job is exit 7, against the real API server.

No operator and no kubelet run here: the test writes a TFJob, its replicas' Pods and their statuses as
the Training Operator and a kubelet would (a failed container's ``state.terminated`` through the
``pods/status`` subresource, the job's ``Failed`` condition through ``tfjobs/status``). One kwok
serves ``pods/log`` for the Pod whose log the test reads back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.errors import ExitCode
from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources import kubeflow as kf
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.plugins import ai

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kubeflow")]

FAILED_AT = "2026-01-02T03:10:00Z"
CONDITION = "TFJob has failed because 1 Worker replica(s) failed."
LOG_KWOK = "kwok-failed-logs"


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def create_tfjob(kube: Kube, name: str, *, workers: int = 2, clean_pod_policy: str = "None") -> None:
    template = {"spec": {"containers": [{"name": "tensorflow", "image": "registry.local/train:1"}]}}
    kube.create(
        kf.TFJOBS,
        {
            "metadata": {"name": name},
            "spec": {
                "runPolicy": {"cleanPodPolicy": clean_pod_policy},
                "tfReplicaSpecs": {
                    "Master": {"replicas": 1, "restartPolicy": "Never", "template": template},
                    "Worker": {"replicas": workers, "restartPolicy": "Never", "template": template},
                },
            },
        },
    )


def fail_tfjob(kube: Kube, name: str) -> None:
    """The operator's word on the job: Failed, at FAILED_AT (the API server may need a moment to serve
    the status of a CRD it has just been given)."""
    condition = {
        "type": "Failed",
        "status": "True",
        "reason": "TFJobFailed",
        "message": CONDITION,
        "lastTransitionTime": FAILED_AT,
    }
    status = {"status": {"conditions": [condition], "startTime": "2026-01-02T03:00:00Z"}}
    kube.patch(kf.TFJOBS, name, status, subresource="status")


def create_pod(kube: Kube, job: str, rtype: str, index: int, *, node: str) -> str:
    name = f"{job}-{rtype}-{index}"
    labels = {kf.LABEL_JOB_NAME: job, kf.LABEL_REPLICA_TYPE: rtype, kf.LABEL_REPLICA_INDEX: str(index)}
    kube.create(
        kinds.PODS,
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "containers": [{"name": "tensorflow", "image": "registry.local/train:1"}],
            },
        },
    )
    return name


def end_container(kube: Kube, pod: str, *, code: int, message: str = "", finished: str) -> None:
    """What a kubelet writes when the container ends (the Pod fails with it: restartPolicy Never)."""
    terminated: dict[str, Any] = {
        "exitCode": code,
        "reason": "Error",
        "startedAt": "2026-01-02T03:00:10Z",
        "finishedAt": finished,
    }
    if message:
        terminated["message"] = message
    status = {
        "phase": "Failed",
        "containerStatuses": [
            {
                "name": "tensorflow",
                "image": "registry.local/train:1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "started": False,
                "state": {"terminated": terminated},
            }
        ],
    }
    kube.patch(kinds.PODS, pod, {"status": status}, subresource="status")


@pytest.mark.parametrize(
    "command",
    [
        ("jobs", "describe"),
        ("jobs", "describe", "--summarize"),
        ("jobs", "cancel"),
        ("jobs", "update", "--update-labels=team=vision"),
        ("jobs", "stream-logs"),
    ],
    ids=" ".join,
)
def test_a_missing_job_is_exit_7_with_one_line_naming_it_and_its_namespace(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, command: tuple[str, ...]
) -> None:
    verb, name, *flags = command
    code, out, err = ai(capsys, kubeconfig, namespace, verb, name, "no_such_job", *flags)
    assert (code, out) == (ExitCode.NOT_FOUND, "")
    assert err.startswith(
        f"error: job no_such_job not found in namespace {namespace} (looked for no-such-job among TFJob"
    )
    assert err.count("\n") == 1


def test_describe_and_list_say_which_replica_failed_how_and_that_its_log_is_not_available(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    create_tfjob(kube, "broken")
    master = create_pod(kube, "broken", "master", 0, node="node-gone")
    create_pod(kube, "broken", "worker", 0, node="node-gone")
    worker = create_pod(kube, "broken", "worker", 1, node="node-gone")
    # worker-1 failed first; the operator then stopped the master (a consequence, not the cause).
    end_container(
        kube, worker, code=3, message="ValueError: bad shape (3, 4)\n", finished="2026-01-02T03:09:58Z"
    )
    end_container(kube, master, code=137, finished="2026-01-02T03:10:04Z")
    fail_tfjob(kube, "broken")

    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", "broken")
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert doc["state"] == "FAILED"
    assert doc["errorMessage"] == (
        "The replica worker-replica-1 (Pod broken-worker-1, container tensorflow) exited with code 3 (Error): "
        "ValueError: bad shape (3, 4); 1 other replica(s) failed too"
    )
    failure = doc["kubernetes"]["failure"]
    assert failure["condition"] == CONDITION
    first, second = failure["failedReplicas"]
    logs_missing = first.pop("logsNotAvailable")
    assert first == {
        "task": "worker-replica-1",
        "replica": "worker-1",
        "pod": "broken-worker-1",
        "container": "tensorflow",
        "exitCode": 3,
        "reason": "Error",
        "terminationMessage": "ValueError: bad shape (3, 4)",
        "finishedAt": "2026-01-02T03:09:58Z",
    }
    assert logs_missing and "\n" not in logs_missing  # the server cannot reach a kubelet on node-gone
    assert (second["task"], second["exitCode"]) == ("master-replica-0", 137)
    replicas = {r["task"]: r for r in doc["kubernetes"]["replicas"]}
    assert replicas["worker-replica-1"]["reason"] == "exit 3 (Error): ValueError: bad shape (3, 4)"

    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "describe", "broken", "-o", "json")
    assert json.loads(out)["kubernetes"]["failure"]["failedReplicas"][0]["exitCode"] == 3

    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "describe", "broken", "--summarize")
    assert code == 0
    failed_table = out.split("Failed Replicas\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert failed_table[0].split() == ["TASK", "POD", "CONTAINER", "ENDED", "MESSAGE"]
    assert failed_table[1].split() == [
        "worker-replica-1", "broken-worker-1", "tensorflow", "exit", "3", "(Error)", "ValueError:", "bad", "shape", "(3,", "4)",
    ]  # fmt: skip
    assert "Log of worker-replica-1 (Pod broken-worker-1, container tensorflow): logs not available: " in out

    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "wide")
    header, row = out.splitlines()
    assert header.split() == ["JOB_ID", "STATUS", "CREATED", "KIND", "NAME", "QUEUE", "GANG", "REASON"]
    assert row.split()[:2] == ["broken", "FAILED"]
    assert row.endswith("TFJob   broken   <none>   <none>   worker-1 exit 3: ValueError: bad shape (3, 4)")


def test_where_the_operator_deleted_the_pods_the_condition_is_what_is_left(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    create_tfjob(kube, "cleaned", clean_pod_policy="All")
    fail_tfjob(kube, "cleaned")

    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", "cleaned")
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert doc["errorMessage"] == CONDITION
    assert doc["kubernetes"]["failure"] == {
        "condition": CONDITION,
        "note": "the job's Pods are gone (runPolicy.cleanPodPolicy: All): no exit code, termination message "
        "or log to show",
    }
    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "wide")
    assert out.splitlines()[1].endswith(f"TFJob   cleaned   <none>   <none>   {CONDITION}")


# -- the failed container's last lines, through pods/log from a kwok kubelet ------------------------
@pytest.fixture(scope="module")
def log_file(
    kwok: ControlPlane, admin_kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The log of Pod logged-worker-0's container tensorflow: 30 lines, served by a kwok kubelet."""
    path = tmp_path_factory.mktemp("failed-logs") / "worker.log"
    path.write_text(
        "".join(f"2026-01-02T03:05:{i:02d}.000000000Z stdout F step {i}\n" for i in range(29))
        + "2026-01-02T03:09:57.000000000Z stderr F ValueError: bad shape (3, 4)\n"
    )
    logs = [
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "logged-worker"},
            "spec": {
                "selector": {"matchNames": ["logged-worker-0"]},
                "logs": [{"containers": ["tensorflow"], "logsFile": str(path)}],
            },
        }
    ]
    kwok.start_log_kwok(LOG_KWOK, node_annotation="failed-logs", logs=logs)
    admin_kube.delete(kinds.NODES, LOG_KWOK, ignore_missing=True)
    admin_kube.create(
        kinds.NODES,
        {
            "metadata": {"name": LOG_KWOK, "annotations": {"kwok.x-k8s.io/node": "failed-logs"}},
            "status": {
                "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            },
        },
    )
    try:
        yield path
    finally:
        admin_kube.delete(kinds.NODES, LOG_KWOK, ignore_missing=True)
        kwok.servers.pop(LOG_KWOK).stop()


def test_describe_shows_the_last_log_lines_of_the_failed_container(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube, log_file: Path
) -> None:
    create_tfjob(kube, "logged", workers=1)
    worker = create_pod(kube, "logged", "worker", 0, node=LOG_KWOK)
    # kwok runs the Pod first (as a kubelet would); then its container ends.
    wait_for(lambda: (kube.get(kinds.PODS, worker).get("status") or {}).get("phase") == "Running")
    end_container(kube, worker, code=1, finished="2026-01-02T03:09:58Z")
    fail_tfjob(kube, "logged")

    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", "logged")
    assert code == 0, err
    (replica,) = yaml.safe_load(out)["kubernetes"]["failure"]["failedReplicas"]
    assert replica["lastLogLines"] == [*(f"step {i}" for i in range(10, 29)), "ValueError: bad shape (3, 4)"]

    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "describe", "logged", "--summarize")
    assert "Last 20 log lines of worker-replica-0 (Pod logged-worker-0, container tensorflow):\n" in out
    assert out.rstrip().endswith("ValueError: bad shape (3, 4)")
