"""With the webhook killed or hung, a Pod that should have credentials never runs without them.

The policies of ``manifests/webhooks/base/policy.yaml`` refuse, without the webhook, a Pod whose
credentials were not injected: named on the Pod itself, or on its ServiceAccount. Pods that name no
credentials, and kube-system, stay unaffected. Kaip credentials Secrets are validated in every
namespace, kube-system included.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import kinds
from kaip_testbed.webhooks import Webhook, kubectl

pytestmark = pytest.mark.integration

AWS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "region": "eu-west-1",
}
SA_POLICY = "ValidatingAdmissionPolicy 'kaip-service-account-credentials-injected'"


def pod(
    name: str, *, account: str | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "registry.example/trainer:1"}]}
    if account:
        spec["serviceAccountName"] = account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }


def create(kubeconfig: Path, namespace: str, obj: dict[str, Any], *extra: str) -> tuple[int, str]:
    done = kubectl(kubeconfig, "create", "-f", "-", *extra, stdin=yaml.safe_dump(obj), namespace=namespace)
    return done.returncode, done.stdout + done.stderr


def until_refused(kubeconfig: Path, namespace: str, obj: dict[str, Any], timeout: float = 30.0) -> str:
    """The apiserver's policy sees ServiceAccounts through its own informer: a ServiceAccount created an
    instant ago may not be among its parameters yet. Wait on that condition (server-side dry run)."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = create(kubeconfig, namespace, obj, "--dry-run=server")
        if code != 0 or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


@pytest.fixture
def linked(kube: Kube, webhook: Webhook) -> None:
    """A Secret, a ServiceAccount linked to it, and one that is not."""
    kube.create(
        kinds.SECRETS, {"metadata": {"name": "s3"}, "type": "kaip.dev/aws-credentials", "stringData": AWS}
    )
    kube.create(
        kinds.SERVICEACCOUNTS,
        {"metadata": {"name": "trainer", "annotations": {"kaip.dev/credentials": "s3"}}},
    )
    kube.create(kinds.SERVICEACCOUNTS, {"metadata": {"name": "plain"}})


@pytest.fixture
def system_account(admin_kube: Kube) -> Iterator[str]:
    """A ServiceAccount in kube-system annotated for credentials, and a Pod name there; removed after."""
    name = f"kaip-test-{uuid.uuid4().hex[:6]}"
    admin_kube.create(
        kinds.SERVICEACCOUNTS,
        {"metadata": {"name": name, "annotations": {"kaip.dev/credentials": "s3"}}},
        namespace="kube-system",
    )
    try:
        yield name
    finally:
        admin_kube.delete(kinds.PODS, name, namespace="kube-system", ignore_missing=True)
        admin_kube.delete(kinds.SERVICEACCOUNTS, name, namespace="kube-system", ignore_missing=True)


Outage = Callable[[Webhook], contextlib.AbstractContextManager[None]]
OUTAGES: dict[str, Outage] = {"killed": lambda hook: hook.killed(), "hung": lambda hook: hook.hung()}


@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_a_pod_whose_service_account_names_credentials_is_refused_and_others_pass(
    linked: None,
    system_account: str,
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    admin_kube: Kube,
    webhook: Webhook,
    outage: str,
) -> None:
    with OUTAGES[outage](webhook):
        message = until_refused(kubeconfig, namespace, pod("job-0", account="trainer"))
        assert SA_POLICY in message, message
        assert 'the Pod runs under ServiceAccount "trainer"' in message
        assert "names s3, but they were not injected: the kaip-webhook (namespace kaip-system" in message
        code, out = create(kubeconfig, namespace, pod("job-0", account="trainer"))
        assert code != 0 and SA_POLICY in out
        with pytest.raises(NotFound):
            kube.get(kinds.PODS, "job-0")
        # Pods that name no credentials are unaffected: their ServiceAccount names none, or
        # their own empty annotation says "none".
        for obj in (
            pod("plain-sa", account="plain"),
            pod("default-sa"),
            pod("opted-out", account="trainer", annotations={"kaip.dev/credentials": ""}),
        ):
            code, out = create(kubeconfig, namespace, obj)
            assert code == 0, out
        # kube-system is never checked, even under a ServiceAccount that names credentials.
        code, out = create(kubeconfig, "kube-system", pod(system_account, account=system_account))
        assert code == 0, out
    # Back up: the same Pod gets its credentials.
    code, out = create(kubeconfig, namespace, pod("job-0", account="trainer"))
    assert code == 0, out
    stored = kube.get(kinds.PODS, "job-0")
    assert stored["metadata"]["annotations"]["kaip.dev/credentials-injected"] == "aws:s3"


def test_a_pod_annotated_for_credentials_is_refused_while_the_webhook_hangs(
    linked: None, kubeconfig: Path, namespace: str, webhook: Webhook
) -> None:
    with webhook.hung():
        code, out = create(
            kubeconfig, namespace, pod("annotated", annotations={"kaip.dev/credentials": "s3"})
        )
    assert code != 0
    assert "ValidatingAdmissionPolicy 'kaip-credentials-injected'" in out
    assert "its credentials were not injected" in out


def test_a_malformed_credentials_secret_is_denied_in_kube_system(
    admin_kube: Kube, kubeconfig: Path, webhook: Webhook
) -> None:
    name = f"kbad-{uuid.uuid4().hex[:6]}"
    bad = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kaip.dev/gcp-credentials",
        "stringData": {"key.json": '{"type": ["service_account"]}'},
    }
    try:
        code, out = create(kubeconfig, "kube-system", bad)
        assert code != 0
        assert 'admission webhook "secrets.credentials.kaip.dev" denied the request' in out
        assert '"key.json": field type must be a string, not an array' in out
        with pytest.raises(NotFound):
            admin_kube.get(kinds.SECRETS, name, namespace="kube-system")
    finally:
        with contextlib.suppress(NotFound):
            admin_kube.delete(kinds.SECRETS, name, namespace="kube-system")
