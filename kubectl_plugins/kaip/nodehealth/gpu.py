"""GPU accounting per extended resource (whole GPUs, MIG profiles, other vendors), grouped by a label.

Pure. Definitions (also in docs/node-health.md):

* capacity, allocatable: summed from the nodes' status;
* unavailable = capacity - allocatable, clamped at 0 per node before summing: devices the device
  plugin marked unhealthy (a node reporting more allocatable than capacity hides no other's);
* requested: what non-terminal Pods bound to the node request (only when Pods were read);
* free: allocatable - requested on nodes that are Ready and schedulable;
* stranded: allocatable on nodes that are cordoned, NotReady or Unknown (no Pod can use it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kaip.kube.objects import metadata, name_of, namespace_of, spec_of, status_of
from kaip.nodehealth.accelerators import BUILTIN, AcceleratorTable
from kaip.nodehealth.nodeview import NodeView
from kaip.resources.quantities import count

ALL_GROUPS = "(all)"
NO_GROUP = "<none>"


@dataclass(frozen=True)
class GpuHolder:
    """A Pod that holds accelerators on a node."""

    namespace: str
    name: str
    node: str
    resource: str
    count: int
    phase: str
    created: str | None


@dataclass(frozen=True)
class GpuRow:
    group: str
    resource: str
    nodes: int
    capacity: int
    allocatable: int
    unavailable: int
    requested: int | None
    free: int | None
    stranded: int


def _container_requests(container: Mapping[str, Any], table: AcceleratorTable) -> dict[str, int]:
    resources = container.get("resources") or {}
    # Extended resources may be given as limits only; the API server then defaults requests to them.
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {k: count(v) for k, v in merged.items() if table.is_accelerator(k)}


def pod_requests(pod: Mapping[str, Any], table: AcceleratorTable = BUILTIN) -> dict[str, int]:
    """The accelerators a Pod holds: the larger of its app containers (with sidecars) and any init step."""
    spec = spec_of(pod)
    steady: dict[str, int] = defaultdict(int)
    for container in spec.get("containers") or ():
        for res, n in _container_requests(container, table).items():
            steady[res] += n
    peak: dict[str, int] = dict(steady)
    sidecars: dict[str, int] = defaultdict(int)
    for init in spec.get("initContainers") or ():
        wanted = _container_requests(init, table)
        if init.get("restartPolicy") == "Always":  # a sidecar keeps its devices
            for res, n in wanted.items():
                sidecars[res] += n
                steady[res] += n
            continue
        for res, n in wanted.items():
            peak[res] = max(peak.get(res, 0), n + sidecars[res])
    return {res: max(peak.get(res, 0), steady.get(res, 0)) for res in set(peak) | set(steady)}


def holders(pods: Iterable[Mapping[str, Any]], table: AcceleratorTable = BUILTIN) -> list[GpuHolder]:
    out = []
    for pod in pods:
        node = spec_of(pod).get("nodeName")
        phase = status_of(pod).get("phase", "")
        if not node or phase in ("Succeeded", "Failed"):
            continue
        for res, n in sorted(pod_requests(pod, table).items()):
            if n > 0:
                out.append(
                    GpuHolder(
                        namespace_of(pod),
                        name_of(pod),
                        str(node),
                        res,
                        n,
                        str(phase),
                        metadata(pod).get("creationTimestamp"),
                    )
                )
    return out


def requested_by_node(items: Iterable[GpuHolder]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for h in items:
        out[h.node][h.resource] += h.count
    return out


def _usable(view: NodeView) -> bool:
    return view.state == "Ready" and not view.unschedulable


def accounting(
    views: Iterable[NodeView],
    *,
    group_label: str,
    requested: Mapping[str, Mapping[str, int]] | None = None,
) -> list[GpuRow]:
    """One row per (group, resource), and a ``(all)`` row per resource when there are several groups."""
    sums: dict[tuple[str, str], list[int]] = {}
    for view in views:
        group = view.labels.get(group_label) or NO_GROUP
        used = (requested or {}).get(view.name, {})
        for acc in view.accelerators:
            if acc.capacity == 0 and acc.allocatable == 0:
                continue
            req = used.get(acc.resource, 0)
            for key in ((group, acc.resource), (ALL_GROUPS, acc.resource)):
                s = sums.setdefault(key, [0, 0, 0, 0, 0, 0, 0])
                s[0] += 1
                s[1] += acc.capacity
                s[2] += acc.allocatable
                s[3] += req
                s[4] += max(acc.allocatable - req, 0) if _usable(view) else 0
                s[5] += 0 if _usable(view) else acc.allocatable
                s[6] += acc.unavailable  # clamped per node
    groups = {g for g, _ in sums if g != ALL_GROUPS}
    rows = []
    for (group, res), s in sorted(sums.items(), key=lambda kv: (kv[0][0] == ALL_GROUPS, kv[0])):
        if group == ALL_GROUPS and len(groups) < 2:
            continue
        rows.append(
            GpuRow(
                group=group,
                resource=res,
                nodes=s[0],
                capacity=s[1],
                allocatable=s[2],
                unavailable=s[6],
                requested=s[3] if requested is not None else None,
                free=s[4] if requested is not None else None,
                stranded=s[5],
            )
        )
    return rows
