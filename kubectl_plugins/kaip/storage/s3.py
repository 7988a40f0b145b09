"""S3 and S3-compatible stores (MinIO, StorageGRID).

Credentials, region and endpoint come from boto3's session (environment, profiles, web identity,
instance metadata), imported on first use. The data path is lean on purpose: boto3 costs about 3 ms
of CPU per small object (model validation, dateutil), which caps a copy of many small files far
below the network. Requests are signed here (:mod:`kaip.storage.sigv4`) and sent over one
keep-alive connection (:mod:`kaip.storage.wire`) per worker thread, through the proxy that
HTTPS_PROXY / HTTP_PROXY / NO_PROXY name for the host (:mod:`kaip.proxies`, the Kubernetes client's
rules). Custom endpoints use path-style addressing;
no request checksums are sent (servers such as MinIO refuse some); response checksums are asked for
with ``x-amz-checksum-mode: ENABLED`` and verified by the copier.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

from kaip.errors import needs_extra, shorten
from kaip.proxies import Proxy, proxy_for
from kaip.storage import checksums
from kaip.storage.base import ObjectInfo, Opened, Store, StoreConfig
from kaip.storage.checksums import Expected
from kaip.storage.errors import (
    AccessDenied,
    BadAnswer,
    ObjectChanged,
    ProxyUnusable,
    SourceNotFound,
    StoreUnreachable,
    Throttled,
    TransferFailed,
)
from kaip.storage.retry import Retryable, call
from kaip.storage.sigv4 import Credentials, sign
from kaip.storage.wire import Connection, ProxyRefused, Response, WireError

CHUNK = 1024 * 1024
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
    "AccountProblem",
}
_CHECKSUM_HEADERS = {
    "x-amz-checksum-crc32": "crc32",
    "x-amz-checksum-crc32c": "crc32c",
    "x-amz-checksum-sha1": "sha1",
    "x-amz-checksum-sha256": "sha256",
    "x-amz-checksum-crc64nvme": "crc64nvme",
}


class _Session:
    """Where to send and how to sign, resolved once from the config, the environment and boto3."""

    def __init__(self, config: StoreConfig) -> None:
        endpoint = (
            config.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        )
        region = config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self._static: Credentials | None = None
        self._creds: Any = None
        key_id = config.access_key_id or os.environ.get("AWS_ACCESS_KEY_ID")
        secret = config.secret_access_key or os.environ.get("AWS_SECRET_ACCESS_KEY")
        if config.anonymous:
            pass
        elif key_id and secret:
            # Keys given outright (the loader Job's secretKeyRef): no need to pay 0.4 s for boto3.
            token = config.session_token or (
                None if config.access_key_id else os.environ.get("AWS_SESSION_TOKEN")
            )
            self._static = Credentials(key_id, secret, token)
        else:
            with needs_extra(
                "s3", purpose="reading s3:// without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ):
                import boto3  # profiles, web identity, container and instance metadata

            session = boto3.session.Session(region_name=region)
            self._creds = session.get_credentials()
            region = region or session.region_name
        self.region = region or "us-east-1"
        self.path_style = bool(endpoint)
        parts = urlsplit(endpoint or f"https://s3.{self.region}.amazonaws.com")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadAnswer(f"the S3 endpoint {endpoint!r} is not an http(s) URL")
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.key_cache: dict[tuple[str, str, str], bytes] = {}
        self.tls = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
        self._proxies: dict[str, Proxy | None] = {}

    def proxy(self, host: str) -> Proxy | None:
        """The proxy for ``host`` (``name[:port]``) by HTTPS_PROXY / HTTP_PROXY / NO_PROXY, or None."""
        if host not in self._proxies:
            try:
                self._proxies[host] = proxy_for(f"{self.scheme}://{host}", os.environ)
            except ValueError as exc:  # names the variable and the fix, never the URL (a password)
                raise ProxyUnusable(str(exc)) from None
        return self._proxies[host]

    def credentials(self) -> Credentials | None:
        if self._static is not None or self._creds is None:
            return self._static
        frozen = self._creds.get_frozen_credentials()  # refreshes temporary credentials when due
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def host_and_path(self, bucket: str, key: str) -> tuple[str, str]:
        encoded = quote(key, safe="/~")
        if self.path_style or "." in bucket:
            return self.netloc, f"{self.base_path}/{bucket}/{encoded}"
        return f"{bucket}.{self.netloc}", f"{self.base_path}/{encoded}"


class S3Store(Store):
    scheme = "s3"

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        self._session = _Session(config)
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    # -- sending -------------------------------------------------------------------------------
    def _connection(self, host: str) -> Connection:
        conns: dict[str, Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(host)
        if conn is None:
            tls = self._session.tls if self._session.scheme == "https" else None
            name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
            default = 443 if tls else 80
            conn = Connection(
                name or host,
                int(port or default),
                tls=tls,
                timeout=self.config.timeout,
                proxy=self._session.proxy(host),
            )
            conns[host] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _request(
        self,
        method: str,
        bucket: str,
        key: str,
        *,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        where: str,
    ) -> Response:
        host, path = self._session.host_and_path(bucket, key)
        creds = self._session.credentials()
        if creds is not None:
            sent = sign(
                method=method,
                host=host,
                path=path,
                query=query,
                headers=headers,
                credentials=creds,
                region=self._session.region,
                now=datetime.now(timezone.utc),
                key_cache=self._session.key_cache,
            )
        else:
            sent = {**headers, "host": host}
        url = path
        if query:
            url += "?" + "&".join(
                f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(query.items())
            )
        conn = self._connection(host)
        try:
            return conn.request(method, url, sent)
        except ProxyRefused as exc:
            via = f"the proxy {conn.proxy.authority}" if conn.proxy else "the proxy"
            error = StoreUnreachable(
                f"{where}: {via} refused the tunnel to the S3 endpoint (HTTP {exc.status})"
            )
            if exc.status == 407:  # a wrong or missing proxy password: trying again cannot help
                error.temporary = False
                raise error from None
            raise Retryable(error) from None
        except (ConnectionRefusedError, ssl.SSLError, TimeoutError, socket.gaierror) as exc:
            raise Retryable(
                StoreUnreachable(f"{where}: cannot reach the S3 endpoint ({type(exc).__name__})")
            ) from exc
        except OSError as exc:
            raise Retryable(TransferFailed(f"{where}: connection failed ({type(exc).__name__})")) from exc

    def _fail(self, resp: Response, *, bucket: str, key: str, listing: bool) -> Exception:
        try:
            body = resp.read_all()
        except OSError:
            body = b""
        code, message = _error_of(body)
        where = f"s3://{bucket}/{key}"
        return _by_status(code, resp.status, where=where, bucket=bucket, detail=message, listing=listing)

    # -- the Store interface -------------------------------------------------------------------
    def _list_page(self, bucket: str, prefix: str, token: str | None) -> tuple[list[ObjectInfo], str | None]:
        # encoding-type=url: a key with a character XML 1.0 cannot carry (U+0001...) arrives
        # percent-encoded instead of breaking the page (MinIO writes ``&#x1;``, which no parser takes).
        query = {"list-type": "2", "prefix": prefix, "max-keys": "1000", "encoding-type": "url"}
        if token:
            query["continuation-token"] = token
        where = f"s3://{bucket}/{prefix}"
        resp = self._request("GET", bucket, "", query=query, headers={}, where=where)
        if resp.status != 200:
            raise self._fail(resp, bucket=bucket, key=prefix, listing=True)
        try:
            root = ET.fromstring(resp.read_all())  # noqa: S314 - expat >= 2.4 limits entity expansion; no DTDs fetched
        except (ET.ParseError, OSError) as exc:
            resp.abandon()
            raise Retryable(TransferFailed(f"{where}: the listing arrived broken")) from exc
        return _parse_listing(root)

    def _open(self, bucket: str, obj: ObjectInfo, *, offset: int, length: int) -> Opened:
        whole = offset == 0 and length == obj.size
        headers: dict[str, str] = {}
        if obj.version:
            headers["If-Match"] = f'"{obj.version}"'
        if whole:
            headers["x-amz-checksum-mode"] = "ENABLED"
        else:
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        where = f"s3://{bucket}/{obj.key}"
        resp = self._request("GET", bucket, obj.key, query={}, headers=headers, where=where)
        if resp.status not in (200, 206):
            raise self._fail(resp, bucket=bucket, key=obj.key, listing=False)
        if resp.status == 200 and not whole:
            resp.abandon()
            raise BadAnswer(f"{where}: the server ignored the byte range")
        return Opened(
            chunks=resp.chunks(CHUNK),
            close=resp.abandon,
            checksums=_published(resp.getheader) if whole else (),
            splice=resp.splice_to if resp.spliceable else None,
        )

    def stat_checksums(self, bucket: str, obj: ObjectInfo) -> tuple[Expected, ...]:
        def head() -> tuple[Expected, ...]:
            headers = {"x-amz-checksum-mode": "ENABLED"}
            if obj.version:
                headers["If-Match"] = f'"{obj.version}"'
            resp = self._request(
                "HEAD", bucket, obj.key, query={}, headers=headers, where=f"s3://{bucket}/{obj.key}"
            )
            resp.read_all()
            if resp.status != 200:
                raise _by_status(
                    "", resp.status, where=f"s3://{bucket}/{obj.key}", bucket=bucket, detail="", listing=False
                )
            return _published(resp.getheader)

        return call(head, policy=self.config.retry, counter=self.counter)

    def _stream_error(self, exc: Exception, *, bucket: str, key: str) -> Retryable | None:
        if isinstance(exc, (OSError, WireError)):
            return Retryable(
                TransferFailed(f"s3://{bucket}/{key}: download broke off ({type(exc).__name__})")
            )
        return None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _text(node: ET.Element, name: str) -> str:
    child = node.find(_NS + name)
    if child is None:
        child = node.find(name)
    return child.text or "" if child is not None else ""


def _decoded(text: str) -> str:
    """A field S3 encoded for ``encoding-type=url``, as botocore decodes it (``+`` is a space).

    Bytes that are no UTF-8 become lone surrogates (the plan refuses such a key), never U+FFFD:
    a key must never turn into another key."""
    return unquote_plus(text, errors="surrogateescape")


def _parse_listing(root: ET.Element) -> tuple[list[ObjectInfo], str | None]:
    """One ListObjectsV2 page. With ``EncodingType`` ``url`` the fields S3 encodes are decoded: of
    Delimiter, Prefix, StartAfter, Contents/Key and CommonPrefixes/Prefix we read only the keys (a
    store that ignores the parameter answers without EncodingType and its keys are taken as they are)."""
    ns = _NS if root.tag.startswith(_NS) else ""
    encoded = _text(root, "EncodingType").lower() == "url"
    page: list[ObjectInfo] = []
    for item in root.iter(ns + "Contents"):
        modified = _text(item, "LastModified")
        try:
            mtime = datetime.fromisoformat(modified.replace("Z", "+00:00")).timestamp() if modified else 0.0
        except ValueError:
            mtime = 0.0
        page.append(
            ObjectInfo(
                key=_decoded(_text(item, "Key")) if encoded else _text(item, "Key"),
                size=int(_text(item, "Size") or 0),
                version=_text(item, "ETag").strip('"'),
                mtime=mtime,
            )
        )
    truncated = _text(root, "IsTruncated") == "true"
    return page, (_text(root, "NextContinuationToken") or None) if truncated else None


def _error_of(body: bytes) -> tuple[str, str]:
    try:
        root = ET.fromstring(body)  # noqa: S314 - as above
    except ET.ParseError:
        return "", shorten(body.decode(errors="replace"), 200)
    return _text(root, "Code"), shorten(_text(root, "Message"), 200)


def _by_status(code: str, status: int, *, where: str, bucket: str, detail: str, listing: bool) -> Exception:
    what = code or f"HTTP {status}"
    if status == 407:  # a plain-http endpoint asked through a proxy that wants credentials
        return ProxyUnusable(
            f"{where}: the proxy asks for credentials (HTTP 407): give them as http://USER:PASSWORD@HOST:PORT "
            "in HTTP_PROXY (HTTPS_PROXY for an https endpoint)"
        )
    if code == "NoSuchBucket":
        return SourceNotFound(f"bucket {bucket} does not exist ({where})")
    if code in _THROTTLE_CODES or status in (429, 503):
        return Retryable(Throttled(f"{where}: the store keeps asking to slow down ({what})"), throttled=True)
    if code in _AUTH_CODES or status in (401, 403):
        hint = "; objects encrypted with SSE-KMS also need kms:Decrypt" if code == "AccessDenied" else ""
        return AccessDenied(f"{where}: access denied ({what}{': ' + detail if detail else ''}){hint}")
    if code in ("NoSuchKey", "PreconditionFailed") or status in (404, 412):
        if listing:
            return SourceNotFound(f"{where}: not found ({what})")
        return ObjectChanged(f"{where}: the object changed or vanished since it was listed; run again")
    if status >= 500 or code in ("InternalError", "RequestTimeout"):
        return Retryable(TransferFailed(f"{where}: server error ({what}{': ' + detail if detail else ''})"))
    return BadAnswer(f"{where}: the store refused the request ({what}{': ' + detail if detail else ''})")


def _published(header: Callable[[str], Any]) -> tuple[Expected, ...]:
    """Full-object checksums of a GET/HEAD answer; the ETag counts as MD5 unless SSE-KMS/SSE-C hides it."""
    found: list[Expected] = []
    if (header("x-amz-checksum-type") or "").upper() != "COMPOSITE":
        for name, algorithm in _CHECKSUM_HEADERS.items():
            value = checksums.from_base64(algorithm, header(name))
            if value is not None:
                found.append(value)
    encrypted = header("x-amz-server-side-encryption") == "aws:kms" or header(
        "x-amz-server-side-encryption-customer-algorithm"
    )
    etag = checksums.from_etag(str(header("ETag") or ""))
    if etag is not None and not encrypted:
        found.append(etag)
    return tuple(found)
