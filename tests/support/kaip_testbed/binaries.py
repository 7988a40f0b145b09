"""Where the test servers' binaries are, building them on first use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "hack" / "testbin.sh"
NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "minio",
    "fake-gcs-server",
    "kubectl-krew",
    "validate-krew-manifest",
)


class BinariesMissing(RuntimeError):
    pass


_folder: Path | None = None


def folder(*, need: tuple[str, ...] = NAMES) -> Path:
    """The folder with the binaries, built by ``hack/testbin.sh`` when one of ``need`` is missing."""
    global _folder  # noqa: PLW0603 - computed once per process
    if _folder is None:
        printed = subprocess.run(["bash", str(SCRIPT), "--print"], capture_output=True, text=True, check=True)
        _folder = Path(printed.stdout.strip())
    path = _folder
    if all((path / n).exists() for n in need):
        return path
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BinariesMissing(
            "hack/testbin.sh could not build the control-plane binaries "
            f"(exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return Path(done.stdout.strip().splitlines()[-1])


def path_of(name: str) -> str:
    return str(folder(need=(name,)) / name)


def env_with_binaries() -> dict[str, str]:
    """The environment with the binaries first on PATH (our kubectl, not whatever is installed)."""
    env = dict(os.environ)
    env["PATH"] = f"{folder()}{os.pathsep}{env.get('PATH', '')}"
    return env
