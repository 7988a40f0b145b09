"""Kueue in the test bed: the upstream CRDs and ``kueue`` (cmd/kueue of sigs.k8s.io/kueue, at the
version hack/testbin.sh pins) run against kube-apiserver, with its admission webhooks registered there
and called over TLS, and a GPU quota: a ResourceFlavor, a ClusterQueue and LocalQueues.

The CRDs and webhook configurations are the YAML inside Kueue's module (copied next to the binary by
hack/testbin.sh); none is written by hand. Kueue's own certificate management (it would write a Secret
for a Service the bed has no network for) is switched off in its configuration: the fixture makes a CA
and a serving certificate for 127.0.0.1, and each webhook's ``clientConfig`` becomes
``https://127.0.0.1:<port><path>``. Only the webhooks of the integrations the bed enables are registered
(Kueue serves no others, and an unserved webhook with ``failurePolicy: Fail`` would refuse every Pod or
Deployment). The visibility API server (a fixed port on every address) is off; the CRDs are served
without the conversion webhooks upstream's kustomize patches add (the bed and kaip read v1beta2 only).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kaip.kube.client import Kube
from kaip.kube.errors import ApiError, Conflict, NotFound
from kaip.resources.kinds import Resource
from kaip.resources.kubeflow import TFJOBS
from kaip_testbed import binaries
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.kubeflow import (
    MUTATING_WEBHOOKS,
    VALIDATING_WEBHOOKS,
    http_ok,
    install_crds,
    isolated,
    remove_crds,
    served_at,
    tls_answers,
    wait_until,
    yaml_documents,
)
from kaip_testbed.pki import CertificateAuthority
from kaip_testbed.processes import Server, free_port

MANIFESTS = "kueue-manifests/config/components"
API = "kueue.x-k8s.io/v1beta2"
RESOURCE_FLAVORS = Resource(
    "kueue.x-k8s.io", "v1beta2", "resourceflavors", "ResourceFlavor", namespaced=False
)
CLUSTER_QUEUES = Resource("kueue.x-k8s.io", "v1beta2", "clusterqueues", "ClusterQueue", namespaced=False)
LOCAL_QUEUES = Resource("kueue.x-k8s.io", "v1beta2", "localqueues", "LocalQueue")
WORKLOADS = Resource("kueue.x-k8s.io", "v1beta2", "workloads", "Workload")

#: The Kubeflow kinds Kueue integrates that the bed's operators run (training-operator's v1 kinds,
#: mpi-operator's MPIJob v2beta1): Kueue's framework names and the path fragment of their webhooks.
FRAMEWORKS = {
    "kubeflow.org/tfjob": "kubeflow-org-v1-tfjob",
    "kubeflow.org/pytorchjob": "kubeflow-org-v1-pytorchjob",
    "kubeflow.org/xgboostjob": "kubeflow-org-v1-xgboostjob",
    "kubeflow.org/jaxjob": "kubeflow-org-v1-jaxjob",
    "kubeflow.org/paddlejob": "kubeflow-org-v1-paddlejob",
    "kubeflow.org/mpijob": "kubeflow-org-v2beta1-mpijob",
}
#: Kueue's own objects' webhooks (defaulting and validation of queues, flavors, workloads).
OWN_WEBHOOKS = ("kueue-x-k8s-io-",)


def _testbin(relative: str) -> Path:
    path = binaries.folder(need=("kueue",)) / MANIFESTS / relative
    if not path.exists():
        raise binaries.BinariesMissing(f"{path} is missing: run hack/testbin.sh")
    return path


def crd_documents() -> list[dict[str, Any]]:
    docs = yaml_documents(sorted(_testbin("crd/bases").glob("*.yaml")))
    return [d for d in docs if d["kind"] == "CustomResourceDefinition"]


def webhook_configurations(
    *, frameworks: Sequence[str], port: int, ca_pem: bytes, prefix: str
) -> list[tuple[Resource, dict[str, Any]]]:
    """Upstream's webhook configurations, only the hooks Kueue serves for ``frameworks``, served on
    127.0.0.1:``port``."""
    wanted = tuple(FRAMEWORKS[f] for f in frameworks) + OWN_WEBHOOKS
    out = []
    for doc in yaml_documents([_testbin("webhook/manifests.yaml")]):
        resource = {"MutatingWebhookConfiguration": MUTATING_WEBHOOKS}.get(doc["kind"], VALIDATING_WEBHOOKS)
        doc["webhooks"] = [
            h for h in doc["webhooks"] if any(w in h["clientConfig"]["service"]["path"] for w in wanted)
        ]
        doc["metadata"] = {"name": f"{prefix}-{doc['metadata']['name']}"}
        out.append((resource, served_at(doc, port=port, ca_pem=ca_pem)))
    return out


def configuration(
    *, frameworks: Sequence[str], webhook_port: int, probe_port: int, cert_dir: Path
) -> dict[str, Any]:
    """Kueue's Configuration: upstream's defaults where the bed has no reason to differ."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": Kueue.NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{probe_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "clientConnection": {"qps": 200, "burst": 400},
        "featureGates": {"VisibilityOnDemand": False},
        "integrations": {"frameworks": list(frameworks)},
    }


