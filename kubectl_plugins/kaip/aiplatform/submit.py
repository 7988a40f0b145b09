"""`jobs submit training`: decide every object from the flags (pure :func:`plan`), then create them
in order (:func:`create`): staged packages, preload PVCs, then the job or its Katib Experiment.

The MPIJob version is decided before the plan (:func:`resolve_mpi_api`): what the cluster serves when
it is asked, the default (said on stderr) when it is not. Before an Experiment is created,
:func:`enable_katib` makes its namespace one that Katib's webhooks admit it in, or refuses."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from kaip.aiplatform import katib, manifests, packages, tenancy, training, trainjob, trainjobs
from kaip.aiplatform.catalog import Catalog
from kaip.errors import UsageError
from kaip.kube.objects import annotations_of, labels_of, name_of, namespace_of, uid_of
from kaip.resources import kubeflow as kf
from kaip.resources import trainer
from kaip.resources.kinds import CONFIGMAPS, PVCS, SERVICEACCOUNTS, Resource

if TYPE_CHECKING:
    from kaip.kube.client import Kube
    from kaip.kube.errors import ApiError


@dataclass(frozen=True)
class Plan:
    objects: list[dict[str, Any]]
    staging: packages.Staging
    warnings: list[str] = field(default_factory=list)

    @property
    def main(self) -> dict[str, Any]:
        """The job, or the Experiment that runs it."""
        return self.objects[-1]


def plan(
    *,
    flags: training.SubmitFlags,
    config: dict[str, Any] | None,
    options: manifests.ClusterOptions,
    catalog: Catalog,
    local_files: Sequence[packages.LocalFile] = (),
    remote_packages: Sequence[str] = (),
) -> Plan:
    """Every object `jobs submit training` creates, decided from its inputs alone."""
    doc = config or {}
    job_id = flags.job_id or str(doc.get("jobId") or "")
    training.check_job_id(job_id)
    ti = training.merge_input(doc.get("trainingInput") or {}, training.flags_input(flags))
    uris = [*(str(u) for u in ti.get("packageUris") or [] if packages.is_remote(str(u))), *remote_packages]
    if any(not packages.is_remote(str(u)) for u in ti.get("packageUris") or []):
        raise UsageError(
            "trainingInput.packageUris: only gs:// and s3:// URIs (give local files with --packages)"
        )
    name = training.dns_name(job_id)
    staging = packages.plan(
        job_name=name,
        job_id=job_id,
        files=local_files,
        remote=uris,
        staging_bucket=flags.staging_bucket,
        job_dir=ti.get("jobDir"),
        catalog=catalog,
        namespace=options.namespace,
    )
    if uris or local_files:
        # Where the replicas fetch each local package from: its bucket URI, or the ConfigMap's file.
        staged = [uri for _, uri in staging.uploads] or [f"local:{f.name}" for f in local_files]
        ti["packageUris"] = [*uris, *staged]
    warnings = training.check_input(ti)
    labels = {**(doc.get("labels") or {}), **flags.labels}
    if staging.additions.install and not ti.get("pythonModule"):
        raise UsageError("--packages and --package-path need --module-name: the module to run from them")
    if options.backend == trainer.BACKEND_TRAINER_V2:
        built, more = trainjob.build_trainjob(
            job_id=job_id, ti=ti, labels=labels, catalog=catalog, options=options, additions=staging.additions
        )
        claims = manifests.data_claims(
            job_name=name, options=options, catalog=catalog, replicas=trainjobs.node_count(built[-1])
        )
        return Plan([*staging.objects, *claims, *built], staging, [*warnings, *more])
    job = manifests.build_job(
        job_id=job_id,
        ti=ti,
        labels=labels,
        catalog=catalog,
        options=options,
        additions=staging.additions,
        warnings=warnings,
    )
    warnings += tenancy.operator_notes(job, options.tenancy)
    claims = manifests.data_claims(
        job_name=name, options=options, catalog=catalog, replicas=manifests.replica_count(job)
    )
    main = job
    if ti.get("hyperparameters"):
        main, more = katib.experiment(job, ti["hyperparameters"])
        warnings += more
    return Plan([*staging.objects, *claims, main], staging, warnings)


def resource_of(obj: dict[str, Any]) -> Resource:
    kind = str(obj["kind"])
    if kind == CONFIGMAPS.kind:
        return CONFIGMAPS
    if kind == PVCS.kind:
        return PVCS
    if kind == kf.EXPERIMENTS.kind:
        return kf.EXPERIMENTS
    if kind == SERVICEACCOUNTS.kind:
        return SERVICEACCOUNTS
    if trainjobs.is_trainjob(obj):
        return trainer.TRAINJOBS
    return kf.kind_of(obj).resource


# -- which MPIJob ----------------------------------------------------------------------------------
def choose_mpi_api(*, wanted: str | None, served: Collection[str] | None) -> tuple[str, str]:
    """The MPIJob version to render, and the line to tell the user when it is only assumed.

    ``served`` is what discovery found (None: the cluster was not asked). training-operator's v1 and
    mpi-operator's v2beta1 share the CRD name ``mpijobs.kubeflow.org``, so a cluster serves one.
    """
    if served is None:
        if wanted:
            return wanted, ""
        default = kf.DEFAULT_MPI_VERSION
        other = next(v for v in kf.MPI_KINDS if v != default)
        return default, (
            f"Note: assumed MPIJob {kf.GROUP}/{default} ({kf.MPI_OPERATORS[default]}); the cluster was "
            f"not asked (--mpi-api {other} renders {kf.MPI_OPERATORS[other]}'s {kf.GROUP}/{other})"
        )
    if wanted and served and wanted not in served:
        from kaip.kube.errors import ApiMissing

        have = ", ".join(f"{kf.GROUP}/{v} ({kf.MPI_OPERATORS[v]})" for v in served)
        raise ApiMissing(
            f"--mpi-api {wanted}: the cluster serves MPIJob {have}, not {kf.GROUP}/{wanted}; "
            "leave --mpi-api out to use what it serves",
            status=404,
            reason="NotFound",
        )
    # Nothing served: the default, whose missing CRD create() names with its install command.
    return wanted or next((v for v in kf.MPI_KINDS if v in served), kf.DEFAULT_MPI_VERSION), ""


def served_mpi_apis(kube: Kube) -> list[str]:
    """The MPIJob versions the cluster serves (discovery of each group version)."""
    return [version for version, kind in kf.MPI_KINDS.items() if kube.served(kind.resource)]


def resolve_mpi_api(
    options: manifests.ClusterOptions, kube: Kube | None
) -> tuple[manifests.ClusterOptions, str]:
    """``options`` with the MPIJob version settled (asking ``kube`` when given), and a line for the
    user when it was assumed; other frameworks pass through."""
    if options.framework != kf.MPIJOB.framework or options.backend == trainer.BACKEND_TRAINER_V2:
        if options.mpi_api:
            raise UsageError(f"--mpi-api is for --framework mpi on --backend v1, not {options.framework}")
        return options, ""
    served = None if kube is None else served_mpi_apis(kube)
    version, said = choose_mpi_api(wanted=options.mpi_api, served=served)
    return replace(options, mpi_api=version), said


def resolve_backend(
    options: manifests.ClusterOptions, kube: Kube | None, catalog: Catalog, *, tuning: bool
) -> manifests.ClusterOptions:
    """``options`` with the backend settled: ``--backend``, the catalog's, or whether the cluster
    serves TrainJob (discovery, when ``kube`` is given)."""
    served = None
    if kube is not None and not options.backend and options.framework in trainjob.FRAMEWORKS:
        served = kube.served(trainer.TRAINJOBS)
    backend = trainjob.choose_backend(
        wanted=options.backend, framework=options.framework, served=served, catalog=catalog, tuning=tuning
    )
    return replace(options, backend=backend)


def create(
    kube: Kube, the_plan: Plan, *, server_dry_run: bool, stager: packages.BucketStager | None
) -> list[dict[str, Any]]:
    """Create the plan's objects in order; a reused preload PVC of the same source is kept."""
    from kaip.kube.errors import Conflict, api_missing

    needed = [resource_of(the_plan.main)]
    if needed[0] is kf.EXPERIMENTS:  # its trials are jobs of the chosen kind
        needed.append(kf.kind_of(the_plan.main["spec"]["trialTemplate"]["trialSpec"]).resource)
    for resource in needed:
        if not kube.served(resource):
            raise api_missing(resource)
    job_id = _job_id(the_plan.main)
    _refuse_existing(kube, job_id)  # before the packages ConfigMap, whose name would clash first
    if not server_dry_run:
        packages.upload_all(the_plan.staging, stager)
    created = []
    for obj in the_plan.objects:
        resource = resource_of(obj)
        try:
            created.append(_create_strict(kube, resource, obj, dry_run=server_dry_run))
        except Conflict as exc:
            if obj is the_plan.main:  # created meanwhile
                raise _exists(job_id, exc) from exc
            if resource is not PVCS:
                raise
            created.append(_reuse_claim(kube, obj))
    if not server_dry_run:
        _hand_packages_to(kube, created)
    return created


