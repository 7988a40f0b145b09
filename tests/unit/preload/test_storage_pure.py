"""Pure parts of kaip.storage: checksum parsing, back-off. (Signing is proven against MinIO.)"""

from __future__ import annotations

import base64
import hashlib

import pytest

from kaip.storage import checksums
from kaip.storage.errors import Throttled
from kaip.storage.retry import Retryable, RetryPolicy, call


def test_checksums_from_headers_and_etags() -> None:
    data = b"hello world"
    md5 = hashlib.md5(data).hexdigest()
    assert checksums.from_etag(f'"{md5}"') == checksums.Expected("md5", bytes.fromhex(md5))
    assert checksums.from_etag('"0123456789abcdef0123456789abcdef-3"') is None
    crc = base64.b64encode(checksums.digest_of("crc32c", [data])).decode()
    expected = checksums.from_base64("crc32c", crc)
    assert expected is not None and checksums.digest_of("crc32c", [b"hello ", b"world"]) == expected.digest
    assert checksums.from_base64("crc32", "AAAAAA==-2") is None  # composite: covers parts only
    assert (
        checksums.choose([checksums.Expected("md5", b"x"), checksums.Expected("crc32c", b"y")]).algorithm
        == "crc32c"
    )


def test_backoff_retries_then_raises_the_final_error() -> None:
    slept: list[float] = []
    tries = 0

    def flaky() -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise Retryable(Throttled("slow down"), throttled=True)
        return "ok"

    assert call(flaky, policy=RetryPolicy(attempts=5), sleep=slept.append) == "ok"
    assert len(slept) == 2

    def always() -> str:
        raise Retryable(Throttled("still slow"), throttled=True)

    with pytest.raises(Throttled, match="still slow"):
        call(always, policy=RetryPolicy(attempts=3), sleep=slept.append)


def test_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(base=0.1, cap=2.0, throttled_base=0.5)
    assert policy.delay(1, throttled=False, rng=lambda: 1.0) == 0.2
    assert policy.delay(3, throttled=True, rng=lambda: 1.0) == 2.0
