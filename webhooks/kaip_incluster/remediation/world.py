"""The API state one remediation round decides on, read afresh each round.

Nodes, NodeRemediations, rules, budgets, operation Jobs and the RemediationConfig come from the API
server every round: no decision rests on memory of an earlier round, so a new leader (or the same
process after a crash) continues from exactly what the API holds. A rule or budget that does not
parse is left out and named in :attr:`World.invalid` (the round logs it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kaip.errors import shorten
from kaip.kube.objects import name_of, status_of
from kaip.remediation import breaker, matching, spec
from kaip.resources import kinds
from kaip.resources import remediation as names
from kaip_incluster.remediation import slots

if TYPE_CHECKING:
    from kaip.kube.client import Kube


@dataclass
class World:
    """The API state of one round."""

    now: datetime
    config: dict[str, Any]
    cfg: spec.Config
    rules: dict[str, spec.Rule]
    budgets: list[spec.Budget]
    nodes: dict[str, dict[str, Any]]
    facts: dict[str, matching.NodeFacts]
    remediations: dict[str, dict[str, Any]]
    jobs: dict[str, dict[str, Any]]
    invalid: list[str] = field(default_factory=list)

    @property
    def holders(self) -> set[str]:
        return slots.holders_of(self.config)

    @property
    def breaker(self) -> breaker.Breaker:
        return breaker.read(dict(status_of(self.config)))


def read_world(kube: Kube, *, job_namespace: str, default_unknown: tuple[str, ...], now: datetime) -> World:
    """Everything one round decides on, read afresh from the API server."""
    config = slots.read_config(kube)
    cfg = spec.parse_config(config, default_unknown=default_unknown)
    rules: dict[str, spec.Rule] = {}
    invalid: list[str] = []
    for obj in kube.list_all(names.RULES):
        try:
            rule = spec.parse_rule(obj)
        except (spec.SpecInvalid, KeyError, TypeError, ValueError) as exc:
            invalid.append(f"{name_of(obj)}: {shorten(str(exc), 200)}")
            continue
        rules[rule.name] = rule
    budgets = []
    for obj in kube.list_all(names.BUDGETS):
        try:
            budgets.append(spec.parse_budget(obj))
        except spec.SpecInvalid as exc:
            invalid.append(exc.message)
    node_objs = {n["metadata"]["name"]: n for n in kube.list_all(kinds.NODES)}
    stuck: dict[str, list[str]] | None = None
    if matching.wants_stuck_pods(rules.values()):
        # only when a rule asks: the Pods of every node are a large read; the terminating ones among
        # the non-terminal Pods bound to a node (no field selector finds a deletionTimestamp)
        pods = kube.list_all(
            kinds.PODS,
            all_namespaces=True,
            field_selector="spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed",
        )
        stuck = matching.stuck_deadlines(pods, now=now)
    jobs_found = kube.list_all(
        kinds.JOBS,
        namespace=job_namespace,
        label_selector=f"{names.LABEL_COMPONENT}={names.COMPONENT_JOB}",
    )
    return World(
        now=now,
        config=config,
        cfg=cfg,
        rules=rules,
        budgets=budgets,
        nodes=node_objs,
        facts={
            name: matching.node_facts(obj, stuck=None if stuck is None else stuck.get(name, []))
            for name, obj in node_objs.items()
        },
        remediations={r["metadata"]["name"]: r for r in kube.list_all(names.REMEDIATIONS)},
        jobs={j["metadata"]["name"]: j for j in jobs_found},
        invalid=invalid,
    )
