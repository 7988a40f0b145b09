"""Commands every plugin has."""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import TypeVar

import click

from kaip import __version__
from kaip.cli.options import cluster_options, output_option
from kaip.cli.output import dump_json, dump_yaml, echo
from kaip.kube.config import ClusterTarget

C = TypeVar("C", bound=click.Command)


def examples(*lines: str) -> Callable[[C], C]:
    """kubectl's "Examples:" section at the end of a command's help (before its options): comment
    lines (``# List ...``) and the commands they describe, kept as written."""

    def add(command: C) -> C:
        # click rewraps a paragraph unless it starts with \b: every example is one such paragraph.
        block = "\n".join(f"  {line}" if line else "\n\b" for line in lines)
        command.help = f"{(command.help or '').rstrip()}\n\n\b\nExamples:\n{block}"
        return command

    return add


def version_command(prog: str) -> click.Command:
    @examples(
        "# Print the client and server versions",
        f"{prog} version",
        "",
        "# Print the client version only, as JSON",
        f"{prog} version --client -o json",
    )
    @click.command("version")
    @click.option(
        "--client",
        "client_only",
        is_flag=True,
        help="Print the client version only; do not contact the server.",
    )
    @output_option("table", "json", "yaml")
    @cluster_options
    def version(client_only: bool, output: str, target: ClusterTarget) -> None:
        """Print the kaip version and the server's Kubernetes version."""
        info: dict[str, object] = {
            "clientVersion": {"kaip": __version__, "python": platform.python_version()}
        }
        if not client_only:
            from kaip.kube import connect

            kube = connect(target)
            info["serverVersion"] = kube.request("GET", "/version")
        if output == "json":
            echo(dump_json(info))
        elif output == "yaml":
            echo(dump_yaml(info))
        else:
            echo(f"Client Version: kaip {__version__} (Python {platform.python_version()})")
            if "serverVersion" in info:
                server = info["serverVersion"]
                assert isinstance(server, dict)
                echo(f"Server Version: {server.get('gitVersion', 'unknown')}")

    return version
