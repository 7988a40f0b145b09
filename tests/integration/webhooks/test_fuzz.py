"""Malformed AdmissionReviews sent to the running server: never a 5xx, never a crash."""

from __future__ import annotations

import copy
import http.client
import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed.webhooks import Webhook

pytestmark = pytest.mark.integration

AWS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
KEY = json.dumps(
    {
        "type": "service_account",
        "client_email": "a@p.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
        "private_key": rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode(),
    }
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ["uid", "kind", "operation", "namespace", "name", "object", "oldObject", "dryRun", "userInfo"]


PLAUSIBLE: list[Any] = [
    "s3",
    "gcs",
    "s3,gcs",
    "main",
    "init,main",
    [{"name": "AWS_REGION", "value": "x"}],
    [
        {
            "name": "AWS_ACCESS_KEY_ID",
            "valueFrom": {"secretKeyRef": {"name": "s3", "key": "aws_access_key_id"}},
        }
    ],
    [{"name": "kaip-gcp-gcs", "secret": {"secretName": "other"}}],
    [{"name": "kaip-gcp-gcs", "mountPath": "/x"}],
    [{"name": "v", "mountPath": "/var/run/secrets/kaip.dev/gcp/gcs"}],
]
PLACES: list[tuple[Any, ...]] = [
    ("metadata",),
    ("metadata", "annotations"),
    ("metadata", "annotations", "kaip.dev/credentials"),
    ("metadata", "annotations", "kaip.dev/skip-containers"),
    ("metadata", "annotations", "kaip.dev/credentials-injected"),
    ("spec",),
    ("spec", "containers"),
    ("spec", "containers", 0),
    ("spec", "containers", 0, "name"),
    ("spec", "containers", 0, "env"),
    ("spec", "containers", 0, "volumeMounts"),
    ("spec", "initContainers"),
    ("spec", "initContainers", 0, "env"),
    ("spec", "volumes"),
    ("spec", "serviceAccountName"),
]


@st.composite
def pod_like(draw: st.DrawFn) -> Any:
    """A Pod asking for real credentials, with a few places replaced by odd values or removed."""
    pod: dict[str, Any] = {
        "metadata": {"annotations": {"kaip.dev/credentials": draw(st.sampled_from(["s3", "gcs", "s3,gcs"]))}},
        "spec": {
            "containers": [{"name": "main", "image": "x"}],
            "initContainers": [{"name": "init", "image": "x"}],
        },
    }
    for _ in range(draw(st.integers(0, 3))):
        *parents, last = draw(st.sampled_from(PLACES))
        target: Any = pod
        for key in parents:
            if (isinstance(target, dict) and key in target) or (
                isinstance(target, list) and isinstance(key, int) and len(target) > key
            ):
                target = target[key]
            else:
                target = None
                break
        if isinstance(target, dict):
            if draw(st.booleans()) and last in target:
                del target[last]
            else:
                # A copy: a later step may edit what it put here, and PLAUSIBLE must stay as written
                # (Hypothesis refuses a strategy whose values change between test cases).
                target[last] = copy.deepcopy(draw(st.sampled_from(PLAUSIBLE) | json_values))
        elif isinstance(target, list) and isinstance(last, int) and target:
            target[0] = draw(json_values)
    return pod


#: Every field a key file may hold, so that each gets every wrong JSON type.
KEY_FIELDS = sorted(
    {*json.loads(KEY), "project_id", "private_key_id", "universe_domain", "audience", "subject_token_type"}
    | {"token_url", "credential_source", "service_account_impersonation_url"}
)


@st.composite
def key_files(draw: st.DrawFn) -> str:
    """The sample key file with fields given any JSON value (a list, a number, null, an object)."""
    doc: dict[str, Any] = json.loads(KEY)
    if draw(st.booleans()):
        doc["type"] = "external_account"
    for name in draw(st.lists(st.sampled_from(KEY_FIELDS), min_size=1, max_size=3)):
        doc[name] = draw(json_values)
    return draw(st.sampled_from(["", "\ufeff"])) + json.dumps(doc)


def secret_like() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"type": st.sampled_from(["kaip.dev/aws-credentials", "kaip.dev/gcp-credentials"]) | json_values},
        optional={
            "data": st.dictionaries(st.text(max_size=25), st.text(max_size=40) | json_values) | json_values,
            "stringData": st.dictionaries(
                st.sampled_from(
                    ["aws_access_key_id", "aws_secret_access_key", "endpoint_url", "key.json", "region"]
                ),
                st.text(max_size=60) | json_values | key_files(),
            ),
            "metadata": json_values,
        },
    )


