"""The data-preload scheduling gate added by the webhook server, called by the real kube-apiserver:
a Pod that mounts a PVC whose data is not loaded is created gated; once the PVC is loaded, new Pods
are not; Pods with ordinary PVCs never are."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources import preload as names
from kaip_testbed.webhooks import Webhook

pytestmark = pytest.mark.integration


def pvc(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def pod(name: str, claim: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "main", "image": "registry.example/trainer:1"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def gates(obj: dict[str, Any]) -> list[str]:
    return [g["name"] for g in obj["spec"].get("schedulingGates") or []]


def settled(kube: Kube, claim: str, *, want: list[str], timeout: float = 15.0) -> dict[str, Any]:
    """Create a Pod once the webhook's PVC cache shows the claim's current state (dry-run probes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = kube.create(kinds.PODS, pod("probe", claim), dry_run=True)
        if gates(probe) == want:
            return probe
        time.sleep(0.2)
    raise AssertionError(f"a Pod mounting {claim} never came out with gates {want}")


@pytest.mark.usefixtures("webhook")
def test_pods_wait_for_their_data_and_only_they(kube: Kube, webhook: Webhook) -> None:
    kube.create(kinds.PVCS, pvc("scratch"))
    kube.create(kinds.PVCS, pvc("imagenet", {names.ANNOTATION_SOURCE: "s3://datasets/imagenet/"}))
    settled(kube, "scratch", want=[])
    plain = kube.create(kinds.PODS, pod("notebook", "scratch"))
    assert gates(plain) == []

    waiting = kube.create(kinds.PODS, pod("trainer", "imagenet"))
    assert gates(waiting) == [names.SCHEDULING_GATE]

    kube.patch(
        kinds.PVCS,
        "imagenet",
        {
            "status": {
                "conditions": [
                    {"type": names.CONDITION_LOADED, "status": "True", "reason": names.REASON_SUCCEEDED}
                ]
            }
        },
        subresource="status",
    )
    settled(kube, "imagenet", want=[])
    later = kube.create(kinds.PODS, pod("trainer-2", "imagenet"))
    assert gates(later) == []
