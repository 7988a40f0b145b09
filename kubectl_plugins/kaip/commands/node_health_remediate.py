"""`kubectl node-health` remediation commands: act by hand on what the remediation controller does.

``remediate NODE --rule R [--dry-run]``, ``pause``, ``resume``, ``reset-breaker`` and
``remediation [NODE]`` (phases, or one node's history). Exported as :data:`COMMANDS` for the
``kubectl node-health`` group. Thin: each builds one API write or read and prints the outcome.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

import click

from kaip.cli.common import examples
from kaip.cli.completion import object_names
from kaip.cli.options import cluster_options, output_option
from kaip.cli.output import Table, echo, format_table, note, render
from kaip.errors import OperationFailed
from kaip.kube.config import ClusterTarget
from kaip.kube.objects import api_micro_time, api_time, spec_of, status_of
from kaip.resources import remediation as names
from kaip.resources.kinds import NODES, Resource

if TYPE_CHECKING:
    from kaip.kube.client import Kube


def _connect(target: ClusterTarget) -> Kube:
    from kaip.kube import connect

    return connect(target)


def _stamp(*, precise: bool = False) -> str:
    from kaip.resources import timestamps

    # A request's time identifies it (two requests in one second are two requests).
    return (api_micro_time if precise else api_time)(timestamps.now())


def _object(resource: Resource, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def _requester(target: ClusterTarget) -> str:
    if target.impersonate:
        return target.impersonate
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


@examples(
    "# Drain and reboot a node now, by the rule named reboot",
    "kubectl node-health remediate gpu-a-1 --rule reboot",
)
@click.command("remediate")
@click.argument("node", shell_complete=object_names(NODES))
@click.option("--rule", "rule", required=True, metavar="RULE", help="The RemediationRule whose steps to run.")
@click.option(
    "--dry-run",
    "dry_run",
    is_flag=True,
    help="Let the controller only record what it would do (history and an Event); nothing is touched.",
)
@cluster_options
def remediate(node: str, rule: str, dry_run: bool, target: ClusterTarget) -> None:
    """Run a rule's steps on NODE now, whatever its conditions, within the disruption budget."""
    from kaip.kube import errors
    from kaip.resources import kinds

    kube = _connect(target)
    kube.get(kinds.NODES, node)
    try:
        kube.get(names.RULES, rule)
    except errors.NotFound as exc:
        if isinstance(exc, errors.ApiMissing):
            raise
        raise errors.NotFound(f'RemediationRule "{rule}" not found (kubectl get remediationrules)') from exc
    spec = {
        "nodeName": node,
        "rule": rule,
        "manual": True,
        "dryRun": dry_run,
        "requestedAt": _stamp(precise=True),
        "requestedBy": _requester(target),
    }
    try:
        current = kube.get(names.REMEDIATIONS, node)
    except errors.NotFound:
        current = None
    if current is None:
        kube.create(names.REMEDIATIONS, _object(names.REMEDIATIONS, node, spec))
    else:
        phase = status_of(current).get("phase", "")
        if phase in names.ACTIVE_PHASES:
            raise OperationFailed(
                f"node {node} is already being remediated (phase {phase}); "
                f"see kubectl node-health remediation {node}"
            )
        kube.patch(names.REMEDIATIONS, node, {"spec": spec})
    mode = " (dry-run)" if dry_run else ""
    echo(f"noderemediation.{names.GROUP}/{node} requested with rule {rule}{mode}")


def _set_paused(kube: Kube, rule: str | None, paused: bool, reason: str) -> str:
    if rule:
        kube.patch(names.RULES, rule, {"spec": {"paused": paused}})
        return f"remediationrule.{names.GROUP}/{rule}"
    from kaip.kube.errors import NotFound

    patch: dict[str, Any] = {"spec": {"paused": paused, "pauseReason": reason if paused else None}}
    try:
        kube.patch(names.CONFIGS, names.CONFIG_NAME, patch)
    except NotFound:
        if not paused:
            return f"remediationconfig.{names.GROUP}/{names.CONFIG_NAME}"
        kube.create(names.CONFIGS, _object(names.CONFIGS, names.CONFIG_NAME, patch["spec"]))
    return f"remediationconfig.{names.GROUP}/{names.CONFIG_NAME}"


