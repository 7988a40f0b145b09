"""`kubectl node-health`: See every broken GPU node: conditions, cordons, taints and GPU capacity in one view."""

from __future__ import annotations

import click

from kaip.cli.app import complete_main, plugin_main
from kaip.cli.common import version_command

PROG = "kubectl node-health"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def cli() -> None:
    """See every broken GPU node: conditions, cordons, taints and GPU capacity in one view."""


cli.add_command(version_command())


def main() -> None:
    plugin_main(cli, PROG)


def complete() -> None:
    complete_main(cli, PROG)
