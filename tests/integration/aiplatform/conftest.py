"""The Kubeflow CRDs of tests/fixtures/crds, installed on the real API server for one test module.

Module-scoped and removed afterwards: other tests prove what happens without them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from kaip.kube.client import Kube


def _load_installer() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "fixtures" / "crds" / "install.py"
    spec = importlib.util.spec_from_file_location("kaip_test_crds", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


crds = _load_installer()


@pytest.fixture(scope="module")
def kubeflow(admin_kube: Kube) -> Iterator[list[str]]:
    """Install the Kubeflow and Katib CRDs; yields their names; removes them after the module."""
    names: list[str] = crds.install(admin_kube)
    try:
        yield names
    finally:
        crds.remove(admin_kube, names)
