"""The cluster admin's `kubectl ai-platform` catalog (ConfigMap ``kaip-system/ai-platform-catalog``) for
the length of a test: it is cluster-wide, so it is removed again afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from kaip.kube.client import Kube
from kaip.kube.errors import Conflict
from kaip.resources import kinds
from kaip.resources import kubeflow as kf

#: A RoCE network as the seed's cluster has one (NVIDIA Network Operator, RDMA shared device plugin),
#: and tenants chosen by the namespace label kaip.dev/tenant, every namespace's replicas exclusive.
HPC_CATALOG: dict[str, Any] = {
    "secondaryNetworks": {
        "roce": {
            "network": "roce-net",
            "interface": "net1",
            "resources": {"rdma/rdma_shared_device_a": "1"},
            "hcas": ["mlx5_0"],
            "gidIndex": 3,
        }
    },
    "tenancy": {
        "default": {"exclusive": True},
        "tenants": {"lab-a": {"runAsUser": 20001, "runAsGroup": 20001, "fsGroup": 20001}},
    },
}


@contextlib.contextmanager
def admin_catalog(admin_kube: Kube, doc: Mapping[str, Any]) -> Iterator[None]:
    """Install ``doc`` as the catalog while the block runs."""
    cm = {"metadata": {"name": kf.CATALOG_CONFIGMAP}, "data": {kf.CATALOG_KEY: yaml.safe_dump(dict(doc))}}
    with contextlib.suppress(Conflict):  # it may exist from another test
        admin_kube.create(kinds.NAMESPACES, {"metadata": {"name": kf.CATALOG_NAMESPACE}})
    admin_kube.delete(
        kinds.CONFIGMAPS, kf.CATALOG_CONFIGMAP, namespace=kf.CATALOG_NAMESPACE, ignore_missing=True
    )
    admin_kube.create(kinds.CONFIGMAPS, cm, namespace=kf.CATALOG_NAMESPACE)
    try:
        yield
    finally:
        admin_kube.delete(
            kinds.CONFIGMAPS, kf.CATALOG_CONFIGMAP, namespace=kf.CATALOG_NAMESPACE, ignore_missing=True
        )
