"""manifests/monitoring: a PrometheusRule alert for every kaip node condition, monitors that select what
the other manifests run, and a receiver Deployment that starts ``kaip-alerts``. Shapes are those of
the Prometheus Operator's monitoring.coreos.com/v1 CRDs; the expressions themselves are loaded into a
real Prometheus by tests/integration/remediation/test_alert_route.py (and by promtool here, when
installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import tomllib
import yaml

from kaip.resources import nodes
from kaip_testbed import needs
from kaip_testbed.monitoring import rules_from_manifest

ROOT = Path(__file__).resolve().parents[3]
MON = ROOT / "manifests" / "monitoring"
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kaip_conditions() -> set[str]:
    """The seed's conditions and every condition a kaip node-problem-detector config sets."""
    found = set(nodes.SEED_CONDITIONS) | set(nodes.NODE_CHECK_CONDITIONS)
    for path in (ROOT / "manifests" / "node-problem-detector" / "config").glob("*.json"):
        for cond in json.loads(path.read_text()).get("conditions") or []:
            found.add(cond["type"])
    return found


def test_every_kaip_condition_has_an_alert_on_kube_state_metrics_series() -> None:
    (rule,) = docs(MON / "prometheusrule.yaml")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    for condition in sorted(kaip_conditions()):
        assert condition in alerts, f"no alert for {condition}"
        r = alerts[condition]
        assert f'condition="{condition}"' in r["expr"] and 'status="true"' in r["expr"]
        assert r["labels"]["kaip_condition"] == condition and r["labels"]["severity"] in (
            "warning",
            "critical",
        )
        assert "$labels.node" in r["annotations"]["summary"]
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules", "partial_response_strategy", "limit"}
        for r in group["rules"]:
            assert set(r) <= {"alert", "record", "expr", "for", "labels", "annotations", "keep_firing_for"}
            assert ("alert" in r) != ("record" in r) and isinstance(r["expr"], str)
            assert "for" not in r or DURATION.match(r["for"])
            assert all(isinstance(v, str) for v in (r.get("labels") or {}).values())


def test_the_alert_rules_pass_promtool_when_it_is_installed(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        needs.missing("promtool (Debian's prometheus package) is not installed")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules_from_manifest(MON / "prometheusrule.yaml")))
    done = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "rules.yml")], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_monitors_select_what_the_manifests_run() -> None:
    npd = docs(ROOT / "manifests" / "node-problem-detector" / "daemonset.yaml")[0]
    remediator = docs(ROOT / "manifests" / "remediation" / "deployment.yaml")[0]
    monitors = {(d["kind"], d["metadata"]["name"]): d for d in docs(MON / "podmonitor.yaml")}
    receiver = {(d["kind"], d["metadata"]["name"]): d for d in docs(MON / "receiver.yaml")}

    pm = monitors[("PodMonitor", "kaip-node-problem-detector")]
    assert pm["apiVersion"] == "monitoring.coreos.com/v1" and pm["metadata"]["namespace"] == "kube-system"
    labels = npd["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p["name"] for c in npd["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
    assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} <= ports

    service = monitors[("Service", "kaip-remediator-metrics")]
    template = remediator["spec"]["template"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports") or []}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    for name, svc in (("kaip-remediator", service), ("kaip-alerts", receiver[("Service", "kaip-alerts")])):
        sm = monitors[("ServiceMonitor", name)]
        assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert {e["port"] for e in sm["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}


def test_the_alert_receiver_deployment_runs_the_shipped_program_with_its_rota() -> None:
    receiver = {(d["kind"], d["metadata"]["name"]): d for d in docs(MON / "receiver.yaml")}
    pod = receiver[("Deployment", "kaip-alerts")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert (
        container["command"] == ["kaip-alerts"]
        and scripts["kaip-alerts"] == "kaip_incluster.entrypoints:alerts"
    )
    from kaip_incluster.alerts.main import parse_args

    args = parse_args(container["args"])
    assert str(args.rota_dir) in {v["mountPath"] for v in container["volumeMounts"]}
    assert receiver[("ConfigMap", "kaip-alerts-rota")]["data"].keys() >= {"rota", "start", "period-days"}
    example = yaml.safe_load((MON / "examples" / "alertmanager.yaml").read_text())
    (hook,) = next(r for r in example["receivers"] if r["name"] == "kaip-alerts")["webhook_configs"]
    assert hook["url"].endswith(":8080/alerts") and hook["send_resolved"] is True
