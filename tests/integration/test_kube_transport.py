"""The client's HTTP layer against the real kube-apiserver: keep-alive reuse, gzip-compressed lists,
a kubeconfig's http proxy (CONNECT) and tls-server-name, and the errors a user sees when the server
does not answer, cannot be reached through the proxy, or presents a certificate for another name."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaip.errors import ConfigError, UnreachableError
from kaip.kube.client import Kube
from kaip.kube.config import ClusterTarget, Connection, load
from kaip.kube.errors import RequestTimeout
from kaip.kube.transport import Timeouts
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.proxy import Proxy, running_proxy

pytestmark = pytest.mark.integration


def _conn(control_plane: ControlPlane, **changes: object) -> Connection:
    conn = load(ClusterTarget(kubeconfig=str(control_plane.kubeconfig)))
    return dataclasses.replace(conn, **changes)  # type: ignore[arg-type]


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with running_proxy() as server:
        yield server


def test_requests_reuse_one_connection(control_plane: ControlPlane, proxy: Proxy) -> None:
    # The proxy sees one CONNECT per connection the client opens.
    kube = Kube(_conn(control_plane, proxy_url=f"http://127.0.0.1:{proxy.server_address[1]}"))
    for _ in range(5):
        assert kube.request("GET", "/version")["major"] == "1"
    assert [r.rsplit(" ", 1)[0] for r in proxy.requests] == [f"CONNECT 127.0.0.1:{control_plane.port}"]


def test_proxy_with_a_password_gets_it_and_an_error_never_shows_it(control_plane: ControlPlane) -> None:
    with running_proxy(password="s3cr3t-pw") as server:
        port = server.server_address[1]
        good = Kube(_conn(control_plane, proxy_url=f"http://user:s3cr3t-pw@127.0.0.1:{port}"))
        assert good.request("GET", "/version")["major"] == "1"
        bad = Kube(_conn(control_plane, proxy_url=f"http://user:wrong-pw@127.0.0.1:{port}"))
        with pytest.raises(UnreachableError) as caught:
            bad.request("GET", "/version")
        assert "through its proxy" in str(caught.value) and "407" in str(caught.value)
        assert "wrong-pw" not in str(caught.value)


def test_a_proxy_scheme_we_cannot_speak_is_a_config_error(control_plane: ControlPlane) -> None:
    with pytest.raises(ConfigError) as caught:
        Kube(_conn(control_plane, proxy_url="socks5://user:hunter2@127.0.0.1:1080"))
    message = str(caught.value)
    assert 'scheme "socks5"' in message and "http://" in message and "hunter2" not in message


def test_large_lists_arrive_gzip_compressed_and_are_decoded(kube: Kube, namespace: str) -> None:
    big = "x" * 4096
    for i in range(60):  # about 250 KB of JSON: above the server's threshold for compressing
        kube.create(kinds.CONFIGMAPS, {"metadata": {"name": f"cm-{i}"}, "data": {"v": big}})
    stream = kube._pool.stream(
        "GET",
        f"/api/v1/namespaces/{namespace}/configmaps",
        headers=kube._headers(None),
        timeouts=Timeouts(connect=10, read=30),
    )
    assert stream.status == 200 and stream.compressed  # the server took up our Accept-Encoding
    assert b'"cm-59"' in stream.read_all()  # and the transport inflated it
    assert len(kube.list_all(kinds.CONFIGMAPS, page=25)) >= 60


def test_tls_server_name_is_the_name_checked(control_plane: ControlPlane) -> None:
    # The serving certificate is issued for "kubernetes.default" among others, not for "example.org".
    ok = Kube(_conn(control_plane, tls_server_name="kubernetes.default"))
    assert ok.request("GET", "/version")["major"] == "1"
    wrong = Kube(_conn(control_plane, tls_server_name="example.org"))
    with pytest.raises(UnreachableError, match=r"TLS handshake with the API server .* failed"):
        wrong.request("GET", "/version")


def test_a_server_that_never_answers_is_a_request_timeout(
    tmp_path: Path, control_plane: ControlPlane
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        conn = _conn(
            control_plane,
            server=f"http://127.0.0.1:{silent.getsockname()[1]}",
            request_timeout=0.5,
        )
        with pytest.raises(RequestTimeout, match=r"did not answer within 0.5s; raise --request-timeout"):
            Kube(conn).request("GET", "/version")
    finally:
        silent.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced(control_plane: ControlPlane) -> None:
    kube = Kube(_conn(control_plane))
    assert kube.request("GET", "/version")["major"] == "1"
    for conn in kube._pool._idle:  # as a server's idle timeout or a restart would
        assert conn.sock is not None
        conn.sock.shutdown(socket.SHUT_RDWR)
    assert kube.request("GET", "/version")["major"] == "1"
