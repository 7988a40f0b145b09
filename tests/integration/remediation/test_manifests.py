"""The shipped manifests on the real API server: the controller, as the ServiceAccount of
``manifests/remediation/rbac.yaml`` and nothing more, remediates a kwok node end to end (so the
least-privilege RBAC is enough), and the Deployment passes the server's validation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from remediation_testlib import (
    ROOT,
    NodeProblemDetectorStandIn,
    ProcessController,
    budget,
    config,
    create_nodes,
    delete_nodes,
    get_or_none,
    gpu_rule,
    set_condition,
)

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources import remediation as names
from kaip.resources.kinds import Resource
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.waiting import wait_for

pytestmark = pytest.mark.integration

MANIFESTS = ROOT / "manifests" / "remediation"
NAMESPACE = "kaip-remediation"
SA_USER = f"system:serviceaccount:{NAMESPACE}:kaip-remediator"
RBAC = "rbac.authorization.k8s.io"
KINDS = {
    "Namespace": kinds.NAMESPACES,
    "ServiceAccount": kinds.SERVICEACCOUNTS,
    "ClusterRole": Resource(RBAC, "v1", "clusterroles", "ClusterRole", namespaced=False),
    "ClusterRoleBinding": Resource(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    "Role": Resource(RBAC, "v1", "roles", "Role"),
    "RoleBinding": Resource(RBAC, "v1", "rolebindings", "RoleBinding"),
    "Deployment": Resource("apps", "v1", "deployments", "Deployment"),
}


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


@pytest.fixture(scope="module")
def installed(remediation_api: Kube, cluster_controllers: ControlPlane) -> Iterator[Kube]:
    """Namespace and RBAC of the manifests, once for this module (a namespace takes a while to go)."""
    remediation = remediation_api
    docs = documents("namespace.yaml") + documents("rbac.yaml")
    for doc in docs:
        remediation.create(KINDS[doc["kind"]], doc, namespace=doc["metadata"].get("namespace"))
    try:
        yield remediation
    finally:
        for doc in reversed(docs):
            resource = KINDS[doc["kind"]]
            remediation.delete(
                resource,
                doc["metadata"]["name"],
                namespace=doc["metadata"].get("namespace"),
                ignore_missing=True,
            )


def test_the_deployment_is_valid_and_runs_two_replicas(installed: Kube) -> None:
    (deployment,) = documents("deployment.yaml")
    created = installed.create(KINDS["Deployment"], deployment, namespace=NAMESPACE, dry_run=True)
    assert created["spec"]["replicas"] == 2
    assert created["spec"]["template"]["spec"]["serviceAccountName"] == "kaip-remediator"
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = {Path(r).name for r in kustomization["resources"]}
    assert {"deployment.yaml", "rbac.yaml", "namespace.yaml"} <= listed
    assert {p.name for p in (MANIFESTS / "crds").glob("*.yaml")} <= listed


def test_the_service_account_of_the_manifests_can_do_a_whole_remediation(
    kwok: ControlPlane, installed: Kube, remediation: Kube, tmp_path: Path
) -> None:
    pool = f"rbac-{uuid.uuid4().hex[:6]}"
    (node,) = create_nodes(installed, pool, 1, pool=pool)
    npd = NodeProblemDetectorStandIn(installed, NAMESPACE)
    as_sa = kwok.user_kubeconfig(
        SA_USER, groups=("system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}")
    )
    controller: ProcessController | None = None
    try:
        installed.create(
            kinds.PODS,
            {
                "metadata": {"name": f"work-{uuid.uuid4().hex[:4]}", "namespace": "default"},
                "spec": {
                    "nodeName": node,
                    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists"}],
                    "containers": [{"name": "w", "image": "w"}],
                },
            },
            namespace="default",
        )
        installed.create(names.RULES, gpu_rule("rbac-rule", pool=pool))
        installed.create(names.BUDGETS, budget("rbac", pool=pool, max_unavailable=1))
        # One node of one is the whole pool: the default breaker would stop it.
        installed.create(names.CONFIGS, config({"circuitBreaker": {"threshold": 2}}))
        controller = ProcessController(
            kwok, namespace=NAMESPACE, identity="remediator-sa", log_dir=tmp_path, kubeconfig=as_sa
        )
        set_condition(installed, node, "GPUPendingPage", "True")
        wait_for(
            lambda: (
                ((get_or_none(installed, names.REMEDIATIONS, node) or {}).get("status") or {}).get("phase")
                == names.SUCCEEDED
            ),
            timeout=120,
            what="remediated by the ServiceAccount",
        )
        log = (tmp_path / "remediator-sa.log").read_text()
        assert "Forbidden" not in log, log[-2000:]
        assert not installed.get(kinds.NODES, node)["spec"].get("unschedulable")
    finally:
        npd.stop.set()
        if controller is not None:
            controller.stop()
        delete_nodes(installed, [node])
        for job in installed.list(kinds.JOBS, namespace=NAMESPACE)["items"]:
            installed.delete(kinds.JOBS, job["metadata"]["name"], namespace=NAMESPACE, ignore_missing=True)
