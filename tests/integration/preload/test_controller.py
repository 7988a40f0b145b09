"""The data-loader controller against the real API server, kube-controller-manager and MinIO.

The controller runs as a subprocess (``kaip-controller``) under the identity of its ServiceAccount
with the ClusterRole of manifests/data-loader/rbac.yaml, so its least privilege is exercised too; a
kubelet stand-in (kaip_testbed.dataloader.Kubelet) runs the loader Pods the Job controller creates.
"""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import kinds
from kaip_testbed import binaries
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.dataloader import (
    BINDINGS,
    POLICIES,
    POLICY_FILE,
    ControllerProcess,
    Kubelet,
    grant_lease,
)
from kaip_testbed.objectstores import S3Server
from kaip_testbed.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]


@pytest.fixture
def policies(admin_kube: Kube, namespace: str) -> Iterator[None]:
    """Every policy of manifests/data-loader/policy.yaml, bound to the test's namespace only: the
    controller and its loaders work under them."""
    names = []
    for doc in [d for d in yaml.safe_load_all(POLICY_FILE.read_text()) if d]:
        name = f"{doc['metadata']['name']}-{namespace[-6:]}"
        names.append((POLICIES if doc["kind"] == "ValidatingAdmissionPolicy" else BINDINGS, name))
        doc["metadata"]["name"] = name
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] = f"{doc['spec']['policyName']}-{namespace[-6:]}"
            selector = doc["spec"].setdefault("matchResources", {}).setdefault("namespaceSelector", {})
            selector.setdefault("matchExpressions", []).append(
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
            )
        admin_kube.create(POLICIES if doc["kind"] == "ValidatingAdmissionPolicy" else BINDINGS, doc)
    yield
    for resource, name in reversed(names):
        admin_kube.delete(resource, name, ignore_missing=True)


@pytest.fixture
def controllers(
    controller_kubeconfig: Path, admin_kube: Kube, namespace: str, tmp_path: Path, policies: None
) -> Iterator[Callable[[str], ControllerProcess]]:
    grant_lease(admin_kube, namespace)
    started: list[ControllerProcess] = []

    def start(identity: str) -> ControllerProcess:
        proc = ControllerProcess(controller_kubeconfig, namespace, identity, tmp_path)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def kubelet(kube: Kube, cluster_controllers: ControlPlane, tmp_path: Path) -> Iterator[Kubelet]:
    with Kubelet(kube, cluster_controllers, tmp_path / "volumes") as runner:
        yield runner


# -- data -----------------------------------------------------------------------------------------
@pytest.fixture
def bucket(s3_server: S3Server, bucket_name: str) -> str:
    client: Any = s3_server.client()
    client.create_bucket(Bucket=bucket_name)
    objects = {
        "data/a/train/0001.bin": b"x" * 70_000,
        "data/a/train/0002.bin": b"y" * 1_000,
        "data/a/labels.csv": b"id,label\n1,cat\n",
        "data/ab/not-mine.txt": b"a sibling prefix, not a sub-directory",
    }
    for key, body in objects.items():
        client.put_object(Bucket=bucket_name, Key=key, Body=body)
    return bucket_name


def credentials(kube: Kube, s3: S3Server, name: str = "minio") -> str:
    kube.create(
        kinds.SECRETS,
        {
            "metadata": {"name": name},
            "type": "kaip.dev/aws-credentials",
            "stringData": {
                "aws_access_key_id": s3.access_key,
                "aws_secret_access_key": s3.secret_key,
                "endpoint_url": s3.endpoint,
                "region": "us-east-1",
            },
        },
    )
    return name


