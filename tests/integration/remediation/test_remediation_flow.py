"""One node remediated for real: on the API server with kube-controller-manager, kube-scheduler and
kwok. The controller cordons (kubectl shows SchedulingDisabled), evicts Pods through the Eviction API
(a PodDisruptionBudget that allows nothing holds the drain until it is relaxed), runs the reboot Job
on that very node, and hands the node back when the condition clears."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from remediation_testlib import (
    ThreadController,
    budget,
    config,
    create_nodes,
    delete_nodes,
    get_or_none,
    gpu_rule,
    set_condition,
)

from kaip.commands import node_health
from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import kinds
from kaip.resources import nodes as node_names
from kaip.resources import remediation as names
from kaip.resources.kinds import Resource
from kaip_incluster.remediation.loop import Settings
from kaip_testbed import binaries, gpu_nodes
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.waiting import wait_for

pytestmark = pytest.mark.integration

PDBS = Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget")


def pod_on(node: str, name: str, app: str) -> dict[str, Any]:
    pod = gpu_nodes.gpu_pod(name, node=node, gpus=1)
    pod["metadata"]["labels"] = {"app": app}
    return pod


def phase(kube: Kube, node: str) -> str:
    obj = get_or_none(kube, names.REMEDIATIONS, node)
    return str(((obj or {}).get("status") or {}).get("phase") or "")


def node_events(kube: Kube, node: str, reason: str) -> list[dict[str, Any]]:
    events = kube.list(kinds.EVENTS, namespace="default", field_selector=f"involvedObject.name={node}")[
        "items"
    ]
    return [e for e in events if e.get("reason") == reason]


def test_a_node_is_cordoned_drained_respecting_pdbs_rebooted_on_itself_and_handed_back(
    kwok: ControlPlane, remediation: Kube, kube: Kube
) -> None:
    pool = f"flow-{uuid.uuid4().hex[:6]}"
    nodes = create_nodes(remediation, pool, 2, pool=pool)
    sick, healthy = nodes
    try:
        kube.create(kinds.PODS, pod_on(sick, "free", "free"))
        kube.create(kinds.PODS, pod_on(sick, "guarded", "guarded"))
        kube.create(kinds.PODS, pod_on(healthy, "bystander", "free"))
        kube.create(
            PDBS,
            {
                "metadata": {"name": "guarded"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
            },
        )
        wait_for(
            lambda: all(
                p.get("status", {}).get("phase") == "Running" for p in kube.list(kinds.PODS)["items"]
            ),
            what="Pods running on kwok",
        )
        remediation.create(names.RULES, gpu_rule("gpu-reboot", pool=pool))
        remediation.create(names.BUDGETS, budget("flow", pool=pool, max_unavailable=1))
        # One of two nodes is half the pool: the default breaker (50%) would stop everything.
        remediation.create(names.CONFIGS, config({"circuitBreaker": {"threshold": "100%", "window": "5m"}}))
        set_condition(
            remediation, sick, "GPUPendingPage", "True", message="GPU 3 has 2 pages pending retirement"
        )

        with ThreadController(remediation, Settings(namespace=kube.namespace, identity="flow-test")) as ctl:
            wait_for(lambda: phase(remediation, sick) == names.DRAINING, what="draining")
            node = remediation.get(kinds.NODES, sick)
            assert node["spec"]["unschedulable"] is True
            assert node_names.TAINT_REMEDIATION in [t["key"] for t in node["spec"]["taints"]]
            assert node["metadata"]["labels"][node_names.LABEL_REMEDIATION] in ("Draining", "Operating")
            shown = subprocess.run(
                [binaries.path_of("kubectl"), f"--kubeconfig={kwok.kubeconfig}", "get", "node", sick],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert "SchedulingDisabled" in shown
            listed = CliRunner().invoke(
                node_health.cli,
                ["list", "-l", f"kubernetes.io/hostname={sick}", f"--kubeconfig={kwok.kubeconfig}"],
            )
            assert "Remediation:" in listed.output, listed.output

            # The unguarded Pod goes; the guarded one stays: its PDB allows no disruption.
            wait_for(lambda: get_or_none(kube, kinds.PODS, "free") is None, what="free Pod evicted")
            wait_for(
                lambda: node_events(remediation, sick, names.REASON_EVICTION_BLOCKED),
                what="EvictionBlocked Event",
            )
            assert get_or_none(kube, kinds.PODS, "guarded") is not None
            assert phase(remediation, sick) == names.DRAINING
            nr = remediation.get(names.REMEDIATIONS, sick)
            assert "PodDisruptionBudget" in nr["status"]["message"]
            assert not kube.list(kinds.JOBS)["items"], "no operation before the drain is done"

            kube.delete(PDBS, "guarded")
            wait_for(lambda: get_or_none(kube, kinds.PODS, "guarded") is None, what="guarded Pod evicted")
            wait_for(lambda: phase(remediation, sick) in (names.OPERATING, names.VERIFYING), what="operating")
            job_name = remediation.get(names.REMEDIATIONS, sick)["status"]["job"]
            wait_for(
                lambda: kube.list(kinds.PODS, label_selector=f"job-name={job_name}")["items"],
                what="reboot Pod",
            )
            reboot_pod = kube.list(kinds.PODS, label_selector=f"job-name={job_name}")["items"][0]
            wait_for(
                lambda: kube.get(kinds.PODS, reboot_pod["metadata"]["name"])["spec"].get("nodeName"),
                what="scheduled",
            )
            assert kube.get(kinds.PODS, reboot_pod["metadata"]["name"])["spec"]["nodeName"] == sick
            wait_for(lambda: phase(remediation, sick) == names.VERIFYING, timeout=90, what="reboot Job done")
            assert remediation.get(kinds.NODES, sick)["spec"].get("unschedulable") is True, (
                "cordoned until it clears"
            )

            # The node comes back healthy (node-problem-detector clears the condition).
            set_condition(remediation, sick, "GPUPendingPage", "False")
            wait_for(lambda: phase(remediation, sick) == names.SUCCEEDED, what="handed back")
            assert not ctl.errors
        node = remediation.get(kinds.NODES, sick)
        assert not node["spec"].get("unschedulable")
        assert node_names.TAINT_REMEDIATION not in [t["key"] for t in node["spec"].get("taints") or []]
        assert node_names.LABEL_REMEDIATION not in node["metadata"].get("labels", {})
        assert not (remediation.get(names.CONFIGS, names.CONFIG_NAME).get("status") or {}).get("holders")
        history = remediation.get(names.REMEDIATIONS, sick)["status"]["history"]
        assert history[0]["phase"] == names.PENDING
        assert {"Draining", "Operating", "Verifying", "Succeeded"} <= {h["phase"] for h in history}
        assert node_events(remediation, sick, names.REASON_SUCCEEDED)
        assert get_or_none(kube, kinds.PODS, "bystander") is not None, "the healthy node was left alone"
        with pytest.raises(NotFound):
            remediation.get(names.REMEDIATIONS, healthy)
    finally:
        delete_nodes(remediation, nodes)
