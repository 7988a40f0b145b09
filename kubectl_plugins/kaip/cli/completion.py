"""Completion of flag and argument values, as kubectl completes them: kubeconfig names from the
kubeconfig files, object names and namespaces from the cluster.

kubectl runs ``kubectl_complete-<plugin>`` on every <Tab>, so a completer is quick and silent: the
cluster is asked once, with :data:`TIMEOUT` per request, honouring ``--kubeconfig``, ``--context``
and ``-n`` given earlier on the line (before or after the command), and any failure completes
nothing instead of printing into the shell. The client is imported only when a completer runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

from kaip.errors import ConfigError
from kaip.kube.config import ClusterTarget, kubeconfig_paths, merge_kubeconfigs, read_kubeconfigs

if TYPE_CHECKING:
    from kaip.kube.client import Kube
    from kaip.resources.kinds import Resource

#: Seconds a completion waits for the API server: a shell that hangs on <Tab> is worse than none.
TIMEOUT = 1.0
#: Names offered at most (one page of a list).
LIMIT = 500
#: Where the flags given before the subcommand wait for it (see :mod:`kaip.cli.options`).
GIVEN_BEFORE = "kaip.flags_before_command"

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def given_before(ctx: click.Context) -> dict[str, Any]:
    given: dict[str, Any] = ctx.meta.setdefault(GIVEN_BEFORE, {})
    return given


def _flag(ctx: click.Context, name: str) -> Any:
    return ctx.params.get(name) or given_before(ctx).get(name)


def target_of(ctx: click.Context) -> ClusterTarget:
    """The cluster the line being completed names so far, with a completion's short timeout."""
    return ClusterTarget(
        kubeconfig=_flag(ctx, "kubeconfig"),
        context=_flag(ctx, "context"),
        cluster=_flag(ctx, "cluster"),
        user=_flag(ctx, "user"),
        namespace=_flag(ctx, "namespace"),
        request_timeout=TIMEOUT,
    )


def items(names: Iterable[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(n) for n in sorted(set(names)) if n.startswith(incomplete)]


def kubeconfig_names(section: str) -> Completer:
    """The contexts, clusters or users of the kubeconfig files the line names."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        target = ClusterTarget(kubeconfig=_flag(ctx, "kubeconfig"))
        try:
            files = read_kubeconfigs(kubeconfig_paths(target, os.environ), explicit=False)
        except ConfigError:
            return []
        return items(merge_kubeconfigs(files)[section], incomplete)

    return complete


def cluster_names(names: Callable[[Kube], Iterable[str]]) -> Completer:
    """Values read from the cluster by ``names(kube)``; nothing when it cannot be asked."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        found = ask(ctx, names)
        return [] if found is None else items(found, incomplete)

    return complete


def ask(ctx: click.Context, names: Callable[[Kube], Iterable[str]]) -> list[str] | None:
    """``names(kube)`` for the cluster of the line, or None when it fails in any way."""
    try:
        from kaip.kube.client import connect

        return list(names(connect(target_of(ctx))))
    except Exception:
        return None


def object_names(resource: Resource, *, keep: Callable[[dict[str, Any]], bool] | None = None) -> Completer:
    """The names of ``resource`` (in the line's namespace when namespaced), those ``keep`` accepts."""

    def names(kube: Kube) -> list[str]:
        listed = kube.list(resource, limit=LIMIT, timeout=TIMEOUT).get("items") or []
        return [str(o["metadata"]["name"]) for o in listed if keep is None or keep(o)]

    return cluster_names(names)


def namespaces() -> Completer:
    """The namespaces of the line's cluster (kinds imported on use: start-up pays nothing)."""

    def names(kube: Kube) -> list[str]:
        from kaip.resources.kinds import NAMESPACES

        listed = kube.list(NAMESPACES, limit=LIMIT, timeout=TIMEOUT).get("items") or []
        return [str(o["metadata"]["name"]) for o in listed]

    return cluster_names(names)
