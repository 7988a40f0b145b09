"""`kubectl ai-platform`: Train models on Kubeflow with the command line of gcloud ai-platform.

One module per verb group, each thin (flags in, one call to :mod:`kaip.aiplatform`, output out):
:mod:`.submit` is `jobs submit training`, :mod:`.jobs` the other `jobs` verbs, :mod:`.local` is
`local train`, :mod:`.config` is `config show`; this module puts them under one click group.
Library modules are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import click

from kaip.cli.app import complete_main, plugin_main
from kaip.cli.common import version_command
from kaip.cli.options import KubectlGroup
from kaip.commands.ai_platform import config, jobs, local, submit
from kaip.commands.ai_platform.program import CONTEXT, PROG

__all__ = ["CONTEXT", "PROG", "cli", "complete", "main"]


@click.group(cls=KubectlGroup, context_settings=CONTEXT)
def cli() -> None:
    """Train models on Kubeflow with the command line of gcloud ai-platform."""


cli.add_command(version_command(PROG))
cli.add_command(jobs.jobs)
jobs.jobs.add_command(submit.submit)
cli.add_command(local.local_group)
cli.add_command(config.config_group)


def main() -> None:
    plugin_main(cli, PROG)


def complete() -> None:
    complete_main(cli, PROG)
