"""The ``DataLoaded`` condition of a PVC: reading it, and the status patch that sets it. Pure.

PVC conditions are a list keyed by ``type`` (strategic merge), so a patch that names only
``DataLoaded`` leaves the conditions of others (resize, modify-volume) alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaip.resources.preload import CONDITION_LOADED

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


@dataclass(frozen=True)
class Condition:
    status: str
    reason: str
    message: str


def current(pvc: Mapping[str, Any]) -> Condition | None:
    for item in (pvc.get("status") or {}).get("conditions") or ():
        if isinstance(item, dict) and item.get("type") == CONDITION_LOADED:
            return Condition(
                status=str(item.get("status") or ""),
                reason=str(item.get("reason") or ""),
                message=str(item.get("message") or ""),
            )
    return None


def is_loaded(pvc: Mapping[str, Any]) -> bool:
    found = current(pvc)
    return found is not None and found.status == TRUE


def status_patch(condition: Condition, *, now: str, transition: bool) -> dict[str, Any]:
    """Strategic-merge patch for the status subresource; ``transition`` stamps lastTransitionTime."""
    item: dict[str, Any] = {
        "type": CONDITION_LOADED,
        "status": condition.status,
        "reason": condition.reason,
        "message": condition.message,
        "lastProbeTime": now,
    }
    if transition:
        item["lastTransitionTime"] = now
    return {"status": {"conditions": [item]}}
