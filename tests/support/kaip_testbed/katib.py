"""Katib in the test bed: the real ``katib-controller`` (v0.19.0, built by hack/testbin.sh) against
kube-apiserver, with its own admission webhooks, and a stand-in for the one container it rewrites.

:class:`KatibController` installs Katib's upstream CRDs (``katib-manifests/`` next to the binaries,
copied from the same module version), puts kaip's ``manifests/katib/katib-config.yaml`` unchanged in
the ConfigMap ``kubeflow/katib-config`` (Katib reads its ``runtime`` section there: collector images,
suggestion and early-stopping settings), and starts the controller with an ``init`` section derived
from the same file: Katib's certificate generator off (it would write a Secret and patch the webhook
configurations for a Service that does not exist here), the webhook and health ports free ones, metrics
off, no leader election (``cmd/katib-controller/v1beta1/main.go``; ``pkg/apis/config/v1beta1``).
Katib's webhooks (Experiment defaulting and validation, Pod mutation) are registered from the upstream
``components/webhook/webhooks.yaml`` with each ``clientConfig`` turned into
``https://127.0.0.1:<port>/<path>`` and a CA this fixture makes.

The serving certificate is read from the fixed folder ``/tmp/cert`` (``consts.CertDir``). Two test runs
on one machine must not share that folder, so the controller runs in a mount namespace of its own:
``unshare --mount --propagation private`` then, inside, a bind mount of a private folder of this run on
``/tmp/cert`` and ``exec katib-controller``. The mount is seen by that process alone and goes with it;
on the host ``/tmp/cert`` is only an empty mount point (created if missing, never written).

Katib's services, optional (:class:`KatibServices`): the DB manager (``katib-db-manager``, PostgreSQL
behind it, see :mod:`kaip_testbed.postgres`) and a suggestion service (Katib's goptuna service, which
serves ``random``, ``tpe``, ``cmaes`` and ``sobol``). Katib calls both by cluster DNS names on the fixed
port 6789: ``katib-db-manager.kubeflow:6789`` (``GetDBManagerAddr``) and, for an Experiment's Suggestion,
``<experiment>-<algorithm>.<namespace>:6789`` (``GetAlgorithmEndpoint``, once the suggestion Deployment
it creates is Available: kube-controller-manager and kwok make it so). Here they listen on 127.0.0.2:6789
and 127.0.0.3:6789, and the controller's mount namespace has a private ``/etc/hosts`` that maps the
names there (Katib's binaries are built with CGO_ENABLED=0: Go's resolver reads ``/etc/hosts`` first,
as ``/etc/nsswitch.conf`` says). :meth:`KatibServices.route` adds an Experiment's suggestion name, as
the cluster's DNS would serve its Service. Port 6789 on those addresses is one per machine: a run holds
an exclusive lock on :data:`PORT_LOCK` while its services run, and another run waits.

Without the services, :meth:`KatibController.suggest` stands in for a suggestion service: it writes the
assignments into the Suggestion's status, as the Suggestion controller does with what ``GetSuggestions``
returns, and Katib's Experiment controller makes Trials of them. The Trial controller's finalizer
(``clean-metrics-in-db``) would then call the DB manager forever, so :meth:`KatibController.release`
deletes Experiments and Trials and removes their finalizers.

The metrics collector is a sidecar (``metrics-logger-and-collector``) that Katib's Pod webhook adds to
a trial's primary Pod, with ``shareProcessNamespace``: Katib's ``file-metricscollector`` finds the
training container's shell among the processes whose parent is outside the Pod's PID namespace, waits
for it to end, checks the completion marker ``/tmp/hypertune/<pid>.pid`` and reports the metrics file
to the DB manager (``pkg/metricscollector/v1beta1/common/pns.go``). :func:`collector_sandbox` makes
that true on this host for :class:`kaip_testbed.trainingpods.TrainingPods`: a PID and mount namespace
per Pod (``unshare --pid --fork --mount-proc``; its first process stands for the pause container)
with private folders on ``/tmp/hypertune`` and ``/etc/hosts``, the training command and the real
collector both entered into it (``nsenter``).

:func:`katib_rewrite` is what Katib's Pod webhook does to a primary container, written from its source
(``pkg/webhook/v1beta1/pod/utils.go`` ``wrapWorkerContainer``), for unit tests; the integration test
compares it with the real webhook's Pods. :func:`run_container` runs a container's command on this
host as its kubelet would start it (``$(VAR)`` expanded), with a recording ``python``.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import yaml

from kaip.aiplatform.katib import INJECTION_LABEL
from kaip.kube.client import Kube
from kaip.kube.errors import ApiError, Conflict, Invalid, NotFound
from kaip.resources import kinds
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import Resource
from kaip_testbed import binaries
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.kubeflow import (
    CRDS,
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
from kaip_testbed.postgres import Postgres
from kaip_testbed.processes import Server, free_port

ROOT = Path(__file__).resolve().parents[3]
KAIP_KATIB_CONFIG = ROOT / "manifests" / "katib" / "katib-config.yaml"
KATIB_MANIFESTS = "katib-manifests/manifests/v1beta1"
NAMESPACE = "kubeflow"
CONFIGMAP = "katib-config"
CERT_DIR = "/tmp/cert"  # Katib's fixed certificate folder (consts.CertDir)
SUGGESTIONS = Resource(kf.GROUP, "v1beta1", "suggestions", "Suggestion")
#: The completion marker folder of a File collector with kaip's metrics path.
MARKER_DIR = "/tmp/hypertune"
COLLECTOR_CONTAINER = "metrics-logger-and-collector"
HOSTS = "/etc/hosts"
SERVICE_PORT = 6789  # Katib's DB manager and suggestion services (consts.DefaultSuggestionPort)
DB_MANAGER_ADDRESS = "127.0.0.2"
SUGGESTION_ADDRESS = "127.0.0.3"
DB_MANAGER_NAME = f"katib-db-manager.{NAMESPACE}"
PORT_LOCK = Path(tempfile.gettempdir()) / "kaip-testbed-katib-6789.lock"


def manifests() -> Path:
    path = binaries.folder(need=("katib-controller",)) / KATIB_MANIFESTS
    if not path.is_dir():
        raise binaries.BinariesMissing(f"{path} is missing: run hack/testbin.sh")
    return path


def crd_documents() -> list[dict[str, Any]]:
    """Katib's CRDs (Experiment, Trial, Suggestion) as upstream ships them."""
    docs: list[dict[str, Any]] = []
    for path in sorted((manifests() / "components" / "crd").glob("*.yaml")):
        docs += [d for d in yaml_documents([path]) if d["kind"] == "CustomResourceDefinition"]
    return docs


