"""The RBAC of the manifests, checked as the webhook's ServiceAccount: what it may and may not do."""

from __future__ import annotations

import pytest

from kaip.kube import connect
from kaip.kube.client import Kube
from kaip.kube.config import ClusterTarget
from kaip.kube.errors import Forbidden
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.webhooks import Webhook

pytestmark = pytest.mark.integration

USER = "system:serviceaccount:kaip-system:kaip-webhook"
GROUPS = ["system:serviceaccounts", "system:serviceaccounts:kaip-system", "system:authenticated"]
ADMISSION = "admissionregistration.k8s.io"


def allowed(
    admin: Kube, verb: str, resource: str, *, group: str = "", namespace: str = "", name: str = ""
) -> bool:
    resource, _, subresource = resource.partition("/")
    attributes = {
        "verb": verb,
        "resource": resource,
        "subresource": subresource,
        "group": group,
        "namespace": namespace,
        "name": name,
    }
    review = admin.create(
        kinds.SUBJECT_ACCESS_REVIEWS,
        {
            "spec": {
                "user": USER,
                "groups": GROUPS,
                "resourceAttributes": {k: v for k, v in attributes.items() if v},
            }
        },
    )
    return bool(review["status"].get("allowed"))


@pytest.mark.parametrize(
    ("verb", "resource", "group", "namespace", "name"),
    [
        ("list", "serviceaccounts", "", "", ""),
        ("watch", "serviceaccounts", "", "", ""),
        ("list", "secrets", "", "", ""),
        ("watch", "secrets", "", "", ""),
        ("get", "secrets", "", "team-a", "s3"),
        ("create", "secrets", "", "kaip-system", ""),
        ("list", "persistentvolumeclaims", "", "", ""),
        ("watch", "persistentvolumeclaims", "", "", ""),
        ("patch", "validatingwebhookconfigurations", ADMISSION, "", "kaip-credentials-validation"),
        ("patch", "mutatingwebhookconfigurations", ADMISSION, "", "kaip-credentials-injection"),
    ],
)
def test_the_webhook_may_do_what_it_needs(
    webhook: Webhook, admin_kube: Kube, verb: str, resource: str, group: str, namespace: str, name: str
) -> None:
    assert allowed(admin_kube, verb, resource, group=group, namespace=namespace, name=name)


@pytest.mark.parametrize(
    ("verb", "resource", "group", "namespace", "name"),
    [
        ("create", "secrets", "", "team-a", ""),
        ("update", "secrets", "", "kaip-system", "kaip-webhook-ca"),
        ("delete", "secrets", "", "kaip-system", "kaip-webhook-ca"),
        ("patch", "secrets", "", "team-a", "s3"),
        ("update", "serviceaccounts", "", "team-a", "default"),
        ("get", "pods", "", "team-a", ""),
        ("create", "pods", "", "team-a", ""),
        ("get", "configmaps", "", "team-a", ""),
        ("patch", "persistentvolumeclaims", "", "team-a", "data"),
        ("patch", "persistentvolumeclaims/status", "", "team-a", "data"),
        ("patch", "validatingwebhookconfigurations", ADMISSION, "", "someone-elses"),
        ("patch", "mutatingwebhookconfigurations", ADMISSION, "", "someone-elses"),
        ("delete", "mutatingwebhookconfigurations", ADMISSION, "", "kaip-credentials-injection"),
        ("list", "mutatingwebhookconfigurations", ADMISSION, "", ""),
        ("create", "validatingadmissionpolicies", ADMISSION, "", ""),
        ("update", "validatingadmissionpolicybindings", ADMISSION, "", "kaip-credentials-injected"),
        ("create", "serviceaccounts/token", "", "kaip-system", "kaip-webhook"),
    ],
)
def test_the_webhook_may_do_nothing_else(
    webhook: Webhook, admin_kube: Kube, verb: str, resource: str, group: str, namespace: str, name: str
) -> None:
    assert not allowed(admin_kube, verb, resource, group=group, namespace=namespace, name=name)


def test_impersonating_the_service_account(
    webhook: Webhook, control_plane: ControlPlane, namespace: str
) -> None:
    target = ClusterTarget(
        kubeconfig=str(control_plane.kubeconfig), impersonate=USER, impersonate_groups=tuple(GROUPS)
    )
    as_webhook = connect(target)
    found = as_webhook.list(
        kinds.SECRETS, all_namespaces=True, field_selector="type=kaip.dev/aws-credentials"
    )
    assert found["kind"] == "SecretList"
    with pytest.raises(Forbidden):
        as_webhook.list(kinds.PODS, namespace=namespace)
    with pytest.raises(Forbidden):
        as_webhook.create(
            kinds.SECRETS, {"metadata": {"name": "x"}, "stringData": {"a": "b"}}, namespace=namespace
        )