def preload_pvc(kube: Kube, name: str, source: str, **annotations: str) -> dict[str, Any]:
    notes = {"preload.kaip.dev/source": source}
    notes.update({f"preload.kaip.dev/{k}": v for k, v in annotations.items()})
    return kube.create(
        kinds.PVCS,
        {
            "metadata": {"name": name, "annotations": notes},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )


def condition(kube: Kube, name: str) -> dict[str, Any] | None:
    pvc = kube.get(kinds.PVCS, name)
    return next(
        (c for c in (pvc.get("status") or {}).get("conditions") or () if c["type"] == "DataLoaded"), None
    )


def loader_jobs(kube: Kube, pvc: str | None = None) -> list[dict[str, Any]]:
    selector = "app.kubernetes.io/component=kaip-data-loader"
    if pvc:
        selector += f",preload.kaip.dev/pvc={pvc}"
    return kube.list(kinds.JOBS, label_selector=selector).get("items") or []


def events_of(kube: Kube, name: str) -> list[dict[str, Any]]:
    items = kube.list(kinds.EVENTS).get("items") or []
    return [e for e in items if e["involvedObject"]["name"] == name]


def kubectl_wait(
    kubeconfig: Path, namespace: str, pvc: str, timeout: int = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binaries.path_of("kubectl"),
            f"--kubeconfig={kubeconfig}",
            "-n",
            namespace,
            "wait",
            "--for=condition=DataLoaded",
            f"pvc/{pvc}",
            f"--timeout={timeout}s",
        ],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        check=False,
    )


