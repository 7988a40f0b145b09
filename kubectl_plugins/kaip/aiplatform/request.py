"""`jobs submit training` as one typed request: decided from the flags, then carried out.

:func:`submit_request` maps what click parsed onto a frozen :class:`SubmitRequest` (pure: labels,
package lists, ``--config`` and ``--data`` are checked here, before anything is read or sent);
:func:`carry_out` reads the local packages, plans every object (:func:`kaip.aiplatform.submit.plan`)
and, unless it is a client dry run, creates them on the cluster. What a person should hear on the way
goes to ``notify`` as it happens, so it is said even when a later step fails; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from kaip.aiplatform import submit, training
from kaip.aiplatform import volumes as existing
from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.manifests import ClusterOptions, parse_data
from kaip.aiplatform.packages import LocalFile, build_sdist, is_remote, read_local, storage_stager
from kaip.aiplatform.tenancy import Tenancy, check_ids
from kaip.errors import UsageError

if TYPE_CHECKING:
    from kaip.kube.client import Kube
    from kaip.kube.config import ClusterTarget

DRY_RUNS = ("none", "client", "server")  # kubectl's --dry-run values


@dataclass(frozen=True)
class SubmitRequest:
    """Everything `jobs submit training` was asked, typed, before any file is read or request sent."""

    #: gcloud's flags (job id, machines, images, labels, the program's arguments).
    flags: training.SubmitFlags
    #: What the cluster needs beyond gcloud's flags; ``namespace`` is ``-n`` (None: the context's).
    options: ClusterOptions
    #: The ``--config`` Job resource, checked by :func:`kaip.aiplatform.training.read_config`.
    config: dict[str, Any] | None = None
    #: ``--packages`` on this machine (staged) and at gs:// or s3:// (fetched by the replicas).
    local_packages: tuple[str, ...] = ()
    remote_packages: tuple[str, ...] = ()
    #: kubectl's ``--dry-run``: none, client (nothing sent) or server (checked, not persisted).
    dry_run: str = "none"
    #: ``-o``: yaml, json, name, or None (one line per object).
    output: str | None = None
    #: ``--stream-logs``: follow the job's logs until it ends.
    stream_logs: bool = False

    @property
    def job_id(self) -> str:
        return self.flags.job_id


def submit_request(
    *,
    job: str,
    user_args: Sequence[str] = (),
    module_name: str | None = None,
    package_path: str | None = None,
    packages: Sequence[str] = (),
    staging_bucket: str | None = None,
    job_dir: str | None = None,
    region: str | None = None,
    scale_tier: str | None = None,
    master_machine_type: str | None = None,
    master_image_uri: str | None = None,
    master_accelerator: str | None = None,
    worker_count: int | None = None,
    worker_machine_type: str | None = None,
    worker_image_uri: str | None = None,
    worker_accelerator: str | None = None,
    parameter_server_count: int | None = None,
    parameter_server_machine_type: str | None = None,
    parameter_server_image_uri: str | None = None,
    parameter_server_accelerator: str | None = None,
    runtime_version: str | None = None,
    python_version: str | None = None,
    use_chief_in_tf_config: bool | None = None,
    config_text: str | None = None,
    config_source: str = "",
    labels: Sequence[str] = (),
    service_account: str | None = None,
    stream_logs: bool = False,
    async_: bool = False,
    framework: str = "tensorflow",
    mpi_api: str | None = None,
    backend: str | None = None,
    credentials: Sequence[str] = (),
    data: Sequence[str] = (),
    data_credentials: str | None = None,
    queue: str | None = None,
    priority: str | None = None,
    gang: bool = False,
    scheduler: str | None = None,
    secondary_network: Sequence[str] = (),
    volume: Sequence[str] = (),
    run_as_user: int | None = None,
    run_as_group: int | None = None,
    fs_group: int | None = None,
    exclusive: bool | None = None,
    output: str | None = None,
    dry_run: str = "none",
    namespace: str | None = None,
) -> SubmitRequest:
    """The request the flags of `jobs submit training` make (named as click names them; repeatable
    flags as given, each possibly a comma list). ``config_text`` is the ``--config`` file's content,
    ``config_source`` its name for messages. Raises :class:`~kaip.errors.UsageError` as gcloud does."""
    if stream_logs and async_:
        raise UsageError("--async and --stream-logs cannot both be set")
    if dry_run not in DRY_RUNS:
        raise UsageError(f"--dry-run {dry_run!r}: must be one of {', '.join(DRY_RUNS)}")
    job_labels: dict[str, str] = {}
    for value in labels:
        job_labels.update(training.parse_labels(value))
    all_packages = training.split_list(packages)
    flags = training.SubmitFlags(
        job_id=job,
        module_name=module_name,
        package_path=package_path,
        packages=all_packages,
        staging_bucket=staging_bucket,
        job_dir=job_dir,
        region=region,
        scale_tier=scale_tier.lower() if scale_tier else None,
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
        labels=job_labels,
        service_account=service_account,
        args=tuple(user_args),
    )
    config = None if config_text is None else training.read_config(config_text, source=config_source)
    options = ClusterOptions(
        framework=framework,
        namespace=namespace,
        credentials=training.split_list(credentials),
        data=tuple(parse_data(d) for d in data),
        data_credentials=data_credentials,
        queue=queue,
        priority=priority,
        gang=gang,
        scheduler=scheduler,
        secondary_networks=training.split_list(secondary_network),
        mpi_api=mpi_api,
        backend=backend,
        volumes=existing.merge(
            existing.from_config(config or {}, source=config_source),
            [existing.parse_volume(v) for v in volume],
        ),
        tenancy=check_ids(Tenancy(run_as_user, run_as_group, fs_group, exclusive)),
    )
    return SubmitRequest(
        flags=flags,
        options=options,
        config=config,
        local_packages=tuple(p for p in all_packages if not is_remote(p)),
        remote_packages=tuple(p for p in all_packages if is_remote(p)),
        dry_run=dry_run,
        output=output,
        stream_logs=stream_logs,
    )


@dataclass(frozen=True)
class Submitted:
    #: The objects created (or, in a dry run, to be created), in the order of the plan.
    objects: list[dict[str, Any]]
    #: The cluster they went to, for following the job; None after a client dry run.
    kube: Kube | None


def carry_out(request: SubmitRequest, *, target: ClusterTarget, notify: Callable[[str], None]) -> Submitted:
    """Read the local packages, plan, and create the objects (a client dry run only plans).

    The packages are read before the cluster is resolved, so a missing file is reported first.
    """
    files = [read_local(p) for p in request.local_packages]
    if request.flags.package_path:
        files.insert(0, build_sdist(request.flags.package_path))
    if request.dry_run == "client":
        # kubectl's client dry run does not contact the server, so the built-in catalog decides.
        from kaip.aiplatform.builtin_catalog import BUILTIN

        options = submit.resolve_backend(request.options, None, Catalog(BUILTIN), tuning=_tuning(request))
        options, assumed = submit.resolve_mpi_api(options, None)
        if assumed:
            notify(assumed)
        plan = _plan(request, options, Catalog(BUILTIN), files, notify)
        for line in submit.dry_run_notes(plan, request.options.namespace):
            notify(f"Note: {line}")
        return Submitted(plan.objects, None)
    from kaip.aiplatform import jobs, preflight
    from kaip.kube import connect

    kube = connect(target)
    catalog, warning = jobs.read_catalog(kube)
    if warning:
        notify(f"Warning: {warning}")
    options = replace(request.options, namespace=kube.namespace)
    options = submit.resolve_backend(options, kube, catalog, tuning=_tuning(request))  # TrainJob or v1
    options, _ = submit.resolve_mpi_api(options, kube)  # the MPIJob version the cluster serves
    options, tenant_warning = preflight.with_tenancy(kube, catalog, options)
    if tenant_warning:
        notify(f"Warning: {tenant_warning}")
    plan = _plan(request, options, catalog, files, notify)
    preflight.check_claims(kube, plan.main, options)  # --volume: before anything is created
    server_dry_run = request.dry_run == "server"
    for line in submit.enable_katib(kube, plan, server_dry_run=server_dry_run):
        notify(f"Note: {line}")
    created = submit.create(kube, plan, server_dry_run=server_dry_run, stager=storage_stager())
    return Submitted(created, kube)


def _tuning(request: SubmitRequest) -> bool:
    """Whether the ``--config`` asks for hyperparameter tuning (a Katib Experiment of v1 trials)."""
    ti = (request.config or {}).get("trainingInput") or {}
    return bool(ti.get("hyperparameters")) if isinstance(ti, dict) else False


def _plan(
    request: SubmitRequest,
    options: ClusterOptions,
    catalog: Catalog,
    files: Sequence[LocalFile],
    notify: Callable[[str], None],
) -> submit.Plan:
    plan = submit.plan(
        flags=request.flags,
        config=request.config,
        options=options,
        catalog=catalog,
        local_files=files,
        remote_packages=request.remote_packages,
    )
    for warning in plan.warnings:
        notify(f"Warning: {warning}")
    return plan
