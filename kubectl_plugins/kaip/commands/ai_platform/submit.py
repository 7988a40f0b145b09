"""`kubectl ai-platform jobs submit training`: gcloud's flags to one :class:`SubmitRequest`, carried out.

The flags are mapped by the pure :func:`kaip.aiplatform.request.submit_request`, the objects planned
and created by :func:`kaip.aiplatform.request.carry_out`, and ``--stream-logs`` followed by
:func:`kaip.aiplatform.logs.stream`; this module only declares the flags and prints.
"""

from __future__ import annotations

from typing import IO, Any

import click

from kaip.cli.options import KubectlGroup, cluster_options, dry_run_option, output_option
from kaip.cli.output import dump_json, dump_yaml_documents, echo, note
from kaip.commands.ai_platform.program import CONTEXT, PROG
from kaip.errors import ExitCode
from kaip.kube.config import ClusterTarget

#: What the objects printed without -o are, after each kind of --dry-run.
_SUFFIX = {"none": "created", "client": "created (dry run)", "server": "created (server dry run)"}


@click.group(cls=KubectlGroup, context_settings=CONTEXT)
def submit() -> None:
    """Submit jobs."""


def _cloud_only(what: str) -> Any:
    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value not in (None, False, ()):
            raise click.UsageError(
                f"{param.opts[0]} ({what}) exists only on Google Cloud and has no meaning here"
            )

    return refuse


_CLOUD_ONLY = (
    ("--kms-key", "customer-managed encryption keys (Cloud KMS)"),
    ("--kms-keyring", "customer-managed encryption keys (Cloud KMS)"),
    ("--kms-location", "customer-managed encryption keys (Cloud KMS)"),
    ("--kms-project", "customer-managed encryption keys (Cloud KMS)"),
    ("--network", "VPC network peering; for secondary networks use --secondary-network"),
    ("--tpu-tf-version", "Cloud TPU"),
    ("--enable-web-access", "interactive shell web access; use kubectl exec"),
)


def _async_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        note(
            "The --async flag is deprecated, as the default behavior is to submit the job asynchronously; "
            "it can be omitted. For synchronous behavior, please pass --stream-logs."
        )
    return value


def _accelerator_help(who: str) -> str:
    return f"Accelerators for the {who}: type=TYPE,count=N (types from `config show`)."


