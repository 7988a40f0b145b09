"""The test bed itself: a real kube-apiserver with TLS and RBAC answers our client."""

from __future__ import annotations

import pytest

from kaip.kube.client import Kube
from kaip.resources import kinds

pytestmark = pytest.mark.integration


def test_apiserver_serves_tls_and_rbac(admin_kube: Kube) -> None:
    version = admin_kube.request("GET", "/version")
    assert version["major"] == "1"
    assert admin_kube.conn.server.startswith("https://127.0.0.1:")
    # RBAC is on: the authorization API answers with the RBAC authorizer's verdict.
    review = admin_kube.create(
        kinds.SUBJECT_ACCESS_REVIEWS,
        {"spec": {"user": "nobody", "resourceAttributes": {"verb": "list", "resource": "secrets"}}},
    )
    assert review["status"]["allowed"] is False


def test_each_test_gets_a_fresh_namespace(kube: Kube, namespace: str) -> None:
    assert kube.namespace == namespace
    kube.create(kinds.CONFIGMAPS, {"metadata": {"name": "probe"}, "data": {"k": "v"}})
    assert kube.get(kinds.CONFIGMAPS, "probe")["data"] == {"k": "v"}
    assert kube.get(kinds.SERVICEACCOUNTS, "default")["metadata"]["name"] == "default"
