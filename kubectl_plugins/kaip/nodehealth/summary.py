"""The cluster at a glance: nodes by state, problems by condition, GPUs by group. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from kaip.nodehealth.gpu import GpuRow, accounting
from kaip.nodehealth.nodeview import NodeView
from kaip.resources import timestamps

EXAMPLES = 3


@dataclass(frozen=True)
class ProblemRow:
    condition: str
    status: str
    nodes: int
    oldest_since: str | None
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Counts:
    total: int
    ready: int
    not_ready: int
    unknown: int
    cordoned: int
    tainted: int  # a NoSchedule or NoExecute taint
    remediating: int
    with_problems: int


@dataclass(frozen=True)
class Summary:
    counts: Counts
    problems: tuple[ProblemRow, ...]
    gpus: tuple[GpuRow, ...]
    group_label: str

    @property
    def has_problems(self) -> bool:
        return self.counts.with_problems > 0


def counts(views: Sequence[NodeView]) -> Counts:
    return Counts(
        total=len(views),
        ready=sum(v.state == "Ready" for v in views),
        not_ready=sum(v.state == "NotReady" for v in views),
        unknown=sum(v.state == "Unknown" for v in views),
        cordoned=sum(v.unschedulable for v in views),
        tainted=sum(bool(v.taint_effects() & {"NoSchedule", "NoExecute"}) for v in views),
        remediating=sum(v.remediation is not None for v in views),
        with_problems=sum(v.has_problems for v in views),
    )


def problem_rows(views: Sequence[NodeView]) -> tuple[ProblemRow, ...]:
    """One row per abnormal (condition, status), most nodes first; examples are the longest-broken."""
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for view in views:
        for cond in view.conditions:
            if cond.abnormal:
                found.setdefault((cond.type, cond.status), []).append((cond.since or "~", view.name))
    rows = []
    for (ctype, status), hits in found.items():
        hits.sort()
        oldest = hits[0][0] if hits[0][0] != "~" else None
        rows.append(ProblemRow(ctype, status, len(hits), oldest, tuple(n for _, n in hits[:EXAMPLES])))
    rows.sort(key=lambda r: (-r.nodes, r.condition, r.status))
    return tuple(rows)


def summarize(
    views: Sequence[NodeView],
    *,
    group_label: str,
    requested: Mapping[str, Mapping[str, int]] | None = None,
) -> Summary:
    return Summary(
        counts=counts(views),
        problems=problem_rows(views),
        gpus=tuple(accounting(views, group_label=group_label, requested=requested)),
        group_label=group_label,
    )


Rows = list[list[Any]]


def sections(summary: Summary, *, now: datetime) -> list[tuple[list[str], Rows] | str]:
    """The summary as tables (headers, rows) or one-line notes, in the order they are printed."""
    c = summary.counts
    out: list[tuple[list[str], Rows] | str] = [
        (
            ["NODES", "READY", "NOT READY", "UNKNOWN", "CORDONED", "TAINTED", "REMEDIATING", "WITH PROBLEMS"],
            [
                [
                    c.total,
                    c.ready,
                    c.not_ready,
                    c.unknown,
                    c.cordoned,
                    c.tainted,
                    c.remediating,
                    c.with_problems,
                ]
            ],
        )
    ]
    problems = [
        [
            p.condition,
            p.status,
            p.nodes,
            timestamps.age(p.oldest_since, at=now) if p.oldest_since else "-",
            ",".join(p.examples) + ("..." if p.nodes > len(p.examples) else ""),
        ]
        for p in summary.problems
    ]
    out.append(
        (["CONDITION", "STATUS", "NODES", "OLDEST SINCE", "EXAMPLES"], problems)
        if problems
        else "No abnormal node conditions."
    )
    if not summary.gpus:
        out.append("No accelerators on these nodes.")
        return out
    usage = summary.gpus[0].requested is not None
    headers = [summary.group_label, "RESOURCE", "NODES", "CAPACITY", "ALLOCATABLE", "UNAVAILABLE"]
    headers += ["REQUESTED", "FREE", "STRANDED"] if usage else ["STRANDED"]
    rows: Rows = []
    for g in summary.gpus:
        row: list[Any] = [g.group, g.resource, g.nodes, g.capacity, g.allocatable, g.unavailable]
        row += [g.requested, g.free] if usage else []
        rows.append([*row, g.stranded])
    out.append((headers, rows))
    return out


def document(summary: Summary) -> dict[str, Any]:
    """The summary for ``-o json|yaml`` (field names in the API's camelCase)."""
    return {
        "apiVersion": "kaip.dev/v1alpha1",
        "kind": "NodeHealthSummary",
        "nodes": {_camel(k): v for k, v in asdict(summary.counts).items()},
        "problems": [
            {
                "condition": r.condition,
                "status": r.status,
                "nodes": r.nodes,
                "oldestSince": r.oldest_since,
                "examples": list(r.examples),
            }
            for r in summary.problems
        ],
        "groupLabel": summary.group_label,
        "accelerators": [{_camel(k): v for k, v in asdict(r).items()} for r in summary.gpus],
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
