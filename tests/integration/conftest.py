"""Fixtures of the integration tests: the Kubeflow CRDs of tests/fixtures/crds, installed on the real
API server for one test module.

Module-scoped and removed afterwards: other tests prove what happens without them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kaip.kube.client import Kube
from kaip_testbed.kubeflow import installer

crds = installer()


@pytest.fixture(scope="module")
def kubeflow(admin_kube: Kube) -> Iterator[list[str]]:
    """Install the Kubeflow and Katib CRDs; yields their names; removes them after the module."""
    names: list[str] = crds.install(admin_kube)
    try:
        yield names
    finally:
        crds.remove(admin_kube, names)
