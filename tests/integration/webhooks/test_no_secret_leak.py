"""No secret value in any response, log line or Event, through every path a value could take."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.webhooks import Webhook, kubectl

pytestmark = pytest.mark.integration

# Distinctive values: if any of them shows up anywhere, it leaked.
KEY_ID = "AKIAKAIPLEAKCANARY01"
SECRET = "kaipLeakCanarySecretValue0123456789abcdef"[:40]
TOKEN = "kaipLeakCanarySessionToken"
BAD_SECRET = "kaip-leak-canary-bad value\n"
ENDPOINT = "https://kaip-leak-canary.example:9000"
CANARIES = [KEY_ID, SECRET, TOKEN, BAD_SECRET.strip(), "kaip-leak-canary"]


def secret(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kaip.dev/aws-credentials",
        "stringData": values,
    }


def test_no_value_reaches_responses_logs_or_events(
    webhook: Webhook, control_plane: ControlPlane, kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    outputs: list[str] = []

    def run(*objects: dict[str, Any], extra: tuple[str, ...] = ()) -> None:
        # Server-side apply: client-side apply itself copies stringData into the last-applied
        # annotation and prints its patch on errors, which is kubectl's doing, not the webhook's.
        done = kubectl(
            kubeconfig,
            "apply",
            "--server-side",
            "-f",
            "-",
            *extra,
            stdin=yaml.safe_dump_all(objects),
            namespace=namespace,
        )
        outputs.extend([done.stdout, done.stderr])

    good = {
        "aws_access_key_id": KEY_ID,
        "aws_secret_access_key": SECRET,
        "aws_session_token": TOKEN,
        "endpoint_url": ENDPOINT,
    }
    run(secret("good", good))  # admitted, with warnings
    run(
        secret(
            "bad",
            {
                "aws_access_key_id": KEY_ID,
                "aws_secret_access_key": BAD_SECRET,
                "endpoint_url": "kaip-leak-canary:9",
            },
        )
    )
    run(secret("good", {**good, "region": BAD_SECRET}))  # a denied UPDATE: the review carries oldObject too
    run(secret("dry", good), extra=("--dry-run=server",))
    gcp = {
        "type": "service_account",
        "private_key": "-----BEGIN PRIVATE KEY-----\nkaip-leak-canary\n-----END PRIVATE KEY-----\n",
    }
    run(
        {
            **secret("gcs", {"key.json": json.dumps(gcp) + "kaip-leak-canary"}),
            "type": "kaip.dev/gcp-credentials",
        }
    )
    run({**secret("gcs", {"key.json": json.dumps(gcp)}), "type": "kaip.dev/gcp-credentials"})
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "uses-it", "annotations": {"kaip.dev/credentials": "good"}},
        "spec": {
            "containers": [{"name": "main", "image": "x", "env": [{"name": "AWS_REGION", "value": "r"}]}]
        },
    }
    run(pod)
    text = " ".join(outputs)
    assert "pod/uses-it serverside-applied" in text
    assert (
        text.count('admission webhook "secrets.credentials.kaip.dev" denied the request') == 4
    )  # bad, bad update, two bad key files
    # The webhook's answers themselves, asked directly with the stored Secret (values inside).
    stored = kube.get(kinds.SECRETS, "good")
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "leak-1",
            "kind": {"group": "", "version": "v1", "kind": "Secret"},
            "operation": "UPDATE",
            "namespace": namespace,
            "object": {**stored, "data": {**stored["data"], "aws_secret_access_key": "!!" + SECRET}},
            "oldObject": stored,
        },
    }
    request = urllib.request.Request(webhook.url + "/validate/secrets", data=json.dumps(review).encode())
    with urllib.request.urlopen(request, context=webhook.ssl_context(), timeout=5) as resp:
        outputs.append(resp.read().decode())
    assert '"allowed":false' in outputs[-1]

    events = kube.list(kinds.EVENTS)
    stored_pod = kube.get(kinds.PODS, "uses-it")
    places = {
        "kubectl and webhook responses": "\n".join(outputs),
        "webhook log": webhook.log(),
        "Events": json.dumps(events),
        "stored Pod": json.dumps(stored_pod),
        "webhook metrics": webhook.get("/metrics")[1],
        "kube-apiserver log": control_plane.servers["kube-apiserver"].log_path.read_text(errors="replace"),
    }
    assert "aws_secret_access_key" in places["webhook log"]  # key names are logged ...
    for where, text in places.items():
        for canary in CANARIES:
            assert canary not in text, f"a secret value reached the {where}"
