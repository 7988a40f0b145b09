"""Sharded loading: which keys a shard owns, where it keeps its records, how N shards add up. Pure.

A PVC loaded by N shards gets an Indexed Job of N Pods. Pod ``i`` (``JOB_COMPLETION_INDEX``) fetches
the objects whose key hashes to ``i``: CRC-32 of the key's UTF-8 bytes, modulo N. That is stable
across listings, retries and processes (Python's ``hash()`` is not), so a shard that runs again
fetches only its own missing objects, and two shards never own one key.

Each shard keeps its own record on the volume (``.kaip-preload.json.shard-I-of-N`` and its journal)
and removes only files whose key it owns, so shards never delete each other's files.

Progress: each shard writes its own condition ``DataLoadedShard<i>`` on the PVC's status (``Unknown``
while it copies, ``True`` with its final counts when its share is done). PVC conditions are a list
merged by ``type``, so N writers never touch one item, and a patch names no resourceVersion: no
conflict, no retry. The controller sums them into ``DataLoaded`` (its message
keeps the one-shard format ``N/M objects, X/Y bytes``) and, when the Job ends, adds up the shards'
outcomes read from their Pods' termination messages.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaip.kube.objects import annotations_of, conditions_of, labels_of, status_of
from kaip.preload.contract import LoadRequest
from kaip.preload.jobs import quantity_bytes
from kaip.preload.status import Outcome, Progress, parse_message, parse_outcome, terminated
from kaip.resources import preload as names

#: Label (and annotation) the Job controller puts on each Pod of an Indexed Job.
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
#: What the Job controller sets in each container of an Indexed Job's Pod.
INDEX_ENV = "JOB_COMPLETION_INDEX"
READ_WRITE_MANY = "ReadWriteMany"


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) that owns ``key``."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % count if count > 1 else 0


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def owns(self, key: str) -> bool:
        return shard_of(key, self.count) == self.index

    @property
    def record_name(self) -> str:
        """This shard's manifest file at the target's root (its journal adds ``.journal``)."""
        return f"{names.MANIFEST_FILE}.shard-{self.index}-of-{self.count}"

    @property
    def condition_type(self) -> str:
        return condition_type(self.index)


def condition_type(index: int) -> str:
    return f"{names.CONDITION_SHARD_PREFIX}{index}"


# -- how many shards a PVC gets --------------------------------------------------------------------
def requested_bytes(pvc: Mapping[str, Any]) -> int | None:
    spec = pvc.get("spec") or {}
    return quantity_bytes(((spec.get("resources") or {}).get("requests") or {}).get("storage"))


def parallelism_for(
    pvc: Mapping[str, Any], request: LoadRequest, *, default: int, threshold: int | None
) -> int:
    """The annotation's count; else the cluster's ``default`` for a ReadWriteMany PVC that asks for
    at least ``threshold`` bytes (the source's size is known only once a loader lists it, after the
    Job is made: the PVC's size is the one figure known before); else 1. The default never applies
    to a volume one node mounts: it falls back to one loader Pod instead of refusing the PVC."""
    if request.parallelism is not None:
        return request.parallelism
    wanted = requested_bytes(pvc)
    if (
        default > 1
        and threshold is not None
        and wanted is not None
        and wanted >= threshold
        and READ_WRITE_MANY in access_modes(pvc)
    ):
        return default
    return 1


def access_modes(pvc: Mapping[str, Any]) -> list[str]:
    modes = (pvc.get("spec") or {}).get("accessModes") or status_of(pvc).get("accessModes") or ()
    return [str(m) for m in modes]


def access_problem(pvc: Mapping[str, Any], count: int) -> str | None:
    """Why ``count`` shards cannot load this PVC (its volume is not ReadWriteMany), or None."""
    if count <= 1:
        return None
    modes = access_modes(pvc)
    if READ_WRITE_MANY in modes:
        return None
    shown = ", ".join(modes) or "none given"
    return (
        f"annotation {names.ANNOTATION_PARALLELISM} asks for {count} loader Pods, but the PVC's access "
        f"modes ({shown}) let only one node mount it: use accessModes [ReadWriteMany] (a StorageClass "
        f"that offers it, e.g. NFS or CephFS), or set {names.ANNOTATION_PARALLELISM} to 1"
    )


# -- adding up the shards ----------------------------------------------------------------------------
def shards_of(job: Mapping[str, Any]) -> int:
    """How many shards the loader Job runs (1 for a Job that is not Indexed)."""
    spec = job.get("spec") or {}
    if spec.get("completionMode") != "Indexed":
        return 1
    return int(spec.get("completions") or 1)


def progress_of(pvc: Mapping[str, Any], count: int, *, since: str) -> Progress | None:
    """The sum of the shards' progress conditions written at ``since`` or later (the Job's
    creation: a shard condition of an earlier load does not count); None before any shard reported."""
    wanted = {condition_type(i) for i in range(count)}
    found = [
        parse_message(str(c.get("message") or ""))
        for c in conditions_of(pvc)
        if c.get("type") in wanted and str(c.get("lastProbeTime") or "") >= since
    ]
    reported = [p for p in found if p is not None]
    if not reported:
        return None
    return Progress(
        objects_done=sum(p.objects_done for p in reported),
        objects_total=sum(p.objects_total for p in reported),
        bytes_done=sum(p.bytes_done for p in reported),
        bytes_total=sum(p.bytes_total for p in reported),
    )


def index_of(pod: Mapping[str, Any]) -> int | None:
    raw = labels_of(pod).get(INDEX_LABEL) or annotations_of(pod).get(INDEX_LABEL)
    return int(raw) if raw is not None and str(raw).isdigit() else None


def _ended(
    pods: Sequence[Mapping[str, Any]], container: str, *, succeeded: bool
) -> list[tuple[str, int, Outcome | None, int]]:
    """(finishedAt, index, outcome, exit code) of the Pods whose container ended as wanted, oldest first."""
    found = []
    for pod in pods:
        term = terminated(pod, container)
        index = index_of(pod)
        if term is None or index is None or (term.get("exitCode") == 0) != succeeded:
            continue
        outcome = parse_outcome(str(term.get("message") or ""))
        found.append((str(term.get("finishedAt") or ""), index, outcome, int(term.get("exitCode") or 0)))
    found.sort(key=lambda item: (item[0], item[1]))
    return found


def combined_outcome(pods: Sequence[Mapping[str, Any]], *, container: str, count: int) -> Outcome | None:
    """The outcome of a completed sharded load: every index's newest success added up; None while
    an index's outcome is missing (its Pod's last write may still be on its way)."""
    latest: dict[int, Outcome] = {}
    for _at, index, outcome, _code in _ended(pods, container, succeeded=True):
        if outcome is not None:
            latest[index] = outcome
    if set(latest) != set(range(count)):
        return None
    parts = [latest[i] for i in range(count)]
    objects, size = sum(o.objects for o in parts), sum(o.bytes for o in parts)
    copied, reused = sum(o.copied for o in parts), sum(o.reused for o in parts)
    message = (
        f"{objects}/{objects} objects, {size}/{size} bytes; {copied} copied, {reused} already there; "
        f"by {count} loader Pods"
    )
    return Outcome(
        reason=names.REASON_SUCCEEDED,
        message=message,
        digest=parts[0].digest,
        objects=objects,
        bytes=size,
        copied=copied,
        reused=reused,
    )


def first_failure(
    pods: Sequence[Mapping[str, Any]], *, container: str, permanent: Sequence[int]
) -> tuple[int, Outcome] | None:
    """(index, outcome) of the shard that failed the load: the first to end with a permanent exit
    code, else the last failure with an outcome; None when no failed shard left one."""
    ended = [(i, o, code) for _at, i, o, code in _ended(pods, container, succeeded=False) if o is not None]
    for index, outcome, code in ended:
        if code in permanent:
            return index, outcome
    if ended:
        index, outcome, _code = ended[-1]
        return index, outcome
    return None
