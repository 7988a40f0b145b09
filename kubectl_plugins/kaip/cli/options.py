"""kubectl's cluster flags, defined once and shared by every command of every plugin.

The flags sit on each leaf command (as kubectl accepts them anywhere on the line) and arrive in the
callback as one :class:`~kaip.kube.config.ClusterTarget` keyword argument named ``target``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

from kaip.errors import ConfigError
from kaip.kube.config import (
    ClusterTarget,
    kubeconfig_paths,
    merge_kubeconfigs,
    parse_duration,
    read_kubeconfigs,
)

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "wide", "json", "yaml", "name")


def _kubeconfig_names(section: str) -> Callable[[click.Context, click.Parameter, str], list[CompletionItem]]:
    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        target = ClusterTarget(kubeconfig=ctx.params.get("kubeconfig"))
        try:
            files = read_kubeconfigs(kubeconfig_paths(target, os.environ), explicit=False)
        except ConfigError:
            return []
        names = merge_kubeconfigs(files)[section]
        return [CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)]

    return complete


def _timeout(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None


_CLUSTER_FLAGS: list[Callable[[F], F]] = [
    click.option(
        "--kubeconfig",
        metavar="FILE",
        help="Path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config).",
    ),
    click.option(
        "--context",
        metavar="NAME",
        help="The kubeconfig context to use.",
        shell_complete=_kubeconfig_names("contexts"),
    ),
    click.option(
        "--cluster",
        metavar="NAME",
        help="The kubeconfig cluster to use.",
        shell_complete=_kubeconfig_names("clusters"),
    ),
    click.option(
        "--user",
        metavar="NAME",
        help="The kubeconfig user to use.",
        shell_complete=_kubeconfig_names("users"),
    ),
    click.option("-n", "--namespace", metavar="NS", help="The namespace (default: the context's namespace)."),
    click.option("--as", "as_user", metavar="USER", help="User to impersonate for the operation."),
    click.option(
        "--as-group", "as_groups", metavar="GROUP", multiple=True, help="Group to impersonate (repeatable)."
    ),
    click.option(
        "--request-timeout",
        metavar="DURATION",
        callback=_timeout,
        help="Time to wait for one server request (e.g. 30s, 2m; 0 waits forever).",
    ),
]


def cluster_options(func: F) -> F:
    """Add kubectl's cluster flags to a command; the callback receives ``target: ClusterTarget``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["target"] = ClusterTarget(
            kubeconfig=kwargs.pop("kubeconfig"),
            context=kwargs.pop("context"),
            cluster=kwargs.pop("cluster"),
            user=kwargs.pop("user"),
            namespace=kwargs.pop("namespace"),
            impersonate=kwargs.pop("as_user"),
            impersonate_groups=tuple(kwargs.pop("as_groups")),
            request_timeout=kwargs.pop("request_timeout"),
        )
        return func(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_CLUSTER_FLAGS):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def all_namespaces_option(func: F) -> F:
    return click.option(
        "-A", "--all-namespaces", "all_namespaces", is_flag=True, help="List across all namespaces."
    )(func)


def output_option(*formats: str, default: str = "table") -> Callable[[F], F]:
    """``-o/--output`` with the given formats (kubectl's names)."""
    choices = formats or OUTPUT_FORMATS
    return click.option(
        "-o",
        "--output",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format.",
    )


def dry_run_option(func: F) -> F:
    """kubectl's ``--dry-run=none|client|server`` (bare ``--dry-run`` means client)."""
    return click.option(
        "--dry-run",
        type=click.Choice(["none", "client", "server"]),
        default="none",
        flag_value="client",
        is_flag=False,
        help="client: print what would be sent; server: let the server check it without persisting.",
    )(func)
