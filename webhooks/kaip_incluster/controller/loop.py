"""The thin loop: watches feed a queue of keys; workers decide from the watches' stores, then act
on fresh reads.

Watches (PVCs, loader Jobs and their Pods, gated Pods) say *which* object to look at and keep what
they saw (:mod:`.cache`). A worker first decides a PVC from those stores; most looks (a Job's Pod
started, our own status write coming back) need nothing, and cost no API call. Only when that
decision has something to do does the worker read the PVC and its wanted Job again (two GETs by
name) and decide once more on them, so what it writes never rests on a stale cache: a Job made
from an old view of the PVC would be the wrong Job. One look skips the reads: a PVC's first load (no
condition, no Job), whose first write, the condition, names the stored resourceVersion, so a PVC
that changed meanwhile refuses it (409) and is read afresh. The Job's name is a function of the PVC and
its request, so two creates of it (a restarted controller, a cache behind) meet 409 and the second
adopts the first. Several workers run at once (``Settings.workers``), never on the same key;
:mod:`.act` carries the actions out. A periodic resync catches anything a broken watch missed.

A failed key is tried again as :mod:`kaip_incluster.requeue` decides: a temporary error (409, 5xx,
unreachable) after a per-key back-off (0.25-0.5 s, doubling, capped at 5 min, reset on success); a
permanent one (403, 404, 422) not until the object changes: a watch event for the key, or a resync
that sees another resourceVersion. Both show in ``/metrics`` and, on the PVC or Pod, as a Warning
Event (``RetryBackoff`` once a temporary error repeats, ``ReconcileFailed`` for a permanent one),
emitted only when the reason changes. Not on the ``DataLoaded`` condition: the next reconcile would
write it back, and each write would start another attempt.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kaip.errors import KaipError, shorten
from kaip.kube.objects import (
    key_of,
    labels_of,
    name_of,
    owners_of,
    uid_of,
    version_of,
)
from kaip.preload import jobs
from kaip.preload.status import current
from kaip.resources import kinds
from kaip.resources import preload as names
from kaip.resources.kinds import Resource
from kaip_incluster.controller import gates
from kaip_incluster.controller.act import FIELD_MANAGER, Actor, Stale
from kaip_incluster.controller.cache import Table, label
from kaip_incluster.controller.reconcile import (
    Action,
    CreateJob,
    Observed,
    SetCondition,
    outcome_missing,
    reconcile,
    wanted_job,
)
from kaip_incluster.controller.settings import Settings
from kaip_incluster.controller.watches import JOB_NAME_LABEL, Watches
from kaip_incluster.controller.workqueue import Key, Metrics, Queue
from kaip_incluster.requeue import Backoff

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger(__name__)

__all__ = ["Controller", "Settings"]


class Controller(Watches):
    """The data-loader controller: the watches (:class:`.watches.Watches`), the workers, the decisions."""

    def __init__(
        self,
        kube: Kube,
        settings: Settings,
        *,
        acting: Callable[[], bool] = lambda: True,
        backoff: Backoff[Key] | None = None,
    ) -> None:
        self.kube, self.settings, self.acting = kube, settings, acting
        self.queue = Queue()
        self.backoff: Backoff[Key] = backoff or Backoff(settings.requeue)
        self.metrics = Metrics(backoff=self.backoff)
        self.synced = threading.Event()
        self._gated: dict[tuple[str, str], list[str]] = {}  # gated Pod -> PVCs it mounts
        self._pod_events: dict[str, tuple[str, str]] = {}  # Pod uid -> last (reason, message) told
        self._told: dict[Key, tuple[str, str]] = {}  # key -> last (Event reason, error class) of a failure
        self._local = threading.local()  # .read: the object the worker's current key read
        self._preload: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.pvcs = Table()
        self.jobs = Table(label(names.LABEL_PVC))  # loader Jobs by their PVC's label
        self.pods = Table(label(JOB_NAME_LABEL))  # loader Pods by their Job
        self.act = Actor(kube, self.metrics, identity=settings.identity)
        self.jobs_listed = threading.Event()  # the Jobs' store holds every loader Job (listed once)

    # -- the worker ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """``Settings.workers`` workers (this thread one of them) until ``stop`` is set."""
        others = [
            threading.Thread(target=self._worker, args=(stop,), daemon=True, name=f"worker-{n}")
            for n in range(1, max(1, self.settings.workers))
        ]
        for thread in others:
            thread.start()
        self._worker(stop)
        for thread in others:
            thread.join()

    def _worker(self, stop: threading.Event) -> None:
        while not stop.is_set():
            key = self.queue.get(timeout=0.5)
            if key is None:
                continue
            try:
                if self.acting():
                    self.work(key)
                else:
                    self.queue.add(key, after=self.settings.retry_seconds)
            except Exception:  # a bug must not end this worker while the others go on
                log.exception("%s %s/%s: unexpected error", *key)
                self.queue.add(key, after=self.settings.retry_seconds)
            finally:
                self.queue.done(key)

    def work(self, key: Key) -> None:
        """Sync one key; on an error requeue it as the back-off says (or hold it until it changes)."""
        self.metrics.add("reconciles")
        self._local.read = None
        try:
            if key[0] == "pvc":
                self.sync_pvc(key[1], key[2])
            else:
                self.sync_pod(key[1], key[2])
        except KaipError as exc:
            self.metrics.add("errors")
            if key[0] == "pvc":
                self.act.forget_account(key[1])  # made again next time, in case it was the cause
            self._failed(key, exc)
        else:
            self.backoff.forget(key)
            with self._lock:
                self._told.pop(key, None)

    def _failed(self, key: Key, exc: KaipError) -> None:
        """Requeue ``key`` after its back-off (or hold it until it changes) and say so once."""
        read: Mapping[str, Any] | None = getattr(self._local, "read", None)
        version = version_of(read) if read is not None else None
        delay = self.backoff.next_delay(key, exc, version=version or None)
        failures = self.backoff.failures(key)
        what = "PVC" if key[0] == "pvc" else "Pod"
        if delay is None:
            log.warning(
                "%s %s/%s: %s (not tried again until the %s changes)", *key, shorten(exc.message), what
            )
        else:
            self.queue.add(key, after=delay)
            log.warning("%s %s/%s: %s (try %d, next in %.1fs)", *key, shorten(exc.message), failures, delay)
        notice = self.settings.requeue.notice(exc, delay=delay, failures=failures, what=what)
        if notice is None or read is None:
            return  # nothing worth an Event yet, or the object itself could not be read
        told = (notice[0], type(exc).__name__)
        with self._lock:
            if self._told.get(key) == told:
                return
            self._told[key] = told
        self._emit(read, "Warning", notice[0], notice[1])

    def _get(self, resource: Resource, ns: str, name: str) -> dict[str, Any] | None:
        from kaip.kube.errors import NotFound

        self.metrics.call("get", resource.plural)
        try:
            return self.kube.get(resource, name, namespace=ns)
        except NotFound:
            return None

    def observe(self, pvc: Mapping[str, Any], *, fresh: bool) -> Observed:
        """The PVC's loader Jobs and their Pods, from the watches' stores; with ``fresh``, the Job
        that the PVC's request wants is read from the API (and its Pods too when it has ended and
        the store lacks their outcome: a Pod's last write may still be on its way)."""
        ns, name = key_of(pvc)
        uid = uid_of(pvc)
        owned = [
            j
            for j in self.jobs.by(ns, jobs.pvc_label(name))
            if any(o.get("uid") == uid for o in owners_of(j))
        ]
        wanted = wanted_job(pvc) if fresh else None
        current: dict[str, Any] | None = None
        if wanted is not None:
            owned = [j for j in owned if name_of(j) != wanted]
            current = self._get(kinds.JOBS, ns, wanted)
            if current is not None and any(o.get("uid") == uid for o in owners_of(current)):
                owned.append(current)
            else:
                current = None
        pods = [pod for job in owned for pod in self.pods.by(ns, name_of(job))]
        if current is not None:
            mine = [p for p in pods if labels_of(p).get(JOB_NAME_LABEL) == wanted]
            if outcome_missing(current, mine):
                self.metrics.call("list", kinds.PODS.plural)
                found = self.kube.list(kinds.PODS, namespace=ns, label_selector=f"{JOB_NAME_LABEL}={wanted}")
                pods = [p for p in pods if p not in mine] + list(found.get("items") or ())
        return Observed(pvc=pvc, jobs=owned, pods=pods)

    def sync_pvc(self, ns: str, name: str) -> None:
        cached = self.pvcs.get(ns, name)
        if cached is not None:
            observed = self.observe(cached, fresh=False)
            actions = reconcile(observed, config=self.settings.config)
            if not actions:
                return  # nothing to do, as far as the watches know: no API call
            if self._first_load(observed, actions):
                self._local.read = cached
                with contextlib.suppress(Stale):
                    self.apply(cached, actions, version=version_of(cached))
                    return
        pvc = self._get(kinds.PVCS, ns, name)
        if pvc is None:
            return
        pvc.setdefault("apiVersion", "v1")
        pvc.setdefault("kind", "PersistentVolumeClaim")
        self._local.read = pvc
        self.apply(pvc, reconcile(self.observe(pvc, fresh=True), config=self.settings.config))

    def _first_load(self, observed: Observed, actions: Sequence[Action]) -> bool:
        """Whether the store's view may be acted on as it is: the PVC's first load, started by a
        condition write that names the PVC's resourceVersion (a PVC changed since fails it: 409).

        No ``DataLoaded`` condition means no Job was made for it: the condition is written first.
        """
        return (
            self.jobs_listed.is_set()
            and current(observed.pvc) is None
            and not observed.jobs
            and isinstance(actions[0], SetCondition)
            and any(isinstance(a, CreateJob) for a in actions)
            and bool(version_of(observed.pvc))
        )

    def apply(self, pvc: Mapping[str, Any], actions: Iterable[Action], *, version: str = "") -> None:
        self.act.apply(pvc, actions, version=version)

    def _emit(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.act.emit(obj, type_, reason, message)

    def sync_pod(self, ns: str, name: str) -> None:
        pod = self._get(kinds.PODS, ns, name)
        if pod is None:
            return
        pod.setdefault("apiVersion", "v1")
        pod.setdefault("kind", "Pod")
        self._local.read = pod
        index = gates.gate_index(pod)
        if index is None:
            return
        claims = {claim: self._get(kinds.PVCS, ns, claim) for claim in gates.claim_names(pod)}
        decision = gates.decide(pod, claims)
        uid = uid_of(pod)
        if decision.release:
            self.metrics.call("patch", kinds.PODS.plural)
            self.kube.patch(
                kinds.PODS,
                name,
                gates.release_patch(index),
                namespace=ns,
                kind="json",
                field_manager=FIELD_MANAGER,
            )
            self.metrics.add("gates_removed")
            log.info("released Pod %s/%s", ns, name)
        told = (decision.reason, decision.message)
        if self._pod_events.get(uid) != told:
            self._pod_events[uid] = told
            self._emit(pod, decision.event_type, decision.reason, decision.message)