def webhook_documents(*, port: int, ca_pem: bytes, suffix: str) -> list[dict[str, Any]]:
    """Upstream's webhook configurations, served at ``https://127.0.0.1:<port>``, named for this run."""
    docs = yaml_documents([manifests() / "components" / "webhook" / "webhooks.yaml"])
    for doc in docs:
        doc["metadata"] = {"name": f"kaip-test-{suffix}.{doc['metadata']['name']}"}
        served_at(doc, port=port, ca_pem=ca_pem)
    return docs


def init_config(config: Mapping[str, Any], *, webhook_port: int, healthz_port: int) -> dict[str, Any]:
    """kaip's KatibConfig with the ``init`` settings a controller on this host needs."""
    out = copy.deepcopy(dict(config))
    init = out.setdefault("init", {})
    init["certGenerator"] = {"enable": False}
    controller = init.setdefault("controller", {})
    controller.update(
        webhookPort=webhook_port,
        healthzAddr=f"127.0.0.1:{healthz_port}",
        metricsAddr="0",  # controller-runtime: "0" serves no metrics
        enableLeaderElection=False,
    )
    return out


def isolated_controller(argv: Sequence[str], *, private: Path, hosts: Path | None = None) -> list[str]:
    """``argv`` in a mount namespace of its own, with ``private`` mounted on :data:`CERT_DIR` (and
    ``hosts``, when given, on ``/etc/hosts``)."""
    if hosts is not None:
        argv = ["sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", str(hosts), HOSTS, *argv]
    return isolated(argv, private=private, fixed=CERT_DIR)


