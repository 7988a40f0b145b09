"""Kubeflow Trainer v2: which backend a submission takes, the TrainJob the same gcloud flags render
(checked against the upstream TrainJob CRD's schema from the Go module cache, the version
hack/testbin.sh pins), what a TrainJob cannot express, and how a TrainJob reads back as gcloud's job."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, cast

import pytest
import yaml
from test_mpi_versions import _module_cache, _pinned, schema_errors, submit_cli

from kaip.aiplatform import states, training, trainjob, trainjobs, views
from kaip.aiplatform.builtin_catalog import BUILTIN
from kaip.aiplatform.catalog import Catalog, merge
from kaip.aiplatform.manifests import ClusterOptions, DataVolume
from kaip.errors import UsageError
from kaip.resources import trainer as tr

CATALOG = Catalog(BUILTIN)


@functools.cache
def trainjob_schema() -> dict[str, Any]:
    file = (
        _module_cache() / "github.com" / "kubeflow" / "trainer" / f"v2@{_pinned('TRAINER_VERSION')}"
        / "manifests" / "base" / "crds" / "trainer.kubeflow.org_trainjobs.yaml"
    )  # fmt: skip
    if not file.is_file():
        pytest.fail(f"the upstream TrainJob CRD is not in the Go module cache ({file}): run hack/testbin.sh")
    crd = yaml.safe_load(file.read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == tr.VERSION]
    return cast(dict[str, Any], served["schema"]["openAPIV3Schema"])


def render(
    *flags: str, framework: str = "pytorch", catalog: Catalog = CATALOG, **options: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects `jobs submit training JOB FLAGS` renders on Trainer v2 (flags as gcloud names them)."""
    values: dict[str, Any] = {"job_id": "mnist_1", "module_name": "trainer.task"}
    for flag in flags:
        key, _, value = flag.lstrip("-").partition("=")
        values[key.replace("-", "_")] = int(value) if key.endswith("count") else value
    ti = training.merge_input({}, training.flags_input(training.SubmitFlags(**values)))
    training.check_input(ti)
    return trainjob.build_trainjob(
        job_id="mnist_1", ti=ti, labels={"team": "a"}, catalog=catalog,
        options=ClusterOptions(framework=framework, backend=tr.BACKEND_TRAINER_V2, **options),
    )  # fmt: skip


GPU_PAIR = (
    "--scale-tier=custom", "--master-machine-type=n1-standard-8", "--master-accelerator=type=nvidia-l4,count=2",
    "--worker-count=3", "--worker-machine-type=n1-standard-8", "--worker-accelerator=type=nvidia-l4,count=2",
)  # fmt: skip


