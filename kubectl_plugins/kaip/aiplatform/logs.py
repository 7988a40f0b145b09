"""`jobs stream-logs`: every replica's log lines with gcloud's task names, following Pods that start
later or restart, until the job ends.

One reader thread per (Pod, container start) feeds a queue; the loop around it looks at the job and
its Pods every few seconds (gcloud looks every 10 s) to start readers and to see the end. Once the job
has ended, readers get a few seconds to pass on what the containers wrote last, then their streams are
closed: a stream whose node is gone (or a kubelet that keeps it open) must not keep us waiting. The
sources are behind :class:`LogSource` so the loop is tested without a kubelet.

With Loki configured (:mod:`kaip.logs.config`), the lines written before now (or before Pods that
are gone) come from Loki first, in time order, then the live lines, then what Loki holds that the
live streams missed (a Pod deleted mid-read); :class:`kaip.logs.merge.Seen` prints each line once.
A job whose object is gone is read from Loki alone.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from kaip.aiplatform import states, trainjobs, views
from kaip.kube.objects import metadata, name_of, status_of
from kaip.logs.merge import format_stamp, parse_stamp
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


Keep = Callable[[str, str, str], bool]  # (pod, container, stamped line) -> print it


def follow(
    kube: Kube | None,
    job: str,
    *,
    task_name: str | None = None,
    polling_interval: float = 60.0,
    source: LogSource | None = None,
    sleep: Callable[[float], None] = time.sleep,
    keep: Keep | None = None,
    since_time: str | None = None,
) -> Iterator[LogEvent]:
    """Yield log lines of ``job`` (optionally one task) and, last, its final state.

    ``keep`` sees every live line first (the merge with Loki's lines drops those printed already)."""
    if source is None:
        assert kube is not None
        source = KubeSource(kube, job, since_time=since_time)
    lines: queue.Queue[str | None] = queue.Queue()
    readers: dict[tuple[str, str, int], threading.Thread] = {}
    interval = min(polling_interval, CONTINUE_INTERVAL)
    try:
        while True:
            obj, pods = source.job()
            kind = str(obj.get("kind"))
            container = trainjobs.container_of(kind)
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
                    target=_read,
                    args=(source, name, container, task, lines),
                    kwargs={"keep": keep},
                    daemon=True,
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
    history: History | None = None,
    since_ns: int | None = None,
) -> str:
    """Hand every line to ``emit`` as it comes, Loki's (``history``) merged in; return the final state."""
    if history is None:
        final = ""
        since = None if since_ns is None else format_stamp(since_ns)
        for event in follow(
            kube, job, task_name=task_name, polling_interval=polling_interval, since_time=since
        ):
            if event.line is not None:
                emit(event.line)
            if event.final_state:
                final = event.final_state
        return final
    return _stream_merged(
        kube,
        job,
        emit=emit,
        history=history,
        task_name=task_name,
        polling_interval=polling_interval,
        since_ns=since_ns,
    )


def _stream_merged(
    kube: Kube | None,
    job: str,
    *,
    emit: Callable[[str], None],
    history: History,
    task_name: str | None,
    polling_interval: float,
    since_ns: int | None,
) -> str:
    from kaip.aiplatform import jobs, training
    from kaip.kube.errors import NotFound
    from kaip.logs.merge import Seen, split_stamped

    assert kube is not None
    seen = Seen()
    lock = threading.Lock()
    now = time.time_ns()
    try:
        _, obj = jobs.find(kube, job)
    except NotFound:
        # The job is gone: Loki alone, over its retention window.
        name = training.dns_name(job)
        start = since_ns if since_ns is not None else now - history.window_ns
        printed = 0
        for pod, container, ts, text in history.lines(
            kube.namespace, name, container="", start=start, end=now + 1, kind=""
        ):
            task = task_of_pod(pod, name, "")
            if task_name and task != task_name:
                continue
            if seen.admit(pod, container, ts, text):
                emit(format_line(f"{format_stamp(ts)} {text}", task))
                printed += 1
        if not printed:
            raise NotFound(
                f"job {job}: no logs anywhere: it is not in namespace {kube.namespace} and Loki has no "
                f"lines of Pods named {name}-* there",
                status=404,
                reason="NotFound",
            ) from None
        return ""
    name, kind = name_of(obj), str(obj.get("kind"))
    container = trainjobs.container_of(kind)
    stamp = str(metadata(obj).get("creationTimestamp") or "")
    created = parse_stamp(stamp) if stamp else now - history.window_ns
    start = max(created - 60 * NS, since_ns or 0)

    def replay(begin: int, end: int) -> None:
        for pod, cont, ts, text in history.lines(
            kube.namespace, name, container=container, start=begin, end=end, kind=kind
        ):
            task = task_of_pod(pod, name, kind)
            if task_name and task != task_name:
                continue
            with lock:
                fresh = seen.admit(pod, cont, ts, text)
            if fresh:
                emit(format_line(f"{format_stamp(ts)} {text}", task))

    replay(start, now + 1)

    def keep(pod: str, cont: str, raw: str) -> bool:
        ts, text = split_stamped(raw)
        if ts is None:
            return True
        if since_ns is not None and ts < since_ns:
            return False
        with lock:
            return seen.admit(pod, cont, ts, text)

    final = ""
    since = None if since_ns is None else format_stamp(since_ns)
    for event in follow(
        kube, job, task_name=task_name, polling_interval=polling_interval, keep=keep, since_time=since
    ):
        if event.line is not None:
            emit(event.line)
        if event.final_state:
            final = event.final_state
    # What the live streams missed (a Pod deleted while it was read): Loki's lines since the replay,
    # with its ingestion lag allowed for.
    replay(max(start, now - CATCH_UP_LAG), time.time_ns() + 1)
    return final


