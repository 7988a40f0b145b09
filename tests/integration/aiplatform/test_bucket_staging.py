"""`--staging-bucket`: local packages are built and uploaded to the real S3 (MinIO) and GCS
(fake-gcs-server) servers through kaip.storage, and the job's replicas fetch them from there."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from kaip.cli.app import run
from kaip.commands.ai_platform import cli
from kaip.kube.client import Kube
from kaip.resources import kubeflow as kf
from kaip_testbed.objectstores import GCSServer, S3Server

pytestmark = [pytest.mark.integration, pytest.mark.objectstore, pytest.mark.usefixtures("kubeflow")]


def package(tmp_path: Path) -> Path:
    pkg = tmp_path / "trainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("print('training')\n")
    return pkg


def submit(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, *args: str
) -> tuple[int, str]:
    code = run(
        cli,
        ["jobs", "submit", "training", *args, "--kubeconfig", str(kubeconfig), "-n", namespace],
        prog_name="kubectl ai-platform",
    )
    return code, capsys.readouterr().err


def names_in(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def test_packages_are_staged_in_an_s3_bucket(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    tmp_path: Path,
    s3_server: S3Server,
    bucket_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3: Any = s3_server.client()
    s3.create_bucket(Bucket=bucket_name)
    for var, value in {
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
    }.items():
        monkeypatch.setenv(var, value)
    code, err = submit(
        capsys,
        kubeconfig,
        namespace,
        "s3_staged",
        "--module-name=trainer.task",
        f"--package-path={package(tmp_path)}",
        f"--staging-bucket=s3://{bucket_name}",
        "--runtime-version=2.11",
    )
    assert code == 0, err
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket_name)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("s3_staged/") and keys[0].endswith("/trainer-0.0.0.tar.gz")
    assert any(
        n.endswith("trainer/task.py")
        for n in names_in(s3.get_object(Bucket=bucket_name, Key=keys[0])["Body"].read())
    )
    spec = kube.get(kf.TFJOBS, "s3-staged")["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]
    fetch = next(c for c in spec["initContainers"] if c["name"] == "kaip-fetch-s3-packages")
    assert fetch["args"] == [f"s3://{bucket_name}/{keys[0]}"]


def test_packages_are_staged_in_a_gcs_bucket(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    gcs_server: GCSServer,
    bucket_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client: Any = gcs_server.client()
    client.create_bucket(bucket_name)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    code, err = submit(
        capsys,
        kubeconfig,
        namespace,
        "gcs_staged",
        "--module-name=trainer.task",
        f"--package-path={package(tmp_path)}",
        f"--staging-bucket=gs://{bucket_name}",
        "--runtime-version=2.11",
    )
    assert code == 0, err
    blobs = list(client.list_blobs(bucket_name))
    assert [b.name.rsplit("/", 1)[-1] for b in blobs] == ["trainer-0.0.0.tar.gz"]


def test_a_missing_bucket_is_one_clear_line(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    tmp_path: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in {
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
    }.items():
        monkeypatch.setenv(var, value)
    code, err = submit(
        capsys,
        kubeconfig,
        namespace,
        "nowhere",
        "--module-name=trainer.task",
        f"--package-path={package(tmp_path)}",
        "--staging-bucket=s3://no-such-bucket-kaip",
        "--runtime-version=2.11",
    )
    assert code == 7
    assert (
        err.strip().splitlines() == [err.strip()] and "no-such-bucket-kaip" in err and "does not exist" in err
    )
    assert kube.list(kf.TFJOBS)["items"] == []  # nothing is created when staging fails
