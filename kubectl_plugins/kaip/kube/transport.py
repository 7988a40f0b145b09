"""HTTP/1.1 to one API server over the standard library's http.client: a thread-safe pool of
keep-alive connections, TLS with the kubeconfig's CA, client certificate and server name, an
``http://`` proxy (CONNECT for an https server), gzip-compressed answers, connect and read timeouts.

Why not urllib3: importing it costs about 50 ms, a tenth of a ``jobs list``; this is what the
client needs of it. :mod:`kaip.kube.client` uses this module, and :mod:`kaip.logs.loki` for Loki.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import ssl
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from kaip.proxies import parse_proxy

STREAM_READ = 64 * 1024
GZIP = 16 + zlib.MAX_WBITS
Headers = Sequence[tuple[str, str]]


class ConnectFailed(OSError):
    """No connection could be made (refused, unresolvable, connect timeout, proxy refused)."""


class TLSFailed(OSError):
    """The TLS handshake failed (an unknown CA, a name the certificate was not issued for)."""


class ReadTimeout(OSError):
    """The server took the request and did not answer within the read timeout."""


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: the server's scheme, host and port, and the proxy in between if any."""

    scheme: str
    host: str
    port: int
    proxy_host: str | None = None
    proxy_port: int | None = None
    proxy_authorization: str | None = None

    @classmethod
    def parse(cls, server: str, proxy_url: str | None, *, proxy_from: str = "proxy-url") -> Endpoint:
        """Raise ValueError naming what is wrong with ``server`` or ``proxy_url`` (from ``proxy_from``)."""
        parts = urlsplit(server)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f'server "{server}" is not an http(s) URL')
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not proxy_url:
            return cls(parts.scheme, parts.hostname, port)
        proxy = parse_proxy(proxy_url, source=proxy_from)  # ValueError: names the source, not the URL
        return cls(parts.scheme, parts.hostname, port, proxy.host, proxy.port, proxy.authorization)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class _Connection(http.client.HTTPConnection):
    """One connection: TCP (through the proxy's CONNECT when there is one), then TLS if https."""

    def __init__(
        self, endpoint: Endpoint, *, tls: ssl.SSLContext | None, server_name: str | None, timeout: float
    ) -> None:
        host, port = (
            (endpoint.proxy_host, endpoint.proxy_port)
            if endpoint.proxy_host and endpoint.proxy_port
            else (endpoint.host, endpoint.port)
        )
        super().__init__(host, port, timeout=timeout)
        self._tls = tls
        self._server_name = server_name or endpoint.host
        if endpoint.proxy_host and tls is not None:
            auth = endpoint.proxy_authorization
            self.set_tunnel(endpoint.host, endpoint.port, {"Proxy-Authorization": auth} if auth else None)

    def connect(self) -> None:
        try:
            super().connect()  # TCP, TCP_NODELAY, and the CONNECT tunnel
        except OSError as exc:
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        if self._tls is not None:
            try:
                self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_name)
            except (ssl.SSLError, ssl.CertificateError) as exc:
                self.sock.close()
                raise TLSFailed(str(exc)) from exc
            except OSError as exc:
                self.sock.close()
                raise ConnectFailed(str(exc) or type(exc).__name__) from exc


def _dropped(conn: _Connection) -> bool:
    """Whether an idle connection was closed by its peer: readable with nothing asked means EOF."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, and to wait for each read of the answer (None: no limit)."""

    connect: float
    read: float | None


class Stream:
    """An answer read as it arrives; its connection is closed, not pooled, when done."""

    def __init__(self, conn: _Connection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.status = resp.status
        self.compressed = (resp.getheader("Content-Encoding") or "").lower() == "gzip"

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes, decompressed, as they come; ends quietly when the stream breaks."""
        inflate = zlib.decompressobj(GZIP) if self.compressed else None
        try:
            while True:
                data = self._resp.read1(STREAM_READ)
                if not data:
                    return
                yield inflate.decompress(data) if inflate else data
        except (OSError, http.client.HTTPException, zlib.error):
            return
        finally:
            self.close()

    def read_all(self) -> bytes:
        try:
            data = self._resp.read()
        finally:
            self.close()
        return zlib.decompress(data, GZIP) if self.compressed and data else data

    def close(self) -> None:
        self._conn.close()

    def abort(self) -> None:
        """End the stream from another thread: a read blocked on it returns at once."""
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


class Pool:
    """Keep-alive connections to one endpoint, shared by threads (one request per connection)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        tls: ssl.SSLContext | None,
        server_name: str | None = None,
        maxsize: int = 32,
    ) -> None:
        self.endpoint = endpoint
        self._tls = tls if endpoint.scheme == "https" else None
        self._server_name = server_name
        self._maxsize = maxsize
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def _send(self, conn: _Connection, method: str, path: str, body: bytes | None, headers: Headers) -> None:
        target = path
        if self.endpoint.proxy_host and self._tls is None:
            # A plain-http server behind a proxy is asked in absolute form; CONNECT covers https.
            target = f"http://{self.endpoint.authority}{path}"
            if self.endpoint.proxy_authorization:
                headers = [*headers, ("Proxy-Authorization", self.endpoint.proxy_authorization)]
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:  # a name may come more than once (Impersonate-Group)
            conn.putheader(name, value)
        if body is not None or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)

    def _take(self, connect_timeout: float) -> tuple[_Connection, bool]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if _dropped(conn):  # closed by the server while idle (its idle timeout, a restart)
                conn.close()
                continue
            return conn, True
        conn = _Connection(
            self.endpoint, tls=self._tls, server_name=self._server_name, timeout=connect_timeout
        )
        conn.connect()
        return conn, False

    def _give_back(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        headers: Headers,
        timeouts: Timeouts,
    ) -> tuple[_Connection, http.client.HTTPResponse]:
        for attempt in (0, 1):
            conn, reused = self._take(timeouts.connect)
            assert conn.sock is not None
            conn.sock.settimeout(timeouts.read)
            try:
                self._send(conn, method, path, body, headers)
                return conn, conn.getresponse()
            except TimeoutError as exc:
                conn.close()
                raise ReadTimeout(str(exc)) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                # A kept-alive connection the server closed while idle: the request never reached
                # it, so one try on a new connection is safe (as Go's transport does).
                if not reused or attempt:
                    raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        raise AssertionError("unreachable")

    def request(
        self, method: str, path: str, *, body: bytes | None, headers: Headers, timeouts: Timeouts
    ) -> tuple[int, bytes]:
        """Send one request and read the whole answer: ``(status, body)``, body decompressed."""
        conn, resp = self._exchange(method, path, body=body, headers=headers, timeouts=timeouts)
        try:
            data = resp.read()
        except TimeoutError as exc:
            conn.close()
            raise ReadTimeout(str(exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ConnectFailed(f"the answer broke off: {exc}") from exc
        if resp.will_close:
            conn.close()
        else:
            self._give_back(conn)
        if data and (resp.getheader("Content-Encoding") or "").lower() == "gzip":
            data = zlib.decompress(data, GZIP)
        return resp.status, data

    def stream(self, method: str, path: str, *, headers: Headers, timeouts: Timeouts) -> Stream:
        """Send one request and hand its answer over unread (watches, followed logs)."""
        conn, resp = self._exchange(method, path, body=None, headers=headers, timeouts=timeouts)
        return Stream(conn, resp)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
