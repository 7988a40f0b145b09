"""An object-store location: ``s3://bucket/prefix`` or ``gs://bucket/prefix``, parsed once.

A prefix is a directory: it is normalised to end in ``/`` so that ``data/a`` never matches
``data/ab``. An empty prefix means the whole bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kaip.storage.errors import InvalidSource

SCHEMES = ("s3", "gs")
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,220}[A-Za-z0-9]$")


@dataclass(frozen=True)
class Source:
    scheme: str
    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"

    def __str__(self) -> str:
        return self.url


def parse_source(url: str, *, field: str = "source") -> Source:
    """Parse ``url``; :class:`InvalidSource` (a UsageError) names ``field`` (the flag or annotation
    the caller read it from) and what is wrong."""

    def bad(why: str) -> InvalidSource:
        return InvalidSource(f"{field}: {url!r} is not s3://BUCKET/PREFIX or gs://BUCKET/PREFIX: {why}")

    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        return _raise(bad("no scheme"))
    if scheme.lower() not in SCHEMES:
        return _raise(bad(f"unknown scheme {scheme!r} (use s3 or gs)"))
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        return _raise(bad("no bucket"))
    if not _BUCKET.match(bucket) or ".." in bucket:
        return _raise(bad(f"{bucket!r} is not a valid bucket name"))
    if "\x00" in prefix or any(ord(c) < 32 for c in prefix):
        return _raise(bad("the prefix contains control characters"))
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return Source(scheme=scheme.lower(), bucket=bucket, prefix=prefix)


def _raise(exc: InvalidSource) -> Source:
    raise exc