def _job_id(main: dict[str, Any]) -> str:
    return str(labels_of(main).get(kf.LABEL_JOB_ID) or name_of(main))


def _exists(job_id: str, cause: ApiError | None = None) -> ApiError:
    """gcloud's job ids are unique in a project: here, in a namespace, whatever the job's kind."""
    from kaip.kube.errors import Conflict

    return Conflict(
        f"job {job_id} already exists (see 'kubectl ai-platform jobs describe {job_id}')",
        status=409,
        reason="AlreadyExists",
        details=cause.details if cause else {"name": job_id},
    )


def _refuse_existing(kube: Kube, job_id: str) -> None:
    from kaip.aiplatform.jobs import find
    from kaip.kube.errors import NotFound

    try:
        find(kube, job_id)
    except NotFound:  # ApiMissing too: nothing of that kind can exist
        return
    raise _exists(job_id)


def _hand_packages_to(kube: Kube, created: list[dict[str, Any]]) -> None:
    """The packages ConfigMap belongs to the job: deleting the job deletes it (garbage collection)."""
    main = created[-1]
    owner = {
        "apiVersion": main["apiVersion"],
        "kind": main["kind"],
        "name": name_of(main),
        "uid": uid_of(main),
    }
    for obj in created[:-1]:
        if obj.get("kind") in (CONFIGMAPS.kind, SERVICEACCOUNTS.kind):  # a TrainJob's --credentials account
            kube.patch(resource_of(obj), name_of(obj), {"metadata": {"ownerReferences": [owner]}})


