"""Reading plain API objects: the fields every module needs, and the API's one timestamp format.

Objects stay plain ``dict`` s (no typed models, so 5,000 Nodes and any CRD cost the same); these
accessors replace the ``(obj.get("metadata") or {}).get(...)`` walks. Each takes what the API may
send, a missing or ``null`` field included, and gives a value of one type: ``""`` for an absent
string, an empty mapping or tuple for an absent map or list, ``None`` only for an absent condition.

Pure: no I/O, standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

_EMPTY: Mapping[str, Any] = {}

#: RFC 3339 in UTC to the second: ``metav1.Time`` (``creationTimestamp``, conditions, Events).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: To the microsecond: ``metav1.MicroTime`` (a Lease's ``renewTime``, ``events.k8s.io`` Events).
MICRO_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def metadata(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    found = (obj or _EMPTY).get("metadata")
    return found if isinstance(found, Mapping) else _EMPTY


def name_of(obj: Mapping[str, Any] | None) -> str:
    return str(metadata(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any] | None) -> str:
    return str(metadata(obj).get("namespace") or "")


def key_of(obj: Mapping[str, Any] | None) -> tuple[str, str]:
    """``(namespace, name)``; the namespace is ``""`` for a cluster-scoped object."""
    meta = metadata(obj)
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def uid_of(obj: Mapping[str, Any] | None) -> str:
    return str(metadata(obj).get("uid") or "")


def version_of(obj: Mapping[str, Any] | None) -> str:
    """The object's (or a list's) ``resourceVersion``; ``""`` when it has none."""
    return str(metadata(obj).get("resourceVersion") or "")


def _map(value: Any) -> Mapping[str, str]:
    return value if isinstance(value, Mapping) else _EMPTY


def labels_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return _map(metadata(obj).get("labels"))


def annotations_of(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return _map(metadata(obj).get("annotations"))


def owners_of(obj: Mapping[str, Any] | None) -> Sequence[Mapping[str, Any]]:
    found = metadata(obj).get("ownerReferences")
    return tuple(o for o in found if isinstance(o, Mapping)) if isinstance(found, list) else ()


def owner_of(obj: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    """The first owner reference of ``kind``, or ``None``."""
    return next((o for o in owners_of(obj) if o.get("kind") == kind), None)


def status_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    found = (obj or _EMPTY).get("status")
    return found if isinstance(found, Mapping) else _EMPTY


def spec_of(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    found = (obj or _EMPTY).get("spec")
    return found if isinstance(found, Mapping) else _EMPTY


def conditions_of(obj: Mapping[str, Any] | None) -> Sequence[Mapping[str, Any]]:
    found = status_of(obj).get("conditions")
    return tuple(c for c in found if isinstance(c, Mapping)) if isinstance(found, list) else ()


def condition_of(obj: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    """The status condition of ``type_``, or ``None``."""
    return next((c for c in conditions_of(obj) if c.get("type") == type_), None)


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    if moment.tzinfo is None:  # a naive time is taken as UTC, as the API's own times are
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def api_time(moment: datetime | None = None) -> str:
    """``moment`` (now when omitted) as the API writes a ``metav1.Time``: ``2026-12-06T05:27:30Z``."""
    return _utc(moment).strftime(TIME_FORMAT)


def api_micro_time(moment: datetime | None = None) -> str:
    """``moment`` (now when omitted) as a ``metav1.MicroTime``: ``2026-12-06T05:27:30.123456Z``."""
    return _utc(moment).strftime(MICRO_TIME_FORMAT)


def overdue_deletion(obj: Mapping[str, Any] | None, *, now: datetime) -> str | None:
    """The ``deletionTimestamp`` of an object still there after it: the server sets it to the delete
    request's time plus the grace period, so a Pod past it is stuck terminating (a finalizer, or a
    process the kubelet cannot kill). None for an object not being deleted, or still in its grace."""
    deadline = metadata(obj).get("deletionTimestamp")
    if not deadline:
        return None
    try:
        when = datetime.fromisoformat(str(deadline).replace("Z", "+00:00"))
    except ValueError:
        return None
    return str(deadline) if _utc(now) >= _utc(when) else None
