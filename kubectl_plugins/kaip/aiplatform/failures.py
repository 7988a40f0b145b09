"""Why a Kubeflow job FAILED, read from the job and its Pods: which replica, its container's exit code
and termination message, and the operator's own condition message. Pure.

The operator's ``Failed`` condition says only how many replicas of a type failed; what a user needs
(the replica, ``exit 3``, the program's last words) lives on the Pods, in ``status.containerStatuses[]``
``.state.terminated`` (or ``.lastState.terminated`` for a container that has started again since).
Where the operator has deleted the Pods (``runPolicy.cleanPodPolicy: All``) the condition is all there
is. The log tail is read by :mod:`kaip.aiplatform.jobs` and added with :meth:`Failure.with_logs`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kaip.aiplatform import states, trainjobs
from kaip.errors import shorten
from kaip.kube.objects import labels_of, name_of, spec_of, status_of
from kaip.resources import kubeflow as kf
from kaip.resources.timestamps import parse

#: The last lines of the failed container that `jobs describe` shows, and a bound on the bytes read
#: (the kubelet applies limitBytes after tailLines, so it only cuts lines that are very long).
LOG_TAIL_LINES = 20
LOG_LIMIT_BYTES = 64 * 1024
LOG_LINE_CHARS = 500
#: `jobs list -o wide` shows one line of the failure, cut to this many characters.
SHORT_CHARS = 80
_TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class LogTail:
    """The failed container's last lines, or why they could not be read."""

    lines: tuple[str, ...] = ()
    unavailable: str = ""


@dataclass(frozen=True)
class ReplicaFailure:
    """One replica whose container ended with a non-zero exit code, or whose Pod failed as a whole."""

    task: str  # gcloud's task name: worker-replica-1
    replica: str  # replica type and index as in the Pod's name: worker-1
    pod: str
    container: str  # "" for a Pod that failed without a container ending (evicted, deadline)
    exit_code: int | None
    reason: str  # the kubelet's (Error, OOMKilled) or the Pod's (Evicted, DeadlineExceeded)
    message: str  # the termination message (or the Pod's status message)
    finished_at: str = ""
    #: The failure is an earlier run of a container that has started again since.
    previous: bool = False
    logs: LogTail | None = None

    def headline(self) -> str:
        """The message's telling line: the first, or the last of a Python traceback."""
        lines = [line.strip() for line in self.message.splitlines() if line.strip()]
        if not lines:
            return ""
        # A Python traceback (the whole message, or the end of the log kept as the message) is told
        # by its last line, the exception; any other message by its first.
        return lines[-1] if any(line.startswith(_TRACEBACK) for line in lines) else lines[0]

    def outcome(self) -> str:
        """``exit 3 (Error)``, ``exit 137 (OOMKilled)``, ``Evicted``."""
        if self.exit_code is None:
            return self.reason or "failed"
        return f"exit {self.exit_code}" + (f" ({self.reason})" if self.reason else "")

    def short(self) -> str:
        """One line for `jobs list -o wide`: ``worker-1 exit 3: ValueError: bad shape``."""
        code = f"exit {self.exit_code}" if self.exit_code is not None else self.reason or "failed"
        headline = self.headline()
        return f"{self.replica} {code}: {headline}" if headline else f"{self.replica} {code}"

    def sentence(self) -> str:
        """gcloud's errorMessage, in one line."""
        where = f"Pod {self.pod}" + (f", container {self.container}" if self.container else "")
        if self.exit_code is not None:
            what = f"exited with code {self.exit_code}" + (f" ({self.reason})" if self.reason else "")
        else:
            what = f"failed ({self.reason or 'no reason given'})"
        headline = self.headline()
        return f"The replica {self.task} ({where}) {what}" + (f": {headline}" if headline else "")

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"task": self.task, "replica": self.replica, "pod": self.pod}
        if self.container:
            doc["container"] = self.container
        if self.exit_code is not None:
            doc["exitCode"] = self.exit_code
        if self.reason:
            doc["reason"] = self.reason
        if self.message:
            doc["terminationMessage"] = self.message
        if self.finished_at:
            doc["finishedAt"] = self.finished_at
        if self.previous:
            doc["restartedSince"] = True
        if self.logs is not None:
            if self.logs.unavailable:
                doc["logsNotAvailable"] = self.logs.unavailable
            else:
                doc["lastLogLines"] = list(self.logs.lines)
        return doc


#: The end of the note on a failed job whose Pods are gone.
_NOTHING = ": no exit code, termination message or log to show"


