"""`kubectl ai-platform`: Train models on Kubeflow with the command line of gcloud ai-platform.

Thin: flags are read here and handed to :mod:`kaip.aiplatform`; library modules are imported inside
the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from kaip.cli.app import complete_main, plugin_main
from kaip.cli.common import version_command
from kaip.cli.options import all_namespaces_option, cluster_options, dry_run_option, output_option
from kaip.cli.output import Table, dump_json, dump_yaml, dump_yaml_documents, echo, note, render
from kaip.errors import ExitCode, UsageError
from kaip.kube.config import ClusterTarget

PROG = "kubectl ai-platform"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT)
def cli() -> None:
    """Train models on Kubeflow with the command line of gcloud ai-platform."""


cli.add_command(version_command())


@cli.group(context_settings=CONTEXT)
def jobs() -> None:
    """Submit and manage training jobs (TFJob, PyTorchJob, XGBoostJob, JAXJob, PaddleJob, MPIJob)."""


@jobs.group(context_settings=CONTEXT)
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
        click.option(
            "-o",
            "--output",
            type=click.Choice(["yaml", "json", "name"]),
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
    *, job: str, user_args: tuple[str, ...], target: ClusterTarget, dry_run: str, **flags: Any
) -> None:
    """Submit a training job JOB, with gcloud ai-platform's flags.

    Everything after `--` is passed to the program. Example:

      kubectl ai-platform jobs submit training my_job --module-name=trainer.task
      --package-path=trainer --scale-tier=basic-gpu -- --epochs=10
    """
    from kaip.aiplatform import packages, submit, training
    from kaip.aiplatform.catalog import BUILTIN, Catalog
    from kaip.aiplatform.manifests import ClusterOptions, parse_data

    if flags["stream_logs"] and flags["async_"]:
        raise UsageError("--async and --stream-logs cannot both be set")
    labels: dict[str, str] = {}
    for value in flags["labels"]:
        labels.update(training.parse_labels(value))
    all_packages = training.split_list(flags["packages"])
    local = [p for p in all_packages if not packages.is_remote(p)]
    remote = [p for p in all_packages if packages.is_remote(p)]
    gcloud = training.SubmitFlags(
        job_id=job,
        module_name=flags["module_name"],
        package_path=flags["package_path"],
        packages=all_packages,
        staging_bucket=flags["staging_bucket"],
        job_dir=flags["job_dir"],
        region=flags["region"],
        scale_tier=flags["scale_tier"].lower() if flags["scale_tier"] else None,
        master_machine_type=flags["master_machine_type"],
        master_image_uri=flags["master_image_uri"],
        master_accelerator=flags["master_accelerator"],
        worker_count=flags["worker_count"],
        worker_machine_type=flags["worker_machine_type"],
        worker_image_uri=flags["worker_image_uri"],
        worker_accelerator=flags["worker_accelerator"],
        parameter_server_count=flags["parameter_server_count"],
        parameter_server_machine_type=flags["parameter_server_machine_type"],
        parameter_server_image_uri=flags["parameter_server_image_uri"],
        parameter_server_accelerator=flags["parameter_server_accelerator"],
        runtime_version=flags["runtime_version"],
        python_version=flags["python_version"],
        use_chief_in_tf_config=flags["use_chief_in_tf_config"],
        labels=labels,
        service_account=flags["service_account"],
        args=user_args,
    )
    config = None
    if flags["config_path"] is not None:
        config = training.read_config(flags["config_path"].read(), source=flags["config_path"].name)
    options = ClusterOptions(
        framework=flags["framework"],
        namespace=target.namespace,
        credentials=training.split_list(flags["credentials"]),
        data=tuple(parse_data(d) for d in flags["data"]),
        data_credentials=flags["data_credentials"],
        queue=flags["queue"],
        priority=flags["priority"],
        gang=flags["gang"],
        scheduler=flags["scheduler"],
        secondary_networks=training.split_list(flags["secondary_network"]),
        mpi_api=flags["mpi_api"],
    )
    files = [packages.read_local(p) for p in local]
    if gcloud.package_path:
        files.insert(0, packages.build_sdist(gcloud.package_path))
    output = flags["output"]
    if dry_run == "client":
        # kubectl's client dry run does not contact the server, so the built-in catalog decides.
        options, assumed = submit.resolve_mpi_api(options, None)
        if assumed:
            note(assumed)
        plan = submit.plan(
            flags=gcloud,
            config=config,
            options=options,
            catalog=Catalog(BUILTIN),
            local_files=files,
            remote_packages=remote,
        )
        _notes(plan.warnings)
        _katib_notes(submit.dry_run_notes(plan, target.namespace))
        _print_objects(plan.objects, output, suffix="created (dry run)")
        return
    from kaip.aiplatform import jobs as joblib
    from kaip.kube import connect

    kube = connect(target)
    catalog, warning = joblib.read_catalog(kube)
    if warning:
        note(f"Warning: {warning}")
    options = ClusterOptions(**{**options.__dict__, "namespace": kube.namespace})
    options, _ = submit.resolve_mpi_api(options, kube)  # the MPIJob version the cluster serves
    plan = submit.plan(
        flags=gcloud,
        config=config,
        options=options,
        catalog=catalog,
        local_files=files,
        remote_packages=remote,
    )
    _notes(plan.warnings)
    _katib_notes(submit.enable_katib(kube, plan, server_dry_run=dry_run == "server"))
    created = submit.create(kube, plan, server_dry_run=dry_run == "server", stager=packages.storage_stager())
    if dry_run == "server" or output:
        _print_objects(
            created, output, suffix="created (server dry run)" if dry_run == "server" else "created"
        )
        if dry_run == "server":
            return
    job_id = gcloud.job_id
    note(f"Job [{job_id}] submitted successfully.")
    if not flags["stream_logs"]:
        note(
            "Your job is still active. You may view the status of your job with the command\n\n"
            f"  $ {PROG} jobs describe {job_id}\n\nor continue streaming the logs with the command\n\n"
            f"  $ {PROG} jobs stream-logs {job_id}"
        )
        return
    final = _stream(kube, job_id, task_name=None, interval=10.0)
    if final != "SUCCEEDED":
        raise click.exceptions.Exit(int(ExitCode.FAILURE))


def _katib_notes(lines: list[str]) -> None:
    for line in lines:
        note(f"Note: {line}")


def _notes(warnings: list[str]) -> None:
    for warning in warnings:
        note(f"Warning: {warning}")


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


def _stream(kube: Any, job: str, *, task_name: str | None, interval: float) -> str:
    from kaip.aiplatform import logs

    final = ""
    for event in logs.follow(kube, job, task_name=task_name, polling_interval=interval):
        if event.line is not None:
            echo(event.line)
        if event.final_state:
            final = event.final_state
    return final


# -- jobs list / describe / cancel / update / stream-logs ------------------------------------------
@jobs.command("list", context_settings=CONTEXT)
@click.option("--filter", "filter_", metavar="EXPR", help="e.g. state=RUNNING AND labels.team:vision")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many jobs.")
@click.option(
    "--sort-by", multiple=True, metavar="FIELD", help="Sort by FIELD (~FIELD reverses); default ~createTime."
)
@output_option("table", "wide", "json", "yaml", "name")
@all_namespaces_option
@cluster_options
def list_jobs(
    *,
    filter_: str | None,
    limit: int | None,
    sort_by: tuple[str, ...],
    output: str,
    all_namespaces: bool,
    target: ClusterTarget,
) -> None:
    """List jobs (JOB_ID, STATUS, CREATED) with gcloud's states."""
    from kaip.aiplatform import jobs as joblib
    from kaip.aiplatform import views
    from kaip.kube import connect

    test = views.compile_filter(filter_)
    order = [s for v in sort_by for s in v.split(",") if s]
    kube = connect(target)
    found = views.sort_views(
        [v for v in joblib.list_views(kube, all_namespaces=all_namespaces) if test(v)], order
    )
    if limit:
        found = found[:limit]

    def table(wide: bool) -> Table:
        headers = (["NAMESPACE"] if all_namespaces else []) + ["JOB_ID", "STATUS", "CREATED"]
        headers += ["KIND", "NAME", "REASON"] if wide else []
        rows = [
            ([v.namespace] if all_namespaces else [])
            + [v.job_id, v.state.state, views.local_time(v.create_time)]
            + ([v.kind, v.name, v.reason_line()] if wide else [])
            for v in found
        ]
        return Table(headers, rows)

    docs = [v.document() for v in found]
    echo(render(output, docs, table=table, name=lambda d: str(d["jobId"])))


