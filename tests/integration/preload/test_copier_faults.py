"""The copier when the store misbehaves: throttling (S3 503 SlowDown, GCS 429), streams cut short, and
a store that serves keys built to escape the target. Faults come from small HTTP servers on loopback:
a proxy in front of the real MinIO / fake-gcs-server, and a scripted S3 endpoint."""

from __future__ import annotations

import http.client
import http.server
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest

from kaip.preload.copier import CopyOptions, copy
from kaip.preload.errors import ChecksumMismatch, Throttled
from kaip.resources.preload import MANIFEST_FILE
from kaip.storage import wire
from kaip.storage.retry import RetryPolicy
from kaip.storage.source import parse_source

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

# Every third request throttled by 8 workers: one request may meet it several times running, so
# enough attempts that a run of bad luck ((1/3)^12) never fails the copy.
FAST_RETRY = RetryPolicy(attempts=12, base=0.01, cap=0.2, throttled_base=0.02)
MiB = 1024 * 1024
STALL_SECONDS = 4.0
SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
TOO_MANY = b'{"error": {"code": 429, "message": "rate limit exceeded"}}'

# A fault decides per request: None forwards it; (status, body) answers instead; "truncate" cuts the
# body; "stall" sends half of it and then nothing for STALL_SECONDS; "corrupt" changes one byte of it.
Fault = Callable[[str, str], "tuple[int, bytes] | str | None"]


