"""A hyperparameter tuning job through Katib's own controller and webhooks (kaip_testbed.katib), driven
through the plugin only: ``kubectl-ai_platform jobs submit training`` run as a subprocess.

Proven here: kaip labels the namespace Katib needs and Katib's Experiment webhooks (defaulting and
validation) admit the Experiment; a user who may not label the namespace gets one line with the
command for an admin, and nothing is created; Katib's Experiment controller makes a Trial and its Trial
controller the TFJob; a trial Pod, created as training-operator creates it, is rewritten by Katib's
real Pod webhook into a command that, run on this host with ``sh`` and a recording ``python``, installs
the staged package, runs the module with the user's arguments (quotes and spaces intact) and the
trial's ``--NAME=VALUE``, and writes the completion marker Katib's metrics collector waits for.

Here the test stands in for the suggestion service (:meth:`KatibController.suggest` writes assignments
into the Suggestion's status) and stops at the trial container's run, to look at each step closely;
tests/integration/aiplatform/test_katib_experiment.py runs a whole Experiment with Katib's own
suggestion service, DB manager and metrics collector.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaip.aiplatform.katib import INJECTION_LABEL
from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import kinds
from kaip.resources import kubeflow as kf
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.katib import COLLECTOR_CONTAINER, KatibController, katib_rewrite, run_container

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kubeflow")]

HPTUNING = """
trainingInput:
  scaleTier: CUSTOM
  masterType: n1-standard-4
  workerType: n1-standard-4
  workerCount: 1
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    maxTrials: 4
    maxParallelTrials: 2
    enableTrialEarlyStopping: True
    params:
      - parameterName: first-layer-size
        type: INTEGER
        minValue: 50
        maxValue: 500
      - parameterName: optimizer
        type: CATEGORICAL
        categoricalValues: [sgd, adam]
"""
NOTE = 'it\'s a "quoted" note'
USER_ARGS = ["--train-steps", "1000", f"--note={NOTE}"]
ROLES = kinds.Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLEBINDINGS = kinds.Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
CLUSTERROLES = kinds.Resource(
    "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False
)
CLUSTERROLEBINDINGS = kinds.Resource(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)


@pytest.fixture(scope="module")
def katib(control_plane: ControlPlane, admin_kube: Kube, kubeflow: list[str]) -> Iterator[KatibController]:
    controller = KatibController(control_plane, admin_kube)
    try:
        controller.start()
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def tuning(katib: KatibController, namespace: str) -> Iterator[KatibController]:
    """Katib for one test's namespace; its Experiments and Trials released afterwards (finalizers)."""
    yield katib
    katib.release(namespace)


