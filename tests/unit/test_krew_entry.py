"""The krew executable's entry (hack/build_krew.py ENTRY): on a python3 older than pyproject's
requires-python it prints one line naming the minimum and exits 1, before click (whose syntax an old
Python cannot parse) is imported. Run with the older interpreters found on the machine, and with a
faked ``sys.version_info`` under this one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import tomllib

from kaip_testbed import pythons

ROOT = Path(__file__).resolve().parents[2]


def _build_krew() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_krew", ROOT / "hack" / "build_krew.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_krew = _build_krew()
MINIMUM = build_krew.minimum_python()
OLDER = pythons.older_than(MINIMUM)


@pytest.fixture
def entry(tmp_path: Path) -> Path:
    path = tmp_path / "__main__.py"
    path.write_text(build_krew.entry_source("node-health", "kaip.commands.node_health", MINIMUM))
    return path


def expected(found: str) -> str:
    return (
        f"error: kubectl node-health needs Python {MINIMUM[0]}.{MINIMUM[1]} or newer (found {found}); "
        "install a newer python3 or use pip/pipx\n"
    )


def test_the_minimum_is_pyprojects_requires_python() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={MINIMUM[0]}.{MINIMUM[1]}"
    assert (
        f"Python {MINIMUM[0]}.{MINIMUM[1]} or newer"
        in build_krew.manifest("node-health", "v0.1.0", "u", "0")["spec"]["caveats"]
    )


@pytest.mark.skipif(not OLDER, reason="no Python older than requires-python on this machine")
@pytest.mark.parametrize("version", sorted(OLDER))
def test_an_older_python_gets_one_line_and_exit_1(entry: Path, version: str) -> None:
    done = subprocess.run(
        [OLDER[version], str(entry), "list"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (1, "", expected(version))


def test_a_faked_old_version_gets_one_line_and_exit_1(entry: Path) -> None:
    code = (
        "import sys; sys.version_info = (3, 9, 18, 'final', 0); "
        f"exec(compile(open({str(entry)!r}).read(), '__main__.py', 'exec'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (1, "", expected("3.9.18"))


def test_a_supported_python_runs_the_plugin(entry: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(entry), "version", "--client"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(ROOT / "kubectl_plugins"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Client Version: kaip ")
