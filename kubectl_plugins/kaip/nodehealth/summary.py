"""The cluster at a glance: nodes by state, problems by condition, GPUs by group. Pure.

Every figure reads the views' one Ready decision (kubectl's STATUS), so NOTREADY equals the sum of
the problem table's Ready rows. A condition judged by an assumed polarity is marked ``?``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from kaip.nodehealth.gpu import GpuRow, accounting
from kaip.nodehealth.nodeview import NodeView
from kaip.nodehealth.terminating import StuckTotals, held_text
from kaip.resources import timestamps

EXAMPLES = 3
#: Appended to a condition whose polarity is assumed (no table names it), in summary and list.
ASSUMED_MARK = "?"
ASSUMED_NOTE = f"{ASSUMED_MARK} polarity assumed (no table names the condition): True read as a problem."


@dataclass(frozen=True)
class ProblemRow:
    condition: str
    status: str
    nodes: int
    oldest_since: str | None
    examples: tuple[str, ...]
    assumed: bool = False


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
    stuck: StuckTotals | None = None  # None: Pods were not read

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
    assumed: set[str] = set()
    for view in views:
        for cond in view.conditions:
            if cond.abnormal:
                found.setdefault((cond.type, cond.status), []).append((cond.since or "~", view.name))
                if cond.assumed:
                    assumed.add(cond.type)
    rows = []
    for (ctype, status), hits in found.items():
        hits.sort()
        oldest = hits[0][0] if hits[0][0] != "~" else None
        examples = tuple(n for _, n in hits[:EXAMPLES])
        rows.append(ProblemRow(ctype, status, len(hits), oldest, examples, ctype in assumed))
    rows.sort(key=lambda r: (-r.nodes, r.condition, r.status))
    return tuple(rows)


def summarize(
    views: Sequence[NodeView],
    *,
    group_label: str,
    requested: Mapping[str, Mapping[str, int]] | None = None,
    stuck: StuckTotals | None = None,
) -> Summary:
    return Summary(
        counts=counts(views),
        problems=problem_rows(views),
        gpus=tuple(accounting(views, group_label=group_label, requested=requested)),
        group_label=group_label,
        stuck=stuck,
    )


Rows = list[list[Any]]


def sections(summary: Summary, *, now: datetime, wide: bool = False) -> list[tuple[list[str], Rows] | str]:
    """The summary as tables (headers, rows) or one-line notes, in the order they are printed.

    The tables fit 80 columns, as kubectl's do: the GPU table's full label, full resource names and
    the figures that follow from the others (UNAVAILABLE = CAPACITY - ALLOCATABLE; with usage,
    NODES and CAPACITY) are in ``wide`` only.
    """
    c = summary.counts
    out: list[tuple[list[str], Rows] | str] = [
        (
            ["NODES", "READY", "NOTREADY", "UNKNOWN", "CORDONED", "TAINTED", "REMEDIATING", "PROBLEMS"],
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
    if summary.stuck is not None:
        st = summary.stuck
        out.append(
            (["STUCK TERMINATING PODS", "NODES", "HOLDING"], [[st.pods, st.nodes, held_text(st.held)]])
        )
    problems = [
        [
            p.condition + (ASSUMED_MARK if p.assumed else ""),
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
    if any(p.assumed for p in summary.problems):
        out.append(ASSUMED_NOTE)
    if not summary.gpus:
        out.append("No accelerators on these nodes.")
        return out
    out.append(_gpu_table(summary, wide=wide))
    return out


def _gpu_table(summary: Summary, *, wide: bool) -> tuple[list[str], Rows]:
    usage = summary.gpus[0].requested is not None
    if wide:
        headers = [summary.group_label, "RESOURCE", "NODES", "CAPACITY", "ALLOCATABLE", "UNAVAILABLE"]
        headers += ["REQUESTED", "FREE", "STRANDED"] if usage else ["STRANDED"]
        rows: Rows = []
        for g in summary.gpus:
            row: list[Any] = [g.group, g.resource, g.nodes, g.capacity, g.allocatable, g.unavailable]
            row += [g.requested, g.free] if usage else []
            rows.append([*row, g.stranded])
        return headers, rows
    group = summary.group_label.rpartition("/")[2]
    if usage:
        return [group, "RESOURCE", "ALLOCATABLE", "REQUESTED", "FREE", "STRANDED"], [
            [g.group, short_resource(g.resource), g.allocatable, g.requested, g.free, g.stranded]
            for g in summary.gpus
        ]
    return [group, "RESOURCE", "NODES", "CAPACITY", "ALLOCATABLE", "STRANDED"], [
        [g.group, short_resource(g.resource), g.nodes, g.capacity, g.allocatable, g.stranded]
        for g in summary.gpus
    ]


def short_resource(resource: str) -> str:
    """``nvidia.com/mig-1g.10gb`` as ``mig-1g.10gb``: the vendor is in -o wide."""
    return resource.rpartition("/")[2]


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
                "polarityAssumed": r.assumed,
            }
            for r in summary.problems
        ],
        "stuckTerminatingPods": None
        if summary.stuck is None
        else {
            "pods": summary.stuck.pods,
            "nodes": summary.stuck.nodes,
            "accelerators": dict(summary.stuck.held),
        },
        "groupLabel": summary.group_label,
        "accelerators": [{_camel(k): v for k, v in asdict(r).items()} for r in summary.gpus],
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)
