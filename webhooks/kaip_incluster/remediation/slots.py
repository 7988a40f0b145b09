"""The RemediationConfig singleton: read (created when missing), and its status changed by
compare-and-swap. Budget slots and the circuit breaker live there, so that every admission is decided
on the state the API holds and written with that state's resourceVersion: of two writers, one wins."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kaip.kube.errors import Conflict, NotFound
from kaip.remediation import budget
from kaip.remediation.matching import NodeFacts
from kaip.remediation.spec import Budget
from kaip.resources import remediation as names

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger(__name__)

Change = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def read_config(kube: Kube) -> dict[str, Any]:
    try:
        return kube.get(names.CONFIGS, names.CONFIG_NAME)
    except NotFound:
        pass
    body = {
        "apiVersion": names.CONFIGS.api_version,
        "kind": names.CONFIGS.kind,
        "metadata": {"name": names.CONFIG_NAME},
        "spec": {},
    }
    try:
        return kube.create(names.CONFIGS, body, field_manager=names.COMPONENT)
    except Conflict:
        return kube.get(names.CONFIGS, names.CONFIG_NAME)


def swap_status(
    kube: Kube, config: dict[str, Any], change: Change, *, attempts: int = 5
) -> dict[str, Any] | None:
    """Apply ``change`` (status -> new status, or None for "nothing to do") with optimistic concurrency.

    Returns the written object, or None when ``change`` declined on the freshest state.
    """
    current = config
    for _ in range(attempts):
        new = change(dict(current.get("status") or {}))
        if new is None:
            return None
        body = {**current, "status": new}
        try:
            return kube.replace(names.CONFIGS, body, subresource="status")
        except Conflict:
            current = kube.get(names.CONFIGS, names.CONFIG_NAME)
    raise Conflict("RemediationConfig kept changing; the status change is tried again next round", status=409)


def admit(
    kube: Kube,
    config: dict[str, Any],
    *,
    node: str,
    rule: str,
    stamp: str,
    budgets: Sequence[Budget],
    nodes: Sequence[NodeFacts],
) -> tuple[dict[str, Any], budget.Verdict]:
    """Take a slot for ``node`` if every budget allows it; returns the config as it now is."""
    verdict = budget.Verdict(False, "not evaluated")

    def change(status: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal verdict
        held = budget.holders(status)
        if node in held:
            verdict = budget.Verdict(True)
            return None
        verdict = budget.admit(node, budgets=budgets, nodes=nodes, holders=held)
        if not verdict.allowed:
            return None
        return budget.with_holder(status, node=node, rule=rule, since=stamp)

    written = swap_status(kube, config, change)
    if written is None:
        written = kube.get(names.CONFIGS, names.CONFIG_NAME)
    return written, verdict


def release(kube: Kube, config: dict[str, Any], *, node: str) -> dict[str, Any]:
    def change(status: dict[str, Any]) -> dict[str, Any] | None:
        return budget.without_holder(status, node=node) if node in budget.holders(status) else None

    written = swap_status(kube, config, change)
    return written if written is not None else config


def holders_of(config: Mapping[str, Any]) -> set[str]:
    return set(budget.holders(config.get("status") or {}))
