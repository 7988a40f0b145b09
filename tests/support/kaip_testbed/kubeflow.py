"""Kubeflow in the test bed: the upstream CRDs and the real operators, at the versions
hack/testbin.sh pins (training-operator v1.9.2, mpi-operator v0.6.0, Katib v0.19.0).

The CRDs are the YAML that ships inside each operator's Go module (copied next to the binaries by
hack/testbin.sh, from the same module version as the binary): none is written by hand. One CRD name,
``mpijobs.kubeflow.org``, is defined by both training-operator (``kubeflow.org/v1``) and mpi-operator
(``kubeflow.org/v2beta1``); a cluster serves one of them, and :data:`MPI_V1` / :data:`MPI_V2BETA1`
choose which.

:class:`TrainingOperator` runs ``training-operator`` against kube-apiserver with its validating
webhooks registered there and called over TLS: the upstream ValidatingWebhookConfiguration with each
``clientConfig`` turned into ``https://127.0.0.1:<port>/<path>`` and a CA the fixture makes. The
operator's own certificate rotator (cert-controller) keeps its Secret when the certificates in it are
valid for its names, so the fixture pre-seeds that Secret with a CA and a serving certificate valid for
the Service name the rotator checks *and* for 127.0.0.1. The rotator writes them to the fixed folder
``/tmp/k8s-webhook-server/serving-certs``; to keep two test runs on one machine apart, the operator runs
in a mount namespace of its own (``unshare -m``) where a private folder is bind-mounted on
``/tmp/k8s-webhook-server``. :class:`MPIOperator` runs ``mpi-operator`` (no webhooks; a Lease in its
lock namespace).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import socket
import ssl
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import IO, Any

import yaml

from kaip.kube.client import Kube
from kaip.kube.errors import ApiError, Conflict, NotFound
from kaip.resources import kinds
from kaip.resources.kinds import Resource
from kaip_testbed import binaries
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.pki import CertificateAuthority
from kaip_testbed.processes import Server, free_port

CRDS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False
)
VALIDATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    namespaced=False,
)
MUTATING_WEBHOOKS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    namespaced=False,
)

LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")

TRAINING_CRDS = "training-operator-manifests/manifests/base/crds"
TRAINING_WEBHOOKS = "training-operator-manifests/manifests/base/webhook"
MPI_V2_CRD = "mpi-operator-manifests/manifests/base/kubeflow.org_mpijobs.yaml"
KATIB_CRDS = "katib-manifests/manifests/v1beta1/components/crd"

MPI_V1 = "v1"
MPI_V2BETA1 = "v2beta1"
#: training-operator's schemes (``--enable-scheme``) and the CRD each serves.
SCHEMES = ("tfjob", "pytorchjob", "xgboostjob", "jaxjob", "paddlejob", "mpijob")


_BUILT_BY = {
    "training-operator-manifests": "training-operator",
    "mpi-operator-manifests": "mpi-operator",
    "katib-manifests": "katib-controller",
    "kwok-crds": "kwok",
}


def _testbin(relative: str) -> Path:
    """A file hack/testbin.sh copied from an operator's module, building that operator if needed."""
    path = binaries.folder(need=(_BUILT_BY[relative.split("/", 1)[0]],)) / relative
    if not path.exists():
        raise binaries.BinariesMissing(f"{path} is missing: run hack/testbin.sh")
    return path


def served_at(configuration: dict[str, Any], *, port: int, ca_pem: bytes) -> dict[str, Any]:
    """An upstream webhook configuration with each ``clientConfig.service`` turned into
    ``https://127.0.0.1:<port><path>`` trusted through ``ca_pem`` (the test bed reaches no Service
    network)."""
    for hook in configuration["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {
            "url": f"https://127.0.0.1:{port}{path}",
            "caBundle": base64.b64encode(ca_pem).decode(),
        }
        hook["timeoutSeconds"] = 10
    return configuration


