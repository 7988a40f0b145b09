"""The budget holds even when two controllers act at once (say, a leader that has not yet noticed it
lost its Lease, and the new one): admissions are compare-and-swapped on the RemediationConfig, so of
two writers deciding from the same state only one takes the last slot."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from remediation_testlib import (
    CordonWatch,
    ThreadController,
    budget,
    config,
    get_or_none,
    gpu_rule,
    set_condition,
)

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources import remediation as names
from kaip_incluster.remediation.loop import Settings
from kaip_testbed.waiting import wait_for

pytestmark = pytest.mark.integration


def test_two_controllers_acting_at_once_never_exceed_the_budget(remediation: Kube, kube: Kube) -> None:
    pool = f"race-{uuid.uuid4().hex[:6]}"
    nodes = [f"{pool}-{i}" for i in range(8)]
    for name in nodes:
        remediation.create(kinds.NODES, {"metadata": {"name": name, "labels": {"kaip.dev/pool": pool}}})
    stop = threading.Event()
    try:
        # Cordon only and hand over to people: each node holds its slot until it is "repaired".
        remediation.create(names.RULES, gpu_rule("race", pool=pool, drain={"skip": True}, operations=[]))
        remediation.create(names.BUDGETS, budget("race", pool=pool, max_unavailable=2))
        remediation.create(names.CONFIGS, config({"circuitBreaker": {"threshold": 9}}))
        watch = CordonWatch(remediation, f"kaip.dev/pool={pool}")
        holders_seen: list[int] = []

        def repair() -> None:
            """Clears the condition of a node a little after it was cordoned; samples the slots."""
            while not stop.is_set():
                status = remediation.get(names.CONFIGS, names.CONFIG_NAME).get("status") or {}
                holders_seen.append(len(status.get("holders") or []))
                with watch.lock:
                    due = [n for n in watch.cordoned if time.time() - watch.cordon_times[n] > 0.8]
                for name in due:
                    set_condition(remediation, name, "GPUPendingPage", "False")
                stop.wait(0.1)

        threading.Thread(target=repair, daemon=True).start()
        for name in nodes:
            set_condition(remediation, name, "GPUPendingPage", "True")
        settings = Settings(namespace=kube.namespace)
        with (
            ThreadController(remediation, settings, interval=0.05) as one,
            ThreadController(remediation, settings, interval=0.05) as two,
        ):
            wait_for(
                lambda: (
                    all(
                        (o.get("status") or {}).get("phase") in (names.SUCCEEDED, names.RESOLVED)
                        for o in remediation.list_all(names.REMEDIATIONS)
                    )
                    and len(remediation.list_all(names.REMEDIATIONS)) == len(nodes)
                ),
                timeout=120,
                what="all eight repaired",
            )
        time.sleep(0.5)
        assert watch.ever == set(nodes)
        assert watch.max_at_once == 2, f"never more than the budget (saw {watch.max_at_once})"
        assert max(holders_seen) <= 2
        assert one.errors + two.errors == []
    finally:
        stop.set()
        for name in nodes:
            remediation.delete(kinds.NODES, name, ignore_missing=True)


def test_a_slot_whose_node_is_gone_is_given_back(remediation: Kube, kube: Kube) -> None:
    pool = f"gone-{uuid.uuid4().hex[:6]}"
    nodes = [f"{pool}-{i}" for i in range(2)]
    for name in nodes:
        remediation.create(kinds.NODES, {"metadata": {"name": name, "labels": {"kaip.dev/pool": pool}}})
    try:
        remediation.create(names.RULES, gpu_rule("gone", pool=pool, drain={"skip": True}, operations=[]))
        remediation.create(names.BUDGETS, budget("gone", pool=pool, max_unavailable=1))
        remediation.create(names.CONFIGS, config({"circuitBreaker": {"threshold": 3}}))

        def phase(node: str) -> str:
            found = remediation.list_all(names.REMEDIATIONS)
            return next(
                (o.get("status", {}).get("phase", "") for o in found if o["metadata"]["name"] == node), ""
            )

        with ThreadController(remediation, Settings(namespace=kube.namespace)):
            set_condition(remediation, nodes[0], "GPUPendingPage", "True")
            wait_for(lambda: phase(nodes[0]) == names.FAILED, what="first failed, holding the only slot")
            set_condition(remediation, nodes[1], "GPUPendingPage", "True")
            wait_for(
                lambda: (
                    "waiting: NodeDisruptionBudget gone"
                    in str((get_or_none(remediation, names.REMEDIATIONS, nodes[1]) or {}).get("status"))
                ),
                what="second waits",
            )
            # The failed machine is taken out of the cluster for repair.
            remediation.delete(kinds.NODES, nodes[0])
            wait_for(lambda: phase(nodes[1]) == names.FAILED, what="second got the slot")
        holders = remediation.get(names.CONFIGS, names.CONFIG_NAME)["status"]["holders"]
        assert [h["node"] for h in holders] == [nodes[1]]
    finally:
        for name in nodes:
            remediation.delete(kinds.NODES, name, ignore_missing=True)
