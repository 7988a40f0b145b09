"""Fixtures of the integration tests: Kubeflow's and Katib's upstream CRDs (from the operators' Go
modules, see kaip_testbed.kubeflow), installed on the real API server for one test module.

Module-scoped and removed afterwards: other tests prove what happens without them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kaip.kube.client import Kube
from kaip_testbed import kubeflow as kf_testbed


@pytest.fixture(scope="module")
def kubeflow(admin_kube: Kube) -> Iterator[list[str]]:
    """Install the Kubeflow (MPIJob v2beta1) and Katib CRDs; yields their names; removes them after."""
    names = kf_testbed.install_crds(admin_kube, kf_testbed.crd_documents())
    try:
        yield names
    finally:
        kf_testbed.remove_crds(admin_kube, names)
