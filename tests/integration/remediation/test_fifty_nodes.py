"""The issue's proof on the real API server with kube-controller-manager, kube-scheduler and 50 kwok
nodes, the controller running as two leader-elected processes:

* GPUPendingPage on 10 of 50 nodes under a budget of 2 is remediated two at a time (a watch on the
  Nodes sees every cordon), each reboot Job runs on its own node, and every node comes back when
  the condition clears (a stand-in for node-problem-detector clears it once the reboot Job is done);
* the leader is killed with SIGKILL in the middle, and none of this changes;
* the circuit breaker trips when the condition hits half the pool, and nothing new starts after it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from remediation_testlib import (
    CordonWatch,
    NodeProblemDetectorStandIn,
    ProcessController,
    budget,
    config,
    create_nodes,
    delete_nodes,
    gpu_rule,
    set_condition,
)

from kaip.commands.node_health_remediate import COMMANDS
from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources import nodes as node_names
from kaip.resources import remediation as names
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.waiting import wait_for

pytestmark = pytest.mark.integration


def phases(kube: Kube) -> dict[str, str]:
    return {
        o["metadata"]["name"]: (o.get("status") or {}).get("phase", "")
        for o in kube.list_all(names.REMEDIATIONS)
    }


def leader(kube: Kube, namespace: str) -> str:
    lease = kube.get(kinds.LEASES, "kaip-remediator", namespace=namespace)
    return str(lease["spec"].get("holderIdentity") or "")


def node_health(args: list[str], kubeconfig: Path) -> str:
    group = click.Group("node-health", commands={c.name: c for c in COMMANDS if c.name})
    result = CliRunner().invoke(group, [*args, f"--kubeconfig={kubeconfig}"])
    assert result.exit_code == 0, result.output
    return result.output


def test_ten_of_fifty_two_at_a_time_through_a_sigkill_and_the_breaker_at_half_the_pool(
    kwok: ControlPlane, remediation: Kube, kube: Kube, tmp_path: Path
) -> None:
    pool = f"fifty-{uuid.uuid4().hex[:6]}"
    nodes = create_nodes(remediation, pool, 50, pool=pool)
    controllers: list[ProcessController] = []
    npd: NodeProblemDetectorStandIn | None = None
    watch: CordonWatch | None = None
    try:
        sick = nodes[:10]
        for node in sick:
            pod = {
                "metadata": {"name": f"trainer-{node[-2:]}"},
                "spec": {
                    "nodeName": node,
                    "tolerations": [
                        {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "containers": [{"name": "train", "image": "trainer"}],
                },
            }
            kube.create(kinds.PODS, pod)
        remediation.create(names.RULES, gpu_rule("gpu-reboot", pool=pool))
        remediation.create(names.BUDGETS, budget("two-at-a-time", pool=pool, max_unavailable=2))
        remediation.create(names.CONFIGS, config({"circuitBreaker": {"threshold": "50%", "window": "10m"}}))
        watch = CordonWatch(remediation, f"kaip.dev/pool={pool}")
        npd = NodeProblemDetectorStandIn(remediation, kube.namespace)
        for name in ("a", "b"):
            controllers.append(
                ProcessController(
                    kwok, namespace=kube.namespace, identity=f"remediator-{name}", log_dir=tmp_path
                )
            )

        for node in sick:
            set_condition(remediation, node, "GPUPendingPage", "True", message="2 pages pending retirement")

        # Kill the leader while a node is half-way (cordoned, not yet handed back) and some are still to come.
        def halfway() -> bool:
            now = phases(remediation)
            done = sum(p == names.SUCCEEDED for p in now.values())
            busy = sum(p in (names.DRAINING, names.OPERATING, names.VERIFYING) for p in now.values())
            return done >= 2 and busy >= 1

        wait_for(halfway, timeout=120, what="two nodes done and one half-way")
        victim_id = leader(remediation, kube.namespace)
        victim = next(c for c in controllers if c.identity == victim_id)
        victim.kill()
        busy_at_kill = {
            n
            for n, p in phases(remediation).items()
            if p in (names.DRAINING, names.OPERATING, names.VERIFYING)
        }
        assert busy_at_kill, "the kill happened in the middle of a remediation"
        wait_for(
            lambda: leader(remediation, kube.namespace) not in ("", victim_id),
            timeout=30,
            what="a new leader",
        )

        wait_for(
            lambda: (
                all(p == names.SUCCEEDED for n, p in phases(remediation).items() if n in sick)
                and len(phases(remediation)) == 10
            ),
            timeout=240,
            what="all ten remediated",
        )
        time.sleep(1)  # let the last uncordon reach the watch
        assert watch.max_at_once == 2, (
            f"at most two at a time, and two did run together (saw {watch.max_at_once})"
        )
        assert watch.ever == set(sick), "only the sick nodes were ever cordoned"
        for name in nodes:
            node = remediation.get(kinds.NODES, name)
            assert not node["spec"].get("unschedulable"), name
            assert node_names.LABEL_REMEDIATION not in node["metadata"].get("labels", {}), name
        jobs = kube.list(kinds.JOBS)["items"]
        by_node: dict[str, list[str]] = {}
        for job in jobs:
            by_node.setdefault(job["metadata"]["annotations"][f"{names.GROUP}/node"], []).append(
                job["metadata"]["name"]
            )
        assert sorted(by_node) == sorted(sick)
        assert all(len(v) == 1 for v in by_node.values()), (
            f"one reboot per node, even across the kill: {by_node}"
        )
        for pod in kube.list(kinds.PODS, label_selector=f"{names.LABEL_COMPONENT}={names.COMPONENT_JOB}")[
            "items"
        ]:
            assert pod["spec"]["nodeName"] == pod["metadata"]["annotations"][f"{names.GROUP}/node"]
        trainers = [p for p in kube.list(kinds.PODS)["items"] if p["metadata"]["name"].startswith("trainer-")]
        assert trainers == [], "every workload Pod on a sick node was evicted"

        # -- the circuit breaker: the condition on half the pool ---------------------------------------
        assert "was already closed" in node_health(["reset-breaker"], kwok.kubeconfig)
        npd.enabled = False  # reboots "do not help" now; the nodes stay sick
        cordoned_before = set(watch.cordoned)
        for node in nodes[10:35]:
            set_condition(remediation, node, "GPUPendingPage", "True", message="rack power event")
        wait_for(
            lambda: (
                (remediation.get(names.CONFIGS, names.CONFIG_NAME).get("status") or {})
                .get("circuitBreaker", {})
                .get("state")
                == names.BREAKER_TRIPPED
            ),
            timeout=60,
            what="breaker tripped",
        )
        tripped = remediation.get(names.CONFIGS, names.CONFIG_NAME)["status"]["circuitBreaker"]
        assert "25 of 50 nodes" in tripped["reason"]
        tripped_at = time.time()
        time.sleep(3)  # ten controller rounds
        with watch.lock:
            late = [n for n, t in watch.cordon_times.items() if t > tripped_at and n not in cordoned_before]
            assert watch.max_at_once == 2
        assert late == [], f"nothing new was cordoned after the breaker tripped: {late}"
        now = phases(remediation)
        assert sum(p == names.PENDING for p in now.values()) >= 23, "the rest wait"
        listing = node_health(["remediation", "-o", "wide"], kwok.kubeconfig)
        assert "held: the circuit breaker is tripped" in listing

        # Conditions clear: every node returns, the waiting ones without ever being touched.
        for node in nodes[10:35]:
            set_condition(remediation, node, "GPUPendingPage", "False")
        wait_for(
            lambda: (
                not any(remediation.get(kinds.NODES, n)["spec"].get("unschedulable") for n in nodes[10:35])
            ),
            timeout=120,
            what="all nodes back",
        )
        assert len(watch.ever - set(sick)) <= 2
    finally:
        if npd is not None:
            npd.stop.set()
        if watch is not None:
            watch.stop.set()
        for ctl in controllers:
            ctl.stop()
        delete_nodes(remediation, nodes)
