"""kubectl's flags, defined once and shared by every command of every plugin.

The cluster flags arrive in a command's callback as one :class:`~kaip.kube.config.ClusterTarget`
keyword argument named ``target``. As with cobra's persistent flags, kubectl's flags are accepted
before the subcommand as well as after it (``kubectl pvc-preload -n team list``): every group of a
plugin is a :class:`KubectlGroup`, which takes them and keeps what was given for the command that
runs, and each command's own :class:`KubectlOption` takes that value as if it had been given there.
A flag given twice (before and after the command, or before two nested commands) is an error naming
it, whether or not the values agree: silently picking one would hide a mistake in a script (repeated
in one place, the last one counts, as in kubectl). A flag given before a command that does not take
it (``-A`` before ``retry``) is an error naming both. A value given before a command is checked by
the command's own option (``-o`` by its formats, ``--request-timeout`` as a duration).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from kaip.cli.completion import given_before as _given_before
from kaip.cli.completion import kubeconfig_names as _kubeconfig_names
from kaip.cli.completion import namespaces
from kaip.errors import ConfigError
from kaip.kube.config import ClusterTarget, parse_duration

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "wide", "json", "yaml", "name")


def _label(param: click.Parameter) -> str:
    return "/".join(param.opts)


class KubectlOption(click.Option):
    """One of kubectl's flags on a command: its value may also have been given before the command."""

    def consume_value(self, ctx: click.Context, opts: Mapping[str, Any]) -> tuple[Any, ParameterSource]:
        value, source = super().consume_value(ctx, opts)
        given = _given_before(ctx)
        if self.name not in given:
            return value, source
        if source is ParameterSource.COMMANDLINE and not ctx.resilient_parsing:
            raise click.UsageError(
                f"{_label(self)} is given both before and after '{ctx.info_name}'; give it once", ctx
            )
        return given[self.name], ParameterSource.COMMANDLINE


class _BeforeCommand(click.Option):
    """One of kubectl's flags on a group: what is given is kept, unchecked, for the command to take."""

    def consume_value(self, ctx: click.Context, opts: Mapping[str, Any]) -> tuple[Any, ParameterSource]:
        value, source = super().consume_value(ctx, opts)
        if source is ParameterSource.COMMANDLINE:
            given = _given_before(ctx)
            if self.name in given and not ctx.resilient_parsing:
                raise click.UsageError(f"{_label(self)} is given twice; give it once", ctx)
            given[self.name] = value
        return value, source


def _timeout(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None


# Each flag's declaration and the settings it has in both places; a command adds its own type,
# default and callback, so that a value given before it is checked as the command checks it.
_FLAGS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "kubeconfig": (
        ("--kubeconfig",),
        {
            "metavar": "FILE",
            "help": "Path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config).",
        },
    ),
    "context": (
        ("--context",),
        {
            "metavar": "NAME",
            "help": "The kubeconfig context to use.",
            "shell_complete": _kubeconfig_names("contexts"),
        },
    ),
    "cluster": (
        ("--cluster",),
        {
            "metavar": "NAME",
            "help": "The kubeconfig cluster to use.",
            "shell_complete": _kubeconfig_names("clusters"),
        },
    ),
    "user": (
        ("--user",),
        {
            "metavar": "NAME",
            "help": "The kubeconfig user to use.",
            "shell_complete": _kubeconfig_names("users"),
        },
    ),
    "namespace": (
        ("-n", "--namespace"),
        {
            "metavar": "NS",
            "help": "The namespace (default: the context's namespace).",
            "shell_complete": namespaces(),
        },
    ),
    "as_user": (("--as", "as_user"), {"metavar": "USER", "help": "User to impersonate for the operation."}),
    "as_groups": (
        ("--as-group", "as_groups"),
        {"metavar": "GROUP", "multiple": True, "help": "Group to impersonate (repeatable)."},
    ),
    "request_timeout": (
        ("--request-timeout",),
        {
            "metavar": "DURATION",
            "help": "Time to wait for one server request (e.g. 30s, 2m; 0 waits forever).",
        },
    ),
    "all_namespaces": (
        ("-A", "--all-namespaces", "all_namespaces"),
        {"is_flag": True, "help": "List across all namespaces."},
    ),
    "output": (
        ("-o", "--output"),
        {"metavar": "FORMAT", "help": "Output format (the formats of the command: see its --help)."},
    ),
}
_CLUSTER = (
    "kubeconfig",
    "context",
    "cluster",
    "user",
    "namespace",
    "as_user",
    "as_groups",
    "request_timeout",
)


def _flag(name: str, **settings: Any) -> Callable[[F], F]:
    decls, common = _FLAGS[name]
    return click.option(*decls, cls=KubectlOption, **{**common, **settings})


class KubectlGroup(click.Group):
    """A plugin's group: kubectl's flags are accepted before its subcommand too (cobra's persistent flags).

    They are listed under "Global flags" in the group's help; the command that runs checks their values.
    """

    group_class = type  # nested groups (`ai-platform jobs submit`) take them as well

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params += [
            _BeforeCommand(list(decls), expose_value=False, **common) for decls, common in _FLAGS.values()
        ]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is None or isinstance(command, click.Group) or ctx.resilient_parsing:
            return name, command, rest  # a group passes them on; completion never fails
        if set(rest) & set(ctx.help_option_names):
            return name, command, rest  # `-A retry --help`: the help says which flags it takes
        takes = {p.name for p in command.params if isinstance(p, KubectlOption)}
        given = _given_before(ctx)
        for flag in self.params:
            if isinstance(flag, _BeforeCommand) and flag.name in given and flag.name not in takes:
                sub = click.Context(command, info_name=name, parent=ctx)
                raise click.UsageError(f"'{sub.command_path}' takes no {_label(flag)} flag", sub)
        return name, command, rest

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        flags: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                (flags if isinstance(param, _BeforeCommand) else own).append(record)
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        self.format_commands(ctx, formatter)
        with formatter.section("Global flags (before or after the command, where it takes them)"):
            formatter.write_dl(flags)


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
    for name in reversed(_CLUSTER):
        settings = {"callback": _timeout} if name == "request_timeout" else {}
        decorated = _flag(name, **settings)(decorated)
    return decorated  # type: ignore[no-any-return]


def all_namespaces_option(func: F) -> F:
    return _flag("all_namespaces")(func)


def output_option(
    *formats: str, default: str | None = "table", help: str = "Output format."
) -> Callable[[F], F]:
    """``-o/--output`` with the given formats (kubectl's names); ``default=None``: print the usual line."""
    return _flag(
        "output",
        type=click.Choice(formats or OUTPUT_FORMATS),
        default=default,
        show_default=default is not None,
        metavar=None,
        help=help,
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


def timeout_option(wait_flag: str) -> Callable[[F], F]:
    """kubectl wait's ``--timeout`` for a command's ``wait_flag``: a duration; 0 waits forever."""
    return click.option(
        "--timeout",
        metavar="DURATION",
        default="0s",
        show_default=True,
        callback=_duration,
        help=f"With {wait_flag}: give up after this long (e.g. 30s, 10m, 1h; 0 waits forever).",
    )


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    return _timeout(ctx, param, value) or None
