"""MPIJob in both of its APIs: training-operator's kubeflow.org/v1 and mpi-operator's v2beta1.

The same flags render either version; each must pass its upstream CRD's schema (read from the Go
module cache that hack/testbin.sh fills, at the versions that script pins) and the checks its
operator makes before it runs a job. Then: the version is chosen by discovery or assumed (and said),
and list/describe/logs/Katib read the Pods of both.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from kaip.aiplatform import submit, training, views
from kaip.aiplatform.builtin_catalog import BUILTIN
from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.manifests import ClusterOptions
from kaip.cli.app import run
from kaip.commands.ai_platform import cli
from kaip.errors import UsageError
from kaip.kube.client import Kube
from kaip.kube.errors import ApiMissing
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import Resource

REPO = Path(__file__).resolve().parents[3]
CATALOG = Catalog(BUILTIN)
VERSIONS = ("v2beta1", "v1")


# -- the upstream CRDs -----------------------------------------------------------------------------
def _pinned(name: str) -> str:
    """The module version hack/testbin.sh pins (or its KAIP_* override), so both read the same."""
    script = (REPO / "hack" / "testbin.sh").read_text()
    match = re.search(rf'^{name}="\$\{{KAIP_{name}:-([^}}]+)\}}"', script, re.MULTILINE)
    assert match, f"hack/testbin.sh no longer pins {name}"
    return os.environ.get(f"KAIP_{name}") or match[1]


def _module_cache() -> Path:
    if os.environ.get("GOMODCACHE"):
        return Path(os.environ["GOMODCACHE"])
    gopath = os.environ.get("GOPATH", "").split(os.pathsep)[0]
    return Path(gopath) / "pkg" / "mod" if gopath else Path.home() / "go" / "pkg" / "mod"


CRD_FILES = {
    "v1": ("TRAINING_OPERATOR_VERSION", "training-operator", "manifests/base/crds/kubeflow.org_mpijobs.yaml"),
    "v2beta1": ("MPI_OPERATOR_VERSION", "mpi-operator", "manifests/base/kubeflow.org_mpijobs.yaml"),
}


@functools.cache
def crd_schema(version: str) -> dict[str, Any]:
    pin, module, path = CRD_FILES[version]
    file = _module_cache() / "github.com" / "kubeflow" / f"{module}@{_pinned(pin)}" / path
    if not file.is_file():
        pytest.fail(
            f"the upstream MPIJob CRD is not in the Go module cache ({file}): run hack/testbin.sh, "
            "which downloads the Kubeflow modules"
        )
    crd = yaml.load(file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return cast(dict[str, Any], served["schema"]["openAPIV3Schema"])


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """What the API server's structural validation and strict field validation would refuse.

    The subset of OpenAPI v3 that CRD schemas use: type, int-or-string, enum, pattern, required,
    properties (an unknown field is an error, as with fieldValidation=Strict), additionalProperties,
    items, anyOf. CEL rules (x-kubernetes-validations) are left to the integration tests.
    """
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, (int, str)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is neither integer nor string"]
    if "anyOf" in schema and not any(not schema_errors(value, s, path) for s in schema["anyOf"]):
        return [f"{path}: {value!r} matches none of anyOf"]
    kind = schema.get("type")
    types: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "integer": int,
        "number": (int, float),
    }
    if kind and (
        not isinstance(value, types[kind]) or (kind in ("integer", "number") and isinstance(value, bool))
    ):
        return [f"{path}: {value!r} is not of type {kind}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if kind == "string" and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if kind == "array":
        for i, item in enumerate(value):
            errors += schema_errors(item, schema.get("items") or {}, f"{path}[{i}]")
    if kind == "object":
        errors += [f"{path}.{k}: required" for k in schema.get("required") or () if k not in value]
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if path == "" and key == "metadata":
                continue  # the object's own ObjectMeta: the API server checks it, not the CRD schema
            if key in props:
                errors += schema_errors(item, props[key], f"{path}.{key}")
            elif isinstance(extra, Mapping):
                errors += schema_errors(item, extra, f"{path}.{key}")
            elif extra is not True and not schema.get("x-kubernetes-preserve-unknown-fields"):
                errors.append(f"{path}.{key}: unknown field")
    return errors


# -- what each operator checks before it runs a job ----------------------------------------------
def mpi_operator_errors(job: Mapping[str, Any]) -> list[str]:
    """mpi-operator v0.6.0 pkg/apis/kubeflow/validation/validation.go ValidateMPIJob, after its
    defaults (pkg/apis/kubeflow/v2beta1/default.go): a job failing it is never started."""
    spec = job["spec"]
    specs = spec["mpiReplicaSpecs"]
    errors = []
    workers = int(specs.get("Worker", {}).get("replicas", 0) or 1)
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", f"{job['metadata']['name']}-worker-{workers - 1}"):
        errors.append("the worker hostnames are not DNS-1035 labels")
    if "Launcher" not in specs or specs["Launcher"].get("replicas", 1) != 1:
        errors.append("exactly one Launcher")
    for rtype, rspec in specs.items():
        if rspec.get("restartPolicy", "OnFailure" if rtype == "Launcher" else "Never") not in (
            "Never",
            "OnFailure",
        ):
            errors.append(f"{rtype}: restartPolicy must be Never or OnFailure")
        if rtype == "Worker" and rspec.get("replicas", 0) <= 0:
            errors.append("Worker replicas must be at least 1")
        if not rspec["template"]["spec"].get("containers"):
            errors.append(f"{rtype}: no container")
    if spec.get("slotsPerWorker", 1) < 0:
        errors.append("slotsPerWorker is negative")
    if spec["runPolicy"].get("cleanPodPolicy", "None") not in ("None", "Running", "All"):
        errors.append("cleanPodPolicy")
    return errors


def training_operator_errors(job: Mapping[str, Any]) -> list[str]:
    """training-operator v1.9.2 pkg/apis/kubeflow.org/v1/mpi_validation.go ValidateV1MpiJobSpec, and
    the restart policies of its ReplicaSpec (common_types.go)."""
    specs = job["spec"]["mpiReplicaSpecs"]
    errors = []
    if "Launcher" not in specs or specs["Launcher"].get("replicas", 1) != 1:
        errors.append("exactly one Launcher")
    for rtype, rspec in specs.items():
        if rtype not in ("Launcher", "Worker"):
            errors.append(f"{rtype}: not a replica type of MPIJob")
        containers = rspec["template"]["spec"].get("containers") or []
        if not containers or any(not c.get("image") or not c.get("name") for c in containers):
            errors.append(f"{rtype}: every container needs a name and an image")
        if rspec.get("restartPolicy", "Never") not in ("Always", "OnFailure", "Never", "ExitCode"):
            errors.append(f"{rtype}: restartPolicy")
    main = job["spec"].get("mainContainer")
    if main and main not in {c["name"] for c in specs["Launcher"]["template"]["spec"]["containers"]}:
        errors.append("mainContainer names no container of the launcher")
    return errors


OPERATOR_CHECKS = {"v2beta1": mpi_operator_errors, "v1": training_operator_errors}


# -- rendering -------------------------------------------------------------------------------------
def render(version: str | None, **kw: Any) -> dict[str, Any]:
    options = {k: kw.pop(k) for k in list(kw) if k in ClusterOptions.__dataclass_fields__}
    config = kw.pop("config", None)
    kw.setdefault("job_id", "my_job")
    p = submit.plan(
        flags=training.SubmitFlags(**kw),
        config=config,
        options=ClusterOptions(framework="mpi", mpi_api=version, **options),
        catalog=CATALOG,
    )
    return p.main


GPU_WORKERS: dict[str, Any] = {
    "module_name": "trainer.task",
    "master_image_uri": "horovod/horovod:0.28.1",
    "master_machine_type": "n1-standard-4",
    "worker_count": 2,
    "worker_machine_type": "n1-standard-8",
    "worker_accelerator": "type=nvidia-tesla-t4,count=4",
    "args": ("--epochs=3",),
}
SHAPES: dict[str, dict[str, Any]] = {
    "module on GPU workers": GPU_WORKERS,
    "image entrypoint": {**GPU_WORKERS, "module_name": None},
    "GPU master alone": {
        "module_name": "t.m",
        "master_image_uri": "horovod/horovod:0.28.1",
        "master_machine_type": "n1-standard-8",
        "master_accelerator": "type=nvidia-tesla-t4,count=2",
    },
    "scheduled": {
        **GPU_WORKERS,
        "scheduler": "volcano",
        "gang": True,
        "queue": "research",
        "priority": "high",
        "secondary_networks": ("rdma",),
        "credentials": ("aws-team",),
        "service_account": "trainer",
    },
}


@pytest.mark.testbin  # the upstream CRDs, from the Go modules hack/testbin.sh downloads
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_version_passes_its_upstream_crd_schema_and_its_operators_checks(
    version: str, shape: str
) -> None:
    job = render(version, **SHAPES[shape])
    assert job["apiVersion"] == f"kubeflow.org/{version}" and job["kind"] == "MPIJob"
    assert schema_errors(job, crd_schema(version)) == []
    assert OPERATOR_CHECKS[version](job) == []


@pytest.mark.testbin  # the upstream CRDs, from the Go modules hack/testbin.sh downloads
def test_the_other_versions_fields_are_refused_by_each_schema() -> None:
    """The schemas really differ: v1 has no runLauncherAsWorker, v2beta1 no mainContainer."""
    v2_alone = render("v2beta1", **SHAPES["GPU master alone"])
    assert schema_errors(v2_alone, crd_schema("v1")) == [".spec.runLauncherAsWorker: unknown field"]
    v1_job = render("v1", **GPU_WORKERS)
    assert schema_errors(v1_job, crd_schema("v2beta1")) == [".spec.mainContainer: unknown field"]


def launcher(job: Mapping[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"])


def test_v2beta1_reaches_workers_over_ssh_after_their_dns_names_resolve() -> None:
    job = render("v2beta1", **GPU_WORKERS)
    spec = launcher(job)
    script = spec["containers"][0]["command"][2]
    assert "exec mpirun --allow-run-as-root -np 8 --hostfile /etc/mpi/hostfile " in script
    assert "kubectl" not in script
    # mpi-operator's headless Service names a worker once it is Ready
    assert spec["initContainers"][0]["args"] == ["my-job-worker-0.my-job", "my-job-worker-1.my-job"]
    assert job["spec"]["slotsPerWorker"] == 4 and "mainContainer" not in job["spec"]


def test_v1_waits_for_its_workers_with_the_operators_kubectl_then_runs_mpirun() -> None:
    job = render("v1", **GPU_WORKERS)
    spec = launcher(job)
    script = spec["containers"][0]["command"][2]
    wait, run_line = script.splitlines()[1:]
    # training-operator makes no Service for MPI workers: no DNS name to wait for, kubectl instead
    assert "initContainers" not in spec
    assert wait == (
        "/opt/kube/kubectl wait --for=condition=Ready --timeout=600s pod/my-job-worker-0 pod/my-job-worker-1"
    )
    assert run_line.startswith("exec mpirun --allow-run-as-root -np 8 --hostfile /etc/mpi/hostfile ")
    assert spec["containers"][0]["args"] == ["--epochs=3"]
    assert job["spec"]["mainContainer"] == "mpi" and job["spec"]["slotsPerWorker"] == 4
    worker = job["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert "command" not in worker and "args" not in worker  # the operator's `sleep 365d`


@pytest.mark.parametrize("version", VERSIONS)
def test_restarts_and_cleanup_are_the_same_in_both(version: str) -> None:
    job = render(version, **GPU_WORKERS)
    specs = job["spec"]["mpiReplicaSpecs"]
    assert specs["Launcher"]["restartPolicy"] == "OnFailure" and specs["Worker"]["restartPolicy"] == "Never"
    # idle workers are stopped when the launcher ends; the launcher and its log stay
    assert job["spec"]["runPolicy"]["cleanPodPolicy"] == "Running"
    assert job["spec"]["runPolicy"]["backoffLimit"] == 6


def test_a_master_alone_is_the_only_host_in_both() -> None:
    v2 = render("v2beta1", **SHAPES["GPU master alone"])
    v1 = render("v1", **SHAPES["GPU master alone"])
    assert v2["spec"]["runLauncherAsWorker"] is True and "runLauncherAsWorker" not in v1["spec"]
    for job in (v1, v2):
        assert list(job["spec"]["mpiReplicaSpecs"]) == ["Launcher"]
        assert job["spec"]["slotsPerWorker"] == 2  # the master's GPUs
        assert " -np 2 " in launcher(job)["containers"][0]["command"][2]


def test_v1_counts_a_gpu_launcher_as_a_host_as_its_operator_does() -> None:
    job = render("v1", **{**GPU_WORKERS, "master_accelerator": "type=nvidia-tesla-t4,count=4"})
    # hostfile: my-job-launcher slots=4, my-job-worker-0 slots=4, my-job-worker-1 slots=4
    assert " -np 12 " in launcher(job)["containers"][0]["command"][2]


def test_v1_refuses_a_cpu_master_alone_whose_hostfile_would_be_empty() -> None:
    with pytest.raises(UsageError, match="needs workers"):
        render("v1", master_image_uri="horovod/horovod:0.28.1", module_name="t.m")
    assert render("v2beta1", master_image_uri="horovod/horovod:0.28.1", module_name="t.m")


@pytest.mark.parametrize(("version", "how"), [("v2beta1", "SSH server"), ("v1", "kubectl exec")])
def test_staged_packages_are_refused_in_both(version: str, how: str) -> None:
    from kaip.aiplatform.packages import LocalFile

    with pytest.raises(UsageError, match=how):
        submit.plan(
            flags=training.SubmitFlags(job_id="j", module_name="t.m", master_image_uri="i"),
            config=None,
            options=ClusterOptions(framework="mpi", mpi_api=version),
            catalog=CATALOG,
            local_files=(LocalFile("t-1.tar.gz", b"x"),),
        )


# -- choosing the version --------------------------------------------------------------------------
def test_without_the_cluster_the_default_is_assumed_and_said() -> None:
    version, said = submit.choose_mpi_api(wanted=None, served=None)
    assert version == "v2beta1"
    assert said.startswith(
        "Note: assumed MPIJob kubeflow.org/v2beta1 (mpi-operator); the cluster was not asked"
    )
    assert "--mpi-api v1" in said and "\n" not in said
    assert submit.choose_mpi_api(wanted="v1", served=None) == ("v1", "")


@pytest.mark.parametrize(
    ("wanted", "served", "chosen"),
    [
        (None, ["v1"], "v1"),
        (None, ["v2beta1"], "v2beta1"),
        ("v1", ["v1"], "v1"),
        (None, [], "v2beta1"),  # neither: create() names the default's CRD and install command
        ("v1", [], "v1"),
    ],
)
def test_with_the_cluster_what_it_serves_is_rendered(
    wanted: str | None, served: list[str], chosen: str
) -> None:
    assert submit.choose_mpi_api(wanted=wanted, served=served) == (chosen, "")


def test_asking_for_the_version_the_cluster_does_not_serve_is_exit_8() -> None:
    with pytest.raises(
        ApiMissing, match=r"--mpi-api v1: the cluster serves MPIJob kubeflow.org/v2beta1 \(mpi"
    ):
        submit.choose_mpi_api(wanted="v1", served=["v2beta1"])


class _Discovery:
    """Our Kube seam: answers discovery only, from a set of (group version, plural)."""

    def __init__(self, served: set[tuple[str, str]]) -> None:
        self._served = served
        self.asked: list[str] = []

    def served(self, resource: Resource) -> bool:
        self.asked.append(resource.api_version)
        return (resource.api_version, resource.plural) in self._served


def test_discovery_picks_training_operators_mpijob() -> None:
    kube = _Discovery({("kubeflow.org/v1", "tfjobs"), ("kubeflow.org/v1", "mpijobs")})
    options, said = submit.resolve_mpi_api(ClusterOptions(framework="mpi"), cast(Kube, kube))
    assert options.mpi_api == "v1" and said == ""


def test_other_frameworks_ask_nothing_and_refuse_the_flag() -> None:
    kube = _Discovery(set())
    options = ClusterOptions(framework="pytorch")
    assert submit.resolve_mpi_api(options, cast(Kube, kube)) == (options, "") and kube.asked == []
    with pytest.raises(UsageError, match="--mpi-api is for --framework mpi"):
        submit.resolve_mpi_api(ClusterOptions(framework="pytorch", mpi_api="v1"), None)


def test_a_job_object_names_its_own_resource() -> None:
    assert submit.resource_of(render("v1", **GPU_WORKERS)) is kf.MPIJOBS_V1
    assert submit.resource_of(render("v2beta1", **GPU_WORKERS)) is kf.MPIJOBS
    # list and describe look for both
    assert {kf.MPIJOBS, kf.MPIJOBS_V1} <= {k.resource for k in kf.JOB_KINDS}


# -- reading the Pods of both ----------------------------------------------------------------------
def pod(labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "labels": {kf.LABEL_JOB_NAME: "my-job", **labels}}}


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        # training-operator v1.9.2 pkg/controller.v1/mpi: replica-type, and job-role=master on the launcher
        ({kf.LABEL_REPLICA_TYPE: "launcher", kf.LABEL_JOB_ROLE: "master"}, "master-replica-0"),
        ({kf.LABEL_REPLICA_TYPE: "worker", kf.LABEL_REPLICA_INDEX: "1"}, "worker-replica-1"),
        # mpi-operator v0.6.0 pkg/controller/mpi_job_controller.go defaultLabels: job-role only
        ({kf.LABEL_JOB_ROLE: "launcher"}, "master-replica-0"),
        ({kf.LABEL_JOB_ROLE: "worker", kf.LABEL_REPLICA_INDEX: "1"}, "worker-replica-1"),
    ],
)
def test_task_names_of_both_operators_pods(labels: dict[str, str], task: str) -> None:
    assert views.task_name(pod(labels), "MPIJob") == task


@pytest.mark.testbin  # the upstream CRDs, from the Go modules hack/testbin.sh downloads
@pytest.mark.parametrize(
    ("version", "labels"),
    [("v1", {kf.LABEL_REPLICA_TYPE: "launcher"}), ("v2beta1", {kf.LABEL_JOB_ROLE: "launcher"})],
)
def test_katib_trials_follow_the_version(version: str, labels: dict[str, str]) -> None:
    config = {
        "trainingInput": {
            "hyperparameters": {
                "params": [{"parameterName": "lr", "type": "DOUBLE", "minValue": 0.1, "maxValue": 1}]
            }
        }
    }
    exp = render(version, config=config, **GPU_WORKERS)
    template = exp["spec"]["trialTemplate"]
    assert template["trialSpec"]["apiVersion"] == f"kubeflow.org/{version}"
    assert template["primaryPodLabels"] == labels
    # the trial job is the same valid MPIJob (Katib fills the placeholders in the arguments)
    assert schema_errors({**template["trialSpec"], "metadata": {}}, crd_schema(version)) == []
    worker = template["trialSpec"]["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert "args" not in worker  # the operator's default command stays
    assert submit.resource_of(template["trialSpec"]).version == version


# -- the command line ------------------------------------------------------------------------------
def submit_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    argv = ["jobs", "submit", "training", "my_job", "--dry-run=client", "-o", "yaml", *args]
    code = run(cli, argv, prog_name="kubectl ai-platform")
    out, err = capsys.readouterr()
    return code, [d for d in yaml.safe_load_all(out) if d] if code == 0 else [], err


MPI_FLAGS: Sequence[str] = (
    "--framework=mpi",
    "--master-image-uri=horovod/horovod:0.28.1",
    "--module-name=trainer.task",
    "--master-machine-type=n1-standard-4",
    "--worker-count=2",
    "--worker-machine-type=n1-standard-8",
)


def test_client_dry_run_says_which_mpijob_it_assumed(capsys: pytest.CaptureFixture[str]) -> None:
    code, docs, err = submit_cli(capsys, *MPI_FLAGS)
    assert code == 0 and [d["apiVersion"] for d in docs] == ["kubeflow.org/v2beta1"]
    lines = [line for line in err.splitlines() if "MPIJob" in line]
    assert lines == [
        "Note: assumed MPIJob kubeflow.org/v2beta1 (mpi-operator); the cluster was not asked "
        "(--mpi-api v1 renders training-operator's kubeflow.org/v1)"
    ]


def test_client_dry_run_renders_the_version_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    code, docs, err = submit_cli(capsys, *MPI_FLAGS, "--mpi-api=v1")
    assert code == 0 and [d["apiVersion"] for d in docs] == ["kubeflow.org/v1"]
    assert docs[0]["spec"]["mainContainer"] == "mpi" and "assumed" not in err
    code, _, err = submit_cli(capsys, "--master-image-uri=i", "--mpi-api=v1")
    assert code == 2 and "--mpi-api is for --framework mpi" in err
