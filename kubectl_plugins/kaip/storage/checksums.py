"""Content checksums as the stores publish them, and streaming hashers that check them.

S3 sends additional checksums base64-encoded (``x-amz-checksum-crc32c``...) and, for single-part
uploads without SSE-KMS/SSE-C, an ETag that is the hex MD5; GCS lists ``crc32c`` and (except for
composite objects) ``md5Hash``, both base64. An :class:`Expected` is one such value as bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

#: Cheapest first: the first one we can compute is the one we verify.
PREFERENCE = ("crc32c", "crc32", "md5", "sha256", "sha1", "crc64nvme")

#: Checksums a CPU computes at several GiB/s a core (CRC32C and CRC64NVME in hardware, CRC32 with
#: SIMD). MD5 runs at about 0.7 GiB/s, SHA-1 and SHA-256 near 1.7: more CPU than the copy itself.
FAST = frozenset({"crc32c", "crc32", "crc64nvme"})

#: Which published checksums are computed, with gcloud storage's names (its ``check_hashes``):
#: ``if_fast_else_skip`` the fast ones only (boto3's default is the same: it validates the CRCs an
#: answer carries and never the ETag), ``always`` any, ``never`` none (sizes are always checked).
CHECK_HASHES = ("if_fast_else_skip", "always", "never")
DEFAULT_CHECK = "if_fast_else_skip"

_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


@dataclass(frozen=True)
class Expected:
    algorithm: str
    digest: bytes

    @property
    def label(self) -> str:
        return self.algorithm


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def _crc32c() -> Hasher:
    import google_crc32c

    checksum: Hasher = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
    return checksum


def _crc64nvme() -> Hasher:
    from awscrt import checksums  # type: ignore[import-not-found]  # optional: boto3[crt]

    class _Crc64:
        def __init__(self) -> None:
            self._value = 0

        def update(self, data: bytes, /) -> None:
            self._value = checksums.crc64nvme(data, self._value)

        def digest(self) -> bytes:
            return int(self._value).to_bytes(8, "big")

    return _Crc64()


_FACTORIES: dict[str, Callable[[], Hasher]] = {
    "crc32": _Crc32,
    "crc32c": _crc32c,
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
    "crc64nvme": _crc64nvme,
}


def computable(algorithm: str) -> bool:
    factory = _FACTORIES.get(algorithm)
    if factory is None:
        return False
    try:
        factory()
    except ImportError:
        return False
    return True


def choose(candidates: Iterable[Expected], *, check: str = "always") -> Expected | None:
    """The cheapest checksum of ``candidates`` that this process can compute and ``check`` allows."""
    if check == "never":
        return None
    by_name = {c.algorithm: c for c in candidates}
    for name in PREFERENCE:
        if name in by_name and (check == "always" or name in FAST) and computable(name):
            return by_name[name]
    return None


def passed_over(candidates: Iterable[Expected], *, check: str) -> str | None:
    """The checksum ``check`` left out of ``candidates`` when :func:`choose` returns None: the one
    ``always`` would have computed (what the report names), or None when none was published."""
    if choose(candidates, check=check) is not None:
        return None
    chosen = choose(candidates, check="always")
    return chosen.algorithm if chosen else None


def hasher(algorithm: str) -> Hasher:
    return _FACTORIES[algorithm]()


def from_base64(algorithm: str, value: str | None) -> Expected | None:
    """A published base64 checksum; composite ones (``...-N``) cover parts, not the object: None."""
    if not value or "-" in value:
        return None
    try:
        return Expected(algorithm, base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def from_etag(etag: str) -> Expected | None:
    """An S3 ETag that is an MD5 (single-part upload); multipart ETags (``...-N``) are not."""
    value = etag.strip('"')
    return Expected("md5", bytes.fromhex(value)) if _HEX_MD5.match(value) else None


def digest_of(algorithm: str, chunks: Iterable[bytes]) -> bytes:
    h = hasher(algorithm)
    for chunk in chunks:
        h.update(chunk)
    return h.digest()


def describe(expected: Sequence[Expected]) -> str:
    return ", ".join(e.algorithm for e in expected) or "none"
