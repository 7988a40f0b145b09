"""Rules read from their API objects, the operation Job pinned to its node, and the remediation views."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.remediation import jobs, matching, spec, views
from kaip.remediation.state import State
from kaip.resources import remediation as names

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


def rule_object(**spec_fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "r"}, "spec": {"conditions": [{"type": "GPUIsLost"}], **spec_fields}}


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("45", 45), (12, 12)]
)
def test_durations_in_kubernetes_syntax(text: str | int, seconds: float) -> None:
    assert spec.parse_duration(text, what="t") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["5 minutes", "m5", "1h-3m", ""])
def test_a_bad_duration_names_the_field(text: str) -> None:
    with pytest.raises(spec.SpecInvalid, match=r"drain\.timeout"):
        spec.parse_duration(text, what="RemediationRule r: drain.timeout")


def test_defaults_are_filled_and_a_job_operation_needs_containers() -> None:
    rule = spec.parse_rule(rule_object())
    assert rule.conditions[0].status == "True"
    assert rule.drain and not rule.continue_after_drain_timeout
    assert rule.drain_timeout == timedelta(minutes=10)
    with pytest.raises(spec.SpecInvalid, match=r"operations\[0\].*containers"):
        spec.parse_rule(rule_object(operations=[{"name": "fix", "type": "Job"}]))
    with pytest.raises(spec.SpecInvalid, match="conditions is empty"):
        spec.parse_rule({"metadata": {"name": "r"}, "spec": {"conditions": []}})


def test_the_example_manifests_are_rules_the_controller_accepts() -> None:
    docs = list(yaml.safe_load_all((ROOT / "manifests/remediation/examples/gpu-reboot.yaml").read_text()))
    rules = [spec.parse_rule(d) for d in docs if d["kind"] == "RemediationRule"]
    budgets = [spec.parse_budget(d) for d in docs if d["kind"] == "NodeDisruptionBudget"]
    cfg = spec.parse_config(next(d for d in docs if d["kind"] == "RemediationConfig"))
    assert rules and budgets and cfg.dry_run, "the example starts in dry-run"


def test_rules_match_by_selector_and_condition_held_for_its_duration() -> None:
    rule = spec.parse_rule(
        rule_object(
            conditions=[{"type": "GPUIsLost", "duration": "5m"}],
            nodeSelector={"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a100"]}]},
        )
    )
    since = (NOW - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    node = matching.NodeFacts("n", labels={"pool": "a100"}, conditions={"GPUIsLost": ("True", since)})
    young = matching.match([rule], node, now=NOW)
    assert young is not None and not young.held
    old = matching.match([rule], node, now=NOW + timedelta(minutes=3))
    assert old is not None and old.held and old.condition == "GPUIsLost=True"
    other_pool = matching.NodeFacts("n", labels={"pool": "h100"}, conditions=node.conditions)
    assert matching.match([rule], other_pool, now=NOW) is None
    assert matching.unknown_problems([rule], other_pool, watched=["GPUIsLost"]) == [("GPUIsLost", since)]
    assert matching.unknown_problems([rule], node, watched=["GPUIsLost"]) == []


def test_the_job_is_pinned_to_its_node_and_tolerates_the_cordon_and_our_taint() -> None:
    rule = spec.parse_rule(
        rule_object(
            operations=[
                {
                    "name": "reboot",
                    "type": "Reboot",
                    "timeout": "20m",
                    "template": {"spec": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}},
                },
            ]
        )
    )
    job = jobs.build(name="j", namespace="kaip-remediation", node="gpu-17", rule=rule, index=0)
    pod = job["spec"]["template"]["spec"]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-17"]}]}]
    keys = [t["key"] for t in pod["tolerations"]]
    assert keys == ["kaip.dev/remediation", "node.kubernetes.io/unschedulable", "nvidia.com/gpu"]
    assert pod["hostPID"] and pod["containers"][0]["securityContext"] == {"privileged": True}
    assert pod["containers"][0]["command"][-3:] == ["systemctl", "reboot", "--no-block"]
    assert {"name": "NODE_NAME", "value": "gpu-17"} in pod["containers"][0]["env"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 1200
    assert job["metadata"]["labels"][names.LABEL_NODE] == "gpu-17"


def test_job_state_from_its_conditions() -> None:
    assert jobs.state(None) == "Missing"
    assert jobs.state({"status": {}}) == "Running"
    assert jobs.state({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) == "Succeeded"
    assert jobs.state({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}) == "Failed"


def test_long_node_names_give_valid_label_values() -> None:
    long = "gpu-" + "x" * 80
    value = jobs.label_value(long)
    assert len(value) <= 63 and value != jobs.label_value(long + "y")


def test_the_views_show_phase_step_and_history() -> None:
    status = State(
        phase=names.OPERATING,
        rule="gpu-page",
        condition="GPUPendingPage=True",
        phase_since="2026-11-22T07:58:00Z",
        job="kaip-remediate-n-1",
        operation=1,
        attempt=0,
        message="running operation reboot",
        history=({"time": "2026-11-22T07:55:00Z", "phase": "Pending", "message": "rule matched"},),
    ).to_status()
    obj = {"metadata": {"name": "n"}, "spec": {"nodeName": "n", "manual": True}, "status": status}
    assert views.rows([obj], now=NOW, wide=False) == [
        ["n", "gpu-page", "Operating", "GPUPendingPage=True", "2", "0", "2m", "running operation reboot"]
    ]
    assert views.rows([obj], now=NOW, wide=True)[0][-3:] == ["kaip-remediate-n-1", "-", "manual"]
    assert views.history(obj) == [["2026-11-22T07:55:00Z", "Pending", "rule matched"]]
