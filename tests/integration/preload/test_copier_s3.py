"""The copier against a real S3 server (MinIO): thousands of nested objects, large objects in
ranges, checksums, hostile keys and symlink traps, errors a user meets, and runs that fetch nothing."""

from __future__ import annotations

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kaip.preload.copier import CopyOptions, copy
from kaip.preload.errors import AccessDenied, SourceNotFound
from kaip.resources.preload import MANIFEST_FILE
from kaip.storage.source import parse_source

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

MiB = 1024 * 1024
SMALL = 3000


def options(s3_server, **kwargs) -> CopyOptions:
    return CopyOptions(
        endpoint_url=s3_server.endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        durable=False,
        **kwargs,
    )


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name != MANIFEST_FILE
    }


@pytest.fixture(scope="module")
def dataset(s3_server) -> tuple[str, dict[str, bytes]]:
    """SMALL objects under nested prefixes, a sibling prefix that must not match, one empty object."""
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    objects = {f"data/{i % 7}/{i % 13}/obj-{i:05d}.bin": os.urandom(100 + i % 3000) for i in range(SMALL)}
    objects["data/empty"] = b""
    objects["data/ünï cödé/a+b%20c?.txt"] = b"odd but safe"
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))
    client.put_object(Bucket=bucket, Key="data-hf/must-not-copy", Body=b"sibling prefix")
    client.put_object(Bucket=bucket, Key="datafile", Body=b"sibling object")
    return bucket, {k[len("data/") :]: v for k, v in objects.items()}


def test_thousands_of_nested_objects_arrive_verified_and_a_second_run_fetches_nothing(
    s3_server, dataset, tmp_path: Path
) -> None:
    bucket, expected = dataset
    seen: list[int] = []
    report = copy(
        parse_source(f"s3://{bucket}/data"),
        tmp_path,
        options=options(s3_server),
        on_progress=lambda p: seen.append(p.objects_done),
    )
    assert files_under(tmp_path) == expected
    assert report.objects_copied == len(expected)
    # Single-part uploads: the ETag is the MD5, which the default leaves out (it costs more CPU than
    # the copy). The empty object is fetched by no GET: size only.
    assert report.verified == {"size, md5 not computed": len(expected) - 1, "size": 1}
    assert f"size only (md5 published, not computed): {len(expected) - 1}" in report.verification()
    assert report.refused == []
    assert seen[-1] == len(expected)
    assert report.digest.startswith("sha256:")

    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    again = copy(parse_source(f"s3://{bucket}/data/"), tmp_path, options=options(s3_server))
    assert (again.objects_copied, again.objects_reused, again.bytes_copied) == (0, len(expected), 0)
    assert again.digest == report.digest
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_changed_source_fetches_only_what_changed_and_removes_what_is_gone(
    s3_server, tmp_path: Path
) -> None:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    for name in ("a", "b", "c"):
        client.put_object(Bucket=bucket, Key=f"p/{name}", Body=name.encode() * 10)
    source = parse_source(f"s3://{bucket}/p")
    first = copy(source, tmp_path, options=options(s3_server))
    client.put_object(Bucket=bucket, Key="p/b", Body=b"new content")
    client.delete_object(Bucket=bucket, Key="p/c")
    (tmp_path / "mine.txt").write_text("a file the loader never wrote")
    second = copy(source, tmp_path, options=options(s3_server))
    assert (second.objects_copied, second.objects_reused, second.removed) == (1, 1, 1)
    assert second.digest != first.digest
    assert files_under(tmp_path) == {
        "a": b"a" * 10,
        "b": b"new content",
        "mine.txt": b"a file the loader never wrote",
    }


@pytest.mark.parametrize(("check", "verified"), [("always", "md5"), ("never", "size, never")])
def test_check_hashes_always_computes_the_md5_etag_and_never_computes_nothing(
    s3_server, tmp_path: Path, check: str, verified: str
) -> None:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    small, mid = os.urandom(3000), os.urandom(3 * MiB + 1)
    client.put_object(Bucket=bucket, Key="set/small", Body=small)
    client.put_object(Bucket=bucket, Key="set/mid", Body=mid)
    client.put_object(Bucket=bucket, Key="set/crc", Body=mid[:MiB], ChecksumAlgorithm="CRC32")
    report = copy(
        parse_source(f"s3://{bucket}/set"), tmp_path, options=options(s3_server, check_hashes=check)
    )
    assert files_under(tmp_path) == {"small": small, "mid": mid, "crc": mid[:MiB]}
    # "always" picks the cheapest one published (the CRC where there is one); "never" none at all
    assert report.verified == ({"md5": 2, "crc32": 1} if check == "always" else {verified: 3})


