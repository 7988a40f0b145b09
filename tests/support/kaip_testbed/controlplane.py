"""A real Kubernetes control plane on 127.0.0.1: etcd and kube-apiserver with TLS and RBAC, and on
request kube-controller-manager, kube-scheduler and kwok (simulated nodes that run Pods)."""

from __future__ import annotations

import base64
import socket
import ssl
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kaip_testbed import binaries
from kaip_testbed.pki import CertificateAuthority, KeyPair, service_account_keys
from kaip_testbed.processes import Server, free_port

ADMISSION_PLUGINS = (
    "NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,"
    "MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,ResourceQuota,"
    "PodSecurity,Priority,NodeRestriction"
)


def kubeconfig_document(
    *,
    server: str,
    ca_pem: bytes,
    user: str,
    cert: KeyPair | None = None,
    token: str | None = None,
    context: str = "kaip-test",
    namespace: str | None = None,
) -> dict[str, Any]:
    creds: dict[str, str] = {}
    if cert is not None:
        creds["client-certificate-data"] = base64.b64encode(cert.cert_pem).decode()
        creds["client-key-data"] = base64.b64encode(cert.key_pem).decode()
    if token is not None:
        creds["token"] = token
    ctx: dict[str, str] = {"cluster": "kaip-test", "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kaip-test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
    }


