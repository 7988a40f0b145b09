"""A copy killed with SIGKILL mid-way never leaves a half file under a real name, and the next run
resumes without fetching any finished file again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kaip.preload.copier import CopyOptions, copy
from kaip.preload.plan import TEMP_PREFIX
from kaip.resources.preload import MANIFEST_FILE
from kaip.storage.source import parse_source

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

MiB = 1024 * 1024

# The child copies with few workers and small parts, printing progress, until the test kills it.
CHILD = """
import sys
from pathlib import Path
from kaip.preload.copier import CopyOptions, copy
from kaip.storage.source import parse_source

MiB = 1024 * 1024

def show(p):
    print(p.objects_done, p.bytes_done, p.bytes_total, flush=True)

copy(parse_source(sys.argv[1]), Path(sys.argv[2]),
     options=CopyOptions(workers=3, part_size=MiB, multipart_threshold=4 * MiB, progress_interval=0.05),
     on_progress=show)
print("finished", flush=True)
"""


@pytest.mark.parametrize("kill_at", [0.5, 0.85])
def test_a_run_killed_with_sigkill_resumes_without_fetching_finished_files(
    s3_server, tmp_path: Path, kill_at: float
) -> None:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    objects = {f"r/{i % 9}/s{i:04d}": os.urandom(20_000 + i) for i in range(600)}
    objects.update({f"r/large/{i}.bin": os.urandom(8 * MiB + i) for i in range(3)})
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))
    expected = {k[2:]: v for k, v in objects.items()}
    target = tmp_path / "vol"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": "us-east-1",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"s3://{bucket}/r", str(target)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        assert line != "finished\n", "the copy finished before it could be killed"
        objects, done, total = (int(x) for x in line.split())
        # Bytes alone do not say a file is whole: parts of the large files may make up half of them.
        if total and objects and done >= kill_at * total:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    finished = {}
    for path in target.rglob("*"):
        if path.is_file() and path.name != f"{MANIFEST_FILE}.journal":
            rel = str(path.relative_to(target))
            if path.name.startswith(TEMP_PREFIX):
                continue
            assert path.read_bytes() == expected[rel], f"{rel} is under its real name but not whole"
            finished[rel] = path.stat().st_mtime_ns
    assert 0 < len(finished) < len(expected)

    report = copy(
        parse_source(f"s3://{bucket}/r"),
        target,
        options=CopyOptions(
            endpoint_url=s3_server.endpoint,
            access_key_id=s3_server.access_key,
            secret_access_key=s3_server.secret_key,
        ),
    )
    assert report.objects_reused == len(finished)
    assert report.objects_copied == len(expected) - len(finished)
    assert report.bytes_copied == sum(len(v) for k, v in expected.items() if k not in finished)
    for rel, mtime in finished.items():
        assert (target / rel).stat().st_mtime_ns == mtime, f"{rel} was written again"
    on_disk = {
        str(p.relative_to(target)): p.read_bytes()
        for p in target.rglob("*")
        if p.is_file() and p.name != MANIFEST_FILE and not p.name.startswith(TEMP_PREFIX)
    }
    assert on_disk == expected
    assert not (target / f"{MANIFEST_FILE}.journal").exists()