def _submit_options(func: Any) -> Any:
    options = [
        click.option(
            "--module-name", help="Python module to run (python -m MODULE); required unless an image runs."
        ),
        click.option(
            "--package-path",
            type=click.Path(file_okay=False),
            help="Local package directory, built as an sdist and staged.",
        ),
        click.option(
            "--packages",
            multiple=True,
            metavar="PACKAGE,...",
            help="Local archives (staged) or gs:// / s3:// URIs (fetched).",
        ),
        click.option(
            "--staging-bucket",
            metavar="URI",
            help="s3:// or gs:// bucket for local packages (default: a ConfigMap).",
        ),
        click.option(
            "--job-dir", metavar="URI", help="Output directory, passed to the program as --job-dir."
        ),
        click.option(
            "--region", help="Accepted for gcloud scripts; the kubeconfig context chooses the cluster."
        ),
        click.option(
            "--scale-tier",
            type=click.Choice(
                ["basic", "basic-gpu", "basic-tpu", "standard-1", "premium-1", "custom"], case_sensitive=False
            ),
            help="Machine set-up of the job (custom: give the machine types).",
        ),
        click.option(
            "--master-machine-type", help="Machine type of the master (required with --scale-tier=custom)."
        ),
        click.option(
            "--master-image-uri",
            help="Container image of the master; runs its own entrypoint with the user args.",
        ),
        click.option("--master-accelerator", metavar="type=T,count=N", help=_accelerator_help("master")),
        click.option("--worker-count", type=int, help="Number of workers (with --worker-machine-type)."),
        click.option("--worker-machine-type", help="Machine type of the workers (with --worker-count)."),
        click.option("--worker-image-uri", help="Image of the workers (default: the master's)."),
        click.option("--worker-accelerator", metavar="type=T,count=N", help=_accelerator_help("workers")),
        click.option(
            "--parameter-server-count",
            type=int,
            help="Number of parameter servers (with --parameter-server-machine-type).",
        ),
        click.option("--parameter-server-machine-type", help="Machine type of the parameter servers."),
        click.option(
            "--parameter-server-image-uri", help="Image of the parameter servers (default: the master's)."
        ),
        click.option(
            "--parameter-server-accelerator",
            metavar="type=T,count=N",
            help=_accelerator_help("parameter servers"),
        ),
        click.option(
            "--runtime-version",
            help="Runtime version: picks the image from the catalog (not with --master-image-uri).",
        ),
        click.option("--python-version", help="Python version of the runtime (checked against the catalog)."),
        click.option(
            "--use-chief-in-tf-config",
            type=click.BOOL,
            is_flag=False,
            flag_value="true",
            default=None,
            help="TensorFlow: a Chief replica instead of Master (TF 2).",
        ),
        click.option(
            "--config",
            "config_path",
            type=click.File("r"),
            help="gcloud Job YAML/JSON (trainingInput); flags override it.",
        ),
        click.option("--labels", multiple=True, metavar="KEY=VALUE,...", help="Labels of the job."),
        click.option("--service-account", help="Kubernetes ServiceAccount the replicas run as."),
        click.option(
            "--stream-logs",
            is_flag=True,
            help="Follow the logs until the job ends; exit 1 unless it SUCCEEDED.",
        ),
        click.option("--async", "async_", is_flag=True, hidden=True, callback=_async_flag, expose_value=True),
        click.option(
            "--framework",
            type=click.Choice(["tensorflow", "pytorch", "xgboost", "jax", "paddle", "mpi"]),
            default="tensorflow",
            show_default=True,
            help="Kubeflow job kind to create.",
        ),
        click.option(
            "--mpi-api",
            type=click.Choice(["v2beta1", "v1"]),
            help="MPIJob version: v2beta1 (mpi-operator) or v1 (training-operator); default: the served one.",
        ),
        click.option(
            "--credentials",
            multiple=True,
            metavar="SECRET,...",
            help="kaip credentials Secrets mounted into every replica.",
        ),
        click.option(
            "--data",
            multiple=True,
            metavar="NAME=URI[:MOUNT]",
            help="Preload s3:// or gs:// data into PVC NAME, mounted at MOUNT (default /data/NAME).",
        ),
        click.option(
            "--data-credentials",
            metavar="SECRET",
            help="Credentials Secret the data loader reads the --data buckets with.",
        ),
        click.option("--queue", help="Queue: Kueue LocalQueue (label) or Volcano queue (schedulingPolicy)."),
        click.option(
            "--priority",
            metavar="CLASS",
            help="Priority class (Kueue WorkloadPriorityClass or PriorityClass).",
        ),
        click.option(
            "--gang", is_flag=True, help="Gang-schedule all replicas together (minAvailable = all)."
        ),
        click.option(
            "--scheduler",
            type=click.Choice(["kueue", "volcano", "scheduler-plugins", "none"]),
            help="Queueing/gang system of the cluster (default: the catalog's).",
        ),
        click.option(
            "--secondary-network",
            multiple=True,
            metavar="NAME,...",
            help="Multus NetworkAttachmentDefinitions (e.g. RDMA) for every replica.",
        ),
        output_option(
            "yaml",
            "json",
            "name",
            default=None,
            help="Print the objects created (or, with --dry-run, to be created).",
        ),
    ]
    options += [
        click.option(
            flag,
            hidden=True,
            expose_value=False,
            is_flag=flag == "--enable-web-access",
            callback=_cloud_only(what),
        )
        for flag, what in _CLOUD_ONLY
    ]
    for option in reversed(options):
        func = option(func)
    return func


@submit.command("training", context_settings=CONTEXT)
@click.argument("job")
@click.argument("user_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- USER_ARGS...]")
@_submit_options
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
    credentials: tuple[str, ...],
    data: tuple[str, ...],
    data_credentials: str | None,
    queue: str | None,
    priority: str | None,
    gang: bool,
    scheduler: str | None,
    secondary_network: tuple[str, ...],
    output: str | None,
    dry_run: str,
    target: ClusterTarget,
) -> None:
    """Submit a training job JOB, with gcloud ai-platform's flags.

    Everything after `--` is passed to the program. Example:

      kubectl ai-platform jobs submit training my_job --module-name=trainer.task
      --package-path=trainer --scale-tier=basic-gpu -- --epochs=10
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
        credentials=credentials,
        data=data,
        data_credentials=data_credentials,
        queue=queue,
        priority=priority,
        gang=gang,
        scheduler=scheduler,
        secondary_network=secondary_network,
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
