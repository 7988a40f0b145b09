"""`kubectl node-health`: See every broken GPU node: conditions, cordons, taints and GPU capacity in one view."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kaip.cli.app import complete_main, plugin_main
from kaip.cli.common import version_command
from kaip.cli.options import KubectlGroup, cluster_options, output_option
from kaip.cli.output import Table, dump_json, dump_yaml, echo, format_table, note, render
from kaip.commands.node_health_remediate import COMMANDS as REMEDIATION_COMMANDS
from kaip.errors import ExitCode
from kaip.kube.config import ClusterTarget
from kaip.kube.objects import name_of
from kaip.resources import nodes

if TYPE_CHECKING:
    from datetime import datetime

    from kaip.kube.client import Kube
    from kaip.nodehealth.nodeview import NodeView
    from kaip.nodehealth.polarity import Polarity
    from kaip.nodehealth.summary import Summary

PROG = "kubectl node-health"
F = TypeVar("F", bound=Callable[..., Any])
Requested = dict[str, dict[str, int]]


@click.group(
    cls=KubectlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
def cli() -> None:
    """See every broken GPU node: conditions, cordons, taints and GPU capacity in one view."""


def _configmap(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, str] | None:
    if not value or value == "none":
        return None
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name:
        raise click.BadParameter("use NAMESPACE/NAME, or none")
    return namespace, name


def _view_options(func: F) -> F:
    for option in reversed(
        [
            click.option(
                "--polarity-file",
                metavar="FILE",
                type=click.Path(dir_okay=False),
                help='YAML "healthyWhen: {CONDITION: True|False}" extending the built-in condition polarity.',
            ),
            click.option(
                "--polarity-configmap",
                metavar="NS/NAME",
                default=f"{nodes.POLARITY_CONFIGMAP_NAMESPACE}/{nodes.POLARITY_CONFIGMAP_NAME}",
                show_default=True,
                callback=_configmap,
                help=f"ConfigMap whose key {nodes.POLARITY_CONFIGMAP_KEY} extends the polarity ('none' to skip).",
            ),
        ]
    ):
        func = option(func)
    return func


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


class _Session:
    """What every subcommand needs: the client, the polarity table and the clock."""

    def __init__(
        self, target: ClusterTarget, polarity_file: str | None, configmap: tuple[str, str] | None
    ) -> None:
        from kaip.kube import connect
        from kaip.nodehealth import fetch

        self.kube: Kube = connect(target)
        self.polarity: Polarity
        self.polarity, warnings = fetch.load_polarity(self.kube, file=polarity_file, configmap=configmap)
        for warning in warnings:
            note(f"warning: {warning}")

    def view(self, item: dict[str, Any]) -> NodeView:
        from kaip.nodehealth.nodeview import node_view

        return node_view(item, self.polarity, now=self.now())

    def read(self, selector: str | None) -> tuple[list[NodeView], str]:
        from kaip.nodehealth import fetch

        return fetch.read_nodes(self.kube, label_selector=selector, convert=self.view)

    def requested(self, wanted: bool, *, node: str | None = None) -> Requested | None:
        if not wanted:
            return None
        from kaip.nodehealth import fetch, gpu

        return gpu.requested_by_node(gpu.holders(fetch.list_gpu_pods(self.kube, node=node)))

    @staticmethod
    def now() -> datetime:
        from kaip.resources import timestamps

        return timestamps.now()


def _summary_text(summary: Summary, *, now: datetime) -> str:
    from kaip.nodehealth.summary import sections

    parts = [
        part if isinstance(part, str) else format_table(Table(*part)) for part in sections(summary, now=now)
    ]
    return "\n\n".join(parts)


def _finish(exit_code: bool, problems: bool) -> int:
    return int(ExitCode.FAILURE) if exit_code and problems else int(ExitCode.OK)


@cli.command("summary")
@_selection_options
@click.option(
    "--group-by",
    metavar="LABEL",
    default=nodes.LABEL_GPU_PRODUCT,
    show_default=True,
    help="Node label that groups the GPU table (a GPU product or a pool label).",
)
@_view_options
@output_option("table", "json", "yaml")
@cluster_options
def summary_command(
    *,
    selector: str | None,
    gpu_usage: bool,
    watch: bool,
    exit_code: bool,
    group_by: str,
    polarity_file: str | None,
    polarity_configmap: tuple[str, str] | None,
    output: str,
    target: ClusterTarget,
) -> int:
    """The cluster at a glance: nodes by state, problems by condition, GPUs by group."""
    from kaip.nodehealth import fetch
    from kaip.nodehealth.summary import document, summarize

    session = _Session(target, polarity_file, polarity_configmap)
    views, version = session.read(selector)
    requested = session.requested(gpu_usage)

    def show(shown: Sequence[NodeView]) -> Summary:
        result = summarize(shown, group_label=group_by, requested=requested)
        if output == "table":
            echo(_summary_text(result, now=session.now()))
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
@_view_options
@output_option("table", "wide", "json", "yaml", "name", "csv")
@cluster_options
def list_command(
    *,
    selector: str | None,
    gpu_usage: bool,
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

    session = _Session(target, polarity_file, polarity_configmap)
    everything, version = session.read(selector)
    requested = session.requested(gpu_usage)

    def shown(all_views: Sequence[NodeView]) -> list[NodeView]:
        picked = listing.select(all_views, problems=problems, only_problems=only_problems)
        return listing.sort(picked, sort_by)

    def text(views: Sequence[NodeView], *, headers: bool) -> str:
        now = session.now()
        wide = output == "wide"
        rows = [listing.row(v, now=now, wide=wide, pool_label=pool_label, requested=requested) for v in views]
        table = Table([*listing.HEADERS, *(listing.WIDE_HEADERS if wide else ())], rows)
        if output in ("table", "wide"):
            lines = format_table(table).splitlines()
            return "\n".join(lines if headers else lines[1:])
        docs = [listing.document(v, pool_label=pool_label, requested=requested) for v in views]
        return render(
            output,
            docs,
            table=lambda _wide: Table(
                [*listing.HEADERS, *listing.WIDE_HEADERS],
                [
                    listing.row(v, now=now, wide=True, pool_label=pool_label, requested=requested)
                    for v in views
                ],
            ),
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


@cli.command("describe")
@click.argument("node")
@click.option(
    "--pool-label",
    metavar="LABEL",
    default=nodes.LABEL_POOL,
    show_default=True,
    help="Node label shown as Pool.",
)
@_view_options
@output_option("text", "json", "yaml", default="text")
@cluster_options
def describe_command(
    *,
    node: str,
    pool_label: str,
    polarity_file: str | None,
    polarity_configmap: tuple[str, str] | None,
    output: str,
    target: ClusterTarget,
) -> None:
    """Every condition, taints with their age, the Pods holding GPUs and the node's recent Events."""
    from kaip.nodehealth import fetch, gpu, listing
    from kaip.nodehealth.describe import describe, document, with_remediation_history

    session = _Session(target, polarity_file, polarity_configmap)
    view = session.view(fetch.get_node(session.kube, node))
    holders = gpu.holders(fetch.list_gpu_pods(session.kube, node=node))
    events = fetch.node_events(session.kube, node)
    description = describe(view, holders=holders, events=events, pool_label=pool_label, now=session.now())
    history = _remediation_history(session.kube, node)
    if history is not None:
        description = with_remediation_history(description, history)
    if output != "text":
        requested = gpu.requested_by_node(holders)
        doc = document(description, listing.document(view, pool_label=pool_label, requested=requested))
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
    echo("\n".join(lines))


def _remediation_history(kube: Kube, node: str) -> list[list[str]] | None:
    """The steps of the node's NodeRemediation; None where the cluster runs no remediation (or the
    user may not read it: the rest of the description is still worth showing)."""
    from kaip.kube.errors import ApiMissing, Forbidden, NotFound
    from kaip.remediation import views
    from kaip.resources import remediation as names

    try:
        return views.history(kube.get(names.REMEDIATIONS, node))
    except (ApiMissing, Forbidden):  # before NotFound: ApiMissing is one
        return None
    except NotFound:
        return []


for _command in REMEDIATION_COMMANDS:  # remediate, pause, resume, reset-breaker, remediation
    cli.add_command(_command)
cli.add_command(version_command())


def main() -> None:
    plugin_main(cli, PROG)


def complete() -> None:
    complete_main(cli, PROG)
