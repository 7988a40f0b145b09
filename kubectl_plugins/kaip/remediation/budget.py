"""NodeDisruptionBudget arithmetic: may one more node be disrupted now?

A node counts as unavailable for a budget when the budget selects it and it holds a remediation
slot, is cordoned (by anyone) or is not Ready: what the cluster has lost, not only what we took.
Admitting a node must keep every budget that selects it within ``maxUnavailable`` (a number, or a
percent of the nodes the budget selects, rounded down, at least one). Nodes that no budget selects
share an implicit budget of one, so that a missing budget never means "all at once" (kured's default).

The slots themselves live in the RemediationConfig's status and every admission is written there
with the object's resourceVersion, so two writers deciding from the same state cannot both win.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaip.remediation.matching import NodeFacts
from kaip.remediation.spec import Amount, Budget, Selector

IMPLICIT = Budget("(nodes without a NodeDisruptionBudget)", Selector(), Amount(1))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""


def unavailable(budget: Budget, nodes: Sequence[NodeFacts], holders: Collection[str]) -> set[str]:
    return {
        n.name
        for n in nodes
        if budget.selector.matches(n.labels) and (n.name in holders or n.unschedulable or not n.ready)
    }


def admit(
    node: str, *, budgets: Sequence[Budget], nodes: Sequence[NodeFacts], holders: Collection[str]
) -> Verdict:
    """Whether ``node`` may take a slot given the budgets, the nodes and the current slot holders."""
    by_name = {n.name: n for n in nodes}
    facts = by_name.get(node)
    if facts is None:
        return Verdict(False, f"node {node} does not exist")
    covering = [b for b in budgets if b.selector.matches(facts.labels)]
    if not covering:
        covered = {n.name for n in nodes for b in budgets if b.selector.matches(n.labels)}
        uncovered = [n for n in nodes if n.name not in covered]
        return _check(IMPLICIT, node, uncovered, holders)
    for budget in sorted(covering, key=lambda b: b.name):
        verdict = _check(budget, node, nodes, holders)
        if not verdict.allowed:
            return verdict
    return Verdict(True)


def _check(budget: Budget, node: str, nodes: Sequence[NodeFacts], holders: Collection[str]) -> Verdict:
    selected = [n for n in nodes if budget.selector.matches(n.labels)]
    limit = budget.max_unavailable.of(len(selected), round_up=False)
    down = unavailable(budget, selected, holders)
    if len(down | {node}) <= limit:
        return Verdict(True)
    shown = ", ".join(sorted(down)[:5]) + (", ..." if len(down) > 5 else "")
    return Verdict(
        False,
        f"NodeDisruptionBudget {budget.name} allows {limit} of {len(selected)} nodes unavailable "
        f"({budget.max_unavailable}); {len(down)} are: {shown}",
    )


# -- the slots in the RemediationConfig status ------------------------------------------------------
def holders(config_status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(h["node"]): dict(h) for h in config_status.get("holders") or () if h.get("node")}


def with_holder(config_status: Mapping[str, Any], *, node: str, rule: str, since: str) -> dict[str, Any]:
    current = holders(config_status)
    current[node] = {"node": node, "rule": rule, "since": since}
    return {**config_status, "holders": [current[k] for k in sorted(current)]}


def without_holder(config_status: Mapping[str, Any], *, node: str) -> dict[str, Any]:
    current = holders(config_status)
    current.pop(node, None)
    return {**config_status, "holders": [current[k] for k in sorted(current)]}
