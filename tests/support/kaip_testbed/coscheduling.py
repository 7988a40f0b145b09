"""Gang scheduling in the test bed: scheduler-plugins' kube-scheduler with the Coscheduling plugin,
run as a second scheduler beside the bed's kube-scheduler, and its controller, which keeps each
PodGroup's status (sigs.k8s.io/scheduler-plugins, at the version hack/testbin.sh pins).

The PodGroup and ElasticQuota CRDs (the controller watches both) and the scheduler's configuration are
the YAML inside the module (``config/crd/bases``, ``manifests/coscheduling/scheduler-config.yaml``); the
configuration's profile is renamed :data:`SCHEDULER_NAME` (upstream's own name for the second scheduler
of its Helm chart) so that the default scheduler keeps every other Pod. training-operator, started with
``--gang-scheduler-name`` = that name, makes a PodGroup per job and points its Pods at this scheduler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kaip.kube.client import Kube
from kaip.resources.kinds import Resource
from kaip_testbed import binaries
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.kubeflow import http_ok, install_crds, remove_crds, yaml_documents
from kaip_testbed.processes import Server, free_port

MANIFESTS = "scheduler-plugins-manifests"
SCHEDULER_NAME = "scheduler-plugins-scheduler"
PODGROUPS = Resource("scheduling.x-k8s.io", "v1alpha1", "podgroups", "PodGroup")


def _testbin(relative: str) -> Path:
    path = binaries.folder(need=("scheduler-plugins",)) / MANIFESTS / relative
    if not path.exists():
        raise binaries.BinariesMissing(f"{path} is missing: run hack/testbin.sh")
    return path


def crd_documents() -> list[dict[str, Any]]:
    return [
        d
        for d in yaml_documents(sorted(_testbin("config/crd/bases").glob("*.yaml")))
        if d["kind"] == "CustomResourceDefinition"
    ]


def scheduler_configuration(kubeconfig: Path) -> dict[str, Any]:
    """Upstream's coscheduling configuration, its profile named :data:`SCHEDULER_NAME`."""
    config: dict[str, Any] = yaml.safe_load(
        _testbin("manifests/coscheduling/scheduler-config.yaml").read_text()
    )
    config["clientConnection"]["kubeconfig"] = str(kubeconfig)
    (profile,) = config["profiles"]
    profile["schedulerName"] = SCHEDULER_NAME
    return config


class Coscheduling:
    """The coscheduling scheduler and the PodGroup controller, with their CRDs."""

    def __init__(self, plane: ControlPlane, kube: Kube) -> None:
        self.plane, self.kube = plane, kube
        self.workdir = plane.workdir / "coscheduling"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.servers: list[Server] = []
        self.crds: list[str] = []

    def start(self) -> None:
        self.crds = install_crds(self.kube, crd_documents())
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KUBECONFIG": str(self.plane.kubeconfig)}
        probe = free_port()
        controller = Server(
            "scheduler-plugins-controller",
            [
                binaries.path_of("scheduler-plugins-controller"),
                "--metricsAddr=0",
                f"--probeAddr=127.0.0.1:{probe}",
                "--qps=100",
                "--burst=200",
                "--workers=2",
            ],
            log_dir=self.plane.workdir,
            env=env,
        )
        self.servers.append(controller)
        config = self.workdir / "scheduler-config.yaml"
        config.write_text(yaml.safe_dump(scheduler_configuration(self.plane.kubeconfig)))
        port = free_port()
        scheduler = Server(
            "scheduler-plugins",
            [
                binaries.path_of("scheduler-plugins"),
                f"--config={config}",
                f"--authentication-kubeconfig={self.plane.kubeconfig}",
                f"--authorization-kubeconfig={self.plane.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                "--v=2",
            ],
            log_dir=self.plane.workdir,
            env=env,
        )
        self.servers.append(scheduler)
        controller.wait_ready(lambda: http_ok(f"http://127.0.0.1:{probe}/readyz"), timeout=90)
        scheduler.wait_ready(lambda: _https_ok(f"https://127.0.0.1:{port}/healthz"), timeout=90)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers = []
        if self.crds:
            remove_crds(self.kube, self.crds)
            self.crds = []


def _https_ok(url: str) -> bool:
    """The scheduler's /healthz on its self-signed serving certificate."""
    import ssl
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:
        return bool(resp.status == 200)
