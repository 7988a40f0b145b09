"""Kubeflow Trainer v2 in the test bed: the upstream CRDs and ClusterTrainingRuntimes, and the real
trainer-controller-manager and JobSet controller, at the versions hack/testbin.sh pins (kubeflow/trainer
v2.0.0, sigs.k8s.io/jobset v0.8.2).

The CRDs (TrainJob, TrainingRuntime, ClusterTrainingRuntime; JobSet) and the runtimes
(``manifests/base/runtimes``: torch-distributed, mpi-distributed, deepspeed-distributed, mlx-distributed)
are the YAML inside each Go module, copied next to the binaries by hack/testbin.sh: none is written by
hand. Both controllers keep their webhook certificates with cert-controller's rotator, as
training-operator does (:func:`kaip_testbed.kubeflow.seed_rotator_certificates`): the fixture pre-seeds
the Secret in the namespace each uses outside a Pod (``kubeflow-system``, ``jobset-system``), registers
the upstream webhook configurations under the names each rotator patches, pointed at
``https://127.0.0.1:<port>``, and runs each in a mount namespace of its own over the fixed
``/tmp/k8s-webhook-server``. kube-controller-manager's Job controller makes the Pods of JobSet's Jobs,
kube-scheduler binds them to kwok nodes, and :class:`kaip_testbed.trainingpods.TrainingPods` (selecting
JobSet's label) runs their commands.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import trainer as tr
from kaip_testbed import binaries
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.kubeflow import (
    MUTATING_WEBHOOKS,
    VALIDATING_WEBHOOKS,
    _namespace,
    http_ok,
    install_crds,
    isolated,
    remove_crds,
    seed_rotator_certificates,
    served_at,
    tls_answers,
    yaml_documents,
)
from kaip_testbed.processes import Server, free_port

TRAINER_CRDS = "trainer-manifests/manifests/base/crds"
TRAINER_RUNTIMES = "trainer-manifests/manifests/base/runtimes"
TRAINER_WEBHOOKS = "trainer-manifests/manifests/base/webhook/manifests.yaml"
JOBSET_CRDS = "jobset-manifests/config/components/crd/bases"
JOBSET_WEBHOOKS = "jobset-manifests/config/components/webhook/manifests.yaml"
#: The fixed folder both controllers' rotators write their certificates to.
CERT_MOUNT = "/tmp/k8s-webhook-server"  # the programs' own fixed path, bind-mounted per run


def _testbin(relative: str) -> Path:
    built = binaries.folder(need=("trainer-controller-manager", "jobset-controller"))
    path = built / relative
    if not path.exists():
        raise binaries.BinariesMissing(f"{path} is missing: run hack/testbin.sh")
    return path


def crd_documents() -> list[dict[str, Any]]:
    """Trainer v2's CRDs and JobSet's, from their modules."""
    paths = [*sorted(_testbin(TRAINER_CRDS).glob("*.yaml")), *sorted(_testbin(JOBSET_CRDS).glob("*.yaml"))]
    return [d for d in yaml_documents(paths) if d["kind"] == "CustomResourceDefinition"]


def runtime_documents() -> list[dict[str, Any]]:
    """The upstream ClusterTrainingRuntimes (the top-level ones; torchtune's need model weights)."""
    docs = yaml_documents(sorted(_testbin(TRAINER_RUNTIMES).glob("*.yaml")))
    return [d for d in docs if d["kind"] == tr.CLUSTER_TRAINING_RUNTIMES.kind]


class _RotatedController:
    """A controller-runtime manager whose webhooks' certificates cert-controller's rotator keeps."""

    NAME = ""
    NAMESPACE = ""
    SECRET = ""
    SERVICE = ""
    CA_NAME = ""
    #: (kind of configuration, the name its rotator patches, the upstream document's name).
    CONFIGURATIONS: tuple[tuple[str, str, str], ...] = ()
    WEBHOOKS = ""

    def __init__(self, plane: ControlPlane, kube: Kube) -> None:
        self.plane, self.kube = plane, kube
        self.workdir = plane.workdir / self.NAME
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.webhook_port, self.probe_port = free_port(), free_port()
        self.server: Server | None = None

    def _configurations(self, ca_pem: bytes) -> list[tuple[Any, dict[str, Any]]]:
        docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml_documents([_testbin(self.WEBHOOKS)])}
        out = []
        for kind, name, upstream in self.CONFIGURATIONS:
            doc = docs[(kind, upstream)]
            doc["metadata"] = {"name": name}
            resource = VALIDATING_WEBHOOKS if kind == VALIDATING_WEBHOOKS.kind else MUTATING_WEBHOOKS
            out.append((resource, served_at(self.patched(doc), port=self.webhook_port, ca_pem=ca_pem)))
        return out

    def patched(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The upstream document as the module's kustomize patches leave it."""
        return doc

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        _namespace(self.kube, self.NAMESPACE)
        private = self.workdir / "k8s-webhook-server"
        ca_pem = seed_rotator_certificates(
            self.kube,
            namespace=self.NAMESPACE,
            secret=self.SECRET,
            service=self.SERVICE,
            ca_name=self.CA_NAME,
            folder=private / "serving-certs",
        )
        for resource, doc in self._configurations(ca_pem):
            self.kube.delete(resource, doc["metadata"]["name"], ignore_missing=True)
            self.kube.create(resource, doc)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KUBECONFIG": str(self.plane.kubeconfig)}
        self.server = Server(
            self.NAME,
            isolated(self.argv(), private=private, fixed=CERT_MOUNT),
            log_dir=self.plane.workdir,
            env=env,
        )
        # Ready once the certificates are in place and the webhook server listens (upstream's readyz).
        self.server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{self.probe_port}/readyz"), timeout=120)
        self.server.wait_ready(lambda: tls_answers(self.webhook_port, ca_pem), timeout=60)

    def stop(self) -> None:
        # The webhooks go first: with the controller gone they would refuse every object (failurePolicy Fail).
        for kind, name, _ in self.CONFIGURATIONS:
            resource = VALIDATING_WEBHOOKS if kind == VALIDATING_WEBHOOKS.kind else MUTATING_WEBHOOKS
            self.kube.delete(resource, name, ignore_missing=True)
        if self.server is not None:
            self.server.stop()
            self.server = None


class TrainerController(_RotatedController):
    """trainer-controller-manager v2.0.0 (cmd/trainer-controller-manager, pkg/util/cert)."""

    NAME = "trainer-controller-manager"
    NAMESPACE = "kubeflow-system"
    SECRET = "kubeflow-trainer-webhook-cert"
    SERVICE = "kubeflow-trainer-controller-manager"
    CA_NAME = "kubeflow-trainer-ca"
    CONFIGURATIONS = (
        (VALIDATING_WEBHOOKS.kind, "validator.trainer.kubeflow.org", "validating-webhook-configuration"),
    )
    WEBHOOKS = TRAINER_WEBHOOKS

    def argv(self) -> list[str]:
        return [
            binaries.path_of("trainer-controller-manager"),
            "--metrics-bind-address=0",
            f"--health-probe-bind-address=127.0.0.1:{self.probe_port}",
            f"--webhook-server-port={self.webhook_port}",
        ]


class JobSetController(_RotatedController):
    """The JobSet controller v0.8.2 (the module's main.go, pkg/util/cert), with its Configuration file."""

    NAME = "jobset-controller"
    NAMESPACE = "jobset-system"
    SECRET = "jobset-webhook-server-cert"
    SERVICE = "jobset-webhook-service"
    CA_NAME = "jobset-ca"
    CONFIGURATIONS = (
        (MUTATING_WEBHOOKS.kind, "jobset-mutating-webhook-configuration", "mutating-webhook-configuration"),
        (
            VALIDATING_WEBHOOKS.kind,
            "jobset-validating-webhook-configuration",
            "validating-webhook-configuration",
        ),
    )
    WEBHOOKS = JOBSET_WEBHOOKS

    def patched(self, doc: dict[str, Any]) -> dict[str, Any]:
        # config/components/webhook/patches: the Pod webhooks see only JobSet's Pods.
        for hook in doc["webhooks"]:
            if hook["name"] in ("mpod.kb.io", "vpod.kb.io"):
                hook["objectSelector"] = {
                    "matchExpressions": [{"key": tr.LABEL_JOBSET_NAME, "operator": "Exists"}]
                }
        return doc

    def argv(self) -> list[str]:
        config = self.workdir / "config.yaml"
        config.write_text(
            "apiVersion: config.jobset.x-k8s.io/v1alpha1\nkind: Configuration\n"
            f"webhook:\n  port: {self.webhook_port}\n"
        )
        return [
            binaries.path_of("jobset-controller"),
            f"--config={config}",
            "--metrics-bind-address=0",
            f"--health-probe-bind-address=127.0.0.1:{self.probe_port}",
            "--leader-elect=false",
        ]


class TrainerBed:
    """Trainer v2 whole: the CRDs, JobSet's and the trainer's controllers, the upstream runtimes."""

    def __init__(self, plane: ControlPlane, kube: Kube) -> None:
        self.plane, self.kube = plane, kube
        self.jobset = JobSetController(plane, kube)
        self.trainer = TrainerController(plane, kube)
        self.crds: list[str] = []

    def start(self) -> None:
        self.crds = install_crds(self.kube, crd_documents())
        self.jobset.start()
        self.trainer.start()
        # After the controller: its webhook validates every ClusterTrainingRuntime.
        for doc in runtime_documents():
            self.kube.delete(tr.CLUSTER_TRAINING_RUNTIMES, doc["metadata"]["name"], ignore_missing=True)
            self.kube.create(tr.CLUSTER_TRAINING_RUNTIMES, doc)

    def stop(self) -> None:
        self.trainer.stop()
        # The controller keeps a finalizer on each runtime a TrainJob used; with it stopped (it would put
        # the finalizer back while a TrainJob of a deleted namespace remains), nobody else removes it.
        for runtime in self.kube.list(tr.CLUSTER_TRAINING_RUNTIMES).get("items") or ():
            with contextlib.suppress(NotFound):
                patch = {"metadata": {"finalizers": None}}
                self.kube.patch(tr.CLUSTER_TRAINING_RUNTIMES, runtime["metadata"]["name"], patch)
        self.jobset.stop()
        if self.crds:
            remove_crds(self.kube, self.crds)
