"""Pods stuck terminating: past their ``deletionTimestamp`` (the delete request plus the grace
period) and still bound to a node, with the accelerators they still hold. Pure.

A process in D state keeps its Pod, and its GPUs, for ever: the kubelet cannot kill it. The Pods come
from the same list as GPU usage (the non-terminal Pods bound to a node), read only when asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaip.kube.objects import name_of, namespace_of, overdue_deletion, spec_of
from kaip.nodehealth.accelerators import BUILTIN, AcceleratorTable
from kaip.nodehealth.gpu import pod_requests


@dataclass(frozen=True)
class StuckPod:
    namespace: str
    name: str
    node: str
    deadline: str  # deletionTimestamp: since when it should be gone
    accelerators: tuple[tuple[str, int], ...]  # (resource, count) it still holds


@dataclass(frozen=True)
class StuckTotals:
    pods: int
    nodes: int
    held: tuple[tuple[str, int], ...]  # (resource, count) summed


def stuck_pods(
    pods: Iterable[Mapping[str, Any]], *, now: datetime, table: AcceleratorTable = BUILTIN
) -> list[StuckPod]:
    """The Pods bound to a node that are past their deletion deadline, oldest deadline first."""
    out = []
    for pod in pods:
        node = spec_of(pod).get("nodeName")
        deadline = overdue_deletion(pod, now=now) if node else None
        if deadline is None:
            continue
        held = tuple(sorted((r, n) for r, n in pod_requests(pod, table).items() if n > 0))
        out.append(StuckPod(namespace_of(pod), name_of(pod), str(node), deadline, held))
    out.sort(key=lambda p: (p.deadline, p.namespace, p.name))
    return out


def by_node(stuck: Iterable[StuckPod]) -> dict[str, list[StuckPod]]:
    out: dict[str, list[StuckPod]] = {}
    for pod in stuck:
        out.setdefault(pod.node, []).append(pod)
    return out


def totals(stuck: Mapping[str, Sequence[StuckPod]], nodes: Iterable[str]) -> StuckTotals:
    """The stuck Pods on ``nodes`` (those shown), and the accelerators they hold."""
    pods = [p for n in nodes for p in stuck.get(n, ())]
    held: dict[str, int] = {}
    for pod in pods:
        for res, n in pod.accelerators:
            held[res] = held.get(res, 0) + n
    return StuckTotals(len(pods), len({p.node for p in pods}), tuple(sorted(held.items())))


def held_text(held: Sequence[tuple[str, int]], *, short: bool = True) -> str:
    """``gpu=4,mig-1g.10gb=1``; ``-`` when nothing is held."""
    return ",".join(f"{r.rpartition('/')[2] if short else r}={n}" for r, n in held) or "-"


def document(pods: Sequence[StuckPod]) -> list[dict[str, Any]]:
    return [
        {
            "namespace": p.namespace,
            "name": p.name,
            "deletionTimestamp": p.deadline,
            "accelerators": dict(p.accelerators),
        }
        for p in pods
    ]
