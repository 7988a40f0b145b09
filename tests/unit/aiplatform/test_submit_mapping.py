"""gcloud's `jobs submit training` flags and --config mapped onto Kubeflow jobs: the pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from kaip.aiplatform import submit, training
from kaip.aiplatform.builtin_catalog import BUILTIN
from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.manifests import ClusterOptions, parse_data
from kaip.aiplatform.packages import LocalFile
from kaip.errors import UsageError

CATALOG = Catalog(BUILTIN)


def plan(
    config: dict[str, Any] | None = None,
    files: tuple[LocalFile, ...] = (),
    remote: tuple[str, ...] = (),
    **kw: Any,
) -> submit.Plan:
    options = {k: kw.pop(k) for k in list(kw) if k in ClusterOptions.__dataclass_fields__}
    kw.setdefault("job_id", "my_job")
    return submit.plan(
        flags=training.SubmitFlags(**kw),
        config=config,
        options=ClusterOptions(**options),
        catalog=CATALOG,
        local_files=files,
        remote_packages=remote,
    )


def container(p: submit.Plan, rtype: str = "Master", key: str = "tfReplicaSpecs") -> dict[str, Any]:
    return p.main["spec"][key][rtype]["template"]["spec"]["containers"][0]


def test_basic_tier_runs_the_module_on_one_master_of_the_runtime_image() -> None:
    p = plan(module_name="trainer.task", runtime_version="2.11", args=("--epochs", "3", "--lr=0.1 x"))
    job = p.main
    assert job["kind"] == "TFJob" and job["apiVersion"] == "kubeflow.org/v1"
    assert job["metadata"]["name"] == "my-job"
    assert job["metadata"]["labels"]["ai-platform.kaip.dev/job-id"] == "my_job"
    assert list(job["spec"]["tfReplicaSpecs"]) == ["Master"]
    c = container(p)
    assert c["name"] == "tensorflow" and c["image"] == "tensorflow/tensorflow:2.11.0"
    assert c["command"][:2] == ["sh", "-c"] and c["command"][-1] == "trainer.task"
    assert 'exec python -m "$0" "$@"' in c["command"][2]
    # user arguments travel untouched, never re-quoted into a shell line
    assert c["args"] == ["--epochs", "3", "--lr=0.1 x"]
    assert c["resources"]["requests"] == {"cpu": "4", "memory": "15360Mi"}  # basic = n1-standard-4
    assert job["spec"]["runPolicy"]["activeDeadlineSeconds"] == 604800  # gcloud's 7-day maxRunningTime


def test_job_dir_is_passed_to_the_program_as_gcloud_does() -> None:
    c = container(plan(module_name="t.m", job_dir="gs://b/out", args=("--x=1",)))
    assert c["args"] == ["--x=1", "--job-dir=gs://b/out"]


def test_custom_image_runs_its_own_entrypoint_with_the_args() -> None:
    c = container(plan(master_image_uri="registry.local/me/train:1", args=("--epochs=2",)))
    assert "command" not in c
    assert c["image"] == "registry.local/me/train:1" and c["args"] == ["--epochs=2"]


def test_custom_tier_with_workers_ps_and_accelerators() -> None:
    p = plan(
        module_name="t.m",
        scale_tier="custom",
        master_machine_type="n1-standard-8",
        master_accelerator="type=nvidia-tesla-v100,count=2",
        worker_count=3,
        worker_machine_type="a2-highgpu-1g",
        parameter_server_count=2,
        parameter_server_machine_type="n1-highmem-8",
    )
    s = p.main["spec"]["tfReplicaSpecs"]
    assert {k: v["replicas"] for k, v in s.items()} == {"Master": 1, "Worker": 3, "PS": 2}
    master = s["Master"]["template"]["spec"]
    assert master["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert master["containers"][0]["image"] == "tensorflow/tensorflow:2.11.0-gpu"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in master["tolerations"]
    worker = s["Worker"]["template"]["spec"]
    assert (
        worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    )  # a2-highgpu-1g carries an A100
    # a worker waits for its master instead of crashing
    assert worker["initContainers"][0]["name"] == "kaip-wait-for-peers"
    assert worker["initContainers"][0]["args"] == ["my-job-master-0"]
    assert "initContainers" not in master
    ps = s["PS"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in ps["resources"].get("limits", {})


def test_use_chief_in_tf_config_makes_a_chief() -> None:
    p = plan(
        master_image_uri="i",
        use_chief_in_tf_config=True,
        worker_count=1,
        worker_machine_type="n1-standard-4",
        master_machine_type="n1-standard-4",
    )
    s = p.main["spec"]["tfReplicaSpecs"]
    assert set(s) == {"Chief", "Worker"}
    assert s["Worker"]["template"]["spec"]["initContainers"][0]["args"] == ["my-job-chief-0"]


@pytest.mark.parametrize(
    ("tier", "counts"),
    [
        ("basic", {"Master": 1}),
        ("basic-gpu", {"Master": 1}),
        ("standard-1", {"Master": 1, "Worker": 4, "PS": 3}),
        ("premium-1", {"Master": 1, "Worker": 19, "PS": 11}),
        ("STANDARD_1", {"Master": 1, "Worker": 4, "PS": 3}),
    ],
)
def test_scale_tiers(tier: str, counts: dict[str, int]) -> None:
    p = plan(module_name="t.m", config={"trainingInput": {"scaleTier": tier}})
    assert {k: v["replicas"] for k, v in p.main["spec"]["tfReplicaSpecs"].items()} == counts


def test_basic_gpu_has_one_gpu() -> None:
    c = container(plan(module_name="t.m", scale_tier="basic-gpu"))
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"worker_count": 2}, "--worker-count requires --worker-machine-type"),
        ({"worker_machine_type": "n1-standard-4"}, "--worker-machine-type requires --worker-count"),
        ({"parameter_server_count": 1}, "--parameter-server-count requires --parameter-server-machine-type"),
        (
            {"master_image_uri": "i", "runtime_version": "2.11"},
            "only one of --master-image-uri, --runtime-version",
        ),
        ({"scale_tier": "custom"}, "--master-machine-type is required if scale-tier is set to `CUSTOM`"),
        ({"scale_tier": "basic", "master_machine_type": "n1-standard-8"}, "needs --scale-tier=custom"),
        ({"master_accelerator": "type=nvidia-tesla-t4"}, "key 'count' is required"),
        ({"master_accelerator": "type=nvidia-tesla-t4,count=0"}, "must be greater than 0"),
        (
            {
                "master_accelerator": "type=tpu-v3,count=8",
                "scale_tier": "custom",
                "master_machine_type": "n1-standard-8",
            },
            "Cloud TPU",
        ),
        ({"scale_tier": "basic-tpu"}, "Cloud TPU"),
        (
            {"runtime_version": "2.11", "python_version": "3.7"},
            "--python-version 3.7 is not served with runtime version 2.11 for --framework tensorflow (served: 3.8)",
        ),
        ({"runtime_version": "0.9"}, "unknown runtime version '0.9'"),
        ({"job_id": "1job"}, "must start with a letter"),
        ({"job_id": "my-job"}, "must start with a letter and contain only letters, digits and underscores"),
        ({"packages": ("a/x.tar.gz", "b/x.tar.gz")}, "duplicate file name(s) x.tar.gz"),
    ],
)
def test_gcloud_checks(kw: dict[str, Any], message: str) -> None:
    kw.setdefault("module_name", "t.m")
    with pytest.raises(UsageError) as err:
        plan(**kw)
    assert message in str(err.value)


def test_module_or_image_is_required() -> None:
    with pytest.raises(UsageError, match="--module-name is required unless --master-image-uri"):
        plan()


def test_flags_override_the_config_file() -> None:
    config = training.read_config(
        """
