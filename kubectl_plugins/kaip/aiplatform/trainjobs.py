"""How a Kubeflow Trainer v2 TrainJob reads as gcloud's job: its node count, its Pods (made by JobSet's
Jobs), their gcloud task names, and its conditions with its JobSet's. Pure.

The TrainJob controller copies its JobSet's ``Completed`` and ``Failed`` conditions as ``Complete`` and
``Failed`` (kubeflow/trainer v2.0.0 ``pkg/runtime/framework/plugins/jobset``); :func:`with_jobset`
takes them from the JobSet itself when the TrainJob has not caught up yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaip.kube.objects import conditions_of, labels_of, spec_of
from kaip.resources import kubeflow as kf
from kaip.resources import trainer

KIND = trainer.TRAINJOBS.kind


def is_trainjob(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == KIND and str(obj.get("apiVersion") or "").startswith(trainer.GROUP + "/")


def node_count(job: Mapping[str, Any]) -> int:
    """How many nodes (Pods of the trainer job) a TrainJob asks for (the runtimes' default: 1)."""
    return int((spec_of(job).get("trainer") or {}).get("numNodes") or 1)


def suspended(job: Mapping[str, Any]) -> bool:
    return spec_of(job).get("suspend") is True


def pod_selector(kind: str) -> str:
    """The label a job's Pods carry with the job's name: JobSet's for a TrainJob, else the operators'."""
    return trainer.LABEL_JOBSET_NAME if kind == KIND else kf.LABEL_JOB_NAME


def container_of(kind: str) -> str:
    """The container that runs the program in a job's Pods ('' when the kind is not known)."""
    if kind == KIND:
        return trainer.CONTAINER
    known = kf.BY_KIND.get(kind)
    return known.container if known else ""


def task_name(pod: Mapping[str, Any]) -> str:
    """gcloud's task name of a TrainJob's Pod: the MPI launcher, or torch's node 0, is the master;
    an MPI runtime's nodes (they mount the runtime's SSH keys) are workers from 0, torch's other
    nodes workers from node 1."""
    labels = labels_of(pod)
    try:
        index = int(labels.get(trainer.LABEL_COMPLETION_INDEX, 0))
    except ValueError:
        index = 0
    if labels.get(trainer.LABEL_REPLICATED_JOB) == trainer.LAUNCHER_JOB:
        return "master-replica-0"
    volumes = {v.get("name") for v in spec_of(pod).get("volumes") or ()}
    if trainer.MPI_SSH_VOLUME in volumes:
        return f"worker-replica-{index}"
    return "master-replica-0" if index == 0 else f"worker-replica-{index - 1}"


#: JobSet condition -> the TrainJob condition it becomes (jobset_types.go, trainjob_types.go).
_FROM_JOBSET = {"Completed": trainer.COMPLETE, "Failed": trainer.FAILED}


def with_jobset(job: Mapping[str, Any], jobset: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``job`` with its JobSet's final condition added when the TrainJob does not show one yet."""
    if jobset is None:
        return job
    have = {c.get("type") for c in conditions_of(job) if c.get("status") == "True"}
    if have & {trainer.COMPLETE, trainer.FAILED}:
        return job
    added = [
        {**c, "type": _FROM_JOBSET[str(c.get("type"))]}
        for c in conditions_of(jobset)
        if c.get("type") in _FROM_JOBSET and c.get("status") == "True"
    ]
    if not added:
        return job
    status = dict(job.get("status") or {})
    status["conditions"] = [*conditions_of(job), *added]
    return {**job, "status": status}