class FaultProxy:
    """Forwards to ``upstream`` byte for byte (Host included, so S3 signatures stay valid), except
    where ``fault(method, path)`` says otherwise. Counts what it did."""

    def __init__(self, upstream: str, fault: Fault) -> None:
        self.upstream = urlsplit(upstream)
        self.fault = fault
        self.injected = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        decision = self.fault(req.command, req.path)
        if isinstance(decision, tuple):
            self.injected += 1
            status, body = decision
            req.send_response(status)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
            return
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        headers = dict(req.headers.items())
        conn.request(req.command, req.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        req.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                req.send_header(key, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if decision == "corrupt" and body:
            self.injected += 1
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0x55]) + body[middle + 1 :]
        if decision in ("truncate", "stall") and len(body) > 1:
            self.injected += 1
            req.wfile.write(body[: len(body) // 2])
            req.wfile.flush()
            if decision == "stall":
                time.sleep(STALL_SECONDS)
            req.close_connection = True
            req.connection.shutdown(2)
            return
        if req.command != "HEAD":
            req.wfile.write(body)
        conn.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy() -> Iterator[Callable[[str, Fault], FaultProxy]]:
    started: list[FaultProxy] = []

    def start(upstream: str, fault: Fault) -> FaultProxy:
        started.append(FaultProxy(upstream, fault))
        return started[-1]

    yield start
    for p in started:
        p.stop()


def every(n: int, answer: tuple[int, bytes], *, only: Callable[[str, str], bool]) -> Fault:
    counter = itertools.count(1)
    lock = threading.Lock()

    def fault(method: str, path: str) -> tuple[int, bytes] | None:
        if not only(method, path):
            return None
        with lock:
            i = next(counter)
        return answer if i % n == 0 else None

    return fault


def s3_options(s3_server, endpoint: str, **tuning: Any) -> CopyOptions:
    """Options for the MinIO fixture's keys through ``endpoint`` (a fault proxy), failing fast."""
    return CopyOptions(
        endpoint_url=endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        retry=FAST_RETRY,
        durable=False,
        **tuning,
    )


def s3_bucket_with(s3_server, objects: dict[str, bytes]) -> str:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return bucket


def read_all(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST_FILE
    }


def test_s3_slowdown_on_listing_and_downloads_is_retried_with_backoff(
    s3_server, proxy, tmp_path: Path
) -> None:
    objects = {f"t/{i:03d}": os.urandom(2000) for i in range(150)}
    bucket = s3_bucket_with(s3_server, objects)
    slow = proxy(s3_server.endpoint, every(3, (503, SLOWDOWN), only=lambda m, p: m in ("GET", "HEAD")))
    report = copy(
        parse_source(f"s3://{bucket}/t"),
        tmp_path,
        options=s3_options(s3_server, slow.endpoint, workers=8),
    )
    assert read_all(tmp_path) == {k[2:]: v for k, v in objects.items()}
    assert slow.injected >= 50
    assert report.throttled == report.retries == slow.injected


def test_gcs_429_is_retried_with_backoff(gcs_server, proxy, tmp_path: Path) -> None:
    bucket = gcs_server.client().create_bucket(f"kaip-{uuid.uuid4().hex[:12]}")
    objects = {f"g/{i:03d}": os.urandom(1500) for i in range(60)}
    for key, body in objects.items():
        bucket.blob(key).upload_from_string(body)
    limited = proxy(gcs_server.endpoint, every(2, (429, TOO_MANY), only=lambda m, p: m == "GET"))
    report = copy(
        parse_source(f"gs://{bucket.name}/g"),
        tmp_path,
        options=CopyOptions(endpoint_url=limited.endpoint, anonymous=True, retry=FAST_RETRY, durable=False),
    )
    assert read_all(tmp_path) == {k[2:]: v for k, v in objects.items()}
    assert report.throttled >= 30


def test_a_stream_cut_short_resumes_where_it_stopped(s3_server, proxy, tmp_path: Path) -> None:
    body = os.urandom(5 * 1024 * 1024 + 11)
    bucket = s3_bucket_with(s3_server, {"c/blob": body})
    cut = set()

    def fault(method: str, path: str) -> str | None:
        if method == "GET" and path.endswith("/c/blob") and path not in cut:
            cut.add(path)
            return "truncate"
        return None

    broken = proxy(s3_server.endpoint, fault)
    report = copy(
        parse_source(f"s3://{bucket}/c"),
        tmp_path,
        options=s3_options(s3_server, broken.endpoint, check_hashes="always"),
    )
    assert (tmp_path / "blob").read_bytes() == body
    assert broken.injected == 1
    assert report.retries == 1
    assert report.verified == {"md5": 1}


@pytest.mark.parametrize("fault", ["truncate", "stall"])
def test_a_large_object_whose_range_breaks_off_resumes_within_the_range(
    s3_server, proxy, tmp_path: Path, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ranges of a large object over plain HTTP are spliced from the socket into the file: a range
    # cut short, or silent for longer than the timeout, goes on from its last byte on a new connection.
    body = os.urandom(3 * MiB + 5)
    bucket = s3_bucket_with(s3_server, {"big/blob": body})
    seen: set[str] = set()
    ranges: list[str] = []

    def third_range_breaks(method: str, path: str) -> str | None:
        if method != "GET" or not path.endswith("/big/blob"):
            return None
        ranges.append(path)
        if len(ranges) == 3 and path not in seen:
            seen.add(path)
            return fault
        return None

    broken = proxy(s3_server.endpoint, third_range_breaks)
    spliced: list[int] = []
    splice_to = wire.Response.splice_to

    def counted(self: wire.Response, fd: int, position: int, moved: Callable[[int], None]) -> None:
        spliced.append(position)
        splice_to(self, fd, position, moved)

    monkeypatch.setattr(wire.Response, "splice_to", counted)
    started = time.monotonic()
    report = copy(
        parse_source(f"s3://{bucket}/big"),
        tmp_path,
        options=s3_options(
            s3_server,
            broken.endpoint,
            workers=1,
            part_size=MiB,
            multipart_threshold=2 * MiB,
            timeout=1.0,
            check_hashes="always",
        ),
    )
    assert (tmp_path / "blob").read_bytes() == body
    assert broken.injected == 1 and report.retries == 1
    assert len(ranges) == 5  # four ranges, one of them asked twice: from where it broke off
    if wire.CAN_SPLICE:
        # every range went through the kernel, the third one again from its middle
        assert sorted(spliced) == [0, MiB, 2 * MiB, 2 * MiB + MiB // 2, 3 * MiB]
    assert report.verified == {"md5": 1}
    if fault == "stall":
        assert time.monotonic() - started < STALL_SECONDS + 10


@pytest.mark.parametrize(
    ("check", "upload", "computed"),
    [
        # the default computes a CRC the store publishes (cheap), and not the MD5 ETag...
        ("if_fast_else_skip", {"ChecksumAlgorithm": "CRC32"}, "crc32"),
        # ...which "always" computes too
        ("always", {}, "md5"),
    ],
)
def test_a_corrupted_answer_is_fetched_again_and_a_lasting_one_fails(
    s3_server, proxy, tmp_path: Path, check: str, upload: dict[str, str], computed: str
) -> None:
    body = os.urandom(2 * MiB + 3)
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="c/blob", Body=body, **upload)
    corrupted: list[str] = []

    def first_get_corrupt(method: str, path: str) -> str | None:
        if method == "GET" and path.endswith("/c/blob") and not corrupted:
            corrupted.append(path)
            return "corrupt"
        return None

    broken = proxy(s3_server.endpoint, first_get_corrupt)
    report = copy(
        parse_source(f"s3://{bucket}/c"),
        tmp_path / "once",
        options=s3_options(s3_server, broken.endpoint, check_hashes=check),
    )
    assert (tmp_path / "once" / "blob").read_bytes() == body
    assert broken.injected == 1
    assert report.verified == {computed: 1}

    always = proxy(
        s3_server.endpoint, lambda method, path: "corrupt" if method == "GET" and "/c/blob" in path else None
    )
    with pytest.raises(
        ChecksumMismatch, match=rf"s3://{bucket}/c/blob: {computed} of the downloaded bytes differs"
    ):
        copy(
            parse_source(f"s3://{bucket}/c"),
            tmp_path / "never",
            options=s3_options(s3_server, always.endpoint, check_hashes=check),
        )
    assert always.injected == 3  # fetched three times, then refused
    assert not (tmp_path / "never" / "blob").exists()


def test_throttling_that_never_ends_fails_with_reason_throttled(s3_server, proxy, tmp_path: Path) -> None:
    bucket = s3_bucket_with(s3_server, {"x/y": b"1"})
    wall = proxy(s3_server.endpoint, lambda m, p: (503, SLOWDOWN))
    with pytest.raises(Throttled) as info:
        copy(
            parse_source(f"s3://{bucket}/x"),
            tmp_path,
            options=CopyOptions(
                endpoint_url=wall.endpoint,
                access_key_id=s3_server.access_key,
                secret_access_key=s3_server.secret_key,
                retry=RetryPolicy(attempts=3, base=0.01, throttled_base=0.01),
            ),
        )
    assert info.value.reason == "Throttled"
    assert wall.injected == 3


class ScriptedS3:
    """An anonymous S3 endpoint serving ListObjectsV2 and GET for whatever keys it is given, the
    hostile ones too (real stores refuse or clean ``..`` on upload; a malicious or buggy one may not)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        store = objects

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: bytes, ctype: str = "application/xml") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                _, _bucket, key = url.path.split("/", 2) if url.path.count("/") >= 2 else ("", "", "")
                query = parse_qs(url.query)
                if not key and "list-type" in query:
                    prefix = query.get("prefix", [""])[0]
                    items = "".join(
                        f"<Contents><Key>{escape(k)}</Key><Size>{len(v)}</Size><ETag>&quot;e{i}&quot;</ETag>"
                        f"<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>"
                        for i, (k, v) in enumerate(sorted(store.items()))
                        if k.startswith(prefix)
                    )
                    self.reply(
                        200,
                        f"<ListBucketResult><IsTruncated>false</IsTruncated>{items}</ListBucketResult>".encode(),
                    )
                    return
                body = store.get(unquote(key))
                if body is None:
                    self.reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
                else:
                    self.reply(200, body, "application/octet-stream")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_keys_built_to_escape_are_refused_and_nothing_lands_outside(tmp_path: Path) -> None:
    hostile = {
        "in/../escape.txt": "'..' path segment",
        "in/a/../../../up.txt": "'..' path segment",
        "in/..": "'..' path segment",
        "in//etc/cron.d/x": "absolute path",
        "in/./dot.txt": "'.' path segment",
        "in/d//e": "empty path segment ('//')",
        "in/" + "n" * 300: "a name longer than 255 bytes",
        "in/col": "'col' is also a directory of other objects",
        "in/.kaip-preload.json": "reserved name (kaip manifest)",
    }
    served = dict.fromkeys(hostile, b"evil")
    served.update({"in/col/inner": b"kept", "in/ok.txt": b"fine", "in/marker/": b""})
    store = ScriptedS3(served)
    target = tmp_path / "deep" / "target"
    try:
        report = copy(
            parse_source("s3://hostile/in"),
            target,
            options=CopyOptions(endpoint_url=store.endpoint, anonymous=True, durable=False),
        )
    finally:
        store.stop()
    assert dict(report.refused) == hostile
    assert report.skipped == [("in/marker/", "directory marker")]
    assert read_all(tmp_path) == {"deep/target/col/inner": b"kept", "deep/target/ok.txt": b"fine"}
