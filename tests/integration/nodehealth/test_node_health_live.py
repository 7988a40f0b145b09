"""`kubectl node-health` against the real API server, with GPU nodes in every state a user meets:
healthy, GPU lost with a device marked unhealthy, under remediation and cordoned, NotReady, a stuck
process reported by a detector that went silent, and a MIG node."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from gpunodes import condition, create, delete, gpu_node

from kaip.cli.app import run
from kaip.commands.node_health import cli
from kaip.errors import ExitCode
from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources.kinds import Resource
from kaip_testbed.controlplane import ControlPlane

pytestmark = pytest.mark.integration


class Fleet:
    def __init__(self, run_id: str, kubeconfig: Path) -> None:
        self.run = run_id
        self.kubeconfig = kubeconfig
        self.selector = f"kaip.dev/test-run={run_id}"

    @property
    def plain(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig), "--polarity-configmap", "none"]

    def name(self, short: str) -> str:
        return f"{short}-{self.run}"

    def args(self, *args: str) -> list[str]:
        return [
            *args,
            "--kubeconfig",
            str(self.kubeconfig),
            "-l",
            self.selector,
            "--polarity-configmap",
            "none",
        ]


@pytest.fixture(scope="module")
def fleet(admin_kube: Kube, control_plane: ControlPlane) -> Iterator[Fleet]:
    run_id = uuid.uuid4().hex[:6]
    f = Fleet(run_id, control_plane.kubeconfig)
    n = f.name
    nodes = [
        gpu_node(n("ok"), run_id),
        gpu_node(n("lost"), run_id, problems={"GPUIsLost": "True"}, gpus=(8, 7)),
        gpu_node(
            n("page"),
            run_id,
            problems={"GPUPendingPage": "True"},
            problem_since=timedelta(hours=30),
            unschedulable=True,
            labels={"kaip.dev/remediation": "Draining"},
            taints=[{"key": "kaip.dev/remediation", "effect": "NoSchedule"}],
        ),
        gpu_node(n("down"), run_id, ready="False", product="NVIDIA-H100-80GB-HBM3", pool="train-b"),
        gpu_node(n("silent"), run_id, ready="Unknown"),  # the kubelet stopped posting status
        gpu_node(n("dstate"), run_id, problems={"DStateProcess": "True"}, stale=True),
        gpu_node(n("mig"), run_id, gpus=(0, 0), mig={"nvidia.com/mig-1g.10gb": (14, 14)}, pool="infer"),
    ]
    names = create(admin_kube, nodes)
    try:
        yield f
    finally:
        delete(admin_kube, names)


def invoke(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = run(cli, args, prog_name="kubectl node-health")
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


def test_summary(capsys: pytest.CaptureFixture[str], fleet: Fleet) -> None:
    code, out, _ = invoke(capsys, fleet.args("summary", "-o", "wide"))  # the GPU table's every column
    assert code == 0
    counts, problems, gpus = out.strip().split("\n\n")
    assert rows(counts) == [
        [
            "NODES",
            "READY",
            "NOTREADY",
            "UNKNOWN",
            "CORDONED",
            "TAINTED",
            "REMEDIATING",
            "PROBLEMS",
        ],
        ["7", "5", "2", "0", "1", "7", "1", "5"],  # Ready=Unknown is NotReady, as kubectl says
    ]
    table = {r[0] + "=" + r[1]: r[2:] for r in rows(problems)[1:]}
    assert table == {
        "DStateProcess=True": ["1", "3h", fleet.name("dstate")],
        "GPUIsLost=True": ["1", "3h", fleet.name("lost")],
        "GPUPendingPage=True": ["1", "30h", fleet.name("page")],
        "Ready=False": ["1", "5h", fleet.name("down")],
        "Ready=Unknown": ["1", "5h", fleet.name("silent")],
    }
    gpu_rows = rows(gpus)
    assert gpu_rows[0] == [
        "NVIDIA.COM/GPU.PRODUCT",
        "RESOURCE",
        "NODES",
        "CAPACITY",
        "ALLOCATABLE",
        "UNAVAILABLE",
        "STRANDED",
    ]
    assert [
        "NVIDIA-A100-SXM4-80GB",
        "nvidia.com/gpu",
        "5",
        "40",
        "39",
        "1",
        "16",
    ] in gpu_rows  # page-* is cordoned, silent-* Unknown: stranded
    assert ["NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu", "1", "8", "8", "0", "8"] in gpu_rows  # NotReady
    assert ["NVIDIA-A100-SXM4-80GB", "nvidia.com/mig-1g.10gb", "1", "14", "14", "0", "0"] in gpu_rows
    assert ["(all)", "nvidia.com/gpu", "6", "48", "47", "1", "24"] in gpu_rows


def test_summary_exit_code_and_grouping_by_pool(capsys: pytest.CaptureFixture[str], fleet: Fleet) -> None:
    code, out, _ = invoke(
        capsys, fleet.args("summary", "--exit-code", "--group-by", "kaip.dev/pool", "-o", "json")
    )
    assert code == ExitCode.FAILURE == 1
    doc = json.loads(out)
    assert doc["kind"] == "NodeHealthSummary" and doc["nodes"]["withProblems"] == 5
    pools = {(a["group"], a["resource"]): a["capacity"] for a in doc["accelerators"]}
    assert pools[("train-a", "nvidia.com/gpu")] == 40 and pools[("infer", "nvidia.com/mig-1g.10gb")] == 14
    healthy = [*fleet.args("summary", "--exit-code")]
    healthy[healthy.index(fleet.selector)] += f",kubernetes.io/hostname={fleet.name('ok')}"
    code, out, _ = invoke(capsys, healthy)
    assert code == 0 and "No abnormal node conditions." in out


def test_list(capsys: pytest.CaptureFixture[str], fleet: Fleet) -> None:
    code, out, _ = invoke(capsys, fleet.args("list", "--sort-by", "status"))
    assert code == 0
    lines = rows(out)
    assert lines[0] == ["NAME", "STATUS", "PROBLEMS", "SINCE", "GPU", "AGE"]  # taints: -o wide
    by_name = {r[0]: r for r in lines[1:]}
    assert [line[0] for line in lines[1:3]] == [fleet.name("down"), fleet.name("silent")]  # worst first
    assert by_name[fleet.name("silent")][1:3] == ["NotReady", "<none>"]  # Ready=Unknown, as kubectl says
    assert by_name[fleet.name("down")][1:5] == ["NotReady", "<none>", "5h", "8/8"]
    assert by_name[fleet.name("lost")][1:5] == ["Ready", "GPUIsLost", "3h", "7/8"]
    assert by_name[fleet.name("page")][1:5] == [
        "Ready,SchedulingDisabled,Remediation:Draining",
        "GPUPendingPage",
        "30h",
        "8/8",
    ]
    assert by_name[fleet.name("mig")][4:6] == ["14/14", "mig-1g.10gb"]
    assert fleet.name("ok") in by_name  # tainted nodes are shown; their taints in -o wide


def test_list_wide_shows_product_driver_pool_and_stale_detectors(
    capsys: pytest.CaptureFixture[str], fleet: Fleet
) -> None:
    _, out, _ = invoke(capsys, fleet.args("list", "-o", "csv"))
    table = list(csv.DictReader(io.StringIO(out)))
    by_name = {r["NAME"]: r for r in table}
    dstate = by_name[fleet.name("dstate")]
    assert dstate["STALE"] == "GPUIsLost,GPUPendingPage,DStateProcess,PCIeLinkDegraded,GPURuntimeError"
    assert by_name[fleet.name("ok")]["STALE"] == "-"
    assert (dstate["PRODUCT"], dstate["DRIVER"], dstate["KERNEL"], dstate["POOL"]) == (
        "NVIDIA-A100-SXM4-80GB",
        "550.127.05",
        "5.15.0-105-generic",
        "train-a",
    )
    _, out, _ = invoke(capsys, fleet.args("list", "-o", "wide"))
    assert rows(out)[0][-5:] == ["PRODUCT", "DRIVER", "KERNEL", "POOL", "STALE"]


def test_list_filters_and_machine_outputs(capsys: pytest.CaptureFixture[str], fleet: Fleet) -> None:
    code, out, _ = invoke(
        capsys, fleet.args("list", "--problem", "GPUIsLost", "--problem", "Ready", "-o", "name")
    )
    assert (code, out.split()) == (
        0,
        [f"node/{fleet.name('down')}", f"node/{fleet.name('lost')}", f"node/{fleet.name('silent')}"],
    )
    code, out, _ = invoke(capsys, fleet.args("list", "--only-problems", "--exit-code", "-o", "json"))
    assert code == 1
    doc = json.loads(out)
    assert sorted(i["metadata"]["name"] for i in doc["items"]) == sorted(
        fleet.name(s) for s in ("dstate", "down", "lost", "page", "silent")
    )
    lost = next(i for i in doc["items"] if i["metadata"]["name"] == fleet.name("lost"))
    assert lost["accelerators"] == [
        {
            "resource": "nvidia.com/gpu",
            "vendor": "nvidia",
            "knownVendor": True,
            "capacity": 8,
            "allocatable": 7,
            "unavailable": 1,
            "requested": None,
        }
    ]
    _, out, _ = invoke(capsys, fleet.args("list", "--problem", "GPUPendingPage", "-o", "yaml"))
    (page,) = yaml.safe_load(out)["items"]
    assert page["remediation"] == "Draining" and page["unschedulable"] is True
    code, out, err = invoke(capsys, fleet.args("list", "--problem", "KernelDeadlock", "--exit-code"))
    assert (code, out, err.strip()) == (0, "", "No nodes match.")


@pytest.fixture
def gpu_pods(kube: Kube, fleet: Fleet, namespace: str) -> None:
    def pod(name: str, node: str, count: int, resource: str = "nvidia.com/gpu") -> None:
        kube.create(
            kinds.PODS,
            {
                "metadata": {"name": name},
                "spec": {
                    "nodeName": node,
                    "containers": [
                        {"name": "train", "image": "busybox", "resources": {"limits": {resource: str(count)}}}
                    ],
                },
            },
        )

    pod("train-0", fleet.name("ok"), 6)
    pod("train-1", fleet.name("lost"), 4)
    pod("infer-0", fleet.name("mig"), 3, "nvidia.com/mig-1g.10gb")


@pytest.mark.usefixtures("gpu_pods")
def test_gpu_usage_reads_pods_bound_to_nodes(capsys: pytest.CaptureFixture[str], fleet: Fleet) -> None:
    _, out, _ = invoke(capsys, fleet.args("list", "--gpu-usage"))
    by_name = {r[0]: r for r in rows(out)[1:]}
    assert by_name[fleet.name("ok")][4:6] == ["8/8", "6"]
    assert by_name[fleet.name("lost")][4:6] == ["7/8", "4"]
    assert by_name[fleet.name("down")][4:6] == ["8/8", "0"]
    _, out, _ = invoke(
        capsys, fleet.args("summary", "--gpu-usage", "--group-by", "kaip.dev/pool", "-o", "wide")
    )
    gpu_rows = rows(out.strip().split("\n\n")[2])
    assert gpu_rows[0][-3:] == ["REQUESTED", "FREE", "STRANDED"]
    # train-a free: ok (8 - 6) + lost (7 - 4) + dstate (8); page (cordoned) and silent (Unknown) are stranded
    assert ["train-a", "nvidia.com/gpu", "5", "40", "39", "1", "10", "13", "16"] in gpu_rows
    assert ["infer", "nvidia.com/mig-1g.10gb", "1", "14", "14", "0", "3", "11", "0"] in gpu_rows


@pytest.mark.usefixtures("gpu_pods")
def test_describe(capsys: pytest.CaptureFixture[str], fleet: Fleet, admin_kube: Kube, namespace: str) -> None:
    node = fleet.name("lost")
    # events of cluster-scoped objects live in "default", where node-problem-detector writes them
    admin_kube.create(
        kinds.EVENTS,
        {
            "metadata": {"name": f"{node}.npd", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": node, "uid": node},
            "type": "Warning",
            "reason": "GPUIsLost",
            "message": "GPU 0000:47:00.0 is lost (fallen off the bus)",
            "source": {"component": "kaip-gpu-plugin-monitor", "host": node},
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:00Z",
        },
    )
    code, out, _ = invoke(capsys, ["describe", node, *fleet.plain])
    assert code == 0
    text = out.splitlines()
    assert text[0].split() == ["Name:", node]
    assert "Problems:      GPUIsLost" in text
    conditions = text[text.index("Conditions:") + 2 : text.index("Taints:")]
    assert [c.split()[:3] for c in conditions if c.lstrip().startswith("!")] == [["!", "GPUIsLost", "True"]]
    assert len(conditions) == 9  # every condition, healthy ones too
    pods = text[text.index("Pods holding accelerators:") + 1 :]
    assert pods[1].split()[:5] == [namespace, "train-1", "nvidia.com/gpu", "4", "Pending"]
    events = text[text.index("Events:") + 2 :]
    assert events[0].split()[2:5] == ["Warning", "GPUIsLost", "kaip-gpu-plugin-monitor"]
    code, out, _ = invoke(capsys, ["describe", node, "-o", "json", *fleet.plain])
    doc = json.loads(out)
    assert doc["gpuPods"][0]["name"] == "train-1" and doc["events"][0]["reason"] == "GPUIsLost"
    code, _, err = invoke(capsys, ["describe", "no-such-node", *fleet.plain])
    assert code == ExitCode.NOT_FOUND
    assert err.strip() == 'error: nodes "no-such-node" not found'
    admin_kube.delete(kinds.EVENTS, f"{node}.npd", namespace="default")


def test_admin_polarity_from_configmap_and_file(
    capsys: pytest.CaptureFixture[str],
    fleet: Fleet,
    admin_kube: Kube,
    kube: Kube,
    namespace: str,
    tmp_path: Path,
) -> None:
    name = fleet.name("vendor")
    create(
        admin_kube,
        [
            gpu_node(
                name,
                fleet.run,
                extra_conditions=[condition("VendorGPUHealthy", "False", since=timedelta(hours=1))],
            )
        ],
    )
    try:
        only = [*fleet.args("list", "--only-problems", "-o", "name")]
        only[only.index(fleet.selector)] += f",kubernetes.io/hostname={name}"
        # unlisted: node-problem-detector's convention (True = problem) is assumed, so False looks fine
        _, out, _ = invoke(capsys, only)
        assert out == ""
        kube.create(
            kinds.CONFIGMAPS,
            {
                "metadata": {"name": "polarity"},
                "data": {"polarity.yaml": 'healthyWhen:\n  VendorGPUHealthy: "True"\n'},
            },
        )
        with_cm = [*only[: only.index("none")], f"{namespace}/polarity", *only[only.index("none") + 1 :]]
        _, out, _ = invoke(capsys, with_cm)
        assert out.split() == [f"node/{name}"]
        file = tmp_path / "polarity.yaml"
        file.write_text("healthyWhen:\n  Vendor*: 'True'\n")
        _, out, _ = invoke(capsys, [*only, "--polarity-file", str(file)])
        assert out.split() == [f"node/{name}"]
    finally:
        admin_kube.delete(kinds.NODES, name, ignore_missing=True)


def test_a_node_reader_without_configmap_rights(
    capsys: pytest.CaptureFixture[str], fleet: Fleet, admin_kube: Kube, control_plane: ControlPlane
) -> None:
    """An SRE allowed to read nodes only: the views work, the polarity ConfigMap is skipped with a warning."""
    user = f"sre-{fleet.run}"
    role = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)
    binding = Resource(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
    )
    admin_kube.create(
        role,
        {
            "metadata": {"name": user},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
        },
    )
    admin_kube.create(
        binding,
        {
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    try:
        config = control_plane.user_kubeconfig(user)
        args = ["list", "--kubeconfig", str(config), "-l", fleet.selector, "-o", "name"]
        code, out, err = invoke(capsys, args)
        assert code == 0 and len(out.split()) == 7
        assert err.strip() == (
            "warning: cannot read ConfigMap kube-system/kaip-node-health (forbidden); "
            "using the built-in condition polarity"
        )
        # GPU usage needs Pods: the refusal names what is missing
        code, _, err = invoke(capsys, [*args, "--gpu-usage"])
        assert code == ExitCode.FORBIDDEN
        assert f'User "{user}" cannot list resource "pods"' in err
    finally:
        admin_kube.delete(binding, user, ignore_missing=True)
        admin_kube.delete(role, user, ignore_missing=True)
