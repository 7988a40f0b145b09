"""The seed's alert route with real servers: a test-bed Node's condition → Prometheus (Debian's
package, the PrometheusRule of manifests/monitoring loaded as its rules file) → Alertmanager (Debian's
package) → kaip-alerts (the receiver, run as its own process) → one GitHub issue per alert group:
opened, commented on a change, closed on resolve, reopened on refire, assigned by the rota.

GitHub is the one stand-in (``kaip_testbed.github_standin``, which checks every request against the
REST API's published shapes). Prometheus scrapes ``kube_node_status_condition`` from the real
kube-state-metrics watching the test bed's API server (hack/testbin.sh builds it), or, where that build
is missing, from ``kaip_testbed.monitoring.NodeConditionExporter``, the same series computed from the
test bed's Nodes (a stand-in for kube-state-metrics in shape only); only the test's node is kept. The alerts'
``for`` is set to 0s and the example route's intervals to 1s; everything else is the manifests'.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remediation_testlib import set_condition

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed import controlplane, monitoring, needs
from kaip_testbed.github_standin import GitHubState, serve
from kaip_testbed.processes import Server, free_port
from kaip_testbed.waiting import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "manifests" / "monitoring" / "prometheusrule.yaml"
EXAMPLE_ROUTE = ROOT / "manifests" / "monitoring" / "examples" / "alertmanager.yaml"
TOKEN = "ghp_" + "alerts" * 6


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def route(
    admin_kube: Kube, control_plane: controlplane.ControlPlane, tmp_path: Path
) -> Iterator[tuple[GitHubState, str, str]]:
    prometheus, alertmanager = monitoring.prometheus_binary(), monitoring.alertmanager_binary()
    if not prometheus or not alertmanager:
        needs.missing(
            "Prometheus/Alertmanager are not installed (hack/testbin.sh installs Debian's packages as root)"
        )
    pool = f"alerts-{uuid.uuid4().hex[:6]}"
    node = f"{pool}-gpu"
    admin_kube.create(kinds.NODES, {"metadata": {"name": node, "labels": {"kaip.dev/pool": pool}}})
    set_condition(admin_kube, node, "GPUIsLost", "False")
    gh = GitHubState(token=TOKEN)
    github = serve(gh)
    rota = tmp_path / "rota"
    rota.mkdir()
    (rota / "rota").write_text("alice\n")
    port = free_port()
    env = {
        **os.environ,
        "GITHUB_TOKEN": TOKEN,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("kubectl_plugins", "webhooks")),
    }
    receiver = Server(
        "kaip-alerts",
        [
            sys.executable, "-c", "import sys; from kaip_incluster.alerts.main import main; sys.exit(main(sys.argv[1:]))",
            "--listen=127.0.0.1", f"--port={port}", f"--github-api-url=http://127.0.0.1:{github.server_address[1]}",
            "--owner=kaip-dev", "--repo=cluster-issues", f"--rota-dir={rota}",
        ],
        log_dir=tmp_path,
        env=env,
    )  # fmt: skip
    started: list[Any] = [receiver]
    ksm = monitoring.kube_state_metrics_binary()
    exporter: monitoring.KubeStateMetrics | monitoring.NodeConditionExporter
    if ksm:
        exporter = monitoring.KubeStateMetrics(ksm, tmp_path, kubeconfig=control_plane.kubeconfig)
    else:
        exporter = monitoring.NodeConditionExporter(admin_kube, f"kaip.dev/pool={pool}")
    try:
        receiver.wait_ready(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2), timeout=60
        )
        config = monitoring.fast_route(EXAMPLE_ROUTE, f"http://127.0.0.1:{port}/alerts")
        am = monitoring.Alertmanager(alertmanager, tmp_path / "alertmanager", config=config)
        started.append(am)
        prom = monitoring.Prometheus(
            prometheus,
            tmp_path / "prometheus",
            targets=[exporter.address],
            rules=monitoring.rules_from_manifest(RULES, for_="0s"),
            alertmanager=am.address,
            nodes=f"{pool}-.*",
        )
        started.append(prom)
        yield gh, node, prom.url
    finally:
        for server in reversed(started):
            server.stop()
        exporter.close()
        github.shutdown()
        admin_kube.delete(kinds.NODES, node, ignore_missing=True)


def test_a_node_condition_alert_keeps_one_github_issue_through_real_prometheus_and_alertmanager(
    admin_kube: Kube, route: tuple[GitHubState, str, str]
) -> None:
    gh, node, prom = route

    def rules() -> list[dict[str, Any]]:
        return [r for g in _get_json(f"{prom}/api/v1/rules")["data"]["groups"] for r in g["rules"]]

    # Every rule of the manifest loaded and evaluated without an error by the real Prometheus.
    wait_for(lambda: all(r["health"] == "ok" for r in rules()), timeout=30, what="every rule evaluated")
    loaded = {r["name"] for r in rules()}
    assert {"GPUIsLost", "GPUPendingPage", "DStateProcess", "PCIeLinkDegraded", "GPURuntimeError"} <= loaded

    set_condition(admin_kube, node, "GPUIsLost", "True", message="GPU 0000:3b:00.0 is lost")
    issue = wait_for(lambda: gh.issue(1), timeout=90, what="an issue opened for the firing alert")
    assert issue["state"] == "open" and issue["title"] == f"GPUIsLost: node={node}"
    assert [a["login"] for a in issue["assignees"]] == ["alice"]
    assert "kaip-alert-group" in issue["body"]

    set_condition(admin_kube, node, "GPUPendingPage", "True")
    wait_for(
        lambda: any("GPUPendingPage" in c for c in gh.comments.get(1, [])),
        timeout=90,
        what="a comment when a second alert joins the group",
    )

    set_condition(admin_kube, node, "GPUIsLost", "False")
    set_condition(admin_kube, node, "GPUPendingPage", "False")
    wait_for(
        lambda: (gh.issue(1) or {}).get("state") == "closed", timeout=90, what="the issue closed on resolve"
    )
    assert (gh.issue(1) or {})["state_reason"] == "completed"

    set_condition(admin_kube, node, "GPUIsLost", "True", message="lost again")
    wait_for(
        lambda: (gh.issue(1) or {}).get("state") == "open", timeout=90, what="the issue reopened on refire"
    )
    wait_for(lambda: "Firing again" in gh.comments.get(1, [""])[-1], timeout=30, what="the refire comment")
    assert len(gh.issues) == 1  # one issue per group, reopened, never duplicated
    events = gh.events[1]
    assert events[0] == "opened" and "closed" in events and events.index("reopened") > events.index("closed")
    assert gh.violations == []