def test_gcloud_machines_become_nodes_alike_with_resources_and_placement_per_node() -> None:
    (job,), warnings = render(*GPU_PAIR, "--args=--epochs=3")
    spec = job["spec"]
    assert job["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and job["kind"] == "TrainJob"
    assert spec["runtimeRef"] == {
        "name": "torch-distributed", "apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime",
    }  # fmt: skip
    assert spec["trainer"]["numNodes"] == 4  # the master and three workers
    assert spec["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "2"
    assert spec["trainer"]["resourcesPerNode"]["requests"]["cpu"] == "8"
    (override,) = spec["podSpecOverrides"]
    # One product for the L4: a node selector expresses it (a TrainJob has no node affinity).
    assert override["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in override["tolerations"]
    assert warnings == []
    assert job["metadata"]["labels"] == {"team": "a", "ai-platform.kaip.dev/job-id": "mnist_1"}
    assert schema_errors(job, trainjob_schema()) == []


def test_the_module_runs_with_the_user_args_and_pytorch_s_rank_variables() -> None:
    (job,), _ = render(*GPU_PAIR, "--job-dir=s3://models/run1")
    section = job["spec"]["trainer"]
    command = section["command"]
    assert command[:2] == ["sh", "-c"] and command[3] == "trainer.task"
    assert 'RANK="$PET_NODE_RANK"' in command[2] and 'exec python -m "$0" "$@"' in command[2]
    assert section["args"] == ["--job-dir=s3://models/run1"]
    assert section["numProcPerNode"] == 1


def test_data_credentials_and_a_service_account_reach_the_pods() -> None:
    data = DataVolume("imagenet", "s3://datasets/imagenet/", "/data")
    objects, _ = render(data=(data,), credentials=("s3-reader", "gcs"))
    account, job = objects
    assert account["kind"] == "ServiceAccount" and account["metadata"]["name"] == "mnist-1"
    assert account["metadata"]["annotations"] == {"kaip.dev/credentials": "s3-reader,gcs"}
    (override,) = job["spec"]["podSpecOverrides"]
    assert override["serviceAccountName"] == "mnist-1"
    assert {"name": "data-imagenet", "persistentVolumeClaim": {"claimName": "imagenet"}} in override[
        "volumes"
    ]
    (container,) = override["containers"]
    assert container["name"] == "node"
    assert {"name": "data-imagenet", "mountPath": "/data"} in container["volumeMounts"]
    assert schema_errors(job, trainjob_schema()) == []


def test_mpi_and_deepspeed_reference_their_runtimes_and_run_under_mpirun() -> None:
    (mpi,), _ = render("--master-image-uri=horovod/horovod:0.28.1", framework="mpi")
    assert mpi["spec"]["runtimeRef"]["name"] == "mpi-distributed"
    assert "exec mpirun python -m" in mpi["spec"]["trainer"]["command"][2]
    targets = mpi["spec"]["podSpecOverrides"][0]["targetJobs"]
    assert targets == [{"name": "launcher"}, {"name": "node"}]
    (ds,), _ = render(framework="deepspeed")
    assert ds["spec"]["runtimeRef"]["name"] == "deepspeed-distributed"
    assert "image" not in ds["spec"]["trainer"]  # the runtime's own image carries DeepSpeed
    assert schema_errors(ds, trainjob_schema()) == []


@pytest.mark.parametrize(
    ("flags", "options", "named"),
    [
        (("--scale-tier=custom", "--master-machine-type=n1-standard-4", "--parameter-server-count=1",
          "--parameter-server-machine-type=n1-standard-4"), {}, "--parameter-server-count"),
        (("--scale-tier=standard-1",), {}, "--scale-tier standard-1 .its parameter servers."),
        (("--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-count=1",
          "--worker-machine-type=n1-standard-8"), {}, "--worker-machine-type"),
        ((), {"secondary_networks": ("rdma",)}, "--secondary-network"),
        ((), {"gang": True, "scheduler": "volcano"}, "--gang"),
    ],
)  # fmt: skip
def test_what_a_trainjob_cannot_express_is_refused_naming_the_flag(
    flags: Sequence[str], options: dict[str, Any], named: str
) -> None:
    with pytest.raises(UsageError, match=named) as refused:
        render(*flags, **options)
    assert "--backend v1" in str(refused.value)


def test_mpi_workers_are_refused_as_trainer_v2_0_gives_them_the_runtime_s_image() -> None:
    with pytest.raises(UsageError, match="--worker-count"):
        render("--scale-tier=custom", "--master-machine-type=n1-standard-4", "--worker-count=1",
               "--worker-machine-type=n1-standard-4", framework="mpi")  # fmt: skip


def test_an_accelerator_with_several_products_is_said_not_pinned() -> None:
    _, warnings = render("--scale-tier=custom", "--master-machine-type=n1-standard-8",
                         "--master-accelerator=type=nvidia-tesla-a100,count=1")  # fmt: skip
    (warning,) = warnings
    assert "no node affinity" in warning and "nvidia.com/gpu.product In" in warning


@pytest.mark.parametrize(
    ("wanted", "framework", "served", "catalog_backend", "chosen"),
    [
        (None, "pytorch", True, None, "trainer-v2"),  # discovery: the cluster serves TrainJob
        (None, "pytorch", False, None, "v1"),
        (None, "pytorch", None, None, "v1"),  # not asked (--dry-run=client)
        (None, "mpi", True, None, "trainer-v2"),
        (None, "tensorflow", True, None, "v1"),  # TF, XGBoost, JAX, Paddle keep v1
        (None, "xgboost", True, None, "v1"),
        ("v1", "pytorch", True, None, "v1"),
        (None, "pytorch", True, "v1", "v1"),  # the catalog's default
        (None, "pytorch", False, "trainer-v2", "trainer-v2"),
        ("trainer-v2", "pytorch", None, None, "trainer-v2"),
        (None, "deepspeed", None, None, "trainer-v2"),
    ],
)
def test_the_backend_by_flag_catalog_and_discovery(
    wanted: str | None, framework: str, served: bool | None, catalog_backend: str | None, chosen: str
) -> None:
    catalog = (
        Catalog(merge(BUILTIN, {"trainer": {"backend": catalog_backend}})) if catalog_backend else CATALOG
    )
    assert (
        trainjob.choose_backend(wanted=wanted, framework=framework, served=served, catalog=catalog) == chosen
    )


def test_frameworks_trainer_v2_does_not_serve_and_tuning_are_refused_on_it() -> None:
    with pytest.raises(UsageError, match="--framework tensorflow runs as a training-operator job"):
        trainjob.choose_backend(wanted="trainer-v2", framework="tensorflow", served=True, catalog=CATALOG)
    with pytest.raises(UsageError, match="hyperparameters"):
        trainjob.choose_backend(
            wanted="trainer-v2", framework="pytorch", served=True, catalog=CATALOG, tuning=True
        )
    assert (
        trainjob.choose_backend(wanted=None, framework="pytorch", served=True, catalog=CATALOG, tuning=True)
        == "v1"
    )
    with pytest.raises(UsageError, match="deepspeed runs on Kubeflow Trainer v2 only"):
        trainjob.choose_backend(wanted="v1", framework="deepspeed", served=True, catalog=CATALOG)


def test_the_command_line_renders_a_trainjob_and_refuses_with_the_usage_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, docs, err = submit_cli(
        capsys, "--backend=trainer-v2", "--framework=pytorch", "--module-name=trainer.task", "--", "--lr=0.1"
    )
    assert code == 0, err
    assert [d["kind"] for d in docs] == ["TrainJob"] and docs[0]["spec"]["trainer"]["args"] == ["--lr=0.1"]
    code, _, err = submit_cli(capsys, "--backend=trainer-v2", "--framework=pytorch", "--module-name=m",
                              "--secondary-network=rdma")  # fmt: skip
    assert code == 2 and "--secondary-network" in err and err.count("\n") == 1
    code, _, err = submit_cli(capsys, "--backend=trainer-v2", "--framework=jax", "--module-name=m")
    assert code == 2 and "--framework jax runs as a training-operator job" in err


# -- reading a TrainJob back ------------------------------------------------------------------------
def node_pod(job: str, index: int, phase: str = "Running", *, rjob: str = "node") -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{job}-{rjob}-0-{index}-x1y2z",
            "labels": {
                tr.LABEL_JOBSET_NAME: job,
                tr.LABEL_REPLICATED_JOB: rjob,
                tr.LABEL_COMPLETION_INDEX: str(index),
            },
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "node"}]},
        "status": {"phase": phase, "containerStatuses": [{"name": "node", "state": {"running": {}}}]},
    }


