"""The preload contract (annotations -> request) and the loader Job manifest, on plain dicts."""

from __future__ import annotations

from typing import Any

import pytest

from kaip.preload import jobs
from kaip.preload.contract import BadAnnotation, read_request

UID = "8c4f0a8e-0000-4000-8000-000000000001"


def pvc(name: str = "imagenet", **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": UID,
            "annotations": {f"preload.kaip.dev/{k}": v for k, v in annotations.items()},
        },
    }


def test_a_pvc_without_a_source_asks_for_nothing() -> None:
    assert read_request(pvc()) is None
    assert read_request({"metadata": {"name": "x"}}) is None


def test_a_full_request_is_read_and_the_prefix_is_a_directory() -> None:
    request = read_request(
        pvc(
            source="s3://datasets/imagenet",
            credentials="minio",
            path="./train//v1/",
            resources="memory=2Gi, cpu=2",
        )
    )
    assert request is not None
    assert request.source.url == "s3://datasets/imagenet/"
    assert request.credentials == "minio"
    assert request.path == "train/v1"
    assert request.resources == (("cpu", "2"), ("memory", "2Gi"))


@pytest.mark.parametrize(
    ("annotations", "annotation", "says"),
    [
        ({"source": "ftp://host/x"}, "preload.kaip.dev/source", "unknown scheme"),
        ({"source": "s3://"}, "preload.kaip.dev/source", "no bucket"),
        ({"source": "s3://bkt/x", "path": "/etc"}, "preload.kaip.dev/path", "absolute"),
        ({"source": "s3://bkt/x", "path": "a/../../x"}, "preload.kaip.dev/path", "leaves the volume"),
        (
            {"source": "s3://bkt/x", "credentials": "Not_A_Name"},
            "preload.kaip.dev/credentials",
            "not a Secret name",
        ),
        ({"source": "s3://bkt/x", "resources": "gpu=1"}, "preload.kaip.dev/resources", "cpu=2,memory=1Gi"),
        ({"source": "s3://bkt/x", "resources": "memory=lots"}, "preload.kaip.dev/resources", "NAME=QUANTITY"),
    ],
)
def test_a_bad_annotation_is_named_with_the_fix(
    annotations: dict[str, str], annotation: str, says: str
) -> None:
    with pytest.raises(BadAnnotation) as caught:
        read_request(pvc(**annotations))
    assert caught.value.annotation == annotation
    assert annotation in caught.value.message
    assert says in caught.value.message
    assert caught.value.reason == "InvalidSource"


def test_the_job_name_is_deterministic_short_and_changes_with_the_request() -> None:
    first = read_request(pvc(source="s3://bkt/x"))
    again = read_request(pvc(source="s3://bkt/x"))
    moved = read_request(pvc(source="s3://bkt/y"))
    retried = read_request(pvc(source="s3://bkt/x", retry="2"))
    assert first is not None and again is not None and moved is not None and retried is not None
    name = jobs.job_name("imagenet", first)
    assert name == jobs.job_name("imagenet", again)
    assert name.startswith("kaip-load-imagenet-")
    assert len({name, jobs.job_name("imagenet", moved), jobs.job_name("imagenet", retried)}) == 3
    assert len(jobs.job_name("p" * 253, first)) <= 63


def manifest(**annotations: str) -> dict[str, Any]:
    claim = pvc(**annotations)
    request = read_request(claim)
    assert request is not None
    return jobs.loader_job(claim, request, config=jobs.LoaderConfig())


def test_the_job_is_owned_by_the_pvc_mounts_it_and_runs_the_loader() -> None:
    job = manifest(source="s3://datasets/imagenet", credentials="minio", path="train")
    assert job["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "name": "imagenet",
            "uid": UID,
            "controller": True,
        }
    ]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/kaip-dev/kaip:v0.1.0"
    assert container["command"] == ["kaip-loader"]
    assert "--source=s3://datasets/imagenet/" in container["args"]
    assert "--target=/kaip/volume/train" in container["args"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "imagenet"}} in pod["volumes"]
    assert {"name": "data", "mountPath": "/kaip/volume"} in container["volumeMounts"]
    assert job["spec"]["backoffLimit"] == 3
    assert job["spec"]["activeDeadlineSeconds"] == 6 * 3600
    assert pod["restartPolicy"] == "Never"
    failing = job["spec"]["podFailurePolicy"]["rules"][0]
    assert failing["action"] == "FailJob" and failing["onExitCodes"]["values"] == [2, 3]


