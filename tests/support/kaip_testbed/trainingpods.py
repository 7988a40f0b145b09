"""A kubelet stand-in for the Pods Kubeflow's operators create, so that their status transitions are
real and the command lines kaip renders are proven to run.

No kubelet runs on the test bed: kwok takes a Pod once kube-scheduler has bound it to a simulated node
and reports it Running (its ``pod-ready`` stage). :class:`TrainingPods` then does what the container
would: it runs the container's ``command`` and ``args`` on this host, with

* the container's plain ``env`` values, ``HOSTNAME`` set to the Pod's name (as in a container) and
  ``KAIP_TESTBED_TERMINATION_LOG`` naming the file that stands for ``terminationMessagePath`` (a
  program under test writes its termination message there instead of ``/dev/termination-log``);
* a folder of stand-ins first on ``PATH``: ``python`` runs this interpreter, except that
  ``python -m pip install ...`` succeeds without installing (the staged packages are on
  ``PYTHONPATH`` instead, as the image would have them after the install), and ``mpirun`` drops its
  options and runs the program once;
* ``PYTHONPATH`` set to the folder a test gives, which stands for the image's (or the staged
  package's) code.

The program's output goes to a CRI-format log file and a kwok ``Logs`` object points the Pod's
container at it (when the node is run by a kwok started with ``log_objects``), so ``pods/log``
serves it through kube-apiserver as a kubelet would. When the program ends, the Pod's status is
written as a kubelet writes it: phase, and the container's ``terminated`` state with its exit code,
reason and message (the termination file, or with ``FallbackToLogsOnError`` the log's tail when the
file is empty and the program failed).

A container with no ``command`` runs its image's entrypoint, which this host does not have, and an MPI
worker of mpi-operator runs ``/usr/sbin/sshd -De``: both are left Running, as a daemon would be.

Init containers are completed by kwok without running; the one whose effect a command relies on is
made good here: training-operator's ``kubectl-delivery`` (MPIJob v1) copies kubectl into the volume
``mpi-job-kubectl``, so that volume's mount path in the command is a folder with the test bed's
kubectl, which runs with a token of the Pod's ServiceAccount (TokenRequest), as in the Pod.

A Pod whose other containers must run beside the first (Katib's metrics collector sidecar) is given to
an optional ``sandbox`` factory: the :class:`Sandbox` it returns says how the first container's command
runs (in namespaces it shares with the others), starts the others once it runs, and gives their exit
codes once it has ended; the Pod's status then carries each container's own end.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from kaip.kube.client import Kube
from kaip.kube.errors import ApiError, Conflict, NotFound
from kaip.resources import kinds
from kaip.resources.kinds import Resource
from kaip_testbed.controlplane import ControlPlane

LOGS = Resource("kwok.x-k8s.io", "v1alpha1", "logs", "Logs")
JOB_LABEL = "training.kubeflow.org/job-name"
#: What kubelet keeps of a failed container's log as its message (pkg/kubelet/kuberuntime: the last
#: 80 lines, at most 2,048 bytes).
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048

_PYTHON_STUB = f"""#!/bin/sh
# The image's python: `python -m pip ...` installs nothing (the code is on PYTHONPATH already).
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then exit 0; fi
exec {sys.executable} "$@"
"""
_MPIRUN_STUB = """#!/bin/sh
# mpirun with every option dropped: the program runs once, in this process.
while [ $# -gt 0 ]; do
  case "$1" in
    -np|-n|-H|--host|-hostfile|--hostfile|-bind-to|--bind-to|-map-by|--map-by|-x|-mca|--mca) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
exec "$@"
"""


class Sandbox(Protocol):
    """What a Pod's containers share on its node, for a Pod with more containers to run than its first."""

    def command(self, argv: list[str], env: Mapping[str, str]) -> list[str]:
        """How the first container's ``argv`` runs (with its environment ``env``)."""
        ...

    def started(self) -> None:
        """The first container runs: start the others."""
        ...

    def finish(self) -> dict[str, int]:
        """The first container has ended: the others' exit codes by container name, all ended."""
        ...


