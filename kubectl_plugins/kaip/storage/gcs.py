"""Google Cloud Storage (and fake-gcs-server) through its JSON API, with google-auth credentials.

google-auth and requests come with google-cloud-storage and are imported on first use. Objects are
read as stored (``Accept-Encoding: gzip``, no decoding), so sizes and crc32c match the listing even
for gzip-encoded objects. Every call goes through :mod:`kaip.storage.retry`. The proxy is the one
:mod:`kaip.proxies` names for the endpoint (the rules of the S3 path and the Kubernetes client), not
requests' own reading of the environment, which differs (it proxies localhost, reads ALL_PROXY).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any
from urllib.parse import quote

from kaip.errors import needs_extra, shorten
from kaip.proxies import parse_proxy, proxy_from_environment
from kaip.storage import checksums
from kaip.storage.base import ObjectInfo, Opened, Store, StoreConfig
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
from kaip.storage.retry import Retryable

CHUNK = 1024 * 1024
DEFAULT_ENDPOINT = "https://storage.googleapis.com"
READ_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
_FIELDS = "items(name,size,generation,crc32c,md5Hash,updated),nextPageToken"
_TRANSIENT = {408, 500, 502, 503, 504}


def endpoint_of(config: StoreConfig) -> str:
    emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if emulator and "://" not in emulator:
        emulator = f"http://{emulator}"
    return (config.endpoint_url or emulator or DEFAULT_ENDPOINT).rstrip("/")


def make_session(config: StoreConfig) -> Any:
    with needs_extra("gcs", purpose="reading gs://"):
        import requests
        from requests.adapters import HTTPAdapter

    key_file = config.gcp_key_file or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    session: Any
    if config.anonymous or (not key_file and os.environ.get("STORAGE_EMULATOR_HOST")):
        session = requests.Session()
    else:
        session = _authorized(key_file)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=config.max_connections, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # The proxy by our rules, not requests' (trust_env off); what else trust_env gave, the CA bundle, kept.
    session.trust_env = False
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    endpoint = endpoint_of(config)
    found = proxy_from_environment(endpoint, os.environ)
    if found is not None:
        try:
            parse_proxy(found[1], source=found[0])  # the same checks and message as the S3 path
        except ValueError as exc:
            raise ProxyUnusable(str(exc)) from None
        session.proxies = {"http": found[1], "https": found[1]}
    return session


def _authorized(key_file: str | None) -> Any:
    with needs_extra("gcs", purpose="reading gs://"):
        import google.auth
        import requests
        from google.auth.exceptions import DefaultCredentialsError
        from google.auth.transport.requests import AuthorizedSession

    if key_file:
        from google.oauth2 import service_account

        try:
            creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                key_file, scopes=[READ_SCOPE]
            )
        except (OSError, ValueError, KeyError) as exc:
            raise AccessDenied(
                f"the GCP service-account key file {key_file} cannot be used ({type(exc).__name__})"
            ) from exc
        return AuthorizedSession(creds)  # type: ignore[no-untyped-call]
    try:
        creds, _project = google.auth.default(scopes=[READ_SCOPE])
    except DefaultCredentialsError:
        return requests.Session()  # no credentials anywhere: public buckets only
    return AuthorizedSession(creds)  # type: ignore[no-untyped-call]


class GCSStore(Store):
    scheme = "gs"

    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config)
        self._endpoint = endpoint_of(config)
        self._session = make_session(config)

    def _get(
        self, url: str, *, params: dict[str, Any], headers: dict[str, str], where: str, stream: bool
    ) -> Any:
        import requests

        try:
            return self._session.get(
                url,
                params=params,
                headers=headers,
                stream=stream,
                timeout=(min(self.config.timeout, 30.0), self.config.timeout),
            )
        except requests.ConnectionError as exc:
            raise Retryable(
                StoreUnreachable(f"{where}: cannot reach {self._endpoint} ({type(exc).__name__})")
            ) from exc
        except requests.RequestException as exc:
            raise Retryable(TransferFailed(f"{where}: request failed ({type(exc).__name__})")) from exc

    def _list_page(self, bucket: str, prefix: str, token: str | None) -> tuple[list[ObjectInfo], str | None]:
        where = f"gs://{bucket}/{prefix}"
        params: dict[str, Any] = {"prefix": prefix, "maxResults": 1000, "fields": _FIELDS}
        if token:
            params["pageToken"] = token
        resp = self._get(
            f"{self._endpoint}/storage/v1/b/{quote(bucket, safe='')}/o",
            params=params,
            headers={},
            where=where,
            stream=False,
        )
        if resp.status_code != 200:
            raise _by_status(resp.status_code, resp.text, where=where, bucket=bucket, listing=True)
        try:
            doc = json.loads(resp.content)
        except ValueError as exc:
            raise BadAnswer(f"{where}: the listing is not JSON") from exc
        return [_info(item) for item in doc.get("items") or ()], doc.get("nextPageToken")

    def _open(self, bucket: str, obj: ObjectInfo, *, offset: int, length: int) -> Opened:
        where = f"gs://{bucket}/{obj.key}"
        url = f"{self._endpoint}/download/storage/v1/b/{quote(bucket, safe='')}/o/{quote(obj.key, safe='')}"
        params = {"alt": "media", "generation": obj.version} if obj.version else {"alt": "media"}
        headers = {"Accept-Encoding": "gzip"}
        if offset or length != obj.size:
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        resp = self._get(url, params=params, headers=headers, where=where, stream=True)
        if resp.status_code not in (200, 206):
            text = resp.text
            resp.close()
            raise _by_status(resp.status_code, text, where=where, bucket=bucket, listing=False)
        if resp.status_code == 200 and offset:
            resp.close()
            raise BadAnswer(f"{where}: the server ignored the byte range")
        return Opened(chunks=resp.raw.stream(CHUNK, decode_content=False), close=resp.close)

    def _stream_error(self, exc: Exception, *, bucket: str, key: str) -> Retryable | None:
        # Body errors surface as requests' or urllib3's own types; this package imports neither stack.
        module = type(exc).__module__
        if isinstance(exc, OSError) or module.startswith(("urllib3", "requests", "http.client")):
            return Retryable(
                TransferFailed(f"gs://{bucket}/{key}: download broke off ({type(exc).__name__})")
            )
        return None

    def close(self) -> None:
        self._session.close()


def _info(item: dict[str, Any]) -> ObjectInfo:
    published = tuple(
        e
        for e in (
            checksums.from_base64("crc32c", item.get("crc32c")),
            checksums.from_base64("md5", item.get("md5Hash")),
        )
        if e is not None
    )
    updated = item.get("updated")
    try:
        mtime = datetime.fromisoformat(str(updated).replace("Z", "+00:00")).timestamp() if updated else 0.0
    except ValueError:
        mtime = 0.0
    return ObjectInfo(
        key=str(item["name"]),
        size=int(item.get("size") or 0),
        version=str(item.get("generation") or ""),
        mtime=mtime,
        published=published,
    )


def _by_status(status: int, text: str, *, where: str, bucket: str, listing: bool) -> Exception:
    detail = _message(text)
    if status == 429:
        return Retryable(
            Throttled(f"{where}: the store keeps answering 429 Too Many Requests"), throttled=True
        )
    if status in _TRANSIENT:
        return Retryable(
            TransferFailed(f"{where}: server error (HTTP {status}: {detail})"), throttled=status == 503
        )
    if status in (401, 403):
        return AccessDenied(f"{where}: access denied (HTTP {status}: {detail})")
    if status == 404:
        if listing:
            return SourceNotFound(f"bucket {bucket} does not exist ({where})")
        return ObjectChanged(f"{where}: the object changed or vanished since it was listed; run again")
    if status == 412:
        return ObjectChanged(f"{where}: the object changed since it was listed; run again")
    return BadAnswer(f"{where}: the store refused the request (HTTP {status}: {detail})")


def _message(text: str) -> str:
    try:
        doc = json.loads(text)
        return shorten(str(doc["error"]["message"]), 200)
    except (ValueError, KeyError, TypeError):
        return shorten(text, 200) or "no message"


__all__ = ["GCSStore"]
