"""The decision for one Pod held by the ``kaip.dev/data-preload`` scheduling gate. Pure.

The gate is removed once every PVC the Pod mounts is either not a preload PVC or ``DataLoaded=True``.
Until then the Pod gets one Event saying which PVCs it waits for, and, when a load failed, a Warning
saying why it will not start and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaip.kube.objects import spec_of
from kaip.preload.contract import is_preload
from kaip.preload.status import FALSE, TRUE, current
from kaip.resources import preload as names

REASON_WAITING = "WaitingForData"
REASON_WILL_NOT_START = "DataLoadFailed"
REASON_RELEASED = "DataReady"


@dataclass(frozen=True)
class GateDecision:
    release: bool
    event_type: str
    reason: str
    message: str


def claim_names(pod: Mapping[str, Any]) -> list[str]:
    """Names of the PVCs the Pod mounts, in order, without repeats."""
    found: list[str] = []
    for volume in spec_of(pod).get("volumes") or ():
        claim = (
            (volume.get("persistentVolumeClaim") or {}).get("claimName") if isinstance(volume, dict) else None
        )
        if claim and claim not in found:
            found.append(str(claim))
    return found


def gate_index(pod: Mapping[str, Any]) -> int | None:
    for index, gate in enumerate(spec_of(pod).get("schedulingGates") or ()):
        if isinstance(gate, dict) and gate.get("name") == names.SCHEDULING_GATE:
            return index
    return None


def release_patch(index: int) -> list[dict[str, Any]]:
    """JSON patch removing our gate; the ``test`` makes it fail if the list moved meanwhile."""
    path = f"/spec/schedulingGates/{index}"
    return [
        {"op": "test", "path": f"{path}/name", "value": names.SCHEDULING_GATE},
        {"op": "remove", "path": path},
    ]


def decide(pod: Mapping[str, Any], claims: Mapping[str, Mapping[str, Any] | None]) -> GateDecision:
    """``claims``: each PVC the Pod mounts by name, ``None`` when it does not exist (yet)."""
    missing, waiting, failed, loaded = [], [], [], []
    for name in claim_names(pod):
        pvc = claims.get(name)
        if pvc is None:
            missing.append(name)
            continue
        if not is_preload(pvc):
            continue
        cond = current(pvc)
        if cond is not None and cond.status == TRUE:
            loaded.append(name)
        elif cond is not None and cond.status == FALSE:
            failed.append(f'PVC "{name}" ({cond.reason}: {cond.message})')
        else:
            waiting.append(name)
    if failed:
        return GateDecision(
            False,
            "Warning",
            REASON_WILL_NOT_START,
            "will not start: the data load failed for " + "; ".join(failed),
        )
    if missing or waiting:
        parts = []
        if waiting:
            parts.append("the data of " + ", ".join(f'PVC "{n}"' for n in waiting) + " to be loaded")
        if missing:
            parts.append(", ".join(f'PVC "{n}"' for n in missing) + " to be created")
        return GateDecision(False, "Normal", REASON_WAITING, "waiting for " + " and ".join(parts))
    what = ", ".join(f'"{n}"' for n in loaded) or "none"
    return GateDecision(
        True,
        "Normal",
        REASON_RELEASED,
        f"data loaded in the preloaded PVCs ({what}); scheduling gate {names.SCHEDULING_GATE} removed",
    )
