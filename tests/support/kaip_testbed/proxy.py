"""A real HTTP proxy on loopback for the tests: CONNECT tunnels (https) and absolute-form requests
(plain http, ``GET http://host/path``), an optional password, and a map of made-up host names to
loopback ports, so a client that must not bypass the proxy (Go's rules never proxy 127.0.0.1) can be
given ``s3.kaip.test`` and reach a local server only through it. It records every request line.
"""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, password: str | None = None, hosts: Mapping[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.password = password
        #: ``name`` -> ``ip`` the proxy resolves itself (names that no DNS knows).
        self.hosts = dict(hosts or {})
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def resolve(self, host: str) -> str:
        return self.hosts.get(host.lower(), host)


@contextmanager
def running_proxy(password: str | None = None, hosts: Mapping[str, str] | None = None) -> Iterator[Proxy]:
    server = Proxy(password, hosts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _Handler(socketserver.StreamRequestHandler):
    server: Proxy

    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").strip()
        if not line:
            return
        raw_headers: list[bytes] = []
        headers: dict[str, str] = {}
        while (raw := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            raw_headers.append(raw)
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
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((self.server.resolve(host.strip("[]")), int(port)))
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            self._relay(upstream, b"")
            return
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        # One request per connection: sent on in origin form with Connection: close, answered back
        # until the server closes (the client sees Connection: close and opens a new one).
        upstream = socket.create_connection((self.server.resolve(parts.hostname), parts.port or 80))
        origin = parts.path + (f"?{parts.query}" if parts.query else "")
        kept = [
            h
            for h in raw_headers
            if h.split(b":", 1)[0].strip().lower() not in (b"proxy-authorization", b"connection")
        ]
        head = f"{method} {origin or '/'} HTTP/1.1\r\n".encode("latin-1") + b"".join(kept)
        self._relay(upstream, head + b"Connection: close\r\n\r\n")

    def _relay(self, upstream: socket.socket, first: bytes) -> None:
        if first:
            upstream.sendall(first)
        # Our clients send nothing past the headers before the answer (GET, HEAD, CONNECT), so the
        # buffered reader holds nothing more: the sockets can be relayed as they are.
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
