"""``describe NODE``: every condition, taints with their age, the Pods holding GPUs, the Pods stuck
terminating, recent Events. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaip.kube.objects import metadata
from kaip.nodehealth.gpu import GpuHolder
from kaip.nodehealth.nodeview import NodeView
from kaip.nodehealth.terminating import StuckPod, held_text
from kaip.resources import timestamps

EVENT_LIMIT = 20


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "<none>"


@dataclass(frozen=True)
class Description:
    fields: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...]


def _ago(stamp: str | None, now: datetime) -> str:
    return f"{timestamps.age(stamp, at=now)} ago" if stamp else "-"


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or (event.get("series") or {}).get("lastObservedTime")
        or event.get("eventTime")
        or metadata(event).get("creationTimestamp")
        or ""
    )


def recent_events(
    events: Sequence[Mapping[str, Any]], *, limit: int = EVENT_LIMIT
) -> list[Mapping[str, Any]]:
    """The newest ``limit`` events, oldest first (as kubectl describe prints them)."""
    return sorted(events, key=_event_time)[-limit:]


def describe(
    view: NodeView,
    *,
    holders: Sequence[GpuHolder],
    events: Sequence[Mapping[str, Any]],
    pool_label: str,
    now: datetime,
    stuck: Sequence[StuckPod] = (),
) -> Description:
    fields = (
        ("Name", view.name),
        ("Status", view.status),
        ("Problems", ", ".join(view.problems) or "<none>"),
        ("Since", f"{view.since} ({_ago(view.since, now)})" if view.since else "-"),
        ("Unschedulable", "true" if view.unschedulable else "false"),
        ("Remediation", view.remediation or "<none>"),
        ("GPU product", view.product or "-"),
        ("Driver", view.driver or "-"),
        ("Kernel", view.kernel or "-"),
        ("Pool", view.labels.get(pool_label) or "-"),
        ("Created", f"{view.created} ({_ago(view.created, now)})" if view.created else "-"),
    )
    conditions = Section(
        "Conditions",
        ("TYPE", "STATUS", "HEALTHY WHEN", "REASON", "MESSAGE", "LAST TRANSITION", "LAST HEARTBEAT"),
        tuple(
            (
                ("! " if c.abnormal else "  ") + c.type,
                c.status,
                c.healthy_status + (" (assumed)" if c.assumed else ""),
                c.reason or "-",
                c.message or "-",
                _ago(c.since, now),
                _ago(c.heartbeat, now) + (" STALE" if c.type in view.stale else ""),
            )
            for c in view.conditions
        ),
    )
    taints = Section("Taints", ("TAINT", "ADDED"), tuple((str(t), _ago(t.added, now)) for t in view.taints))
    mine = [h for h in holders if h.node == view.name]
    requested: dict[str, int] = {}
    for h in mine:
        requested[h.resource] = requested.get(h.resource, 0) + h.count
    gpus = Section(
        "Accelerators",
        ("RESOURCE", "VENDOR", "CAPACITY", "ALLOCATABLE", "UNAVAILABLE", "REQUESTED"),
        tuple(
            (
                a.resource,
                a.vendor,
                str(a.capacity),
                str(a.allocatable),
                str(a.unavailable),
                str(requested.get(a.resource, 0)),
            )
            for a in view.accelerators
        ),
    )
    pods = Section(
        "Pods holding accelerators",
        ("NAMESPACE", "NAME", "RESOURCE", "COUNT", "PHASE", "AGE"),
        tuple(
            (h.namespace, h.name, h.resource, str(h.count), h.phase, timestamps.age(h.created, at=now))
            for h in mine
        ),
    )
    stuck_rows = Section(
        STUCK_PODS,
        ("NAMESPACE", "NAME", "DELETION DUE", "ACCELERATORS"),
        tuple(
            (p.namespace, p.name, _ago(p.deadline, now), held_text(p.accelerators, short=False))
            for p in stuck
            if p.node == view.name
        ),
    )
    event_rows = Section(
        "Events",
        ("LAST SEEN", "TYPE", "REASON", "FROM", "MESSAGE"),
        tuple(
            (
                _ago(_event_time(e) or None, now),
                str(e.get("type", "")),
                str(e.get("reason", "")),
                str((e.get("source") or {}).get("component") or e.get("reportingComponent") or "-"),
                " ".join(str(e.get("message") or e.get("note") or "").split()),
            )
            for e in recent_events(events)
        ),
    )
    return Description(fields, (conditions, taints, gpus, pods, stuck_rows, event_rows))


def document(description: Description, node_document: dict[str, Any]) -> dict[str, Any]:
    """``describe -o json|yaml``: the node's health plus the Pods and Events shown."""
    sections = {s.title: s for s in description.sections}
    doc = dict(node_document)
    doc["gpuPods"] = [
        dict(zip(("namespace", "name", "resource", "count", "phase", "age"), r, strict=True))
        for r in sections["Pods holding accelerators"].rows
    ]
    doc["events"] = [
        dict(zip(("lastSeen", "type", "reason", "from", "message"), r, strict=True))
        for r in sections["Events"].rows
    ]
    if REMEDIATION_HISTORY in sections:
        doc["remediationHistory"] = [
            dict(zip(("time", "phase", "message"), r, strict=True))
            for r in sections[REMEDIATION_HISTORY].rows
        ]
    return doc


REMEDIATION_HISTORY = "Remediation history"
STUCK_PODS = "Pods stuck terminating"


def with_remediation_history(description: Description, rows: Sequence[Sequence[str]]) -> Description:
    """The node's remediation steps (time, phase, message), shown before its Events."""
    section = Section(REMEDIATION_HISTORY, ("TIME", "PHASE", "MESSAGE"), tuple(tuple(r) for r in rows))
    *before, events = description.sections
    return Description(description.fields, (*before, section, events))