labels: {team: vision}
trainingInput:
  scaleTier: CUSTOM
  masterType: n1-standard-8
  workerType: n1-standard-8
  workerCount: 4
  pythonModule: from.file
  runtimeVersion: "1.15"
  pythonVersion: "3.6"
  args: ["--from-file"]
  masterConfig: {acceleratorConfig: {type: nvidia-tesla-t4, count: 1}}
  scheduling: {maxRunningTime: 7200s}
""",
        source="config.yaml",
    )
    p = plan(
        config=config,
        module_name="from.flag",
        worker_count=2,
        worker_machine_type="n1-standard-16",
        labels={"team": "nlp"},
    )
    s = p.main["spec"]["tfReplicaSpecs"]
    assert s["Worker"]["replicas"] == 2
    assert s["Worker"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "16"
    master = s["Master"]["template"]["spec"]["containers"][0]
    assert master["command"][-1] == "from.flag"
    assert master["args"] == ["--from-file"]  # not overridden: no args on the command line
    assert master["image"] == "tensorflow/tensorflow:1.15.5-gpu-py3"  # the file's runtime, GPU variant
    assert p.main["metadata"]["labels"]["team"] == "nlp"
    assert p.main["spec"]["runPolicy"]["activeDeadlineSeconds"] == 7200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trainingInput: {encryptionConfig: {kmsKeyName: k}}", "Cloud KMS"),
        ("trainingInput: {network: projects/p/global/networks/n}", "VPC network peering"),
        ("trainingInput: {enableWebAccess: true}", "web access"),
        ("trainingInput: {masterConfig: {tpuTfVersion: '2.3'}}", "Cloud TPU"),
        ("trainingInput: {masterTyp: n1-standard-4}", "trainingInput.masterTyp is not a TrainingInput field"),
        ("predictionInput: {}", "'predictionInput' is not part of a training job"),
        ("trainingInput: {scheduling: {maxRuntime: 1s}}", "scheduling.maxRuntime is not a Scheduling field"),
        ("trainingInput: [", "not valid YAML"),
    ],
)
def test_config_fields_that_cannot_be_carried_out_are_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        training.read_config(text, source="c.yaml")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("framework", "kind", "key", "types", "container_name"),
    [
        ("pytorch", "PyTorchJob", "pytorchReplicaSpecs", {"Master": 1, "Worker": 2}, "pytorch"),
        ("xgboost", "XGBoostJob", "xgbReplicaSpecs", {"Master": 1, "Worker": 2}, "xgboost"),
        ("paddle", "PaddleJob", "paddleReplicaSpecs", {"Master": 1, "Worker": 2}, "paddle"),
        ("jax", "JAXJob", "jaxReplicaSpecs", {"Worker": 3}, "jax"),
    ],
)
def test_frameworks(framework: str, kind: str, key: str, types: dict[str, int], container_name: str) -> None:
    p = plan(
        framework=framework,
        module_name="t.m",
        master_machine_type="n1-standard-8",
        worker_count=2,
        worker_machine_type="n1-standard-8",
    )
    assert p.main["kind"] == kind
    s = p.main["spec"][key]
    assert {k: v["replicas"] for k, v in s.items()} == types
    assert all(v["template"]["spec"]["containers"][0]["name"] == container_name for v in s.values())


def test_pytorch_leaves_the_start_order_to_init_pytorch() -> None:
    p = plan(
        framework="pytorch",
        module_name="t.m",
        master_machine_type="n1-standard-8",
        worker_count=1,
        worker_machine_type="n1-standard-8",
    )
    assert "initContainers" not in p.main["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]


@pytest.mark.parametrize("framework", ["pytorch", "xgboost", "jax", "paddle", "mpi"])
def test_parameter_servers_only_exist_for_tensorflow(framework: str) -> None:
    with pytest.raises(UsageError, match=f"--framework {framework} has no parameter servers"):
        plan(
            framework=framework,
            master_image_uri="i",
            master_machine_type="n1-standard-4",
            parameter_server_count=1,
            parameter_server_machine_type="n1-standard-4",
            worker_count=1,
            worker_machine_type="n1-standard-4",
        )


def test_jax_needs_one_machine_type() -> None:
    with pytest.raises(UsageError, match="same machine type"):
        plan(
            framework="jax",
            module_name="t.m",
            master_machine_type="n1-standard-8",
            worker_count=1,
            worker_machine_type="n1-standard-4",
        )


def test_mpi_launcher_runs_mpirun_over_the_workers_slots() -> None:
    p = plan(
        framework="mpi",
        master_image_uri="horovod:1",
        module_name="t.m",
        master_machine_type="n1-standard-4",
        worker_count=2,
        worker_machine_type="n1-standard-8",
        worker_accelerator="type=nvidia-tesla-t4,count=4",
    )
    job = p.main
    assert job["apiVersion"] == "kubeflow.org/v2beta1" and job["kind"] == "MPIJob"
    assert job["spec"]["slotsPerWorker"] == 4
    launcher = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]
    script = launcher["containers"][0]["command"][2]
    assert "exec mpirun --allow-run-as-root -np 8 " in script
    # the launcher waits for every worker instead of failing on an unknown host
    assert launcher["initContainers"][0]["args"] == ["my-job-worker-0.my-job", "my-job-worker-1.my-job"]
    worker = job["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert "command" not in worker and "args" not in worker  # the image's sshd


def test_mpi_without_workers_runs_the_launcher_as_worker() -> None:
    p = plan(framework="mpi", master_image_uri="horovod:1")
    assert p.main["spec"]["runLauncherAsWorker"] is True
    assert list(p.main["spec"]["mpiReplicaSpecs"]) == ["Launcher"]


def test_credentials_data_and_networks_reach_every_replica() -> None:
    p = plan(
        module_name="t.m",
        master_machine_type="n1-standard-4",
        worker_count=1,
        worker_machine_type="n1-standard-4",
        credentials=("aws-team", "gcp-sa"),
        data=(parse_data("imagenet=s3://datasets/imagenet:/mnt/imagenet"),),
        data_credentials="aws-team",
        secondary_networks=("rdma-net",),
    )
    claim, job = p.objects
    assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == "imagenet"
    assert claim["metadata"]["annotations"] == {
        "preload.kaip.dev/source": "s3://datasets/imagenet/",
        "preload.kaip.dev/credentials": "aws-team",
    }
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # two replicas read it
    for replica in job["spec"]["tfReplicaSpecs"].values():
        template = replica["template"]
        assert template["metadata"]["annotations"]["kaip.dev/credentials"] == "aws-team,gcp-sa"
        assert template["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "rdma-net"
        assert {"name": "data-imagenet", "persistentVolumeClaim": {"claimName": "imagenet"}} in template[
            "spec"
        ]["volumes"]
        assert {"name": "data-imagenet", "mountPath": "/mnt/imagenet"} in template["spec"]["containers"][0][
            "volumeMounts"
        ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ds=s3://bucket/p", ("ds", "s3://bucket/p/", "/data/ds")),
        ("ds=gs://bucket/p/q/:/mnt/x", ("ds", "gs://bucket/p/q/", "/mnt/x")),
        ("ds=s3://bucket", ("ds", "s3://bucket/", "/data/ds")),
    ],
)
def test_parse_data(value: str, expected: tuple[str, str, str]) -> None:
    d = parse_data(value)
    assert (d.name, d.source, d.mount) == expected


@pytest.mark.parametrize(
    "value", ["ds", "ds=/local", "DS=s3://bucket", "ds=http://x/y", "ds=s3://b/p", "ds=s3://bu..ck/p"]
)
def test_parse_data_refuses(value: str) -> None:
    with pytest.raises(UsageError, match="--data"):
        parse_data(value)


def test_kueue_queue_and_priority_are_labels() -> None:
    job = plan(master_image_uri="i", queue="team-a", priority="high").main
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "high"
    assert "schedulingPolicy" not in job["spec"]["runPolicy"]


def test_volcano_gang_scheduling() -> None:
    job = plan(
        master_image_uri="i",
        master_machine_type="n1-standard-4",
        worker_count=3,
        worker_machine_type="n1-standard-4",
        scheduler="volcano",
        gang=True,
        queue="research",
        priority="high",
    ).main
    assert job["spec"]["runPolicy"]["schedulingPolicy"] == {
        "minAvailable": 4,
        "queue": "research",
        "priorityClass": "high",
        "minResources": {"cpu": "16", "memory": "60Gi"},  # what the operator gives Volcano's PodGroup
    }
    assert job["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["priorityClassName"] == "high"
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]


def test_scheduler_plugins_takes_max_wait_time() -> None:
    config = {"trainingInput": {"scheduling": {"maxWaitTime": "3600s"}}}
    job = plan(config=config, master_image_uri="i", scheduler="scheduler-plugins", gang=True).main
    assert job["spec"]["runPolicy"]["schedulingPolicy"] == {
        "minAvailable": 1,
        "minResources": {"cpu": "4", "memory": "15Gi"},
        "scheduleTimeoutSeconds": 3600,
    }


def test_max_wait_time_that_the_scheduler_will_not_enforce_is_said() -> None:
    config = {"trainingInput": {"scheduling": {"maxWaitTime": "3600s"}}}
    assert (
        "scheduling.maxWaitTime is enforced only with --scheduler scheduler-plugins"
        in plan(config=config, master_image_uri="i").warnings
    )
    assert plan(config=config, master_image_uri="i", scheduler="scheduler-plugins", gang=True).warnings == []


def test_gang_needs_a_gang_scheduler() -> None:
    with pytest.raises(UsageError, match="--gang needs --scheduler volcano or scheduler-plugins"):
        plan(master_image_uri="i", gang=True)


SIX_BY_FOUR = {  # the job: 6 replicas of 4 GPUs, 24 GPUs in all
    "master_image_uri": "i",
    "scale_tier": "custom",
    "master_machine_type": "n1-standard-8",
    "master_accelerator": "type=nvidia-tesla-a100,count=4",
    "worker_count": 5,
    "worker_machine_type": "n1-standard-8",
    "worker_accelerator": "type=nvidia-tesla-a100,count=4",
}


def test_a_multi_replica_gpu_job_is_gang_scheduled_by_the_catalogs_default() -> None:
    job = plan(**SIX_BY_FOUR, scheduler="scheduler-plugins", queue="gpus").main
    # minResources counts the GPUs given as limits only (training-operator would leave them out).
    assert job["spec"]["runPolicy"]["schedulingPolicy"] == {
        "minAvailable": 6,
        "minResources": {"cpu": "48", "memory": "180Gi", "nvidia.com/gpu": "24"},
    }
    # Kueue holds the quota in front of the gang scheduler: the queue is Kueue's LocalQueue.
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    # One replica, or no GPUs: nothing to hold back; under Kueue alone there is no gang scheduler.
    assert (
        "schedulingPolicy"
        not in plan(master_image_uri="i", scheduler="scheduler-plugins").main["spec"]["runPolicy"]
    )
    cpu_only = plan(master_image_uri="i", worker_count=2, worker_machine_type="n1-standard-4",
                    master_machine_type="n1-standard-4", scheduler="scheduler-plugins").main  # fmt: skip
    assert "schedulingPolicy" not in cpu_only["spec"]["runPolicy"]
    assert "schedulingPolicy" not in plan(**SIX_BY_FOUR).main["spec"]["runPolicy"]


@pytest.mark.parametrize(("default", "gang"), [("never", False), ("always", True)])
def test_the_catalog_chooses_which_jobs_are_gang_scheduled(default: str, gang: bool) -> None:
    catalog = Catalog({**BUILTIN, "scheduling": {"queueing": "scheduler-plugins", "gang": default}})
    job = submit.plan(
        flags=training.SubmitFlags(job_id="j", master_image_uri="i"),
        config=None,
        options=ClusterOptions(),
        catalog=catalog,
        local_files=(),
        remote_packages=(),
    ).main
    assert ("schedulingPolicy" in job["spec"]["runPolicy"]) is gang
    with pytest.raises(UsageError, match=r"scheduling\.gang 'sometimes'"):
        submit.plan(
            flags=training.SubmitFlags(job_id="j", master_image_uri="i"),
            config=None,
            options=ClusterOptions(),
            catalog=Catalog({**BUILTIN, "scheduling": {"queueing": "none", "gang": "sometimes"}}),
            local_files=(),
            remote_packages=(),
        )


def test_warnings_for_what_has_no_meaning_here() -> None:
    p = plan(master_image_uri="i", region="us-central1")
    assert any("--region us-central1" in w for w in p.warnings)


def test_configmap_staging_installs_the_packages_before_the_module() -> None:
    files = (LocalFile("trainer-0.0.0.tar.gz", b"x" * 100), LocalFile("dep.whl", b"y"))
    p = plan(module_name="trainer.task", files=files, remote=("s3://bucket/extra.tar.gz",))
    cm, job = p.objects
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "my-job-packages"
    assert set(cm["binaryData"]) == {"trainer-0.0.0.tar.gz", "dep.whl"}
    spec = job["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]
    script = spec["containers"][0]["command"][2]
    assert (
        "pip install --quiet --no-cache-dir /kaip/packages/trainer-0.0.0.tar.gz /kaip/packages/dep.whl /kaip/remote-packages/extra.tar.gz"
        in script
    )
    assert spec["initContainers"][0]["name"] == "kaip-fetch-s3-packages"
    assert spec["initContainers"][0]["args"] == ["s3://bucket/extra.tar.gz"]


def test_packages_too_big_for_a_configmap_ask_for_a_bucket() -> None:
    with pytest.raises(UsageError, match="give --staging-bucket"):
        plan(module_name="t.m", files=(LocalFile("big.tar.gz", b"x" * 800 * 1024),))


def test_staging_bucket_uploads_to_gclouds_layout() -> None:
    p = plan(module_name="t.m", staging_bucket="gs://stage", files=(LocalFile("t.tar.gz", b"abc"),))
    [(f, uri)] = p.staging.uploads
    assert f.name == "t.tar.gz"
    assert uri.startswith("gs://stage/my_job/") and uri.endswith("/t.tar.gz")
    assert p.objects[0]["kind"] == "TFJob"  # no ConfigMap
    init = p.main["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["initContainers"][0]
    assert init["args"] == [uri]


def test_packages_need_a_module() -> None:
    with pytest.raises(UsageError, match="need --module-name"):
        plan(master_image_uri="i", files=(LocalFile("t.tar.gz", b"abc"),))


def test_long_job_ids_are_refused_before_pod_names_break() -> None:
    with pytest.raises(UsageError, match="too long"):
        plan(job_id="j" * 60, master_image_uri="i")
