"""The data-loader controller and a kubelet stand-in for its loader Pods, for the tests.

No kubelet runs on the test bed: :class:`Kubelet` stands in for one. It takes each loader Pod the Job
controller creates, runs the command of its container with the env the Pod would get (Secret
references resolved, a kubeconfig for the Pod's ServiceAccount in place of the mounted token), with a
directory standing for the mounted PVC, and writes the Pod's status and termination message as a
kubelet would. :class:`ControllerProcess` runs ``kaip-controller`` as a subprocess under the identity
of its ServiceAccount with the ClusterRole of manifests/data-loader/rbac.yaml.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip.resources.kinds import Resource
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.processes import free_port, terminate

RBAC_FILE = Path(__file__).parents[3] / "manifests" / "data-loader" / "rbac.yaml"
POLICY_FILE = RBAC_FILE.with_name("policy.yaml")
CONTROLLER_USER = "system:serviceaccount:kaip-system:kaip-data-loader-controller"
CLUSTERROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)
CLUSTERROLEBINDINGS = Resource(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
POLICIES = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "validatingadmissionpolicies",
    "ValidatingAdmissionPolicy",
    namespaced=False,
)
BINDINGS = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "validatingadmissionpolicybindings",
    "ValidatingAdmissionPolicyBinding",
    namespaced=False,
)
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
MOUNT = "/kaip/volume"


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def install_controller_rbac(admin_kube: Kube, plane: ControlPlane) -> tuple[Path, Callable[[], None]]:
    """The manifest's ClusterRole bound to the controller's user; its kubeconfig and an undo."""
    docs = [d for d in yaml.safe_load_all(RBAC_FILE.read_text()) if d]
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    name = f"kaip-data-loader-controller-test-{uuid.uuid4().hex[:8]}"
    role["metadata"]["name"] = name
    binding["metadata"]["name"] = name
    binding["roleRef"]["name"] = name
    binding["subjects"] = [{"kind": "User", "name": CONTROLLER_USER, "apiGroup": "rbac.authorization.k8s.io"}]
    admin_kube.create(CLUSTERROLES, role)
    admin_kube.create(CLUSTERROLEBINDINGS, binding)

    def undo() -> None:
        admin_kube.delete(CLUSTERROLEBINDINGS, name, ignore_missing=True)
        admin_kube.delete(CLUSTERROLES, name, ignore_missing=True)

    kubeconfig = plane.user_kubeconfig(
        CONTROLLER_USER, groups=("system:serviceaccounts", "system:serviceaccounts:kaip-system")
    )
    return kubeconfig, undo


def grant_lease(admin_kube: Kube, namespace: str) -> None:
    """The manifest's leader-election Role, in the test's namespace (where the test's Lease lives)."""
    docs = [d for d in yaml.safe_load_all(RBAC_FILE.read_text()) if d]
    for doc in docs:
        if doc["kind"] in ("Role", "RoleBinding"):
            doc["metadata"]["namespace"] = namespace
            for subject in doc.get("subjects") or ():
                subject.clear()
                subject.update(kind="User", name=CONTROLLER_USER, apiGroup="rbac.authorization.k8s.io")
            admin_kube.create(ROLES if doc["kind"] == "Role" else ROLEBINDINGS, doc, namespace=namespace)


class ControllerProcess:
    def __init__(
        self, kubeconfig: Path, namespace: str, identity: str, log_dir: Path, *, args: Sequence[str] = ()
    ) -> None:
        self.identity = identity
        self.health_port = free_port()
        self.log = log_dir / f"controller-{identity}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from kaip_incluster.controller.main import main; sys.exit(main(sys.argv[1:]))",
                f"--kubeconfig={kubeconfig}",
                f"--watch-namespace={namespace}",
                f"--lease-namespace={namespace}",
                f"--identity={identity}",
                "--lease-duration=4",
                "--renew-deadline=3",
                "--retry-period=0.5",
                "--resync=5",
                f"--health-port={self.health_port}",
                *args,
            ],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        terminate(self.proc)


