"""Carry a PVC's actions out against the API server, and post the controller's Events.

The loaders' ServiceAccount is created once per namespace (again after ``ACCOUNT_SECONDS``, or at
once after a failed look: :meth:`Actor.forget_account`); the Role and RoleBinding are per PVC. A
``version`` given to :meth:`Actor.apply` makes the condition write conditional on the PVC's
resourceVersion: a PVC that changed since answers 409, raised as :class:`Stale` before anything else
was done.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kaip.kube import events
from kaip.kube.objects import api_time, key_of
from kaip.preload.status import status_patch
from kaip.resources import kinds
from kaip.resources import preload as names
from kaip.resources.kinds import Resource
from kaip_incluster.controller.reconcile import (
    Action,
    CreateJob,
    DeleteJob,
    Emit,
    EnsureAccess,
    RecordDigest,
    SetCondition,
)
from kaip_incluster.controller.workqueue import Metrics

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger("kaip_incluster.controller.loop")

ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
_BY_KIND = {"ServiceAccount": kinds.SERVICEACCOUNTS, "Role": ROLES, "RoleBinding": ROLEBINDINGS}
FIELD_MANAGER = "kaip-data-loader"
COMPONENT = "kaip-data-loader"  # the Events' source
#: How long a namespace's loader ServiceAccount is taken to exist once created (or found).
ACCOUNT_SECONDS = 300.0


class Stale(Exception):
    """The PVC changed since the store saw it: decide again on a fresh read."""


class Actor:
    def __init__(self, kube: Kube, metrics: Metrics, *, identity: str) -> None:
        self.kube, self.metrics, self.identity = kube, metrics, identity
        self._lock = threading.Lock()
        self._accounts: dict[str, float] = {}  # namespace -> when its loader ServiceAccount was seen

    def forget_account(self, namespace: str) -> None:
        with self._lock:
            self._accounts.pop(namespace, None)

    def _ensure(self, ns: str, obj: Mapping[str, Any]) -> None:
        """Create ``obj`` unless it is there; the namespace's ServiceAccount once in a while only."""
        from kaip.kube.errors import Conflict

        account = obj["kind"] == "ServiceAccount"
        if account:
            with self._lock:
                seen = self._accounts.get(ns)
            if seen is not None and time.monotonic() - seen < ACCOUNT_SECONDS:
                return
        resource = _BY_KIND[str(obj["kind"])]
        self.metrics.call("create", resource.plural)
        with contextlib.suppress(Conflict):  # already there (made by an earlier run)
            self.kube.create(resource, obj, namespace=ns, field_manager=FIELD_MANAGER)
        if account:
            with self._lock:
                self._accounts[ns] = time.monotonic()

    def apply(self, pvc: Mapping[str, Any], actions: Iterable[Action], *, version: str = "") -> None:
        """Carry ``actions`` out, in order; ``version``: see the module's docstring."""
        from kaip.kube.errors import Conflict

        ns, name = key_of(pvc)
        for action in actions:
            if isinstance(action, EnsureAccess):
                for obj in action.objects:
                    self._ensure(ns, obj)
            elif isinstance(action, CreateJob):
                self.metrics.call("create", kinds.JOBS.plural)
                try:
                    self.kube.create(kinds.JOBS, action.manifest, namespace=ns, field_manager=FIELD_MANAGER)
                    self.metrics.add("jobs_created")
                    log.info("created Job %s/%s for PVC %s", ns, action.manifest["metadata"]["name"], name)
                except Conflict:
                    pass  # made by an earlier run (killed before its condition) or seen late by the store
            elif isinstance(action, DeleteJob):
                self.metrics.call("delete", kinds.JOBS.plural)
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
                if version:
                    patch = {**patch, "metadata": {"resourceVersion": version}}
                self.metrics.call("patch", "persistentvolumeclaims/status")
                try:
                    self.kube.patch(
                        kinds.PVCS,
                        name,
                        patch,
                        namespace=ns,
                        kind="strategic",
                        subresource="status",
                        field_manager=FIELD_MANAGER,
                    )
                except Conflict as exc:
                    if version:
                        raise Stale from exc
                    raise
            elif isinstance(action, RecordDigest):
                patch = {"metadata": {"annotations": {names.ANNOTATION_LOADED_DIGEST: action.digest}}}
                self.metrics.call("patch", kinds.PVCS.plural)
                self.kube.patch(kinds.PVCS, name, patch, namespace=ns, field_manager=FIELD_MANAGER)
            elif isinstance(action, Emit):
                self.emit(pvc, action.type, action.reason, action.message)

    def emit(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        body = events.build(
            events.reference(obj),
            reason=reason,
            message=message,
            warning=type_ == events.WARNING,
            component=COMPONENT,
            instance=self.identity,
        )
        self.metrics.call("create", "events")
        events.post(self.kube, body, field_manager=FIELD_MANAGER)
