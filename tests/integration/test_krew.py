"""krew delivery: the build makes the archives and writes manifests that pass krew's validation
rules, and each archive, laid out as krew installs it, runs through kubectl against the real API
server. (krew itself cannot be built on this machine: the Go module proxy refuses sigs.k8s.io/krew.)"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip_testbed import binaries

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ("ai-platform", "node-health", "pvc-preload")
SUPPORTED = {
    (o, a) for o in ("linux", "darwin", "windows") for a in ("386", "amd64", "arm", "arm64", "ppc64le")
}
SEMVER = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def krew_violations(path: Path, doc: dict[str, Any]) -> list[str]:
    """krew's manifest rules (internal/index/validation/validate.go), as data checks."""
    errors = []
    spec = doc.get("spec") or {}
    if (
        doc.get("apiVersion") != "krew.googlecontainertools.github.com/v1alpha2"
        or doc.get("kind") != "Plugin"
    ):
        errors.append("apiVersion/kind")
    name = (doc.get("metadata") or {}).get("name", "")
    if path.suffix != ".yaml" or name != path.stem or not re.fullmatch(r"[\w-]+", name):
        errors.append("metadata.name must equal the file name")
    if not SEMVER.match(str(spec.get("version", ""))):
        errors.append("spec.version must be v-prefixed semver")
    short = str(spec.get("shortDescription", ""))
    if not short or "\n" in short:
        errors.append("shortDescription")
    if not spec.get("description"):
        errors.append("description")
    seen: set[tuple[str, str]] = set()
    for platform in spec.get("platforms") or [{}]:
        labels = (platform.get("selector") or {}).get("matchLabels") or {}
        if set(labels) - {"os", "arch"} or (labels.get("os"), labels.get("arch")) not in SUPPORTED:
            errors.append(f"selector {labels}")
        pair = (labels.get("os"), labels.get("arch"))
        if pair in seen:
            errors.append(f"two platforms match {pair}")
        seen.add(pair)  # type: ignore[arg-type]
        if not re.fullmatch(r"[a-f0-9]{64}", str(platform.get("sha256", ""))):
            errors.append("sha256 must be lowercase hex")
        if not str(platform.get("uri", "")).endswith((".tar.gz", ".zip")):
            errors.append("uri")
        if not platform.get("bin"):
            errors.append("bin")
        if not any(f.get("from") in ("LICENSE", "COPYING") for f in platform.get("files") or []):
            errors.append("LICENSE must be extracted")
    return errors


def test_repository_manifests_follow_krews_rules_and_the_scripts() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for plugin in PLUGINS:
        path = ROOT / "krew" / f"{plugin}.yaml"
        doc = yaml.safe_load(path.read_text())
        assert krew_violations(path, doc) == []
        assert doc == yaml.safe_load(
            (ROOT / "plugins" / f"{plugin}.yaml").read_text()
        )  # the custom index agrees
        bins = {p["bin"] for p in doc["spec"]["platforms"]}
        assert bins == {"kubectl-" + plugin.replace("-", "_")}
        assert bins <= set(scripts)  # the same executable name pip installs


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("krew")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack" / "build_krew.py"),
            "--out",
            str(out / "dist"),
            "--manifest-dir",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


def install_like_krew(manifest: dict[str, Any], archive: Path, krew_root: Path) -> Path:
    """krew's install steps: check the sha256, extract, apply `files`, link `bin` into KREW_ROOT/bin."""
    platform = next(
        p
        for p in manifest["spec"]["platforms"]
        if p["selector"]["matchLabels"] == {"os": "linux", "arch": "amd64"}
    )
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == platform["sha256"]
    store = krew_root / "store" / manifest["metadata"]["name"] / manifest["spec"]["version"]
    store.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(store, filter="data")
    for entry in platform["files"]:
        assert (store / entry["from"]).exists()
    exe = store / platform["bin"]
    assert os.access(exe, os.X_OK), "the executable bit must be set inside the archive"
    link = krew_root / "bin" / ("kubectl-" + manifest["metadata"]["name"].replace("-", "_"))
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(exe)
    return link


@pytest.mark.parametrize("plugin", PLUGINS)
def test_built_archive_installs_and_runs_through_kubectl(
    built: Path, plugin: str, kubeconfig: Path, tmp_path: Path
) -> None:
    manifest_path = built / "krew" / f"{plugin}.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    assert krew_violations(manifest_path, manifest) == []
    archive = built / "dist" / f"kubectl-{plugin.replace('-', '_')}-{manifest['spec']['version']}.tar.gz"
    install_like_krew(manifest, archive, tmp_path / "krew")
    python_dir = Path(sys.executable).parent
    env = {
        "PATH": os.pathsep.join([str(tmp_path / "krew" / "bin"), str(python_dir), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
    }
    kubectl = binaries.path_of("kubectl")
    found = subprocess.run(
        [kubectl, "plugin", "list", "--name-only"], env=env, capture_output=True, text=True, check=False
    )
    assert f"kubectl-{plugin.replace('-', '_')}" in found.stdout
    done = subprocess.run(
        [kubectl, plugin, "version", "--kubeconfig", str(kubeconfig)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Server Version: v1.36" in done.stdout
