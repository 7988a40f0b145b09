"""The thin loop: watches feed a queue of keys; one worker reads fresh state, decides, acts.

Watches (PVCs, loader Jobs and their Pods, gated Pods) only say *which* object to look at; the
worker reads the object again from the API before deciding, so a decision never rests on a stale
cache. Work is serial (one worker): simple, and the API calls are few per object. A periodic
resync catches anything a broken watch missed.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kaip.errors import KaipError, shorten
from kaip.kube import events, watching
from kaip.kube.objects import (
    api_time,
    key_of,
    labels_of,
    owner_of,
    owners_of,
    uid_of,
    version_of,
)
from kaip.preload import jobs
from kaip.preload.contract import is_preload
from kaip.preload.status import status_patch
from kaip.resources import kinds
from kaip.resources import preload as names
from kaip.resources.kinds import Resource
from kaip_incluster.controller import gates
from kaip_incluster.controller.reconcile import (
    Action,
    CreateJob,
    DeleteJob,
    Emit,
    EnsureAccess,
    Observed,
    RecordDigest,
    SetCondition,
    reconcile,
)
from kaip_incluster.controller.workqueue import Key, Metrics, Queue
from kaip_incluster.requeue import Backoff, RequeuePolicy

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger(__name__)

ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
_BY_KIND = {"ServiceAccount": kinds.SERVICEACCOUNTS, "Role": ROLES, "RoleBinding": ROLEBINDINGS}
FIELD_MANAGER = "kaip-data-loader"
COMPONENT = "kaip-data-loader"  # the Events' source
#: A watch that fails (not a 410) lists again after 0.5 s, doubling to 30 s while it keeps failing.
_WATCH_BACKOFF = watching.Backoff(base=0.5, cap=30.0)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: Sightings that are not news: the list of a (re)started watch, the periodic resync. They run a key
#: held by its back-off only when its resourceVersion moved; a watch event always runs it.
_RESYNC = frozenset({"LISTED", "RESYNC"})


@dataclass
class Settings:
    config: jobs.LoaderConfig = field(default_factory=jobs.LoaderConfig)
    namespace: str | None = None  # None: every namespace
    identity: str = "kaip-controller"
    resync_seconds: float = 60.0
    retry_seconds: float = 2.0  # how often a replica that does not lead looks at a key again
    requeue: RequeuePolicy = field(default_factory=RequeuePolicy)  # after an error


class Controller:
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
        self._read: Mapping[str, Any] | None = None  # the object the worker's current key read
        self._preload: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # -- watches -------------------------------------------------------------------------------
    def _scope(self) -> dict[str, Any]:
        ns = self.settings.namespace
        return {"namespace": ns} if ns else {"all_namespaces": True}

    def _watch(
        self,
        resource: Resource,
        handle: Callable[[str, Mapping[str, Any]], None],
        *,
        stop: threading.Event,
        selector: str | None = None,
        on_listed: Callable[[], None] | None = None,
    ) -> None:
        for kind, obj in watching.list_watch(
            self.kube, resource, label_selector=selector, backoff=_WATCH_BACKOFF, stop=stop, **self._scope()
        ):
            if kind == watching.SYNCED:
                if on_listed is not None:
                    on_listed()
            else:
                handle(kind, obj)

    def _enqueue(self, key: Key, kind: str, *, version: str | None = None) -> None:
        """Queue ``key`` for a sighting of ``kind``: news clears its back-off, a resync respects it."""
        if kind in _RESYNC:
            if self.backoff.held(key, version=version):
                return
        else:
            self.backoff.forget(key)
        self.queue.add(key)

    def _drop(self, key: Key) -> None:
        """The object is gone (or no longer ours): nothing of its failures is kept."""
        self.backoff.forget(key)
        with self._lock:
            self._told.pop(key, None)

    def _on_pvc(self, kind: str, pvc: Mapping[str, Any]) -> None:
        ns, name = key_of(pvc)
        preload = is_preload(pvc)
        with self._lock:
            # A PVC that loses its annotation is looked at once more: its running load is stopped.
            was = (ns, name) in self._preload
            if preload and kind != "DELETED":
                self._preload.add((ns, name))
            else:
                self._preload.discard((ns, name))
        if kind == "DELETED":
            self._drop(("pvc", ns, name))
        if preload or was:
            self._enqueue(("pvc", ns, name), kind, version=version_of(pvc) or None)
        with self._lock:
            waiting = [pod for (pns, pod), claims in self._gated.items() if pns == ns and name in claims]
        for pod in waiting:
            self._enqueue(("pod", ns, pod), "RESYNC" if kind in _RESYNC else "MODIFIED")

    def _on_loader(self, kind: str, obj: Mapping[str, Any]) -> None:
        owner = owner_of(obj, "PersistentVolumeClaim")
        pvc = owner.get("name") if owner else labels_of(obj).get(names.LABEL_PVC)
        if pvc:
            self._enqueue(("pvc", key_of(obj)[0], str(pvc)), kind)

    def _on_pod(self, kind: str, pod: Mapping[str, Any]) -> None:
        ns, name = key_of(pod)
        labels = labels_of(pod)
        if labels.get(names.LABEL_COMPONENT) == names.COMPONENT_LOADER and labels.get(names.LABEL_PVC):
            self._enqueue(("pvc", ns, str(labels[names.LABEL_PVC])), kind)
            return
        with self._lock:
            was = (ns, name) in self._gated
            if kind != "DELETED" and gates.gate_index(pod) is not None:
                self._gated[(ns, name)] = gates.claim_names(pod)
                queued = True
            else:
                self._gated.pop((ns, name), None)
                self._pod_events.pop(uid_of(pod), None)
                queued = False
        if queued:
            self._enqueue(("pod", ns, name), kind, version=version_of(pod) or None)
        elif was:  # released or gone: its failures are forgotten
            self._drop(("pod", ns, name))

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        listed = {"pvcs": threading.Event(), "pods": threading.Event()}
        loader = f"{names.LABEL_COMPONENT}={names.COMPONENT_LOADER}"
        specs = [
            (kinds.PVCS, self._on_pvc, None, listed["pvcs"].set),
            (kinds.JOBS, self._on_loader, loader, None),
            (kinds.PODS, self._on_pod, None, listed["pods"].set),
        ]
        threads = [
            threading.Thread(
                target=self._watch,
                args=(res, handle),
                kwargs={"stop": stop, "selector": sel, "on_listed": done},
                daemon=True,
                name=f"watch-{res.plural}",
            )
            for res, handle, sel, done in specs
        ]
        threads.append(threading.Thread(target=self._resync, args=(stop,), daemon=True, name="resync"))
        for thread in threads:
            thread.start()

        def ready() -> None:
            for flag in listed.values():
                flag.wait()
            self.synced.set()

        threading.Thread(target=ready, daemon=True, name="synced").start()
        return threads

    def _resync(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.resync_seconds):
            try:
                for pvc in self.kube.list_all(kinds.PVCS, **self._scope()):
                    self._on_pvc("RESYNC", pvc)
            except KaipError as exc:
                log.warning("resync: %s", exc.message)
            with self._lock:
                keys = list(self._gated)
            for ns, pod in keys:
                self._enqueue(("pod", ns, pod), "RESYNC")

    # -- the worker ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            key = self.queue.get(timeout=0.5)
            if key is None or not self.acting():
                if key is not None:
                    self.queue.add(key, after=self.settings.retry_seconds)
                continue
            self.work(key)

    def work(self, key: Key) -> None:
        """Sync one key; on an error requeue it as the back-off says (or hold it until it changes)."""
        self.metrics.reconciles += 1
        self._read = None
        try:
            if key[0] == "pvc":
                self.sync_pvc(key[1], key[2])
            else:
                self.sync_pod(key[1], key[2])
        except KaipError as exc:
            self.metrics.errors += 1
            self._failed(key, exc)
        else:
            self.backoff.forget(key)
            with self._lock:
                self._told.pop(key, None)

    def _failed(self, key: Key, exc: KaipError) -> None:
        """Requeue ``key`` after its back-off (or hold it until it changes) and say so once."""
        read = self._read
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

        try:
            return self.kube.get(resource, name, namespace=ns)
        except NotFound:
            return None

    def observe(self, ns: str, name: str) -> Observed | None:
        pvc = self._get(kinds.PVCS, ns, name)
        if pvc is None:
            return None
        pvc.setdefault("apiVersion", "v1")
        pvc.setdefault("kind", "PersistentVolumeClaim")
        self._read = pvc
        uid = uid_of(pvc)
        loaders = self.kube.list(
            kinds.JOBS, namespace=ns, label_selector=f"{names.LABEL_PVC}={jobs.pvc_label(name)}"
        )
        owned = [j for j in loaders.get("items") or () if any(o.get("uid") == uid for o in owners_of(j))]
        pods: list[dict[str, Any]] = []
        for job in owned:
            found = self.kube.list(
                kinds.PODS, namespace=ns, label_selector=f"{JOB_NAME_LABEL}={job['metadata']['name']}"
            )
            pods.extend(found.get("items") or ())
        return Observed(pvc=pvc, jobs=owned, pods=pods)

    def sync_pvc(self, ns: str, name: str) -> None:
        observed = self.observe(ns, name)
        if observed is None:
            return
        self.apply(observed.pvc, reconcile(observed, config=self.settings.config))

    def apply(self, pvc: Mapping[str, Any], actions: Iterable[Action]) -> None:
        from kaip.kube.errors import Conflict

        ns, name = key_of(pvc)
        for action in actions:
            if isinstance(action, EnsureAccess):
                for obj in action.objects:
                    with contextlib.suppress(Conflict):  # already there (made by an earlier run)
                        self.kube.create(
                            _BY_KIND[str(obj["kind"])], obj, namespace=ns, field_manager=FIELD_MANAGER
                        )
            elif isinstance(action, CreateJob):
                try:
                    self.kube.create(kinds.JOBS, action.manifest, namespace=ns, field_manager=FIELD_MANAGER)
                    self.metrics.jobs_created += 1
                    log.info("created Job %s/%s for PVC %s", ns, action.manifest["metadata"]["name"], name)
                except Conflict:
                    pass  # made by an earlier run that died before writing the condition
            elif isinstance(action, DeleteJob):
                self.kube.delete(
                    kinds.JOBS,
                    action.name,
                    namespace=ns,
                    propagation="Background",
                    ignore_missing=True,
                    preconditions={"uid": action.uid},
                )
            elif isinstance(action, SetCondition):
                patch = status_patch(action.condition, now=api_time(), transition=action.transition)
                self.kube.patch(
                    kinds.PVCS,
                    name,
                    patch,
                    namespace=ns,
                    kind="strategic",
                    subresource="status",
                    field_manager=FIELD_MANAGER,
                )
            elif isinstance(action, RecordDigest):
                patch = {"metadata": {"annotations": {names.ANNOTATION_LOADED_DIGEST: action.digest}}}
                self.kube.patch(kinds.PVCS, name, patch, namespace=ns, field_manager=FIELD_MANAGER)
            elif isinstance(action, Emit):
                self._emit(pvc, action.type, action.reason, action.message)

    def _emit(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        body = events.build(
            events.reference(obj),
            reason=reason,
            message=message,
            warning=type_ == events.WARNING,
            component=COMPONENT,
            instance=self.settings.identity,
        )
        events.post(self.kube, body, field_manager=FIELD_MANAGER)

    def sync_pod(self, ns: str, name: str) -> None:
        pod = self._get(kinds.PODS, ns, name)
        if pod is None:
            return
        pod.setdefault("apiVersion", "v1")
        pod.setdefault("kind", "Pod")
        self._read = pod
        index = gates.gate_index(pod)
        if index is None:
            return
        claims = {claim: self._get(kinds.PVCS, ns, claim) for claim in gates.claim_names(pod)}
        decision = gates.decide(pod, claims)
        uid = uid_of(pod)
        if decision.release:
            self.kube.patch(
                kinds.PODS,
                name,
                gates.release_patch(index),
                namespace=ns,
                kind="json",
                field_manager=FIELD_MANAGER,
            )
            self.metrics.gates_removed += 1
            log.info("released Pod %s/%s", ns, name)
        told = (decision.reason, decision.message)
        if self._pod_events.get(uid) != told:
            self._pod_events[uid] = told
            self._emit(pod, decision.event_type, decision.reason, decision.message)
