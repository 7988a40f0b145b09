"""`kubectl pvc-preload`: Create PersistentVolumeClaims preloaded from S3 or GCS, and follow their loading."""

from __future__ import annotations

import click

from kaip.cli.app import complete_main, plugin_main
from kaip.cli.common import version_command

PROG = "kubectl pvc-preload"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def cli() -> None:
    """Create PersistentVolumeClaims preloaded from S3 or GCS, and follow their loading."""


cli.add_command(version_command())


def main() -> None:
    plugin_main(cli, PROG)


def complete() -> None:
    complete_main(cli, PROG)
