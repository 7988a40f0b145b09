"""Pods stuck terminating: past deletion plus grace, per node, with the accelerators they hold."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kaip.nodehealth import describe, listing, polarity, summary, terminating
from kaip.nodehealth.nodeview import node_view
from kaip.remediation import matching
from kaip.remediation.spec import parse_rule

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def pod(name: str, node: str, *, deadline: str | None, gpus: int = 0) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ml"}
    if deadline:
        meta["deletionTimestamp"] = deadline
        meta["deletionGracePeriodSeconds"] = 30
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "c", "resources": resources}]},
        "status": {"phase": "Running"},
    }


PODS = [
    pod("stuck", "gpu-1", deadline="2026-11-22T10:00:00Z", gpus=4),
    pod("stuck-cpu", "gpu-1", deadline="2026-11-22T11:00:00Z"),
    pod("in-grace", "gpu-2", deadline="2026-11-22T12:00:20Z", gpus=8),  # still within its grace period
    pod("running", "gpu-2", deadline=None, gpus=8),
    pod("unbound", "", deadline="2026-11-22T10:00:00Z"),
]


def test_only_pods_past_their_deletion_deadline_are_stuck() -> None:
    stuck = terminating.stuck_pods(PODS, now=NOW)
    assert [(p.name, p.node, p.accelerators) for p in stuck] == [
        ("stuck", "gpu-1", (("nvidia.com/gpu", 4),)),
        ("stuck-cpu", "gpu-1", ()),
    ]
    totals = terminating.totals(terminating.by_node(stuck), ["gpu-1", "gpu-2"])
    assert (totals.pods, totals.nodes, totals.held) == (2, 1, (("nvidia.com/gpu", 4),))


def node(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": "2026-11-01T00:00:00Z"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "capacity": {"nvidia.com/gpu": "8"}},
    }


def test_summary_list_and_describe_show_them() -> None:
    views = [node_view(node(n), polarity.builtin(), now=NOW) for n in ("gpu-1", "gpu-2")]
    stuck = terminating.by_node(terminating.stuck_pods(PODS, now=NOW))
    s = summary.summarize(views, group_label="x", stuck=terminating.totals(stuck, ["gpu-1", "gpu-2"]))
    tables = [t for t in summary.sections(s, now=NOW) if isinstance(t, tuple)]
    assert (["STUCK TERMINATING PODS", "NODES", "HOLDING"], [[2, 1, "gpu=4"]]) in tables
    assert summary.document(s)["stuckTerminatingPods"] == {
        "pods": 2,
        "nodes": 1,
        "accelerators": {"nvidia.com/gpu": 4},
    }
    assert "STUCK" not in listing.headers(wide=False, usage=False)  # Pods not read: no column
    headers = listing.headers(wide=False, usage=False, stuck=True)
    rows = [listing.row(v, now=NOW, wide=False, pool_label="p", requested=None, stuck=stuck) for v in views]
    assert [dict(zip(headers, r, strict=True))["STUCK"] for r in rows] == ["2", "0"]
    doc = listing.document(views[0], pool_label="p", requested=None, stuck=stuck)
    assert [p["name"] for p in doc["stuckTerminatingPods"]] == ["stuck", "stuck-cpu"]
    d = describe.describe(
        views[0], holders=[], events=[], pool_label="p", now=NOW, stuck=terminating.stuck_pods(PODS, now=NOW)
    )
    section = {s.title: s for s in d.sections}[describe.STUCK_PODS]
    assert section.rows[0] == ("ml", "stuck", "120m ago", "nvidia.com/gpu=4")


def test_a_remediation_rule_can_act_on_stuck_pods() -> None:
    rule = parse_rule(
        {
            "metadata": {"name": "stuck"},
            "spec": {"conditions": [{"type": "StuckTerminatingPods", "status": "True", "duration": "30m"}]},
        }
    )
    assert matching.wants_stuck_pods([rule])
    deadlines = matching.stuck_deadlines(PODS, now=NOW)
    assert deadlines == {"gpu-1": ["2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"]}
    facts = matching.node_facts(node("gpu-1"), stuck=deadlines.get("gpu-1", []))
    assert facts.stuck_terminating_pods == 2
    found = matching.match([rule], facts, now=NOW)
    assert found is not None and found.held and found.since == "2026-11-22T10:00:00Z"
    calm = matching.node_facts(node("gpu-2"), stuck=[])
    assert matching.match([rule], calm, now=NOW) is None
    assert "StuckTerminatingPods" not in matching.node_facts(node("gpu-2")).conditions  # Pods not read