def _create_strict(kube: Kube, resource: Resource, obj: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
    """POST with ``fieldValidation=Strict``, as kubectl create does: an unknown field is an error."""
    ns = namespace_of(obj) or kube.namespace
    query = {
        "fieldManager": "kubectl-ai-platform",
        "fieldValidation": "Strict",
        "dryRun": "All" if dry_run else None,
    }
    result: dict[str, Any] = kube.request(
        "POST", resource.path(namespace=ns), query=query, body=obj, resource=resource
    )
    return result


def _reuse_claim(kube: Kube, claim: dict[str, Any]) -> dict[str, Any]:
    from kaip.resources import preload

    name = name_of(claim)
    existing = kube.get(PVCS, name, namespace=namespace_of(claim))
    want = annotations_of(claim)[preload.ANNOTATION_SOURCE]
    have = annotations_of(existing).get(preload.ANNOTATION_SOURCE)
    if not _same_source(have, want):
        raise UsageError(
            f"--data {name}: PVC {name} already exists with source {have or '(none)'}, not {want}; "
            "choose another NAME"
        )
    return existing


def _same_source(have: str | None, want: str) -> bool:
    """Whether an existing PVC's source annotation (perhaps written by hand) names ``want``."""
    from kaip.storage.errors import InvalidSource
    from kaip.storage.source import parse_source

    try:
        return have is not None and parse_source(have).url == want
    except InvalidSource:
        return False


# -- Katib's namespace label -----------------------------------------------------------------------
def enable_katib(
    kube: Kube,
    the_plan: Plan,
    *,
    server_dry_run: bool,
    sleep: Callable[[float], None] = time.sleep,
    tries: int = 20,
) -> list[str]:
    """Make the Experiment's namespace one where Katib works (:data:`katib.INJECTION_LABEL`) before
    anything is created, and say what was done. Other jobs, and clusters without Katib (:func:`create`
    names what is missing), need nothing.

    The label is added when the user may patch the namespace, else the refusal gives the command for
    an admin. When the user may not read namespaces, a server dry run of the Experiment asks Katib's
    own webhook whether the label is there.
    """
    from kaip.kube.errors import Forbidden
    from kaip.resources.kinds import NAMESPACES

    exp = the_plan.main
    if exp["kind"] != kf.EXPERIMENTS.kind or not kube.served(kf.EXPERIMENTS):
        return []
    ns = str(namespace_of(exp) or kube.namespace)
    try:
        if katib.injection_enabled(kube.get(NAMESPACES, ns)):
            return []
    except Forbidden:
        if _label_refusal(kube, exp) is None:
            return []
    try:
        kube.patch(NAMESPACES, ns, katib.label_patch(), dry_run=server_dry_run)
    except Forbidden:
        raise Forbidden(
            f"Katib runs Experiments only in namespaces labelled {katib.INJECTION_LABEL}=enabled and you "
            f"may not label namespace {ns}; ask a cluster admin to run: {katib.label_command(ns)}",
            status=403,
            reason="Forbidden",
        ) from None
    if server_dry_run:
        return [
            f"namespace {ns} lacks label {katib.INJECTION_LABEL}=enabled, which a dry run does not add, "
            "so Katib's webhook refuses the Experiment; without --dry-run kaip labels it first"
        ]
    # Katib's webhook reads the namespace from its watch cache, which may not show the label yet.
    refusal = _label_refusal(kube, exp)
    for _ in range(tries):
        if refusal is None:
            break
        sleep(0.5)
        refusal = _label_refusal(kube, exp)
    if refusal is not None:
        raise refusal
    return [
        f"labelled namespace {ns} {katib.INJECTION_LABEL}=enabled: Katib admits Experiments and "
        "injects its metrics collector only in namespaces so labelled"
    ]


def dry_run_notes(the_plan: Plan, namespace: str | None) -> list[str]:
    """What a client dry run, which does not look at the namespace, says about Katib's label."""
    return [katib.dry_run_note(namespace)] if the_plan.main["kind"] == kf.EXPERIMENTS.kind else []


def _label_refusal(kube: Kube, exp: dict[str, Any]) -> ApiError | None:
    """Katib's refusal of ``exp`` for the namespace label, from a server dry run; None if admitted."""
    from kaip.kube.errors import Invalid

    try:
        _create_strict(kube, kf.EXPERIMENTS, exp, dry_run=True)
    except Invalid as refused:
        if katib.refused_for_label(refused.message):
            return refused
        raise
    return None
