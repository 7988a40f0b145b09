"""`jobs stream-logs` and `jobs describe` with Loki: lines of Pods that are gone, merged with the live
ones in time order, each once. The API server, its ``pods/log`` and the kubelet (kwok's, serving log
files) are real; Loki is the stand-in of ``kaip_testbed.loki_standin`` (Loki is AGPL and cannot be
built here). The test plays the Training Operator, as tests/integration/aiplatform/test_jobs.py does."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.cli.app import run
from kaip.commands.ai_platform import cli
from kaip.kube.client import Kube
from kaip.logs.merge import format_stamp
from kaip.resources import kinds
from kaip.resources import kubeflow as kf
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.loki_standin import LokiState, serve
from kaip_testbed.plugins import ai

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kubeflow")]

LOG_NODE = "kwok-loki"
TENANT = "team-a"
TOKEN = "loki-token-not-to-be-printed"
S = 1_000_000_000


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def base() -> int:
    """The stamps of every line: a little before the jobs are made."""
    return (time.time_ns() // S - 20) * S


@pytest.fixture(scope="module")
def live_log(
    kwok: ControlPlane, admin_kube: Kube, tmp_path_factory: pytest.TempPathFactory, base: int
) -> Iterator[Path]:
    """The live log of merged-master-0 (container tensorflow), served by a kwok kubelet."""
    path = tmp_path_factory.mktemp("loki-logs") / "master.log"
    path.write_text("".join(f"{format_stamp(base + k * S)} stdout F epoch {k}\n" for k in (1, 2, 3)))
    logs = [
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "merged-master"},
            "spec": {
                "selector": {"matchNames": ["merged-master-0"]},
                "logs": [{"containers": ["tensorflow"], "logsFile": str(path), "follow": True}],
            },
        }
    ]
    kwok.start_log_kwok("kwok-loki", node_annotation="loki", logs=logs)
    admin_kube.delete(kinds.NODES, LOG_NODE, ignore_missing=True)
    admin_kube.create(
        kinds.NODES,
        {
            "metadata": {"name": LOG_NODE, "annotations": {"kwok.x-k8s.io/node": "loki"}},
            "status": {
                "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            },
        },
    )
    try:
        yield path
    finally:
        admin_kube.delete(kinds.NODES, LOG_NODE, ignore_missing=True)
        kwok.servers.pop("kwok-loki").stop()


@pytest.fixture
def loki(kube: Kube, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LokiState]:
    """The stand-in, multi-tenant and behind a bearer token, named by a kaip-logging ConfigMap (in the
    test's namespace, through KAIP_LOGGING_CONFIGMAP) whose token is in a Secret."""
    state = LokiState(token=TOKEN)
    server = serve(state)
    kube.create(
        kinds.SECRETS,
        {"metadata": {"name": "loki-auth"}, "data": {"token": base64.b64encode(TOKEN.encode()).decode()}},
    )
    kube.create(
        kinds.CONFIGMAPS,
        {
            "metadata": {"name": "kaip-logging"},
            "data": {
                "url": f"http://127.0.0.1:{server.server_port}",
                "tenant": TENANT,
                "authSecret": "loki-auth",
            },
        },
    )
    monkeypatch.setenv("KAIP_LOGGING_CONFIGMAP", f"{namespace}/kaip-logging")
    for name in ("KAIP_LOKI_URL", "KAIP_LOKI_TENANT", "KAIP_LOKI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield state
    finally:
        server.shutdown()


def pod_labels(namespace: str, pod: str) -> dict[str, str]:
    return {
        "namespace": namespace,
        "pod": pod,
        "container": "tensorflow",
        "node_name": LOG_NODE,
        "job": f"{namespace}/tensorflow",
    }


def set_conditions(kube: Kube, name: str, *types: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {"type": t, "status": "True", "reason": f"TFJob{t}", "message": t, "lastTransitionTime": now}
        for t in types
    ]
    kube.patch(
        kf.TFJOBS, name, {"status": {"conditions": conditions, "startTime": now}}, subresource="status"
    )


def replica_pod(job: str, rtype: str, node: str) -> dict[str, Any]:
    labels = {kf.LABEL_JOB_NAME: job, kf.LABEL_REPLICA_TYPE: rtype, kf.LABEL_REPLICA_INDEX: "0"}
    return {
        "metadata": {"name": f"{job}-{rtype}-0", "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "tensorflow", "image": "registry.local/train:1"}]},
    }


def line(stamp: int, task: str, text: str) -> str:
    return f"INFO\t{format_stamp(stamp)}\t{task}\t{text}"


def test_without_loki_a_gone_job_is_not_found_in_one_line_with_the_hint(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAIP_LOGGING_CONFIGMAP", f"{namespace}/kaip-logging")
    monkeypatch.delenv("KAIP_LOKI_URL", raising=False)
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "stream-logs", "never_was")
    assert code == 7 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: job never_was not found in namespace {namespace}")
    assert err.rstrip().endswith(
        f"; logs of Pods that are gone are read from Loki once ConfigMap {namespace}/kaip-logging "
        "names it (or KAIP_LOKI_URL / --loki-url); see docs/logs.md"
    )


def test_a_job_long_gone_is_read_from_loki_in_time_order(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    loki: LokiState,
    base: int,
) -> None:
    loki.push(TENANT, pod_labels(namespace, "gone-1-master-0"), [(base + 1 * S, "m1"), (base + 3 * S, "m3")])
    loki.push(TENANT, pod_labels(namespace, "gone-1-worker-0"), [(base + 2 * S, "w2"), (base + 3 * S, "w3")])
    loki.push(TENANT, pod_labels(namespace, "gone-10-master-0"), [(base + 2 * S, "another job")])
    loki.push("team-b", pod_labels(namespace, "gone-1-master-0"), [(base + 2 * S, "another tenant")])
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "stream-logs", "gone_1")
    assert code == 0, err
    assert out.splitlines() == [
        line(base + 1 * S, "master-replica-0", "m1"),
        line(base + 2 * S, "worker-replica-0", "w2"),
        line(base + 3 * S, "master-replica-0", "m3"),
        line(base + 3 * S, "worker-replica-0", "w3"),
    ]
    assert TOKEN not in out + err
    assert {r["tenant"] for r in loki.requests} == {TENANT}
    # --task-name, and a Loki that answers 429 and 503 before it answers.
    loki.fail[:] = [429, 503]
    code, out, err = ai(
        capsys, kubeconfig, namespace, "jobs", "stream-logs", "gone_1", "--task-name=worker-replica-0"
    )
    assert code == 0, err
    assert out.splitlines() == [
        line(base + 2 * S, "worker-replica-0", "w2"),
        line(base + 3 * S, "worker-replica-0", "w3"),
    ]
    # Nothing anywhere: one line, exit 7.
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "stream-logs", "nothing_1")
    assert code == 7 and out == ""
    assert "no logs anywhere" in err and len(err.strip().splitlines()) == 1


def test_live_and_stored_lines_merge_each_once(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    loki: LokiState,
    live_log: Path,
    base: int,
) -> None:
    assert (
        ai(capsys, kubeconfig, namespace, "jobs", "submit", "training", "merged", "--master-image-uri=i")[0]
        == 0
    )
    kube.create(kinds.PODS, replica_pod("merged", "master", LOG_NODE))
    wait_for(lambda: (kube.get(kinds.PODS, "merged-master-0").get("status") or {}).get("phase") == "Running")
    # Loki holds an earlier run of the master (not in the live log) and the live log's first lines,
    # and a worker whose Pod is gone.
    loki.push(
        TENANT,
        pod_labels(namespace, "merged-master-0"),
        [(base, "earlier run"), (base + 1 * S, "epoch 1"), (base + 2 * S, "epoch 2")],
    )
    loki.push(TENANT, pod_labels(namespace, "merged-worker-0"), [(base + 2 * S + 5, "worker gone")])

    result: dict[str, Any] = {}

    def stream() -> None:
        argv = [
            "jobs",
            "stream-logs",
            "merged",
            "--polling-interval=1",
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            namespace,
        ]
        result["code"] = run(cli, argv, prog_name="kubectl ai-platform")

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    time.sleep(3)
    with live_log.open("a") as log:
        log.write(f"{format_stamp(base + 4 * S)} stdout F epoch 4\n")
    time.sleep(2)
    set_conditions(kube, "merged", "Created", "Running", "Succeeded")
    streamer.join(60)
    assert not streamer.is_alive(), "stream-logs did not end with the job"
    assert result["code"] == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        line(base, "master-replica-0", "earlier run"),
        line(base + 1 * S, "master-replica-0", "epoch 1"),
        line(base + 2 * S, "master-replica-0", "epoch 2"),
        line(base + 2 * S + 5, "worker-replica-0", "worker gone"),
        line(base + 3 * S, "master-replica-0", "epoch 3"),
        line(base + 4 * S, "master-replica-0", "epoch 4"),
    ]


