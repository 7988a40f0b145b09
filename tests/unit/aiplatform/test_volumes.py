"""``--volume NAME=pvc:CLAIM:/path[:ro]``: parsed, merged with ``--config``, mounted into every replica,
refused where it collides with another flag's mount or its claim cannot serve the job's Pods."""

from __future__ import annotations

from typing import Any

import pytest

from kaip.aiplatform import submit, training
from kaip.aiplatform import volumes as existing
from kaip.aiplatform.builtin_catalog import BUILTIN
from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.manifests import ClusterOptions, parse_data
from kaip.aiplatform.preflight import pods_at_once
from kaip.aiplatform.request import submit_request
from kaip.aiplatform.volumes import ClaimVolume, parse_volume
from kaip.errors import UsageError


def plan(volumes: tuple[str, ...], **options: Any) -> submit.Plan:
    return submit.plan(
        flags=training.SubmitFlags(
            job_id="j",
            master_image_uri="i",
            master_machine_type="n1-standard-4",
            worker_count=2,
            worker_machine_type="n1-standard-4",
        ),
        config=None,
        options=ClusterOptions(volumes=tuple(parse_volume(v) for v in volumes), **options),
        catalog=Catalog(BUILTIN),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fast=pvc:lustre-fast:/fast", ClaimVolume("fast", "lustre-fast", "/fast")),
        ("large=pvc:lustre.large:/large/:ro", ClaimVolume("large", "lustre.large", "/large", read_only=True)),
        ("x=pvc:c:/a/b:rw", ClaimVolume("x", "c", "/a/b")),
    ],
)
def test_the_flag_names_the_volume_its_claim_and_path(value: str, expected: ClaimVolume) -> None:
    assert parse_volume(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fast", "expected NAME=pvc:CLAIM:/PATH"),
        ("fast=nfs:server:/x", "expected NAME=pvc:CLAIM:/PATH"),
        ("fast=pvc:claim", "expected NAME=pvc:CLAIM:/PATH"),
        ("Fast=pvc:claim:/x", "NAME must be a DNS-1123 label"),
        ("fast=pvc:Claim_1:/x", "CLAIM must be a PersistentVolumeClaim's name"),
        ("fast=pvc:claim:data", "the mount path must be absolute"),
    ],
)
def test_a_malformed_flag_is_refused_by_name(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=f"--volume '{value}'.*{message}"):
        parse_volume(value)


def test_every_replica_mounts_the_claims() -> None:
    job = plan(("fast=pvc:lustre-fast:/fast", "large=pvc:lustre-large:/large:ro")).main
    for replica in job["spec"]["tfReplicaSpecs"].values():
        pod = replica["template"]["spec"]
        assert {"name": "fast", "persistentVolumeClaim": {"claimName": "lustre-fast"}} in pod["volumes"]
        assert {
            "name": "large",
            "persistentVolumeClaim": {"claimName": "lustre-large", "readOnly": True},
        } in pod["volumes"]
        mounts = pod["containers"][0]["volumeMounts"]
        assert {"name": "fast", "mountPath": "/fast"} in mounts
        assert {"name": "large", "mountPath": "/large", "readOnly": True} in mounts


@pytest.mark.parametrize(
    ("volume", "options", "message"),
    [
        ("d=pvc:c:/data/imagenet", {"data": (parse_data("imagenet=s3://datasets/p"),)}, "of --data imagenet"),
        (
            "d=pvc:c:/data",
            {"data": (parse_data("imagenet=s3://datasets/p"),)},
            "/data/imagenet of --data imagenet",
        ),
        ("d=pvc:c:/var/run/secrets/kaip.dev/gcp/sa", {"credentials": ("sa",)}, "of --credentials sa"),
        ("d=pvc:c:/dev/shm", {}, "of kaip's shared memory"),
    ],
)
def test_a_mount_path_of_another_flag_is_refused(volume: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=f"--volume d: mount path .* collides with .*{message}; give"):
        plan((volume,), **options)


