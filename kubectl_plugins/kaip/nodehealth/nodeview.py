"""One Node object read into what ``kubectl node-health`` shows: state, problems, taints, GPUs.

Pure: a Node (plain dict from the API), the polarity and accelerator tables in, a frozen
:class:`NodeView` out. Rules every view follows (docs/node-health.md):

* a condition type listed twice counts once: the last entry wins, as in kubectl's printer;
* one Ready decision, kubectl's STATUS: Ready ``True`` is Ready, any other status NotReady, no Ready
  condition Unknown; the summary's counts, its problem table, ``list`` and ``describe`` all read it;
* SINCE is the oldest ``lastTransitionTime`` among the PROBLEMS (abnormal conditions other than
  Ready); a node whose only problem is its state shows since when its Ready condition changed (or its
  creation, when it has none);
* quantities are Kubernetes quantities (``1k``, ``1e3``), see :mod:`kaip.resources.quantities`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kaip.kube.objects import labels_of, metadata, name_of, spec_of, status_of
from kaip.nodehealth.accelerators import BUILTIN, UNKNOWN, AcceleratorTable
from kaip.nodehealth.polarity import Polarity
from kaip.resources import nodes, timestamps
from kaip.resources.quantities import count


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    since: str | None  # lastTransitionTime
    heartbeat: str | None  # lastHeartbeatTime
    healthy_status: str
    assumed: bool  # polarity not in any table: node-problem-detector's convention applied
    abnormal: bool


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str
    added: str | None

    def __str__(self) -> str:
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


@dataclass(frozen=True)
class Accelerator:
    """One extended resource of a node: what the device plugin reports and what it offers."""

    resource: str
    capacity: int
    allocatable: int
    vendor: str = UNKNOWN  # accelerators.UNKNOWN: the name looks like an accelerator, no table lists it

    @property
    def unavailable(self) -> int:
        """Devices the device plugin marked unhealthy (the kubelet counts them in capacity only)."""
        return max(self.capacity - self.allocatable, 0)


@dataclass(frozen=True)
class NodeView:
    name: str
    state: str  # Ready | NotReady | Unknown
    unschedulable: bool
    remediation: str | None
    conditions: tuple[Condition, ...]
    problems: tuple[str, ...]  # abnormal condition types other than Ready
    since: str | None  # the oldest transition among the abnormal conditions
    taints: tuple[Taint, ...]
    accelerators: tuple[Accelerator, ...]
    labels: Mapping[str, str]
    created: str | None
    kernel: str
    stale: tuple[str, ...]  # conditions whose detector stopped sending heartbeats
    product: str = ""  # the first product label of the accelerator table the node carries

    @property
    def status(self) -> str:
        """kubectl's STATUS column, plus our remediation marker."""
        parts = [self.state]
        if self.unschedulable:
            parts.append("SchedulingDisabled")
        if self.remediation:
            parts.append(f"Remediation:{self.remediation}")
        return ",".join(parts)

    @property
    def has_problems(self) -> bool:
        """Not Ready, an abnormal condition, or devices the device plugin marked unhealthy."""
        return self.state != "Ready" or bool(self.problems) or any(a.unavailable for a in self.accelerators)

    @property
    def assumed_problems(self) -> tuple[str, ...]:
        """The PROBLEMS judged by an assumed polarity (no table names them)."""
        return tuple(c.type for c in self.conditions if c.abnormal and c.assumed and c.type != nodes.READY)

    @property
    def driver(self) -> str:
        return self.labels.get(nodes.LABEL_DRIVER_VERSION, "")

    def gpu(self, resource: str = "nvidia.com/gpu") -> Accelerator | None:
        return next((a for a in self.accelerators if a.resource == resource), None)

    def taint_effects(self) -> set[str]:
        return {t.effect for t in self.taints}


