"""Fixtures of the remediation tests: our CRDs on the real API server, and no remediation objects
left from one test to the next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from remediation_testlib import ALL, CRD, CRDS

from kaip.kube.client import Kube
from kaip_testbed.waiting import wait_for


@pytest.fixture(scope="session")
def remediation_api(admin_kube: Kube) -> Kube:
    for path in sorted(CRDS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        try:
            admin_kube.create(CRD, doc)
        except Exception as exc:  # already there from an earlier test module of this session
            if "AlreadyExists" not in str(exc) and "already exists" not in str(exc):
                raise
    for resource in ALL:
        wait_for(lambda r=resource: admin_kube.served(r), what=f"{resource.plural} served")  # type: ignore[misc]
    return admin_kube


@pytest.fixture
def remediation(remediation_api: Kube) -> Iterator[Kube]:
    """The API with our CRDs and no remediation objects; everything cluster-scoped removed afterwards."""
    yield remediation_api
    for resource in ALL:
        for obj in remediation_api.list_all(resource):
            remediation_api.delete(resource, obj["metadata"]["name"], ignore_missing=True)
