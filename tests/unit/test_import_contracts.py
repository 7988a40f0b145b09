"""The import-linter contracts catch what they are for: each kind of forbidden import, planted in a copy.

The contracts in ``[tool.importlinter]`` are allow-lists (I/O modules forbidden everywhere, the modules
allowed named one by one) plus a purity contract for the decision modules. A contract that is kept can
also be one that checks nothing (a typo in a module name, ``include_external_packages`` dropped, a
wildcard ignore), so this test copies the packages and pyproject.toml, plants one violation of each
kind, runs lint-imports once on the copy, and checks that every violation is reported under the
contract meant to catch it, naming the importer. The unmodified copy must pass.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"kaip": "kubectl_plugins/kaip", "kaip_incluster": "webhooks/kaip_incluster"}
PLANTED = "_planted_violation"

CLOUD = "Only the named storage modules import the cloud SDKs (allow-list)"
NETWORK = "Only the named modules open connections or serve HTTP (allow-list)"
PROCESSES = "Only the named modules start processes (allow-list)"
PURE = "Decisions are pure: no client, no storage wire, no process, no socket"


@dataclass(frozen=True)
class Violation:
    package: str  # where the import is planted: a new module in this package
    statement: str  # the import statement as written
    imported: str  # the module import-linter reports (an outside package by its top-level name)
    contracts: tuple[str, ...]  # every contract that must report it
    lazy: bool = False  # inside a function: lazy imports count too

    @property
    def importer(self) -> str:
        return f"{self.package}.{PLANTED}"


VIOLATIONS = (
    Violation("kaip.aiplatform", "import boto3", "boto3", (CLOUD,), lazy=True),
    Violation("kaip.aiplatform", "import http.client", "http", (NETWORK,)),
    Violation("kaip.preload", "import urllib3", "urllib3", (NETWORK,), lazy=True),
    Violation("kaip.resources", "import socket", "socket", (NETWORK, PURE)),
    Violation("kaip.remediation", "from kaip.kube import client", "kaip.kube.client", (PURE,)),
    Violation("kaip_incluster.admission", "from kaip.kube.client import Kube", "kaip.kube.client", (PURE,)),
    Violation("kaip_incluster.admission", "import aiohttp", "aiohttp", (NETWORK, PURE)),
    Violation("kaip_incluster.controller", "import subprocess", "subprocess", (PROCESSES,)),
)


def _copy_project(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".import_linter_cache")
    for folder in ("kubectl_plugins", "webhooks", "tests/support"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _plant(dest: Path, violations: tuple[Violation, ...]) -> None:
    by_package: dict[str, list[Violation]] = {}
    for v in violations:
        by_package.setdefault(v.package, []).append(v)
    for package, planted in by_package.items():
        root, _, rest = package.partition(".")
        path = dest / SOURCES[root] / rest.replace(".", "/") / f"{PLANTED}.py"
        lines = [v.statement for v in planted if not v.lazy]
        lazy = [f"    {v.statement}" for v in planted if v.lazy]
        if lazy:
            lines += ["", "", "def planted() -> None:", *lazy]
        path.write_text("\n".join(lines) + "\n")


_LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # The copy's packages first, whatever `kaip` is installed; a wide terminal so no line wraps.
    env["PYTHONPATH"] = os.pathsep.join(
        str(project / p) for p in ("kubectl_plugins", "webhooks", "tests/support")
    )
    env["COLUMNS"] = "250"
    return subprocess.run(
        [sys.executable, "-c", _LINT_IMPORTS, "--no-cache", "--no-logo"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _sections(report: str) -> dict[str, str]:
    """The report split at its headings (a line underlined by dashes of the same length)."""
    lines = report.splitlines()
    starts = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip() and set(lines[i + 1]) == {"-"} and len(lines[i + 1]) == len(lines[i])
    ]
    return {
        lines[s]: "\n".join(lines[s + 2 : e]) for s, e in zip(starts, [*starts[1:], len(lines)], strict=True)
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("importlinter", reason="import-linter is a dev dependency: pip install -e '.[dev]'")
    dest = tmp_path_factory.mktemp("contracts")
    _copy_project(dest)
    return dest


def test_the_unmodified_copy_keeps_every_contract(project: Path) -> None:
    done = _lint_imports(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 broken" in done.stdout


def test_each_planted_violation_is_reported_by_its_contract(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    broken = tmp_path_factory.mktemp("violated")
    shutil.copytree(project, broken, dirs_exist_ok=True)
    _plant(broken, VIOLATIONS)

    done = _lint_imports(broken)

    assert done.returncode != 0, done.stdout + done.stderr
    sections = _sections(done.stdout)
    for v in VIOLATIONS:
        for contract in v.contracts:
            assert contract in sections, f"{contract!r} is not reported broken:\n{done.stdout}"
            line = f"-   {v.importer} -> {v.imported} (l."
            assert line in sections[contract], (
                f"{v.statement!r} in {v.package} is not reported by {contract!r}:\n{sections[contract]}"
            )


def test_the_node_checks_import_the_standard_library_only() -> None:
    # import-linter cannot say "standard library only" (its nodechecks contract lists the third-party
    # packages we know of); this checks the allow-list itself, lazy imports included.
    package = ROOT / SOURCES["kaip_incluster"] / "nodechecks"
    outside: list[str] = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level > 1:
                    outside.append(f"{path.name}: from {'.' * node.level}{node.module or ''}")
                names = [node.module] if node.level == 0 and node.module else []
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top in sys.stdlib_module_names or name.startswith("kaip_incluster.nodechecks"):
                    continue
                outside.append(f"{path.name}: {name}")
    assert not outside, f"the node checks import beyond the standard library: {outside}"
