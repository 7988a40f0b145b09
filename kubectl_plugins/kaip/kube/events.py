"""core/v1 Events: one builder and one poster for every kaip component.

An Event is what ``kubectl describe`` and ``kubectl events`` show under an object. :func:`build`
makes it as plain data (pure); :func:`post` creates it and never raises: an Event that cannot be
written is a warning in the log, never a reason to stop the work it describes.

Messages are cut to 1,000 characters. Callers put no secret in them; the error messages they pass
are already cut short and never quote a request body (:mod:`kaip.kube.errors`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kaip.errors import shorten
from kaip.kube.objects import api_time, metadata

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
MESSAGE_LIMIT = 1000


def reference(obj: Mapping[str, Any], *, api_version: str = "v1", kind: str = "") -> dict[str, Any]:
    """The ``involvedObject`` of an Event about ``obj`` (its type from the object when it says)."""
    meta = metadata(obj)
    ref = {
        "apiVersion": obj.get("apiVersion") or api_version,
        "kind": obj.get("kind") or kind,
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {k: v for k, v in ref.items() if v}


def build(
    involved: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    component: str,
    instance: str,
    warning: bool = False,
    namespace: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """An Event about the object ``involved`` refers to (see :func:`reference`).

    ``namespace``: where the Event lives; by default the object's own (a cluster-scoped object's
    Events go to a namespace the component names, e.g. ``default``).
    """
    name = str(involved.get("name") or "object")
    stamp = now or api_time()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name}.{uuid.uuid4().hex[:16]}",
            "namespace": namespace or involved.get("namespace") or "default",
        },
        "involvedObject": dict(involved),
        "type": WARNING if warning else NORMAL,
        "reason": reason,
        "message": shorten(message, MESSAGE_LIMIT),
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def post(kube: Kube, event: Mapping[str, Any], *, field_manager: str | None = None) -> bool:
    """Create ``event``; ``False`` (and a warning in the log) when the API refuses it."""
    from kaip.resources.kinds import EVENTS

    try:
        kube.create(
            EVENTS,
            event,
            namespace=str(event["metadata"]["namespace"]),
            field_manager=field_manager or str((event.get("source") or {}).get("component") or ""),
        )
    except Exception as exc:  # an Event is best effort: never stop the work it describes
        log.warning("event %s not recorded: %s", event.get("reason"), shorten(str(exc), 200))
        return False
    return True
