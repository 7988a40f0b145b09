"""Completion of values that live in the cluster (node names, preloaded PVCs, namespaces), against the
real API server: what kubectl's ``__complete`` gets from ``kubectl_complete-*``; quick, and silent
when the cluster cannot be asked. Also pvc-preload's --timeout on its waits."""

from __future__ import annotations

import time
from pathlib import Path

import click
import pytest

from kaip.cli.app import completions, run
from kaip.commands import ai_platform, node_health, pvc_preload
from kaip.kube.client import Kube
from kaip.resources import kinds

pytestmark = pytest.mark.integration


def values(cli: click.Command, *words: str) -> list[str]:
    lines = completions(cli, list(words), "kubectl x")
    assert lines[-1] == ":4"
    return [line.split("\t")[0] for line in lines[:-1]]


def timed(cli: click.Command, *words: str) -> list[str]:
    start = time.monotonic()
    found = values(cli, *words)
    assert time.monotonic() - start < 0.3
    return found


@pytest.fixture
def gpu_nodes(admin_kube: Kube, namespace: str) -> list[str]:
    names = [f"{namespace}-gpu-{i}" for i in range(2)]
    for name in names:
        admin_kube.create(kinds.NODES, {"metadata": {"name": name}})
    yield names
    for name in names:
        admin_kube.delete(kinds.NODES, name, ignore_missing=True)


def test_node_names(gpu_nodes: list[str], kubeconfig: Path, namespace: str) -> None:
    k = str(kubeconfig)
    assert timed(node_health.cli, "describe", "--kubeconfig", k, f"{namespace}-gpu") == gpu_nodes
    # flags given before the command count too, and every command that takes a NODE completes it
    assert values(node_health.cli, "--kubeconfig", k, "remediate", f"{namespace}-gpu-1") == gpu_nodes[1:]


def test_preloaded_pvc_names(kube: Kube, kubeconfig: Path, namespace: str) -> None:
    k = str(kubeconfig)
    for name in ("imagenet", "coco"):
        code = run(
            pvc_preload.cli,
            [
                "create",
                name,
                "--source",
                f"s3://data/{name}/",
                "--size",
                "1Gi",
                "--kubeconfig",
                k,
                "-n",
                namespace,
            ],
        )
        assert code == 0
    kube.create(kinds.PVCS, {"metadata": {"name": "plain"}, "spec": _claim_spec()})
    assert timed(pvc_preload.cli, "status", "--kubeconfig", k, "-n", namespace, "") == ["coco", "imagenet"]
    assert values(pvc_preload.cli, "-n", namespace, "--kubeconfig", k, "retry", "i") == ["imagenet"]


def test_namespaces_honour_the_kubeconfig_given_earlier(kubeconfig: Path, namespace: str) -> None:
    found = timed(node_health.cli, "--kubeconfig", str(kubeconfig), "list", "-n", namespace[:-1])
    assert namespace in found
    assert "kube-system" in values(pvc_preload.cli, "list", "--kubeconfig", str(kubeconfig), "-n", "kube-")


def test_an_unreachable_cluster_completes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    for cli, words in (
        (node_health.cli, ("describe", "")),
        (pvc_preload.cli, ("status", "")),
        (ai_platform.cli, ("jobs", "describe", "")),
        (node_health.cli, ("list", "-n", "")),
    ):
        assert values(cli, "--kubeconfig", str(config), *words) == []
    assert values(node_health.cli, "--kubeconfig", str(tmp_path / "missing"), "describe", "") == []
    assert capsys.readouterr() == ("", "")
    # the catalog falls back to the built-in one
    found = values(
        ai_platform.cli,
        *(
            "--kubeconfig",
            str(config),
            "jobs",
            "submit",
            "training",
            "j",
            "--worker-accelerator",
            "type=nvidia-tesla-t",
        ),
    )
    assert "type=nvidia-tesla-t4" in found


def test_a_wait_gives_up_after_its_timeout(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str
) -> None:
    flags = ["--kubeconfig", str(kubeconfig), "-n", namespace]
    # no data loader runs here: the load never ends
    start = time.monotonic()
    code = run(
        pvc_preload.cli,
        ["create", "ds", "--source", "s3://data/ds/", "--size", "1Gi", "--wait", "--timeout", "2s", *flags],
        prog_name="kubectl pvc-preload",
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert (
        err.splitlines()[-1] == "error: timed out waiting for persistentvolumeclaim/ds to load (--timeout 2s)"
    )
    code = run(
        pvc_preload.cli, ["status", "ds", "-w", "--timeout", "1s", *flags], prog_name="kubectl pvc-preload"
    )
    _, err = capsys.readouterr()
    assert code == 1 and err.endswith(
        "error: timed out waiting for persistentvolumeclaim/ds to load (--timeout 1s)\n"
    )
    assert time.monotonic() - start < 15
    code = run(pvc_preload.cli, ["status", "ds", "--timeout", "1s", *flags], prog_name="kubectl pvc-preload")
    assert code == 2 and "--timeout goes with -w/--watch" in capsys.readouterr().err


def _claim_spec() -> dict[str, object]:
    return {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}


def test_volume_completes_the_namespaces_claims(kube: Kube, kubeconfig: Path, namespace: str) -> None:
    spec = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
    for name in ("lustre-fast", "lustre-large"):
        kube.create(kinds.PVCS, {"metadata": {"name": name}, "spec": spec})
    words = ("jobs", "submit", "training", "j", "--kubeconfig", str(kubeconfig), "-n", namespace, "--volume")
    assert timed(ai_platform.cli, *words, "fast=pvc:lustre-f") == ["fast=pvc:lustre-fast:"]
    assert values(ai_platform.cli, *words, "fast=pvc:") == ["fast=pvc:lustre-fast:", "fast=pvc:lustre-large:"]
    assert values(ai_platform.cli, *words, "fast=") == []  # the NAME is the user's; then pvc: and a claim