def a_trainjob(*conditions: str, nodes: int = 2, suspend: bool = False, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "t", "namespace": "ns", "creationTimestamp": "2026-12-06T08:00:00Z",
                     "annotations": annotations},
        "spec": {"trainer": {"numNodes": nodes}, "suspend": suspend},
        "status": {"conditions": [{"type": c, "status": "True", "message": f"{c}!",
                                   "lastTransitionTime": "2026-12-06T09:00:00Z"} for c in conditions]},
    }  # fmt: skip


def test_trainjob_states_from_its_conditions_and_its_jobset_pods() -> None:
    pods = [node_pod("t", 0), node_pod("t", 1)]
    assert states.job_state(a_trainjob(), []).state == states.QUEUED
    assert states.job_state(a_trainjob(), pods[:1]).state == states.PREPARING  # one of two nodes runs
    assert states.job_state(a_trainjob(), pods).state == states.RUNNING
    assert states.job_state(a_trainjob("Complete"), pods).state == states.SUCCEEDED
    assert states.job_state(a_trainjob("Failed"), pods).state == states.FAILED
    assert states.job_state(a_trainjob(suspend=True), []).state == states.QUEUED
    cancelled = a_trainjob(suspend=True, **{"ai-platform.kaip.dev/cancel-requested": "2026-12-06T09:00:00Z"})
    assert states.job_state(cancelled, pods).state == states.CANCELLING
    assert states.job_state(cancelled, []).state == states.CANCELLED
    view = views.view(a_trainjob("Complete"), pods)
    assert view.kind == "TrainJob" and view.end_time == "2026-12-06T09:00:00Z"


def test_the_jobset_s_final_condition_counts_before_the_trainjob_copies_it() -> None:
    jobset = {"status": {"conditions": [{"type": "Completed", "status": "True"}]}}
    assert states.job_state(trainjobs.with_jobset(a_trainjob(), jobset), []).state == states.SUCCEEDED
    assert trainjobs.with_jobset(a_trainjob("Failed"), jobset) == a_trainjob("Failed")


