"""A ``gs://`` source through the controller, end to end, against fake-gcs-server.

An annotated PVC naming a ``kaip.dev/gcp-credentials`` Secret gets its loader Job; the kubelet
stand-in projects the Secret's ``key.json`` as the Pod's Secret volume and points
``GOOGLE_APPLICATION_CREDENTIALS`` at it, as a kubelet would; the loader signs a token request with the
key (answered by a token stand-in: fake-gcs-server checks no token) and copies the objects; the
condition ends True and the gated Pod is released.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed import waiting
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.dataloader import ControllerProcess, Kubelet, grant_lease
from kaip_testbed.objectstores import GCSServer

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]


wait_for = functools.partial(waiting.wait_for, timeout=90.0)


@pytest.fixture
def token_server() -> Iterator[tuple[str, list[str]]]:
    """An OAuth token endpoint that grants any signed assertion; records the assertions it got."""
    assertions: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            assertions.append(body)
            answer = json.dumps(
                {"access_token": "ya29.kaip-test", "expires_in": 3600, "token_type": "Bearer"}
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token", assertions
    server.shutdown()
    server.server_close()


def gcp_secret(kube: Kube, token_uri: str, name: str = "gcs") -> str:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = {
        "type": "service_account",
        "client_email": "loader@kaip-test.iam.gserviceaccount.com",
        "private_key": pem.decode(),
        "token_uri": token_uri,
        "project_id": "kaip-test",
        "private_key_id": "k1",
    }
    kube.create(
        kinds.SECRETS,
        {
            "metadata": {"name": name},
            "type": "kaip.dev/gcp-credentials",
            "stringData": {"key.json": json.dumps(key)},
        },
    )
    return name


def condition(kube: Kube, name: str) -> dict[str, Any] | None:
    pvc = kube.get(kinds.PVCS, name)
    return next(
        (c for c in (pvc.get("status") or {}).get("conditions") or () if c["type"] == "DataLoaded"), None
    )


def test_a_gs_source_with_a_gcp_key_is_loaded_and_releases_the_gated_pod(
    kube: Kube,
    admin_kube: Kube,
    namespace: str,
    controller_kubeconfig: Path,
    cluster_controllers: ControlPlane,
    gcs_server: GCSServer,
    token_server: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    bucket: Any = gcs_server.client().create_bucket(f"kaip-{uuid.uuid4().hex[:12]}")  # type: ignore[attr-defined]
    objects = {"sets/v2/a.bin": b"a" * 5_000, "sets/v2/deep/b.txt": b"b", "sets/v20/not-mine": b"x"}
    for key, body in objects.items():
        bucket.blob(key).upload_from_string(body)
    token_uri, assertions = token_server
    secret = gcp_secret(kube, token_uri)
    kube.create(
        kinds.PVCS,
        {
            "metadata": {
                "name": "data",
                "annotations": {
                    "preload.kaip.dev/source": f"gs://{bucket.name}/sets/v2",
                    "preload.kaip.dev/credentials": secret,
                },
            },
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    kube.create(
        kinds.PODS,
        {
            "metadata": {"name": "train"},
            "spec": {
                "schedulingGates": [{"name": "kaip.dev/data-preload"}],
                "containers": [{"name": "main", "image": "busybox"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    )
    grant_lease(admin_kube, namespace)
    env = {"STORAGE_EMULATOR_HOST": gcs_server.endpoint}
    with Kubelet(kube, cluster_controllers, tmp_path / "volumes", env=env) as kubelet:
        controller = ControllerProcess(controller_kubeconfig, namespace, "solo", tmp_path)
        try:
            final = wait_for(
                lambda: (c := condition(kube, "data")) and c["status"] != "Unknown" and c, what="an outcome"
            )
            assert (final["status"], final["reason"]) == ("True", "Succeeded"), final["message"]
            assert "2/2 objects" in final["message"] and "crc32c" in final["message"]
            wait_for(
                lambda: not kube.get(kinds.PODS, "train")["spec"].get("schedulingGates"), what="the release"
            )
        finally:
            controller.stop()
        volume = kubelet.volume("data")
        assert (volume / "a.bin").read_bytes() == b"a" * 5_000
        assert (volume / "deep/b.txt").read_bytes() == b"b"
        assert not list(volume.rglob("not-mine"))

    (job,) = kube.list(kinds.JOBS, label_selector="preload.kaip.dev/pvc=data")["items"]
    pod_spec = job["spec"]["template"]["spec"]
    assert {
        "name": "GOOGLE_APPLICATION_CREDENTIALS",
        "value": "/var/run/secrets/kaip.dev/gcp/gcs/key.json",
    } in (pod_spec["containers"][0]["env"])
    assert any((v.get("secret") or {}).get("secretName") == "gcs" for v in pod_spec["volumes"])
    # The key file reached the loader and was used: it signed a JWT-bearer grant with it.
    assert assertions and all("grant_type=urn" in a and "assertion=" in a for a in assertions)
