"""gcloud's states from a job's conditions and Pods, the list filter/sort rules and task names."""

from __future__ import annotations

from typing import Any

import pytest

from kaip.aiplatform import states, views
from kaip.errors import UsageError


def job(
    conditions: tuple[str, ...] = (),
    *,
    replicas: int = 2,
    cancel: bool = False,
    suspend: bool = False,
    labels: dict[str, str] | None = None,
    message: str = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "j",
        "namespace": "ns",
        "creationTimestamp": "2026-01-02T03:04:05Z",
        "labels": labels or {},
    }
    if cancel:
        meta["annotations"] = {"ai-platform.kaip.dev/cancel-requested": "2026-01-02T04:00:00Z"}
    spec: dict[str, Any] = {
        "tfReplicaSpecs": {"Master": {"replicas": 1}, "Worker": {"replicas": replicas - 1}}
    }
    if suspend:
        spec["runPolicy"] = {"suspend": True}
    conds = [{"type": c, "status": "True", "message": message} for c in conditions]
    return {"kind": "TFJob", "metadata": meta, "spec": spec, "status": {"conditions": conds}}


def pod(
    name: str,
    phase: str = "Running",
    *,
    rtype: str = "worker",
    index: int = 0,
    gates: tuple[str, ...] = (),
    node: str | None = "n1",
    unschedulable: str = "",
    waiting: str = "",
    init_running: str = "",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "imagenet"}}]}
    if gates:
        spec["schedulingGates"] = [{"name": g} for g in gates]
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {"phase": phase}
    if unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "message": unschedulable}]
    if waiting:
        status["containerStatuses"] = [{"name": "tensorflow", "state": {"waiting": {"reason": waiting}}}]
    if init_running:
        status["initContainerStatuses"] = [{"name": init_running, "state": {"running": {}}}]
    labels = {"training.kubeflow.org/replica-type": rtype, "training.kubeflow.org/replica-index": str(index)}
    return {"metadata": {"name": name, "labels": labels}, "spec": spec, "status": status}


