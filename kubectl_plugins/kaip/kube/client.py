"""A thin, synchronous Kubernetes API client over the standard library's http.client.

Decide, then act: each method builds (method, path, query, body) as plain data and hands it to
:meth:`Kube.request`, the one place that sends and reads answers. Bodies are ``dict`` in, ``dict``
out; lists are asked for gzip-compressed and decoded with orjson when it is installed. Who the
requests are (certificates, tokens, exec plugins) is decided by :mod:`kaip.kube.auth`.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from kaip.errors import ConfigError, UnreachableError, shorten
from kaip.kube import auth, transport
from kaip.kube import config as kubeconfig
from kaip.kube.config import ClusterTarget, Connection
from kaip.kube.errors import NotFound, RequestTimeout, from_status
from kaip.kube.objects import metadata, namespace_of
from kaip.resources.kinds import Resource

try:  # orjson is several times faster on large lists (5,000 Nodes)
    import orjson

    def _loads(data: bytes | str) -> Any:
        return orjson.loads(data)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson is a declared dependency

    def _loads(data: bytes | str) -> Any:
        return json.loads(data)

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj).encode()


USER_AGENT = "kaip/0.1"
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


class Kube:
    """One API server, one connection pool. Thread-safe for concurrent requests."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.namespace = conn.namespace
        self._exec = auth.ExecCredential(conn) if conn.exec_config else None
        cert, key = auth.client_certificate(conn, self._exec)
        try:
            endpoint = transport.Endpoint.parse(conn.server, conn.proxy_url, proxy_from=conn.proxy_from)
        except ValueError as exc:
            where = f'kubeconfig: cluster "{conn.cluster}": ' if conn.proxy_from == "proxy-url" else ""
            raise ConfigError(f"{where}{exc}") from exc
        self._pool = transport.Pool(
            endpoint,
            tls=auth.ssl_context(conn, cert, key) if endpoint.scheme == "https" else None,
            server_name=conn.tls_server_name,
        )

    # -- the one place that sends -------------------------------------------------------------
    def _headers(self, content_type: str | None) -> transport.Headers:
        headers = [("Accept", "application/json"), ("Accept-Encoding", "gzip"), ("User-Agent", USER_AGENT)]
        if content_type:
            headers.append(("Content-Type", content_type))
        return headers + auth.identity_headers(self.conn, self._exec)

    def _timeouts(self, timeout: float | None) -> transport.Timeouts:
        limit = timeout if timeout is not None else self.conn.request_timeout
        return transport.Timeouts(connect=min(limit or 30.0, 30.0), read=limit or None)

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v is not None and v != ""}, doseq=True)
        return path

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None,
        body: Any,
        content_type: str | None,
        timeout: float | None,
    ) -> tuple[int, bytes]:
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else _dumps(body)
        try:
            return self._pool.request(
                method,
                self._url(path, query),
                body=data,
                headers=self._headers(content_type if data is not None else None),
                timeouts=self._timeouts(timeout),
            )
        except OSError as exc:
            raise _unreachable(self.conn, exc) from exc

    def _open_stream(
        self, path: str, *, query: Mapping[str, Any] | None, timeout: float | None, resource: Resource | None
    ) -> transport.Stream:
        try:
            stream = self._pool.stream(
                "GET", self._url(path, query), headers=self._headers(None), timeouts=self._timeouts(timeout)
            )
        except OSError as exc:
            raise _unreachable(self.conn, exc) from exc
        if stream.status >= 300:
            _read(stream.status, stream.read_all(), resource)
        return stream

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        resource: Resource | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer; raise the matching error otherwise."""
        status, data = self._send(
            method, path, query=query, body=body, content_type=content_type, timeout=timeout
        )
        if status == 401 and self._exec:
            self._exec.refresh(force=True)
            status, data = self._send(
                method, path, query=query, body=body, content_type=content_type, timeout=timeout
            )
        return _read(status, data, resource)

    def request_text(self, path: str, *, timeout: float | None = None) -> str:
        """GET an answer that is not JSON (``/metrics``, a Pod's whole log) as text."""
        status, data = self._send("GET", path, query=None, body=None, content_type=None, timeout=timeout)
        if status >= 300:
            _read(status, data, None)
        return data.decode(errors="replace")

    # -- verbs ----------------------------------------------------------------------------------
    def _ns(self, resource: Resource, namespace: str | None) -> str | None:
        return (namespace or self.namespace) if resource.namespaced else None

    def get(
        self, resource: Resource, name: str, *, namespace: str | None = None, subresource: str = ""
    ) -> dict[str, Any]:
        path = resource.path(namespace=self._ns(resource, namespace), name=name, subresource=subresource)
        result: dict[str, Any] = self.request("GET", path, resource=resource)
        return result

    def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One page of a list (or the whole list when no ``limit``), as the List object."""
        ns = None if all_namespaces else self._ns(resource, namespace)
        query = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "resourceVersion": resource_version,
            "limit": limit,
            "continue": continue_token,
        }
        result: dict[str, Any] = self.request(
            "GET", resource.path(namespace=ns), query=query, resource=resource, timeout=timeout
        )
        # List items come without their type; kubectl fills it in, and so do we (-o json|yaml|name).
        for item in result.get("items") or ():
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
        return result

    def list_all(
        self, resource: Resource, *, page: int = 500, **kwargs: Any
    ) -> builtins.list[dict[str, Any]]:
        """Every item of a list, following ``continue`` tokens."""
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        while True:
            chunk = self.list(resource, limit=page, continue_token=token, **kwargs)
            items.extend(chunk.get("items") or [])
            token = metadata(chunk).get("continue")
            if not token:
                return items

    def create(
        self,
        resource: Resource,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str = "kaip",
    ) -> dict[str, Any]:
        ns = self._ns(resource, namespace or namespace_of(obj))
        query = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}  # the server needs the type
        result: dict[str, Any] = self.request(
            "POST", resource.path(namespace=ns), query=query, body=body, resource=resource
        )
        return result

    def replace(
        self,
        resource: Resource,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        subresource: str = "",
    ) -> dict[str, Any]:
        meta = metadata(obj)
        path = resource.path(
            namespace=self._ns(resource, namespace or meta.get("namespace")),
            name=meta["name"],
            subresource=subresource,
        )
        result: dict[str, Any] = self.request("PUT", path, body=dict(obj), resource=resource)
        return result

    def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        kind: str = "merge",
        subresource: str = "",
        field_manager: str = "kaip",
        force: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        path = resource.path(namespace=self._ns(resource, namespace), name=name, subresource=subresource)
        query = {
            "fieldManager": field_manager,
            "force": "true" if force else None,
            "dryRun": "All" if dry_run else None,
        }
        result: dict[str, Any] = self.request(
            "PATCH", path, query=query, body=patch, content_type=PATCH_TYPES[kind], resource=resource
        )
        return result

    def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        propagation: str = "Background",
        ignore_missing: bool = False,
        preconditions: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if preconditions:
            body["preconditions"] = dict(preconditions)
        path = resource.path(namespace=self._ns(resource, namespace), name=name)
        try:
            result: dict[str, Any] = self.request("DELETE", path, body=body, resource=resource)
        except NotFound:
            if ignore_missing:
                return None
            raise
        return result

    def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(type, object)`` watch events until the server closes the stream.

        An ``ERROR`` event (e.g. 410 Gone: resourceVersion too old) is raised as its ApiError, so
        callers re-list and watch again.
        """
        ns = None if all_namespaces else self._ns(resource, namespace)
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if allow_bookmarks else None,
        }
        lines = LineStream(
            self._open_stream(
                resource.path(namespace=ns), query=query, timeout=timeout_seconds + 30, resource=resource
            )
        )
        # The stream's end (the caller watches again from its last resourceVersion) ends this too.
        for line in lines:
            if not line.strip():
                continue
            event = _loads(line)
            if event.get("type") == "ERROR":
                obj = event.get("object") or {}
                raise from_status(int(obj.get("code") or 500), obj, resource=resource)
            yield str(event.get("type")), event.get("object") or {}

    def stream_lines(
        self, path: str, *, query: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> LineStream:
        """The lines of a text answer as they arrive (a Pod's ``log`` with ``follow=true``).

        Iterate it in one thread; :meth:`LineStream.abort` from another ends the iteration."""
        return LineStream(self._open_stream(path, query=query, timeout=timeout, resource=None))

    def served(self, resource: Resource) -> bool:
        """Whether the cluster serves ``resource`` (discovery of its group/version)."""
        base = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
        try:
            doc = self.request("GET", base)
        except NotFound:
            return False
        return any(r.get("name") == resource.plural for r in doc.get("resources") or [])

    def with_namespace(self, namespace: str) -> Kube:
        clone = Kube.__new__(Kube)
        clone.__dict__.update(self.__dict__)
        clone.conn = replace(self.conn, namespace=namespace)
        clone.namespace = namespace
        return clone


class LineStream:
    """A streamed text answer, line by line; closed when iterated to its end or aborted."""

    def __init__(self, stream: transport.Stream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[str]:
        buffer = b""
        try:
            for chunk in self._stream.chunks():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    yield line.decode(errors="replace")
            if buffer:
                yield buffer.decode(errors="replace")
        finally:
            self._stream.close()

    def abort(self) -> None:
        self._stream.abort()


def _read(status: int, data: bytes, resource: Resource | None) -> Any:
    if 200 <= status < 300:
        return _loads(data) if data else {}
    try:
        body: Any = _loads(data) if data else None
    except ValueError:
        body = data.decode(errors="replace")
    raise from_status(status, body, resource=resource)


def _unreachable(conn: Connection, exc: OSError) -> UnreachableError:
    where = f'{conn.server} (context "{conn.context}")' if conn.context else conn.server
    if isinstance(exc, transport.TLSFailed):
        text = str(exc)
        detail = "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else shorten(text, 160)
        return UnreachableError(
            f"TLS handshake with the API server at {where} failed: {detail}; check the cluster's "
            "certificate-authority in the kubeconfig (or the server name it was issued for)"
        )
    if isinstance(exc, transport.ReadTimeout):
        limit = f" within {conn.request_timeout:g}s" if conn.request_timeout else ""
        return RequestTimeout(
            f"the API server at {where} did not answer{limit}; raise --request-timeout or check the server"
        )
    text = str(exc)
    reason = "connection refused" if "refused" in text.lower() else shorten(text, 160)
    via = " through its proxy" if conn.proxy_url else ""
    return UnreachableError(f"cannot reach the API server at {where}{via}: {reason}; is the cluster running?")


def connect(target: ClusterTarget | None = None, *, environ: Mapping[str, str] | None = None) -> Kube:
    """Resolve ``target`` in kubectl's order and return a client for it."""
    return Kube(kubeconfig.load(target or ClusterTarget(), environ))
