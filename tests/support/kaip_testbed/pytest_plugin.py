"""pytest fixtures of the test bed (loaded for every test run through pyproject's addopts).

Session-wide: ``control_plane`` (etcd + kube-apiserver, started once), ``s3_server`` (MinIO),
``gcs_server`` (fake-gcs-server). Per test: ``namespace`` (a fresh namespace, deleted afterwards),
``kube`` (an admin client whose default namespace is that namespace). Opt-in:
``cluster_controllers`` (kube-controller-manager + kube-scheduler) and ``kwok`` (simulated nodes).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kaip_testbed import controlplane, objectstores

if TYPE_CHECKING:
    from kaip.kube.client import Kube

#: Fixtures that start one of the real servers (or need one started): a test that uses any of them is
#: marked ``testbin``, so that the fast tier (``make unit``: ``-m "not testbin and not integration"``)
#: leaves it out instead of building and starting them.
SERVER_FIXTURES = frozenset(
    {"control_plane", "admin_kube", "namespace", "kube", "kubeconfig", "cluster_controllers", "kwok",
     "s3_server", "gcs_server", "bucket_name", "kubeflow"}
)  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.testbin)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    plane = controlplane.start(tmp_path_factory.mktemp("controlplane"))
    os.environ.setdefault("KAIP_TEST_SERVER", plane.server_url)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def admin_kube(control_plane: controlplane.ControlPlane) -> Kube:
    from kaip.kube import connect
    from kaip.kube.config import ClusterTarget

    return connect(ClusterTarget(kubeconfig=str(control_plane.kubeconfig)))


@pytest.fixture
def namespace(admin_kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace with its default ServiceAccount, deleted after the test."""
    from kaip.kube.errors import Conflict
    from kaip.resources import kinds

    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    admin_kube.create(kinds.NAMESPACES, {"metadata": {"name": name, "labels": {"kaip.dev/test": "true"}}})
    # Without kube-controller-manager nobody creates it, and the ServiceAccount admission needs it.
    # With it (cluster_controllers), its ServiceAccount controller may have been first.
    with contextlib.suppress(Conflict):
        admin_kube.create(kinds.SERVICEACCOUNTS, {"metadata": {"name": "default"}}, namespace=name)
    try:
        yield name
    finally:
        admin_kube.delete(kinds.NAMESPACES, name, ignore_missing=True)


@pytest.fixture
def kube(admin_kube: Kube, namespace: str) -> Kube:
    return admin_kube.with_namespace(namespace)


@pytest.fixture
def kubeconfig(control_plane: controlplane.ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def cluster_controllers(control_plane: controlplane.ControlPlane) -> controlplane.ControlPlane:
    control_plane.start_controllers()
    return control_plane


@pytest.fixture(scope="session")
def kwok(cluster_controllers: controlplane.ControlPlane) -> controlplane.ControlPlane:
    cluster_controllers.start_kwok()
    return cluster_controllers


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[objectstores.S3Server]:
    server = objectstores.start_minio(tmp_path_factory.mktemp("minio"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[objectstores.GCSServer]:
    server = objectstores.start_fake_gcs(tmp_path_factory.mktemp("fakegcs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket_name(request: pytest.FixtureRequest) -> str:
    return f"kaip-{uuid.uuid4().hex[:12]}"