def test_two_volumes_on_one_path_and_kaips_own_names_are_refused() -> None:
    with pytest.raises(UsageError, match="--volume a: mount path /x collides with /x of --volume b"):
        plan(("a=pvc:c:/x", "b=pvc:d:/x"))
    with pytest.raises(UsageError, match="--volume dshm: the Pod volume name dshm is kaip's own"):
        plan(("dshm=pvc:c:/x",))
    with pytest.raises(UsageError, match=r"--volume data-imagenet: .* kaip's own"):
        plan(("data-imagenet=pvc:c:/x",), data=(parse_data("imagenet=s3://datasets/p"),))


def test_the_config_file_gives_volumes_and_a_flag_replaces_one_of_its_name() -> None:
    config = """
kubernetes:
  volumes:
    - {name: fast, claim: lustre-fast, mountPath: /fast}
    - large=pvc:lustre-large:/large:ro
trainingInput: {masterConfig: {imageUri: i}}
"""
    request = submit_request(
        job="j", config_text=config, config_source="job.yaml", volume=("fast=pvc:other:/f",)
    )
    assert request.options.volumes == (
        ClaimVolume("large", "lustre-large", "/large", read_only=True),
        ClaimVolume("fast", "other", "/f"),
    )
    with pytest.raises(UsageError, match=r"job.yaml: kubernetes.volumes\[0\]: name, claim and mountPath"):
        submit_request(job="j", config_text="kubernetes: {volumes: [{name: a}]}", config_source="job.yaml")
    with pytest.raises(UsageError, match=r"job.yaml: kubernetes must be a mapping with volumes"):
        submit_request(job="j", config_text="kubernetes: {nodes: 1}", config_source="job.yaml")
    with pytest.raises(UsageError, match="--volume a: given twice"):
        submit_request(job="j", volume=("a=pvc:c:/x", "a=pvc:d:/y"))


def claim(*modes: str, phase: str = "Bound") -> dict[str, Any]:
    return {"spec": {"accessModes": list(modes)}, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("modes", "read_only", "pods", "fine"),
    [
        (("ReadWriteMany",), False, 8, True),
        (("ReadOnlyMany",), True, 8, True),
        (("ReadWriteOnce",), False, 1, True),
        (("ReadWriteOncePod",), False, 1, True),
        (("ReadWriteOnce",), False, 2, False),
        (("ReadWriteOncePod",), True, 2, False),
        (("ReadOnlyMany",), False, 2, False),
    ],
)
def test_access_modes_that_serve_the_pods(
    modes: tuple[str, ...], read_only: bool, pods: int, fine: bool
) -> None:
    volume = ClaimVolume("v", "c", "/v", read_only)
    assert (existing.refusal(volume, claim(*modes), pods=pods) is None) is fine


def test_the_refusals_say_what_to_do() -> None:
    rwo = existing.refusal(ClaimVolume("v", "c", "/v"), claim("ReadWriteOnce"), pods=3)
    assert rwo == (
        "--volume v: PVC c is ReadWriteOnce, which cannot serve the job's 3 Pods on different nodes; use a "
        "ReadWriteMany claim (NFS, Lustre, CephFS), or a ReadOnlyMany one with :ro, or run one replica"
    )
    rox = existing.refusal(ClaimVolume("v", "c", "/v"), claim("ReadOnlyMany"), pods=3)
    assert rox == "--volume v: PVC c is ReadOnlyMany, which mounts only read-only; add :ro"
    lost = existing.refusal(ClaimVolume("v", "c", "/v"), claim("ReadWriteMany", phase="Lost"), pods=1)
    assert lost is not None and "is Lost" in lost


def test_pods_at_once_counts_replicas_and_parallel_trials() -> None:
    job = plan(()).main
    assert pods_at_once(job) == 3
    experiment = {
        "kind": "Experiment",
        "spec": {"parallelTrialCount": 2, "trialTemplate": {"trialSpec": job}},
    }
    assert pods_at_once(experiment) == 6
