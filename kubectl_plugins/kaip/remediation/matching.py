"""Which rule a node's conditions match, and whether the condition has held long enough.

A rule's conditions are alternatives (any one matches, as Medik8s NodeHealthCheck's
``unhealthyConditions``); a match counts once the condition has held its ``duration`` since its
``lastTransitionTime``. Rules are tried in name order so that the choice is stable across restarts.

Besides the Node's own conditions a rule can match a fact read from the node's Pods, as if it were a
condition: ``StuckTerminatingPods`` is True while a Pod bound to the node is past its deletion
deadline, since the oldest such deadline (so ``duration`` counts from when the Pod should have gone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kaip.kube.objects import conditions_of, labels_of, name_of, overdue_deletion, spec_of
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
    #: Pods bound to the node past their deletion deadline (read only when a rule asks for them)
    stuck_terminating_pods: int = 0

    @property
    def cordoned_by_us(self) -> bool:
        return self.unschedulable and node_names.TAINT_REMEDIATION in self.taints


def node_facts(node: Mapping[str, Any], *, stuck: Sequence[str] | None = None) -> NodeFacts:
    """The facts of ``node``; ``stuck``: the deletion deadlines of its Pods stuck terminating (None when
    the Pods were not read: no rule asks for them)."""
    spec = spec_of(node)
    conditions = conditions_of(node)
    conds = {
        str(c.get("type")): (str(c.get("status")), str(c.get("lastTransitionTime") or "")) for c in conditions
    }
    labels = dict(labels_of(node))
    messages = {str(c.get("type")): str(c.get("message") or "") for c in conditions}
    if stuck is not None:
        conds[node_names.STUCK_TERMINATING_PODS] = ("True", min(stuck)) if stuck else ("False", "")
        messages[node_names.STUCK_TERMINATING_PODS] = f"{len(stuck)} Pods past their deletion deadline"
    return NodeFacts(
        name=name_of(node),
        labels=labels,
        unschedulable=bool(spec.get("unschedulable")),
        taints=tuple(str(t.get("key")) for t in spec.get("taints") or ()),
        ready=conds.get(node_names.READY, ("True", ""))[0] == "True",
        conditions=conds,
        marker=labels.get(node_names.LABEL_REMEDIATION, ""),
        messages=messages,
        stuck_terminating_pods=len(stuck or ()),
    )


def stuck_deadlines(pods: Iterable[Mapping[str, Any]], *, now: datetime) -> dict[str, list[str]]:
    """Per node, the deletion deadlines of its Pods stuck terminating (past ``deletionTimestamp``)."""
    out: dict[str, list[str]] = {}
    for pod in pods:
        node = spec_of(pod).get("nodeName")
        deadline = overdue_deletion(pod, now=now) if node else None
        if deadline is not None:
            out.setdefault(str(node), []).append(deadline)
    return out


def wants_stuck_pods(rules: Iterable[Rule]) -> bool:
    """Whether any rule matches ``StuckTerminatingPods`` (only then are the Pods read)."""
    return any(c.type == node_names.STUCK_TERMINATING_PODS for r in rules for c in r.conditions)


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
