"""The webhook manifests against the server and the product rules (a consistency test)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.resources import credentials as cr
from kaip_incluster.server.config import DEFAULT_CA_SECRET, DEFAULT_CONFIGURATIONS, DEFAULT_NAMESPACE
from kaip_incluster.server.handlers import ROUTES
from kaip_testbed import binaries

FOLDER = Path(__file__).resolve().parents[3] / "manifests" / "webhooks" / "base"


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((FOLDER / name).read_text()) if d)
    return docs


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}"
    return found[0]


def webhooks() -> list[dict[str, Any]]:
    return [
        w
        for d in documents()
        if d["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
        for w in d["webhooks"]
    ]


def test_webhook_paths_are_the_servers_routes_and_the_service_port() -> None:
    service = one("Service", "kaip-webhook")
    assert {w["clientConfig"]["service"]["path"] for w in webhooks()} == set(ROUTES)
    for hook in webhooks():
        ref = hook["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"]) == ("kaip-webhook", DEFAULT_NAMESPACE)
        assert ref["port"] in [p["port"] for p in service["spec"]["ports"]]


def test_configuration_names_are_the_ones_the_server_keeps_the_ca_bundle_of() -> None:
    names = {
        f"{d['kind'][: -len('WebhookConfiguration')].lower()}:{d['metadata']['name']}"
        for d in documents()
        if d["kind"].endswith("WebhookConfiguration")
    }
    assert names == set(DEFAULT_CONFIGURATIONS)
    rules = one("ClusterRole", "kaip-webhook")["rules"]
    patchable = {n for r in rules if "patch" in r["verbs"] for n in r.get("resourceNames", [])}
    assert patchable == {item.split(":", 1)[1] for item in DEFAULT_CONFIGURATIONS}


def test_secret_validation_only_sees_kaip_secrets_and_fails_closed() -> None:
    hook = one("ValidatingWebhookConfiguration")["webhooks"][0]
    assert hook["failurePolicy"] == "Fail"
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    condition = hook["matchConditions"][0]["expression"]
    assert all(f"'{t}'" in condition for t in cr.TYPES)


def test_pod_mutation_settings() -> None:
    hook = one("MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["rules"][0]["operations"] == ["CREATE"]
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["sideEffects"] == "None"
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] <= 3
    assert {"key": cr.LABEL_OPT_OUT, "operator": "DoesNotExist"} in hook["objectSelector"]["matchExpressions"]


def test_pod_mutation_leaves_system_namespaces_alone() -> None:
    hook = one("MutatingWebhookConfiguration")["webhooks"][0]
    assert hook["timeoutSeconds"] <= 3 and hook["admissionReviewVersions"] == ["v1"]
    excluded = [
        e for e in hook["namespaceSelector"]["matchExpressions"] if e["key"] == "kubernetes.io/metadata.name"
    ]
    assert excluded[0]["operator"] == "NotIn"
    assert {"kube-system", DEFAULT_NAMESPACE} <= set(excluded[0]["values"])


def test_credentials_secrets_are_validated_in_every_namespace() -> None:
    hook = one("ValidatingWebhookConfiguration")["webhooks"][0]
    assert hook["timeoutSeconds"] <= 3 and hook["admissionReviewVersions"] == ["v1"]
    assert "namespaceSelector" not in hook and "objectSelector" not in hook
    # What keeps this from locking anything out: only the two kaip types ever reach the webhook.
    assert [c["name"] for c in hook["matchConditions"]] == ["kaip-credentials-secrets-only"]


def test_deployment_is_highly_available_and_locked_down() -> None:
    deployment = one("Deployment", "kaip-webhook")
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    assert spec["affinity"]["podAntiAffinity"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]
    assert container["image"] == "ghcr.io/kaip-dev/kaip:v0.1.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--self-managed-ca" in container["args"]
    pdb = one("PodDisruptionBudget", "kaip-webhook")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_the_ca_role_and_the_ca_secret_live_in_kaips_namespace() -> None:
    role = one("Role", "kaip-webhook-ca")
    assert role["metadata"]["namespace"] == DEFAULT_NAMESPACE
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]
    assert DEFAULT_CA_SECRET == "kaip-webhook-ca"


def test_policy_names_the_annotations_of_the_product() -> None:
    policy = one("ValidatingAdmissionPolicy", "kaip-credentials-injected")
    text = yaml.safe_dump(policy)
    for name in (cr.ANNOTATION_CREDENTIALS, cr.ANNOTATION_INJECTED, cr.ANNOTATION_SKIP_CONTAINERS):
        assert name in text
    binding = one("ValidatingAdmissionPolicyBinding", "kaip-credentials-injected")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]


def test_service_account_policy_takes_the_pods_namespace_service_accounts_as_parameters() -> None:
    policy = one("ValidatingAdmissionPolicy", "kaip-service-account-credentials-injected")
    assert policy["spec"]["paramKind"] == {"apiVersion": "v1", "kind": "ServiceAccount"}
    assert policy["spec"]["failurePolicy"] == "Fail"
    text = yaml.safe_dump(policy)
    assert cr.ANNOTATION_CREDENTIALS in text and cr.ANNOTATION_INJECTED in text
    binding = one("ValidatingAdmissionPolicyBinding", "kaip-service-account-credentials-injected")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["paramRef"] == {"selector": {}, "parameterNotFoundAction": "Allow"}
    # Same scope as the mutating webhook: what it never touches, this never refuses.
    hook = one("MutatingWebhookConfiguration")["webhooks"][0]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == hook["namespaceSelector"]
    assert binding["spec"]["matchResources"]["objectSelector"] == hook["objectSelector"]


@pytest.mark.testbin  # kubectl kustomize, from hack/testbin.sh
def test_cert_manager_overlay_switches_tls_to_mounted_files_and_ca_injection() -> None:
    done = subprocess.run(
        [binaries.path_of("kubectl"), "kustomize", str(FOLDER.parent / "cert-manager")],
        capture_output=True,
        text=True,
        check=True,
    )
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    by_kind = {d["kind"]: d for d in docs}
    container = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--self-managed-ca" not in container["args"]
    assert "--tls-cert-file=/run/kaip-webhook/tls/tls.crt" in container["args"]
    volume = by_kind["Deployment"]["spec"]["template"]["spec"]["volumes"][0]
    assert volume["secret"]["secretName"] == by_kind["Certificate"]["spec"]["secretName"]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        annotations = by_kind[kind]["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == "kaip-system/kaip-webhook"
    # Nothing is written by the server in this mode: no Secret creation, no caBundle patches.
    assert "Role" not in by_kind
    assert all(
        "patch" not in r["verbs"] and "create" not in r["verbs"] for r in by_kind["ClusterRole"]["rules"]
    )
