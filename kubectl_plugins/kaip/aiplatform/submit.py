"""`jobs submit training`: decide every object from the flags (pure :func:`plan`), then create them
in order (:func:`create`): staged packages, preload PVCs, then the job or its Katib Experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kaip.aiplatform import katib, manifests, packages, training
from kaip.aiplatform.catalog import Catalog
from kaip.errors import UsageError
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import CONFIGMAPS, PVCS, Resource

if TYPE_CHECKING:
    from kaip.kube.client import Kube


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
    if uris or local_files:
        ti["packageUris"] = [*uris, *(f"local:{f.name}" for f in local_files)]
    warnings = training.check_input(ti)
    labels = {**(doc.get("labels") or {}), **flags.labels}
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
    if staging.additions.install and not ti.get("pythonModule"):
        raise UsageError("--packages and --package-path need --module-name: the module to run from them")
    job = manifests.build_job(
        job_id=job_id, ti=ti, labels=labels, catalog=catalog, options=options, additions=staging.additions
    )
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
    return kf.BY_KIND[kind].resource


def create(
    kube: Kube, the_plan: Plan, *, server_dry_run: bool, stager: packages.BucketStager | None
) -> list[dict[str, Any]]:
    """Create the plan's objects in order; a reused preload PVC of the same source is kept."""
    from kaip.kube.errors import Conflict, api_missing

    needed = [resource_of(the_plan.main)]
    if needed[0] is kf.EXPERIMENTS:  # its trials are jobs of the chosen kind
        needed.append(kf.BY_KIND[the_plan.main["spec"]["trialTemplate"]["trialSpec"]["kind"]].resource)
    for resource in needed:
        if not kube.served(resource):
            raise api_missing(resource)
    if not server_dry_run:
        packages.upload_all(the_plan.staging, stager)
    created = []
    for obj in the_plan.objects:
        resource = resource_of(obj)
        try:
            created.append(_create_strict(kube, resource, obj, dry_run=server_dry_run))
        except Conflict:
            if resource is not PVCS:
                raise
            created.append(_reuse_claim(kube, obj))
    if not server_dry_run:
        _hand_packages_to(kube, created)
    return created


def _hand_packages_to(kube: Kube, created: list[dict[str, Any]]) -> None:
    """The packages ConfigMap belongs to the job: deleting the job deletes it (garbage collection)."""
    main = created[-1]["metadata"]
    owner = {
        "apiVersion": created[-1]["apiVersion"],
        "kind": created[-1]["kind"],
        "name": main["name"],
        "uid": main["uid"],
    }
    for obj in created[:-1]:
        if obj.get("kind") == CONFIGMAPS.kind:
            kube.patch(CONFIGMAPS, obj["metadata"]["name"], {"metadata": {"ownerReferences": [owner]}})


def _create_strict(kube: Kube, resource: Resource, obj: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
    """POST with ``fieldValidation=Strict``, as kubectl create does: an unknown field is an error."""
    ns = (obj.get("metadata") or {}).get("namespace") or kube.namespace
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

    name = claim["metadata"]["name"]
    existing = kube.get(PVCS, name, namespace=claim["metadata"].get("namespace"))
    want = claim["metadata"]["annotations"][preload.ANNOTATION_SOURCE]
    have = ((existing.get("metadata") or {}).get("annotations") or {}).get(preload.ANNOTATION_SOURCE)
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