def test_describe_of_a_failed_job_shows_its_last_lines_from_loki_when_the_node_is_gone(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    loki: LokiState,
    base: int,
) -> None:
    assert (
        ai(capsys, kubeconfig, namespace, "jobs", "submit", "training", "broke", "--master-image-uri=i")[0]
        == 0
    )
    pod = replica_pod("broke", "master", "node-gone")
    pod["spec"]["restartPolicy"] = "Never"
    kube.create(kinds.PODS, pod)
    terminated = {
        "exitCode": 2,
        "reason": "Error",
        "startedAt": "2026-01-02T03:00:10Z",
        "finishedAt": "2026-01-02T03:01:10Z",
    }
    status = {
        "phase": "Failed",
        "containerStatuses": [
            {"name": "tensorflow", "image": "registry.local/train:1", "imageID": "", "ready": False,
             "restartCount": 0, "started": False, "state": {"terminated": terminated}}
        ],
    }  # fmt: skip
    kube.patch(kinds.PODS, "broke-master-0", {"status": status}, subresource="status")
    set_conditions(kube, "broke", "Created", "Failed")
    loki.push(
        TENANT,
        pod_labels(namespace, "broke-master-0"),
        [(base + k * S // 100, f"step {k}") for k in range(30)] + [(base + S, "Traceback: boom")],
    )
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", "broke", "-o", "json")
    assert code == 0, err
    import json

    first = json.loads(out)["kubernetes"]["failure"]["failedReplicas"][0]
    assert first["pod"] == "broke-master-0"
    assert first["lastLogLines"][-1] == "Traceback: boom"
    assert first["lastLogLines"][0] == "step 11"  # the last 20 lines


def test_describe_of_a_failed_job_whose_pods_are_gone_shows_its_last_lines_from_loki(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    loki: LokiState,
    kube: Kube,
    base: int,
) -> None:
    """cleanPodPolicy removed every Pod: the failure has no replica left, the log store still has its
    lines, and describe shows them (text and JSON) instead of saying there is no log."""
    assert (
        ai(capsys, kubeconfig, namespace, "jobs", "submit", "training", "cleaned", "--master-image-uri=i")[0]
        == 0
    )
    set_conditions(kube, "cleaned", "Created", "Failed")
    lines = [(base + k * S // 100, f"step {k}") for k in range(5)] + [(base + S, "Traceback: gone")]
    loki.push(TENANT, pod_labels(namespace, "cleaned-master-0"), lines)
    loki.push(TENANT, pod_labels(namespace, "other-master-0"), [(base + 2 * S, "not this job")])
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", "cleaned", "-o", "json")
    assert code == 0, err
    import json

    failure = json.loads(out)["kubernetes"]["failure"]
    assert failure["lastStoredLogLines"] == [
        "step 0",
        "step 1",
        "step 2",
        "step 3",
        "step 4",
        "Traceback: gone",
    ]
    assert "or log to show" not in failure["note"] and "Pods are gone" in failure["note"]
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", "cleaned", "--summarize")
    assert code == 0, err
    assert "log lines of the job, from Loki:" in out and "  Traceback: gone" in out
    assert "not this job" not in out and TOKEN not in out + err
