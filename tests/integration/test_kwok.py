"""The opt-in parts of the test bed: kube-controller-manager, kube-scheduler and kwok run a Job's Pod
on a simulated node, as the capability tests need."""

from __future__ import annotations

import time

import pytest

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane

pytestmark = pytest.mark.integration


def fake_node(name: str) -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name},
        },
        "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]},
    }


def wait_for(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError("condition not met in time")


def test_a_job_runs_to_completion_on_a_kwok_node(kwok: ControlPlane, admin_kube: Kube, kube: Kube) -> None:
    node = f"kwok-{kube.namespace[-6:]}"
    admin_kube.create(kinds.NODES, fake_node(node))
    try:
        wait_for(
            lambda: any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in admin_kube.get(kinds.NODES, node).get("status", {}).get("conditions", [])
            )
        )
        kube.create(
            kinds.JOBS,
            {
                "metadata": {"name": "hello"},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "nodeSelector": {"kubernetes.io/hostname": node},
                            "tolerations": [
                                {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
                            ],
                            "containers": [{"name": "main", "image": "busybox"}],
                        }
                    },
                },
            },
        )
        wait_for(
            lambda: (kube.get(kinds.JOBS, "hello").get("status") or {}).get("succeeded") == 1, timeout=90
        )
        pods = kube.list(kinds.PODS, label_selector="job-name=hello")["items"]
        assert [p["spec"]["nodeName"] for p in pods] == [node]
    finally:
        admin_kube.delete(kinds.NODES, node, ignore_missing=True)
