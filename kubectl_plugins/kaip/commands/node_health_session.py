"""What every `kubectl node-health` view command shares: the polarity options and the session that
reads the tables, the Nodes and, when asked, the Pods; and the two extra reads of ``describe`` (the
node's remediation history, its journal from Loki). Thin: each read is one call into
:mod:`kaip.nodehealth.fetch` (or :mod:`kaip.logs`), each decision one call into the pure views."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kaip.cli.output import note
from kaip.kube.config import ClusterTarget
from kaip.resources import nodes

if TYPE_CHECKING:
    from datetime import datetime

    from kaip.kube.client import Kube
    from kaip.nodehealth.accelerators import AcceleratorTable
    from kaip.nodehealth.nodeview import NodeView
    from kaip.nodehealth.polarity import Polarity
    from kaip.nodehealth.terminating import StuckPod

F = TypeVar("F", bound=Callable[..., Any])
Requested = dict[str, dict[str, int]]
Stuck = dict[str, list["StuckPod"]]


def _configmap(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, str] | None:
    if not value or value == "none":
        return None
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name:
        raise click.BadParameter("use NAMESPACE/NAME, or none")
    return namespace, name


def view_options(func: F) -> F:
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
                help=f"ConfigMap whose keys {nodes.POLARITY_CONFIGMAP_KEY} and {nodes.ACCELERATORS_CONFIGMAP_KEY} "
                "extend the polarity and the accelerator vendors ('none' to skip).",
            ),
        ]
    ):
        func = option(func)
    return func


class Session:
    """What every subcommand needs: the client, the polarity and accelerator tables and the clock."""

    def __init__(
        self, target: ClusterTarget, polarity_file: str | None, configmap: tuple[str, str] | None
    ) -> None:
        from kaip.kube import connect
        from kaip.nodehealth import fetch

        self.kube: Kube = connect(target)
        self.polarity: Polarity
        self.accelerators: AcceleratorTable
        self.polarity, self.accelerators, warnings = fetch.load_tables(
            self.kube, file=polarity_file, configmap=configmap
        )
        for warning in warnings:
            note(f"warning: {warning}")

    def view(self, item: dict[str, Any]) -> NodeView:
        from kaip.nodehealth.nodeview import node_view

        return node_view(item, self.polarity, now=self.now(), accelerators=self.accelerators)

    def read(self, selector: str | None) -> tuple[list[NodeView], str]:
        from kaip.nodehealth import fetch

        return fetch.read_nodes(self.kube, label_selector=selector, convert=self.view)

    def pods(
        self, *, usage: bool, stuck: bool, node: str | None = None
    ) -> tuple[Requested | None, Stuck | None]:
        """GPUs requested per node (with ``usage``) and the Pods stuck terminating per node (whenever
        the Pods are read: with ``usage`` or ``stuck``): one Pod list, read only when asked for."""
        if not (usage or stuck):
            return None, None
        from kaip.nodehealth import fetch, gpu, terminating

        pods = fetch.list_gpu_pods(self.kube, node=node)
        requested = gpu.requested_by_node(gpu.holders(pods, self.accelerators)) if usage else None
        found = terminating.stuck_pods(pods, now=self.now(), table=self.accelerators)
        return requested, terminating.by_node(found)

    @staticmethod
    def stuck_shown(stuck: Stuck | None, views: Iterable[NodeView], *, asked: bool) -> Stuck | None:
        """The stuck Pods to show: always with ``--stuck-pods``; with ``--gpu-usage`` alone only when
        a node read has one (as the default tables stay within 80 columns)."""
        if stuck is None or asked or any(stuck.get(v.name) for v in views):
            return stuck
        return None

    @staticmethod
    def now() -> datetime:
        from kaip.resources import timestamps

        return timestamps.now()


def read_node_logs(
    kube: Kube, node: str, since: str | None, minutes: int, loki_url: str | None
) -> list[tuple[str, str, str]] | None:
    """The node's journal lines around its problem's start from Loki; None (and one hint) without Loki."""
    import time

    from kaip.errors import UnreachableError
    from kaip.logs.config import Overrides, load
    from kaip.logs.loki import Loki, LokiError
    from kaip.nodehealth import nodelogs

    settings, hint = load(kube, None, Overrides(url=loki_url), nodes=True)
    if settings is None:
        note(hint or "")
        return None
    span = nodelogs.window(since, before=minutes * 60, after=minutes * 20, now=time.time_ns())
    note(f"Logs of node {node} from Loki, {span.text()}:")
    try:
        found, more = nodelogs.read(Loki(settings), node, span, warn=lambda m: note(f"warning: {m}"))
    except (LokiError, UnreachableError) as exc:  # the rest of the description still stands
        note(f"warning: no logs from Loki: {exc}")
        return None
    if more:
        note(f"(the first {len(found)} lines; narrow --logs-window for the rest)")
    return found


def read_remediation_history(kube: Kube, node: str) -> list[list[str]] | None:
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