NS = 1_000_000_000
CATCH_UP_LAG = 300 * NS  # Loki may hold a line minutes after it was written


class History(Protocol):
    """Stored lines of a job's Pods: ``(pod, container, nanoseconds, text)`` in time order."""

    window_ns: int  # how far back to look for a job whose object is gone

    def lines(
        self, namespace: str, job_name: str, *, container: str, start: int, end: int, kind: str
    ) -> Iterator[tuple[str, str, int, str]]: ...


class LokiHistory:
    """:class:`History` from Loki, by the label contract of :mod:`kaip.logs.contract`."""

    #: Loki refuses a query longer than max_query_length (721h by default): ranges go in windows.
    WINDOW_NS = 7 * 24 * 3600 * NS

    def __init__(self, loki: Any, *, warn: Callable[[str], None], window_days: int = 30) -> None:
        self.loki = loki
        self.warn = warn
        self.window_ns = window_days * 24 * 3600 * NS

    def lines(
        self, namespace: str, job_name: str, *, container: str, start: int, end: int, kind: str
    ) -> Iterator[tuple[str, str, int, str]]:
        from kaip.errors import UnreachableError
        from kaip.logs import contract
        from kaip.logs.loki import LokiError

        query = contract.job_query(namespace, job_name, container)
        begin = start
        try:
            while begin < end:
                stop = min(end, begin + self.WINDOW_NS)
                for entry in self.loki.entries(query, begin, stop, warn=self.warn):
                    yield entry.label(contract.POD), entry.label(contract.CONTAINER), entry.ts, entry.line
                begin = stop
        except (LokiError, UnreachableError) as exc:  # the live lines still count
            self.warn(f"logs from Loki are incomplete: {exc}")

    def tail(
        self, namespace: str, pod: str, *, container: str, count: int, start: int, end: int
    ) -> list[str]:
        """The last ``count`` lines of one container, oldest first."""
        from kaip.logs import contract
        from kaip.logs.loki import selector

        matchers = [(contract.NAMESPACE, "=", namespace), (contract.POD, "=", pod)]
        if container:
            matchers.append((contract.CONTAINER, "=", container))
        out: list[str] = []
        for entry in self.loki.entries(selector(matchers), start, end, direction="backward", limit=count):
            out.append(entry.line)
            if len(out) >= count:
                break
        return out[::-1]

    def job_tail(self, namespace: str, job_name: str, *, count: int, start: int, end: int) -> list[str]:
        """The last ``count`` lines of any of the job's Pods, oldest first (its Pods may be gone)."""
        from kaip.logs import contract

        out: list[str] = []
        query = contract.job_query(namespace, job_name)
        for entry in self.loki.entries(query, start, end, direction="backward", limit=count):
            out.append(entry.line)
            if len(out) >= count:
                break
        return out[::-1]


_TASK = re.compile(r"^(?P<type>[a-z]+)(?:-(?P<index>[0-9]+))?(?:-[a-z0-9]+)?$")


def task_of_pod(pod: str, job_name: str, kind: str) -> str:
    """gcloud's task name from a replica Pod's name alone (``<job>-worker-2`` → ``worker-replica-2``),
    as :func:`kaip.aiplatform.views.task_name` reads it from the Pod's labels."""
    rest = pod[len(job_name) + 1 :] if pod.startswith(job_name + "-") else pod
    found = _TASK.match(rest)
    if not found:
        return pod
    rtype, index = found["type"], int(found["index"] or 0)
    if kind == kf.JAXJOB.resource.kind and rtype == "worker":
        return "master-replica-0" if index == 0 else f"worker-replica-{index - 1}"
    role = {"master": "master", "chief": "master", "launcher": "master", "ps": "ps"}.get(rtype, rtype)
    return f"{role}-replica-{index}"


def _drain(lines: queue.Queue[str | None]) -> Iterator[LogEvent]:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is not None:
            yield LogEvent(line=line)


def _read(
    source: LogSource,
    pod: str,
    container: str,
    task: str,
    out: queue.Queue[str | None],
    *,
    keep: Keep | None = None,
) -> None:
    try:
        for raw in source.lines(pod, container):
            if keep is None or keep(pod, container, raw):
                out.put(format_line(raw, task))
    except Exception as exc:
        if not source.closed:
            out.put(f"WARNING\t-\t{task}\tlog stream ended: {exc}")


class KubeSource:
    """The job and its Pods from the API server; logs through the Pod's ``log`` subresource."""

    def __init__(self, kube: Kube, job: str, *, since_time: str | None = None) -> None:
        self.kube = kube
        self.job_id = job
        self.since_time = since_time
        self.closed = False
        self._open: set[LineStream] = set()
        self._lock = threading.Lock()

    def job(self) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]:
        from kaip.aiplatform import jobs

        _, obj = jobs.find(self.kube, self.job_id)
        return obj, jobs.pods_of(self.kube, name_of(obj), kind=str(obj.get("kind")))

    def lines(self, pod: str, container: str) -> Iterator[str]:
        from kaip.resources.kinds import PODS

        path = PODS.path(namespace=self.kube.namespace, name=pod, subresource="log")
        query = {"container": container, "follow": "true", "timestamps": "true"}
        if self.since_time:
            query["sinceTime"] = self.since_time
        stream = self.kube.stream_lines(path, query=query)
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