# -- the tests ------------------------------------------------------------------------------------
def test_a_pvc_created_through_the_api_ends_loaded_with_its_objects(
    kube: Kube,
    admin_kube: Kube,
    namespace: str,
    controllers: Callable[[str], ControllerProcess],
    kubelet: Kubelet,
    bucket: str,
    s3_server: S3Server,
    control_plane: ControlPlane,
) -> None:
    # The loader Pod must be admitted under the restricted Pod Security Standard.
    admin_kube.patch(
        kinds.NAMESPACES,
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    secret = credentials(kube, s3_server)
    messages: list[tuple[str, str]] = []

    def record() -> None:
        for _kind, obj in kube.watch(kinds.PVCS, field_selector="metadata.name=data", timeout_seconds=60):
            for c in (obj.get("status") or {}).get("conditions") or ():
                if c["type"] == "DataLoaded" and (c["status"], c.get("message", "")) not in messages:
                    messages.append((c["status"], c.get("message", "")))
                    if c["status"] != "Unknown":
                        return

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    time.sleep(0.5)
    preload_pvc(kube, "data", f"s3://{bucket}/data/a", credentials=secret, path="sets/v1")
    controller = controllers("solo")

    done = kubectl_wait(control_plane.kubeconfig, namespace, "data")
    assert done.returncode == 0, done.stderr
    watcher.join(30)

    volume = kubelet.volume("data")
    assert (volume / "sets/v1/train/0001.bin").read_bytes() == b"x" * 70_000
    assert (volume / "sets/v1/labels.csv").read_bytes() == b"id,label\n1,cat\n"
    assert not (volume / "sets/v1/not-mine.txt").exists()
    assert not list(volume.rglob("not-mine.txt"))

    final = condition(kube, "data")
    assert final is not None and final["reason"] == "Succeeded"
    assert "3/3 objects" in final["message"]
    # Progress went through the condition while loading (written by the loader's narrow token).
    assert ("Unknown", "3/3 objects, 71015/71015 bytes") in messages
    pvc = kube.get(kinds.PVCS, "data")
    assert pvc["metadata"]["annotations"]["preload.kaip.dev/loaded-digest"].startswith("sha256:")
    (job,) = loader_jobs(kube, "data")
    assert job["metadata"]["ownerReferences"][0]["uid"] == pvc["metadata"]["uid"]
    reasons = [e["reason"] for e in events_of(kube, "data")]
    assert "LoadStarted" in reasons and "Loaded" in reasons

    # The probes and metrics the Deployment points at.
    base = f"http://127.0.0.1:{controller.health_port}"
    assert urllib.request.urlopen(f"{base}/healthz", timeout=5).status == 200
    assert urllib.request.urlopen(f"{base}/readyz", timeout=5).status == 200
    metrics = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
    assert "kaip_preload_leader 1" in metrics and "kaip_preload_jobs_created_total 1" in metrics


def test_failures_end_false_with_the_reason_and_are_not_retried(
    kube: Kube, controllers: Callable[[str], ControllerProcess], kubelet: Kubelet, s3_server: S3Server
) -> None:
    secret = credentials(kube, s3_server)
    preload_pvc(kube, "missing", "s3://kaip-no-such-bucket/data", credentials=secret)
    preload_pvc(kube, "bad", "ftp://example.org/data")
    controllers("solo")

    failed = wait_for(
        lambda: (c := condition(kube, "missing")) and c["status"] == "False" and c, what="missing ends False"
    )
    assert failed["reason"] == "SourceNotFound"
    assert "kubectl pvc-preload retry missing" in failed["message"]
    bad = wait_for(
        lambda: (c := condition(kube, "bad")) and c["status"] == "False" and c, what="bad ends False"
    )
    assert bad["reason"] == "InvalidSource"
    assert "preload.kaip.dev/source" in bad["message"] and "ftp" in bad["message"]

    time.sleep(6)  # a resync later: nothing was tried again
    assert [p for p in kubelet.ran if p.startswith("kaip-load-missing-")] and len(kubelet.ran) == 1
    assert loader_jobs(kube, "bad") == []
    warnings = {
        e["reason"] for e in events_of(kube, "missing") + events_of(kube, "bad") if e["type"] == "Warning"
    }
    assert warnings == {"SourceNotFound", "InvalidSource"}
    assert sum(1 for e in events_of(kube, "bad") if e["reason"] == "InvalidSource") == 1


def test_a_gated_pod_is_released_exactly_when_its_data_is_there(
    kube: Kube,
    controllers: Callable[[str], ControllerProcess],
    kubelet: Kubelet,
    bucket: str,
    s3_server: S3Server,
) -> None:
    secret = credentials(kube, s3_server)
    kubelet.hold.set()
    preload_pvc(kube, "data", f"s3://{bucket}/data/a", credentials=secret)
    kube.create(
        kinds.PODS,
        {
            "metadata": {"name": "train"},
            "spec": {
                "schedulingGates": [{"name": "kaip.dev/data-preload"}],
                "containers": [{"name": "main", "image": "busybox"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    )
    controllers("solo")
    wait_for(lambda: loader_jobs(kube, "data"), what="the loader Job")
    wait_for(
        lambda: any(e["reason"] == "WaitingForData" for e in events_of(kube, "train")), what="a waiting Event"
    )
    time.sleep(3)
    assert kube.get(kinds.PODS, "train")["spec"].get("schedulingGates") == [{"name": "kaip.dev/data-preload"}]

    kubelet.hold.clear()
    wait_for(
        lambda: not kube.get(kinds.PODS, "train")["spec"].get("schedulingGates"), timeout=90, what="release"
    )
    final = condition(kube, "data")
    assert final is not None and final["status"] == "True"
    assert (kubelet.volume("data") / "train/0001.bin").exists()
    assert any(e["reason"] == "DataReady" for e in events_of(kube, "train"))


def test_a_failed_load_tells_the_waiting_pod_why_it_will_not_start(
    kube: Kube, controllers: Callable[[str], ControllerProcess], kubelet: Kubelet, s3_server: S3Server
) -> None:
    preload_pvc(kube, "data", "s3://kaip-no-such-bucket/x", credentials=credentials(kube, s3_server))
    kube.create(
        kinds.PODS,
        {
            "metadata": {"name": "train"},
            "spec": {
                "schedulingGates": [{"name": "kaip.dev/data-preload"}],
                "containers": [{"name": "main", "image": "busybox"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    )
    controllers("solo")
    event = wait_for(
        lambda: next((e for e in events_of(kube, "train") if e["reason"] == "DataLoadFailed"), None),
        what="the will-not-start Event",
    )
    assert event["type"] == "Warning" and "SourceNotFound" in event["message"]
    assert kube.get(kinds.PODS, "train")["spec"]["schedulingGates"] == [{"name": "kaip.dev/data-preload"}]


def test_a_controller_killed_midway_leaves_exactly_one_job(
    kube: Kube,
    namespace: str,
    controllers: Callable[[str], ControllerProcess],
    kubelet: Kubelet,
    bucket: str,
    s3_server: S3Server,
) -> None:
    secret = credentials(kube, s3_server)
    kubelet.hold.set()
    claims = [f"data-{i}" for i in range(5)]
    for claim in claims:
        preload_pvc(kube, claim, f"s3://{bucket}/data/a", credentials=secret)
    # Kill replicas at different points of their work, each one SIGKILLed.
    for round_, delay in enumerate((1.0, 2.5, 4.0, 6.0)):
        proc = controllers(f"r{round_}")
        time.sleep(delay)
        proc.kill()
    assert loader_jobs(kube), "no replica got to create a Job: the test proves nothing"
    controllers("last")
    wait_for(lambda: len(loader_jobs(kube)) == len(claims), timeout=60, what="a Job per PVC")
    kubelet.hold.clear()
    for claim in claims:
        wait_for(
            lambda c=claim: (cond := condition(kube, c)) and cond["status"] == "True",
            timeout=120,
            what=f"{claim} loaded",
        )
    for claim in claims:
        assert len(loader_jobs(kube, claim)) == 1
    assert len(kubelet.ran) == len(claims)


def test_two_replicas_do_not_both_act(
    kube: Kube,
    namespace: str,
    controllers: Callable[[str], ControllerProcess],
    kubelet: Kubelet,
    bucket: str,
    s3_server: S3Server,
) -> None:
    secret = credentials(kube, s3_server)
    first, second = controllers("a"), controllers("b")
    lease = wait_for(lambda: _lease_holder(kube), what="a leader")
    preload_pvc(kube, "one", f"s3://{bucket}/data/a", credentials=secret)
    wait_for(lambda: (c := condition(kube, "one")) and c["status"] == "True", timeout=90, what="one loaded")
    actors = {
        e.get("reportingInstance")
        for e in events_of(kube, "one")
        if e["source"].get("component") == "kaip-data-loader"
    }
    assert actors == {lease}
    assert len(loader_jobs(kube, "one")) == 1

    (first if lease == "a" else second).kill()
    preload_pvc(kube, "two", f"s3://{bucket}/data/a", credentials=secret)
    wait_for(lambda: (c := condition(kube, "two")) and c["status"] == "True", timeout=90, what="two loaded")
    other = "b" if lease == "a" else "a"
    assert {
        e.get("reportingInstance")
        for e in events_of(kube, "two")
        if e["source"].get("component") == "kaip-data-loader"
    } == {other}
    assert _lease_holder(kube) == other
    assert len(loader_jobs(kube, "two")) == 1


def _lease_holder(kube: Kube) -> str | None:
    try:
        lease = kube.get(kinds.LEASES, "kaip-data-loader")
    except NotFound:
        return None
    return (lease.get("spec") or {}).get("holderIdentity") or None


def test_a_retry_reuses_what_is_loaded_and_a_new_source_replaces_the_job(
    kube: Kube,
    controllers: Callable[[str], ControllerProcess],
    kubelet: Kubelet,
    bucket: str,
    s3_server: S3Server,
) -> None:
    secret = credentials(kube, s3_server)
    preload_pvc(kube, "data", f"s3://{bucket}/data/a", credentials=secret)
    controllers("solo")
    wait_for(lambda: (c := condition(kube, "data")) and c["status"] == "True", timeout=90, what="first load")
    (first,) = loader_jobs(kube, "data")

    kube.patch(kinds.PVCS, "data", {"metadata": {"annotations": {"preload.kaip.dev/retry": "1"}}})
    again = wait_for(
        lambda: len(kubelet.ran) == 2 and (c := condition(kube, "data")) and c["status"] == "True" and c,
        timeout=90,
        what="the retried load",
    )
    assert "0 copied, 3 already there" in again["message"]

    kube.patch(
        kinds.PVCS,
        "data",
        {"metadata": {"annotations": {"preload.kaip.dev/source": f"s3://{bucket}/data/ab"}}},
    )
    wait_for(lambda: len(kubelet.ran) == 3, timeout=60, what="a Job for the new source")
    wait_for(
        lambda: (c := condition(kube, "data")) and c["status"] == "True" and "1/1 objects" in c["message"],
        timeout=90,
        what="new source loaded",
    )
    wait_for(lambda: len(loader_jobs(kube, "data")) == 1, timeout=30, what="the old Jobs gone")
    (current,) = loader_jobs(kube, "data")
    assert current["metadata"]["name"] != first["metadata"]["name"]
    assert current["metadata"]["annotations"]["preload.kaip.dev/source"] == f"s3://{bucket}/data/ab/"
    assert (kubelet.volume("data") / "not-mine.txt").exists()