def read_condition(raw: Mapping[str, Any], polarity: Polarity) -> Condition:
    ctype = str(raw.get("type", ""))
    status = str(raw.get("status", "Unknown"))
    healthy, assumed = polarity.healthy_status(ctype)
    return Condition(
        type=ctype,
        status=status,
        reason=str(raw.get("reason") or ""),
        message=str(raw.get("message") or ""),
        since=raw.get("lastTransitionTime"),
        heartbeat=raw.get("lastHeartbeatTime"),
        healthy_status=healthy,
        assumed=assumed,
        abnormal=status != healthy,
    )


def _remediation(labels: Mapping[str, str], taints: tuple[Taint, ...]) -> str | None:
    if labels.get(nodes.LABEL_REMEDIATION):
        return labels[nodes.LABEL_REMEDIATION]
    keys = {t.key for t in taints}
    if nodes.TAINT_REMEDIATION in keys or nodes.TAINT_NODE_OPERATION in keys:
        return "Operating"
    return None


def _stale(conditions: tuple[Condition, ...], now: datetime) -> tuple[str, ...]:
    limit = 2 * nodes.DETECTOR_HEARTBEAT_SECONDS
    out = []
    for cond in conditions:
        beat = timestamps.parse(cond.heartbeat)
        if beat is not None and (now - beat).total_seconds() > limit:
            out.append(cond.type)
    return tuple(out)


def _unique(raw: Any) -> list[Mapping[str, Any]]:
    """Conditions by type, the last entry of a type winning (kubectl's printer keeps a map)."""
    by_type: dict[str, Mapping[str, Any]] = {}
    for c in raw or ():
        by_type[str(c.get("type", ""))] = c
    return list(by_type.values())


def _state(ready: Condition | None) -> str:
    """kubectl's STATUS: Ready only when the Ready condition is True; no Ready condition: Unknown."""
    if ready is None:
        return "Unknown"
    return "Ready" if ready.status == "True" else "NotReady"


def node_view(
    node: Mapping[str, Any], polarity: Polarity, *, now: datetime, accelerators: AcceleratorTable = BUILTIN
) -> NodeView:
    meta = metadata(node)
    spec = spec_of(node)
    status = status_of(node)
    conditions = tuple(read_condition(c, polarity) for c in _unique(status.get("conditions")))
    ready = next((c for c in conditions if c.type == nodes.READY), None)
    state = _state(ready)
    if ready is not None:
        # the one Ready decision: whatever a polarity file says of Ready, kubectl's STATUS decides
        ready_abnormal = state != "Ready"
        if ready.abnormal != ready_abnormal or ready.healthy_status != "True":
            ready = replace(ready, healthy_status="True", assumed=False, abnormal=ready_abnormal)
            conditions = tuple(ready if c.type == nodes.READY else c for c in conditions)
    problems = [c for c in conditions if c.abnormal and c.type != nodes.READY]
    taints = tuple(
        Taint(str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect", "")), t.get("timeAdded"))
        for t in spec.get("taints") or ()
    )
    capacity = status.get("capacity") or {}
    allocatable = status.get("allocatable") or {}
    found = []
    for name in sorted(set(capacity) | set(allocatable)):
        vendor = accelerators.vendor(name)
        if vendor is not None:
            found.append(
                Accelerator(name, count(capacity.get(name, 0)), count(allocatable.get(name, 0)), vendor)
            )
    labels = labels_of(node)
    since = min((c.since for c in problems if c.since), default=None)
    if since is None and state != "Ready":
        since = ready.since if ready is not None else meta.get("creationTimestamp")
    return NodeView(
        name=name_of(node),
        state=state,
        unschedulable=bool(spec.get("unschedulable")),
        remediation=_remediation(labels, taints),
        conditions=conditions,
        problems=tuple(c.type for c in problems),
        since=since,
        taints=taints,
        accelerators=tuple(found),
        labels=labels,
        created=meta.get("creationTimestamp"),
        kernel=str((status.get("nodeInfo") or {}).get("kernelVersion", "")),
        stale=_stale(conditions, now),
        product=accelerators.product(labels),
    )
