"""The client's HTTP layer against the real kube-apiserver: keep-alive reuse, gzip-compressed lists,
a kubeconfig's http proxy (CONNECT) and tls-server-name, and the errors a user sees when the server
does not answer, cannot be reached through the proxy, or presents a certificate for another name."""

from __future__ import annotations

import base64
import dataclasses
import select
import socket
import socketserver
import threading
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

pytestmark = pytest.mark.integration


def _conn(control_plane: ControlPlane, **changes: object) -> Connection:
    conn = load(ClusterTarget(kubeconfig=str(control_plane.kubeconfig)))
    return dataclasses.replace(conn, **changes)  # type: ignore[arg-type]


class _Proxy(socketserver.ThreadingTCPServer):
    """A minimal HTTP CONNECT proxy on loopback that records what it was asked."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, password: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.password = password
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _Proxy

    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").strip()
        headers: dict[str, str] = {}
        while (raw := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        self.server.requests.append(line)
        self.server.authorizations.append(headers.get("proxy-authorization"))
        method, target, _ = line.split(" ", 2)
        if self.server.password is not None:
            wanted = "Basic " + base64.b64encode(f"user:{self.server.password}".encode()).decode()
            if headers.get("proxy-authorization") != wanted:
                self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                return
        if method != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        sockets = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 30)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_requests_reuse_one_connection(control_plane: ControlPlane, proxy: _Proxy) -> None:
    # The proxy sees one CONNECT per connection the client opens.
    kube = Kube(_conn(control_plane, proxy_url=f"http://127.0.0.1:{proxy.server_address[1]}"))
    for _ in range(5):
        assert kube.request("GET", "/version")["major"] == "1"
    assert [r.rsplit(" ", 1)[0] for r in proxy.requests] == [f"CONNECT 127.0.0.1:{control_plane.port}"]


def test_proxy_with_a_password_gets_it_and_an_error_never_shows_it(control_plane: ControlPlane) -> None:
    server = _Proxy(password="s3cr3t-pw")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        good = Kube(_conn(control_plane, proxy_url=f"http://user:s3cr3t-pw@127.0.0.1:{port}"))
        assert good.request("GET", "/version")["major"] == "1"
        bad = Kube(_conn(control_plane, proxy_url=f"http://user:wrong-pw@127.0.0.1:{port}"))
        with pytest.raises(UnreachableError) as caught:
            bad.request("GET", "/version")
        assert "through its proxy" in str(caught.value) and "407" in str(caught.value)
        assert "wrong-pw" not in str(caught.value)
    finally:
        server.shutdown()
        server.server_close()


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
