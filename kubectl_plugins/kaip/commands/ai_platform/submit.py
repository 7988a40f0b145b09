"""`kubectl ai-platform jobs submit training`: gcloud's flags to one :class:`SubmitRequest`, carried out.

The flags are mapped by the pure :func:`kaip.aiplatform.request.submit_request`, the objects planned
and created by :func:`kaip.aiplatform.request.carry_out`, and ``--stream-logs`` followed by
:func:`kaip.aiplatform.logs.stream`; this module only declares the flags and prints.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import click

from kaip.cli.common import examples
from kaip.cli.options import KubectlGroup, cluster_options, dry_run_option
from kaip.cli.output import dump_json, dump_yaml_documents, echo, note
from kaip.commands.ai_platform.program import CONTEXT, PROG
from kaip.commands.ai_platform.submit_options import submit_options
from kaip.errors import ExitCode
from kaip.kube.config import ClusterTarget

if TYPE_CHECKING:
    pass

#: What the objects printed without -o are, after each kind of --dry-run.
_SUFFIX = {"none": "created", "client": "created (dry run)", "server": "created (server dry run)"}


@click.group(cls=KubectlGroup, context_settings=CONTEXT)
def submit() -> None:
    """Submit jobs."""


@examples(
    "# Submit a package from this machine, run as python -m trainer.task",
    "kubectl ai-platform jobs submit training mnist_1 --package-path trainer --module-name trainer.task \\",
    "    --scale-tier basic-gpu -- --epochs 10",
    "",
    "# Print the objects a submission would create, without a cluster",
    "kubectl ai-platform jobs submit training mnist_1 --master-image-uri repo/trainer:1 --dry-run=client -o yaml",
)
@submit.command("training", context_settings=CONTEXT)
@click.argument("job")
@click.argument("user_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- USER_ARGS...]")
@submit_options
@dry_run_option
@cluster_options
def submit_training(
    *,
    job: str,
    user_args: tuple[str, ...],
    module_name: str | None,
    package_path: str | None,
    packages: tuple[str, ...],
    staging_bucket: str | None,
    job_dir: str | None,
    region: str | None,
    scale_tier: str | None,
    master_machine_type: str | None,
    master_image_uri: str | None,
    master_accelerator: str | None,
    worker_count: int | None,
    worker_machine_type: str | None,
    worker_image_uri: str | None,
    worker_accelerator: str | None,
    parameter_server_count: int | None,
    parameter_server_machine_type: str | None,
    parameter_server_image_uri: str | None,
    parameter_server_accelerator: str | None,
    runtime_version: str | None,
    python_version: str | None,
    use_chief_in_tf_config: bool | None,
    config_path: IO[str] | None,
    labels: tuple[str, ...],
    service_account: str | None,
    stream_logs: bool,
    async_: bool,
    framework: str,
    mpi_api: str | None,
    backend: str | None,
    credentials: tuple[str, ...],
    data: tuple[str, ...],
    data_credentials: str | None,
    queue: str | None,
    priority: str | None,
    gang: bool,
    scheduler: str | None,
    secondary_network: tuple[str, ...],
    volume: tuple[str, ...],
    run_as_user: int | None,
    run_as_group: int | None,
    fs_group: int | None,
    exclusive: bool | None,
    output: str | None,
    dry_run: str,
    target: ClusterTarget,
) -> None:
    """Submit a training job JOB, with gcloud ai-platform's flags.

    Everything after `--` is passed to the program.
    """
    from kaip.aiplatform.request import carry_out, submit_request

    # The --config file is read here; -n is the target's namespace. Every other flag goes by name to
    # the pure submit_request (a unit test keeps the two lists equal).
    request = submit_request(
        job=job,
        user_args=user_args,
        module_name=module_name,
        package_path=package_path,
        packages=packages,
        staging_bucket=staging_bucket,
        job_dir=job_dir,
        region=region,
        scale_tier=scale_tier,
        master_machine_type=master_machine_type,
        master_image_uri=master_image_uri,
        master_accelerator=master_accelerator,
        worker_count=worker_count,
        worker_machine_type=worker_machine_type,
        worker_image_uri=worker_image_uri,
        worker_accelerator=worker_accelerator,
        parameter_server_count=parameter_server_count,
        parameter_server_machine_type=parameter_server_machine_type,
        parameter_server_image_uri=parameter_server_image_uri,
        parameter_server_accelerator=parameter_server_accelerator,
        runtime_version=runtime_version,
        python_version=python_version,
        use_chief_in_tf_config=use_chief_in_tf_config,
        config_text=None if config_path is None else config_path.read(),
        config_source="" if config_path is None else config_path.name,
        labels=labels,
        service_account=service_account,
        stream_logs=stream_logs,
        async_=async_,
        framework=framework,
        mpi_api=mpi_api,
        backend=backend,
        credentials=credentials,
        data=data,
        data_credentials=data_credentials,
        queue=queue,
        priority=priority,
        gang=gang,
        scheduler=scheduler,
        secondary_network=secondary_network,
        volume=volume,
        run_as_user=run_as_user,
        run_as_group=run_as_group,
        fs_group=fs_group,
        exclusive=exclusive,
        output=output,
        dry_run=dry_run,
        namespace=target.namespace,
    )
    submitted = carry_out(request, target=target, notify=note)
    if request.dry_run != "none" or request.output:
        _print_objects(submitted.objects, request.output, suffix=_SUFFIX[request.dry_run])
    if request.dry_run != "none":
        return
    job_id = request.job_id
    note(f"Job [{job_id}] submitted successfully.")
    if not request.stream_logs:
        note(
            "Your job is still active. You may view the status of your job with the command\n\n"
            f"  $ {PROG} jobs describe {job_id}\n\nor continue streaming the logs with the command\n\n"
            f"  $ {PROG} jobs stream-logs {job_id}"
        )
        return
    from kaip.aiplatform import logs

    if logs.stream(submitted.kube, job_id, emit=echo, polling_interval=10.0) != "SUCCEEDED":
        raise click.exceptions.Exit(int(ExitCode.FAILURE))


def _print_objects(objects: list[dict[str, Any]], output: str | None, *, suffix: str) -> None:
    from kaip.cli.output import as_list, qualified_name

    if output == "yaml":
        echo(dump_yaml_documents(objects))
    elif output == "json":
        echo(dump_json(objects[0] if len(objects) == 1 else as_list(objects)))
    elif output == "name":
        echo("\n".join(qualified_name(o) for o in objects))
    else:
        echo("\n".join(f"{qualified_name(o)} {suffix}" for o in objects))
