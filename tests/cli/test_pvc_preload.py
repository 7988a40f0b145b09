"""`kubectl pvc-preload` against the real API server (create, list, status, retry) and the real S3
server (copy). The data-loader controller is played by the test: it writes the DataLoaded condition
through the status subresource, in the agreed message format."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from kaip.cli.app import run
from kaip.commands.pvc_preload import cli
from kaip.errors import ExitCode
from kaip.kube.client import Kube
from kaip.preload.status import Progress, format_message
from kaip.resources import kinds
from kaip.resources.preload import ANNOTATION_RETRY, ANNOTATION_SOURCE, CONDITION_LOADED

pytestmark = pytest.mark.integration


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(cli, list(args), prog_name="kubectl pvc-preload")
    out, err = capsys.readouterr()
    return code, out, err


def set_condition(kube: Kube, name: str, status: str, reason: str, message: str) -> None:
    condition = {
        "type": CONDITION_LOADED,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    kube.patch(kinds.PVCS, name, {"status": {"conditions": [condition]}}, subresource="status")


def later(seconds: float, action) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


def test_create_dry_run_client_prints_the_claim_without_a_cluster(capsys) -> None:
    code, out, _ = invoke(
        capsys,
        "create", "imagenet", "--source", "s3://datasets/imagenet", "--size", "200Gi",
        "--storage-class", "fast", "--access-mode", "ROX", "--credentials", "aws", "--path", "train",
        "--dry-run=client", "-o", "yaml", "--kubeconfig", "/nonexistent/kubeconfig",
    )  # fmt: skip
    assert code == 0
    claim = yaml.safe_load(out)
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["metadata"]["annotations"] == {
        "preload.kaip.dev/source": "s3://datasets/imagenet/",
        "preload.kaip.dev/credentials": "aws",
        "preload.kaip.dev/path": "train",
    }
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert claim["spec"]["storageClassName"] == "fast"


def test_create_parallelism_annotates_a_shared_volume_and_refuses_one_that_one_node_mounts(capsys) -> None:
    base = [
        "create",
        "laion",
        "--source",
        "s3://datasets/laion",
        "--size",
        "2Ti",
        "--dry-run=client",
        "-o",
        "yaml",
    ]
    code, out, _ = invoke(capsys, *base, "--access-mode", "RWX", "--parallelism", "4")
    assert code == 0
    assert yaml.safe_load(out)["metadata"]["annotations"]["preload.kaip.dev/parallelism"] == "4"
    code, out, err = invoke(capsys, *base, "--parallelism", "4")
    assert code == ExitCode.USAGE and out == ""
    assert err.strip().startswith(
        "error: --parallelism 4 needs a volume every loader Pod can mount: add --access-mode ReadWriteMany"
    )
    code, _, err = invoke(capsys, *base, "--access-mode", "RWX", "--parallelism", "65")
    assert code == ExitCode.USAGE
    assert "--parallelism 65 is not a number of loader Pods from 1 to 64" in err


def test_a_bad_source_exits_2_with_one_line(capsys) -> None:
    code, out, err = invoke(
        capsys, "create", "x", "--source", "ftp://host/x", "--size", "1Gi", "--dry-run=client"
    )
    assert code == ExitCode.USAGE
    assert out == ""
    assert (
        err.strip()
        == "error: --source: 'ftp://host/x' is not s3://BUCKET/PREFIX or gs://BUCKET/PREFIX: unknown scheme 'ftp' (use s3 or gs)"
    )


def test_create_list_status_and_retry_against_the_api_server(
    capsys, kube: Kube, kubeconfig: Path, namespace: str
) -> None:
    ns = ["--kubeconfig", str(kubeconfig), "-n", namespace]
    code, out, _ = invoke(capsys, "create", "alpha", "--source", "s3://bucket-a/data", "--size", "10Gi", *ns)
    assert (code, out.strip()) == (0, "persistentvolumeclaim/alpha created")
    code, out, _ = invoke(
        capsys, "create", "beta", "--source", "gs://bucket-b/x", "--size", "1Gi", "--dry-run=server", *ns
    )
    assert (code, out.strip()) == (0, "persistentvolumeclaim/beta created (server dry run)")
    for name, src in (("beta", "gs://bucket-b/x"), ("gamma", "s3://bucket-c/y")):
        assert invoke(capsys, "create", name, "--source", src, "--size", "1Gi", *ns)[0] == 0
    kube.create(
        kinds.PVCS,
        {
            "metadata": {"name": "plain"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    set_condition(kube, "alpha", "Unknown", "Loading", format_message(Progress(120, 300, 1_000, 4_000)))
    set_condition(kube, "beta", "True", "Succeeded", format_message(Progress(5, 5, 10, 10)))
    set_condition(kube, "gamma", "False", "AccessDenied", "s3://bucket-c/y/: access denied (AccessDenied)")

    code, out, _ = invoke(capsys, "list", *ns)
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "SOURCE", "STATE", "PROGRESS", "SIZE", "AGE"]
    assert [r[:5] for r in rows[1:]] == [
        ["alpha", "s3://bucket-a/data/", "Loading", "25%", "(120/300)"],
        ["beta", "gs://bucket-b/x/", "Loaded", "100%", "1Gi"],
        ["gamma", "s3://bucket-c/y/", "Failed", "-", "1Gi"],
    ]
    code, out, _ = invoke(capsys, "list", "-o", "wide", *ns)
    assert "STORAGECLASS" in out.splitlines()[0] and "access denied" in out
    code, out, _ = invoke(capsys, "list", "-A", "--kubeconfig", str(kubeconfig))
    assert out.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [namespace, "alpha"] for line in out.splitlines())
    code, out, _ = invoke(capsys, "list", "-o", "json", *ns)
    assert [i["metadata"]["name"] for i in json.loads(out)["items"]] == ["alpha", "beta", "gamma"]

    code, out, _ = invoke(capsys, "status", "alpha", *ns)
    assert code == 0
    assert "State:       Loading" in out
    assert "25%  120/300 objects, 1000 B/3.9 KiB" in out

    code, out, _ = invoke(capsys, "retry", "gamma", *ns)
    assert (code, out.strip()) == (0, "persistentvolumeclaim/gamma retry requested (was Failed)")
    invoke(capsys, "retry", "gamma", *ns)
    assert kube.get(kinds.PVCS, "gamma")["metadata"]["annotations"][ANNOTATION_RETRY] == "2"
    code, _, err = invoke(capsys, "retry", "plain", *ns)
    assert code == ExitCode.FAILURE and "not a preloaded PVC" in err
    code, _, err = invoke(capsys, "status", "missing", *ns)
    assert code == ExitCode.NOT_FOUND


def test_status_watch_follows_until_loaded_and_fails_with_the_reason(
    capsys, kube: Kube, kubeconfig: Path
) -> None:
    ns = ["--kubeconfig", str(kubeconfig), "-n", kube.namespace]
    for name in ("ok", "bad"):
        assert invoke(capsys, "create", name, "--source", f"s3://bucket/{name}", "--size", "1Gi", *ns)[0] == 0
        set_condition(kube, name, "Unknown", "Loading", format_message(Progress(1, 4, 10, 40)))

    def progress_then_done() -> None:
        set_condition(kube, "ok", "Unknown", "Loading", format_message(Progress(3, 4, 30, 40)))
        time.sleep(0.3)
        set_condition(kube, "ok", "True", "Succeeded", format_message(Progress(4, 4, 40, 40)))

    started = time.monotonic()
    later(1.0, progress_then_done)
    code, out, _ = invoke(capsys, "status", "ok", "-w", *ns)
    assert (code, out.strip()) == (0, "persistentvolumeclaim/ok loaded from s3://bucket/ok/")
    assert time.monotonic() - started >= 1.0

    later(0.5, lambda: set_condition(kube, "bad", "False", "SourceNotFound", "bucket bucket does not exist"))
    code, out, err = invoke(capsys, "status", "bad", "--watch", *ns)
    assert code == ExitCode.FAILURE
    assert (
        err.strip()
        == "error: persistentvolumeclaim/bad: load failed (SourceNotFound): bucket bucket does not exist"
    )


def test_create_wait_returns_when_the_data_is_loaded(capsys, kube: Kube, kubeconfig: Path) -> None:
    def controller() -> None:
        for _ in range(50):
            try:
                set_condition(kube, "waited", "True", "Succeeded", format_message(Progress(1, 1, 5, 5)))
                return
            except Exception:
                time.sleep(0.1)

    later(0.5, controller)
    code, out, _ = invoke(
        capsys, "create", "waited", "--source", "gs://bucket/w", "--size", "1Gi", "--wait",
        "--kubeconfig", str(kubeconfig), "-n", kube.namespace,
    )  # fmt: skip
    assert code == 0
    assert out.splitlines() == [
        "persistentvolumeclaim/waited created",
        "persistentvolumeclaim/waited loaded from gs://bucket/w/",
    ]
    assert kube.get(kinds.PVCS, "waited")["metadata"]["annotations"][ANNOTATION_SOURCE] == "gs://bucket/w/"


@pytest.mark.objectstore
def test_copy_reports_what_it_did_and_refuses_with_exit_1(
    capsys, s3_server, tmp_path: Path, monkeypatch
) -> None:
    client = s3_server.client()
    bucket = f"kaip-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    for i in range(25):
        client.put_object(Bucket=bucket, Key=f"set/{i % 3}/f{i}", Body=b"x" * 1000)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    args = [
        "copy",
        f"s3://{bucket}/set",
        str(tmp_path / "out"),
        "--endpoint-url",
        s3_server.endpoint,
        "--workers",
        "4",
    ]
    code, out, _ = invoke(capsys, *args)
    assert code == 0
    assert out.splitlines()[0].startswith("copied 25 objects (24.4 KiB, ")
    assert out.splitlines()[1] == "verified: size only (md5 published, not computed): 25"
    code, out, _ = invoke(capsys, *args)
    assert out.splitlines()[0].startswith("copied 0 objects (0 B, ")
    assert "reused 25 (24.4 KiB)" in out.splitlines()[0]
    code, out, _ = invoke(capsys, *args[:2], str(tmp_path / "md5"), *args[3:], "--check-hashes", "always")
    assert code == 0
    assert out.splitlines()[1] == "verified: md5: 25"
    code, _, err = invoke(capsys, *args, "--check-hashes", "md5")
    assert code == ExitCode.USAGE
    assert (
        "Invalid value for '--check-hashes': 'md5' is not one of 'if_fast_else_skip', 'always', 'never'"
        in err
    )

    (tmp_path / "trap").mkdir()
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "1").symlink_to(tmp_path / "trap", target_is_directory=True)
    code, out, err = invoke(
        capsys, "copy", f"s3://{bucket}/set", str(tmp_path / "out2"), "--endpoint-url", s3_server.endpoint
    )
    assert code == ExitCode.FAILURE
    assert "refused 'set/1/f1': '1' is a symlink in the target" in err
    assert err.splitlines()[-1].startswith("error: 8 object key(s) refused: ")
    assert list((tmp_path / "trap").iterdir()) == []
    assert out.startswith("copied 17 objects")

    code, _, err = invoke(
        capsys,
        "copy",
        f"s3://{bucket}-missing/set",
        str(tmp_path / "o3"),
        "--endpoint-url",
        s3_server.endpoint,
    )
    assert code == ExitCode.NOT_FOUND
    assert err.strip() == f"error: bucket {bucket}-missing does not exist (s3://{bucket}-missing/set/)"