@jobs.command("describe", context_settings=CONTEXT)
@click.argument("job")
@click.option("--summarize", is_flag=True, help="Summary tables instead of the whole job.")
@output_option("yaml", "json", default="yaml")
@cluster_options
def describe_job(*, job: str, summarize: bool, output: str, target: ClusterTarget) -> None:
    """Describe a job: gcloud's Job fields, its replicas, and why it is stuck when it is."""
    from kaip.aiplatform import jobs as joblib
    from kaip.aiplatform import views
    from kaip.cli.output import format_table
    from kaip.kube import connect

    kube = connect(target)
    job_view, obj, pods = joblib.describe(kube, job)
    rows = joblib.replica_rows(obj, pods)
    if summarize:
        parts = []
        for title, headers, body in views.summary_sections(job_view, rows):
            parts.append(f"{title}\n{format_table(Table(headers, body))}")
        if job_view.failure:
            parts.append(views.failure_text(job_view.failure))
        echo("\n\n".join(p for p in parts if p))
        return
    doc = job_view.document()
    failure = doc["kubernetes"].pop("failure", None)
    if rows:
        doc["kubernetes"]["replicas"] = [
            {"task": t, "phase": p, **({"reason": r} if r else {})} for t, p, r in rows
        ]
    if failure:
        doc["kubernetes"]["failure"] = failure
    echo(dump_json(doc) if output == "json" else dump_yaml(doc))