def _accepts(address: str) -> bool:
    with socket.create_connection((address, SERVICE_PORT), timeout=1):
        return True


class KatibServices:
    """Katib's DB manager (PostgreSQL behind it) and goptuna suggestion service on 127.0.0.2/.3:6789,
    and the private hosts file that names them; ``start``/``stop``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.hosts = workdir / "hosts"
        self.postgres = Postgres()
        self.servers: list[Server] = []
        self._lock: IO[bytes] | None = None

    def start(self, *, timeout: float = 300.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hosts.write_text(f"127.0.0.1 localhost\n{DB_MANAGER_ADDRESS} {DB_MANAGER_NAME}\n")
        self._lock = PORT_LOCK.open("ab")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{PORT_LOCK} held by another test run for {timeout:.0f}s") from None
                time.sleep(0.5)
        self.postgres.start()
        env = {
            "PATH": "/usr/bin:/bin",
            "DB_NAME": "postgres",
            "DB_USER": self.postgres.name,
            "DB_PASSWORD": "unused",  # trust authentication; an empty one would end libpq's option text
            "KATIB_POSTGRESQL_DB_HOST": "127.0.0.1",
            "KATIB_POSTGRESQL_DB_PORT": str(self.postgres.port),
            "KATIB_POSTGRESQL_DB_DATABASE": self.postgres.name,
        }
        listen = f"--listen-address={DB_MANAGER_ADDRESS}:{SERVICE_PORT}"
        db = Server(
            "katib-db-manager", [binaries.path_of("katib-db-manager"), listen], log_dir=self.workdir, env=env
        )
        self.servers.append(db)
        listen = f"--listen-address={SUGGESTION_ADDRESS}:{SERVICE_PORT}"
        suggestion = Server(
            "katib-suggestion-goptuna",
            [binaries.path_of("katib-suggestion-goptuna"), listen],
            log_dir=self.workdir,
            env={"PATH": "/usr/bin:/bin"},
        )
        self.servers.append(suggestion)
        suggestion.wait_ready(lambda: _accepts(SUGGESTION_ADDRESS), timeout=30)
        # The DB manager pings PostgreSQL first on a 5-second ticker (common.OpenSQLConn).
        db.wait_ready(lambda: _accepts(DB_MANAGER_ADDRESS), timeout=60)

    def route(self, namespace: str, experiment: str, algorithm: str) -> None:
        """What cluster DNS does for the suggestion Service Katib creates for ``experiment``. Appended
        in place: the file is bind-mounted, a new file would not be seen."""
        with self.hosts.open("a") as hosts:
            hosts.write(f"{SUGGESTION_ADDRESS} {experiment}-{algorithm}.{namespace}\n")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {s.name}\n{s.log_tail(lines)}" for s in self.servers)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers = []
        self.postgres.stop()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def _probe_experiment() -> dict[str, Any]:
    """A small valid Experiment (a batch Job trial, Katib's default StdOut collector)."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "probe", "image": "busybox", "command": ["echo", "${trialParameters.x}"]}
                    ],
                }
            }
        },
    }
    return {
        "apiVersion": kf.EXPERIMENTS.api_version,
        "kind": kf.EXPERIMENTS.kind,
        "metadata": {"name": "probe"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "m"},
            "algorithm": {"algorithmName": "random"},
            "parameters": [
                {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
            ],
            "trialTemplate": {
                "primaryContainerName": "probe",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": job,
            },
        },
    }


