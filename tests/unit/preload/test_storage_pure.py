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


def test_a_url_encoded_listing_gives_the_keys_back_and_a_plain_one_is_taken_as_it_is() -> None:
    import xml.etree.ElementTree as ET

    from kaip.storage.s3 import _parse_listing

    ns = "http://s3.amazonaws.com/doc/2006-03-01/"
    encoded = (
        f'<ListBucketResult xmlns="{ns}"><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>'
        "<Contents><Key>d/ctrl%01name</Key><Size>3</Size><ETag>&quot;e&quot;</ETag></Contents>"
        "<Contents><Key>d/a+b%2Bc%C3%BC</Key><Size>1</Size><ETag>&quot;f&quot;</ETag></Contents>"
        "<Contents><Key>d/bad%FF</Key><Size>1</Size><ETag>&quot;g&quot;</ETag></Contents>"
        "</ListBucketResult>"
    )
    page, token = _parse_listing(ET.fromstring(encoded))
    assert [o.key for o in page] == ["d/ctrl\x01name", "d/a b+cü", "d/bad\udcff"]
    assert token is None
    plain = encoded.replace("<EncodingType>url</EncodingType>", "")
    assert _parse_listing(ET.fromstring(plain))[0][1].key == "d/a+b%2Bc%C3%BC"


def test_proxy_urls_are_parsed_and_errors_never_show_a_password() -> None:
    from kaip.proxies import parse_proxy, proxy_for

    proxy = parse_proxy("http://user:pa%40ss@proxy.corp:3128", source="HTTPS_PROXY")
    assert (proxy.host, proxy.port, proxy.authority) == ("proxy.corp", 3128, "proxy.corp:3128")
    assert proxy.authorization == "Basic " + base64.b64encode(b"user:pa@ss").decode()
    assert "pa@ss" not in repr(proxy) and "cGE" not in repr(proxy)
    with pytest.raises(ValueError, match='HTTPS_PROXY: a proxy of scheme "socks5"') as caught:
        parse_proxy("socks5://user:hunter2@p:1080", source="HTTPS_PROXY")
    assert "hunter2" not in str(caught.value)
    env = {"HTTP_PROXY": "proxy.corp:3128", "NO_PROXY": ".internal"}
    assert proxy_for("http://s3.example.org:9000", env) == parse_proxy("http://proxy.corp:3128", source="x")
    assert proxy_for("http://minio.internal:9000", env) is None
    assert proxy_for("http://127.0.0.1:9000", env) is None
    assert proxy_for("https://s3.example.org", env) is None  # https takes HTTPS_PROXY only


def test_the_check_hashes_policy_computes_the_fast_checksums_by_default() -> None:
    md5, crc = checksums.Expected("md5", b"m"), checksums.Expected("crc32", b"c")
    assert checksums.choose([md5, crc], check="if_fast_else_skip") == crc
    assert checksums.choose([md5], check="if_fast_else_skip") is None
    assert checksums.passed_over([md5], check="if_fast_else_skip") == "md5"
    assert checksums.passed_over([md5, crc], check="if_fast_else_skip") is None
    assert checksums.choose([md5], check="always") == md5
    assert checksums.choose([md5, crc], check="never") is None
    assert checksums.passed_over([], check="never") is None
    assert checksums.DEFAULT_CHECK == "if_fast_else_skip"


def test_the_copy_command_offers_exactly_the_policies_the_copier_knows() -> None:
    import click

    from kaip.commands import pvc_preload

    option = next(p for p in pvc_preload.cli.commands["copy"].params if p.name == "check_hashes")
    assert isinstance(option.type, click.Choice)
    assert tuple(option.type.choices) == checksums.CHECK_HASHES
    assert option.default == checksums.DEFAULT_CHECK
