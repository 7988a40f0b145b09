"""The server as an operator sees it: TLS >= 1.2 only, certificates reloaded in place, readiness, metrics."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.processes import Server, free_port
from kaip_testbed.webhooks import Webhook, server_argv

pytestmark = pytest.mark.integration


def served_certificate(port: int, context: ssl.SSLContext) -> x509.Certificate:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_tls_1_2_and_1_3_are_served_and_nothing_older(webhook: Webhook) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = webhook.ssl_context()
        context.minimum_version = context.maximum_version = version
        with (
            socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("ALL:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw:
        old.wrap_socket(raw, server_hostname="127.0.0.1")


def test_plain_http_is_not_answered(webhook: Webhook) -> None:
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw:
        raw.sendall(b"POST /validate/secrets HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        raw.settimeout(5)
        try:
            answer = raw.recv(200)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200")


def test_metrics_have_a_latency_histogram_in_millisecond_buckets(webhook: Webhook) -> None:
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "metrics-1",
            "kind": {"group": "", "version": "v1", "kind": "Secret"},
            "operation": "CREATE",
            "namespace": "n",
            "object": {"type": "kaip.dev/aws-credentials", "stringData": {}},
        },
    }
    request = urllib.request.Request(webhook.url + "/validate/secrets", data=json.dumps(review).encode())
    with urllib.request.urlopen(request, context=webhook.ssl_context(), timeout=5) as resp:
        assert json.loads(resp.read())["response"]["allowed"] is False
    status, text = webhook.get("/metrics")
    assert status == 200
    buckets = re.findall(
        r'kaip_webhook_request_duration_seconds_bucket\{le="([^"]+)",outcome="denied",webhook="validate-secrets"\}',
        text,
    )
    assert {"0.0005", "0.001", "0.002", "0.005", "0.01"} <= set(buckets)
    assert 'kaip_webhook_cache_objects{resource="serviceaccounts"}' in text
    assert "kaip_webhook_certificate_expiry_timestamp_seconds" in text


def test_certificate_files_are_reloaded_in_place_and_readiness_waits_for_the_caches(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    # A user without any RBAC rights: the watch caches never sync, so the server must never be ready.
    nobody = control_plane.user_kubeconfig("kaip-test-nobody")
    first = control_plane.ca.issue("kaip-webhook", hosts=("127.0.0.1",), server=True)
    cert, key = first.write(tmp_path / "tls", "tls")
    port = free_port()
    argv = server_argv(
        port, nobody, tmp_path / "unused", f"--tls-cert-file={cert}", f"--tls-private-key-file={key}"
    )
    server = Server("kaip-webhook-files", argv, log_dir=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    context = ssl.create_default_context(cadata=control_plane.ca.cert_pem.decode())
    try:
        server.wait_ready(lambda: served_certificate(port, context) is not None, timeout=30)
        before = served_certificate(port, context).serial_number
        hook = Webhook(port, f"https://127.0.0.1:{port}", control_plane.ca.cert_pem, server, nobody, tmp_path)
        assert hook.get("/healthz")[0] == 200
        assert hook.get("/readyz") == (503, "caches not synced yet")

        second = control_plane.ca.issue("kaip-webhook", hosts=("127.0.0.1",), server=True)
        second.write(tmp_path / "tls", "tls")
        deadline = time.monotonic() + 15
        while served_certificate(port, context).serial_number == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert served_certificate(port, context).serial_number != before
        assert server.alive()  # the same process: reloaded in place, not restarted
        assert "kaip_webhook_certificate_reloads_total 1.0" in hook.get("/metrics")[1]
        assert hook.get("/readyz")[0] == 503
    finally:
        server.stop()
