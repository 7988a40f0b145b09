"""The credentials webhooks deployed into a test control plane (the tests, the benchmarks, the demo).

The manifests of ``manifests/webhooks`` are applied as they are, except that each webhook's
``clientConfig.service`` becomes ``url: https://127.0.0.1:PORT/<path>``, because the apiserver of the
test bed reaches no Service network. The server runs as its own process under the webhook's
ServiceAccount (a token from the TokenRequest API), in its self-managed CA mode, so the apiserver
trusts it only through the caBundle the server itself puts into the configurations.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_incluster.server.cabundle import MUTATING, VALIDATING
from kaip_testbed import binaries
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.processes import Server, free_port

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests" / "webhooks"
NAMESPACE = "kaip-system"
CONFIGURATIONS = ((VALIDATING, "kaip-credentials-validation"), (MUTATING, "kaip-credentials-injection"))
POLICY = "kaip-credentials-injected"
SERVICE_ACCOUNT_POLICY = "kaip-service-account-credentials-injected"
POLICIES = (POLICY, SERVICE_ACCOUNT_POLICY)


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, namespace: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [binaries.path_of("kubectl"), f"--kubeconfig={kubeconfig}"]
    if namespace:
        argv.append(f"--namespace={namespace}")
    return subprocess.run(
        [*argv, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def rendered(kubeconfig: Path, url: str) -> list[dict[str, Any]]:
    """``kubectl kustomize manifests/webhooks`` with the webhooks pointed at ``url``."""
    done = kubectl(kubeconfig, "kustomize", str(MANIFESTS))
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    for doc in docs:
        for hook in doc.get("webhooks") or []:
            path = hook["clientConfig"].pop("service")["path"]
            hook["clientConfig"]["url"] = url + path
    return docs


def service_account_token(kube: Kube, name: str = "kaip-webhook") -> str:
    path = kinds.SERVICEACCOUNTS.path(namespace=NAMESPACE, name=name, subresource="token")
    review = kube.request(
        "POST",
        path,
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 7200},
        },
    )
    return str(review["status"]["token"])


def _until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s (last error: {last!r})")


@dataclass
class Webhook:
    port: int
    url: str
    ca_pem: bytes
    server: Server
    sa_kubeconfig: Path
    workdir: Path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, context=self.ssl_context(), timeout=5) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()

    def log(self) -> str:
        return self.server.log_path.read_text(errors="replace")

    @contextlib.contextmanager
    def hung(self) -> Iterator[None]:
        """The server stops answering (SIGSTOP): the kernel still accepts connections, nothing replies,
        so the apiserver waits for the webhook's timeout. Resumed and ready again afterwards."""
        os.killpg(self.server.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self.server.proc.pid, signal.SIGCONT)
            self.server.wait_ready(lambda: self.get("/readyz")[0] == 200, timeout=60)

    @contextlib.contextmanager
    def killed(self) -> Iterator[None]:
        """The server crashes (SIGKILL): connections are refused. Started again afterwards on the same
        port with the same CA (the CA Secret is kept), and ready before the block's caller goes on."""
        self.server.kill()
        try:
            yield
        finally:
            self.server = Server(self.server.name, self.server.argv, log_dir=self.workdir, env=_server_env())
            self.server.wait_ready(lambda: self.get("/readyz")[0] == 200, timeout=60)


def server_argv(port: int, kubeconfig: Path, cert_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from kaip_incluster.server.main import main; sys.exit(main(sys.argv[1:]))",
        "--bind-address=127.0.0.1",
        f"--port={port}",
        f"--kubeconfig={kubeconfig}",
        f"--cert-dir={cert_dir}",
        f"--namespace={NAMESPACE}",
        "--tls-san=127.0.0.1",
        "--cert-reload-interval=0.5",
        *extra,
    ]


def _server_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def deploy(plane: ControlPlane, admin: Kube, workdir: Path) -> Webhook:
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    docs = rendered(plane.kubeconfig, url)
    done = kubectl(plane.kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    assert done.returncode == 0, done.stderr
    token = service_account_token(admin)
    sa_kubeconfig = plane.write_kubeconfig("kaip-webhook-sa", token=token)
    server = Server(
        "kaip-webhook",
        server_argv(port, sa_kubeconfig, workdir / "tls", "--self-managed-ca"),
        log_dir=workdir,
        env=_server_env(),
    )

    def ca_secret() -> bytes:
        secret = admin.get(kinds.SECRETS, "kaip-webhook-ca", namespace=NAMESPACE)
        return base64.b64decode(secret["data"]["tls.crt"])

    try:
        ca_pem = _until(ca_secret, "the CA Secret")
        hook = Webhook(port, url, ca_pem, server, sa_kubeconfig, workdir)
        server.wait_ready(lambda: hook.get("/readyz")[0] == 200, timeout=60)
        wanted = base64.b64encode(ca_pem).decode()
        for resource, name in CONFIGURATIONS:
            _until(
                lambda r=resource, n=name: all(
                    w["clientConfig"].get("caBundle") == wanted for w in admin.get(r, n)["webhooks"]
                ),
                f"caBundle of {name}",
            )
    except BaseException:
        server.stop()
        raise
    return hook


def undeploy(admin: Kube, hook: Webhook) -> None:
    hook.server.stop()
    policies = kinds.Resource(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        namespaced=False,
    )
    bindings = kinds.Resource(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        namespaced=False,
    )
    names = [(bindings, name) for name in POLICIES] + [(policies, name) for name in POLICIES]
    for resource, name in (*CONFIGURATIONS, *names):
        admin.delete(resource, name, ignore_missing=True)