@dataclass(frozen=True)
class Failure:
    """Why the job failed: every failed replica (the first to fail first) and the operator's word."""

    replicas: tuple[ReplicaFailure, ...]
    condition: str  # the Failed condition's message (or reason)
    note: str = ""  # what is missing and why (the Pods are gone)
    #: With the Pods gone: the job's last lines from the log store (Loki), whichever Pod wrote them.
    stored: LogTail | None = None

    def summary(self) -> str:
        """gcloud's errorMessage: the first failed replica, else the operator's condition."""
        if not self.replicas:
            return self.condition or "the job failed (the operator gave no reason)"
        others = len(self.replicas) - 1
        return self.replicas[0].sentence() + (f"; {others} other replica(s) failed too" if others else "")

    def short(self) -> str:
        """One line for `jobs list -o wide`, at most :data:`SHORT_CHARS` long."""
        text = self.replicas[0].short() if self.replicas else self.condition
        return shorten(text, SHORT_CHARS)

    def with_logs(self, tail: LogTail) -> Failure:
        """The failure with the log tail of its first failed replica (of the job, when no Pod is left)."""
        if not self.replicas:
            head = self.note.rpartition(_NOTHING)[0] or self.note
            return replace(self, stored=tail, note=f"{head}: no exit code or termination message to show")
        first = replace(self.replicas[0], logs=tail)
        return replace(self, replicas=(first, *self.replicas[1:]))

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.condition:
            doc["condition"] = self.condition
        if self.replicas:
            doc["failedReplicas"] = [r.document() for r in self.replicas]
        if self.note:
            doc["note"] = self.note
        if self.stored is not None and not self.stored.unavailable:
            doc["lastStoredLogLines"] = list(self.stored.lines)
        return doc


def _terminations(pod: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any], bool]]:
    """(container status, terminated state, is a previous run) of every container that ended non-zero."""
    status = status_of(pod)
    found = []
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        current = (cs.get("state") or {}).get("terminated")
        last = (cs.get("lastState") or {}).get("terminated")
        if current and current.get("exitCode"):
            found.append((cs, current, False))
        elif last and last.get("exitCode"):
            found.append((cs, last, True))
    return found


def _replica_label(pod: Mapping[str, Any]) -> str:
    labels = labels_of(pod)
    # mpi-operator (MPIJob v2beta1) labels only the job role: launcher or worker.
    rtype = str(labels.get(kf.LABEL_REPLICA_TYPE) or labels.get(kf.LABEL_JOB_ROLE) or "replica").lower()
    index = labels.get(kf.LABEL_REPLICA_INDEX)
    return f"{rtype}-{index}" if index is not None else rtype


def pod_failure(pod: Mapping[str, Any], *, task: str, main_container: str) -> ReplicaFailure | None:
    """How ``pod`` failed, or None where nothing in it failed.

    Of several containers that ended non-zero, a current failure goes before an earlier run's, then
    the first to end (an init container that failed kept the others from running), then the main one.
    """
    name = name_of(pod)
    ended = _terminations(pod)
    if ended:
        cs, term, previous = min(
            ended,
            key=lambda e: (e[2], str(e[1].get("finishedAt") or "~"), e[0].get("name") != main_container),
        )
        return ReplicaFailure(
            task=task,
            replica=_replica_label(pod),
            pod=name,
            container=str(cs.get("name") or ""),
            exit_code=int(term.get("exitCode") or 0),
            reason=str(term.get("reason") or ""),
            message=str(term.get("message") or "").strip(),
            finished_at=str(term.get("finishedAt") or ""),
            previous=previous,
        )
    status = status_of(pod)
    if status.get("phase") == "Failed":  # evicted, past its deadline: no container to blame
        return ReplicaFailure(
            task=task,
            replica=_replica_label(pod),
            pod=name,
            container="",
            exit_code=None,
            reason=str(status.get("reason") or ""),
            message=str(status.get("message") or "").strip(),
        )
    return None


def failure(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], *, task_of: Callable[[Mapping[str, Any]], str]
) -> Failure | None:
    """Why ``job`` failed, from its Pods (``task_of`` names a Pod's task); None unless it FAILED."""
    failed = states.condition(job, kf.FAILED)
    if failed is None:
        return None
    condition = " ".join(str(failed.get("message") or failed.get("reason") or "").split())
    main = trainjobs.container_of(str(job.get("kind")))
    found = [f for f in (pod_failure(p, task=task_of(p), main_container=main) for p in pods) if f]
    failed_at = parse(str(failed.get("lastTransitionTime") or ""))

    def rank(f: ReplicaFailure) -> tuple[bool, bool, str, str]:
        # Replicas that ended after the job had failed were stopped by the operator: consequences.
        ended = parse(f.finished_at)
        after = bool(ended and failed_at and ended > failed_at)
        return (after, f.previous, f.finished_at or "~", f.task)

    found.sort(key=rank)
    note = ""
    if not pods:
        policy = (spec_of(job).get("runPolicy") or {}).get("cleanPodPolicy")
        note = "the job's Pods are gone" + (f" (runPolicy.cleanPodPolicy: {policy})" if policy else "")
        note += _NOTHING
    elif not found:
        note = "no replica's container ended with a non-zero exit code"
    return Failure(replicas=tuple(found), condition=condition, note=note)


def log_query(replica: ReplicaFailure) -> dict[str, str]:
    """The ``pods/log`` query for the failed container's last lines (its failed run, if it restarted)."""
    query = {
        "container": replica.container,
        "tailLines": str(LOG_TAIL_LINES),
        "limitBytes": str(LOG_LIMIT_BYTES),
    }
    if replica.previous:
        query["previous"] = "true"
    return query


def log_tail(text: str) -> LogTail:
    """The lines of a ``pods/log`` answer, each cut short, at most :data:`LOG_TAIL_LINES`."""
    lines = [line.rstrip() for line in text.splitlines()][-LOG_TAIL_LINES:]
    cut = [line if len(line) <= LOG_LINE_CHARS else line[: LOG_LINE_CHARS - 1] + "…" for line in lines]
    if not cut:
        return LogTail(unavailable="the container wrote no log")
    return LogTail(lines=tuple(cut))
