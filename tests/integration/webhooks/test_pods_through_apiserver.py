"""kubectl apply of Pods through the real kube-apiserver: injection, refusals, warnings, fail-open guard."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import kinds
from kaip_incluster.server.cabundle import MUTATING
from kaip_testbed.webhooks import Webhook, kubectl

pytestmark = pytest.mark.integration

REFUSED = 'admission webhook "pods.credentials.kaip.dev" denied the request'
AWS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "region": "eu-west-1",
}


def pod(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"containers": [{"name": "main", "image": "registry.example/trainer:1"}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": body,
    }


def apply(kubeconfig: Path, namespace: str, *objects: dict[str, Any]) -> tuple[int, str, str]:
    done = kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects), namespace=namespace)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def secrets(kube: Kube, webhook: Webhook) -> None:
    kube.create(
        kinds.SECRETS, {"metadata": {"name": "s3"}, "type": "kaip.dev/aws-credentials", "stringData": AWS}
    )
    kube.create(
        kinds.SECRETS, {"metadata": {"name": "plain"}, "type": "Opaque", "stringData": {"password": "pw"}}
    )


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {
        e["name"]: e.get("valueFrom", {}).get("secretKeyRef") or e.get("value")
        for e in container.get("env", [])
    }


def test_annotated_pod_gets_credentials_in_every_container(
    secrets: None, kubeconfig: Path, namespace: str, kube: Kube, webhook: Webhook
) -> None:
    obj = pod(
        "trainer",
        {"kaip.dev/credentials": "s3", "kaip.dev/skip-containers": "exporter"},
        initContainers=[
            {"name": "fetch", "image": "x"},
            {"name": "proxy", "image": "x", "restartPolicy": "Always"},
        ],
    )
    obj["spec"]["containers"].append({"name": "exporter", "image": "x"})
    code, out, err = apply(kubeconfig, namespace, obj)
    assert code == 0, err
    assert "pod/trainer created" in out
    stored = kube.get(kinds.PODS, "trainer")
    spec = stored["spec"]
    for container in [*spec["initContainers"], spec["containers"][0]]:
        variables = env(container)
        assert variables["AWS_ACCESS_KEY_ID"] == {"name": "s3", "key": "aws_access_key_id"}
        assert variables["AWS_SECRET_ACCESS_KEY"] == {"name": "s3", "key": "aws_secret_access_key"}
        assert (
            variables["AWS_REGION"]
            == variables["AWS_DEFAULT_REGION"]
            == {"name": "s3", "key": "region", "optional": True}
        )
    assert "env" not in spec["containers"][1]
    assert stored["metadata"]["annotations"]["kaip.dev/credentials-injected"] == "aws:s3"


def test_gcp_key_file_is_mounted_read_only(
    kubeconfig: Path, namespace: str, kube: Kube, webhook: Webhook
) -> None:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = {
        "type": "service_account",
        "client_email": "a@p.iam.gserviceaccount.com",
        "private_key": pem.decode(),
        "token_uri": "https://oauth2.googleapis.com/token",
        "project_id": "p",
        "private_key_id": "k",
    }
    kube.create(
        kinds.SECRETS,
        {
            "metadata": {"name": "gcs"},
            "type": "kaip.dev/gcp-credentials",
            "stringData": {"key.json": json.dumps(key)},
        },
    )
    code, _, err = apply(kubeconfig, namespace, pod("notebook", {"kaip.dev/credentials": "gcs"}))
    assert code == 0, err
    spec = kube.get(kinds.PODS, "notebook")["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "kaip-gcp-gcs")
    assert volume["secret"]["secretName"] == "gcs"
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "kaip-gcp-gcs")
    assert mount == {
        "name": "kaip-gcp-gcs",
        "mountPath": "/var/run/secrets/kaip.dev/gcp/gcs",
        "readOnly": True,
    }
    assert (
        env(spec["containers"][0])["GOOGLE_APPLICATION_CREDENTIALS"]
        == "/var/run/secrets/kaip.dev/gcp/gcs/key.json"
    )


def test_service_account_annotation_injects_into_its_pods(
    secrets: None, kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    kube.create(
        kinds.SERVICEACCOUNTS,
        {"metadata": {"name": "trainer", "annotations": {"kaip.dev/credentials": "s3"}}},
    )
    code, _, err = apply(kubeconfig, namespace, pod("job-0", serviceAccountName="trainer"))
    assert code == 0, err
    stored = kube.get(kinds.PODS, "job-0")
    assert env(stored["spec"]["containers"][0])["AWS_ACCESS_KEY_ID"]["name"] == "s3"
    assert stored["metadata"]["annotations"]["kaip.dev/credentials-injected"] == "aws:s3"


def test_a_variable_the_user_sets_is_kept_with_a_warning(
    secrets: None, kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    obj = pod("custom", {"kaip.dev/credentials": "s3"})
    obj["spec"]["containers"][0]["env"] = [{"name": "AWS_REGION", "value": "on-prem-1"}]
    code, _, err = apply(kubeconfig, namespace, obj)
    assert code == 0, err
    assert (
        'Warning: container "main" sets AWS_REGION itself; kept, and AWS_DEFAULT_REGION is not taken from '
        'Secret "s3" either' in err
    )
    variables = env(kube.get(kinds.PODS, "custom")["spec"]["containers"][0])
    assert variables["AWS_REGION"] == "on-prem-1"
    assert "AWS_DEFAULT_REGION" not in variables  # else boto3 would use the Secret's region


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"kaip.dev/credentials": "missing"}, 'Secret "missing" not found in namespace'),
        (
            {"kaip.dev/credentials": "plain"},
            'Secret "plain" is of type "Opaque", not kaip.dev/aws-credentials',
        ),
        ({"kaip.dev/credentials": "default/s3"}, '"default/s3" names a Secret in another namespace'),
        (
            {"kaip.dev/credentials": "s3", "kaip.dev/skip-containers": "sidecar"},
            "no container or init container is named 'sidecar'",
        ),
    ],
)
def test_wrong_references_are_refused(
    secrets: None, kubeconfig: Path, namespace: str, kube: Kube, annotations: dict[str, str], message: str
) -> None:
    code, _, err = apply(kubeconfig, namespace, pod("refused", annotations))
    assert code != 0
    assert REFUSED in err and message in err
    with pytest.raises(NotFound):
        kube.get(kinds.PODS, "refused")


def test_two_aws_credentials_are_refused(secrets: None, kubeconfig: Path, namespace: str, kube: Kube) -> None:
    kube.create(
        kinds.SECRETS, {"metadata": {"name": "s3b"}, "type": "kaip.dev/aws-credentials", "stringData": AWS}
    )
    code, _, err = apply(kubeconfig, namespace, pod("two", {"kaip.dev/credentials": "s3,s3b"}))
    assert code != 0 and "names 2 AWS credentials (s3, s3b)" in err


def test_reinvoking_the_webhook_on_the_stored_pod_changes_nothing(
    secrets: None, kubeconfig: Path, namespace: str, kube: Kube, webhook: Webhook
) -> None:
    assert apply(kubeconfig, namespace, pod("again", {"kaip.dev/credentials": "s3"}))[0] == 0
    stored = kube.get(kinds.PODS, "again")
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "re-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": namespace,
            "name": "again",
            "object": stored,
        },
    }
    request = urllib.request.Request(
        webhook.url + "/mutate/pods",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=webhook.ssl_context(), timeout=5) as resp:
        answer = json.loads(resp.read())["response"]
    assert answer["uid"] == "re-1" and answer["allowed"] is True
    assert "patch" not in answer


def test_opted_out_pod_is_left_alone(secrets: None, kubeconfig: Path, namespace: str, kube: Kube) -> None:
    obj = pod("manual", {"kaip.dev/credentials": "s3"})
    obj["metadata"]["labels"] = {"kaip.dev/skip-credentials": "true"}
    code, _, err = apply(kubeconfig, namespace, obj)
    assert code == 0, err
    assert "env" not in kube.get(kinds.PODS, "manual")["spec"]["containers"][0]


def test_when_the_webhook_is_down_an_annotated_pod_is_refused_and_others_pass(
    secrets: None, kubeconfig: Path, namespace: str, kube: Kube, admin_kube: Kube, webhook: Webhook
) -> None:
    configuration = admin_kube.get(MUTATING, "kaip-credentials-injection")
    url = configuration["webhooks"][0]["clientConfig"]["url"]
    dead = [
        {"op": "replace", "path": "/webhooks/0/clientConfig/url", "value": "https://127.0.0.1:9/mutate/pods"}
    ]
    admin_kube.patch(MUTATING, "kaip-credentials-injection", dead, kind="json")
    try:
        code, _, err = apply(kubeconfig, namespace, pod("unguarded", {"kaip.dev/credentials": "s3"}))
        assert code != 0
        assert "ValidatingAdmissionPolicy 'kaip-credentials-injected'" in err
        assert "its credentials were not injected" in err
        code, out, err = apply(kubeconfig, namespace, pod("plain-pod"))
        assert code == 0, err
        assert "pod/plain-pod created" in out
    finally:
        live = [{"op": "replace", "path": "/webhooks/0/clientConfig/url", "value": url}]
        admin_kube.patch(MUTATING, "kaip-credentials-injection", live, kind="json")
    assert (
        base64.b64decode(
            admin_kube.get(MUTATING, "kaip-credentials-injection")["webhooks"][0]["clientConfig"]["caBundle"]
        )
        == webhook.ca_pem
    )