def test_node_pods_get_gcloud_task_names() -> None:
    assert views.task_name(node_pod("t", 0), "TrainJob") == "master-replica-0"
    assert views.task_name(node_pod("t", 2), "TrainJob") == "worker-replica-1"
    assert views.task_name(node_pod("t", 0, rjob="launcher"), "TrainJob") == "master-replica-0"
    mpi_node = node_pod("t", 0)
    mpi_node["spec"]["volumes"] = [{"name": "mpi-ssh-auth", "secret": {"secretName": "t-mpi-ssh-auth"}}]
    assert views.task_name(mpi_node, "TrainJob") == "worker-replica-0"


def test_katib_v0_19_0_knows_trainjob_trials_and_kaip_tunes_on_the_v1_path() -> None:
    """docs/ai-platform.md's statement on tuning, checked against the Katib module hack/testbin.sh pins:
    Katib v0.19.0 runs TrainJob trials (its config lists the kind; its defaults read the TrainJob's
    ``Complete`` condition and node 0's Pod), but kaip's Experiments keep v1 trials."""
    katib = _module_cache() / "github.com" / "kubeflow" / f"katib@{_pinned('KATIB_VERSION')}"
    if not katib.is_dir():
        pytest.fail(f"Katib's module is not in the Go module cache ({katib}): run hack/testbin.sh")
    constants = (
        katib / "pkg" / "apis" / "controller" / "experiments" / "v1beta1" / "constants.go"
    ).read_text()
    assert re.search(r'"TrainJob":\s+true', constants)
    assert 'DefaultTrainJobSuccessCondition = "status.conditions.#(type==\\"Complete\\")#' in constants
    assert '"jobset.sigs.k8s.io/replicatedjob-name": "node"' in constants
    config = katib / "manifests" / "v1beta1" / "installs" / "katib-standalone" / "katib-config.yaml"
    assert "TrainJob.v1alpha1.trainer.kubeflow.org" in config.read_text()
    tuning = {"wanted": None, "framework": "pytorch", "served": True, "catalog": CATALOG, "tuning": True}
    assert trainjob.choose_backend(**tuning) == tr.BACKEND_V1


def test_kueue_v0_17_0_queues_trainjobs_only_on_a_trainer_with_runtime_patches() -> None:
    """docs/ai-platform.md's statement on TrainJob and Kueue, checked against the modules hack/testbin.sh
    pins: Kueue v0.17.0's TrainJob integration (framework ``trainer.kubeflow.org/trainjob``) suspends the
    TrainJob in its webhook and admits it by writing its own entry of ``spec.runtimePatches`` (Trainer
    v2.2.0's API, the version Kueue is built with); the pinned Trainer's TrainJob has no such field (its
    overrides are ``podSpecOverrides``), so kube-apiserver prunes the entry and the admitted TrainJob
    stays suspended ("kueue runtime patch not found"). The test bed therefore runs Kueue without it."""
    kueue = _module_cache() / "sigs.k8s.io" / f"kueue@{_pinned('KUEUE_VERSION')}"
    if not kueue.is_dir():
        pytest.fail(f"Kueue's module is not in the Go module cache ({kueue}): run hack/testbin.sh")
    jobs = kueue / "pkg" / "controller" / "jobs" / "trainjob"
    controller = (jobs / "trainjob_controller.go").read_text()
    assert 'FrameworkName          = "trainer.kubeflow.org/trainjob"' in controller
    assert 'errors.New("kueue runtime patch not found")' in controller
    webhook = (jobs / "trainjob_webhook.go").read_text()
    assert "trainJob.Suspend()" in webhook  # spec.suspend need not be set by kaip
    assert "trainJob.Spec.RuntimePatches = append(" in webhook
    assert re.search(r"github.com/kubeflow/trainer/v2 v2\.[2-9]", (kueue / "go.mod").read_text())
    spec = trainjob_schema()["properties"]["spec"]["properties"]
    assert "runtimePatches" not in spec and "podSpecOverrides" in spec and "suspend" in spec


def test_a_queued_trainjob_carries_kueue_s_label_and_says_kueue_v0_17_will_not_hold_it() -> None:
    (job,), warnings = render("--scale-tier=basic", queue="gpus")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    (warning,) = warnings
    assert warning.startswith("--queue gpus: the TrainJob carries Kueue's queue label, but Kueue v0.17")
    assert render("--scale-tier=basic")[1] == []
