"""node-health tells the truth on odd clusters: each rule pinned with a small Node."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from kaip.nodehealth import gpu, listing, polarity, summary
from kaip.nodehealth.nodeview import NodeView, node_view

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
TABLE = polarity.builtin()


def cond(ctype: str, status: str, since: str = "2026-11-22T11:00:00Z") -> dict[str, Any]:
    return {"type": ctype, "status": status, "lastTransitionTime": since, "lastHeartbeatTime": since}


def node(
    name: str = "n1",
    *,
    conditions: list[dict[str, Any]] | None = None,
    capacity: dict[str, Any] | None = None,
    allocatable: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {},
        "status": {
            "conditions": [cond("Ready", "True")] if conditions is None else conditions,
            "capacity": capacity or {},
            "allocatable": allocatable if allocatable is not None else (capacity or {}),
        },
    }


def view(obj: dict[str, Any], table: polarity.Polarity = TABLE) -> NodeView:
    return node_view(obj, table, now=NOW)


# -- quantities ------------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", ["1k", "1e3", "1000"])
def test_time_sliced_gpus_written_as_quantities_are_counted(quantity: str) -> None:
    v = view(node(capacity={"nvidia.com/gpu.shared": quantity, "cpu": "64"}))
    assert [(a.resource, a.capacity, a.allocatable) for a in v.accelerators] == [
        ("nvidia.com/gpu.shared", 1000, 1000)
    ]
    rows = gpu.accounting([v], group_label="nvidia.com/gpu.product")
    assert [(r.resource, r.capacity) for r in rows] == [("nvidia.com/gpu.shared", 1000)]


# -- a condition listed twice ---------------------------------------------------------------------
def test_a_condition_type_listed_twice_counts_once_the_last_winning() -> None:
    conds = [
        cond("Ready", "True"),
        cond("GPUIsLost", "True", since="2026-11-22T10:00:00Z"),
        cond("GPUIsLost", "True", since="2026-11-22T11:00:00Z"),
    ]
    v = view(node(conditions=conds))
    assert v.problems == ("GPUIsLost",)
    assert [c.since for c in v.conditions if c.type == "GPUIsLost"] == ["2026-11-22T11:00:00Z"]
    rows = summary.problem_rows([v])
    assert [(r.condition, r.nodes) for r in rows] == [("GPUIsLost", 1)]
    assert listing.problems_text(v) == "GPUIsLost"


# -- one Ready decision ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        ([cond("Ready", "True")], "Ready"),
        ([cond("Ready", "False")], "NotReady"),
        ([cond("Ready", "Unknown")], "NotReady"),  # kubectl: anything but True is NotReady
        ([cond("Ready", "maybe")], "NotReady"),
        ([], "Unknown"),  # no Ready condition at all
        ([cond("Ready", "False"), cond("Ready", "True")], "Ready"),  # the last one, as kubectl's map
        ([cond("Ready", "True"), cond("Ready", "False")], "NotReady"),
    ],
)
def test_the_ready_decision_is_kubectls(conditions: list[dict[str, Any]], state: str) -> None:
    v = view(node(conditions=conditions))
    assert v.state == state
    assert v.status == state


def test_every_view_reads_the_same_ready_decision() -> None:
    odd = [
        node("a", conditions=[cond("Ready", "Unknown")]),
        node("b", conditions=[cond("Ready", "True"), cond("Ready", "False")]),
        node("c", conditions=[cond("Ready", "False"), cond("Ready", "True")]),
        node("d", conditions=[]),
    ]
    # even a polarity file that calls Ready healthy when False does not split the views
    table = TABLE.extended(polarity.parse_text('healthyWhen: {Ready: "False"}', source="f"))
    views = [view(n, table) for n in odd]
    counts = summary.counts(views)
    ready_rows = sum(r.nodes for r in summary.problem_rows(views) if r.condition == "Ready")
    assert (counts.ready, counts.not_ready, counts.unknown) == (1, 2, 1)
    assert ready_rows == counts.not_ready
    assert [v.name for v in listing.select(views, problems=["Ready"])] == ["a", "b", "d"]


# -- SINCE ------------------------------------------------------------------------------------------
def test_since_follows_the_problems_not_a_long_notready() -> None:
    v = view(
        node(
            conditions=[
                cond("Ready", "False", since="2026-10-23T12:00:00Z"),  # 30 days
                cond("GPUIsLost", "True", since="2026-11-22T11:00:00Z"),  # 1 hour
            ]
        )
    )
    row = listing.row(v, now=NOW, wide=False, pool_label="p", requested=None)
    assert row[3] == "60m"
    down = view(node(conditions=[cond("Ready", "False", since="2026-10-23T12:00:00Z")]))
    assert listing.row(down, now=NOW, wide=False, pool_label="p", requested=None)[3] == "30d"


# -- UNAVAILABLE ------------------------------------------------------------------------------------
def test_unavailable_is_clamped_per_node_before_summing() -> None:
    broken = view(node("a", capacity={"nvidia.com/gpu": "8"}, allocatable={"nvidia.com/gpu": "6"}))
    odd = view(node("b", capacity={"nvidia.com/gpu": "8"}, allocatable={"nvidia.com/gpu": "10"}))
    (row,) = gpu.accounting([broken, odd], group_label="x")
    assert (row.capacity, row.allocatable, row.unavailable) == (16, 16, 2)


# -- polarity ---------------------------------------------------------------------------------------
def test_precedence_is_file_then_configmap_then_builtin_for_patterns_and_names() -> None:
    configmap = polarity.parse_text('healthyWhen: {KernelDeadlock: "True", "Vendor*": "True"}', source="cm")
    file = polarity.parse_text('healthyWhen: {"Kernel*": "False", VendorFan: "False"}', source="file")
    table = TABLE.extended(configmap).extended(file)
    # the file's pattern beats the ConfigMap's exact name; the file's name beats the ConfigMap's pattern
    assert table.healthy_status("KernelDeadlock") == ("False", False)
    assert table.healthy_status("VendorFan") == ("False", False)
    assert table.healthy_status("VendorPump") == ("True", False)  # the ConfigMap's pattern
    # the ConfigMap's pattern beats a built-in exact name
    cm_only = TABLE.extended(polarity.parse_text('healthyWhen: {"Frequent*": "True"}', source="cm"))
    assert cm_only.healthy_status("FrequentKubeletRestart") == ("True", False)
    assert TABLE.healthy_status("FrequentKubeletRestart") == ("False", False)


@pytest.mark.parametrize("ctype", ["KubeletNotReady", "StorageUnavailable", "MountFailed", "GPUNotReady"])
def test_names_that_say_problem_are_never_guessed_healthy_when_true(ctype: str) -> None:
    assert TABLE.healthy_status(ctype) == ("False", True)
    v = view(node(conditions=[cond("Ready", "True"), cond(ctype, "True")]))
    assert v.problems == (ctype,)


@pytest.mark.parametrize(
    "ctype",
    ["CorruptDockerOverlay2", "FrequentUnregisterNetDevice", "KernelDeadlock", "ReadonlyFilesystem",
     "FrequentContainerdRestart", "KubeletUnhealthy", "ContainerRuntimeUnhealthy", "XfsShutdown"],
)  # fmt: skip
def test_standard_npd_conditions_are_built_in(ctype: str) -> None:
    assert TABLE.healthy_status(ctype) == ("False", False)


def test_an_assumed_polarity_is_marked_in_summary_and_list() -> None:
    v = view(node(conditions=[cond("Ready", "True"), cond("VendorFault", "True"), cond("GPUIsLost", "True")]))
    assert listing.problems_text(v) == "VendorFault?,GPUIsLost"
    s = summary.summarize([v], group_label="x")
    cells = summary.sections(s, now=NOW)
    problems = cells[1]
    assert isinstance(problems, tuple)
    assert sorted(r[0] for r in problems[1]) == ["GPUIsLost", "VendorFault?"]
    assert summary.ASSUMED_NOTE in cells
    assert [r["polarityAssumed"] for r in summary.document(s)["problems"]] == [False, True]
