"""`jobs submit training`'s flags mapped onto one typed, frozen SubmitRequest: the pure mapping."""

from __future__ import annotations

import dataclasses
import inspect

import click
import pytest

from kaip.aiplatform.manifests import ClusterOptions, DataVolume
from kaip.aiplatform.request import SubmitRequest, submit_request
from kaip.aiplatform.training import SubmitFlags
from kaip.commands.ai_platform import cli
from kaip.errors import UsageError

CONFIG = """\
jobId: from_file
labels: {team: vision}
trainingInput:
  scaleTier: CUSTOM
  masterType: n1-standard-8
"""


def test_a_job_alone_is_a_request_of_defaults() -> None:
    request = submit_request(job="my_job")
    assert request == SubmitRequest(flags=SubmitFlags(job_id="my_job"), options=ClusterOptions())
    assert request.job_id == "my_job"
    assert request.dry_run == "none" and request.output is None and not request.stream_logs


def test_every_gcloud_flag_lands_in_its_field() -> None:
    request = submit_request(
        job="j",
        user_args=("--epochs=10", "--lr=0.1"),
        module_name="trainer.task",
        package_path="trainer",
        staging_bucket="s3://stage",
        job_dir="gs://out/j",
        region="us-central1",
        scale_tier="CUSTOM",
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
        service_account="trainer",
    )
    assert request.flags == SubmitFlags(
        job_id="j",
        module_name="trainer.task",
        package_path="trainer",
        staging_bucket="s3://stage",
        job_dir="gs://out/j",
        region="us-central1",
        scale_tier="custom",  # click's Choice is case-insensitive; the plan reads lower case
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
        service_account="trainer",
        args=("--epochs=10", "--lr=0.1"),
    )


def test_every_cluster_flag_lands_in_the_cluster_options() -> None:
    request = submit_request(
        job="j",
        framework="mpi",
        mpi_api="v1",
        credentials=("s3-creds,gcs-creds", "more"),
        data=("imagenet=s3://my-bucket/train:/mnt/x", "d=gs://my-bucket/p/"),
        data_credentials="loader-creds",
        queue="team-a",
        priority="high",
        gang=True,
        scheduler="volcano",
        secondary_network=("rdma-a,rdma-b",),
        namespace="ml",
    )
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


def test_packages_are_split_into_local_files_and_bucket_uris_in_their_order() -> None:
    request = submit_request(job="j", packages=("a.tar.gz,gs://b/x.whl", " s3://b/y.tar.gz ,", "dist/c.whl"))
    assert request.flags.packages == ("a.tar.gz", "gs://b/x.whl", "s3://b/y.tar.gz", "dist/c.whl")
    assert request.local_packages == ("a.tar.gz", "dist/c.whl")
    assert request.remote_packages == ("gs://b/x.whl", "s3://b/y.tar.gz")


def test_labels_given_repeated_or_as_comma_lists_merge_the_last_winning() -> None:
    request = submit_request(job="j", labels=("team=vision,stage=dev", "stage=prod"))
    assert request.flags.labels == {"team": "vision", "stage": "prod"}


def test_a_label_gcloud_refuses_is_refused() -> None:
    with pytest.raises(UsageError, match="label key 'Team'"):
        submit_request(job="j", labels=("Team=x",))


def test_the_config_file_is_read_and_checked_with_its_name_in_messages() -> None:
    request = submit_request(job="j", config_text=CONFIG, config_source="job.yaml")
    assert request.config == {
        "jobId": "from_file",
        "labels": {"team": "vision"},
        "trainingInput": {"scaleTier": "CUSTOM", "masterType": "n1-standard-8"},
    }
    with pytest.raises(UsageError, match=r"--config job\.yaml: trainingInput\.network \(VPC"):
        submit_request(job="j", config_text="trainingInput: {network: x}", config_source="job.yaml")


def test_the_output_the_dry_run_and_streaming_are_carried() -> None:
    request = submit_request(job="j", dry_run="server", output="yaml", stream_logs=True)
    assert (request.dry_run, request.output, request.stream_logs) == ("server", "yaml", True)


def test_async_and_stream_logs_are_exclusive() -> None:
    with pytest.raises(UsageError, match="--async and --stream-logs cannot both be set"):
        submit_request(job="j", stream_logs=True, async_=True)
    assert not submit_request(job="j", async_=True).stream_logs


def test_a_dry_run_kubectl_does_not_know_is_refused() -> None:
    with pytest.raises(UsageError, match="--dry-run 'all'"):
        submit_request(job="j", dry_run="all")


def test_a_bad_data_flag_is_refused_before_anything_is_read() -> None:
    with pytest.raises(UsageError, match="--data 'x'"):
        submit_request(job="j", data=("x",))


def test_the_request_is_frozen() -> None:
    request = submit_request(job="j")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.dry_run = "client"  # type: ignore[misc]


def test_every_flag_of_the_command_is_a_keyword_of_the_mapping() -> None:
    """The command hands click's values to submit_request by name: the two lists must be equal."""
    jobs = cli.commands["jobs"]
    assert isinstance(jobs, click.Group)
    submit = jobs.commands["submit"]
    assert isinstance(submit, click.Group)
    command = submit.commands["training"]
    cluster = {p.name for p in jobs.commands["cancel"].params} - {"job"}  # kubectl's flags, as one target
    given = {p.name for p in command.params if p.expose_value} - cluster - {"config_path"}
    # what the command derives itself: the --config file's text and name, -n's namespace
    taken = set(inspect.signature(submit_request).parameters) - {"config_text", "config_source", "namespace"}
    assert given == taken
