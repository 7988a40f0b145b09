"""gcloud's job states from a Kubeflow job's conditions and its Pods. Pure.

The conditions alone lie (an operator says Running while every Pod is Pending), so a job reads
RUNNING only when each replica it asked for has a running Pod; until then it is PREPARING, with
the reason a user needs (waiting for data, unschedulable, pulling the image, waiting for the master).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaip.aiplatform import trainjobs
from kaip.kube.objects import annotations_of, conditions_of, labels_of, metadata, name_of, spec_of, status_of
from kaip.resources import kubeflow as kf
from kaip.resources import preload, trainer

QUEUED = "QUEUED"
PREPARING = "PREPARING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLING = "CANCELLING"
CANCELLED = "CANCELLED"
STATES = (QUEUED, PREPARING, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED)
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass(frozen=True)
class JobState:
    state: str
    #: Why, in a sentence (empty when nothing needs saying).
    reason: str = ""


def condition(obj: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for cond in conditions_of(obj):
        if cond.get("type") == ctype and cond.get("status") == "True":
            return dict(cond)
    return None


def expected_replicas(job: Mapping[str, Any]) -> int:
    if trainjobs.is_trainjob(job):
        return trainjobs.node_count(job)
    kind = kf.BY_KIND.get(str(job.get("kind")))
    if kind is None:
        return 0
    specs = spec_of(job).get(kind.replica_key) or {}
    return sum(int(s.get("replicas", 1) if s.get("replicas") is not None else 1) for s in specs.values())


def _active(pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        p
        for p in pods
        if status_of(p).get("phase") not in ("Succeeded", "Failed")
        and not metadata(p).get("deletionTimestamp")
    ]


def pod_waiting_reason(pod: Mapping[str, Any]) -> str:
    """Why a Pod is not running yet, in words ('' when it runs)."""
    name = name_of(pod) or "?"
    spec, status = spec_of(pod), status_of(pod)
    gates = [g.get("name") for g in spec.get("schedulingGates") or []]
    if preload.SCHEDULING_GATE in gates:
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in spec.get("volumes") or []
            if v.get("persistentVolumeClaim")
        ]
        return f"{name} waits for its data to be loaded ({', '.join(claims) or 'preload PVC'})"
    if gates:
        return f"{name} is held by scheduling gate(s) {', '.join(str(g) for g in gates)}"
    for cond in conditions_of(pod):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return (
                f"{name} cannot be scheduled: {cond.get('message') or cond.get('reason') or 'no node fits'}"
            )
    if status.get("phase") == "Pending" and not spec.get("nodeName"):
        return f"{name} waits for a node"
    for cs in status.get("initContainerStatuses") or []:
        if "running" in (cs.get("state") or {}) and cs.get("name") == "kaip-wait-for-peers":
            return f"{name} waits for its master (or workers) to come up"
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return f"{name} init container {cs.get('name')}: {waiting.get('reason')} {waiting.get('message') or ''}".strip()
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return f"{name}: {waiting.get('reason')} {waiting.get('message') or ''}".strip()
    if status.get("phase") != "Running":
        return f"{name} is {status.get('phase') or 'Pending'}"
    return ""


def job_state(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> JobState:
    """The gcloud state of ``job`` whose Pods are ``pods``."""
    cancelled = bool(annotations_of(job).get(kf.ANNOTATION_CANCEL_REQUESTED))
    if condition(job, kf.SUCCEEDED) or condition(job, trainer.COMPLETE):  # a TrainJob's is Complete
        return JobState(SUCCEEDED)
    failed = condition(job, kf.FAILED)
    if failed:
        return JobState(FAILED, str(failed.get("message") or failed.get("reason") or ""))
    active = _active(pods)
    if cancelled:
        if active:
            return JobState(CANCELLING, f"{len(active)} Pod(s) still stopping")
        return JobState(CANCELLED, "cancelled by user")
    if (
        condition(job, kf.SUSPENDED)
        or (spec_of(job).get("runPolicy") or {}).get("suspend")
        or trainjobs.suspended(job)
    ):
        queue = labels_of(job).get(kf.LABEL_KUEUE_QUEUE)
        return JobState(QUEUED, f"suspended until queue {queue} admits it" if queue else "suspended")
    if not pods:
        if condition(job, kf.CREATED) or condition(job, kf.RUNNING):
            return JobState(QUEUED, "no Pods yet (gang scheduling or quota may hold them)")
        return JobState(QUEUED, "waiting for the operator to create its Pods")
    expected = expected_replicas(job)
    running = [p for p in active if status_of(p).get("phase") == "Running" and not pod_waiting_reason(p)]
    waiting = [r for r in (pod_waiting_reason(p) for p in active) if r]
    if len(running) >= max(expected, 1) or (running and not waiting and condition(job, kf.RUNNING)):
        restarting = condition(job, kf.RESTARTING)
        return JobState(RUNNING, "restarting a replica" if restarting else "")
    if waiting:
        return JobState(PREPARING, waiting[0])
    return JobState(PREPARING, f"{len(running)} of {expected} replica(s) running")