@st.composite
def reviews(draw: st.DrawFn, kind: str, namespace: str) -> bytes:
    choice = draw(st.sampled_from([0, 1, 2, 2, 2, 2, 3]))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        return json.dumps(draw(json_values)).encode()
    request: dict[str, Any] = {
        "uid": "fuzz-uid",
        "kind": {
            "group": "",
            "version": "v1",
            "kind": draw(st.sampled_from([kind, kind, kind, "Pod", "Secret"])),
        },
        "operation": draw(st.sampled_from(["CREATE", "CREATE", "CREATE", "UPDATE", "DELETE"])),
        "namespace": namespace,
        "object": draw(pod_like() if kind == "Pod" else secret_like()),
    }
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        if draw(st.booleans()):
            request.pop(field, None)
        else:
            request[field] = draw(json_values)
    envelope: dict[str, Any] = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }
    if choice == 3:
        envelope[draw(st.sampled_from(["apiVersion", "kind", "request"]))] = draw(json_values)
    return json.dumps(envelope).encode()


class Client:
    def __init__(self, hook: Webhook) -> None:
        self.hook = hook
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.hook.port, context=self.hook.ssl_context(), timeout=10
        )

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError):
                # The server may close a connection after a 4xx; open a new one once.
                self.conn.close()
                self.conn = self._connect()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def client(webhook: Webhook) -> Client:
    return Client(webhook)


@pytest.mark.parametrize(("path", "kind"), [("/validate/secrets", "Secret"), ("/mutate/pods", "Pod")])
def test_malformed_reviews_get_4xx_or_an_answer_never_5xx(
    client: Client, webhook: Webhook, kube: Kube, namespace: str, path: str, kind: str
) -> None:
    # Real credentials in the namespace, so that fuzzed Pods reach the injection code, not only refusals.
    kube.create(
        kinds.SECRETS, {"metadata": {"name": "s3"}, "type": "kaip.dev/aws-credentials", "stringData": AWS}
    )
    kube.create(
        kinds.SECRETS,
        {"metadata": {"name": "gcs"}, "type": "kaip.dev/gcp-credentials", "stringData": {"key.json": KEY}},
    )

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=reviews(kind, namespace))
    def check(body: bytes) -> None:
        status, answer = client.post(path, body)
        assert status in (200, 400), (status, answer[:200])
        if status == 200:
            doc = json.loads(answer)
            assert doc["apiVersion"] == "admission.k8s.io/v1" and doc["kind"] == "AdmissionReview"
            assert doc["response"]["uid"] == json.loads(body)["request"]["uid"]
            # A precise denial for every malformed value: never the answer of an unexpected error.
            assert "unexpectedly" not in doc["response"].get("status", {}).get("message", "")
        else:
            assert json.loads(answer)["reason"]

    check()
    if kind == "Pod":  # the fuzzing reached the injection, not only the refusals
        assert re.search(
            rf'"webhook":"mutate-pods","uid":"fuzz-uid","operation":"CREATE","namespace":"{namespace}".*"patchOps":[1-9]',
            webhook.log(),
        )
    assert webhook.server.alive()
    assert webhook.get("/healthz")[0] == 200
    assert "Traceback" not in webhook.log(), "an unexpected error was logged"
