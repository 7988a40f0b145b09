"""What `jobs submit training` reads from the cluster before it creates anything: the namespace's
tenant (the catalog's tenancy defaults, :mod:`kaip.aiplatform.tenancy`) and the PVCs ``--volume``
names, refused when missing or when their access modes cannot serve every Pod of the job
(:func:`kaip.aiplatform.volumes.refusal`). The decisions are pure; this module only reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kaip.aiplatform import tenancy
from kaip.aiplatform import volumes as existing
from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.manifests import ClusterOptions, replica_count
from kaip.errors import UsageError
from kaip.resources import kubeflow as kf

if TYPE_CHECKING:
    from kaip.kube.client import Kube


def with_tenancy(kube: Kube, catalog: Catalog, options: ClusterOptions) -> tuple[ClusterOptions, str]:
    """``options`` with the catalog's tenancy for the namespace under the flags, and a warning when
    the namespace, whose label names the tenant, could not be read."""
    from kaip.kube.errors import Forbidden
    from kaip.resources.kinds import NAMESPACES

    labels: Mapping[str, str] = {}
    warning = ""
    label = tenancy.label_of(catalog)
    if label:
        namespace = options.namespace or kube.namespace
        try:
            labels = kube.get(NAMESPACES, namespace).get("metadata", {}).get("labels") or {}
        except Forbidden:
            warning = (
                f"cannot read namespace {namespace} (forbidden), whose label {label} names the tenant; "
                "the catalog's tenant defaults are not applied (give --run-as-user and the others)"
            )
    chosen = options.tenancy.over(tenancy.defaults(catalog, labels))
    return replace(options, tenancy=chosen), warning


def pods_at_once(main: Mapping[str, Any]) -> int:
    """How many Pods of the job (or of an Experiment's parallel trials) may run at the same time."""
    if main.get("kind") == kf.EXPERIMENTS.kind:
        spec = main.get("spec") or {}
        trial = (spec.get("trialTemplate") or {}).get("trialSpec") or {}
        return int(spec.get("parallelTrialCount") or 1) * pods_at_once(trial)
    from kaip.aiplatform import trainjobs

    if main.get("kind") == trainjobs.KIND:
        return trainjobs.node_count(main)
    return replica_count(main)


def check_claims(kube: Kube, main: Mapping[str, Any], options: ClusterOptions) -> None:
    """Refuse, before anything is created, a ``--volume`` whose PVC is missing or cannot serve the job."""
    from kaip.kube.errors import NotFound
    from kaip.resources.kinds import PVCS

    pods = pods_at_once(main) if options.volumes else 0
    for volume in options.volumes:
        namespace = options.namespace or kube.namespace
        try:
            claim = kube.get(PVCS, volume.claim, namespace=namespace)
        except NotFound:
            raise UsageError(
                f"{volume.flag}: PersistentVolumeClaim {volume.claim} not found in namespace {namespace}; "
                "name an existing claim ('kubectl get pvc') or create it first"
            ) from None
        why = existing.refusal(volume, claim, pods=pods)
        if why:
            raise UsageError(why)
