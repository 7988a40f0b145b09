"""Per-node rows of ``list``: filters, sort orders, table rows and documents. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from kaip.errors import UsageError
from kaip.nodehealth import terminating
from kaip.nodehealth.accelerators import UNKNOWN
from kaip.nodehealth.nodeview import Accelerator, NodeView
from kaip.nodehealth.summary import ASSUMED_MARK
from kaip.nodehealth.terminating import StuckPod
from kaip.resources import nodes, timestamps

#: The default columns fit 80 columns, as kubectl's do; the long ones are in -o wide.
HEADERS = ("NAME", "STATUS", "PROBLEMS", "SINCE", "GPU", "AGE")
#: After GPU, only with --gpu-usage: without it there is nothing to show.
USAGE_HEADER = "GPU USED"
#: Last before AGE, only when Pods were read (--gpu-usage, --stuck-pods): Pods past their deletion.
STUCK_HEADER = "STUCK"
WIDE_HEADERS = ("TAINTS", "PRODUCT", "DRIVER", "KERNEL", "POOL", "STALE")
#: The columns cut short to fit the terminal, in this order (many problems; a cordon and a remediation;
#: several MIG profiles).
FIT = ("PROBLEMS", "STATUS", "GPU", USAGE_HEADER)

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


def headers(*, wide: bool, usage: bool, stuck: bool = False) -> list[str]:
    """The columns of :func:`row`: GPU USED only with ``usage``, STUCK only with ``stuck`` (Pods
    read), the long ones only when ``wide``."""
    out = list(HEADERS)
    if usage:
        out.insert(out.index("GPU") + 1, USAGE_HEADER)
    if stuck:
        out.insert(out.index("AGE"), STUCK_HEADER)
    return out + (list(WIDE_HEADERS) if wide else [])


def problems_text(view: NodeView) -> str:
    """PROBLEMS, a condition of assumed polarity marked ``?``."""
    assumed = view.assumed_problems
    return ",".join(p + (ASSUMED_MARK if p in assumed else "") for p in view.problems) or "<none>"


def row(
    view: NodeView,
    *,
    now: datetime,
    wide: bool,
    pool_label: str,
    requested: Mapping[str, Mapping[str, int]] | None,
    stuck: Mapping[str, Sequence[StuckPod]] | None = None,
) -> list[str]:
    """The cells under :func:`headers` (``requested`` None: no GPU USED; ``stuck`` None: no STUCK)."""
    accs = _present(view)
    cells = [
        view.name,
        view.status,
        problems_text(view),
        timestamps.age(view.since, at=now) if view.since else "-",
        _gpu_cell(accs, lambda a: f"{a.allocatable}/{a.capacity}"),
    ]
    if requested is not None:
        mine = requested.get(view.name, {})
        cells.append(_gpu_cell(accs, lambda a: str(mine.get(a.resource, 0))))
    if stuck is not None:
        cells.append(str(len(stuck.get(view.name, ()))))
    cells.append(timestamps.age(view.created, at=now))
    if wide:
        cells += [
            ",".join(str(t) for t in view.taints) or "<none>",
            view.product or "-",
            view.driver or "-",
            view.kernel or "-",
            view.labels.get(pool_label) or "-",
            ",".join(view.stale) or "-",
        ]
    return cells


def document(
    view: NodeView,
    *,
    pool_label: str,
    requested: Mapping[str, Mapping[str, int]] | None,
    stuck: Mapping[str, Sequence[StuckPod]] | None = None,
) -> dict[str, Any]:
    """One node's health for ``-o json|yaml`` (``stuckTerminatingPods`` null when Pods were not read)."""
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
                "vendor": a.vendor,
                "knownVendor": a.vendor != UNKNOWN,
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
        "stuckTerminatingPods": None if stuck is None else terminating.document(stuck.get(view.name, ())),
    }