@examples(
    "# Stop remediation during a maintenance window",
    "kubectl node-health pause",
)
@click.command("pause")
@click.option("--rule", metavar="RULE", help="Pause one rule only (default: all remediation).")
@click.option("--reason", default="", help="Why (shown to other operators).")
@cluster_options
def pause(rule: str | None, reason: str, target: ClusterTarget) -> None:
    """Stop remediation: nothing new starts, running remediations hold where they are."""
    what = _set_paused(_connect(target), rule, True, reason)
    echo(f"{what} paused")


@examples(
    "# Let remediation go on",
    "kubectl node-health resume",
)
@click.command("resume")
@click.option("--rule", metavar="RULE", help="Resume one rule only (default: all remediation).")
@cluster_options
def resume(rule: str | None, target: ClusterTarget) -> None:
    """Let remediation go on after a pause."""
    what = _set_paused(_connect(target), rule, False, "")
    echo(f"{what} resumed")


@examples(
    "# Close the circuit breaker once the cause is fixed",
    "kubectl node-health reset-breaker",
)
@click.command("reset-breaker")
@cluster_options
def reset_breaker(target: ClusterTarget) -> None:
    """Close the tripped circuit breaker; failures detected before now no longer count."""
    from kaip.kube.errors import Conflict
    from kaip.remediation import breaker

    kube = _connect(target)
    for _ in range(5):
        config = kube.get(names.CONFIGS, names.CONFIG_NAME)
        status = dict(status_of(config))
        current = breaker.read(status)
        new = breaker.reset(current, stamp=_stamp(), by=_requester(target))
        body = {**config, "status": {**status, "circuitBreaker": new.as_status()}}
        try:
            kube.replace(names.CONFIGS, body, subresource="status")
        except Conflict:
            continue
        was = "was tripped" if current.tripped else "was already closed"
        echo(f"circuit breaker reset ({was})")
        return
    raise OperationFailed("the RemediationConfig kept changing; run reset-breaker again")


@examples(
    "# Every remediation in progress",
    "kubectl node-health remediation",
    "",
    "# One node's full history",
    "kubectl node-health remediation gpu-a-1",
)
@click.command("remediation")
@click.argument("node", required=False, shell_complete=object_names(NODES))
@output_option("table", "wide", "json", "yaml", "name")
@cluster_options
def remediation(node: str | None, output: str, target: ClusterTarget) -> None:
    """Show remediations: phase, step and message per node, or one node's full history."""
    from kaip.remediation import views
    from kaip.resources import timestamps

    kube = _connect(target)
    items = [kube.get(names.REMEDIATIONS, node)] if node else kube.list_all(names.REMEDIATIONS)
    now = timestamps.now()
    if output in ("table", "wide"):
        _state_line(kube)

    def table(wide: bool) -> Table:
        return Table(views.WIDE_HEADERS if wide else views.HEADERS, views.rows(items, now=now, wide=wide))

    echo(render(output, items, table=table, single=bool(node)))
    if node and output in ("table", "wide"):
        history = views.history(items[0])
        echo("\nHistory:\n" + (format_table(Table(views.HISTORY_HEADERS, history)) if history else "<none>"))


def _state_line(kube: Kube) -> None:
    from kaip.kube.errors import NotFound
    from kaip.remediation import breaker

    try:
        config = kube.get(names.CONFIGS, names.CONFIG_NAME)
    except NotFound:
        return
    spec = spec_of(config)
    state = breaker.read(status_of(config))
    parts = [f"circuit breaker: {state.state}" + (f" ({state.reason})" if state.tripped else "")]
    if spec.get("paused"):
        parts.append("paused" + (f": {spec['pauseReason']}" if spec.get("pauseReason") else ""))
    if spec.get("dryRun"):
        parts.append("dry-run")
    note("; ".join(parts))


COMMANDS: list[click.Command] = [remediate, pause, resume, reset_breaker, remediation]