def test_the_job_runs_under_the_restricted_profile() -> None:
    pod = manifest(source="s3://bkt/x")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = pod["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["serviceAccountName"] == "kaip-data-loader"


def test_aws_credentials_arrive_by_secret_key_reference_only() -> None:
    env = manifest(source="s3://bkt/x", credentials="minio")["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs["AWS_ACCESS_KEY_ID"] == {"name": "minio", "key": "aws_access_key_id"}
    assert refs["AWS_SECRET_ACCESS_KEY"] == {"name": "minio", "key": "aws_secret_access_key"}
    assert refs["AWS_SESSION_TOKEN"] == {"name": "minio", "key": "aws_session_token", "optional": True}
    assert refs["AWS_ENDPOINT_URL"] == {"name": "minio", "key": "endpoint_url", "optional": True}
    assert refs["AWS_REGION"]["key"] == "region"
    assert not any("value" in e and e["name"].startswith("AWS_") for e in env)


def test_gcp_credentials_arrive_as_a_read_only_secret_volume() -> None:
    pod = manifest(source="gs://bkt/x", credentials="gcp-key")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volume = next(v for v in pod["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == "gcp-key"
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    key_path = next(e["value"] for e in container["env"] if e["name"] == "GOOGLE_APPLICATION_CREDENTIALS")
    assert key_path == f"{mount['mountPath']}/key.json"


def test_no_credentials_means_an_anonymous_load() -> None:
    container = manifest(source="gs://public/x")["spec"]["template"]["spec"]["containers"][0]
    assert "--anonymous" in container["args"]
    assert [e["name"] for e in container["env"]] == ["POD_NAMESPACE"]


def test_resources_come_from_the_annotation_over_the_controller_default() -> None:
    default = manifest(source="s3://bkt/x")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert default == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}
    chosen = manifest(source="s3://bkt/x", resources="memory=4Gi")["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert chosen["resources"] == {"requests": {"cpu": "500m", "memory": "4Gi"}, "limits": {"memory": "4Gi"}}


def test_the_loader_may_only_write_the_status_of_its_own_pvc() -> None:
    role, binding = jobs.loader_access(pvc(source="s3://bkt/x"))
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["persistentvolumeclaims/status"],
            "resourceNames": ["imagenet"],
            "verbs": ["get", "patch"],
        }
    ]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kaip-data-loader", "namespace": "ml"}]
    assert role["metadata"]["ownerReferences"][0]["uid"] == UID


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100Gi", 100 * 2**30),
        ("1G", 10**9),
        ("5e9", 5 * 10**9),
        ("1.5Ki", 1536),
        ("1", 1),
        ("x", None),
        ("", None),
    ],
)
def test_quantities_in_bytes(text: str, expected: int | None) -> None:
    assert jobs.quantity_bytes(text) == expected


def test_a_bound_pvc_passes_its_capacity_to_the_loader_and_an_unbound_one_none() -> None:
    claim = pvc(source="s3://datasets/imagenet")
    request = read_request(claim)
    assert request is not None
    args = jobs.loader_job(claim, request, config=jobs.LoaderConfig())["spec"]["template"]["spec"]
    assert not [a for a in args["containers"][0]["args"] if a.startswith("--capacity")]
    # The request is not the capacity: a provisioner may give more (WaitForFirstConsumer: not bound yet).
    claim["spec"] = {"resources": {"requests": {"storage": "1Gi"}}}
    claim["status"] = {"capacity": {"storage": "10Gi"}}
    container = jobs.loader_job(claim, request, config=jobs.LoaderConfig())["spec"]["template"]["spec"]
    assert f"--capacity={10 * 2**30}" in container["containers"][0]["args"]
