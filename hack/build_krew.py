"""Build the krew archives of the three plugins and write their manifests with the archives' sha256.

    python hack/build_krew.py [--version v0.1.0] [--out dist/krew] [--base-url URL]

Each archive holds one self-contained executable (a Python zip application with kaip and its
pure-Python dependencies; PyYAML's optional C extension and orjson are left out, so one archive serves
every OS and architecture) and LICENSE. Python 3.10 or newer must be on PATH: the manifests say so in
their caveats, and the executable's entry checks the version before anything is imported (an older
python3 would otherwise die with a SyntaxError traceback inside click); the minimum is read from
pyproject's requires-python. The sha256 in krew/*.yaml and in the custom-index layout plugins/*.yaml come from this
build and are never typed by hand; .github/workflows/release.yaml runs it for a tag.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipapp
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = {
    "ai-platform": (
        "kaip.commands.ai_platform",
        "Train on Kubeflow with gcloud ai-platform's command line",
        "Submit, list, describe, cancel and follow training jobs with the flags of `gcloud ai-platform\n"
        "jobs submit training`, run as Kubeflow TFJob, PyTorchJob, XGBoostJob, JAXJob, PaddleJob or\n"
        "MPIJob resources, and hyperparameter tuning as Katib Experiments.",
    ),
    "node-health": (
        "kaip.commands.node_health",
        "Show broken GPU nodes: conditions, cordons, taints, GPUs",
        "One view of every node's health on a GPU cluster: custom node conditions and since when they\n"
        "hold, cordons, taints, GPU capacity against allocatable and use, and GPUs stranded on broken\n"
        "nodes; plus remediation controls.",
    ),
    "pvc-preload": (
        "kaip.commands.pvc_preload",
        "Create PVCs preloaded from S3 or GCS and follow loading",
        "Create PersistentVolumeClaims that kaip's controller fills from an s3:// or gs:// prefix,\n"
        "list them with their loading state, follow progress live, retry failed loads, and copy a\n"
        "bucket prefix to a local directory with the same fast, resumable copier.",
    ),
}
PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")]
# Pure-Python runtime dependencies vendored into the zip application.
VENDORED = ["click", "PyYAML", "rich"]  # orjson is optional: a C extension cannot load from a zip
HOMEPAGE = "https://github.com/kaip-dev/kaip"
FIXED_MTIME = 315532800 + 86400  # 1980-01-02, the zip format starts in 1980

# The zip application's __main__.py. It runs under whatever `python3` is on PATH, so it is written in
# syntax every Python parses (no f-strings, no walrus, no match) and imports nothing before the check.
ENTRY = """\
import sys

if sys.version_info < ({major}, {minor}):
    sys.stderr.write(
        "error: kubectl {plugin} needs Python {major}.{minor} or newer (found %d.%d.%d); "
        "install a newer python3 or use pip/pipx\\n" % tuple(sys.version_info[:3])
    )
    sys.exit(1)

from {module} import main

main()
"""


def minimum_python() -> tuple[int, int]:
    """The lower bound of pyproject's requires-python (``>=3.10``), the one place it is written."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)', text, re.MULTILINE)
    if found is None:
        raise SystemExit('pyproject.toml: requires-python must be of the form ">=3.N"')
    return int(found[1]), int(found[2])


def entry_source(plugin: str, module: str, minimum: tuple[int, int]) -> str:
    return ENTRY.format(plugin=plugin, module=module, major=minimum[0], minor=minimum[1])


def executable_name(plugin: str) -> str:
    return "kubectl-" + plugin.replace("-", "_")


def build_zipapp(plugin: str, module: str, workdir: Path) -> Path:
    site = workdir / f"site-{plugin}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(site),
            "--no-deps",
            str(ROOT),
            *VENDORED,
            "markdown-it-py",
            "mdurl",
            "pygments",
        ],
        check=True,
    )
    for path in list(site.rglob("*.so")) + list(site.rglob("*.pyd")):
        path.unlink()  # optional C accelerators: the pure-Python paths are used instead
    for path in list(site.glob("*.dist-info")) + list(site.glob("bin")) + [site / "kaip_incluster"]:
        shutil.rmtree(path, ignore_errors=True)
    (site / "__main__.py").write_text(entry_source(plugin, module, minimum_python()))
    for path in site.rglob("*"):  # zip entries record mtimes: fix them so the build is reproducible
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    target = workdir / executable_name(plugin)
    zipapp.create_archive(site, target, interpreter="/usr/bin/env python3", compressed=True)
    return target


def deterministic_tar(executable: Path, archive: Path) -> None:
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path, name, mode in ((executable, executable.name, 0o755), (ROOT / "LICENSE", "LICENSE", 0o644)):
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size, info.mode, info.mtime, info.uname, info.gname = len(data), mode, 0, "root", "root"
            tar.addfile(info, io.BytesIO(data))


def manifest(plugin: str, version: str, uri: str, sha256: str) -> dict[str, object]:
    _module, short, description = PLUGINS[plugin]
    exe = executable_name(plugin)
    major, minor = minimum_python()
    return {
        "apiVersion": "krew.googlecontainertools.github.com/v1alpha2",
        "kind": "Plugin",
        "metadata": {"name": plugin},
        "spec": {
            "version": version,
            "homepage": HOMEPAGE,
            "shortDescription": short,
            "description": " ".join(description.split()) + "\n",
            "caveats": f"This plugin needs Python {major}.{minor} or newer as `python3` on your PATH.\n"
            "For shell completion and faster start-up, `pipx install kaip` installs the same plugin natively.\n",
            "platforms": [
                {
                    "selector": {"matchLabels": {"os": os_name, "arch": arch}},
                    "uri": uri,
                    "sha256": sha256,
                    "files": [{"from": exe, "to": "."}, {"from": "LICENSE", "to": "."}],
                    "bin": exe,
                }
                for os_name, arch in PLATFORMS
            ],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", default="v0.1.0")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "krew")
    parser.add_argument("--base-url", default=f"{HOMEPAGE}/releases/download")
    parser.add_argument(
        "--manifest-dir",
        type=Path,
        default=ROOT,
        help="where krew/ and plugins/ are written (default: the repository)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    index = args.manifest_dir / "plugins"
    index.mkdir(parents=True, exist_ok=True)
    (args.manifest_dir / "krew").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for plugin, (module, _short, _desc) in PLUGINS.items():
            exe = build_zipapp(plugin, module, Path(tmp))
            archive = args.out / f"{executable_name(plugin)}-{args.version}.tar.gz"
            deterministic_tar(exe, archive)
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
            uri = f"{args.base_url}/{args.version}/{archive.name}"
            text = yaml.safe_dump(manifest(plugin, args.version, uri, digest), sort_keys=False)
            (args.manifest_dir / "krew" / f"{plugin}.yaml").write_text(text)
            (index / f"{plugin}.yaml").write_text(text)
            print(f"{archive}  sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
