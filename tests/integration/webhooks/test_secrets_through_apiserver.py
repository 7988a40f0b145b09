"""kubectl apply of credentials Secrets through the real kube-apiserver and the validating webhook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import kinds
from kaip_testbed.webhooks import Webhook, kubectl

pytestmark = pytest.mark.integration

DENIED = 'admission webhook "secrets.credentials.kaip.dev" denied the request'


def manifest(name: str, kind: str, values: dict[str, str]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": kind, "stringData": values}
    )


def apply(kubeconfig: Path, namespace: str, text: str, *extra: str) -> tuple[int, str, str]:
    done = kubectl(kubeconfig, "apply", "-f", "-", *extra, stdin=text, namespace=namespace)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def key_json() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    doc: dict[str, Any] = {
        "type": "service_account",
        "project_id": "ml-platform",
        "private_key_id": "abc123",
        "private_key": pem.decode(),
        "client_email": "trainer@ml-platform.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return json.dumps(doc)


def test_complete_secrets_are_created(
    webhook: Webhook, kubeconfig: Path, namespace: str, key_json: str
) -> None:
    text = manifest(
        "s3",
        "kaip.dev/aws-credentials",
        {
            "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        },
    )
    text += "---\n" + manifest("gcs", "kaip.dev/gcp-credentials", {"key.json": key_json})
    code, out, err = apply(kubeconfig, namespace, text)
    assert code == 0, err
    assert "secret/s3 created" in out and "secret/gcs created" in out
    assert "Warning" not in err


def test_minio_secret_is_created_with_warnings(webhook: Webhook, kubeconfig: Path, namespace: str) -> None:
    text = manifest(
        "minio",
        "kaip.dev/aws-credentials",
        {
            "aws_access_key_id": "minio-user",
            "aws_secret_access_key": "minio-secret-99",
            "endpoint_url": "http://minio.storage:9000",
        },
    )
    code, out, err = apply(kubeconfig, namespace, text)
    assert code == 0, err
    assert "secret/minio created" in out
    assert (
        'Warning: Secret of type kaip.dev/aws-credentials: key "endpoint_url": http:// sends requests unencrypted'
        in err
    )
    assert "minio-secret-99" not in err


def test_incomplete_secret_is_denied_naming_the_key_and_never_the_value(
    webhook: Webhook, kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    text = manifest("broken", "kaip.dev/aws-credentials", {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE\n"})
    code, _, err = apply(kubeconfig, namespace, text)
    assert code != 0
    assert DENIED in err
    assert 'key "aws_access_key_id": ends with a line break' in err
    assert 'key "aws_secret_access_key" is missing' in err
    assert "AKIAIOSFODNN7EXAMPLE" not in err
    with pytest.raises(NotFound):
        kube.get(kinds.SECRETS, "broken")


def test_gcp_key_file_that_is_not_json_is_denied(webhook: Webhook, kubeconfig: Path, namespace: str) -> None:
    code, _, err = apply(
        kubeconfig,
        namespace,
        manifest("gcs", "kaip.dev/gcp-credentials", {"key.json": "{'type': 'service_account'"}),
    )
    assert code != 0
    assert DENIED in err and '"key.json" is not JSON (error at line 1, column 2)' in err


def test_an_update_that_breaks_a_secret_is_denied(
    webhook: Webhook, kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    good = {
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }
    assert apply(kubeconfig, namespace, manifest("s3", "kaip.dev/aws-credentials", good))[0] == 0
    broken = {**good, "endpoint_url": "minio.storage:9000"}
    code, _, err = apply(kubeconfig, namespace, manifest("s3", "kaip.dev/aws-credentials", broken))
    assert code != 0
    assert 'key "endpoint_url": must be an http(s) URL' in err
    assert "endpoint_url" not in kube.get(kinds.SECRETS, "s3")["data"]


def test_server_side_dry_run_gets_the_same_answer_and_stores_nothing(
    webhook: Webhook, kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    code, _, err = apply(
        kubeconfig,
        namespace,
        manifest("dry", "kaip.dev/aws-credentials", {"aws_access_key_id": "x"}),
        "--dry-run=server",
    )
    assert code != 0 and DENIED in err
    good = {
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }
    code, out, err = apply(
        kubeconfig, namespace, manifest("dry", "kaip.dev/aws-credentials", good), "--dry-run=server"
    )
    assert code == 0, err
    assert "created (server dry run)" in out
    with pytest.raises(NotFound):
        kube.get(kinds.SECRETS, "dry")


def test_other_secrets_never_reach_the_webhook(webhook: Webhook, kubeconfig: Path, namespace: str) -> None:
    text = manifest("plain", "Opaque", {"aws_access_key_id": "whatever\n"})
    code, out, err = apply(kubeconfig, namespace, text)
    assert code == 0, err
    assert "secret/plain created" in out
    # matchConditions kept it away from the server: no review was logged for it.
    assert f'"namespace":"{namespace}","name":"plain"' not in webhook.log()
    text = manifest(
        "seen",
        "kaip.dev/aws-credentials",
        {
            "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        },
    )
    assert apply(kubeconfig, namespace, text)[0] == 0
    assert f'"namespace":"{namespace}","name":"seen"' in webhook.log()
