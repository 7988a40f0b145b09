"""The copier against a real GCS API (fake-gcs-server): many nested objects verified by crc32c, a large
object in ranges, and a second run that fetches nothing. (fake-gcs-server cleans ``..`` out of names
on upload, so keys that try to escape are served by the scripted store of test_copier_hostile.py.)"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kaip.preload.copier import CopyOptions, copy
from kaip.preload.errors import SourceNotFound
from kaip.resources.preload import MANIFEST_FILE
from kaip.storage.source import parse_source

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

MiB = 1024 * 1024


def options(gcs_server, **kwargs) -> CopyOptions:
    return CopyOptions(endpoint_url=gcs_server.endpoint, anonymous=True, durable=False, **kwargs)


def new_bucket(gcs_server):
    return gcs_server.client().create_bucket(f"kaip-{uuid.uuid4().hex[:12]}")


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST_FILE
    }


def test_many_nested_objects_and_a_large_one_arrive_checked_by_crc32c(gcs_server, tmp_path: Path) -> None:
    bucket = new_bucket(gcs_server)
    objects = {f"set/{i % 5}/{i % 11}/f{i:04d}": os.urandom(50 + i) for i in range(1200)}
    objects["set/large/model.bin"] = os.urandom(120 * MiB + 3)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: bucket.blob(kv[0]).upload_from_string(kv[1]), objects.items()))
    bucket.blob("setting/not-this").upload_from_string(b"sibling prefix")

    report = copy(
        parse_source(f"gs://{bucket.name}/set"), tmp_path, options=options(gcs_server, part_size=16 * MiB)
    )
    assert files_under(tmp_path) == {k[len("set/") :]: v for k, v in objects.items()}
    assert report.verified == {"crc32c": len(objects)}

    again = copy(parse_source(f"gs://{bucket.name}/set"), tmp_path, options=options(gcs_server))
    assert (again.objects_copied, again.objects_reused) == (0, len(objects))


def test_emulator_from_the_environment_and_a_missing_bucket(gcs_server, tmp_path: Path, monkeypatch) -> None:
    bucket = new_bucket(gcs_server)
    bucket.blob("e/x").upload_from_string(b"via STORAGE_EMULATOR_HOST")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    report = copy(parse_source(f"gs://{bucket.name}/e"), tmp_path)
    assert report.objects_copied == 1
    assert (tmp_path / "x").read_bytes() == b"via STORAGE_EMULATOR_HOST"
    with pytest.raises(SourceNotFound, match="does not exist"):
        copy(parse_source(f"gs://{bucket.name}-missing/e"), tmp_path)
