"""`kubectl node-health` remediate / pause / resume / reset-breaker / remediation against the real API
server, with the controller running: the commands are added to a click group here, as the
node-health plugin adds them."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import click
import pytest
from remediation_testlib import ThreadController, config, get_or_none, gpu_rule, set_condition

from kaip.cli.app import run
from kaip.commands.node_health import cli as node_health_plugin
from kaip.commands.node_health_remediate import COMMANDS
from kaip.errors import ExitCode
from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources import remediation as names
from kaip_incluster.remediation.loop import Settings
from kaip_testbed.waiting import wait_for

pytestmark = pytest.mark.integration

GROUP = click.Group("node-health", commands={c.name: c for c in COMMANDS if c.name})


def node_health(
    args: list[str], kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = run(GROUP, [*args, f"--kubeconfig={kubeconfig}"], prog_name="kubectl node-health")
    out = capsys.readouterr()
    return code, out.out, out.err


def test_remediate_by_hand_in_dry_run_then_for_real_with_pause_and_resume(
    remediation: Kube, kube: Kube, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = f"cli-{uuid.uuid4().hex[:6]}"
    node = f"{pool}-0"
    remediation.create(kinds.NODES, {"metadata": {"name": node, "labels": {"kaip.dev/pool": pool}}})
    try:
        remediation.create(names.RULES, gpu_rule("by-hand", pool=pool, drain={"skip": True}, operations=[]))
        remediation.create(names.CONFIGS, config({"circuitBreaker": {"threshold": 10}}))

        code, _, err = node_health(["remediate", node, "--rule", "nope"], kubeconfig, capsys)
        assert code == ExitCode.NOT_FOUND
        assert 'RemediationRule "nope" not found' in err

        with ThreadController(remediation, Settings(namespace=kube.namespace, identity="cli-test")):
            code, out, _ = node_health(
                ["remediate", node, "--rule", "by-hand", "--dry-run"], kubeconfig, capsys
            )
            assert code == 0 and "(dry-run)" in out
            wait_for(
                lambda: (
                    (get_or_none(remediation, names.REMEDIATIONS, node) or {}).get("status", {}).get("phase")
                    == names.DRY_RUN
                ),
                what="dry-run",
            )
            assert not remediation.get(kinds.NODES, node)["spec"].get("unschedulable"), (
                "dry-run touches nothing"
            )
            code, out, _ = node_health(["remediation", node], kubeconfig, capsys)
            assert "DryRun" in out and "would take a disruption budget slot and cordon" in out

            code, out, _ = node_health(["pause", "--reason", "rack maintenance"], kubeconfig, capsys)
            assert code == 0 and "paused" in out
            code, out, _ = node_health(["remediate", node, "--rule", "by-hand"], kubeconfig, capsys)
            assert code == 0
            wait_for(
                lambda: (
                    "paused" in remediation.get(names.REMEDIATIONS, node).get("status", {}).get("message", "")
                ),
                what="held by the pause",
            )
            assert not remediation.get(kinds.NODES, node)["spec"].get("unschedulable")
            code, out, err = node_health(["remediation"], kubeconfig, capsys)
            assert "paused: rack maintenance" in err
            assert node in out and "Pending" in out

            code, _, err = node_health(["remediate", node, "--rule", "by-hand"], kubeconfig, capsys)
            assert code == ExitCode.FAILURE and "already being remediated (phase Pending)" in err

            code, out, _ = node_health(["resume"], kubeconfig, capsys)
            assert code == 0 and "resumed" in out
            # No condition to wait for: cordoned, then handed back as soon as it is verified clear.
            wait_for(
                lambda: (
                    remediation.get(names.REMEDIATIONS, node).get("status", {}).get("phase")
                    == names.SUCCEEDED
                ),
                what="done",
            )
            time.sleep(1.5)  # more rounds: a request runs once, not again after it ended
            status = remediation.get(names.REMEDIATIONS, node)["status"]
            assert status["phase"] == names.SUCCEEDED
            assert [h["phase"] for h in status["history"]].count(names.SUCCEEDED) == 1
        assert not remediation.get(kinds.NODES, node)["spec"].get("unschedulable")
        code, out, _ = node_health(["remediation", "-o", "wide"], kubeconfig, capsys)
        assert "manual" in out and "Succeeded" in out
        # `describe` of the whole plugin shows the same history, before the node's Events.
        code = run(node_health_plugin, ["describe", node, f"--kubeconfig={kubeconfig}"], prog_name="x")
        out = capsys.readouterr().out
        assert code == 0
        history = out.split("Remediation history:", 1)[1].split("Events:", 1)[0]
        assert "DryRun" in history and "Succeeded" in history
        code = run(node_health_plugin, ["describe", node, "-o", "json", f"--kubeconfig={kubeconfig}"])
        phases = [h["phase"] for h in json.loads(capsys.readouterr().out)["remediationHistory"]]
        assert phases[0] == names.DRY_RUN and phases[-1] == names.SUCCEEDED
    finally:
        remediation.delete(kinds.NODES, node, ignore_missing=True)


def test_pause_one_rule_and_reset_a_tripped_breaker(
    remediation: Kube, kube: Kube, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = f"brk-{uuid.uuid4().hex[:6]}"
    nodes = [f"{pool}-{i}" for i in range(2)]
    for name in nodes:
        remediation.create(kinds.NODES, {"metadata": {"name": name, "labels": {"kaip.dev/pool": pool}}})
    try:
        remediation.create(names.RULES, gpu_rule("pool-rule", pool=pool, drain={"skip": True}, operations=[]))
        code, out, _ = node_health(["pause", "--rule", "pool-rule"], kubeconfig, capsys)
        assert code == 0
        assert remediation.get(names.RULES, "pool-rule")["spec"]["paused"] is True
        code, out, _ = node_health(["resume", "--rule", "pool-rule"], kubeconfig, capsys)
        assert remediation.get(names.RULES, "pool-rule")["spec"]["paused"] is False

        # Half of a two-node pool fails: the default breaker (50%) trips and nothing is cordoned.
        with ThreadController(remediation, Settings(namespace=kube.namespace, identity="brk-test")):
            set_condition(remediation, nodes[0], "GPUPendingPage", "True")
            wait_for(
                lambda: (
                    (get_or_none(remediation, names.CONFIGS, names.CONFIG_NAME) or {})
                    .get("status", {})
                    .get("circuitBreaker", {})
                    .get("state")
                    == names.BREAKER_TRIPPED
                ),
                what="tripped",
            )
            code, out, err = node_health(["remediation"], kubeconfig, capsys)
            assert "circuit breaker: Tripped" in err
            assert not remediation.get(kinds.NODES, nodes[0])["spec"].get("unschedulable")

            code, out, _ = node_health(["reset-breaker"], kubeconfig, capsys)
            assert code == 0 and "was tripped" in out
            # Failures from before the reset no longer count: the waiting node is remediated.
            wait_for(
                lambda: (
                    remediation.get(names.REMEDIATIONS, nodes[0]).get("status", {}).get("phase")
                    in (names.VERIFYING, names.FAILED)
                ),
                what="went ahead after the reset",
            )
        state = remediation.get(names.CONFIGS, names.CONFIG_NAME)["status"]["circuitBreaker"]
        assert state["state"] == names.BREAKER_CLOSED and state["resetBy"]
    finally:
        for name in nodes:
            remediation.delete(kinds.NODES, name, ignore_missing=True)