def yaml_documents(paths: Iterable[Path]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind")]
    return docs


def crd_documents(*, mpi: str = MPI_V2BETA1, katib: bool = True) -> list[dict[str, Any]]:
    """The upstream CRDs: training-operator's kinds, MPIJob of the chosen API, Katib's."""
    if mpi not in (MPI_V1, MPI_V2BETA1):
        raise ValueError(f"mpi must be {MPI_V1!r} or {MPI_V2BETA1!r}")
    training = sorted(_testbin(TRAINING_CRDS).glob("kubeflow.org_*.yaml"))
    docs = [
        d
        for d in yaml_documents(training)
        if d["kind"] == "CustomResourceDefinition"
        and (mpi == MPI_V1 or d["metadata"]["name"] != "mpijobs.kubeflow.org")
    ]
    if mpi == MPI_V2BETA1:
        docs += yaml_documents([_testbin(MPI_V2_CRD)])
    if katib:
        docs += [
            d
            for d in yaml_documents(sorted(_testbin(KATIB_CRDS).glob("*.yaml")))
            if d["kind"] == "CustomResourceDefinition"
        ]
    return docs


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _crd(kube: Kube, name: str) -> dict[str, Any] | None:
    try:
        return kube.get(CRDS, name)
    except NotFound:
        return None


def _established(kube: Kube, name: str) -> bool:
    conditions = ((_crd(kube, name) or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _gone(kube: Kube, name: str) -> bool:
    return _crd(kube, name) is None


def served_resources(docs: Sequence[dict[str, Any]]) -> list[Resource]:
    out = []
    for d in docs:
        spec = d["spec"]
        version = next(v["name"] for v in spec["versions"] if v.get("storage"))
        out.append(Resource(spec["group"], version, spec["names"]["plural"], spec["names"]["kind"]))
    return out


def _listable(kube: Kube, resource: Resource) -> bool:
    try:
        kube.list(resource, all_namespaces=True, limit=1)
    except ApiError:
        return False
    return True


def install_crds(kube: Kube, docs: Sequence[dict[str, Any]]) -> list[str]:
    """Create (or replace) the CRDs and wait until the server lists each one's objects.

    A CRD of the same name but another definition (the other MPIJob API) is deleted first.
    """
    names = [d["metadata"]["name"] for d in docs]
    for doc in docs:
        live = _crd(kube, doc["metadata"]["name"])
        if live is not None and (
            live["metadata"].get("deletionTimestamp")
            or [v["name"] for v in live["spec"]["versions"]] != [v["name"] for v in doc["spec"]["versions"]]
        ):
            remove_crds(kube, [doc["metadata"]["name"]])
            live = None
        if live is None:
            kube.create(CRDS, doc)
        else:
            kube.replace(CRDS, {**doc, "metadata": {**doc["metadata"], **_rv(live)}})
    for name in names:
        wait_until(partial(_established, kube, name), f"CRD {name} to be established")
    resources = served_resources(docs)
    # Discovery of a new group lags behind Established by a moment, and the server's cache of each new
    # resource by a moment more (429 "storage is initializing").
    wait_until(lambda: all(kube.served(r) for r in resources), "discovery of the CRDs")
    wait_until(lambda: all(_listable(kube, r) for r in resources), "the CRDs' storage")
    return names


def _rv(live: dict[str, Any]) -> dict[str, Any]:
    return {"resourceVersion": live["metadata"]["resourceVersion"]}


def remove_crds(kube: Kube, names: Sequence[str], *, timeout: float = 120.0) -> None:
    """Delete the CRDs and wait until they are gone (the server first deletes their objects)."""
    for name in names:
        kube.delete(CRDS, name, ignore_missing=True)
    for name in names:
        wait_until(partial(_gone, kube, name), f"CRD {name} to go", timeout=timeout)


# -- operators ---------------------------------------------------------------------------------------
def _namespace(kube: Kube, name: str) -> None:
    with contextlib.suppress(Conflict):
        kube.create(kinds.NAMESPACES, {"metadata": {"name": name}})


def isolated(argv: Sequence[str], *, private: Path, fixed: str) -> list[str]:
    """``argv`` in a mount namespace of its own, where ``private`` is bind-mounted on the fixed path
    ``fixed`` that the program insists on (two test runs on one machine then never share it)."""
    Path(fixed).mkdir(parents=True, exist_ok=True)  # the mount point; nothing is written to it on the host
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        str(private),
        fixed,
        *argv,
    ]


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


def tls_answers(port: int, ca_pem: bytes) -> bool:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1"),
    ):
        return True


# The rotator checks its CA for its own DNS name (``ca_name``) and its serving certificate for
# "<service>.<namespace>.svc", each valid beyond a 90-day look-ahead, and reads the CA's key as PKCS#1
# RSA (cert-controller v0.12.0, pkg/rotator/rotator.go: validCACert, validServerCert,
# defaultLookaheadInterval, buildArtifactsFromSecret).
def seed_rotator_certificates(
    kube: Kube, *, namespace: str, secret: str, service: str, ca_name: str, folder: Path
) -> bytes:
    """Pre-seed the Secret that a cert-controller rotator keeps (a CA and a serving certificate valid for
    the Service name it checks *and* for 127.0.0.1), and write them to ``folder`` as the kubelet
    would mount the Secret; returns the CA's PEM."""
    ca = CertificateAuthority(ca_name, dns_names=(ca_name,), days=3650, rsa_pkcs1=True)
    serving = ca.issue(
        f"{service}.{namespace}.svc",
        hosts=(f"{service}.{namespace}.svc", "127.0.0.1"),
        server=True,
        days=3650,
    )
    data = {
        "ca.crt": ca.cert_pem,
        "ca.key": ca.pair().key_pem,
        "tls.crt": serving.cert_pem,
        "tls.key": serving.key_pem,
    }
    body = {"metadata": {"name": secret}, "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
    kube.delete(kinds.SECRETS, secret, namespace=namespace, ignore_missing=True)
    kube.create(kinds.SECRETS, body, namespace=namespace)
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (folder / key).write_bytes(value)
        (folder / key).chmod(0o600)
    return ca.cert_pem


class TrainingOperator:
    """training-operator v1 with its webhooks served to kube-apiserver on 127.0.0.1."""

    NAMESPACE = "kubeflow"
    SECRET = "training-operator-webhook-cert"
    SERVICE = "training-operator"
    WEBHOOK_CONFIGURATION = "validator.training-operator.kubeflow.org"

    def __init__(
        self,
        plane: ControlPlane,
        kube: Kube,
        *,
        schemes: Sequence[str] = SCHEMES,
        gang_scheduler: str | None = None,
    ) -> None:
        """``gang_scheduler``: the operator's ``--gang-scheduler-name`` (a PodGroup per job)."""
        self.plane, self.kube, self.schemes = plane, kube, tuple(schemes)
        self.gang_scheduler = gang_scheduler
        self.workdir = plane.workdir / "training-operator"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.webhook_port, self.probe_port, self.metrics_port = free_port(), free_port(), free_port()
        self.server: Server | None = None

    def _seed_certificates(self) -> bytes:
        return seed_rotator_certificates(
            self.kube,
            namespace=self.NAMESPACE,
            secret=self.SECRET,
            service=self.SERVICE,
            ca_name="training-operator-ca",
            folder=self.workdir / "k8s-webhook-server" / "serving-certs",
        )

    def _webhook_configuration(self, ca_pem: bytes) -> dict[str, Any]:
        (doc,) = [
            d
            for d in yaml_documents([_testbin(TRAINING_WEBHOOKS) / "manifests.yaml"])
            if d["kind"] == "ValidatingWebhookConfiguration"
        ]
        # The module's kustomize patch names the configuration; the operator looks it up by that name.
        doc["metadata"] = {"name": self.WEBHOOK_CONFIGURATION}
        return served_at(doc, port=self.webhook_port, ca_pem=ca_pem)

    def start(self) -> None:
        _namespace(self.kube, self.NAMESPACE)
        ca_pem = self._seed_certificates()
        self.kube.delete(VALIDATING_WEBHOOKS, self.WEBHOOK_CONFIGURATION, ignore_missing=True)
        self.kube.create(VALIDATING_WEBHOOKS, self._webhook_configuration(ca_pem))
        private = self.workdir / "k8s-webhook-server"
        private.mkdir(exist_ok=True)
        argv = [
            binaries.path_of("training-operator"),
            f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
            f"--health-probe-bind-address=127.0.0.1:{self.probe_port}",
            f"--webhook-server-port={self.webhook_port}",
            f"--webhook-service-name={self.SERVICE}",
            f"--webhook-secret-name={self.SECRET}",
            "--controller-threads=4",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            *(f"--enable-scheme={s}" for s in self.schemes),
            *([f"--gang-scheduler-name={self.gang_scheduler}"] if self.gang_scheduler else []),
        ]
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "KUBECONFIG": str(self.plane.kubeconfig),
            "MY_POD_NAMESPACE": self.NAMESPACE,
            "MY_POD_NAME": "training-operator-0",
        }
        self.server = Server(
            "training-operator",
            isolated(argv, private=private, fixed="/tmp/k8s-webhook-server"),
            log_dir=self.plane.workdir,
            env=env,
        )
        # Ready once the certificates are in place and the webhook server listens (upstream's readyz).
        self.server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{self.probe_port}/readyz"), timeout=120)
        self.server.wait_ready(lambda: tls_answers(self.webhook_port, ca_pem), timeout=60)

    def stop(self) -> None:
        # The webhooks go first: with the operator gone they would refuse every job (failurePolicy Fail).
        self.kube.delete(VALIDATING_WEBHOOKS, self.WEBHOOK_CONFIGURATION, ignore_missing=True)
        if self.server is not None:
            self.server.stop()
            self.server = None


class MPIOperator:
    """mpi-operator v0.6.0 (MPIJob kubeflow.org/v2beta1); needs that CRD installed before it starts.

    Its leader-election health check listens on the fixed port 8080 (cmd/mpi-operator/app/server.go,
    ``healthCheckPort``) on every address, and it exits when the port is taken. Two test runs on one
    machine therefore take turns: the operator runs while this process holds an exclusive lock on
    :data:`PORT_LOCK`. It is ready once it holds its leader Lease.
    """

    LOCK_NAMESPACE = "mpi-operator"
    PORT_LOCK = Path(tempfile.gettempdir()) / "kaip-testbed-mpi-operator-8080.lock"

    def __init__(self, plane: ControlPlane, kube: Kube, *, gang_scheduler: str | None = None) -> None:
        """``gang_scheduler``: the operator's ``--gang-scheduling`` (a PodGroup per job)."""
        self.plane, self.kube, self.gang_scheduler = plane, kube, gang_scheduler
        self.server: Server | None = None
        self._lock: IO[bytes] | None = None

    def _leader(self) -> bool:
        leases = self.kube.list(LEASES, namespace=self.LOCK_NAMESPACE).get("items") or []
        return any((lease.get("spec") or {}).get("holderIdentity") for lease in leases)

    def start(self, *, timeout: float = 300.0) -> None:
        _namespace(self.kube, self.LOCK_NAMESPACE)
        self._lock = self.PORT_LOCK.open("ab")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.PORT_LOCK} held by another test run for {timeout:.0f}s"
                    ) from None
                time.sleep(0.5)
        self.server = Server(
            "mpi-operator",
            [
                binaries.path_of("mpi-operator"),
                f"--kubeConfig={self.plane.kubeconfig}",
                f"--lock-namespace={self.LOCK_NAMESPACE}",
                "--threadiness=4",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                *([f"--gang-scheduling={self.gang_scheduler}"] if self.gang_scheduler else []),
            ],
            log_dir=self.plane.workdir,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        self.server.wait_ready(self._leader, timeout=90)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


# -- a whole Kubeflow cluster shape ------------------------------------------------------------------
KWOK_LOGS_CRD = "kwok-crds/kwok.x-k8s.io_logs.yaml"
#: The two shapes a cluster can have: which operator serves MPIJob, and its API version.
SHAPES = {"training-operator": MPI_V1, "mpi-operator": MPI_V2BETA1}


class KubeflowBed:
    """One cluster shape, whole: the upstream CRDs, training-operator (and mpi-operator for the
    ``mpi-operator`` shape, with training-operator's MPI scheme off), GPU nodes run by a kwok that
    serves Pod logs, ready for :class:`kaip_testbed.trainingpods.TrainingPods` to run the Pods.
    """

    def __init__(
        self,
        plane: ControlPlane,
        kube: Kube,
        *,
        shape: str,
        nodes: Sequence[Any],
        gang_scheduler: str | None = None,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}")
        self.plane, self.kube, self.shape, self.nodes = plane, kube, shape, list(nodes)
        self.mpi_version = SHAPES[shape]
        schemes = SCHEMES if shape == "training-operator" else tuple(s for s in SCHEMES if s != "mpijob")
        self.training = TrainingOperator(plane, kube, schemes=schemes, gang_scheduler=gang_scheduler)
        self.mpi = (
            MPIOperator(plane, kube, gang_scheduler=gang_scheduler) if shape == "mpi-operator" else None
        )
        self.crds: list[str] = []
        self.kwok_name = f"kwok-kubeflow-{shape}"

    def start(self) -> None:
        from kaip_testbed import gpu_nodes

        logs_crd = yaml_documents([_testbin(KWOK_LOGS_CRD)])
        install_crds(self.kube, logs_crd)
        self.crds = install_crds(self.kube, crd_documents(mpi=self.mpi_version))
        self.training.start()
        if self.mpi is not None:
            self.mpi.start()
        kwok_names = {n.kwok for n in self.nodes}
        assert len(kwok_names) == 1, "one kwok runs the bed's nodes"
        self.plane.start_log_kwok(
            self.kwok_name,
            node_annotation=kwok_names.pop(),
            log_objects=True,
            pod_start_delay_ms=1000,
            # mpi-operator's launcher is a batch Job's Pod: the stand-in runs it, kwok must not end it.
            without_stages=("pod-complete",),
        )
        for node in self.nodes:
            self.kube.delete(kinds.NODES, node.name, ignore_missing=True)
        gpu_nodes.create(self.kube, self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            self.kube.delete(kinds.NODES, node.name, ignore_missing=True)
        server = self.plane.servers.pop(self.kwok_name, None)
        if server is not None:
            server.stop()
        if self.mpi is not None:
            self.mpi.stop()
        self.training.stop()
        if self.crds:
            remove_crds(self.kube, self.crds)
