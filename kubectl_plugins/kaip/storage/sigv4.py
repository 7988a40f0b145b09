"""AWS Signature Version 4 for S3 requests without a body (GET, HEAD), as plain functions.

Written from the AWS specification ("Signature Version 4 signing process", S3 flavour: paths are not
double-encoded, payloads are ``UNSIGNED-PAYLOAD``). Pure: same inputs, same headers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def uri_encode(text: str, *, keep_slash: bool) -> str:
    return quote(text, safe="/~" if keep_slash else "~")


def canonical_query(query: Mapping[str, str]) -> str:
    pairs = sorted(
        (uri_encode(k, keep_slash=False), uri_encode(v, keep_slash=False)) for k, v in query.items()
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, day: str, region: str, service: str = "s3") -> bytes:
    key = _hmac(f"AWS4{secret}".encode(), day)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def sign(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    credentials: Credentials,
    region: str,
    now: datetime,
    key_cache: dict[tuple[str, str, str], bytes] | None = None,
) -> dict[str, str]:
    """The headers to send (``headers`` plus the x-amz-* ones and Authorization) for this request.

    ``path`` is already URI-encoded (as it goes on the wire).
    """
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    out = {k.lower(): v for k, v in headers.items()}
    out["host"] = host
    out["x-amz-date"] = stamp
    out["x-amz-content-sha256"] = UNSIGNED_PAYLOAD
    if credentials.session_token:
        out["x-amz-security-token"] = credentials.session_token
    signed = sorted(k for k in out if k == "host" or k.startswith("x-amz-"))
    canonical_headers = "".join(f"{k}:{' '.join(out[k].split())}\n" for k in signed)
    signed_names = ";".join(signed)
    canonical = "\n".join(
        [method, path, canonical_query(query), canonical_headers, signed_names, UNSIGNED_PAYLOAD]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    cache_key = (credentials.secret_access_key, day, region)
    key = key_cache.get(cache_key) if key_cache is not None else None
    if key is None:
        key = signing_key(credentials.secret_access_key, day, region)
        if key_cache is not None:
            key_cache[cache_key] = key
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return out
