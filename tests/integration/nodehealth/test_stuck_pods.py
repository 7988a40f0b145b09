"""Pods stuck terminating, against the real API server with a kwok node: a Pod held by a finalizer
and deleted with grace 0 is past its deletion deadline at once; summary counts it, list shows it in
STUCK and describe names it with the GPUs it still holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from gpunodes import create, delete, gpu_node

from kaip.cli.app import run
from kaip.commands.node_health import cli
from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane

pytestmark = pytest.mark.integration
FINALIZER = "kaip.dev/test-hold"


@pytest.fixture
def stuck_pod(admin_kube: Kube, kube: Kube, kwok: ControlPlane, namespace: str) -> Iterator[tuple[str, str]]:
    run_id = uuid.uuid4().hex[:6]
    node = f"stuck-{run_id}"
    obj = gpu_node(node, run_id)
    obj["metadata"]["annotations"] = {"kwok.x-k8s.io/node": "fake"}
    create(admin_kube, [obj])
    pod = {
        "metadata": {"name": "wedged", "finalizers": [FINALIZER]},
        "spec": {
            "nodeName": node,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {"name": "train", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "2"}}}
            ],
        },
    }
    kube.create(kinds.PODS, pod)
    kube.create(kinds.PODS, {**pod, "metadata": {"name": "healthy"}})
    path = kinds.PODS.path(namespace=namespace, name="wedged")
    kube.request("DELETE", path, body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
    try:
        yield node, f"kaip.dev/test-run={run_id}"
    finally:
        kube.patch(kinds.PODS, "wedged", {"metadata": {"finalizers": None}})
        delete(admin_kube, [node])


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = run(cli, list(args), prog_name="kubectl node-health")
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_summary_list_and_describe_show_a_pod_stuck_terminating(
    capsys: pytest.CaptureFixture[str], stuck_pod: tuple[str, str], kubeconfig: object, namespace: str
) -> None:
    node, selector = stuck_pod
    common = ["--kubeconfig", str(kubeconfig), "--polarity-configmap", "none"]
    out = invoke(capsys, "summary", "--stuck-pods", "-l", selector, *common)
    table = next(part for part in out.split("\n\n") if part.startswith("STUCK TERMINATING PODS"))
    assert table.splitlines()[1].split() == ["1", "1", "gpu=2"]
    assert "STUCK" not in invoke(capsys, "summary", "-l", selector, *common)  # Pods not read by default

    out = invoke(capsys, "list", "--stuck-pods", "-l", selector, *common)
    header, row = (line.split() for line in out.splitlines())
    assert dict(zip(header, row, strict=True))["STUCK"] == "1"
    assert "STUCK" not in invoke(capsys, "list", "-l", selector, *common).splitlines()[0]
    doc = json.loads(invoke(capsys, "list", "--stuck-pods", "-l", selector, "-o", "json", *common))
    (item,) = doc["items"]
    assert [(p["name"], p["accelerators"]) for p in item["stuckTerminatingPods"]] == [
        ("wedged", {"nvidia.com/gpu": 2})
    ]

    text = invoke(capsys, "describe", node, *common).splitlines()
    section = text[text.index("Pods stuck terminating:") + 1 :]
    assert section[0].split() == ["NAMESPACE", "NAME", "DELETION", "DUE", "ACCELERATORS"]
    assert section[1].split()[:2] == [namespace, "wedged"] and section[1].split()[-1] == "nvidia.com/gpu=2"
    doc = json.loads(invoke(capsys, "describe", node, "-o", "json", *common))
    assert [p["name"] for p in doc["stuckTerminatingPods"]] == ["wedged"]
