"""`jobs submit training`'s flags translated by the command: click parses, the command hands every value
by name to :func:`kaip.aiplatform.request.submit_request`, and the request reaches the library call.

``carry_out`` (the one library call that reads packages and talks to the cluster) is patched to keep
the request it is given, so these tests need no server and no files beyond a --config."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from kaip.aiplatform import request as request_module
from kaip.aiplatform.manifests import ClusterOptions, DataVolume
from kaip.aiplatform.request import SubmitRequest, Submitted
from kaip.aiplatform.training import SubmitFlags
from kaip.commands.ai_platform import cli
from kaip.errors import UsageError
from kaip.kube.config import ClusterTarget

PROG = "kubectl ai-platform"


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[tuple[SubmitRequest, ClusterTarget]]:
    """What carry_out was called with: (request, target), one per command run."""
    calls: list[tuple[SubmitRequest, ClusterTarget]] = []

    def carry_out(request: SubmitRequest, *, target: ClusterTarget, notify: Any) -> Submitted:
        calls.append((request, target))
        return Submitted([], None)

    monkeypatch.setattr(request_module, "carry_out", carry_out)
    return calls


def submit(*args: str) -> Result:
    return CliRunner().invoke(cli, ["jobs", "submit", "training", *args], prog_name=PROG)


def one(taken: list[tuple[SubmitRequest, ClusterTarget]]) -> SubmitRequest:
    assert len(taken) == 1
    return taken[0][0]


def test_a_job_alone_is_the_request_of_defaults(taken: list[tuple[SubmitRequest, ClusterTarget]]) -> None:
    result = submit("my_job")
    assert result.exit_code == 0, result.output
    assert one(taken) == SubmitRequest(flags=SubmitFlags(job_id="my_job"), options=ClusterOptions())
    assert "Job [my_job] submitted successfully." in result.output


def test_every_gcloud_flag_reaches_its_field(taken: list[tuple[SubmitRequest, ClusterTarget]]) -> None:
    result = submit(
        "j",
        "--module-name=trainer.task",
        "--package-path=trainer",
        "--staging-bucket=s3://stage",
        "--job-dir=gs://out/j",
        "--region=us-central1",
        "--scale-tier=CUSTOM",
        "--master-machine-type=n1-standard-8",
        "--master-image-uri=reg/master:1",
        "--master-accelerator=type=nvidia-tesla-t4,count=1",
        "--worker-count=3",
        "--worker-machine-type=n1-standard-4",
        "--worker-image-uri=reg/worker:1",
        "--worker-accelerator=type=nvidia-tesla-t4,count=2",
        "--parameter-server-count=2",
        "--parameter-server-machine-type=n1-highmem-2",
        "--parameter-server-image-uri=reg/ps:1",
        "--parameter-server-accelerator=type=nvidia-tesla-p4,count=1",
        "--runtime-version=2.11",
        "--python-version=3.7",
        "--use-chief-in-tf-config=true",
        "--labels=team=vision,stage=dev",
        "--labels=stage=prod",
        "--service-account=trainer",
        "--",
        "--epochs=10",
        "--lr=0.1",
    )
    assert result.exit_code == 0, result.output
    assert one(taken).flags == SubmitFlags(
        job_id="j",
        module_name="trainer.task",
        package_path="trainer",
        staging_bucket="s3://stage",
        job_dir="gs://out/j",
        region="us-central1",
        scale_tier="custom",
        master_machine_type="n1-standard-8",
        master_image_uri="reg/master:1",
        master_accelerator="type=nvidia-tesla-t4,count=1",
        worker_count=3,
        worker_machine_type="n1-standard-4",
        worker_image_uri="reg/worker:1",
        worker_accelerator="type=nvidia-tesla-t4,count=2",
        parameter_server_count=2,
        parameter_server_machine_type="n1-highmem-2",
        parameter_server_image_uri="reg/ps:1",
        parameter_server_accelerator="type=nvidia-tesla-p4,count=1",
        runtime_version="2.11",
        python_version="3.7",
        use_chief_in_tf_config=True,
        labels={"team": "vision", "stage": "prod"},
        service_account="trainer",
        args=("--epochs=10", "--lr=0.1"),
    )


def test_every_cluster_flag_reaches_the_cluster_options(
    taken: list[tuple[SubmitRequest, ClusterTarget]],
) -> None:
    result = submit(
        "j",
        "-n",
        "ml",
        "--framework=mpi",
        "--mpi-api=v1",
        "--credentials=s3-creds,gcs-creds",
        "--credentials=more",
        "--data=imagenet=s3://my-bucket/train:/mnt/x",
        "--data=d=gs://my-bucket/p/",
        "--data-credentials=loader-creds",
        "--queue=team-a",
        "--priority=high",
        "--gang",
        "--scheduler=volcano",
        "--secondary-network=rdma-a,rdma-b",
    )
    assert result.exit_code == 0, result.output
    request = one(taken)
    assert request.options == ClusterOptions(
        framework="mpi",
        namespace="ml",
        credentials=("s3-creds", "gcs-creds", "more"),
        data=(
            DataVolume("imagenet", "s3://my-bucket/train/", "/mnt/x"),
            DataVolume("d", "gs://my-bucket/p/", "/data/d"),
        ),
        data_credentials="loader-creds",
        queue="team-a",
        priority="high",
        gang=True,
        scheduler="volcano",
        secondary_networks=("rdma-a", "rdma-b"),
        mpi_api="v1",
    )
    assert taken[0][1].namespace == "ml"  # the same target goes to carry_out


def test_packages_split_into_local_files_and_bucket_uris(
    taken: list[tuple[SubmitRequest, ClusterTarget]],
) -> None:
    result = submit("j", "--packages=a.tar.gz,gs://b/x.whl", "--packages=s3://b/y.tar.gz,dist/c.whl")
    assert result.exit_code == 0, result.output
    request = one(taken)
    assert request.flags.packages == ("a.tar.gz", "gs://b/x.whl", "s3://b/y.tar.gz", "dist/c.whl")
    assert (request.local_packages, request.remote_packages) == (
        ("a.tar.gz", "dist/c.whl"),
        ("gs://b/x.whl", "s3://b/y.tar.gz"),
    )


def test_the_config_file_is_read_with_its_name(
    taken: list[tuple[SubmitRequest, ClusterTarget]], tmp_path: Path
) -> None:
    config = tmp_path / "job.yaml"
    config.write_text("trainingInput: {scaleTier: CUSTOM, masterType: n1-standard-8}\n")
    assert submit("j", f"--config={config}").exit_code == 0
    assert one(taken).config == {"trainingInput": {"scaleTier": "CUSTOM", "masterType": "n1-standard-8"}}
    config.write_text("trainingInput: {network: x}\n")
    result = submit("j", f"--config={config}")
    assert isinstance(result.exception, UsageError)
    assert f"--config {config}: trainingInput.network" in str(result.exception)


@pytest.mark.parametrize(
    ("args", "dry_run", "output"),
    [
        ([], "none", None),
        (["--dry-run"], "client", None),  # bare --dry-run is kubectl's client dry run
        (["--dry-run=server", "-o", "yaml"], "server", "yaml"),
        (["-o", "name"], "none", "name"),
    ],
)
def test_dry_run_and_output(
    taken: list[tuple[SubmitRequest, ClusterTarget]], args: list[str], dry_run: str, output: str | None
) -> None:
    result = submit("j", *args)
    assert result.exit_code == 0, result.output
    assert (one(taken).dry_run, one(taken).output) == (dry_run, output)


def test_async_is_accepted_with_its_note_and_refused_with_stream_logs(
    taken: list[tuple[SubmitRequest, ClusterTarget]],
) -> None:
    result = submit("j", "--async")
    assert result.exit_code == 0 and "--async flag is deprecated" in result.output
    assert not one(taken).stream_logs
    refused = submit("j", "--async", "--stream-logs")
    assert isinstance(refused.exception, UsageError)
    assert "--async and --stream-logs cannot both be set" in str(refused.exception)
    assert len(taken) == 1  # nothing carried out


def test_a_cloud_only_flag_is_refused_before_the_library_is_called(
    taken: list[tuple[SubmitRequest, ClusterTarget]],
) -> None:
    result = submit("j", "--kms-key=k")
    assert result.exit_code == 2 and "--kms-key (customer-managed encryption keys" in result.output
    assert taken == []


def test_the_command_takes_exactly_its_flags_by_name() -> None:
    """Every click parameter is an explicit keyword of the command (no ``**flags``), and back."""
    jobs = cli.commands["jobs"]
    assert isinstance(jobs, click.Group)
    group = jobs.commands["submit"]
    assert isinstance(group, click.Group)
    command = group.commands["training"]
    cluster = {p.name for p in jobs.commands["cancel"].params} - {"job"}  # kubectl's flags: one target
    given = {p.name for p in command.params if p.expose_value} - cluster | {"target"}
    assert command.callback is not None
    parameters = inspect.signature(command.callback).parameters  # through the cluster_options wrapper
    assert set(parameters) == given
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