class KatibController:
    """katib-controller with its webhooks served to kube-apiserver on 127.0.0.1; ``start``/``stop``."""

    def __init__(self, plane: ControlPlane, kube: Kube, *, services: KatibServices | None = None) -> None:
        self.plane, self.kube, self.services = plane, kube, services
        self.suffix = uuid.uuid4().hex[:6]
        self.workdir = plane.workdir / f"katib-{self.suffix}"
        self.webhook_port, self.healthz_port = free_port(), free_port()
        self.config = yaml.safe_load(KAIP_KATIB_CONFIG.read_text())
        self.server: Server | None = None
        self.webhooks: list[tuple[Resource, str]] = []
        self.installed_crds: list[str] = []
        self.probe_namespace = f"katib-probe-{self.suffix}"

    # -- start -----------------------------------------------------------------------------------
    def start(self) -> None:
        docs = crd_documents()
        present = {d["metadata"]["name"] for d in docs if self._crd_exists(d["metadata"]["name"])}
        install_crds(self.kube, docs)  # replaces what another fixture installed by upstream's
        self.installed_crds = [d["metadata"]["name"] for d in docs if d["metadata"]["name"] not in present]
        with contextlib.suppress(Conflict):
            self.kube.create(kinds.NAMESPACES, {"metadata": {"name": NAMESPACE}})
        self.kube.delete(kinds.CONFIGMAPS, CONFIGMAP, namespace=NAMESPACE, ignore_missing=True)
        self.kube.create(
            kinds.CONFIGMAPS,
            {"metadata": {"name": CONFIGMAP}, "data": {"katib-config.yaml": KAIP_KATIB_CONFIG.read_text()}},
            namespace=NAMESPACE,
        )
        ca = CertificateAuthority("katib-test-ca")
        private = self.workdir / "cert"
        ca.issue("katib-controller", hosts=("127.0.0.1",), server=True).write(private, "tls")
        config_file = self.workdir / "katib-config.yaml"
        config_file.write_text(
            yaml.safe_dump(
                init_config(self.config, webhook_port=self.webhook_port, healthz_port=self.healthz_port)
            )
        )
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "KUBECONFIG": str(self.plane.kubeconfig),
            "KATIB_CORE_NAMESPACE": NAMESPACE,
        }
        argv = [binaries.path_of("katib-controller"), f"--katib-config={config_file}"]
        self.server = Server(
            f"katib-controller-{self.suffix}",
            isolated_controller(
                argv, private=private, hosts=self.services.hosts if self.services is not None else None
            ),
            log_dir=self.workdir,
            env=env,
        )
        # readyz answers once the webhook server listens, which Katib starts after registering them.
        self.server.wait_ready(lambda: http_ok(f"http://127.0.0.1:{self.healthz_port}/readyz"), timeout=120)
        self.server.wait_ready(lambda: tls_answers(self.webhook_port, ca.cert_pem), timeout=30)
        for doc in webhook_documents(port=self.webhook_port, ca_pem=ca.cert_pem, suffix=self.suffix):
            resource = MUTATING_WEBHOOKS if doc["kind"] == MUTATING_WEBHOOKS.kind else VALIDATING_WEBHOOKS
            self.kube.create(resource, doc)
            self.webhooks.append((resource, doc["metadata"]["name"]))
        self._wait_webhooks_in_effect()

    def _crd_exists(self, name: str) -> bool:
        try:
            self.kube.get(CRDS, name)
        except NotFound:
            return False
        return True

    def _wait_webhooks_in_effect(self) -> None:
        """kube-apiserver loads new webhook configurations a moment later: probe both through it."""
        self.kube.create(kinds.NAMESPACES, {"metadata": {"name": self.probe_namespace}})
        probe = self.kube.with_namespace(self.probe_namespace)

        def refused_for_label() -> bool:
            try:
                probe.create(kf.EXPERIMENTS, _probe_experiment(), dry_run=True)
            except Invalid as err:
                return "lacks label" in err.message
            return False

        wait_until(refused_for_label, "Katib's Experiment validation webhook to be called")
        self.kube.patch(
            kinds.NAMESPACES, self.probe_namespace, {"metadata": {"labels": {INJECTION_LABEL: "enabled"}}}
        )

        def defaulted() -> bool:
            try:
                answer = probe.create(kf.EXPERIMENTS, _probe_experiment(), dry_run=True)
            except Invalid:
                return False  # the webhook's namespace cache has not seen the label yet
            return bool(answer["spec"].get("resumePolicy") == "Never")

        wait_until(defaulted, "Katib's Experiment defaulting webhook to be called")

    def log_tail(self, lines: int = 60) -> str:
        text = self.server.log_tail(lines) if self.server is not None else ""
        if self.services is not None:
            text += "\n" + self.services.log_tail(lines // 2)
        return text

    # -- the suggestion service's part -------------------------------------------------------------
    def suggest(
        self,
        namespace: str,
        experiment: str,
        assignments: Sequence[Mapping[str, str]],
        *,
        early_stopping_rules: Sequence[Mapping[str, Any]] = (),
        timeout: float = 60.0,
    ) -> list[str]:
        """Give the Experiment's Suggestion these assignments, as its suggestion service would; the
        trial names (``<experiment>-<8 letters>``, as Katib's Suggestion controller names them)."""
        kube = self.kube.with_namespace(namespace)
        wait_until(
            lambda: self._exists(kube, SUGGESTIONS, experiment), f"Suggestion {experiment}", timeout=timeout
        )
        names = [f"{experiment}-{uuid.uuid4().hex[:8]}" for _ in assignments]
        status = {
            "suggestionCount": len(names),
            "suggestions": [
                {
                    "name": name,
                    "parameterAssignments": [{"name": k, "value": v} for k, v in values.items()],
                    **(
                        {"earlyStoppingRules": [dict(r) for r in early_stopping_rules]}
                        if early_stopping_rules
                        else {}
                    ),
                }
                for name, values in zip(names, assignments, strict=True)
            ],
        }
        kube.patch(SUGGESTIONS, experiment, {"status": status}, subresource="status")
        return names

    @staticmethod
    def _exists(kube: Kube, resource: Resource, name: str) -> bool:
        try:
            kube.get(resource, name)
        except NotFound:
            return False
        return True

    @classmethod
    def _missing(cls, kube: Kube, resource: Resource, name: str) -> bool:
        return not cls._exists(kube, resource, name)

    # -- stop --------------------------------------------------------------------------------------
    def release(self, namespace: str | None = None, *, timeout: float = 60.0) -> None:
        """Delete the Experiments, then the Trials, of ``namespace`` (all when None), finalizers
        removed. Experiments first: while one exists, its controller makes again the Trials its
        Suggestion lists."""
        for resource in (kf.EXPERIMENTS, kf.TRIALS):
            gone: list[tuple[Kube, str]] = []
            for item in self.kube.list(resource, namespace=namespace, all_namespaces=namespace is None)[
                "items"
            ]:
                kube, name = self.kube.with_namespace(item["metadata"]["namespace"]), item["metadata"]["name"]
                kube.delete(resource, name, ignore_missing=True)
                with contextlib.suppress(NotFound):
                    kube.patch(resource, name, {"metadata": {"finalizers": None}})
                gone.append((kube, name))
            for kube, name in gone:
                what = f"{resource.kind} {kube.namespace}/{name} to go"
                wait_until(partial(self._missing, kube, resource, name), what, timeout=timeout)

    def stop(self) -> None:
        # The webhooks go first: with the controller gone they would refuse (failurePolicy Fail).
        for resource, name in self.webhooks:
            self.kube.delete(resource, name, ignore_missing=True)
        self.webhooks = []
        if self.server is not None:
            self.server.stop()
            self.server = None
        with contextlib.suppress(ApiError):
            self.release()
        self.kube.delete(kinds.NAMESPACES, self.probe_namespace, ignore_missing=True)
        self.kube.delete(kinds.CONFIGMAPS, CONFIGMAP, namespace=NAMESPACE, ignore_missing=True)
        if self.installed_crds:
            remove_crds(self.kube, self.installed_crds)


# -- what Katib's Pod webhook does to a primary container, and running it ------------------------------
def katib_rewrite(
    container: Mapping[str, Any], *, marker_dir: str = MARKER_DIR, early_stopping: bool = False
) -> dict[str, Any]:
    """The primary container as Katib v0.19.0's Pod webhook leaves it with a File collector, for a
    container with a ``command`` (``wrapWorkerContainer``, ``getEarlyStoppingCommand``,
    ``getMarkCompletedCommand`` of pkg/webhook/v1beta1/pod/utils.go; ``$$$$`` is kubelet's ``$$``)."""
    words = [*container["command"], *(container.get("args") or ())]
    command = ["sh", "-c"]
    if words[0] in ("sh", "bash") and words[1] == "-c":
        command, words = words[:2], words[2:]
    if early_stopping:
        words += [
            "||",
            f"if test -f {marker_dir}/$$$$.pid && [ $(head -n 1 {marker_dir}/$$.pid) = early-stopped ]; "
            "then echo Training Container was Early Stopped; "
            "else echo Training Container was Failed; exit 1; fi",
        ]
    words += ["&&", f"echo completed > {marker_dir}/$$$$.pid"]
    return {**container, "command": command, "args": [" ".join(words)]}


def kubelet_expand(text: str, env: Mapping[str, str]) -> str:
    """kubelet's expansion of a command or argument: ``$$`` is ``$``, ``$(NAME)`` the value of a
    defined variable and itself otherwise, any other ``$`` itself (Kubernetes
    third_party/forked/golang/expansion/expand.go)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
        elif text[i + 1] == "$":
            out.append("$")
            i += 2
        elif text[i + 1] == "(" and ")" in text[i + 2 :]:
            end = text.index(")", i + 2)
            name = text[i + 2 : end]
            out.append(env.get(name, f"$({name})"))
            i = end + 1
        else:
            out.append(text[i : i + 2])
            i += 2
    return "".join(out)


_PYTHON = f"""#!{sys.executable}
# The image's python, recording each call; `python -m pip ...` installs nothing.
import json, os, sys
with open(os.environ["KAIP_PYTHON_CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(0 if sys.argv[1:3] == ["-m", "pip"] else int(os.environ.get("KAIP_PYTHON_EXIT", "0")))
"""


@dataclass(frozen=True)
class Ran:
    """One container run on this host."""

    returncode: int
    output: str
    pid: int
    #: The arguments of every ``python`` the container ran, in order.
    python_calls: list[list[str]]
    #: The folder that stood for :data:`MARKER_DIR`.
    marker_dir: Path

    def marker(self) -> str | None:
        """What the shell wrote to its completion marker file (named by its PID), if anything."""
        path = self.marker_dir / f"{self.pid}.pid"
        return path.read_text() if path.exists() else None


def run_container(
    container: Mapping[str, Any], workdir: Path, *, python_exit: int = 0, timeout: float = 60.0
) -> Ran:
    """Run a container's command and args here as kubelet would start them: ``$(VAR)`` expanded with
    the container's plain ``env`` values, :data:`MARKER_DIR` standing as a folder of ``workdir``, a
    recording ``python`` (exiting ``python_exit``) first on ``PATH``."""
    workdir.mkdir(parents=True, exist_ok=True)
    bin_dir, markers, calls = workdir / "bin", workdir / "hypertune", workdir / "python-calls.jsonl"
    bin_dir.mkdir(exist_ok=True)
    markers.mkdir(exist_ok=True)
    calls.write_text("")
    stub = bin_dir / "python"
    stub.write_text(_PYTHON)
    stub.chmod(0o755)
    env = {e["name"]: str(e["value"]) for e in container.get("env") or () if "value" in e}
    argv = [
        kubelet_expand(word, env).replace(MARKER_DIR, str(markers))
        for word in [*container["command"], *(container.get("args") or ())]
    ]
    env.update(
        PATH=f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        KAIP_PYTHON_CALLS=str(calls),
        KAIP_PYTHON_EXIT=str(python_exit),
    )
    proc = subprocess.Popen(
        argv, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output, _ = proc.communicate(timeout=timeout)
    recorded = [json.loads(line) for line in calls.read_text().splitlines() if line]
    return Ran(proc.returncode, output, proc.pid, recorded, markers)


# -- a trial Pod's collector sidecar, run beside its training container ---------------------------------
def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class CollectorSandbox:
    """One trial Pod's PID and mount namespaces: its first process stands for the pause container; the
    training command and Katib's collector are entered into them (see the module's docstring)."""

    def __init__(self, pod: Mapping[str, Any], workdir: Path, *, hosts: Path, timeout: float = 90.0) -> None:
        self.pod, self.timeout = pod, timeout
        self.root = workdir / "katib-sandbox"
        self.hypertune = self.root / "hypertune"
        self.hypertune.mkdir(parents=True, exist_ok=True)
        ready = self.root / "ready"
        Path(MARKER_DIR).mkdir(parents=True, exist_ok=True)  # the mount point; never written on the host
        script = 'mount --bind "$1" "$2" && mount --bind "$3" "$4" && touch "$5" && exec sleep 86400'
        with (self.root / "sandbox.log").open("ab") as log:  # unshare's words when its child is killed
            self.pause = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount-proc", "--propagation", "private",
                 "sh", "-c", script, "sh", str(self.hypertune), MARKER_DIR, str(hosts), HOSTS, str(ready)],
                stdin=subprocess.DEVNULL, stderr=log, start_new_session=True,
            )  # fmt: skip
        wait_until(lambda: ready.exists() or self.pause.poll() is not None, "the Pod's sandbox", timeout=20)
        if self.pause.poll() is not None:
            raise RuntimeError(f"the Pod's sandbox exited with {self.pause.returncode}")
        (self.init_pid,) = _children(self.pause.pid)
        self.primary: subprocess.Popen[str] | None = None
        self.collector: subprocess.Popen[bytes] | None = None
        self.collector_log = self.root / f"{COLLECTOR_CONTAINER}.log"

    def _enter(self, argv: Sequence[str], cwd: Path) -> list[str]:
        # Entering a mount namespace moves to its root: --wd keeps the container's working folder.
        return ["nsenter", "-t", str(self.init_pid), "--pid", "--mount", f"--wd={cwd}", "--", *argv]

    def command(self, argv: list[str], env: Mapping[str, str]) -> list[str]:
        """The training container's command, expanded as kubelet does, run inside the sandbox."""
        return self._enter([kubelet_expand(word, env) for word in argv], self.root)

    def started(self) -> None:
        """Start the collector once the training shell runs inside: Katib's collector looks for it
        once, when it starts (a kubelet starts the Pod's containers in their order)."""
        wait_until(self._primary_inside, "the training container to start in its sandbox", timeout=20)
        (sidecar,) = [c for c in self.pod["spec"]["containers"] if c["name"] == COLLECTOR_CONTAINER]
        argv = [binaries.path_of("file-metricscollector"), *(sidecar.get("args") or ())]
        with self.collector_log.open("ab") as log:
            self.collector = subprocess.Popen(
                self._enter(argv, self.root),
                env={"PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _primary_inside(self) -> bool:
        """Whether the training shell runs inside (nsenter's child, not only nsenter)."""
        marker = f"echo completed > {MARKER_DIR}".encode()
        for child in (c for n in _nsenters(self.init_pid) for c in _children(n)):
            with contextlib.suppress(OSError):
                if marker in Path(f"/proc/{child}/cmdline").read_bytes():
                    return True
        return False

    def finish(self) -> dict[str, int]:
        """The collector's exit code once it has reported (or failed); the sandbox torn down."""
        code = 137
        try:
            if self.collector is not None:
                try:
                    code = self.collector.wait(self.timeout)
                except subprocess.TimeoutExpired:
                    self.collector.kill()
                    self.collector.wait()
        finally:
            # SIGKILL to the namespace's first process ends every process left in it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, 9)
            self.pause.wait(10)
        return {COLLECTOR_CONTAINER: code}

    def collector_output(self) -> str:
        return self.collector_log.read_text(errors="replace") if self.collector_log.exists() else ""


def _nsenters(init_pid: int) -> list[int]:
    """The ``nsenter`` processes (on the host side) whose target is ``init_pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            words = (entry / "cmdline").read_bytes().split(b"\0")
            if words[:3] == [b"nsenter", b"-t", str(init_pid).encode()]:
                found.append(int(entry.name))
    return found


class CollectorSandboxes:
    """The ``sandbox`` factory for :class:`kaip_testbed.trainingpods.TrainingPods`: a
    :class:`CollectorSandbox` for each Pod Katib gave a collector sidecar, None for the others."""

    def __init__(self, services: KatibServices) -> None:
        self.hosts = services.hosts
        self.made: list[CollectorSandbox] = []

    def __call__(self, pod: Mapping[str, Any], workdir: Path) -> CollectorSandbox | None:
        if COLLECTOR_CONTAINER not in [c["name"] for c in pod["spec"]["containers"]]:
            return None
        box = CollectorSandbox(pod, workdir, hosts=self.hosts)
        self.made.append(box)
        return box

    def collector_output(self) -> str:
        return "\n".join(box.collector_output() for box in self.made)