def state(j: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[str, str]:
    s = states.job_state(j, pods)
    return s.state, s.reason


def test_no_pods_is_queued() -> None:
    assert state(job(), [])[0] == "QUEUED"
    assert state(job(("Created",)), [])[0] == "QUEUED"


def test_kueue_suspended_job_is_queued_with_its_queue() -> None:
    assert state(job(("Created", "Suspended"), labels={"kueue.x-k8s.io/queue-name": "team"}), []) == (
        "QUEUED",
        "suspended until queue team admits it",
    )


def test_running_condition_with_pending_pods_is_preparing() -> None:
    pods = [pod("j-master-0", rtype="master"), pod("j-worker-0", "Pending", node=None)]
    assert state(job(("Created", "Running")), pods) == ("PREPARING", "j-worker-0 waits for a node")


def test_pods_waiting_for_data_are_preparing_and_say_so() -> None:
    pods = [pod("j-master-0", "Pending", rtype="master", gates=("kaip.dev/data-preload",), node=None)]
    s, reason = state(job(("Created",), replicas=1), pods)
    assert s == "PREPARING"
    assert reason == "j-master-0 waits for its data to be loaded (imagenet)"


@pytest.mark.parametrize(
    ("p", "reason"),
    [
        (
            pod("p", "Pending", node=None, unschedulable="0/3 nodes have nvidia.com/gpu"),
            "p cannot be scheduled: 0/3 nodes have nvidia.com/gpu",
        ),
        (pod("p", "Pending", waiting="ImagePullBackOff"), "p: ImagePullBackOff"),
        (
            pod("p", "Pending", init_running="kaip-wait-for-peers"),
            "p waits for its master (or workers) to come up",
        ),
    ],
)
def test_why_a_pod_waits(p: dict[str, Any], reason: str) -> None:
    assert states.pod_waiting_reason(p) == reason


def test_all_replicas_running_is_running() -> None:
    pods = [pod("j-master-0", rtype="master"), pod("j-worker-0")]
    assert state(job(("Created", "Running")), pods) == ("RUNNING", "")


def test_succeeded_and_failed() -> None:
    assert state(job(("Created", "Running", "Succeeded")), [])[0] == "SUCCEEDED"
    assert state(job(("Created", "Failed"), message="OOMKilled in master"), []) == (
        "FAILED",
        "OOMKilled in master",
    )


def test_cancel_is_cancelling_until_pods_are_gone() -> None:
    pods = [pod("j-master-0", rtype="master")]
    assert state(job(("Created", "Running"), cancel=True, suspend=True), pods)[0] == "CANCELLING"
    done = [pod("j-master-0", "Failed", rtype="master")]
    assert state(job(("Created", "Suspended"), cancel=True, suspend=True), done)[0] == "CANCELLED"


def test_finished_job_stays_finished_after_a_cancel() -> None:
    assert state(job(("Succeeded",), cancel=True), [])[0] == "SUCCEEDED"


def v(job_id: str, state_: str, created: str, **labels: str) -> views.JobView:
    return views.JobView(
        job_id,
        job_id.lower(),
        "ns",
        "TFJob",
        states.JobState(state_),
        created,
        "",
        "",
        labels,
        {"scaleTier": "basic"},
    )


VIEWS = [
    v("a_job", "RUNNING", "2026-01-01T00:00:00Z", team="vision"),
    v("b_job", "FAILED", "2026-01-03T00:00:00Z", team="nlp"),
    v("c_job", "RUNNING", "2026-01-02T00:00:00Z", team="nlp"),
]


@pytest.mark.parametrize(
    ("expr", "ids"),
    [
        ("state=RUNNING", ["a_job", "c_job"]),
        ("status=running", ["a_job", "c_job"]),
        ("state!=RUNNING", ["b_job"]),
        ("labels.team=nlp AND state=RUNNING", ["c_job"]),
        ("labels.team=nlp state=FAILED", ["b_job"]),
        ("jobId:b_", ["b_job"]),
        ("createTime>2026-01-02", ["b_job", "c_job"]),
        ("trainingInput.scaleTier=basic", ["a_job", "b_job", "c_job"]),
        ("", ["a_job", "b_job", "c_job"]),
    ],
)
def test_filter(expr: str, ids: list[str]) -> None:
    test = views.compile_filter(expr)
    assert [x.job_id for x in VIEWS if test(x)] == ids


def test_filter_refuses_unknown_keys() -> None:
    with pytest.raises(UsageError, match="unknown key 'colour'"):
        views.compile_filter("colour=red")


def test_sort_newest_first_by_default_and_by_fields() -> None:
    assert [x.job_id for x in views.sort_views(VIEWS, [])] == ["b_job", "c_job", "a_job"]
    assert [x.job_id for x in views.sort_views(VIEWS, ["state", "~jobId"])] == ["b_job", "c_job", "a_job"]
    assert [x.job_id for x in views.sort_views(VIEWS, ["jobId"])] == ["a_job", "b_job", "c_job"]


@pytest.mark.parametrize(
    ("kind", "rtype", "index", "task"),
    [
        ("TFJob", "master", 0, "master-replica-0"),
        ("TFJob", "chief", 0, "master-replica-0"),
        ("TFJob", "worker", 2, "worker-replica-2"),
        ("TFJob", "ps", 1, "ps-replica-1"),
        ("TFJob", "evaluator", 0, "evaluator-replica-0"),
        ("MPIJob", "launcher", 0, "master-replica-0"),
        ("JAXJob", "worker", 0, "master-replica-0"),
        ("JAXJob", "worker", 3, "worker-replica-2"),
    ],
)
def test_task_names(kind: str, rtype: str, index: int, task: str) -> None:
    assert views.task_name(pod("p", rtype=rtype, index=index), kind) == task


def test_document_is_gclouds_job() -> None:
    view = views.view(job(("Created", "Failed"), message="exit 1"), [])
    doc = view.document()
    assert doc["jobId"] == "j" and doc["state"] == "FAILED" and doc["errorMessage"] == "exit 1"
    assert doc["createTime"] == "2026-01-02T03:04:05Z"
    failure = doc["kubernetes"].pop("failure")
    assert doc["kubernetes"] == {"kind": "TFJob", "name": "j", "namespace": "ns"}
    # No Pods to name the replica: the operator's condition, and why there is nothing more.
    assert failure["condition"] == "exit 1" and "the job's Pods are gone" in failure["note"]
