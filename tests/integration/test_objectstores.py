"""The object stores of the test bed are the real servers, reached through the SDKs' normal settings."""

from __future__ import annotations

from typing import Any

import pytest

from kaip_testbed.objectstores import GCSServer, S3Server

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]


def test_minio_speaks_s3_with_multipart_uploads(s3_server: S3Server, bucket_name: str) -> None:
    s3: Any = s3_server.client()
    s3.create_bucket(Bucket=bucket_name)
    s3.put_object(Bucket=bucket_name, Key="data/a.txt", Body=b"hello")
    part = b"x" * (5 * 1024 * 1024)
    upload = s3.create_multipart_upload(Bucket=bucket_name, Key="data/big.bin")
    etags = [
        s3.upload_part(
            Bucket=bucket_name, Key="data/big.bin", UploadId=upload["UploadId"], PartNumber=n, Body=part
        )["ETag"]
        for n in (1, 2)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket_name,
        Key="data/big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in zip((1, 2), etags, strict=True)]},
    )
    listed = s3.list_objects_v2(Bucket=bucket_name, Prefix="data/")["Contents"]
    assert {(o["Key"], o["Size"]) for o in listed} == {("data/a.txt", 5), ("data/big.bin", 10 * 1024 * 1024)}
    assert next(o for o in listed if o["Key"] == "data/big.bin")["ETag"].endswith(
        '-2"'
    )  # a real multipart ETag
    ranged = s3.get_object(Bucket=bucket_name, Key="data/a.txt", Range="bytes=1-3")["Body"].read()
    assert ranged == b"ell"


def test_fake_gcs_server_speaks_the_json_api_with_checksums(gcs_server: GCSServer, bucket_name: str) -> None:
    client: Any = gcs_server.client()
    bucket = client.create_bucket(bucket_name)
    bucket.blob("data/a.txt").upload_from_string(b"hello")
    blobs = list(client.list_blobs(bucket_name, prefix="data/"))
    assert [(b.name, b.size) for b in blobs] == [("data/a.txt", 5)]
    assert blobs[0].crc32c and blobs[0].md5_hash
    assert bucket.blob("data/a.txt").download_as_bytes(start=1, end=3) == b"ell"
