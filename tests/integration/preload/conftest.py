"""Fixtures of the data-loader controller tests: its identity and RBAC, from the manifest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kaip.kube.client import Kube
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.dataloader import install_controller_rbac


@pytest.fixture(scope="module")
def controller_kubeconfig(cluster_controllers: ControlPlane, admin_kube: Kube) -> Iterator[Path]:
    """A kubeconfig for the controller's user, bound to the manifest's ClusterRole for the module."""
    kubeconfig, undo = install_controller_rbac(admin_kube, cluster_controllers)
    yield kubeconfig
    undo()