def test_large_objects_are_fetched_in_ranges_and_checked(s3_server, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    with_crc = os.urandom(96 * MiB + 123)
    client.put_object(Bucket=bucket, Key="big/with-crc32.bin", Body=with_crc, ChecksumAlgorithm="CRC32")
    multipart = os.urandom(150 * MiB + 7)
    source_file = tmp_path / "upload.bin"
    source_file.write_bytes(multipart)
    client.upload_file(
        str(source_file), bucket, "big/multipart.bin", Config=TransferConfig(multipart_chunksize=16 * MiB)
    )
    target = tmp_path / "out"
    report = copy(parse_source(f"s3://{bucket}/big"), target, options=options(s3_server, part_size=8 * MiB))
    assert (
        hashlib.sha256((target / "with-crc32.bin").read_bytes()).digest() == hashlib.sha256(with_crc).digest()
    )
    assert (
        hashlib.sha256((target / "multipart.bin").read_bytes()).digest() == hashlib.sha256(multipart).digest()
    )
    # A multipart ETag is no MD5 and MinIO publishes no checksum for it: the report says so.
    assert report.verified == {"crc32": 1, "size": 1}
    assert "size only (no checksum published): 1" in report.verification()
    assert not [p for p in target.iterdir() if p.name.startswith(".kaip-tmp-")]


def test_hostile_keys_are_refused_and_symlinks_never_followed(s3_server, tmp_path: Path) -> None:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    for key, body in {
        "data/dir/": b"",
        "data/.kaip-preload.json": b"{}",
        "data/linkdir/file": b"through a symlink?",
        "data/linkfile": b"replaces the link",
        "data/fine": b"fine",
    }.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    target = tmp_path / "target"
    target.mkdir()
    (target / "linkdir").symlink_to(outside, target_is_directory=True)
    (target / "linkfile").symlink_to(outside / "precious")

    report = copy(parse_source(f"s3://{bucket}/data"), target, options=options(s3_server))

    refused = dict(report.refused)
    # (``a`` beside ``a/b`` cannot be stored in MinIO or fake-gcs-server; tests/unit/preload covers it.)
    assert set(refused) == {"data/.kaip-preload.json", "data/linkdir/file"}
    assert "symlink" in refused["data/linkdir/file"]
    assert report.skipped == [("data/dir/", "directory marker")]
    assert sorted(os.listdir(outside)) == ["precious"]
    assert (outside / "precious").read_bytes() == b"keep me"
    assert not (target / "linkfile").is_symlink()
    assert (target / "linkfile").read_bytes() == b"replaces the link"
    assert (target / "fine").read_bytes() == b"fine"


def test_errors_a_user_meets(s3_server, tmp_path: Path) -> None:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="x/y", Body=b"1")
    with pytest.raises(SourceNotFound, match="does not exist") as missing:
        copy(parse_source(f"s3://{bucket}-nope/x"), tmp_path, options=options(s3_server))
    assert missing.value.reason == "SourceNotFound"
    with pytest.raises(SourceNotFound, match="no objects under"):
        copy(parse_source(f"s3://{bucket}/nothing-here"), tmp_path, options=options(s3_server))
    wrong = CopyOptions(
        endpoint_url=s3_server.endpoint, access_key_id=s3_server.access_key, secret_access_key="wrong-secret"
    )
    with pytest.raises(AccessDenied) as denied:
        copy(parse_source(f"s3://{bucket}/x"), tmp_path, options=wrong)
    assert denied.value.reason == "AccessDenied"
    assert "wrong-secret" not in str(denied.value)
    anonymous = CopyOptions(endpoint_url=s3_server.endpoint, anonymous=True)
    with pytest.raises(AccessDenied):
        copy(parse_source(f"s3://{bucket}/x"), tmp_path, options=anonymous)


def test_credentials_and_endpoint_come_from_the_environment(s3_server, tmp_path: Path, monkeypatch) -> None:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="env/file", Body=b"from env")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    report = copy(parse_source(f"s3://{bucket}/env"), tmp_path)
    assert report.objects_copied == 1
    assert (tmp_path / "file").read_bytes() == b"from env"


def test_a_key_xml_cannot_carry_never_fails_the_load(s3_server, tmp_path: Path) -> None:
    # MinIO lists U+0001 as ``&#x1;`` (not XML 1.0) unless asked for encoding-type=url, which we ask.
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    objects = {
        "d/ctrl\x01name": b"control character",
        "d/tab\tand\x1fus": b"more of them",
        "d/a+b c%41.txt": b"plus, space, percent",
        "d/fine": b"fine",
        "d/.kaip-tmp-x": b"still refused",
    }
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)

    report = copy(parse_source(f"s3://{bucket}/d"), tmp_path, options=options(s3_server))

    assert report.refused == [("d/.kaip-tmp-x", "reserved name (kaip temporary file)")]
    assert files_under(tmp_path) == {k[2:]: v for k, v in objects.items() if "kaip" not in k}
    again = copy(parse_source(f"s3://{bucket}/d"), tmp_path, options=options(s3_server))
    assert (again.objects_copied, again.objects_reused) == (0, 4)
