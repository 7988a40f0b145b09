"""Which rule a node's conditions match, and whether the condition has held long enough.

A rule's conditions are alternatives (any one matches, as Medik8s NodeHealthCheck's
``unhealthyConditions``); a match counts once the condition has held its ``duration`` since its
``lastTransitionTime``. Rules are tried in name order so that the choice is stable across restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kaip.kube.objects import conditions_of, labels_of, name_of, spec_of
from kaip.remediation.spec import ConditionMatch, Rule
from kaip.resources import nodes as node_names
from kaip.resources import timestamps


@dataclass(frozen=True)
class NodeFacts:
    """What the step machine needs to know of a Node."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    taints: tuple[str, ...] = ()  # keys
    ready: bool = True
    #: condition type -> (status, lastTransitionTime as written by the server)
    conditions: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    marker: str = ""  # the remediation label's value
    #: condition type -> its message (what the detector saw), for people reading notices
    messages: Mapping[str, str] = field(default_factory=dict)

    @property
    def cordoned_by_us(self) -> bool:
        return self.unschedulable and node_names.TAINT_REMEDIATION in self.taints


def node_facts(node: Mapping[str, Any]) -> NodeFacts:
    spec = spec_of(node)
    conditions = conditions_of(node)
    conds = {
        str(c.get("type")): (str(c.get("status")), str(c.get("lastTransitionTime") or "")) for c in conditions
    }
    labels = dict(labels_of(node))
    messages = {str(c.get("type")): str(c.get("message") or "") for c in conditions}
    return NodeFacts(
        name=name_of(node),
        labels=labels,
        unschedulable=bool(spec.get("unschedulable")),
        taints=tuple(str(t.get("key")) for t in spec.get("taints") or ()),
        ready=conds.get(node_names.READY, ("True", ""))[0] == "True",
        conditions=conds,
        marker=labels.get(node_names.LABEL_REMEDIATION, ""),
        messages=messages,
    )


@dataclass(frozen=True)
class Match:
    rule: str
    condition: str  # "Type=Status"
    since: str  # the condition's lastTransitionTime: identifies this occurrence
    held: bool  # held for the rule's duration


def present(rule: Rule, node: NodeFacts) -> tuple[ConditionMatch, str] | None:
    """The first of the rule's conditions the node shows now, with its lastTransitionTime."""
    for cond in rule.conditions:
        status, since = node.conditions.get(cond.type, ("", ""))
        if status == cond.status:
            return cond, since
    return None


def _held(cond: ConditionMatch, since: str, now: datetime) -> bool:
    when = timestamps.parse(since)
    # A condition without a transition time has held for as long as anyone can tell.
    return when is None or now - when >= cond.duration


def match(rules: Sequence[Rule], node: NodeFacts, *, now: datetime) -> Match | None:
    """The rule that applies to ``node`` now: held matches before merely present ones, then by name."""
    found: Match | None = None
    for rule in sorted(rules, key=lambda r: r.name):
        if not rule.selector.matches(node.labels):
            continue
        hit = present(rule, node)
        if hit is None:
            continue
        cond, since = hit
        candidate = Match(rule.name, str(cond), since, _held(cond, since, now))
        if candidate.held:
            return candidate
        found = found or candidate
    return found


def unknown_problems(
    rules: Sequence[Rule], node: NodeFacts, *, watched: Sequence[str]
) -> list[tuple[str, str]]:
    """Conditions among ``watched`` that are True on the node and that no rule for the node handles."""
    handled = {c.type for r in rules if r.selector.matches(node.labels) for c in r.conditions}
    return [
        (ctype, node.conditions[ctype][1])
        for ctype in watched
        if ctype not in handled and node.conditions.get(ctype, ("", ""))[0] == "True"
    ]


def in_pool(rules: Sequence[Rule], node: NodeFacts) -> bool:
    """Whether any rule selects the node: the pool the circuit breaker measures."""
    return any(r.selector.matches(node.labels) for r in rules)
