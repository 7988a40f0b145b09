"""core/v1 Events about a PVC or a Pod, built as plain data. Pure."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kaip.errors import shorten

COMPONENT = "kaip-data-loader"


def event(
    involved: Mapping[str, Any], *, type_: str, reason: str, message: str, now: str, instance: str
) -> dict[str, Any]:
    meta = involved.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}",
            "namespace": meta.get("namespace"),
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion") or "v1",
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": shorten(message, 1000),
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
