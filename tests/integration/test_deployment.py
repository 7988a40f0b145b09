"""In-cluster deployment in one command, on a control plane of its own (the webhook configurations
it registers are cluster-wide): `kubectl apply -k manifests/` installs everything, the server checks
every object against its schema (CRDs included), each ServiceAccount may do its job and nothing more,
and `kubectl delete -k manifests/` leaves nothing behind that would block the cluster."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.kube import connect
from kaip.kube.client import Kube
from kaip.kube.config import ClusterTarget
from kaip.kube.errors import Forbidden, ServerError
from kaip.resources import kinds
from kaip.resources.kinds import Resource
from kaip_testbed import binaries, controlplane

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ADMISSION = "admissionregistration.k8s.io"
WEBHOOKS = [
    Resource(
        ADMISSION, "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", namespaced=False
    ),
    Resource(
        ADMISSION, "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", namespaced=False
    ),
]
POLICIES = Resource(
    ADMISSION, "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", namespaced=False
)
CRDS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False
)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    cp = controlplane.start(tmp_path_factory.mktemp("deploy"))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def admin(plane: controlplane.ControlPlane) -> Kube:
    return connect(ClusterTarget(kubeconfig=str(plane.kubeconfig)))


def kubectl(plane: controlplane.ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binaries.path_of("kubectl"), "--kubeconfig", str(plane.kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def rendered() -> list[dict[str, object]]:
    done = subprocess.run(
        [binaries.path_of("kubectl"), "kustomize", str(ROOT / "manifests")],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def installed(plane: controlplane.ControlPlane) -> list[dict[str, object]]:
    done = kubectl(plane, "apply", "--server-side", "-k", str(ROOT / "manifests"))
    assert done.returncode == 0, done.stderr
    return rendered()


def test_one_command_installs_every_component(installed: list[dict[str, object]], admin: Kube) -> None:
    kinds_found = {str(d["kind"]) for d in installed}
    assert {
        "Deployment",
        "DaemonSet",
        "CustomResourceDefinition",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "PodDisruptionBudget",
    } <= kinds_found
    deployments = {
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in installed if d["kind"] == "Deployment"
    }  # type: ignore[index]
    assert deployments == {
        ("kaip-system", "kaip-webhook"),
        ("kaip-system", "kaip-data-loader-controller"),
        ("kaip-remediation", "kaip-remediator"),
    }
    for ns, name in deployments:
        live = admin.get(Resource("apps", "v1", "deployments", "Deployment"), name, namespace=ns)
        pod = live["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["image"] == "ghcr.io/kaip-dev/kaip:v0.1.0"  # one image, pinned
        assert live["spec"]["replicas"] >= 2
        assert container["resources"]["requests"]
        assert container.get("readinessProbe") and container.get("livenessProbe")
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod.get("securityContext", {}).get("runAsNonRoot") or container["securityContext"].get(
            "runAsNonRoot"
        )


def test_the_server_accepts_every_object_under_strict_field_validation(
    installed: list[dict[str, object]], plane: controlplane.ControlPlane
) -> None:
    # A second, server-side dry run now that namespaces and CRDs exist: kubectl asks for strict field
    # validation, so an unknown or misspelt field anywhere fails here (the schema check, CRDs included).
    done = kubectl(plane, "apply", "--dry-run=server", "--validate=strict", "-k", str(ROOT / "manifests"))
    assert done.returncode == 0, done.stderr
    for overlay in ("cert-manager", "servicemonitor"):
        built = subprocess.run(
            [binaries.path_of("kubectl"), "kustomize", str(ROOT / "manifests" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert built.returncode == 0, built.stderr


# (service account, verb, resource, group, namespace, name, allowed)
RBAC = [
    ("kaip-system:kaip-webhook", "list", "secrets", "", "", "", True),
    ("kaip-system:kaip-webhook", "watch", "persistentvolumeclaims", "", "", "", True),
    (
        "kaip-system:kaip-webhook",
        "patch",
        "mutatingwebhookconfigurations",
        ADMISSION,
        "",
        "kaip-credentials-injection",
        True,
    ),
    (
        "kaip-system:kaip-webhook",
        "patch",
        "mutatingwebhookconfigurations",
        ADMISSION,
        "",
        "someone-elses",
        False,
    ),
    ("kaip-system:kaip-webhook", "create", "pods", "", "team-a", "", False),
    ("kaip-system:kaip-webhook", "update", "secrets", "", "team-a", "s3", False),
    ("kaip-system:kaip-data-loader-controller", "create", "jobs", "batch", "team-a", "", True),
    (
        "kaip-system:kaip-data-loader-controller",
        "patch",
        "persistentvolumeclaims/status",
        "",
        "team-a",
        "data",
        True,
    ),
    ("kaip-system:kaip-data-loader-controller", "get", "secrets", "", "team-a", "s3", False),
    ("kaip-system:kaip-data-loader-controller", "list", "secrets", "", "", "", False),
    (
        "kaip-system:kaip-data-loader-controller",
        "delete",
        "persistentvolumeclaims",
        "",
        "team-a",
        "data",
        False,
    ),
    ("kaip-system:kaip-data-loader-controller", "patch", "nodes", "", "", "gpu-0", False),
    ("kaip-remediation:kaip-remediator", "patch", "nodes", "", "", "gpu-0", True),
    ("kaip-remediation:kaip-remediator", "create", "pods/eviction", "", "team-a", "trainer", True),
    ("kaip-remediation:kaip-remediator", "create", "jobs", "batch", "kaip-remediation", "", True),
    ("kaip-remediation:kaip-remediator", "create", "jobs", "batch", "team-a", "", False),
    ("kaip-remediation:kaip-remediator", "delete", "nodes", "", "", "gpu-0", False),
    ("kaip-remediation:kaip-remediator", "delete", "pods", "", "team-a", "trainer", False),
    (
        "kaip-remediation:kaip-remediator",
        "get",
        "secrets",
        "",
        "kaip-remediation",
        "kaip-remediation-github",
        True,
    ),
    ("kaip-remediation:kaip-remediator", "get", "secrets", "", "kaip-remediation", "other", False),
    ("kube-system:kaip-node-problem-detector", "patch", "nodes/status", "", "", "gpu-0", True),
    ("kube-system:kaip-node-problem-detector", "patch", "nodes", "", "", "gpu-0", False),
    ("kube-system:kaip-node-problem-detector", "get", "secrets", "", "kube-system", "", False),
]


@pytest.mark.parametrize(
    ("account", "verb", "resource", "group", "namespace", "name", "allowed"),
    RBAC,
    ids=[f"{a.split(':')[1]} {v} {r} {'yes' if ok else 'no'}" for a, v, r, _g, _n, _m, ok in RBAC],
)
def test_each_service_account_may_do_its_job_and_nothing_more(
    installed: list[dict[str, object]],
    admin: Kube,
    account: str,
    verb: str,
    resource: str,
    group: str,
    namespace: str,
    name: str,
    allowed: bool,
) -> None:
    ns, sa = account.split(":")
    plural, _, sub = resource.partition("/")
    attributes = {
        "verb": verb,
        "resource": plural,
        "subresource": sub,
        "group": group,
        "namespace": namespace,
        "name": name,
    }
    review = admin.create(
        kinds.SUBJECT_ACCESS_REVIEWS,
        {
            "spec": {
                "user": f"system:serviceaccount:{ns}:{sa}",
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
                "resourceAttributes": {k: v for k, v in attributes.items() if v},
            }
        },
    )
    assert bool(review["status"].get("allowed")) is allowed


def _serve_custom_resources(admin: Kube, installed: list[dict[str, object]]) -> None:
    """List every kaip CRD's objects once, as the remediator's watches do in a cluster.

    kube-apiserver builds a custom resource's storage on first use, and until its watch cache is filled
    it answers 429 "storage is (re)initializing". If the first use is the CRD finalizer's own list (a
    CRD nobody ever read, deleted at once), the finalizer fails and retries a few milliseconds later,
    often from a cache that has not yet seen its own status update; that retry meets a conflict and
    returns without requeueing, and the CRD then waits for the informer's resync (minutes):
    apiextensions-apiserver v0.36 pkg/controller/finalizer/crd_finalizer.go, sync(). In a cluster the
    remediator has read them long before; here nothing has, so the test does what it would.
    """
    for doc in installed:
        if doc["kind"] != "CustomResourceDefinition":
            continue
        spec: dict[str, Any] = doc["spec"]  # type: ignore[assignment]
        version = next(v["name"] for v in spec["versions"] if v.get("storage"))
        resource = Resource(
            spec["group"], version, spec["names"]["plural"], spec["names"]["kind"], namespaced=False
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                admin.list(resource, limit=1)
                break
            except ServerError as exc:  # 429 while the watch cache is still filling
                if exc.status != 429 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def test_delete_removes_everything_and_leaves_the_cluster_usable(
    installed: list[dict[str, object]], plane: controlplane.ControlPlane, admin: Kube
) -> None:
    _serve_custom_resources(admin, installed)
    done = kubectl(plane, "delete", "-k", str(ROOT / "manifests"), "--wait=false")
    assert done.returncode == 0, done.stderr
    for resource in WEBHOOKS:
        assert [
            w["metadata"]["name"]
            for w in admin.list(resource)["items"]
            if w["metadata"]["name"].startswith("kaip")
        ] == []
    assert [
        p["metadata"]["name"]
        for p in admin.list(POLICIES)["items"]
        if p["metadata"]["name"].startswith("kaip")
    ] == []
    deadline = time.monotonic() + 30
    while True:  # CRDs go once the apiserver has removed their objects (its own finalizer)
        left = [
            c["metadata"]["name"]
            for c in admin.list(CRDS)["items"]
            if c["metadata"]["name"].endswith("kaip.dev")
        ]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert left == []
    # Nothing left to call: kaip's Secret types and annotated Pods are admitted again in any namespace.
    admin.create(kinds.NAMESPACES, {"metadata": {"name": "after-kaip"}})
    admin.create(kinds.SERVICEACCOUNTS, {"metadata": {"name": "default"}}, namespace="after-kaip")
    admin.create(
        kinds.SECRETS,
        {
            "metadata": {"name": "s3"},
            "type": "kaip.dev/aws-credentials",
            "stringData": {"aws_access_key_id": "x"},
        },
        namespace="after-kaip",
    )
    pod = {
        "metadata": {"name": "p", "annotations": {"kaip.dev/credentials": "s3"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    deadline = time.monotonic() + 15
    while True:  # the apiserver's admission-policy cache learns of the deletion within a moment
        try:
            admin.create(kinds.PODS, pod, namespace="after-kaip")
            break
        except Forbidden:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