# -- the kubelet stand-in -------------------------------------------------------------------------
class Kubelet:
    """Runs loader Pods from their own spec; ``hold`` keeps them from starting until released."""

    def __init__(
        self,
        kube: Kube,
        control_plane: ControlPlane,
        volumes: Path,
        *,
        env: dict[str, str] | None = None,
        concurrent: bool = False,
    ) -> None:
        self.kube, self.control_plane, self.volumes = kube, control_plane, volumes
        #: Added to every Pod's environment: what the node would give (e.g. STORAGE_EMULATOR_HOST).
        self.env = dict(env or {})
        #: Run Pods side by side (each in its own thread), as nodes do; a Pod deleted while it runs
        #: has its process killed (SIGKILL), ends Failed with exit code 137, and is removed.
        self.concurrent = concurrent
        self.running: dict[str, subprocess.Popen[str]] = {}
        self.killed: set[str] = set()
        self._threads: list[threading.Thread] = []
        self.ran: list[str] = []
        self.hold = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.errors: list[BaseException] = []

    def volume(self, claim: str) -> Path:
        path = self.volumes / claim
        path.mkdir(parents=True, exist_ok=True)
        return path

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for proc in list(self.running.values()):
            proc.kill()
        for thread in self._threads:
            thread.join(30)
        assert not self.errors, f"the kubelet stand-in failed: {self.errors!r}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.hold.is_set():
                pods = self.kube.list(
                    kinds.PODS, label_selector="app.kubernetes.io/component=kaip-data-loader"
                )
                for pod in pods.get("items") or ():
                    name = pod["metadata"]["name"]
                    phase = (pod.get("status") or {}).get("phase")
                    deleted = bool(pod["metadata"].get("deletionTimestamp"))
                    proc = self.running.get(name)
                    if deleted and proc is not None and name not in self.killed:
                        self.killed.add(name)
                        proc.kill()
                    if name in self.ran or phase in ("Succeeded", "Failed") or deleted:
                        continue
                    self.ran.append(name)
                    if self.concurrent:
                        thread = threading.Thread(target=self._run_safely, args=(pod,), daemon=True)
                        self._threads.append(thread)
                        thread.start()
                    else:
                        self._run_safely(pod)
            self._stop.wait(0.3)

    def _run_safely(self, pod: dict[str, Any]) -> None:
        try:
            self.run(pod)
        except Exception as exc:
            self.errors.append(exc)

    def _env(self, pod: dict[str, Any], container: dict[str, Any], *, service_account: str) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **self.env}
        for item in container.get("env") or ():
            source = item.get("valueFrom") or {}
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "fieldRef" in source:
                env[item["name"]] = _field(pod, source["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = self.kube.get(kinds.SECRETS, ref["name"])
                data = secret.get("data") or {}
                if ref["key"] in data:
                    env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
                else:
                    assert ref.get("optional"), f"required key {ref['key']} missing"
        # The token the kubelet would mount for the Pod's ServiceAccount (TokenRequest), as a kubeconfig.
        answer = self.kube.request(
            "POST",
            kinds.SERVICEACCOUNTS.path(namespace=namespace, name=service_account, subresource="token"),
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            },
        )
        env["KUBECONFIG"] = str(
            self.control_plane.write_kubeconfig(f"loader-{namespace}", token=answer["status"]["token"])
        )
        return env

    def _secret_volume(self, pod: dict[str, Any], volume: str, source: dict[str, Any]) -> Path:
        """A Secret volume as the kubelet projects it: each item (or every key) a file."""
        directory = self.volumes / f"{pod['metadata']['name']}.{volume}"
        directory.mkdir(parents=True, exist_ok=True)
        data = self.kube.get(kinds.SECRETS, source["secretName"]).get("data") or {}
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            (directory / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))
        return directory

    def run(self, pod: dict[str, Any]) -> None:
        spec = pod["spec"]
        (container,) = spec["containers"]
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        }
        mounts = {
            m["mountPath"]: self.volume(claims[m["name"]])
            for m in container["volumeMounts"]
            if m["name"] in claims
        }
        secrets = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
        for m in container["volumeMounts"]:
            if m["name"] in secrets:
                mounts[m["mountPath"]] = self._secret_volume(pod, m["name"], secrets[m["name"]])
        termination = self.volumes / f"{pod['metadata']['name']}.termination-log"

        def host(arg: str) -> str:
            for mount_path, directory in mounts.items():
                arg = arg.replace(f"={mount_path}", f"={directory}")
            return arg.replace(f"={container['terminationMessagePath']}", f"={termination}")

        command = [*container["command"], *(host(a) for a in container.get("args") or ())]
        env = self._env(pod, container, service_account=spec["serviceAccountName"])
        for name, value in env.items():
            for mount_path, directory in mounts.items():
                if value.startswith(f"{mount_path}/"):
                    env[name] = f"{directory}{value[len(mount_path) :]}"
        started = now()
        name = pod["metadata"]["name"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.running[name] = proc
        try:
            _out, err = proc.communicate(timeout=300)
        finally:
            del self.running[name]
        code = 137 if name in self.killed else proc.returncode
        message = termination.read_text() if termination.exists() else err[-2000:]
        phase = "Succeeded" if code == 0 else "Failed"
        status = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Completed" if code == 0 else "Error",
                            "message": message,
                            "startedAt": started,
                            "finishedAt": now(),
                        }
                    },
                }
            ],
        }
        self.kube.patch(kinds.PODS, name, {"status": status}, subresource="status")
        if name in self.killed:  # what a kubelet does last for a deleted Pod: remove it at once
            self.kube.request(
                "DELETE",
                kinds.PODS.path(namespace=pod["metadata"]["namespace"], name=name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
            )


def _field(pod: dict[str, Any], path: str) -> str:
    """A Downward API ``fieldRef``: ``metadata.namespace``, ``metadata.name``, or one annotation or
    label (``metadata.annotations['batch.kubernetes.io/job-completion-index']``)."""
    meta = pod["metadata"]
    if path in ("metadata.namespace", "metadata.name"):
        return str(meta[path.split(".")[1]])
    for field in ("annotations", "labels"):
        prefix = f"metadata.{field}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str((meta.get(field) or {}).get(path[len(prefix) : -2], ""))
    raise AssertionError(f"fieldRef {path} is not one the kubelet stand-in knows")
