"""Disruption budget arithmetic (numbers, percents, concurrent failures) and the circuit breaker window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kaip.remediation import breaker, budget
from kaip.remediation.matching import NodeFacts
from kaip.remediation.spec import Amount, Budget, Selector, SpecInvalid

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


def pool(count: int, *, label: str = "gpu") -> list[NodeFacts]:
    return [NodeFacts(f"{label}-{i}", labels={"pool": label}) for i in range(count)]


def gpu_budget(max_unavailable: str | int) -> Budget:
    return Budget("gpu", Selector({"pool": "gpu"}), Amount.parse(max_unavailable, what="test"))


@pytest.mark.parametrize(
    ("raw", "pool_size", "expected"),
    [(2, 50, 2), ("10%", 50, 5), ("10%", 5, 1), ("25%", 10, 2), ("0%", 10, 0), ("100%", 7, 7)],
)
def test_max_unavailable_as_number_or_percent_rounded_down_but_at_least_one(
    raw: str | int, pool_size: int, expected: int
) -> None:
    assert Amount.parse(raw, what="t").of(pool_size, round_up=False) == expected


@pytest.mark.parametrize("raw", ["-1", "120%", "ten", "5.5", "%"])
def test_a_bad_amount_is_refused_with_its_field_named(raw: str) -> None:
    with pytest.raises(SpecInvalid, match="maxUnavailable"):
        Amount.parse(raw, what="NodeDisruptionBudget x: maxUnavailable")


def test_admission_stops_at_the_budget_under_concurrent_failures() -> None:
    nodes = pool(50)
    held: set[str] = set()
    # Ten nodes fail at once; each admission sees the slots the previous ones took.
    admitted = []
    for n in nodes[:10]:
        if budget.admit(n.name, budgets=[gpu_budget(2)], nodes=nodes, holders=held).allowed:
            held.add(n.name)
            admitted.append(n.name)
    assert admitted == ["gpu-0", "gpu-1"]
    denied = budget.admit("gpu-2", budgets=[gpu_budget(2)], nodes=nodes, holders=held)
    assert not denied.allowed
    assert "allows 2 of 50" in denied.reason
    assert "gpu-0, gpu-1" in denied.reason


def test_nodes_cordoned_or_not_ready_by_others_use_up_the_budget() -> None:
    nodes = pool(4)
    nodes[0] = NodeFacts("gpu-0", labels={"pool": "gpu"}, unschedulable=True)
    nodes[1] = NodeFacts("gpu-1", labels={"pool": "gpu"}, ready=False)
    assert not budget.admit("gpu-2", budgets=[gpu_budget(2)], nodes=nodes, holders=set()).allowed
    # A node that is already unavailable costs nothing more.
    assert budget.admit("gpu-1", budgets=[gpu_budget(2)], nodes=nodes, holders=set()).allowed


def test_every_budget_selecting_the_node_must_allow_it() -> None:
    nodes = [NodeFacts(f"n{i}", labels={"pool": "gpu", "rack": "r1" if i < 3 else "r2"}) for i in range(6)]
    rack = Budget("rack-r1", Selector({"rack": "r1"}), Amount(1))
    assert budget.admit("n0", budgets=[gpu_budget(3), rack], nodes=nodes, holders=set()).allowed
    verdict = budget.admit("n1", budgets=[gpu_budget(3), rack], nodes=nodes, holders={"n0"})
    assert not verdict.allowed
    assert "rack-r1" in verdict.reason
    assert budget.admit("n4", budgets=[gpu_budget(3), rack], nodes=nodes, holders={"n0"}).allowed


def test_nodes_without_a_budget_go_one_at_a_time() -> None:
    nodes = pool(3, label="cpu")
    assert budget.admit("cpu-0", budgets=[], nodes=nodes, holders=set()).allowed
    assert not budget.admit("cpu-1", budgets=[], nodes=nodes, holders={"cpu-0"}).allowed


def test_slots_in_the_config_status_are_added_and_removed() -> None:
    status = budget.with_holder({}, node="b", rule="r", since="t")
    status = budget.with_holder(status, node="a", rule="r", since="t")
    assert [h["node"] for h in status["holders"]] == ["a", "b"]
    assert list(budget.holders(budget.without_holder(status, node="a"))) == ["b"]


def detections(count: int, *, ago: timedelta = timedelta(seconds=30)) -> list[datetime]:
    return [NOW - ago] * count


def test_breaker_trips_when_half_the_pool_enters_remediation_within_the_window() -> None:
    closed = breaker.Breaker()
    kwargs = {
        "pool": 50,
        "threshold": Amount(50, percent=True),
        "window": timedelta(minutes=5),
        "now": NOW,
        "stamp": "s",
    }
    assert not breaker.evaluate(closed, detections=detections(24), **kwargs).tripped  # type: ignore[arg-type]
    tripped = breaker.evaluate(closed, detections=detections(25), **kwargs)  # type: ignore[arg-type]
    assert tripped.tripped
    assert "25 of 50 nodes" in tripped.reason
    # Old failures are outside the window.
    old = detections(25, ago=timedelta(minutes=6))
    assert not breaker.evaluate(closed, detections=old, **kwargs).tripped  # type: ignore[arg-type]


def test_breaker_stays_tripped_until_reset_and_forgets_what_came_before() -> None:
    kwargs = {"pool": 10, "threshold": Amount(3), "window": timedelta(minutes=5), "now": NOW, "stamp": "s"}
    tripped = breaker.evaluate(breaker.Breaker(), detections=detections(3), **kwargs)  # type: ignore[arg-type]
    assert tripped.tripped
    assert breaker.evaluate(tripped, detections=[], **kwargs).tripped  # type: ignore[arg-type]
    reset = breaker.reset(
        tripped, stamp=(NOW - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ"), by="ops"
    )
    assert not reset.tripped
    assert reset.reset_by == "ops"
    assert not breaker.evaluate(reset, detections=detections(3), **kwargs).tripped  # type: ignore[arg-type]
    fresh = [NOW - timedelta(seconds=5)] * 3
    assert breaker.evaluate(reset, detections=fresh, **kwargs).tripped  # type: ignore[arg-type]
