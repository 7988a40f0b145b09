"""`kubectl node-health`: See every broken GPU node: conditions, cordons, taints and GPU capacity in one view."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from kaip.cli.app import complete_main, plugin_main
from kaip.cli.common import examples, version_command
from kaip.cli.completion import object_names
from kaip.cli.options import KubectlGroup, cluster_options, output_option
from kaip.cli.output import (
    Table,
    dump_json,
    dump_yaml,
    echo,
    format_table,
    note,
    render,
    terminal_width,
)
from kaip.commands.node_health_remediate import COMMANDS as REMEDIATION_COMMANDS
from kaip.commands.node_health_session import (
    F,
    Session,
    read_node_logs,
    read_remediation_history,
    view_options,
)
from kaip.errors import ExitCode
from kaip.kube.config import ClusterTarget
from kaip.kube.objects import name_of
from kaip.resources import kinds, nodes

if TYPE_CHECKING:
    from datetime import datetime

    from kaip.nodehealth.nodeview import NodeView
    from kaip.nodehealth.summary import Summary

PROG = "kubectl node-health"


@click.group(
    cls=KubectlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
def cli() -> None:
    """See every broken GPU node: conditions, cordons, taints and GPU capacity in one view."""


def _selection_options(func: F) -> F:
    for option in reversed(
        [
            click.option(
                "-l", "--selector", metavar="SELECTOR", help="Label selector of the nodes (kubectl's -l)."
            ),
            click.option(
                "--gpu-usage",
                is_flag=True,
                help="Also read the Pods bound to nodes, to show GPUs requested and free.",
            ),
            click.option(
                "--stuck-pods",
                is_flag=True,
                help="Also read the Pods bound to nodes, to show Pods stuck terminating (--gpu-usage does too).",
            ),
            click.option(
                "-w", "--watch", is_flag=True, help="After printing, keep watching the nodes for changes."
            ),
            click.option(
                "--exit-code",
                is_flag=True,
                help="Exit with code 1 when a shown node has a problem (not Ready, abnormal condition, unhealthy GPUs).",
            ),
        ]
    ):
        func = option(func)
    return func


def _summary_text(summary: Summary, *, now: datetime, wide: bool) -> str:
    from kaip.nodehealth.summary import sections

    width = terminal_width()
    parts = [
        part if isinstance(part, str) else format_table(Table(*part, fit=("EXAMPLES",)), width=width)
        for part in sections(summary, now=now, wide=wide)
    ]
    return "\n\n".join(parts)


def _finish(exit_code: bool, problems: bool) -> int:
    return int(ExitCode.FAILURE) if exit_code and problems else int(ExitCode.OK)


@examples(
    "# The whole cluster at a glance",
    "kubectl node-health summary",
    "",
    "# GPUs requested and free per pool; exit 1 when a node has a problem",
    "kubectl node-health summary --gpu-usage --group-by kaip.dev/pool --exit-code",
)
@cli.command("summary")
@_selection_options
@click.option(
    "--group-by",
    metavar="LABEL",
    default=nodes.LABEL_GPU_PRODUCT,
    show_default=True,
    help="Node label that groups the GPU table (a GPU product or a pool label).",
)
@view_options
@output_option("table", "wide", "json", "yaml")
@cluster_options
def summary_command(
    *,
    selector: str | None,
    gpu_usage: bool,
    stuck_pods: bool,
    watch: bool,
    exit_code: bool,
    group_by: str,
    polarity_file: str | None,
    polarity_configmap: tuple[str, str] | None,
    output: str,
    target: ClusterTarget,
) -> int:
    """The cluster at a glance: nodes by state, problems by condition, GPUs by group."""
    from kaip.nodehealth import fetch, terminating
    from kaip.nodehealth.summary import document, summarize

    session = Session(target, polarity_file, polarity_configmap)
    views, version = session.read(selector)
    requested, stuck = session.pods(usage=gpu_usage, stuck=stuck_pods)
    stuck = session.stuck_shown(stuck, views, asked=stuck_pods)

    def show(shown: Sequence[NodeView]) -> Summary:
        totals = None if stuck is None else terminating.totals(stuck, (v.name for v in shown))
        result = summarize(shown, group_label=group_by, requested=requested, stuck=totals)
        if output in ("table", "wide"):
            echo(_summary_text(result, now=session.now(), wide=output == "wide"))
        else:
            echo(render(output, [document(result)], single=True))
        return result

    result = show(views)
    if not watch:
        return _finish(exit_code, result.has_problems)
    known = {v.name: v for v in views}
    del views
    stream = fetch.watch_nodes(session.kube, label_selector=selector, resource_version=version)
    for batch in fetch.batches(stream):
        for kind, obj in batch:
            _apply(known, kind, obj, session.view)
        echo("")
        show(list(known.values()))
    return int(ExitCode.OK)


def _apply(
    known: dict[str, NodeView], kind: str, obj: dict[str, Any], view: Callable[[dict[str, Any]], NodeView]
) -> None:
    if kind == "SYNC":
        known.clear()
        known.update({name_of(o): view(o) for o in obj["items"]})
    elif kind == "DELETED":
        known.pop(name_of(obj), None)
    else:
        known[name_of(obj)] = view(obj)


@examples(
    "# Every GPU node, one line each",
    "kubectl node-health list -l nvidia.com/gpu.present=true",
    "",
    "# Nodes with a problem, worst first, with taints and driver versions",
    "kubectl node-health list --only-problems --sort-by status -o wide",
)
@cli.command("list")
@_selection_options
@click.option(
    "--problem",
    "problems",
    metavar="CONDITION",
    multiple=True,
    help="Only nodes where this condition is abnormal (repeatable; Ready = nodes not Ready).",
)
@click.option("--only-problems", is_flag=True, help="Only nodes with a problem.")
@click.option(
    "--sort-by",
    type=click.Choice(["name", "status", "problems", "since", "age", "gpu-unavailable"]),
    default="name",
    show_default=True,
    help="Sort order (status: worst first; since and age: oldest first).",
)
@click.option(
    "--pool-label",
    metavar="LABEL",
    default=nodes.LABEL_POOL,
    show_default=True,
    help="Node label shown as POOL in -o wide.",
)
@view_options
@output_option("table", "wide", "json", "yaml", "name", "csv")
@cluster_options
def list_command(
    *,
    selector: str | None,
    gpu_usage: bool,
    stuck_pods: bool,
    watch: bool,
    exit_code: bool,
    problems: tuple[str, ...],
    only_problems: bool,
    sort_by: str,
    pool_label: str,
    polarity_file: str | None,
    polarity_configmap: tuple[str, str] | None,
    output: str,
    target: ClusterTarget,
) -> int:
    """One line per node: state, abnormal conditions and since when, GPUs, taints."""
    from kaip.nodehealth import fetch, listing

    session = Session(target, polarity_file, polarity_configmap)
    everything, version = session.read(selector)
    requested, stuck = session.pods(usage=gpu_usage, stuck=stuck_pods)
    stuck = session.stuck_shown(stuck, everything, asked=stuck_pods)

    def shown(all_views: Sequence[NodeView]) -> list[NodeView]:
        picked = listing.select(all_views, problems=problems, only_problems=only_problems)
        return listing.sort(picked, sort_by)

    usage, pods = requested is not None, stuck is not None

    def rows(views: Sequence[NodeView], *, wide: bool) -> Table:
        now = session.now()
        cells = [
            listing.row(v, now=now, wide=wide, pool_label=pool_label, requested=requested, stuck=stuck)
            for v in views
        ]
        return Table(listing.headers(wide=wide, usage=usage, stuck=pods), cells, fit=listing.FIT)

    def text(views: Sequence[NodeView], *, headers: bool) -> str:
        if output in ("table", "wide"):
            lines = format_table(rows(views, wide=output == "wide"), width=terminal_width()).splitlines()
            return "\n".join(lines if headers else lines[1:])
        docs = [listing.document(v, pool_label=pool_label, requested=requested, stuck=stuck) for v in views]
        return render(
            output,
            docs,
            table=lambda _wide: replace(rows(views, wide=True), fit=()),
            name=lambda d: f"node/{name_of(d)}",
        )

    views = shown(everything)
    if views or output not in ("table", "wide"):
        echo(text(views, headers=True))
    else:
        note("No nodes found." if not everything else "No nodes match.")
    if not watch:
        return _finish(exit_code, any(v.has_problems for v in views))
    stream = fetch.watch_nodes(session.kube, label_selector=selector, resource_version=version)
    visible = {v.name for v in views}
    for kind, obj in stream:
        changed = [session.view(o) for o in (obj["items"] if kind == "SYNC" else [obj])]
        selected = {v.name for v in shown(changed)}
        # a node that leaves the selection (e.g. recovers under --only-problems) is printed once more
        picked = [v for v in changed if v.name in selected or v.name in visible]
        visible = (visible | selected) - {v.name for v in changed if v.name not in selected}
        if picked:
            echo(
                text(picked, headers=False)
                if output in ("table", "wide")
                else _watch_docs(output, text(picked, headers=True))
            )
    return int(ExitCode.OK)


def _watch_docs(output: str, rendered: str) -> str:
    return rendered if output in ("name", "csv") else rendered + ("\n---" if output == "yaml" else "")


@examples(
    "# Conditions, taints, GPU Pods and recent Events of one node",
    "kubectl node-health describe gpu-a-1",
)
@cli.command("describe")
@click.argument("node", shell_complete=object_names(kinds.NODES))
@click.option(
    "--pool-label",
    metavar="LABEL",
    default=nodes.LABEL_POOL,
    show_default=True,
    help="Node label shown as Pool.",
)
@click.option(
    "--logs",
    "show_logs",
    is_flag=True,
    help="Also the node's kernel, kubelet, runtime and NPD lines from Loki.",
)
@click.option(
    "--logs-window",
    metavar="MINUTES",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="With --logs: minutes before the problem's start (and a third of it after).",
)
@click.option("--loki-url", metavar="URL", help="Loki's URL (overrides kaip-system/kaip-logging).")
@view_options
@output_option("text", "json", "yaml", default="text")
@cluster_options
def describe_command(
    *,
    node: str,
    pool_label: str,
    show_logs: bool,
    logs_window: int,
    loki_url: str | None,
    polarity_file: str | None,
    polarity_configmap: tuple[str, str] | None,
    output: str,
    target: ClusterTarget,
) -> None:
    """Every condition, taints with their age, the Pods holding GPUs or stuck terminating, and the
    node's recent Events."""
    from kaip.nodehealth import fetch, gpu, listing, terminating
    from kaip.nodehealth.describe import describe, document, with_remediation_history

    session = Session(target, polarity_file, polarity_configmap)
    view = session.view(fetch.get_node(session.kube, node))
    pods = fetch.list_gpu_pods(session.kube, node=node)
    holders = gpu.holders(pods, session.accelerators)
    stuck = terminating.stuck_pods(pods, now=session.now(), table=session.accelerators)
    events = fetch.node_events(session.kube, node)
    description = describe(
        view, holders=holders, events=events, pool_label=pool_label, now=session.now(), stuck=stuck
    )
    history = read_remediation_history(session.kube, node)
    if history is not None:
        description = with_remediation_history(description, history)
    node_logs = read_node_logs(session.kube, node, view.since, logs_window, loki_url) if show_logs else None
    if output != "text":
        requested = gpu.requested_by_node(holders)
        node_doc = listing.document(
            view, pool_label=pool_label, requested=requested, stuck=terminating.by_node(stuck)
        )
        doc = document(description, node_doc)
        if node_logs is not None:
            doc["logs"] = [{"time": t, "source": src, "line": text} for t, src, text in node_logs]
        echo(dump_json(doc) if output == "json" else dump_yaml(doc))
        return
    width = max(len(k) for k, _ in description.fields) + 2
    lines = [f"{k + ':':<{width}}{v}" for k, v in description.fields]
    for section in description.sections:
        lines.append(f"{section.title}:")
        if section.rows:
            table = format_table(Table(section.headers, section.rows))
            lines += ["  " + line for line in table.splitlines()]
        else:
            lines.append(f"  {section.empty}")
    if node_logs is not None:
        lines.append("Logs:")
        lines += [f"  {t}  {src:<22} {text}" for t, src, text in node_logs] or ["  <none>"]
    echo("\n".join(lines))


for _command in REMEDIATION_COMMANDS:  # remediate, pause, resume, reset-breaker, remediation
    cli.add_command(_command)
cli.add_command(version_command(PROG))


def main() -> None:
    plugin_main(cli, PROG)


def complete() -> None:
    complete_main(cli, PROG)
