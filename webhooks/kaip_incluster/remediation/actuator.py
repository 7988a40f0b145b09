"""Carries the step machine's node and Pod actions out against the API server; each is idempotent.

Node writes carry the resourceVersion they were decided on (a merge patch with it is refused with
409 when the Node changed), and are tried again on a fresh read: a cordon never drops a taint that
someone else added meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kaip.kube.errors import Conflict, NotFound, ServerError
from kaip.resources import kinds
from kaip.resources import nodes as node_names
from kaip.resources import remediation as names

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger(__name__)

OUR_TAINT = {"key": node_names.TAINT_REMEDIATION, "value": "", "effect": "NoSchedule"}


@dataclass(frozen=True)
class Eviction:
    evicted: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()  # refused: a PodDisruptionBudget allows no disruption now


def _patch_node(kube: Kube, name: str, build: Any, *, attempts: int = 5) -> None:
    """Read the Node, build a merge patch from it, send it guarded by resourceVersion; retry on 409."""
    for _ in range(attempts):
        try:
            node = kube.get(kinds.NODES, name)
        except NotFound:
            return
        patch = build(node)
        if patch is None:
            return
        patch.setdefault("metadata", {})["resourceVersion"] = node["metadata"]["resourceVersion"]
        try:
            kube.patch(kinds.NODES, name, patch, field_manager=names.COMPONENT)
            return
        except Conflict:
            continue
    raise Conflict(f"node {name} kept changing; its update was given up for this round", status=409)


def cordon(kube: Kube, node: str) -> None:
    def build(obj: Mapping[str, Any]) -> dict[str, Any] | None:
        spec = obj.get("spec") or {}
        taints = list(spec.get("taints") or [])
        has = any(t.get("key") == node_names.TAINT_REMEDIATION for t in taints)
        if spec.get("unschedulable") and has:
            return None
        return {"spec": {"unschedulable": True, "taints": taints if has else [*taints, dict(OUR_TAINT)]}}

    _patch_node(kube, node, build)


def uncordon(kube: Kube, node: str, *, keep_unschedulable: bool) -> None:
    def build(obj: Mapping[str, Any]) -> dict[str, Any] | None:
        spec = obj.get("spec") or {}
        taints = [t for t in spec.get("taints") or [] if t.get("key") != node_names.TAINT_REMEDIATION]
        changed = len(taints) != len(spec.get("taints") or [])
        unschedulable = bool(spec.get("unschedulable")) and keep_unschedulable
        if not changed and bool(spec.get("unschedulable")) == unschedulable:
            return None
        return {"spec": {"unschedulable": unschedulable or None, "taints": taints or None}}

    _patch_node(kube, node, build)


def mark(kube: Kube, node: str, phase: str) -> None:
    """The label ``kubectl node-health`` shows; removed with ``phase == ""``."""
    try:
        kube.patch(
            kinds.NODES,
            node,
            {"metadata": {"labels": {node_names.LABEL_REMEDIATION: phase or None}}},
            field_manager=names.COMPONENT,
        )
    except NotFound:
        return


def evictable_pods(kube: Kube, node: str) -> list[dict[str, Any]]:
    """Pods a drain must move: not finished, not mirror Pods, not DaemonSet Pods, not our own Jobs."""
    pods = kube.list_all(kinds.PODS, all_namespaces=True, field_selector=f"spec.nodeName={node}")
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            continue
        if any(ref.get("kind") == "DaemonSet" for ref in meta.get("ownerReferences") or ()):
            continue
        if (meta.get("labels") or {}).get(names.LABEL_COMPONENT) == names.COMPONENT_JOB:
            continue
        out.append(pod)
    return out


def evict(kube: Kube, pods: tuple[str, ...]) -> Eviction:
    """POST an Eviction for each Pod ("namespace/name"); the API server checks their PDBs."""
    evicted, blocked = [], []
    for ref in pods:
        namespace, _, name = ref.partition("/")
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        path = kinds.PODS.path(namespace=namespace, name=name, subresource="eviction")
        try:
            kube.request("POST", path, body=body)
            evicted.append(ref)
        except NotFound:
            evicted.append(ref)
        except ServerError as exc:
            if exc.status != 429:
                raise
            blocked.append(ref)
    return Eviction(tuple(evicted), tuple(blocked))


def run_job(kube: Kube, job: Mapping[str, Any]) -> None:
    """Create the Job; one of the same name already there is this same Job (created before a crash)."""
    try:
        kube.create(kinds.JOBS, job, namespace=job["metadata"]["namespace"], field_manager=names.COMPONENT)
    except Conflict:
        log.info("job %s already exists; adopting it", job["metadata"]["name"])


def delete_job(kube: Kube, namespace: str, name: str) -> None:
    kube.delete(kinds.JOBS, name, namespace=namespace, propagation="Background", ignore_missing=True)