@jobs.command("cancel", context_settings=CONTEXT)
@click.argument("job")
@cluster_options
def cancel_job(*, job: str, target: ClusterTarget) -> None:
    """Cancel a job: its Pods stop, its record stays (CANCELLING, then CANCELLED)."""
    from kaip.aiplatform import jobs as joblib
    from kaip.kube import connect

    view, changed = joblib.cancel(connect(target), job)
    if not changed:
        note(f"Job [{job}] is already {view.state.state}; nothing to cancel.")


@jobs.command("update", context_settings=CONTEXT)
@click.argument("job")
@click.option("--update-labels", multiple=True, metavar="KEY=VALUE,...", help="Labels to add or change.")
@click.option("--remove-labels", multiple=True, metavar="KEY,...", help="Labels to remove.")
@click.option("--clear-labels", is_flag=True, help="Remove every label.")
@cluster_options
def update_job(
    *,
    job: str,
    update_labels: tuple[str, ...],
    remove_labels: tuple[str, ...],
    clear_labels: bool,
    target: ClusterTarget,
) -> None:
    """Update a job's labels (the only thing gcloud lets change)."""
    from kaip.aiplatform import jobs as joblib
    from kaip.aiplatform import training
    from kaip.kube import connect

    if not (update_labels or remove_labels or clear_labels):
        raise UsageError("give --update-labels, --remove-labels or --clear-labels")
    updates: dict[str, str] = {}
    for value in update_labels:
        updates.update(training.parse_labels(value))
    joblib.update_labels(
        connect(target), job, update=updates, remove=training.split_list(remove_labels), clear=clear_labels
    )
    note(f"Updated job [{job}].")


@jobs.command("stream-logs", context_settings=CONTEXT)
@click.argument("job")
@click.option("--task-name", help="Only this task: master-replica-0, worker-replica-N, ps-replica-N.")
@click.option(
    "--polling-interval",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Seconds between looks for new replicas once the logs are quiet.",
)
@click.option(
    "--allow-multiline-logs", is_flag=True, help="Accepted for gcloud scripts (lines are never split)."
)
@cluster_options
def stream_logs(
    *,
    job: str,
    task_name: str | None,
    polling_interval: int,
    allow_multiline_logs: bool,
    target: ClusterTarget,
) -> None:
    """Show the logs of every replica, following Pods that start later, until the job ends."""
    from kaip.kube import connect

    _stream(connect(target), job, task_name=task_name, interval=float(polling_interval))


# -- local train ----------------------------------------------------------------------------------
@cli.group("local", context_settings=CONTEXT)
def local_group() -> None:
    """Run training on this machine, as gcloud ai-platform local does."""


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


# -- config ---------------------------------------------------------------------------------------
@cli.group("config", context_settings=CONTEXT)
def config_group() -> None:
    """The cluster's catalog of machine types, accelerators, scale tiers and runtime versions."""


@config_group.command("show", context_settings=CONTEXT)
@click.option("--builtin", is_flag=True, help="Show the built-in catalog; do not read the cluster's.")
@output_option("yaml", "json", default="yaml")
@cluster_options
def config_show(*, builtin: bool, output: str, target: ClusterTarget) -> None:
    """Print the catalog in effect: the admin's ConfigMap kaip-system/ai-platform-catalog over the built-in one."""
    from kaip.aiplatform.catalog import BUILTIN

    doc = dict(BUILTIN)
    if not builtin:
        from kaip.aiplatform import jobs as joblib
        from kaip.kube import connect

        catalog, warning = joblib.read_catalog(connect(target))
        if warning:
            note(f"Warning: {warning}")
        note(f"# catalog: {catalog.source}")
        doc = dict(catalog.doc)
    echo(dump_json(doc) if output == "json" else dump_yaml(doc))


def main() -> None:
    plugin_main(cli, PROG)


def complete() -> None:
    complete_main(cli, PROG)
