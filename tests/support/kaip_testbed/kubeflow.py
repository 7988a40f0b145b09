"""The installer of the Kubeflow and Katib CRDs kept in tests/fixtures/crds (loaded by path: tests/
is not a package), for the integration tests and the benchmarks."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

CRD_INSTALLER = Path(__file__).resolve().parents[2] / "fixtures" / "crds" / "install.py"


@cache
def installer() -> ModuleType:
    """The module with ``install(kube) -> names`` and ``remove(kube, names)``."""
    spec = importlib.util.spec_from_file_location("kaip_test_crds", CRD_INSTALLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
