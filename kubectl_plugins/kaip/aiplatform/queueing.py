"""Where a job stands with its queue and its gang: Kueue's Workload for the job (quota reserved,
admitted, or why not) and the PodGroup its operator made for the coscheduling scheduler (how many
replicas must start together, and its phase). Pure: the objects in, what `jobs list -o wide` and
`jobs describe` show out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaip.kube.objects import (
    condition_of,
    labels_of,
    metadata,
    name_of,
    owners_of,
    spec_of,
    status_of,
    uid_of,
)
from kaip.resources import kubeflow as kf
from kaip.resources import queueing as q

#: An empty cell, as kubectl prints one.
NONE = "<none>"


@dataclass(frozen=True)
class Admission:
    """A job's queue (Kueue) and gang (PodGroup) state; empty fields where it has neither."""

    queue: str = ""
    workload: str = ""
    cluster_queue: str = ""
    admitted: bool = False
    #: Why the queue holds the job (Kueue's message), or why it was evicted; empty once admitted.
    waiting: str = ""
    gang: str = ""
    min_member: int = 0
    gang_phase: str = ""
    gang_running: int = 0

    def queue_cell(self) -> str:
        """The QUEUE column of `jobs list -o wide`."""
        if not self.queue:
            return NONE
        if not self.workload:
            return f"{self.queue} (not seen by Kueue)"
        return f"{self.queue} ({'admitted' if self.admitted else 'waiting'})"

    def gang_cell(self) -> str:
        """The GANG column: running of minMember, and the PodGroup's phase."""
        if not self.gang:
            return NONE
        return f"{self.gang_running}/{self.min_member} {self.gang_phase or 'Pending'}"

    def queued_reason(self) -> str:
        """What a suspended job waits for, in a sentence ('' when Kueue has not said)."""
        if not self.waiting:
            return ""
        return f"waiting in queue {self.queue}: {self.waiting}"

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.queue:
            queue: dict[str, Any] = {"name": self.queue, "admitted": self.admitted}
            if self.workload:
                queue["workload"] = self.workload
            if self.cluster_queue:
                queue["clusterQueue"] = self.cluster_queue
            if self.waiting:
                queue["waiting"] = self.waiting
            doc["queue"] = queue
        if self.gang:
            doc["gang"] = {
                "podGroup": self.gang,
                "minMember": self.min_member,
                "phase": self.gang_phase or "Pending",
                "running": self.gang_running,
            }
        return doc


def _owned_by(obj: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
    uid = uid_of(job)
    return bool(uid) and any(o.get("uid") == uid for o in owners_of(obj))


def _true(obj: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    cond = condition_of(obj, ctype)
    return cond if cond is not None and cond.get("status") == "True" else None


def workload_of(job: Mapping[str, Any], workloads: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The job's Workload: the newest one it owns (Kueue makes a new one when the job changes)."""
    mine = [w for w in workloads if _owned_by(w, job)]
    mine.sort(key=lambda w: str(metadata(w).get("creationTimestamp") or ""))
    return mine[-1] if mine else None


def podgroup_of(job: Mapping[str, Any], podgroups: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The PodGroup the operator made for the job (named after it, owned by it)."""
    return next((g for g in podgroups if _owned_by(g, job)), None)


def admission(
    job: Mapping[str, Any],
    *,
    workloads: Sequence[Mapping[str, Any]] = (),
    podgroups: Sequence[Mapping[str, Any]] = (),
) -> Admission:
    queue = str(labels_of(job).get(kf.LABEL_KUEUE_QUEUE) or "")
    workload = workload_of(job, workloads) if queue else None
    fields: dict[str, Any] = {"queue": queue}
    if workload is not None:
        admitted = _true(workload, q.ADMITTED)
        fields["workload"] = name_of(workload)
        fields["admitted"] = admitted is not None
        cluster_queue = (status_of(workload).get("admission") or {}).get("clusterQueue")
        fields["cluster_queue"] = str(cluster_queue or "")
        if admitted is None:
            fields["waiting"] = _waiting(workload)
    group = podgroup_of(job, podgroups)
    if group is not None:
        fields["gang"] = name_of(group)
        fields["min_member"] = int(spec_of(group).get("minMember") or 0)
        fields["gang_phase"] = str(status_of(group).get("phase") or "")
        fields["gang_running"] = int(status_of(group).get("running") or 0)
    return Admission(**fields)


def _waiting(workload: Mapping[str, Any]) -> str:
    if spec_of(workload).get("active") is False:
        return "deactivated (it will not be admitted)"
    for ctype in (q.EVICTED, q.QUOTA_RESERVED):
        cond = condition_of(workload, ctype)
        if cond is None or (ctype == q.EVICTED and cond.get("status") != "True"):
            continue
        if ctype == q.QUOTA_RESERVED and cond.get("status") == "True":
            return "quota reserved, waiting for admission checks"
        return str(cond.get("message") or cond.get("reason") or "")
    return "not yet considered by Kueue"