class Kueue:
    """``kueue`` with its CRDs and webhooks; :meth:`gpu_quota` makes the queues a test submits to."""

    NAMESPACE = "kueue-system"

    def __init__(
        self, plane: ControlPlane, kube: Kube, *, frameworks: Sequence[str] = tuple(FRAMEWORKS)
    ) -> None:
        self.plane, self.kube, self.frameworks = plane, kube, tuple(frameworks)
        self.workdir = plane.workdir / "kueue"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.webhook_port, self.probe_port = free_port(), free_port()
        self.server: Server | None = None
        self.crds: list[str] = []
        self.webhooks: list[tuple[Resource, str]] = []

    def _certificates(self) -> tuple[bytes, Path]:
        ca = CertificateAuthority("kueue-test-ca")
        serving = ca.issue("kueue-webhook", hosts=("127.0.0.1",), server=True)
        certs = self.workdir / "certs"
        certs.mkdir(exist_ok=True)
        (certs / "tls.crt").write_bytes(serving.cert_pem)
        (certs / "tls.key").write_bytes(serving.key_pem)
        (certs / "tls.key").chmod(0o600)
        return ca.cert_pem, certs

    def start(self) -> None:
        from kaip.resources import kinds

        self.crds = install_crds(self.kube, crd_documents())
        with contextlib.suppress(Conflict):  # there from an earlier module
            self.kube.create(kinds.NAMESPACES, {"metadata": {"name": self.NAMESPACE}})
        ca_pem, certs = self._certificates()
        config = configuration(
            frameworks=self.frameworks,
            webhook_port=self.webhook_port,
            probe_port=self.probe_port,
            cert_dir=certs,
        )
        config_path = self.workdir / "config.yaml"
        config_path.write_text(json.dumps(config))
        argv = [binaries.path_of("kueue"), f"--config={config_path}", "--zap-log-level=2"]
        self.server = Server(
            "kueue",
            # Without its own certificate management Kueue reads the metrics server's certificate from a
            # fixed folder (cmd/kueue/main.go): a private one is bind-mounted there, as for training-operator.
            isolated(argv, private=certs, fixed="/etc/kueue/metrics/certs"),
            log_dir=self.plane.workdir,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KUBECONFIG": str(self.plane.kubeconfig)},
        )
        self.server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{self.probe_port}/readyz"), timeout=120)
        self.server.wait_ready(lambda: tls_answers(self.webhook_port, ca_pem), timeout=60)
        for resource, doc in webhook_configurations(
            frameworks=self.frameworks, port=self.webhook_port, ca_pem=ca_pem, prefix="kueue"
        ):
            self.kube.delete(resource, doc["metadata"]["name"], ignore_missing=True)
            self.kube.create(resource, doc)
            self.webhooks.append((resource, doc["metadata"]["name"]))
        if "kubeflow.org/tfjob" in self.frameworks:
            # kube-apiserver picks new webhook configurations up a moment later: wait until it calls them.
            wait_until(self._suspends_jobs, "kube-apiserver to call Kueue's webhooks", timeout=60)

    def _suspends_jobs(self) -> bool:
        """A queued TFJob, created in a server-side dry run, comes back suspended by Kueue's webhook."""
        job = {
            "apiVersion": "kubeflow.org/v1",
            "kind": "TFJob",
            "metadata": {"name": "kueue-probe", "labels": {"kueue.x-k8s.io/queue-name": "probe"}},
            "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "tensorflow", "image": "probe"}
            ]}}}}},
        }  # fmt: skip
        try:
            made = self.kube.create(TFJOBS, job, namespace="default", dry_run=True)
        except ApiError:
            return False
        return bool(((made.get("spec") or {}).get("runPolicy") or {}).get("suspend"))

    def gpu_quota(
        self, name: str, *, gpus: int, namespaces: Sequence[str] = (), local_queue: str | None = None
    ) -> None:
        """A ResourceFlavor and ClusterQueue ``name`` with ``gpus`` nvidia.com/gpu (and CPU and memory
        enough not to matter), and a LocalQueue ``local_queue`` (default ``name``) in each namespace."""
        self.kube.create(
            RESOURCE_FLAVORS, {"apiVersion": API, "kind": "ResourceFlavor", "metadata": {"name": name}}
        )
        resources = {"cpu": "1000", "memory": "64Ti", "nvidia.com/gpu": str(gpus)}
        cluster_queue = {
            "apiVersion": API,
            "kind": "ClusterQueue",
            "metadata": {"name": name},
            "spec": {
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": list(resources),
                        "flavors": [
                            {
                                "name": name,
                                "resources": [{"name": r, "nominalQuota": q} for r, q in resources.items()],
                            }
                        ],
                    }
                ],
            },
        }
        self.kube.create(CLUSTER_QUEUES, cluster_queue)
        for namespace in namespaces:
            self.local_queue(namespace, local_queue or name, cluster_queue=name)

    def local_queue(self, namespace: str, name: str, *, cluster_queue: str) -> None:
        body = {
            "apiVersion": API,
            "kind": "LocalQueue",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterQueue": cluster_queue},
        }
        self.kube.create(LOCAL_QUEUES, body, namespace=namespace)

    def set_gpus(self, name: str, gpus: int) -> None:
        """Change the ClusterQueue's GPU quota (as an admin does when GPUs are added)."""
        live = self.kube.get(CLUSTER_QUEUES, name)
        names = [r["name"] for r in live["spec"]["resourceGroups"][0]["flavors"][0]["resources"]]
        path = f"/spec/resourceGroups/0/flavors/0/resources/{names.index('nvidia.com/gpu')}/nominalQuota"
        # A JSON patch of the one field: Kueue writes the object too (status, finalizers).
        self.kube.patch(
            CLUSTER_QUEUES, name, [{"op": "replace", "path": path, "value": str(gpus)}], kind="json"
        )

    def remove_quota(self, name: str) -> None:
        self.kube.delete(CLUSTER_QUEUES, name, ignore_missing=True)
        self.kube.delete(RESOURCE_FLAVORS, name, ignore_missing=True)

    def workloads(self, namespace: str) -> list[Mapping[str, Any]]:
        try:
            return list(self.kube.list(WORKLOADS, namespace=namespace).get("items") or [])
        except NotFound:
            return []

    def _release_finalizers(self) -> None:
        """Kueue's finalizers on its objects, which only a running Kueue removes, would hold the CRDs."""
        for resource in (WORKLOADS, LOCAL_QUEUES, CLUSTER_QUEUES, RESOURCE_FLAVORS):
            try:
                items = self.kube.list_all(resource, all_namespaces=True)
            except NotFound:
                continue
            for item in items:
                meta = item["metadata"]
                if meta.get("finalizers"):
                    with contextlib.suppress(NotFound):
                        self.kube.patch(
                            resource,
                            meta["name"],
                            {"metadata": {"finalizers": None}},
                            namespace=meta.get("namespace"),
                        )

    def stop(self) -> None:
        # The webhooks go first: with Kueue gone they would refuse every Kubeflow job (failurePolicy Fail).
        for resource, name in self.webhooks:
            self.kube.delete(resource, name, ignore_missing=True)
        self.webhooks = []
        if self.server is not None:
            self.server.stop()
            self.server = None
        self._release_finalizers()
        if self.crds:
            remove_crds(self.kube, self.crds)
            self.crds = []
