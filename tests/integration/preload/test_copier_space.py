"""A volume too small for the source, and one that fills up during the copy, on a real 1 MiB tmpfs
(mounting needs root; skipped with the reason where the mount fails, failed where CI is set): both fail at once and for good
(exit 3, which the Job's podFailurePolicy does not retry), with their own reason and no partial file."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaip.preload.copier import CopyOptions, copy
from kaip.preload.errors import InsufficientCapacity, TargetFull
from kaip.preload.status import Progress, parse_outcome
from kaip.resources.preload import MANIFEST_FILE
from kaip.storage.source import parse_source
from kaip_incluster.loader.main import main as loader_main
from kaip_testbed import needs

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "volume"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        needs.missing(f"cannot mount a 1 MiB tmpfs (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def bucket_with(s3_server, objects: dict[str, bytes]) -> str:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return bucket


def options(s3_server, **kwargs) -> CopyOptions:
    return CopyOptions(
        endpoint_url=s3_server.endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        durable=False,
        **kwargs,
    )


def test_a_source_larger_than_the_volume_fails_before_copying_and_for_good(
    s3_server, tmpfs: Path, tmp_path: Path, monkeypatch
) -> None:
    bucket = bucket_with(s3_server, {"big/blob": os.urandom(3 * MiB)})
    started = time.monotonic()
    with pytest.raises(InsufficientCapacity) as caught:
        copy(parse_source(f"s3://{bucket}/big"), tmpfs, options=options(s3_server))
    assert time.monotonic() - started < 10  # no retries
    message = str(caught.value)
    assert "3145728 bytes (3.0 MiB)" in message and "1048576 bytes (1.0 MiB)" in message
    assert "spec.resources.requests.storage" in message
    assert os.listdir(tmpfs) == []

    # The PVC's capacity (the controller passes status.capacity) counts too, even when the file system is larger.
    small = bucket_with(s3_server, {"p/a": os.urandom(300 * KiB)})
    with pytest.raises(InsufficientCapacity, match=r"the PVC's capacity of 102400 bytes"):
        copy(parse_source(f"s3://{small}/p"), tmpfs, options=options(s3_server, capacity=100 * KiB))

    # The loader: reason InsufficientCapacity in the termination message, exit 3 (the Job fails at once).
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    log = tmp_path / "termination-log"
    code = loader_main([f"--source=s3://{bucket}/big", f"--target={tmpfs}", f"--termination-log={log}"])
    outcome = parse_outcome(log.read_text())
    assert code == 3
    assert outcome is not None and outcome.reason == "InsufficientCapacity" and "3.0 MiB" in outcome.message


@pytest.mark.parametrize("large", [False, True], ids=["small-objects", "ranges"])
def test_a_volume_that_fills_up_during_the_copy_is_target_full_with_nothing_partial_left(
    s3_server, tmpfs: Path, large: bool
) -> None:
    # 4 x 200 KiB fit the empty 1 MiB volume, so the check before copying passes; then another
    # writer takes most of the room, as on a shared volume.
    objects = {f"src/obj-{i}": os.urandom(200 * KiB) for i in range(4)}
    bucket = bucket_with(s3_server, objects)
    filler = tmpfs.parent / "filler-marker"

    def fill(_progress: Progress) -> None:
        if not filler.exists():
            filler.write_text("x")
            st = os.statvfs(tmpfs)
            (tmpfs / "other-writer").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 300 * KiB))

    tuning = {"multipart_threshold": 64 * KiB, "part_size": 64 * KiB} if large else {}
    started = time.monotonic()
    with pytest.raises(TargetFull) as caught:
        copy(
            parse_source(f"s3://{bucket}/src"),
            tmpfs,
            options=options(s3_server, workers=4, **tuning),
            on_progress=fill,
        )
    assert time.monotonic() - started < 10  # not retried as a network error
    assert caught.value.reason == "TargetFull" and not caught.value.temporary
    assert "no space left on the target volume" in str(caught.value)
    left = sorted(os.listdir(tmpfs))
    assert not [name for name in left if name.startswith(".kaip-tmp-")], left
    # What finished is whole and recorded (the journal), so a retry on a larger volume reuses it.
    for name in left:
        if name.startswith("obj-"):
            assert (tmpfs / name).read_bytes() == objects[f"src/{name}"]
    assert MANIFEST_FILE not in left or (tmpfs / MANIFEST_FILE).stat().st_size > 0
