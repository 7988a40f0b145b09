"""kubectl itself finds the installed plugins, runs them, and completes their commands and flags."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

from kaip_testbed import binaries

pytestmark = pytest.mark.testbin  # the kubectl hack/testbin.sh builds

PLUGINS = ("ai-platform", "node-health", "pvc-preload")


@pytest.fixture(scope="module")
def kubectl_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    scripts = sysconfig.get_path("scripts")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([scripts, str(binaries.folder(need=("kubectl",)))])
    env["HOME"] = str(tmp_path_factory.mktemp("home"))  # no kubeconfig: --help must not need one
    env.pop("KUBECONFIG", None)
    return env


def kubectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binaries.path_of("kubectl"), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_plugin_list_finds_every_plugin(kubectl_env: dict[str, str]) -> None:
    done = kubectl(kubectl_env, "plugin", "list", "--name-only")
    found = {Path(line.strip()).name for line in done.stdout.splitlines()}
    assert {"kubectl-ai_platform", "kubectl-node_health", "kubectl-pvc_preload"} <= found


@pytest.mark.parametrize("plugin", PLUGINS)
def test_help_through_kubectl(kubectl_env: dict[str, str], plugin: str) -> None:
    done = kubectl(kubectl_env, plugin, "--help")
    assert done.returncode == 0, done.stderr
    assert f"Usage: kubectl {plugin}" in done.stdout
    assert "version" in done.stdout


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kubectl_completes_subcommands_and_flags(kubectl_env: dict[str, str], plugin: str) -> None:
    done = kubectl(kubectl_env, "__complete", plugin, "")
    lines = done.stdout.splitlines()
    assert any(line.startswith("version") for line in lines), done.stdout
    assert lines[-1] == ":4"
    flags = kubectl(kubectl_env, "__complete", plugin, "version", "--kube").stdout.splitlines()
    assert flags[0].startswith("--kubeconfig")


@pytest.mark.parametrize(
    "words",
    [("version", "--context"), ("--context",), ("-n", "team", "list", "--context")],
    ids=["after the command", "before the command", "after flags before the command"],
)
def test_completion_of_contexts_reads_the_kubeconfig(
    kubectl_env: dict[str, str], tmp_path: Path, words: tuple[str, ...]
) -> None:
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncurrent-context: ''\n"
        "contexts:\n- name: gpu-prod\n  context: {cluster: a}\n- name: gpu-lab\n  context: {cluster: b}\n- name: cpu\n  context: {cluster: c}\n"
    )
    env = {**kubectl_env, "KUBECONFIG": str(config)}
    done = kubectl(env, "__complete", "node-health", *words, "gpu")
    assert [line.split("\t")[0] for line in done.stdout.splitlines()[:-1]] == ["gpu-lab", "gpu-prod"]


def test_version_through_kubectl_reaches_the_server(kubectl_env: dict[str, str], kubeconfig: Path) -> None:
    done = kubectl(kubectl_env, "ai-platform", "version", "--kubeconfig", str(kubeconfig))
    assert done.returncode == 0, done.stderr
    assert "Client Version: kaip" in done.stdout and "Server Version: v1.36" in done.stdout


@pytest.mark.parametrize("plugin", PLUGINS)
def test_kubectl_passes_flags_before_the_command(kubectl_env: dict[str, str], plugin: str) -> None:
    done = kubectl(kubectl_env, plugin, "-A", "version", "--client")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: 'kubectl {plugin} version' takes no -A/--all-namespaces flag "
        f"(see 'kubectl {plugin} version --help')\n"
    )
    done = kubectl(kubectl_env, plugin, "-o", "json", "version", "--client")
    assert done.returncode == 0, done.stderr
    assert '"clientVersion"' in done.stdout