def plugin(kubeconfig: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``kubectl-ai_platform ARGS --kubeconfig K -n NS``, as kubectl runs the plugin."""
    exe = shutil.which("kubectl-ai_platform")
    argv = [exe] if exe else [sys.executable, "-c", "from kaip.commands.ai_platform import main; main()"]
    user: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, user = args[:cut], list(args[cut:])
    return subprocess.run(
        [*argv, *args, "--kubeconfig", str(kubeconfig), "-n", namespace, *user],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def submit(kubeconfig: Path, namespace: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    pkg = tmp_path / "trainer"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("import sys\nprint(sys.argv)\n")
    config = tmp_path / "hptuning_config.yaml"
    config.write_text(HPTUNING)
    return plugin(
        kubeconfig, namespace, "jobs", "submit", "training", "census_hp", f"--config={config}",
        "--module-name=trainer.task", f"--package-path={pkg}", "--runtime-version=2.11", *extra,
        "--", *USER_ARGS,
    )  # fmt: skip


def wait_for(
    get: Callable[[], dict[str, Any]], what: str, katib: KatibController, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return get()
        except NotFound:
            time.sleep(0.3)
    raise AssertionError(f"no {what} after {timeout:.0f}s; katib-controller's log:\n{katib.log_tail()}")


def operator_pod(job: dict[str, Any], rtype: str, *, master: bool) -> dict[str, Any]:
    """The Pod training-operator v1.9 creates for replica ``rtype`` 0 of a TFJob (pkg/controller.v1/
    common/pod.go createNewPod: its labels, name, restart policy and controller reference)."""
    name = job["metadata"]["name"]
    template = job["spec"]["tfReplicaSpecs"][rtype]["template"]
    labels = {
        **(template.get("metadata") or {}).get("labels", {}),
        "training.kubeflow.org/operator-name": "tfjob-controller",
        kf.LABEL_JOB_NAME: name,
        kf.LABEL_REPLICA_TYPE: rtype.lower(),
        kf.LABEL_REPLICA_INDEX: "0",
        **({kf.LABEL_JOB_ROLE: "master"} if master else {}),
    }
    owner = {"apiVersion": job["apiVersion"], "kind": job["kind"], "name": name, "uid": job["metadata"]["uid"],
             "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    return {
        "metadata": {"name": f"{name}-{rtype.lower()}-0", "labels": labels, "ownerReferences": [owner]},
        "spec": {**template["spec"], "restartPolicy": "Never"},  # ExitCode is Never on the Pod
    }


def test_kaip_labels_the_namespace_and_katib_runs_the_trial_command(
    tuning: KatibController, kubeconfig: Path, namespace: str, kube: Kube, admin_kube: Kube, tmp_path: Path
) -> None:
    done = submit(kubeconfig, namespace, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"Note: labelled namespace {namespace} {INJECTION_LABEL}=enabled" in done.stderr
    assert admin_kube.get(kinds.NAMESPACES, namespace)["metadata"]["labels"][INJECTION_LABEL] == "enabled"
    exp = kube.get(kf.EXPERIMENTS, "census-hp")
    assert exp["spec"]["resumePolicy"] == "Never"  # set by Katib's defaulting webhook, not by kaip

    rule = {"name": "accuracy", "value": "0.5", "comparison": "less", "startStep": 4}
    (trial_name,) = tuning.suggest(
        namespace,
        "census-hp",
        [{"first-layer-size": "128", "optimizer": "adam"}],
        early_stopping_rules=[rule],
    )
    trial = wait_for(lambda: kube.get(kf.TRIALS, trial_name), f"Trial {trial_name}", tuning)
    assert trial["spec"]["primaryContainerName"] == "tensorflow"
    job = wait_for(lambda: kube.get(kf.TFJOBS, trial_name), f"TFJob {trial_name}", tuning)
    assert job["metadata"]["ownerReferences"][0]["kind"] == "Trial"

    # The master Pod, as training-operator would create it, through Katib's real Pod webhook.
    master = kube.create(kinds.PODS, operator_pod(job, "Master", master=True))
    names = [c["name"] for c in master["spec"]["containers"]]
    assert names == ["tensorflow", COLLECTOR_CONTAINER] and master["spec"]["shareProcessNamespace"] is True
    sidecar = master["spec"]["containers"][1]
    assert sidecar["image"] == "ghcr.io/kubeflow/katib/file-metrics-collector:v0.19.0"  # kaip's katib-config
    assert sidecar["args"][sidecar["args"].index("-path") + 1] == "/tmp/hypertune/output.metrics"
    sent = job["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    primary = master["spec"]["containers"][0]
    # The test bed's port of Katib's rewrite is what the webhook did.
    expected = katib_rewrite(sent, early_stopping=True)
    assert (primary["command"], primary["args"]) == (expected["command"], expected["args"])

    ran = run_container(primary, tmp_path / "master")
    assert ran.returncode == 0, ran.output
    assert ran.python_calls == [
        ["-m", "pip", "install", "--quiet", "--no-cache-dir", "/kaip/packages/trainer-0.0.0.tar.gz"],
        ["-m", "trainer.task", *USER_ARGS, "--first-layer-size=128", "--optimizer=adam"],
    ]
    assert ran.marker() == "completed\n"
    failed = run_container(primary, tmp_path / "master-failed", python_exit=3)
    assert failed.returncode == 1 and failed.marker() is None  # Katib's early-stopping branch: "Failed"

    # A worker Pod is not the primary one: Katib leaves its command, which runs as well.
    worker = kube.create(kinds.PODS, operator_pod(job, "Worker", master=False))
    (container,) = worker["spec"]["containers"]
    sent_worker = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert container["command"] == sent_worker["command"] and "args" not in container
    ran = run_container(container, tmp_path / "worker", python_exit=4)
    assert ran.returncode == 4 and ran.python_calls[-1][:2] == ["-m", "trainer.task"]


@pytest.mark.parametrize("may_read", [False, True], ids=["namespace-user", "may-read-namespaces"])
def test_a_user_who_may_not_label_the_namespace_is_refused_before_anything_is_created(
    tuning: KatibController,
    control_plane: ControlPlane,
    namespace: str,
    kube: Kube,
    admin_kube: Kube,
    tmp_path: Path,
    may_read: bool,
) -> None:
    user = f"alice-{namespace}"
    rules = [
        {"apiGroups": [kf.GROUP], "resources": ["experiments", "tfjobs"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["configmaps", "persistentvolumeclaims"], "verbs": ["*"]},
    ]
    subject = [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]
    kube.create(ROLES, {"metadata": {"name": "tuner"}, "rules": rules})
    kube.create(ROLEBINDINGS, {"metadata": {"name": "tuner"}, "subjects": subject,
                               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tuner"}})  # fmt: skip
    if may_read:
        reader = {"metadata": {"name": user}, "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]}  # fmt: skip
        admin_kube.create(CLUSTERROLES, reader)
        admin_kube.create(CLUSTERROLEBINDINGS, {"metadata": {"name": user}, "subjects": subject,
                                                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user}})  # fmt: skip
    try:
        done = submit(control_plane.user_kubeconfig(user), namespace, tmp_path)
    finally:
        admin_kube.delete(CLUSTERROLEBINDINGS, user, ignore_missing=True)
        admin_kube.delete(CLUSTERROLES, user, ignore_missing=True)
    assert done.returncode == 6, done.stderr
    # One error line (before it, only the note that this user may not read the admin's catalog).
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert done.stderr.strip().splitlines()[-1] == line
    assert line.endswith(
        f"ask a cluster admin to run: kubectl label namespace {namespace} {INJECTION_LABEL}=enabled"
    )
    assert kube.list(kf.EXPERIMENTS)["items"] == []
    assert [
        c["metadata"]["name"]
        for c in kube.list(kinds.CONFIGMAPS)["items"]
        if "census" in c["metadata"]["name"]
    ] == []
    assert INJECTION_LABEL not in (
        admin_kube.get(kinds.NAMESPACES, namespace)["metadata"].get("labels") or {}
    )


def test_a_server_dry_run_labels_nothing_and_says_so(
    tuning: KatibController, kubeconfig: Path, namespace: str, admin_kube: Kube, tmp_path: Path
) -> None:
    done = submit(kubeconfig, namespace, tmp_path, "--dry-run=server")
    assert (
        f"namespace {namespace} lacks label {INJECTION_LABEL}=enabled, which a dry run does not add"
        in done.stderr
    )
    assert done.returncode == 9 and "lacks label" in done.stderr.splitlines()[-1]  # Katib's own refusal
    assert INJECTION_LABEL not in (
        admin_kube.get(kinds.NAMESPACES, namespace)["metadata"].get("labels") or {}
    )
