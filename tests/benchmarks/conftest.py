"""Benchmarks run on demand (`pytest tests/benchmarks -s`), never in the default test run."""

from __future__ import annotations

import compileall
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.benchmark)


@pytest.fixture(scope="session", autouse=True)
def byte_compiled() -> None:
    """The package's modules byte-compiled, as pip leaves a regular install: with an editable install
    and PYTHONDONTWRITEBYTECODE set (as on some machines), every start would compile them again."""
    for folder in ("kubectl_plugins", "webhooks"):
        compileall.compile_dir(ROOT / folder, quiet=1)


@pytest.fixture(scope="session")
def user_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripts folder of a regular (not editable) install in a virtualenv of its own, as pip or
    pipx leave it for a user: no editable-install finder and none of this machine's site-packages
    start-up hooks (a .pth here adds 40 ms to every Python start). Needs PyPI or a pip cache."""
    home = tmp_path_factory.mktemp("user-install")
    venv.EnvBuilder(with_pip=True).create(home)
    bindir = home / ("Scripts" if sys.platform == "win32" else "bin")
    subprocess.run(
        [str(bindir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        check=True,
    )
    return bindir
