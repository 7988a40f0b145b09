"""`kubectl ai-platform jobs submit training` from the command line, client dry run: gcloud's documented
example command lines, its flag checks, cloud-only flags, user arguments after `--`, and --config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from kaip.cli.app import run
from kaip.commands.ai_platform import cli
from kaip.resources import kubeflow as kf


def submit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    argv = ["jobs", "submit", "training", "--dry-run=client", "-o", "yaml", *args]
    code = run(cli, argv, prog_name="kubectl ai-platform")
    out, err = capsys.readouterr()
    docs = [d for d in yaml.safe_load_all(out) if d] if code == 0 else []
    return code, docs, err


def master(doc: dict[str, Any], key: str = "tfReplicaSpecs", rtype: str = "Master") -> dict[str, Any]:
    return doc["spec"][key][rtype]["template"]["spec"]["containers"][0]


@pytest.fixture
def trainer(tmp_path: Path) -> Path:
    pkg = tmp_path / "code" / "trainer"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("import sys\nprint(sys.argv)\n")
    (tmp_path / "additional-dep1.tar.gz").write_bytes(b"dep1")
    (tmp_path / "dep2.whl").write_bytes(b"dep2")
    return tmp_path


def test_gcloud_reference_example_with_package_path_and_packages(
    capsys: pytest.CaptureFixture[str], trainer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gcloud ai-platform jobs submit training my_job --module-name=trainer.task
    #   --package-path=path/to/my/code/trainer --packages=additional-dep1.tar.gz,dep2.whl
    monkeypatch.chdir(trainer)
    code, docs, _ = submit(
        capsys,
        "my_job",
        "--module-name=trainer.task",
        "--package-path=code/trainer",
        "--packages=additional-dep1.tar.gz,dep2.whl",
    )
    assert code == 0
    cm, job = docs
    assert cm["kind"] == "ConfigMap" and sorted(cm["binaryData"]) == [
        "additional-dep1.tar.gz",
        "dep2.whl",
        "trainer-0.0.0.tar.gz",
    ]
    script = master(job)["command"][2]
    assert (
        "/kaip/packages/trainer-0.0.0.tar.gz /kaip/packages/additional-dep1.tar.gz /kaip/packages/dep2.whl"
        in script
    )
    assert master(job)["command"][-1] == "trainer.task"


def test_gcloud_custom_container_example(capsys: pytest.CaptureFixture[str]) -> None:
    # gcloud ai-platform jobs submit training $JOB_NAME --region $REGION --master-image-uri $IMAGE_URI
    #   -- --model-dir=gs://$BUCKET_NAME/$MODEL_DIR --epochs=10
    code, docs, err = submit(
        capsys,
        "custom_container_job",
        "--region",
        "us-central1",
        "--master-image-uri",
        "gcr.io/p/pytorch_custom_container:v1",
        "--",
        "--model-dir=gs://b/m",
        "--epochs=10",
    )
    assert code == 0
    c = master(docs[0])
    assert c["image"] == "gcr.io/p/pytorch_custom_container:v1" and c["args"] == [
        "--model-dir=gs://b/m",
        "--epochs=10",
    ]
    assert "Warning: --region us-central1" in err


def test_gcloud_gpu_example_with_runtime_and_job_dir(capsys: pytest.CaptureFixture[str]) -> None:
    # gcloud ai-platform jobs submit training $JOB_NAME --scale-tier custom --master-machine-type n1-standard-8
    #   --master-accelerator count=1,type=nvidia-tesla-v100 --runtime-version 2.11 --python-version 3.7
    #   --job-dir $JOB_DIR --package-path ./trainer --module-name trainer.task -- --train-steps 1000
    # (Python 3.8 here: the TensorFlow 2.11 image carries 3.8, and 3.7 is refused with what is served.)
    code, docs, _ = submit(
        capsys, "gpu_job", "--scale-tier", "custom", "--master-machine-type", "n1-standard-8",
        "--master-accelerator", "count=1,type=nvidia-tesla-v100", "--runtime-version", "2.11", "--python-version", "3.8",
        "--job-dir", "gs://b/out", "--module-name", "trainer.task", "--packages", "gs://b/trainer-0.1.tar.gz",
        "--", "--train-steps", "1000",
    )  # fmt: skip
    assert code == 0
    c = master(docs[0])
    assert c["image"] == "tensorflow/tensorflow:2.11.0-gpu"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["args"] == ["--train-steps", "1000", "--job-dir=gs://b/out"]


def test_gcloud_distributed_example_with_workers_and_parameter_servers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, docs, _ = submit(
        capsys, "dist_job", "--module-name=trainer.task", "--packages=gs://b/t.tar.gz", "--scale-tier=custom",
        "--master-machine-type=n1-highcpu-16", "--worker-count=9", "--worker-machine-type=n1-highcpu-16",
        "--parameter-server-count=3", "--parameter-server-machine-type=n1-highmem-8",
        "--worker-accelerator=type=nvidia-tesla-t4,count=2", "--labels=team=vision,stage=exp",
    )  # fmt: skip
    assert code == 0
    job = docs[0]
    assert {k: v["replicas"] for k, v in job["spec"]["tfReplicaSpecs"].items()} == {
        "Master": 1,
        "Worker": 9,
        "PS": 3,
    }
    assert master(job, rtype="Worker")["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert job["metadata"]["labels"]["team"] == "vision" and job["metadata"]["labels"]["stage"] == "exp"


def test_config_file_and_flags(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "trainingInput:\n  scaleTier: CUSTOM\n  masterType: n1-standard-8\n  workerType: n1-standard-8\n"
        "  workerCount: 4\n  masterConfig:\n    imageUri: registry.local/train:2\n"
    )
    code, docs, _ = submit(
        capsys, "cfg_job", f"--config={config}", "--worker-count=1", "--worker-machine-type=n1-standard-4"
    )
    assert code == 0
    workers = docs[0]["spec"]["tfReplicaSpecs"]["Worker"]
    assert workers["replicas"] == 1
    assert workers["template"]["spec"]["containers"][0]["image"] == "registry.local/train:2"


def test_hptuning_config_becomes_an_experiment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "hptuning_config.yaml"
    config.write_text(
        "trainingInput:\n  hyperparameters:\n    goal: MINIMIZE\n    hyperparameterMetricTag: loss\n    maxTrials: 6\n"
        "    params:\n    - parameterName: learning-rate\n      type: DOUBLE\n      minValue: 0.0001\n      maxValue: 0.1\n"
        "      scaleType: UNIT_LOG_SCALE\n"
    )
    code, docs, _ = submit(
        capsys, "hp_job", "--master-image-uri=i", f"--config={config}", "--framework=pytorch"
    )
    assert code == 0
    exp = docs[0]
    assert exp["kind"] == "Experiment" and exp["spec"]["trialTemplate"]["trialSpec"]["kind"] == "PyTorchJob"
    assert exp["spec"]["objective"]["type"] == "minimize"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kms-key=projects/p/keys/k"],
            "--kms-key (customer-managed encryption keys (Cloud KMS)) exists only on Google Cloud",
        ),
        (["--network=projects/p/global/networks/n"], "--network (VPC network peering"),
        (["--tpu-tf-version=2.3"], "--tpu-tf-version (Cloud TPU)"),
        (["--enable-web-access"], "--enable-web-access (interactive shell web access"),
        (["--no-such-flag"], "No such option '--no-such-flag'"),
        (["--scale-tier=huge"], "'huge' is not one of"),
        (["--worker-count=2"], "--worker-count requires --worker-machine-type"),
        (
            [
                "--master-accelerator=type=tpu-v3,count=8",
                "--scale-tier=custom",
                "--master-machine-type=n1-standard-8",
            ],
            "Cloud TPU",
        ),
        (["--framework=mxnet"], "'mxnet' is not one of"),
    ],
)
def test_refused_flags_say_why(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = submit(capsys, "j", "--module-name=t.m", *args)
    assert code == 2
    assert message in " ".join(err.split())


def test_stream_logs_and_async_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = submit(capsys, "j", "--module-name=t.m", "--stream-logs", "--async")
    assert code == 2 and "--async and --stream-logs cannot both be set" in err


def test_user_args_after_double_dash_keep_their_dashes(capsys: pytest.CaptureFixture[str]) -> None:
    code, docs, _ = submit(
        capsys, "j", "--master-image-uri=i", "--", "--verbosity", "DEBUG", "-x", "--labels=not-ours"
    )
    assert code == 0
    assert master(docs[0])["args"] == ["--verbosity", "DEBUG", "-x", "--labels=not-ours"]
    assert "not-ours" not in str(docs[0]["metadata"].get("labels"))


def test_namespace_flag_lands_in_the_objects(capsys: pytest.CaptureFixture[str]) -> None:
    code, docs, _ = submit(capsys, "j", "--master-image-uri=i", "-n", "team-a", "--data", "ds=s3://bucket/p")
    assert code == 0
    assert [d["metadata"]["namespace"] for d in docs] == ["team-a", "team-a"]


def test_without_output_the_dry_run_names_what_it_would_create(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        cli,
        [
            "jobs",
            "submit",
            "training",
            "j",
            "--master-image-uri=i",
            "--framework=xgboost",
            "--dry-run=client",
        ],
        prog_name="p",
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == "xgboostjob.kubeflow.org/j created (dry run)"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


@pytest.mark.parametrize("path", _commands(cli))
def test_every_help_runs(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> None:
    assert run(cli, [*path, "--help"], prog_name="kubectl ai-platform") == 0
    assert "Usage: kubectl ai-platform " + " ".join(path) in capsys.readouterr().out


def test_config_show_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cli, ["config", "show", "--builtin"], prog_name="p") == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert doc["scaleTiers"]["standard-1"]["workerCount"] == 4
    assert doc["machineTypes"]["a2-highgpu-8g"]["accelerator"] == {"type": "nvidia-tesla-a100", "count": 8}


def test_a_client_dry_run_shows_the_staging_bucket(capsys: pytest.CaptureFixture[str], trainer: Path) -> None:
    code, docs, err = submit(
        capsys,
        "staged",
        "--module-name=trainer.task",
        f"--packages={trainer / 'dep2.whl'}",
        "--staging-bucket=s3://b",
    )
    assert code == 0, err
    uris = json.loads(docs[-1]["metadata"]["annotations"][kf.ANNOTATION_TRAINING_INPUT])["packageUris"]
    assert len(uris) == 1 and uris[0].startswith("s3://b/staged/") and uris[0].endswith("/dep2.whl")
    assert not any(d["kind"] == "ConfigMap" for d in docs)
