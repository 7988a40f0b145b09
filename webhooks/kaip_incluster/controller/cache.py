"""What the controller's watches have seen: PVCs, loader Jobs by PVC, loader Pods by Job.

The stores only tell the worker whether a key has work to do; the work itself is decided again on
a fresh read (:mod:`.loop`). Objects are kept slim: metadata without ``managedFields``, status, and
of the spec only the few fields a decision reads (:data:`SPEC_KEPT`), so 5,000 PVCs, Jobs and Pods
stay a few tens of MiB.

A (re-)list replaces what it covers: the objects a list did not return are dropped when it ends
(``SYNCED``) and handed back so their keys can be looked at once more. A list that failed midway
is forgotten (:meth:`Table.restart`) before the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from kaip.kube.objects import key_of, labels_of, metadata

Ref = tuple[str, str]  # (namespace, name)


#: The few spec fields a decision reads: a PVC's access modes and requested size (how many loader
#: Pods), a Job's completions (how many shards to add up).
SPEC_KEPT = ("accessModes", "resources", "completionMode", "completions")


def slim(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without what no decision reads: ``managedFields`` and the spec but :data:`SPEC_KEPT`."""
    meta = {k: v for k, v in metadata(obj).items() if k != "managedFields"}
    kept: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": meta}
    spec = {k: v for k, v in (obj.get("spec") or {}).items() if k in SPEC_KEPT}
    if spec:
        kept["spec"] = spec
    if obj.get("status") is not None:
        kept["status"] = obj["status"]
    return kept


class Table:
    """One resource's objects by (namespace, name), and by (namespace, ``index(obj)``)."""

    def __init__(self, index: Callable[[Mapping[str, Any]], str | None] | None = None) -> None:
        self._index = index
        self._lock = threading.Lock()
        self._objects: dict[Ref, dict[str, Any]] = {}
        self._by: dict[Ref, set[str]] = {}
        self._listed: set[Ref] = set()

    def __len__(self) -> int:
        return len(self._objects)

    def _unindex(self, ref: Ref, obj: Mapping[str, Any]) -> None:
        value = self._index(obj) if self._index else None
        if value is not None:
            names = self._by.get((ref[0], value))
            if names is not None:
                names.discard(ref[1])
                if not names:
                    del self._by[(ref[0], value)]

    def apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        """A watch event (``LISTED``, ``ADDED``, ``MODIFIED``, ``DELETED``) about ``obj``."""
        ref = key_of(obj)
        with self._lock:
            old = self._objects.pop(ref, None)
            if old is not None:
                self._unindex(ref, old)
            if kind == "LISTED":
                self._listed.add(ref)
            if kind == "DELETED":
                return
            kept = slim(obj)
            self._objects[ref] = kept
            value = self._index(kept) if self._index else None
            if value is not None:
                self._by.setdefault((ref[0], value), set()).add(ref[1])

    def synced(self) -> list[dict[str, Any]]:
        """A list ended: drop (and return) what it did not return."""
        with self._lock:
            gone = [ref for ref in self._objects if ref not in self._listed]
            removed = []
            for ref in gone:
                obj = self._objects.pop(ref)
                self._unindex(ref, obj)
                removed.append(obj)
            self._listed = set()
        return removed

    def restart(self) -> None:
        """The list failed: the next one starts afresh."""
        with self._lock:
            self._listed = set()

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def by(self, namespace: str, value: str) -> list[dict[str, Any]]:
        with self._lock:
            names = self._by.get((namespace, value)) or ()
            return [self._objects[(namespace, n)] for n in sorted(names)]


def label(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    """An index on the label ``name``."""

    def value(obj: Mapping[str, Any]) -> str | None:
        found = labels_of(obj).get(name)
        return str(found) if found is not None else None

    return value