#: A Pod and its working folder -> its :class:`Sandbox`, or None to run its first container alone.
SandboxFactory = Callable[[Mapping[str, Any], Path], "Sandbox | None"]


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cri_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


class TrainingPods:
    """Runs the Kubeflow Pods of one namespace as they become Running; a context manager."""

    def __init__(
        self,
        kube: Kube,
        plane: ControlPlane,
        *,
        namespace: str,
        workdir: Path,
        code: Path | None = None,
        timeout: float = 120.0,
        sandbox: SandboxFactory | None = None,
        label: str = JOB_LABEL,
    ) -> None:
        """``label``: the label the Pods to run carry (JobSet's for Kubeflow Trainer v2's Pods)."""
        self.kube, self.plane, self.namespace = kube, plane, namespace
        self.label = label
        self.sandbox = sandbox
        self.code, self.timeout = code, timeout
        self.workdir = workdir
        self.bin = workdir / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        for name, text in (("python", _PYTHON_STUB), ("python3", _PYTHON_STUB), ("mpirun", _MPIRUN_STUB)):
            stub = self.bin / name
            stub.write_text(text)
            stub.chmod(0o755)
        #: Pod name -> the argv it ran (command and args as the container had them).
        self.ran: dict[str, list[str]] = {}
        self.errors: list[BaseException] = []
        self._taken: set[str] = set()
        self._seen: set[str] = set()
        self._procs: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._workers: list[threading.Thread] = []

    def log_file(self, pod: str) -> Path:
        return self.workdir / "logs" / f"{pod}.log"

    def __enter__(self) -> TrainingPods:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        with self._lock:
            for proc in self._procs:  # the node goes away: what still runs is killed
                if proc.poll() is None:
                    proc.kill()
        for worker in self._workers:
            worker.join(self.timeout)
        assert not self.errors, f"the kubelet stand-in failed: {self.errors!r}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.kube.list(kinds.PODS, namespace=self.namespace, label_selector=self.label)
            except ApiError:
                pods = {}
            for pod in pods.get("items") or ():
                uid = pod["metadata"]["uid"]
                if uid not in self._seen and pod["spec"]["containers"][0].get("command"):
                    # A kubelet serves a container's log from its start: point kwok at the file first.
                    self._seen.add(uid)
                    self._point_logs(pod)
                status = pod.get("status") or {}
                if (
                    uid in self._taken
                    or status.get("phase") != "Running"
                    or pod["metadata"].get("deletionTimestamp")
                ):
                    continue
                self._taken.add(uid)
                worker = threading.Thread(target=self._run_guarded, args=(pod,), daemon=True)
                self._workers.append(worker)
                worker.start()
            self._stop.wait(0.3)

    def _run_guarded(self, pod: dict[str, Any]) -> None:
        try:
            self.run(pod)
        except (NotFound, Conflict):
            pass  # the operator deleted the Pod meanwhile (a cancelled job, a restart)
        except Exception as exc:
            self.errors.append(exc)

    def _env(self, pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.workdir),
            "HOSTNAME": pod["metadata"]["name"],
        }
        for item in container.get("env") or ():
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif (item.get("valueFrom") or {}).get("fieldRef"):
                path = item["valueFrom"]["fieldRef"]["fieldPath"]
                value: Any = pod
                keyed = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
                if keyed:  # a label or annotation by its key (JobSet's node rank is one)
                    value = (pod["metadata"].get(keyed[1]) or {}).get(keyed[2])
                for part in path.split(".") if not keyed else ():
                    value = (value or {}).get(part) if isinstance(value, Mapping) else None
                if value is not None:
                    env[item["name"]] = str(value)
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
        return env

    def _kubectl_volume(self, pod: Mapping[str, Any], folder: Path) -> Path:
        """The ``mpi-job-kubectl`` volume as kubectl-delivery leaves it, with the Pod's own identity."""
        from kaip_testbed import binaries

        folder.mkdir(parents=True, exist_ok=True)
        namespace = pod["metadata"]["namespace"]
        account = pod["spec"].get("serviceAccountName") or "default"
        answer = self.kube.request(
            "POST",
            kinds.SERVICEACCOUNTS.path(namespace=namespace, name=account, subresource="token"),
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        config = self.plane.write_kubeconfig(
            f"pod-{pod['metadata']['name']}", token=answer["status"]["token"], namespace=namespace
        )
        kubectl = folder / "kubectl"
        kubectl.write_text(f'#!/bin/sh\nexec {binaries.path_of("kubectl")} --kubeconfig {config} "$@"\n')
        kubectl.chmod(0o755)
        return folder

    def _host_paths(
        self, pod: Mapping[str, Any], container: Mapping[str, Any], root: Path
    ) -> dict[str, Path]:
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or ()}
        paths: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or ():
            if mount["name"] == "mpi-job-kubectl" and "emptyDir" in volumes.get(mount["name"], {}):
                paths[mount["mountPath"]] = self._kubectl_volume(pod, root / mount["name"])
        return paths

    def _point_logs(self, pod: Mapping[str, Any]) -> None:
        container = pod["spec"]["containers"][0]["name"]
        path = self.log_file(pod["metadata"]["name"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        obj = {
            "apiVersion": LOGS.api_version,
            "kind": LOGS.kind,
            "metadata": {"name": pod["metadata"]["name"]},
            "spec": {"logs": [{"containers": [container], "logsFile": str(path), "follow": True}]},
        }
        with contextlib.suppress(Conflict, NotFound):
            self.kube.create(LOGS, obj, namespace=self.namespace)

    def run(self, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]
        if not container.get("command") or Path(container["command"][0]).name == "sshd":
            return  # the image's own entrypoint, or the SSH daemon mpi-operator runs: it keeps running
        argv = [*container["command"], *(container.get("args") or ())]
        with self._lock:
            self.ran[name] = argv
        log = self.log_file(name)
        termination = self.workdir / f"{name}.termination-log"
        env = self._env(pod, container)
        env["KAIP_TESTBED_TERMINATION_LOG"] = str(termination)
        cwd = self.workdir / "pods" / name
        cwd.mkdir(parents=True, exist_ok=True)
        for mount_path, folder in self._host_paths(pod, container, cwd / "volumes").items():
            argv = [a.replace(f"{mount_path}/", f"{folder}/") for a in argv]
        box = self.sandbox(pod, cwd) if self.sandbox is not None else None
        if box is not None:
            argv = box.command(argv, env)
        started = now()
        others: dict[str, int] = {}
        try:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert proc.stdout is not None
            with self._lock:
                self._procs.append(proc)
            if box is not None:
                box.started()
            lines: list[str] = []
            deadline = time.monotonic() + self.timeout
            with log.open("a") as out:
                for line in proc.stdout:
                    text = line.rstrip("\n")
                    lines.append(text)
                    out.write(f"{_cri_stamp()} stdout F {text}\n")
                    out.flush()
                    if time.monotonic() > deadline:
                        proc.kill()
                        break
            code = proc.wait()
        finally:
            if box is not None:
                others = box.finish()
        message = termination.read_text() if termination.exists() else ""
        if not message and code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = "\n".join(lines[-FALLBACK_LINES:])[-FALLBACK_BYTES:]
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now(),
        }
        if message:
            terminated["message"] = message
        ended = now()

        def end_of(other: Mapping[str, Any]) -> dict[str, Any]:
            if other["name"] not in others:
                return terminated
            exit_code = others[other["name"]]
            reason = "Completed" if exit_code == 0 else "Error"
            return {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": ended}

        status = {
            "phase": "Succeeded" if code == 0 and not any(others.values()) else "Failed",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now()},
                {
                    "type": "ContainersReady",
                    "status": "False",
                    "reason": "PodCompleted",
                    "lastTransitionTime": now(),
                },
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"terminated": end_of(c)},
                }
                for c in pod["spec"]["containers"]
            ],
        }
        self.kube.patch(kinds.PODS, name, {"status": status}, namespace=self.namespace, subresource="status")
