"""Queue (Kueue Workload) and gang (PodGroup) state of a job, as `jobs list -o wide` and `describe`
show it."""

from __future__ import annotations

from typing import Any

from kaip.aiplatform import queueing, states, summary, views

JOB: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "TFJob",
    "metadata": {
        "name": "big",
        "namespace": "team",
        "uid": "u-1",
        "labels": {"kueue.x-k8s.io/queue-name": "gpus"},
        "creationTimestamp": "2026-12-06T08:00:00Z",
    },
    "spec": {"runPolicy": {"suspend": True}, "tfReplicaSpecs": {"Master": {"replicas": 1}}},
    "status": {"conditions": [{"type": "Suspended", "status": "True"}]},
}
OWNED = [{"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "name": "big", "uid": "u-1"}]
QUOTA_MESSAGE = (
    "couldn't assign flavors to pod set master: insufficient unused quota for nvidia.com/gpu in flavor gpus, "
    "8 more needed"
)


def workload(*conditions: dict[str, Any], active: bool = True, name: str = "tfjob-big-1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "ownerReferences": OWNED, "creationTimestamp": "2026-12-06T08:00:01Z"},
        "spec": {"active": active, "queueName": "gpus"},
        "status": {"conditions": list(conditions)},
    }


def test_a_pending_workload_makes_the_queued_reason_kueues_message() -> None:
    pending = workload(
        {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": QUOTA_MESSAGE}
    )
    view = views.view(JOB, [], workloads=[pending])
    assert view.state == states.JobState(states.QUEUED, f"waiting in queue gpus: {QUOTA_MESSAGE}")
    assert view.admission.queue_cell() == "gpus (waiting)"
    assert view.document()["kubernetes"]["scheduling"] == {
        "queue": {"name": "gpus", "admitted": False, "workload": "tfjob-big-1", "waiting": QUOTA_MESSAGE}
    }


def test_an_admitted_workload_names_its_cluster_queue() -> None:
    admitted = workload({"type": "QuotaReserved", "status": "True"}, {"type": "Admitted", "status": "True"})
    admitted["status"]["admission"] = {"clusterQueue": "team-gpus"}
    found = queueing.admission(JOB, workloads=[admitted])
    assert found.admitted and found.cluster_queue == "team-gpus" and not found.waiting
    assert found.queue_cell() == "gpus (admitted)"


def test_a_deactivated_workload_says_it_will_not_be_admitted() -> None:
    found = queueing.admission(JOB, workloads=[workload(active=False)])
    assert found.waiting == "deactivated (it will not be admitted)"


def test_another_jobs_workload_and_a_job_without_a_queue_are_not_mixed_up() -> None:
    other = workload({"type": "QuotaReserved", "status": "False", "message": "x"})
    other["metadata"]["ownerReferences"] = [{**OWNED[0], "uid": "u-2"}]
    found = queueing.admission(JOB, workloads=[other])
    assert found.queue == "gpus" and not found.workload and found.queue_cell() == "gpus (not seen by Kueue)"
    plain = {**JOB, "metadata": {**JOB["metadata"], "labels": {}}}
    assert queueing.admission(plain, workloads=[other]).queue_cell() == queueing.NONE
    assert views.view(plain, []).state.reason == "suspended"


def test_the_gang_shows_running_of_min_member_and_the_phase() -> None:
    group = {
        "metadata": {"name": "big", "ownerReferences": OWNED},
        "spec": {"minMember": 6},
        "status": {"phase": "Scheduling", "running": 0},
    }
    found = queueing.admission(JOB, podgroups=[group])
    assert found.gang_cell() == "0/6 Scheduling"
    assert found.document()["gang"] == {
        "podGroup": "big",
        "minMember": 6,
        "phase": "Scheduling",
        "running": 0,
    }
    assert queueing.admission(JOB).gang_cell() == queueing.NONE


def test_describe_summarize_has_a_scheduling_box() -> None:
    admitted = workload({"type": "Admitted", "status": "True"})
    admitted["status"]["admission"] = {"clusterQueue": "team-gpus"}
    sections = summary.summary_sections(views.view(JOB, [], workloads=[admitted]), [])
    assert (
        "Scheduling",
        ["queue", "cluster_queue", "gang"],
        [["gpus (admitted)", "team-gpus", "<none>"]],
    ) in sections
    plain = {**JOB, "metadata": {**JOB["metadata"], "labels": {}}}
    assert "Scheduling" not in [title for title, _, _ in summary.summary_sections(views.view(plain, []), [])]
