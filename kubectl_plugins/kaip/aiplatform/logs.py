"""`jobs stream-logs`: every replica's log lines with gcloud's task names, following Pods that start
later or restart, until the job ends.

One reader thread per (Pod, container start) feeds a queue; the loop around it looks at the job and
its Pods every few seconds (gcloud looks every 10 s) to start readers and to see the end. Once the job
has ended, readers get a few seconds to pass on what the containers wrote last, then their streams are
closed: a stream whose node is gone (or a kubelet that keeps it open) must not keep us waiting. The
sources are behind :class:`LogSource` so the loop is tested without a kubelet.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from kaip.aiplatform import states, views
from kaip.kube.objects import name_of, status_of
from kaip.resources import kubeflow as kf

if TYPE_CHECKING:
    from kaip.kube.client import Kube, LineStream

CONTINUE_INTERVAL = 10.0  # gcloud's re-check of a quiet job
END_GRACE = 5.0  # seconds the readers may go on after the job ended


@dataclass(frozen=True)
class LogEvent:
    line: str | None = None
    final_state: str = ""


class LogSource(Protocol):
    closed: bool  # set by close(): a stream that ends then is no failure to report

    def job(self) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]: ...

    def lines(self, pod: str, container: str) -> Iterator[str]: ...

    def close(self) -> None:
        """End every stream :meth:`lines` opened (their iterations stop)."""


def format_line(stamped: str, task: str) -> str:
    """A kubelet line with its timestamp (``2026-01-01T00:00:00.1Z text``) in gcloud's layout."""
    stamp, _, message = stamped.partition(" ")
    return f"INFO\t{stamp}\t{task}\t{message.rstrip()}"


def started(pod: Mapping[str, Any], container: str) -> int | None:
    """The container's restart count once it has started (there is a log to read), else None."""
    for cs in status_of(pod).get("containerStatuses") or []:
        if cs.get("name") == container:
            state = cs.get("state") or {}
            if "running" in state or "terminated" in state:
                return int(cs.get("restartCount") or 0)
    return None


def follow(
    kube: Kube | None,
    job: str,
    *,
    task_name: str | None = None,
    polling_interval: float = 60.0,
    source: LogSource | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogEvent]:
    """Yield log lines of ``job`` (optionally one task) and, last, its final state."""
    if source is None:
        assert kube is not None
        source = KubeSource(kube, job)
    lines: queue.Queue[str | None] = queue.Queue()
    readers: dict[tuple[str, str, int], threading.Thread] = {}
    interval = min(polling_interval, CONTINUE_INTERVAL)
    try:
        while True:
            obj, pods = source.job()
            kind = str(obj.get("kind"))
            container = kf.BY_KIND[kind].container if kind in kf.BY_KIND else ""
            for pod in pods:
                task = views.task_name(pod, kind)
                if task_name and task != task_name:
                    continue
                restarts = started(pod, container)
                name = name_of(pod)
                key = (name, task, restarts if restarts is not None else -1)
                if restarts is None or key in readers:
                    continue
                reader = threading.Thread(
                    target=_read, args=(source, name, container, task, lines), daemon=True
                )
                readers[key] = reader
                reader.start()
            yield from _drain(lines)
            state = (
                views.experiment_state(obj) if kind == kf.EXPERIMENTS.kind else states.job_state(obj, pods)
            ).state
            if state in states.FINAL:
                deadline = time.monotonic() + END_GRACE
                for reader in readers.values():
                    reader.join(max(0.0, deadline - time.monotonic()))
                source.close()
                for reader in readers.values():
                    reader.join(1.0)
                yield from _drain(lines)
                yield LogEvent(final_state=state)
                return
            sleep(interval)
    finally:
        source.close()


def stream(
    kube: Kube | None,
    job: str,
    *,
    emit: Callable[[str], None],
    task_name: str | None = None,
    polling_interval: float = 60.0,
) -> str:
    """Hand every line :func:`follow` yields to ``emit`` as it comes; return the job's final state."""
    final = ""
    for event in follow(kube, job, task_name=task_name, polling_interval=polling_interval):
        if event.line is not None:
            emit(event.line)
        if event.final_state:
            final = event.final_state
    return final


def _drain(lines: queue.Queue[str | None]) -> Iterator[LogEvent]:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is not None:
            yield LogEvent(line=line)


def _read(source: LogSource, pod: str, container: str, task: str, out: queue.Queue[str | None]) -> None:
    try:
        for raw in source.lines(pod, container):
            out.put(format_line(raw, task))
    except Exception as exc:
        if not source.closed:
            out.put(f"WARNING\t-\t{task}\tlog stream ended: {exc}")


class KubeSource:
    """The job and its Pods from the API server; logs through the Pod's ``log`` subresource."""

    def __init__(self, kube: Kube, job: str) -> None:
        self.kube = kube
        self.job_id = job
        self.closed = False
        self._open: set[LineStream] = set()
        self._lock = threading.Lock()

    def job(self) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]:
        from kaip.aiplatform import jobs

        _, obj = jobs.find(self.kube, self.job_id)
        return obj, jobs.pods_of(self.kube, name_of(obj))

    def lines(self, pod: str, container: str) -> Iterator[str]:
        from kaip.resources.kinds import PODS

        path = PODS.path(namespace=self.kube.namespace, name=pod, subresource="log")
        stream = self.kube.stream_lines(
            path, query={"container": container, "follow": "true", "timestamps": "true"}
        )
        with self._lock:
            if self.closed:
                stream.abort()
            self._open.add(stream)
        try:
            yield from stream
        finally:
            with self._lock:
                self._open.discard(stream)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            streams = list(self._open)
        for stream in streams:
            stream.abort()
