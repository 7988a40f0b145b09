"""The data-loader controller's watches: PVCs, loader Jobs and their Pods, gated Pods.

Each watch is one :func:`kaip.kube.watching.list_watch` loop; what it sees goes into the stores
(:mod:`.cache`) and the keys it concerns into the work queue. A watch event is news and runs a key
at once (its back-off is forgotten); a sighting that is not news (a watch's list, the periodic
resync) runs a key held by its back-off only when its resourceVersion moved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kaip.errors import KaipError
from kaip.kube import watching
from kaip.kube.objects import key_of, labels_of, owner_of, uid_of, version_of
from kaip.preload.contract import is_preload
from kaip.resources import kinds
from kaip.resources import preload as names
from kaip.resources.kinds import Resource
from kaip_incluster.controller import gates
from kaip_incluster.controller.cache import Table
from kaip_incluster.controller.settings import Settings
from kaip_incluster.controller.workqueue import Key, Queue
from kaip_incluster.requeue import Backoff

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger("kaip_incluster.controller.loop")

#: A watch that fails (not a 410) lists again after 0.5 s, doubling to 30 s while it keeps failing.
_WATCH_BACKOFF = watching.Backoff(base=0.5, cap=30.0)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: Sightings that are not news: the list of a (re)started watch, the periodic resync. They run a key
#: held by its back-off only when its resourceVersion moved; a watch event always runs it.
_RESYNC = frozenset({"LISTED", "RESYNC"})


class Watches:
    """The watch half of :class:`~kaip_incluster.controller.loop.Controller`, which sets these."""

    kube: Kube
    settings: Settings
    queue: Queue
    backoff: Backoff[Key]
    synced: threading.Event
    jobs_listed: threading.Event
    pvcs: Table
    jobs: Table
    pods: Table
    _gated: dict[tuple[str, str], list[str]]
    _pod_events: dict[str, tuple[str, str]]
    _told: dict[Key, tuple[str, str]]
    _preload: set[tuple[str, str]]
    _lock: threading.Lock

    def _scope(self) -> dict[str, Any]:
        ns = self.settings.namespace
        return {"namespace": ns} if ns else {"all_namespaces": True}

    def _watch(
        self,
        resource: Resource,
        handle: Callable[[str, Mapping[str, Any]], None],
        *,
        stop: threading.Event,
        table: Table,
        selector: str | None = None,
        on_listed: Callable[[], None] | None = None,
    ) -> None:
        def failed(exc: KaipError, delay: float) -> None:
            table.restart()  # the next list starts afresh
            log.warning("watch of %s: %s; listing again in %.1fs", resource.plural, exc.message, delay)

        for kind, obj in watching.list_watch(
            self.kube,
            resource,
            label_selector=selector,
            backoff=_WATCH_BACKOFF,
            stop=stop,
            on_error=failed,
            **self._scope(),
        ):
            if kind == watching.RESET:  # the list broke off: a new one follows
                table.restart()
            elif kind == watching.SYNCED:
                for gone in table.synced():  # deleted while the watch was down
                    handle("DELETED", gone)
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
        if kind != "RESYNC":
            self.pvcs.apply(kind, pvc)  # a resync's list may be older than the watch: not kept
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
        self.jobs.apply(kind, obj)
        owner = owner_of(obj, "PersistentVolumeClaim")
        pvc = owner.get("name") if owner else labels_of(obj).get(names.LABEL_PVC)
        if pvc:
            self._enqueue(("pvc", key_of(obj)[0], str(pvc)), kind)

    def _on_pod(self, kind: str, pod: Mapping[str, Any]) -> None:
        ns, name = key_of(pod)
        labels = labels_of(pod)
        if labels.get(names.LABEL_COMPONENT) == names.COMPONENT_LOADER and labels.get(names.LABEL_PVC):
            self.pods.apply(kind, pod)
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
        listed = {"pvcs": threading.Event(), "jobs": self.jobs_listed, "pods": threading.Event()}
        loader = f"{names.LABEL_COMPONENT}={names.COMPONENT_LOADER}"
        specs = [
            (kinds.PVCS, self._on_pvc, self.pvcs, None, listed["pvcs"].set),
            (kinds.JOBS, self._on_loader, self.jobs, loader, listed["jobs"].set),
            (kinds.PODS, self._on_pod, self.pods, None, listed["pods"].set),
        ]
        threads = [
            threading.Thread(
                target=self._watch,
                args=(res, handle),
                kwargs={"stop": stop, "table": table, "selector": sel, "on_listed": done},
                daemon=True,
                name=f"watch-{res.plural}",
            )
            for res, handle, table, sel, done in specs
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
