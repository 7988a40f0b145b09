"""With the webhook down, a Pod does not start on a preloaded volume whose data is not loaded.

The ValidatingAdmissionPolicy of manifests/data-loader/policy.yaml runs in the real API server
(no webhook is registered here, which is the webhook-down case). Its binding is the manifest's,
narrowed to the test's namespace so that other tests of the session are not affected.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kaip.kube.client import Kube, connect
from kaip.kube.config import ClusterTarget
from kaip.kube.errors import Forbidden
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.dataloader import BINDINGS, CONTROLLER_USER, POLICIES, POLICY_FILE, ROLEBINDINGS, ROLES

pytestmark = pytest.mark.integration


def install(admin_kube: Kube, namespace: str, policy_name: str) -> str:
    """The manifest's policy and binding, renamed for this test and bound to its namespace only."""
    docs = [d for d in yaml.safe_load_all(POLICY_FILE.read_text()) if d]
    policy = next(
        d for d in docs if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == policy_name
    )
    binding = next(
        d
        for d in docs
        if d["kind"] == "ValidatingAdmissionPolicyBinding" and d["spec"]["policyName"] == policy_name
    )
    name = f"{policy_name}-{namespace[-6:]}"
    policy["metadata"]["name"] = name
    binding["metadata"]["name"] = name
    binding["spec"]["policyName"] = name
    selector = binding["spec"].setdefault("matchResources", {}).setdefault("namespaceSelector", {})
    selector.setdefault("matchExpressions", []).append(
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
    )
    admin_kube.create(POLICIES, policy)
    admin_kube.create(BINDINGS, binding)
    return name


@pytest.fixture
def policy(admin_kube: Kube, namespace: str) -> Iterator[str]:
    name = install(admin_kube, namespace, "kaip-data-preload-gate")
    yield name
    admin_kube.delete(BINDINGS, name, ignore_missing=True)
    admin_kube.delete(POLICIES, name, ignore_missing=True)


@pytest.fixture
def as_controller(admin_kube: Kube, namespace: str, control_plane: ControlPlane) -> Iterator[Kube]:
    """The controller's identity, allowed to patch Pods in the namespace, under the pod-updates policy."""
    name = install(admin_kube, namespace, "kaip-data-loader-pod-updates")
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}]
    admin_kube.create(ROLES, {"metadata": {"name": "patch-pods"}, "rules": rules}, namespace=namespace)
    admin_kube.create(
        ROLEBINDINGS,
        {
            "metadata": {"name": "patch-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "patch-pods"},
            "subjects": [{"kind": "User", "name": CONTROLLER_USER, "apiGroup": "rbac.authorization.k8s.io"}],
        },
        namespace=namespace,
    )
    config = control_plane.user_kubeconfig(CONTROLLER_USER, groups=("system:serviceaccounts",))
    yield connect(ClusterTarget(kubeconfig=str(config), namespace=namespace))
    admin_kube.delete(BINDINGS, name, ignore_missing=True)
    admin_kube.delete(POLICIES, name, ignore_missing=True)


def pvc(name: str, *, source: str | None) -> dict[str, Any]:
    notes = {"preload.kaip.dev/source": source} if source else {}
    return {
        "metadata": {"name": name, "annotations": notes},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def pod(
    name: str, claims: list[str], *, gated: bool = False, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "busybox"}],
        "volumes": [
            {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
        ],
    }
    if gated:
        spec["schedulingGates"] = [{"name": "kaip.dev/data-preload"}]
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def refused(kube: Kube, obj: dict[str, Any]) -> str | None:
    """The refusal message of a server-side dry-run create, None when admitted."""
    try:
        kube.create(kinds.PODS, obj, dry_run=True)
    except Forbidden as exc:
        return exc.message
    return None


def wait_until_enforced(kube: Kube, probe: dict[str, Any], timeout: float = 30.0) -> str:
    # A new policy and its parameters reach the API server's admission asynchronously.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = refused(kube, probe)
        if message:
            return message
        time.sleep(0.5)
    raise AssertionError("the policy was not enforced in time")


def test_a_pod_without_the_gate_is_refused_until_the_data_is_loaded(kube: Kube, policy: str) -> None:
    kube.create(kinds.PVCS, pvc("data", source="s3://bucket/set"))
    kube.create(kinds.PVCS, pvc("scratch", source=None))

    message = wait_until_enforced(kube, pod("train", ["data", "scratch"]))
    assert 'PVC "data" is preloaded from s3://bucket/set' in message
    assert "kaip.dev/data-preload" in message

    # Gated (what the webhook does), or mounting only ordinary PVCs, or the loader itself: admitted.
    assert refused(kube, pod("gated", ["data"], gated=True)) is None
    assert refused(kube, pod("plain", ["scratch"])) is None
    assert (
        refused(kube, pod("loader", ["data"], labels={"app.kubernetes.io/component": "kaip-data-loader"}))
        is None
    )

    kube.patch(
        kinds.PVCS,
        "data",
        {
            "status": {
                "conditions": [
                    {"type": "DataLoaded", "status": "True", "reason": "Succeeded", "message": "done"}
                ]
            }
        },
        kind="strategic",
        subresource="status",
    )
    deadline = time.monotonic() + 30
    while refused(kube, pod("train", ["data", "scratch"])) is not None:
        assert time.monotonic() < deadline, "a Pod on loaded data stayed refused"
        time.sleep(0.5)
    kube.create(kinds.PODS, pod("train", ["data", "scratch"]))


def test_a_failed_load_keeps_refusing(kube: Kube, policy: str) -> None:
    kube.create(kinds.PVCS, pvc("data", source="gs://bucket/set"))
    wait_until_enforced(kube, pod("train", ["data"]))
    kube.patch(
        kinds.PVCS,
        "data",
        {
            "status": {
                "conditions": [
                    {"type": "DataLoaded", "status": "False", "reason": "SourceNotFound", "message": "x"}
                ]
            }
        },
        kind="strategic",
        subresource="status",
    )
    time.sleep(2)
    assert refused(kube, pod("train", ["data"])) is not None


def test_the_controller_may_remove_the_gate_and_change_nothing_else(kube: Kube, as_controller: Kube) -> None:
    gated = pod("train", [], gated=True, labels={"team": "vision"})
    gated["spec"]["schedulingGates"].insert(0, {"name": "kueue.x-k8s.io/admission"})
    kube.create(kinds.PODS, gated)

    def refusal(patch: Any, kind: str = "merge") -> str | None:
        try:
            as_controller.patch(kinds.PODS, "train", patch, kind=kind, dry_run=True)
        except Forbidden as exc:
            return exc.message
        return None

    relabel = {"metadata": {"labels": {"team": "mine"}}}
    deadline = time.monotonic() + 30
    while (message := refusal(relabel)) is None:
        assert time.monotonic() < deadline, "the policy was not enforced in time"
        time.sleep(0.5)
    assert "labels" in message
    image = [{"op": "replace", "path": "/spec/containers/0/image", "value": "evil:latest"}]
    assert "containers" in (refusal(image, "json") or "")
    other_gate = [{"op": "remove", "path": "/spec/schedulingGates/0"}]
    assert "kaip.dev/data-preload" in (refusal(other_gate, "json") or "")

    ours = [
        {"op": "test", "path": "/spec/schedulingGates/1/name", "value": "kaip.dev/data-preload"},
        {"op": "remove", "path": "/spec/schedulingGates/1"},
    ]
    as_controller.patch(kinds.PODS, "train", ours, kind="json")
    assert kube.get(kinds.PODS, "train")["spec"]["schedulingGates"] == [{"name": "kueue.x-k8s.io/admission"}]