@dataclass
class ControlPlane:
    """etcd + kube-apiserver; ``start_controllers()`` and ``start_kwok()`` add the rest."""

    workdir: Path
    servers: dict[str, Server] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pki_dir = self.workdir / "pki"
        self.ca = CertificateAuthority()
        self.ca_path, _ = self.ca.pair().write(self.pki_dir, "ca")
        self.port = free_port()
        self.server_url = f"https://127.0.0.1:{self.port}"
        self.etcd_url = ""  # set when etcd starts
        self.admin = self.ca.issue("kaip-admin", organizations=("system:masters",), client=True)
        self.kubeconfig = self.write_kubeconfig("admin", cert=self.admin)

    # -- kubeconfigs -----------------------------------------------------------------------------
    def write_kubeconfig(
        self,
        user: str,
        *,
        cert: KeyPair | None = None,
        token: str | None = None,
        namespace: str | None = None,
    ) -> Path:
        doc = kubeconfig_document(
            server=self.server_url,
            ca_pem=self.ca.cert_pem,
            user=user,
            cert=cert,
            token=token,
            namespace=namespace,
        )
        path = self.workdir / f"kubeconfig-{user}"
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path

    def user_kubeconfig(
        self, user: str, *, groups: tuple[str, ...] = (), namespace: str | None = None
    ) -> Path:
        """A kubeconfig for a user authenticated by a client certificate (no RBAC rights of its own)."""
        return self.write_kubeconfig(
            user, cert=self.ca.issue(user, organizations=groups, client=True), namespace=namespace
        )

    # -- processes -------------------------------------------------------------------------------
    def start(self) -> None:
        etcd_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd_dir = self.workdir / "etcd"
        self.servers["etcd"] = Server(
            "etcd",
            [
                binaries.path_of("etcd"),
                f"--data-dir={etcd_dir}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=8589934592",
                "--log-level=warn",
            ],
            log_dir=self.workdir,
        )
        serving = self.ca.issue(
            "kube-apiserver",
            hosts=(
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "10.0.0.1",
            ),
            server=True,
        )
        serving_crt, serving_key = serving.write(self.pki_dir, "apiserver")
        sa_pub, sa_key = service_account_keys().write(self.pki_dir, "sa")
        self.sa_key = sa_key
        self.servers["etcd"].wait_ready(lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"), timeout=60)
        self.servers["kube-apiserver"] = Server(
            "kube-apiserver",
            [
                binaries.path_of("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                f"--secure-port={self.port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--tls-cert-file={serving_crt}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={self.ca_path}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=Node,RBAC",
                f"--enable-admission-plugins={ADMISSION_PLUGINS}",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--max-requests-inflight=2000",
                "--max-mutating-requests-inflight=1000",
                "--endpoint-reconciler-type=none",
                "--v=1",
            ],
            log_dir=self.workdir,
        )
        self.servers["kube-apiserver"].wait_ready(self._ready, timeout=120)

    def _ready(self) -> bool:
        ctx = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        admin_crt, admin_key = self.admin.write(self.pki_dir, "admin")
        ctx.load_cert_chain(str(admin_crt), str(admin_key))
        with urllib.request.urlopen(f"{self.server_url}/readyz", context=ctx, timeout=5) as resp:
            return bool(resp.status == 200)

    def start_controllers(self, *, controllers: str = "*") -> None:
        """kube-controller-manager (Jobs, ReplicaSets, garbage collection, service accounts ...)."""
        if "kube-controller-manager" in self.servers:
            return
        self.servers["kube-controller-manager"] = Server(
            "kube-controller-manager",
            [
                binaries.path_of("kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--service-account-private-key-file={self.sa_key}",
                f"--root-ca-file={self.ca_path}",
                f"--controllers={controllers}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--use-service-account-credentials=false",
                "--concurrent-job-syncs=20",
                "--node-monitor-grace-period=3600s",
                "--v=1",
            ],
            log_dir=self.workdir,
        )
        self.servers["kube-scheduler"] = Server(
            "kube-scheduler",
            [
                binaries.path_of("kube-scheduler"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--v=1",
            ],
            log_dir=self.workdir,
        )

    def start_kwok(self) -> None:
        """kwok: Nodes annotated ``kwok.x-k8s.io/node: fake`` become Ready and run their Pods."""
        if "kwok" in self.servers:
            return
        self.servers["kwok"] = Server(
            "kwok",
            [
                binaries.path_of("kwok"),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={binaries.path_of('kwok-stages.yaml')}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.244.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
            log_dir=self.workdir,
        )

    def start_log_kwok(
        self,
        name: str,
        *,
        node_annotation: str,
        logs: Sequence[Mapping[str, Any]] = (),
        log_objects: bool = False,
        pod_start_delay_ms: int = 0,
        without_stages: Sequence[str] = (),
    ) -> None:
        """A further kwok that serves the kubelet API, so kube-apiserver's ``pods/log`` reaches it.

        It runs the Nodes annotated ``kwok.x-k8s.io/node: <node_annotation>`` and gives them the
        address 127.0.0.1 and its own port, where it answers over TLS (kube-apiserver does not check a
        kubelet's certificate unless told to). Container logs come from the files named by ``logs``:
        kwok ``Logs`` (one Pod: its metadata name and namespace) or ``ClusterLogs`` objects (the Pods
        of ``spec.selector``), whose ``spec.logs[].logsFile`` is in the CRI format
        ``<RFC3339Nano> stdout F <text>``, read when the log is asked for and followed.

        With ``log_objects`` it also reads kwok ``Logs`` objects from the API server (``--enable-crds``;
        the CRD from kwok's module must be installed first), so a test can point a Pod that exists only
        later at its log file. ``pod_start_delay_ms`` holds each Pod that long before kwok reports it
        Running (as pulling an image would), time for such a test to do so. ``without_stages`` leaves
        out kwok stages by name (``pod-complete`` ends every Pod a Job owns at once, where a test's
        kubelet stand-in should run it).
        """
        if name in self.servers:
            raise RuntimeError(f"{name} is running already")
        port = free_port()
        crt, key = self.ca.issue("kwok-kubelet", hosts=("127.0.0.1",), server=True).write(self.pki_dir, name)
        config = self.workdir / f"{name}.yaml"
        stages = [
            d
            for d in yaml.safe_load_all(Path(binaries.path_of("kwok-stages.yaml")).read_text())
            if d and (d.get("metadata") or {}).get("name") not in without_stages
        ]
        for stage in stages:
            if pod_start_delay_ms and (stage.get("metadata") or {}).get("name") == "pod-ready":
                stage["spec"]["delay"] = {"durationMilliseconds": pod_start_delay_ms}
        config.write_text(yaml.safe_dump_all([*stages, *logs]))
        self.servers[name] = Server(
            name,
            [
                binaries.path_of("kwok"),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={config}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node={node_annotation}",
                "--node-lease-duration-seconds=40",
                "--cidr=10.245.0.0/16",
                "--node-ip=127.0.0.1",
                f"--node-port={port}",
                f"--server-address=127.0.0.1:{port}",
                f"--tls-cert-file={crt}",
                f"--tls-private-key-file={key}",
                *(["--enable-crds=Logs"] if log_objects else []),
            ],
            log_dir=self.workdir,
        )
        self.servers[name].wait_ready(lambda: _port_open(port), timeout=60)

    def compact_etcd(self) -> int:
        """Compact etcd's history up to now (kube-apiserver does so every 5 minutes): a watch from an
        older resourceVersion is then answered 410 Gone, as on a busy cluster. Returns the revision."""
        import json
        import urllib.request

        def call(path: str, body: dict[str, object]) -> dict[str, object]:
            request = urllib.request.Request(
                f"{self.etcd_url}/v3/{path}", data=json.dumps(body).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                found: dict[str, object] = json.loads(answer.read())
                return found

        header = call("kv/range", {"key": "AA==", "limit": 1})["header"]
        revision = int(header["revision"])  # type: ignore[index]
        call("kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def stop(self) -> None:
        for name in [n for n in self.servers if n.startswith("kwok-")]:
            self.servers.pop(name).stop()
        for name in ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            server = self.servers.pop(name, None)
            if server is not None:
                server.stop()


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


def start(workdir: Path | None = None) -> ControlPlane:
    plane = ControlPlane(workdir or Path(tempfile.mkdtemp(prefix="kaip-cp-")))
    try:
        plane.start()
    except BaseException:
        plane.stop()
        raise
    return plane
