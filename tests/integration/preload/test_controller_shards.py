"""Sharded loading: N loader Pods of an Indexed Job, each fetching its own share of the keys.

The copier's part against MinIO (shards that together copy everything, resume only their own
objects and never remove each other's files), then the whole path: an annotated ReadWriteMany PVC →
the controller's Indexed Job of 4 Pods run side by side by the kubelet stand-in → one shard's Pod
deleted mid-load → only that index runs again → ``DataLoaded`` True with the shards added up.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.preload.copier import CopyOptions, copy
from kaip.preload.shards import Shard, shard_of
from kaip.preload.status import parse_outcome
from kaip.resources import kinds
from kaip.resources.preload import MANIFEST_FILE
from kaip.storage.source import parse_source
from kaip_testbed import waiting
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.dataloader import ControllerProcess, Kubelet, grant_lease
from kaip_testbed.objectstores import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

INDEXED_POD = re.compile(r"-(\d+)-[a-z0-9]{5}$")


wait_for = functools.partial(waiting.wait_for, timeout=120.0, interval=0.05)


def fill(s3: S3Server, objects: dict[str, bytes]) -> str:
    client: Any = s3.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))
    return bucket


def data_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(MANIFEST_FILE)
    }


# -- the copier ------------------------------------------------------------------------------------
def test_shards_copy_disjoint_shares_resume_their_own_and_remove_only_their_own(
    s3_server: S3Server, tmp_path: Path
) -> None:
    objects = {f"s/{i % 7}/o{i:04d}": os.urandom(100 + i) for i in range(400)}
    bucket = fill(s3_server, objects)
    source = parse_source(f"s3://{bucket}/s")

    def run(index: int) -> Any:
        opts = CopyOptions(
            endpoint_url=s3_server.endpoint,
            access_key_id=s3_server.access_key,
            secret_access_key=s3_server.secret_key,
            durable=False,
            shard=Shard(index, 4),
        )
        return copy(source, tmp_path, options=opts)

    reports = [run(i) for i in range(4)]
    assert data_files(tmp_path) == {k[2:]: v for k, v in objects.items()}
    assert sum(r.objects_copied for r in reports) == 400
    assert all(
        r.objects_copied == sum(1 for k in objects if shard_of(k, 4) == i) for i, r in enumerate(reports)
    )
    assert len({r.digest for r in reports}) == 1  # every shard saw the same listing
    assert sorted(p.name for p in tmp_path.glob(f"{MANIFEST_FILE}*")) == [
        f"{MANIFEST_FILE}.shard-{i}-of-4" for i in range(4)
    ]

    # A lost file of shard 2 is fetched again by shard 2 alone, and only that one.
    mine = next(k for k in objects if shard_of(k, 4) == 2)
    (tmp_path / mine[2:]).unlink()
    again = run(2)
    assert (again.objects_copied, again.objects_reused) == (1, reports[2].objects_total - 1)

    # An object gone from the source: another shard leaves its file alone, its owner removes it.
    gone = next(k for k in objects if shard_of(k, 4) == 3)
    s3_server.client().delete_object(Bucket=bucket, Key=gone)  # type: ignore[attr-defined]
    assert run(0).removed == 0 and (tmp_path / gone[2:]).exists()
    assert run(3).removed == 1 and not (tmp_path / gone[2:]).exists()


# -- through the controller ------------------------------------------------------------------------
@pytest.fixture
def start_controller(
    controller_kubeconfig: Path, admin_kube: Kube, namespace: str, tmp_path: Path
) -> Iterator[Callable[..., ControllerProcess]]:
    grant_lease(admin_kube, namespace)
    started: list[ControllerProcess] = []

    def start(*args: str) -> ControllerProcess:
        proc = ControllerProcess(controller_kubeconfig, namespace, "solo", tmp_path, args=args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def credentials(kube: Kube, s3: S3Server) -> str:
    kube.create(
        kinds.SECRETS,
        {
            "metadata": {"name": "minio"},
            "type": "kaip.dev/aws-credentials",
            "stringData": {
                "aws_access_key_id": s3.access_key,
                "aws_secret_access_key": s3.secret_key,
                "endpoint_url": s3.endpoint,
                "region": "us-east-1",
            },
        },
    )
    return "minio"


def claim(kube: Kube, name: str, source: str, *, modes: list[str], size: str = "1Gi", **notes: str) -> None:
    annotations = {"preload.kaip.dev/source": source, "preload.kaip.dev/credentials": "minio"}
    annotations.update({f"preload.kaip.dev/{k}": v for k, v in notes.items()})
    kube.create(
        kinds.PVCS,
        {
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}}},
        },
    )


def conditions(kube: Kube, name: str) -> dict[str, dict[str, Any]]:
    pvc = kube.get(kinds.PVCS, name)
    return {c["type"]: c for c in (pvc.get("status") or {}).get("conditions") or ()}


def outcome(kube: Kube, name: str) -> dict[str, Any] | None:
    found = conditions(kube, name).get("DataLoaded")
    return found if found is not None and found["status"] != "Unknown" else None


def test_four_shards_load_through_the_controller_and_a_killed_shard_alone_runs_again(
    kube: Kube,
    start_controller: Callable[..., ControllerProcess],
    cluster_controllers: ControlPlane,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    objects = {f"big/f{i:05d}": os.urandom(1_000 + i % 97) for i in range(2000)}
    bucket = fill(s3_server, objects)
    credentials(kube, s3_server)
    claim(kube, "data", f"s3://{bucket}/big", modes=["ReadWriteMany"], parallelism="4")
    with Kubelet(kube, cluster_controllers, tmp_path / "volumes", concurrent=True) as kubelet:
        volume = kubelet.volume("data")
        start_controller("--loader-workers=1")  # each shard fetches one object at a time: seconds

        # Mid-load, shard 1's Pod is deleted (the stand-in kills its process, as a kubelet would).
        shard1 = [k[4:] for k in objects if shard_of(k, 4) == 1]

        def shard1_running() -> str | None:
            done = sum(1 for rel in shard1[:200] if (volume / rel).exists())
            running = [n for n in list(kubelet.running) if (m := INDEXED_POD.search(n)) and m.group(1) == "1"]
            return running[0] if running and done else None

        victim = wait_for(shard1_running, what="shard 1 copying")
        kube.delete(kinds.PODS, victim)
        final = wait_for(lambda: outcome(kube, "data"), timeout=180, what="an outcome")
        assert victim in kubelet.killed, "shard 1 finished before it could be killed: the test proves nothing"

    assert (final["status"], final["reason"]) == ("True", "Succeeded"), final["message"]
    assert final["message"].startswith("2000/2000 objects,") and "by 4 loader Pods" in final["message"]
    assert data_files(volume) == {k[4:]: v for k, v in objects.items()}

    # Only index 1 ran twice; the others' Pods ran once.
    runs = Counter(int(m.group(1)) for n in kubelet.ran if (m := INDEXED_POD.search(n)))
    assert runs == {0: 1, 1: 2, 2: 1, 3: 1}
    (job,) = kube.list(kinds.JOBS, label_selector="preload.kaip.dev/pvc=data")["items"]
    assert (job["spec"]["completionMode"], job["spec"]["completions"]) == ("Indexed", 4)
    # The rerun of shard 1 found what the killed Pod had finished and fetched only the rest.
    pods = kube.list(kinds.PODS, label_selector=f"batch.kubernetes.io/job-name={job['metadata']['name']}")
    rerun = [
        parse_outcome(p["status"]["containerStatuses"][0]["state"]["terminated"]["message"])
        for p in pods["items"]
        if p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1"
        and p["status"].get("phase") == "Succeeded"
    ]
    assert len(rerun) == 1 and rerun[0] is not None
    assert rerun[0].reused > 0 and rerun[0].copied + rerun[0].reused == len(shard1)
    # Each shard wrote its own progress condition, and ended it True.
    shard_conditions = {t: c["status"] for t, c in conditions(kube, "data").items() if t != "DataLoaded"}
    assert shard_conditions == {f"DataLoadedShard{i}": "True" for i in range(4)}


def test_rwo_refuses_shards_and_the_cluster_default_shards_large_rwx_claims(
    kube: Kube,
    start_controller: Callable[..., ControllerProcess],
    cluster_controllers: ControlPlane,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    objects = {f"d/{i}": os.urandom(500) for i in range(40)}
    bucket = fill(s3_server, objects)
    credentials(kube, s3_server)
    claim(kube, "rwo", f"s3://{bucket}/d", modes=["ReadWriteOnce"], parallelism="4")
    claim(kube, "large", f"s3://{bucket}/d", modes=["ReadWriteMany"], size="2Gi")
    claim(kube, "small", f"s3://{bucket}/d", modes=["ReadWriteMany"], size="100Mi")
    with Kubelet(kube, cluster_controllers, tmp_path / "volumes", concurrent=True) as kubelet:
        start_controller("--default-parallelism=2", "--parallelism-threshold=1Gi")
        refused = wait_for(lambda: outcome(kube, "rwo"), what="rwo refused")
        large = wait_for(lambda: outcome(kube, "large"), what="large loaded")
        small = wait_for(lambda: outcome(kube, "small"), what="small loaded")
        volume = kubelet.volume("large")

    assert (refused["status"], refused["reason"]) == ("False", "InvalidParallelism")
    assert "ReadWriteOnce" in refused["message"] and "ReadWriteMany" in refused["message"]
    assert kube.list(kinds.JOBS, label_selector="preload.kaip.dev/pvc=rwo")["items"] == []
    assert large["status"] == "True" and "by 2 loader Pods" in large["message"]
    assert small["status"] == "True" and "loader Pods" not in small["message"]
    assert data_files(volume) == {k[2:]: v for k, v in objects.items()}
    (job,) = kube.list(kinds.JOBS, label_selector="preload.kaip.dev/pvc=large")["items"]
    assert job["spec"]["completions"] == 2
