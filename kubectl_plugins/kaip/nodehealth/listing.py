"""Per-node rows of ``list``: filters, sort orders, table rows and documents. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from kaip.errors import UsageError
from kaip.nodehealth.nodeview import Accelerator, NodeView
from kaip.resources import nodes, timestamps

HEADERS = ("NAME", "STATUS", "PROBLEMS", "SINCE", "GPU", "GPU USED", "TAINTS", "AGE")
WIDE_HEADERS = ("PRODUCT", "DRIVER", "KERNEL", "POOL", "STALE")

_STATE_RANK = {"Unknown": 0, "NotReady": 1, "Ready": 2}
_FAR_FUTURE = "9999"


def _by_status(v: NodeView) -> tuple[int, bool, str]:
    return (_STATE_RANK.get(v.state, 0), not v.unschedulable, v.name)


def _by_problems(v: NodeView) -> tuple[int, str]:
    return (-len(v.problems) - (v.state != "Ready"), v.name)


def _by_since(v: NodeView) -> tuple[str, str]:
    return (v.since or _FAR_FUTURE, v.name)


def _by_age(v: NodeView) -> tuple[str, str]:
    return (v.created or _FAR_FUTURE, v.name)


def _by_unavailable(v: NodeView) -> tuple[int, str]:
    return (-sum(a.unavailable for a in v.accelerators), v.name)


SORT_KEYS: Mapping[str, Callable[[NodeView], Any]] = {
    "name": lambda v: v.name,
    "status": _by_status,
    "problems": _by_problems,
    "since": _by_since,
    "age": _by_age,
    "gpu-unavailable": _by_unavailable,
}


def select(
    views: Iterable[NodeView], *, problems: Sequence[str] = (), only_problems: bool = False
) -> list[NodeView]:
    """Nodes with any of ``problems`` (``Ready`` matches nodes that are not Ready), or with any problem."""
    wanted = set(problems)
    out = []
    for view in views:
        if only_problems and not view.has_problems:
            continue
        if wanted and not (wanted & set(view.problems) or (nodes.READY in wanted and view.state != "Ready")):
            continue
        out.append(view)
    return out


def sort(views: list[NodeView], key: str) -> list[NodeView]:
    if key not in SORT_KEYS:
        raise UsageError(f"--sort-by {key}: use one of {', '.join(SORT_KEYS)}")
    return sorted(views, key=SORT_KEYS[key])


def _gpu_cell(accs: Sequence[Accelerator], value: Callable[[Accelerator], str]) -> str:
    if not accs:
        return "-"
    parts = []
    for acc in accs:
        short = "" if acc.resource == "nvidia.com/gpu" else f" {acc.resource.rpartition('/')[2]}"
        parts.append(f"{value(acc)}{short}")
    return ",".join(parts)


def _present(view: NodeView) -> list[Accelerator]:
    return [a for a in view.accelerators if a.capacity or a.allocatable]


def row(
    view: NodeView,
    *,
    now: datetime,
    wide: bool,
    pool_label: str,
    requested: Mapping[str, Mapping[str, int]] | None,
) -> list[str]:
    accs = _present(view)
    used = "-"
    if requested is not None:
        mine = requested.get(view.name, {})
        used = _gpu_cell(accs, lambda a: str(mine.get(a.resource, 0)))
    cells = [
        view.name,
        view.status,
        ",".join(view.problems) or "<none>",
        timestamps.age(view.since, at=now) if view.since else "-",
        _gpu_cell(accs, lambda a: f"{a.allocatable}/{a.capacity}"),
        used,
        ",".join(str(t) for t in view.taints) or "<none>",
        timestamps.age(view.created, at=now),
    ]
    if wide:
        cells += [
            view.product or "-",
            view.driver or "-",
            view.kernel or "-",
            view.labels.get(pool_label) or "-",
            ",".join(view.stale) or "-",
        ]
    return cells


def document(
    view: NodeView, *, pool_label: str, requested: Mapping[str, Mapping[str, int]] | None
) -> dict[str, Any]:
    """One node's health for ``-o json|yaml``."""
    mine = (requested or {}).get(view.name, {})
    return {
        "apiVersion": "kaip.dev/v1alpha1",
        "kind": "NodeHealth",
        "metadata": {"name": view.name, "creationTimestamp": view.created},
        "status": view.status,
        "state": view.state,
        "unschedulable": view.unschedulable,
        "remediation": view.remediation,
        "problems": list(view.problems),
        "since": view.since,
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": c.since,
                "lastHeartbeatTime": c.heartbeat,
                "healthyStatus": c.healthy_status,
                "polarityAssumed": c.assumed,
                "abnormal": c.abnormal,
            }
            for c in view.conditions
        ],
        "taints": [
            {"key": t.key, "value": t.value, "effect": t.effect, "timeAdded": t.added} for t in view.taints
        ],
        "accelerators": [
            {
                "resource": a.resource,
                "capacity": a.capacity,
                "allocatable": a.allocatable,
                "unavailable": a.unavailable,
                "requested": mine.get(a.resource, 0) if requested is not None else None,
            }
            for a in view.accelerators
        ],
        "product": view.product or None,
        "driver": view.driver or None,
        "kernel": view.kernel or None,
        "pool": view.labels.get(pool_label),
        "stale": list(view.stale),
    }
