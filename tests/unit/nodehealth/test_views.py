"""The pure views of `kubectl node-health`: polarity, node state, GPU accounting, summary, rows."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from kaip.errors import UsageError
from kaip.nodehealth import describe, gpu, listing, polarity, summary
from kaip.nodehealth.nodeview import NodeView, node_view

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
TABLE = polarity.builtin()


def cond(
    ctype: str, status: str, since: str = "2026-11-22T10:00:00Z", beat: str = "2026-11-22T11:58:00Z"
) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": f"{ctype}Reason",
        "message": f"{ctype} says {status}",
        "lastTransitionTime": since,
        "lastHeartbeatTime": beat,
    }


def node(
    name: str,
    *,
    ready: str | None = "True",
    conditions: list[dict[str, Any]] = (),  # type: ignore[assignment]
    gpus: tuple[int, int] | None = (8, 8),
    extra: dict[str, tuple[int, int]] | None = None,
    labels: dict[str, str] | None = None,
    unschedulable: bool = False,
    taints: list[dict[str, Any]] | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    capacity: dict[str, str] = {"cpu": "64", "memory": "512Gi"}
    allocatable: dict[str, str] = {"cpu": "63", "memory": "500Gi"}
    for res, (cap, alloc) in ({"nvidia.com/gpu": gpus} if gpus else {}).items() | (extra or {}).items():
        capacity[res], allocatable[res] = str(cap), str(alloc)
    conds = ([cond("Ready", ready, since="2026-11-20T00:00:00Z")] if ready else []) + list(conditions)
    return {
        "metadata": {"name": name, "labels": labels or {}, "creationTimestamp": created},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {
            "conditions": conds,
            "capacity": capacity,
            "allocatable": allocatable,
            "nodeInfo": {"kernelVersion": "5.15.0-105-generic"},
        },
    }


def view(obj: dict[str, Any], table: polarity.Polarity = TABLE) -> NodeView:
    return node_view(obj, table, now=NOW)


# -- polarity ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ctype", "status", "abnormal"),
    [
        ("Ready", "True", False),
        ("Ready", "False", True),
        ("NVLinkReady", "False", True),  # any *Ready is healthy when True
        ("MemoryPressure", "True", True),
        ("KernelDeadlock", "False", False),
        ("GPUIsLost", "True", True),
        ("GPURuntimeError", "False", False),
        ("DStateProcess", "Unknown", True),  # Unknown is abnormal for every condition
        ("Ready", "Unknown", True),
    ],
)
def test_builtin_polarity(ctype: str, status: str, abnormal: bool) -> None:
    assert TABLE.is_abnormal(ctype, status) is abnormal


def test_unlisted_conditions_are_shown_with_assumed_polarity() -> None:
    v = view(node("n1", conditions=[cond("VendorFault", "True")]))
    assert v.problems == ("VendorFault",)
    (fault,) = [c for c in v.conditions if c.type == "VendorFault"]
    assert (fault.healthy_status, fault.assumed) == ("False", True)


def test_admin_table_extends_and_overrides() -> None:
    admin = polarity.parse_text(
        'healthyWhen:\n  VendorHealthy: "True"\n  "Acme*": "False"\n  Ready: "True"\n', source="f"
    )
    table = TABLE.extended(admin)
    v = view(node("n1", conditions=[cond("VendorHealthy", "False"), cond("AcmeFanFailure", "True")]), table)
    assert v.problems == ("VendorHealthy", "AcmeFanFailure")
    assert all(not c.assumed for c in v.conditions)
    # without the admin's entry, VendorHealthy=False would look healthy (assumed NPD convention)
    assert view(node("n1", conditions=[cond("VendorHealthy", "False")])).problems == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("healthyWhen: [a]", 'f: expected a mapping "healthyWhen: {CONDITION: "True"|"False"}"'),
        ('healthyWhen:\n  X: "maybe"', 'f: healthyWhen.X is "maybe"; use "True" or "False"'),
        ("healthyWhen: {", "f: not valid YAML"),
    ],
)
def test_bad_admin_table_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        polarity.parse_text(text, source="f")
    assert str(info.value).startswith(message)


# -- one node ------------------------------------------------------------------------------------
def test_status_shows_state_cordon_and_remediation() -> None:
    v = view(node("n1", ready="False", unschedulable=True, labels={"kaip.dev/remediation": "Draining"}))
    assert v.status == "NotReady,SchedulingDisabled,Remediation:Draining"
    assert v.has_problems
    assert view(node("n2", ready=None)).state == "Unknown"
    operated = view(
        node("n3", taints=[{"key": "nodeops.k8s.preferred.jp/operating", "effect": "NoSchedule"}])
    )
    assert operated.remediation == "Operating"


def test_since_is_the_oldest_transition_among_the_problems() -> None:
    v = view(
        node(
            "n1",
            ready="False",
            conditions=[
                cond("GPUIsLost", "True", since="2026-11-21T08:00:00Z"),
                cond("DStateProcess", "False", since="2026-11-01T00:00:00Z"),
            ],
        )
    )
    # the documented rule: SINCE belongs to PROBLEMS, not to Ready (which went False first)
    assert v.since == "2026-11-21T08:00:00Z"
    assert v.problems == ("GPUIsLost",)
    # a node whose only problem is its state: since when its Ready condition changed
    assert view(node("n2", ready="False")).since == "2026-11-20T00:00:00Z"
    assert view(node("n3")).since is None


def test_stale_when_the_detector_stopped_sending_heartbeats() -> None:
    v = view(
        node(
            "n1",
            conditions=[
                cond("GPUIsLost", "False", beat="2026-11-22T11:49:00Z"),
                cond("DStateProcess", "False", beat="2026-11-22T11:51:00Z"),
            ],
        )
    )
    assert v.stale == ("GPUIsLost",)  # 11 minutes > 2 x NPD's 5-minute heartbeat


def test_unhealthy_devices_are_a_problem() -> None:
    v = view(node("n1", gpus=(8, 7)))
    assert v.problems == () and v.has_problems
    assert v.gpu() is not None and v.gpu().unavailable == 1  # type: ignore[union-attr]


# -- GPU accounting ------------------------------------------------------------------------------
def pod(
    name: str,
    node_name: str,
    *,
    containers: list[dict[str, Any]],
    init: list[dict[str, Any]] | None = None,
    phase: str = "Running",
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml", "creationTimestamp": "2026-11-22T11:00:00Z"},
        "spec": {"nodeName": node_name, "containers": containers, "initContainers": init or []},
        "status": {"phase": phase},
    }


def res(n: int, *, key: str = "requests", name: str = "nvidia.com/gpu") -> dict[str, Any]:
    return {"resources": {key: {name: str(n), "cpu": "4"}}}


def test_pod_requests_follow_the_schedulers_rules() -> None:
    assert gpu.pod_requests(pod("a", "n", containers=[res(2), res(1, key="limits")])) == {"nvidia.com/gpu": 3}
    # an init step that needs more than the app holds the larger number while it runs
    assert gpu.pod_requests(pod("b", "n", containers=[res(1)], init=[res(4)])) == {"nvidia.com/gpu": 4}
    # a sidecar (restartPolicy Always) keeps its devices next to the app's
    sidecar = {**res(1), "restartPolicy": "Always"}
    assert gpu.pod_requests(pod("c", "n", containers=[res(2)], init=[sidecar])) == {"nvidia.com/gpu": 3}
    mig = gpu.pod_requests(pod("d", "n", containers=[res(1, name="nvidia.com/mig-1g.10gb")]))
    assert mig == {"nvidia.com/mig-1g.10gb": 1}


def test_terminal_and_unbound_pods_hold_nothing() -> None:
    pods = [
        pod("done", "n1", containers=[res(8)], phase="Succeeded"),
        pod("pending", "", containers=[res(8)]),
        pod("run", "n1", containers=[res(2)]),
    ]
    assert [(h.name, h.count) for h in gpu.holders(pods)] == [("run", 2)]


def test_accounting_by_product_with_stranded_and_free() -> None:
    product = "nvidia.com/gpu.product"
    views = [
        view(node("a1", gpus=(8, 7), labels={product: "A100"})),
        view(node("a2", gpus=(8, 8), labels={product: "A100"}, unschedulable=True)),
        view(node("h1", gpus=(8, 8), ready="False", labels={product: "H100"})),
        view(node("m1", gpus=(0, 0), extra={"nvidia.com/mig-1g.10gb": (14, 14)}, labels={product: "A100"})),
        view(node("cpu", gpus=None)),
    ]
    requested = {"a1": {"nvidia.com/gpu": 3}, "m1": {"nvidia.com/mig-1g.10gb": 2}}
    rows = {(r.group, r.resource): r for r in gpu.accounting(views, group_label=product, requested=requested)}
    a100 = rows[("A100", "nvidia.com/gpu")]
    assert (a100.nodes, a100.capacity, a100.allocatable, a100.unavailable) == (2, 16, 15, 1)
    assert (a100.requested, a100.free, a100.stranded) == (3, 4, 8)  # a2 is cordoned: stranded, not free
    assert rows[("H100", "nvidia.com/gpu")].stranded == 8  # NotReady
    mig = rows[("A100", "nvidia.com/mig-1g.10gb")]
    assert (mig.capacity, mig.requested, mig.free) == (14, 2, 12)
    total = rows[("(all)", "nvidia.com/gpu")]
    assert (total.nodes, total.capacity, total.stranded) == (3, 24, 16)
    assert ("<none>", "nvidia.com/gpu") not in rows  # the CPU node has no accelerator
    no_usage = gpu.accounting(views, group_label=product)
    assert all(r.requested is None and r.free is None for r in no_usage)


# -- summary -------------------------------------------------------------------------------------
def fleet() -> list[NodeView]:
    return [
        view(node("gpu-1")),
        view(node("gpu-2", ready="False")),
        view(node("gpu-3", ready="Unknown", unschedulable=True)),
        view(
            node("gpu-4", conditions=[cond("GPUIsLost", "True", since="2026-11-22T09:00:00Z")], gpus=(8, 7))
        ),
        view(
            node(
                "gpu-5",
                conditions=[
                    cond("GPUIsLost", "True", since="2026-11-21T09:00:00Z"),
                    cond("PCIeLinkDegraded", "True"),
                ],
                taints=[{"key": "kaip.dev/remediation", "effect": "NoSchedule"}],
            )
        ),
        view(node("gpu-6", taints=[{"key": "nvidia.com/gpu", "effect": "NoExecute"}])),
        view(node("gpu-7", taints=[{"key": "dedicated", "effect": "PreferNoSchedule"}])),
    ]


def test_summary_counts_and_problem_table() -> None:
    s = summary.summarize(fleet(), group_label="nvidia.com/gpu.product")
    c = s.counts
    # kubectl's STATUS: Ready=Unknown is NotReady; NOTREADY is the sum of the Ready rows below
    assert (c.total, c.ready, c.not_ready, c.unknown, c.cordoned) == (7, 5, 2, 0, 1)
    assert (c.tainted, c.remediating, c.with_problems) == (2, 1, 4)
    table = [(p.condition, p.status, p.nodes, p.oldest_since, p.examples) for p in s.problems]
    assert table == [
        ("GPUIsLost", "True", 2, "2026-11-21T09:00:00Z", ("gpu-5", "gpu-4")),
        ("PCIeLinkDegraded", "True", 1, "2026-11-22T10:00:00Z", ("gpu-5",)),
        ("Ready", "False", 1, "2026-11-20T00:00:00Z", ("gpu-2",)),
        ("Ready", "Unknown", 1, "2026-11-20T00:00:00Z", ("gpu-3",)),
    ]
    doc = summary.document(s)
    assert doc["nodes"]["notReady"] == 2 and doc["problems"][0]["oldestSince"] == "2026-11-21T09:00:00Z"


# -- list ----------------------------------------------------------------------------------------
def names(views: list[NodeView]) -> list[str]:
    return [v.name for v in views]


def test_filters() -> None:
    views = fleet()
    assert names(listing.select(views, problems=["GPUIsLost"])) == ["gpu-4", "gpu-5"]
    assert names(listing.select(views, problems=["Ready"])) == ["gpu-2", "gpu-3"]
    assert names(listing.select(views, only_problems=True)) == ["gpu-2", "gpu-3", "gpu-4", "gpu-5"]
    # tainted nodes are shown by default
    assert "gpu-6" in names(listing.select(views))


@pytest.mark.parametrize(
    ("key", "first"),
    [
        ("name", "gpu-1"),
        ("status", "gpu-3"),
        ("problems", "gpu-5"),
        ("since", "gpu-2"),
        ("gpu-unavailable", "gpu-4"),
    ],
)
def test_sort_orders(key: str, first: str) -> None:
    assert names(listing.sort(fleet(), key))[0] == first


def test_rows_show_gpus_taints_and_wide_columns() -> None:
    n = node(
        "gpu-4",
        conditions=[cond("GPUIsLost", "True", since="2026-11-22T09:00:00Z")],
        gpus=(8, 7),
        labels={
            "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
            "nvidia.com/cuda.driver-version.full": "550.127.05",
            "kaip.dev/pool": "train-a",
        },
        taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    )
    row = listing.row(
        view(n), now=NOW, wide=True, pool_label="kaip.dev/pool", requested={"gpu-4": {"nvidia.com/gpu": 5}}
    )
    assert len(row) == len(listing.headers(wide=True, usage=True))
    assert row == [
        "gpu-4",
        "Ready",
        "GPUIsLost",
        "3h",
        "7/8",
        "5",
        "325d",
        "nvidia.com/gpu=present:NoSchedule",
        "NVIDIA-A100-SXM4-80GB",
        "550.127.05",
        "5.15.0-105-generic",
        "train-a",
        "-",
    ]
    mig = view(
        node("m1", gpus=None, extra={"nvidia.com/mig-1g.10gb": (14, 14), "nvidia.com/mig-3g.40gb": (2, 2)})
    )
    cells = listing.row(mig, now=NOW, wide=False, pool_label="kaip.dev/pool", requested=None)
    # Without --gpu-usage there is no GPU USED column; taints are in -o wide only.
    assert listing.headers(wide=False, usage=False) == ["NAME", "STATUS", "PROBLEMS", "SINCE", "GPU", "AGE"]
    assert len(cells) == 6 and cells[4] == "14/14 mig-1g.10gb,2/2 mig-3g.40gb"


def test_unknown_sort_key_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        listing.sort(fleet(), "colour")


# -- describe ------------------------------------------------------------------------------------
def test_describe_lists_conditions_pods_and_newest_events() -> None:
    v = view(
        node(
            "gpu-4",
            conditions=[cond("GPUIsLost", "True")],
            gpus=(8, 7),
            taints=[{"key": "k", "effect": "NoSchedule", "timeAdded": "2026-11-22T11:00:00Z"}],
        )
    )
    holders = gpu.holders(
        [pod("train-0", "gpu-4", containers=[res(4)]), pod("other", "gpu-9", containers=[res(1)])]
    )
    events = [
        {
            "type": "Warning",
            "reason": f"R{i}",
            "message": f"event {i}",
            "source": {"component": "npd"},
            "lastTimestamp": f"2026-11-22T10:{i:02d}:00Z",
        }
        for i in range(25)
    ]
    d = describe.describe(v, holders=holders, events=events, pool_label="kaip.dev/pool", now=NOW)
    sections = {s.title: s for s in d.sections}
    assert [r[0] for r in sections["Conditions"].rows] == ["  Ready", "! GPUIsLost"]
    assert sections["Taints"].rows == (("k:NoSchedule", "60m ago"),)
    assert sections["Accelerators"].rows == (("nvidia.com/gpu", "nvidia", "8", "7", "1", "4"),)
    assert [r[1] for r in sections["Pods holding accelerators"].rows] == ["train-0"]
    reasons = [r[2] for r in sections["Events"].rows]
    assert reasons == [f"R{i}" for i in range(5, 25)]  # the newest 20, oldest first


class _Answers:
    """A stand-in for the API client that raises one error on get: which error the cluster gives for
    each case is proven against kube-apiserver elsewhere; this pins how describe reads them."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get(self, *_args: object, **_kwargs: object) -> dict[str, object]:
        raise self.error


def test_remediation_history_is_left_out_where_the_cluster_serves_no_remediation() -> None:
    from kaip.commands.node_health_session import read_remediation_history
    from kaip.kube.errors import NotFound, api_missing
    from kaip.resources import remediation

    missing = _Answers(api_missing(remediation.REMEDIATIONS))
    assert read_remediation_history(missing, "gpu-0") is None  # type: ignore[arg-type]
    never_remediated = _Answers(NotFound("not found", status=404, details={"name": "gpu-0"}))
    assert read_remediation_history(never_remediated, "gpu-0") == []  # type: ignore[arg-type]
