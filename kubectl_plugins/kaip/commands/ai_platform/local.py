"""`kubectl ai-platform local train`: run the training module on this machine, as gcloud does."""

from __future__ import annotations

import click

from kaip.cli.common import examples
from kaip.cli.options import KubectlGroup
from kaip.commands.ai_platform.program import CONTEXT


@click.group("local", cls=KubectlGroup, context_settings=CONTEXT)
def local_group() -> None:
    """Run training on this machine, as gcloud ai-platform local does."""


@examples(
    "# Run trainer.task here as gcloud does: a chief, two workers and two parameter servers",
    "kubectl ai-platform local train --package-path trainer --module-name trainer.task --distributed --worker-count 2",
)
@local_group.command("train", context_settings=CONTEXT)
@click.argument("user_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- USER_ARGS...]")
@click.option("--module-name", required=True, help="Python module to run (python -m MODULE).")
@click.option(
    "--package-path",
    type=click.Path(exists=True, file_okay=False),
    help="The package directory (default: the current directory).",
)
@click.option("--job-dir", help="Output directory, passed to the program as --job-dir (a local path works).")
@click.option(
    "--distributed", is_flag=True, help="Run a primary, parameter servers and workers as local processes."
)
@click.option(
    "--parameter-server-count",
    type=int,
    default=2,
    show_default=True,
    help="Parameter servers (with --distributed).",
)
@click.option("--worker-count", type=int, default=2, show_default=True, help="Workers (with --distributed).")
@click.option(
    "--evaluator-count", type=int, default=0, show_default=True, help="Evaluators (with --distributed)."
)
@click.option(
    "--start-port",
    type=int,
    default=27182,
    show_default=True,
    help="First of the contiguous ports of the tasks.",
)
def local_train(
    *,
    user_args: tuple[str, ...],
    module_name: str,
    package_path: str | None,
    job_dir: str | None,
    distributed: bool,
    parameter_server_count: int,
    worker_count: int,
    evaluator_count: int,
    start_port: int,
) -> None:
    """Run MODULE locally with the TF_CONFIG gcloud sets; exit with the primary task's exit code."""
    import os

    from kaip.aiplatform import local

    package = os.path.abspath(package_path or os.getcwd())
    exe = local.python()
    args = local.user_args(user_args, job_dir)
    tasks = local.plan(
        module=module_name,
        args=args,
        primary=local.primary_name(exe),
        distributed=distributed,
        parameter_servers=parameter_server_count,
        workers=worker_count,
        evaluators=evaluator_count,
        start_port=start_port,
    )
    code = local.run(
        tasks, module=module_name, args=args, package_root=os.path.dirname(package), python_exe=exe
    )
    if code:
        raise click.exceptions.Exit(code)
