"""krew delivery: the build makes the archives and writes manifests that krew's own validator
(validate-krew-manifest) accepts; the real krew (built from its Go module by hack/testbin.sh) installs
each archive into a temporary KREW_ROOT, and the plugin runs through kubectl against the real API
server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip_testbed import binaries, pythons

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
        for folder in ("krew", "plugins"):
            checked = validate_with_krew(ROOT / folder / f"{plugin}.yaml")
            assert checked.returncode == 0, checked.stderr
            assert "structural validation OK" in checked.stderr
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


@pytest.fixture(scope="module")
def index(built: Path) -> Path:
    """The built plugins/ folder as a git repository: a custom index, as `kubectl krew index add`
    takes it (a git URL; a local path here), and the default index of the test's krew."""
    repo = built / "index"
    shutil.copytree(built / "plugins", repo / "plugins")
    git = ["git", "-C", str(repo), "-c", "user.name=kaip", "-c", "user.email=kaip@example.invalid"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "kaip plugins"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    return repo


def krew_env(krew_root: Path, home: Path, index: Path) -> dict[str, str]:
    python_dir = Path(sys.executable).parent
    return {
        "PATH": os.pathsep.join(
            [str(krew_root / "bin"), str(binaries.folder()), str(python_dir), "/usr/bin", "/bin"]
        ),
        "HOME": str(home),
        "KREW_ROOT": str(krew_root),
        "KREW_DEFAULT_INDEX_URI": str(index),  # krew-index itself is not reachable from the tests
    }


def validate_with_krew(manifest: Path) -> subprocess.CompletedProcess[str]:
    """krew's own validator; its install step would download the release URI, so that part is the
    real `kubectl krew install --archive` of the built archive instead."""
    return subprocess.run(
        [binaries.path_of("validate-krew-manifest"), "-manifest", str(manifest), "-skip-install"],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("plugin", PLUGINS)
def test_built_archive_installs_and_runs_through_kubectl(
    built: Path, index: Path, plugin: str, kubeconfig: Path, tmp_path: Path
) -> None:
    manifest_path = built / "krew" / f"{plugin}.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    assert krew_violations(manifest_path, manifest) == []
    archive = built / "dist" / f"kubectl-{plugin.replace('-', '_')}-{manifest['spec']['version']}.tar.gz"
    checked = validate_with_krew(manifest_path)
    assert checked.returncode == 0, checked.stderr
    env = krew_env(tmp_path / "krew", tmp_path, index)
    kubectl = binaries.path_of("kubectl")

    def krew(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([kubectl, "krew", *args], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"kubectl krew {' '.join(args)}: {done.stderr}"
        return done

    krew("update")
    krew("index", "add", "kaip", str(index))  # the custom index of the docs
    assert f"kaip/{plugin}" in krew("search", plugin).stdout
    installed = krew("install", f"--manifest={manifest_path}", f"--archive={archive}")
    assert f"Installed plugin: {plugin}" in installed.stderr
    assert "needs Python 3.10 or newer" in installed.stderr  # the caveat is shown
    store = tmp_path / "krew" / "store" / plugin / manifest["spec"]["version"]
    assert (store / "LICENSE").exists()
    assert plugin in krew("list").stdout
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
    krew("uninstall", plugin)
    assert not (tmp_path / "krew" / "bin" / f"kubectl-{plugin.replace('-', '_')}").exists()


@pytest.mark.parametrize("plugin", PLUGINS)
def test_built_executable_names_the_minimum_python_on_an_older_one(
    built: Path, plugin: str, tmp_path: Path
) -> None:
    """The archive's executable, run by a python3 older than requires-python: one line, exit 1, no
    traceback from inside click. With every older interpreter on the machine, and with a faked
    ``sys.version_info`` (which runs everywhere)."""
    version = yaml.safe_load((built / "krew" / f"{plugin}.yaml").read_text())["spec"]["version"]
    exe_name = f"kubectl-{plugin.replace('-', '_')}"
    with tarfile.open(built / "dist" / f"{exe_name}-{version}.tar.gz") as tar:
        tar.extract(exe_name, tmp_path, filter="data")
    exe = str(tmp_path / exe_name)
    minimum = "3.10"

    def line(found: str) -> str:
        return (
            f"error: kubectl {plugin} needs Python {minimum} or newer (found {found}); "
            "install a newer python3 or use pip/pipx\n"
        )

    faked = (
        "import runpy, sys; sys.version_info = (3, 9, 18, 'final', 0); "
        f"sys.argv = [{exe!r}, 'list']; runpy.run_path({exe!r}, run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", faked], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", line("3.9.18"))
    for found, python in pythons.older_than((3, 10)).items():
        done = subprocess.run([python, exe, "list"], capture_output=True, text=True, check=False)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", line(found)), python
    done = subprocess.run(
        [sys.executable, exe, "version", "--client"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
