"""Real Prometheus and Alertmanager for the alert-route tests, and the node metrics they scrape.

The servers are Debian's packages (``prometheus`` 2.42.0+ds-5+deb12u1, ``prometheus-alertmanager``
0.25.0-1+b4 on bookworm; hack/testbin.sh installs them as root when missing), found on PATH or in
``$KAIP_PROMETHEUS`` / ``$KAIP_ALERTMANAGER``. Both listen on loopback, on free ports, with short
intervals (scrape and rule evaluation every second; Alertmanager group_wait/group_interval 1s).

The node metrics come from kube-state-metrics itself (``KubeStateMetrics``: built from its Go module
k8s.io/kube-state-metrics/v2 at the version hack/testbin.sh pins, watching the test bed's API server)
where the binary is there. Otherwise ``NodeConditionExporter``, a stand-in for kube-state-metrics in
shape only: it serves
``kube_node_status_condition{node,condition,status}`` (1 for the status the Node has, 0 for the two
others, as kube-state-metrics does) computed at each scrape from the test bed's real Nodes through the
API server. The PrometheusRules in manifests/monitoring are written against that series, the one
kube-state-metrics exports for every Node condition, custom ones included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed.binaries import SCRIPT
from kaip_testbed.processes import Server, free_port


def program(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def prometheus_binary() -> str | None:
    return program("KAIP_PROMETHEUS", "prometheus")


def alertmanager_binary() -> str | None:
    return program("KAIP_ALERTMANAGER", "prometheus-alertmanager", "alertmanager")


def kube_state_metrics_binary() -> str | None:
    """``$KAIP_KUBE_STATE_METRICS``, the test bed's cached build, or PATH; ``None`` when none is there
    (this never starts a build: the stand-in exporter serves the same series)."""
    found = program("KAIP_KUBE_STATE_METRICS", "kube-state-metrics")
    if found:
        return found
    printed = subprocess.run(["bash", str(SCRIPT), "--print"], capture_output=True, text=True, check=False)
    cached = Path(printed.stdout.strip()) / "kube-state-metrics" if printed.returncode == 0 else None
    return str(cached) if cached is not None and cached.is_file() else None


def rules_from_manifest(path: Path, *, for_: str | None = None) -> dict[str, Any]:
    """A Prometheus rules file from a PrometheusRule's ``spec`` (what the Prometheus Operator does);
    ``for_`` replaces every alert's ``for`` (the test cannot wait minutes)."""
    groups = []
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "PrometheusRule":
            for group in doc["spec"]["groups"]:
                rules = [dict(r) for r in group["rules"]]
                if for_ is not None:
                    for r in rules:
                        if "alert" in r:
                            r["for"] = for_
                groups.append({**group, "rules": rules})
    return {"groups": groups}


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: bytes = resp.read()
        return data


class NodeConditionExporter:
    """kube_node_status_condition of the Nodes matching ``selector`` (see the module docstring)."""

    def __init__(self, kube: Kube, selector: str) -> None:
        self.kube = kube
        self.selector = selector
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def text(self) -> str:
        lines = [
            "# HELP kube_node_status_condition The condition of a cluster node.",
            "# TYPE kube_node_status_condition gauge",
        ]
        for node in self.kube.list_all(kinds.NODES, label_selector=self.selector):
            name = node["metadata"]["name"]
            for cond in (node.get("status") or {}).get("conditions") or []:
                for status in ("true", "false", "unknown"):
                    value = 1 if str(cond.get("status", "")).lower() == status else 0
                    lines.append(
                        f'kube_node_status_condition{{node="{name}",condition="{cond["type"]}",'
                        f'status="{status}"}} {value}'
                    )
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class KubeStateMetrics:
    """The real kube-state-metrics, Nodes only, on loopback, against the test bed's API server."""

    def __init__(self, binary: str, work: Path, *, kubeconfig: Path) -> None:
        port, telemetry = free_port(), free_port()
        self.address = f"127.0.0.1:{port}"
        self.server = Server(
            "kube-state-metrics",
            [
                binary,
                f"--kubeconfig={kubeconfig}",
                "--resources=nodes",
                "--host=127.0.0.1",
                f"--port={port}",
                "--telemetry-host=127.0.0.1",
                f"--telemetry-port={telemetry}",
            ],
            log_dir=work,
        )
        self.server.wait_ready(
            lambda: b"kube_node_info" in _get(f"http://{self.address}/metrics"), timeout=60
        )

    def close(self) -> None:
        self.server.stop()


class Prometheus:
    def __init__(
        self,
        binary: str,
        work: Path,
        *,
        targets: Sequence[str],
        rules: dict[str, Any],
        alertmanager: str,
        nodes: str = ".*",
    ) -> None:
        """``nodes``: a regular expression; only series of those nodes are kept (the test bed is shared)."""
        work.mkdir(parents=True, exist_ok=True)
        (work / "rules.yml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(work / "rules.yml")],
            "scrape_configs": [
                {"job_name": "kube-state-metrics", "static_configs": [{"targets": list(targets)}]}
            ],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = Server(
            "prometheus",
            [
                binary,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--rules.alert.resend-delay=1s",
                "--web.enable-lifecycle",
            ],
            log_dir=work,
        )
        self.server.wait_ready(lambda: _get(f"{self.url}/-/ready") is not None, timeout=60)

    def stop(self) -> None:
        self.server.stop()


def fast_route(example: Path, webhook: str) -> dict[str, Any]:
    """An Alertmanager configuration from an example file, its webhooks pointed at ``webhook`` and
    every route's group_wait/group_interval made 1s (repeat_interval stays long: a repeat is no change)."""
    config: dict[str, Any] = yaml.safe_load(example.read_text())

    def fast(route: dict[str, Any]) -> None:
        route.update({"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"})
        for child in route.get("routes") or []:
            fast(child)

    fast(config["route"])
    for receiver in config.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            hook["url"] = webhook
    return config


class Alertmanager:
    def __init__(self, binary: str, work: Path, *, config: dict[str, Any]) -> None:
        work.mkdir(parents=True, exist_ok=True)
        (work / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.address = f"127.0.0.1:{self.port}"
        self.server = Server(
            "alertmanager",
            [
                binary,
                f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            log_dir=work,
        )
        self.server.wait_ready(lambda: _get(f"{self.url}/-/ready") is not None, timeout=60)

    def stop(self) -> None:
        self.server.stop()
