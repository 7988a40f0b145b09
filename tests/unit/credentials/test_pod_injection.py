"""The Pod mutation: what a user finds in a Pod annotated for credentials, and what is refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kaip_incluster.admission import jsonpatch
from kaip_incluster.admission.mutators import MUTATORS
from kaip_incluster.admission.pods import Mutation, PodContext, SecretInfo, ServiceAccountInfo, mutate_pod

AWS = SecretInfo("s3", "kaip.dev/aws-credentials", frozenset({"aws_access_key_id", "aws_secret_access_key"}))
MINIO = SecretInfo(
    "minio",
    "kaip.dev/aws-credentials",
    frozenset({"aws_access_key_id", "aws_secret_access_key", "region", "endpoint_url"}),
)
GCP = SecretInfo("gcs", "kaip.dev/gcp-credentials", frozenset({"key.json"}))
OPAQUE = SecretInfo("plain", "Opaque", frozenset({"password"}))
KNOWN = {s.name: s for s in (AWS, MINIO, GCP, OPAQUE)}


def pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "main", "image": "trainer"}], **spec}
    meta: dict[str, Any] = {"name": "p"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def context(names: list[str], account: ServiceAccountInfo | None = None) -> PodContext:
    return PodContext(namespace="team-a", service_account=account, secrets={n: KNOWN.get(n) for n in names})


def run(obj: dict[str, Any], ctx: PodContext) -> tuple[dict[str, Any], list[str]]:
    verdict = mutate_pod(obj, ctx, mutators=MUTATORS)
    assert verdict.allowed, verdict.message
    return jsonpatch.apply(obj, verdict.patch), list(verdict.warnings)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {
        e["name"]: e.get("valueFrom", {}).get("secretKeyRef") or e.get("value")
        for e in container.get("env", [])
    }


def test_aws_credentials_become_secret_key_refs() -> None:
    result, warnings = run(pod({"kaip.dev/credentials": "minio"}), context(["minio"]))
    env = env_of(result["spec"]["containers"][0])
    assert env["AWS_ACCESS_KEY_ID"] == {"name": "minio", "key": "aws_access_key_id"}
    assert env["AWS_SECRET_ACCESS_KEY"] == {"name": "minio", "key": "aws_secret_access_key"}
    assert (
        env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == {"name": "minio", "key": "region", "optional": True}
    )
    assert env["AWS_ENDPOINT_URL"] == {"name": "minio", "key": "endpoint_url", "optional": True}
    assert "AWS_SESSION_TOKEN" not in env  # the Secret has no session token
    assert result["metadata"]["annotations"]["kaip.dev/credentials-injected"] == "aws:minio"
    assert warnings == []


def test_gcp_credentials_become_a_read_only_key_file() -> None:
    result, _ = run(pod({"kaip.dev/credentials": "gcs"}), context(["gcs"]))
    spec = result["spec"]
    assert spec["volumes"] == [
        {
            "name": "kaip-gcp-gcs",
            "secret": {"secretName": "gcs", "items": [{"key": "key.json", "path": "key.json"}]},
        }
    ]
    container = spec["containers"][0]
    assert container["volumeMounts"] == [
        {"name": "kaip-gcp-gcs", "mountPath": "/var/run/secrets/kaip.dev/gcp/gcs", "readOnly": True}
    ]
    assert env_of(container)["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/run/secrets/kaip.dev/gcp/gcs/key.json"


def test_every_init_container_sidecar_and_container_but_skipped_and_ephemeral_ones() -> None:
    obj = pod(
        {"kaip.dev/credentials": "s3, gcs", "kaip.dev/skip-containers": "metrics"},
        initContainers=[
            {"name": "fetch", "image": "x"},
            {"name": "proxy", "image": "x", "restartPolicy": "Always"},
        ],
        ephemeralContainers=[{"name": "debug", "image": "busybox"}],
    )
    obj["spec"]["containers"].append(
        {"name": "metrics", "image": "exporter", "env": [{"name": "A", "value": "1"}]}
    )
    result, _ = run(obj, context(["s3", "gcs"]))
    spec = result["spec"]
    for container in [*spec["initContainers"], spec["containers"][0]]:
        assert env_of(container)["AWS_ACCESS_KEY_ID"]["name"] == "s3"
        assert "GOOGLE_APPLICATION_CREDENTIALS" in env_of(container)
    assert spec["containers"][1] == obj["spec"]["containers"][1]
    assert spec["ephemeralContainers"] == obj["spec"]["ephemeralContainers"]
    assert result["metadata"]["annotations"]["kaip.dev/credentials-injected"] == "aws:s3,gcp:gcs"


def test_a_variable_the_container_sets_is_kept_with_a_warning() -> None:
    obj = pod({"kaip.dev/credentials": "minio"})
    obj["spec"]["containers"][0]["env"] = [{"name": "AWS_REGION", "value": "on-prem-1"}]
    result, warnings = run(obj, context(["minio"]))
    env = result["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "AWS_REGION", "value": "on-prem-1"}
    assert [e["name"] for e in env].count("AWS_REGION") == 1
    assert "AWS_DEFAULT_REGION" not in [e["name"] for e in env]  # the region pair: the container's or none
    assert warnings == [
        'container "main" sets AWS_REGION itself; kept, and AWS_DEFAULT_REGION is not taken from Secret '
        '"minio" either (boto3 and the AWS CLI read only AWS_DEFAULT_REGION: set it too)'
    ]


def test_the_patch_only_adds_and_appends_to_existing_lists() -> None:
    obj = pod({"kaip.dev/credentials": "gcs"}, volumes=[{"name": "data", "emptyDir": {}}])
    obj["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    verdict = mutate_pod(obj, context(["gcs"]), mutators=MUTATORS)
    assert {op["op"] for op in verdict.patch} == {"add"}
    paths = [op["path"] for op in verdict.patch]
    assert "/spec/volumes/-" in paths and "/spec/containers/0/env/-" in paths
    assert "/metadata/annotations/kaip.dev~1credentials-injected" in paths


def test_reinvocation_changes_nothing() -> None:
    obj = pod(
        {"kaip.dev/credentials": "minio,gcs"},
        initContainers=[{"name": "fetch", "image": "x", "env": [{"name": "AWS_REGION", "value": "x"}]}],
    )
    first, _ = run(obj, context(["minio", "gcs"]))
    again = mutate_pod(first, context(["minio", "gcs"]), mutators=MUTATORS)
    assert again.allowed
    assert list(again.patch) == []


def test_service_account_annotation_is_used_and_the_pods_wins() -> None:
    account = ServiceAccountInfo("trainer", {"kaip.dev/credentials": "s3"})
    result, _ = run(pod(), context(["s3"], account))
    assert env_of(result["spec"]["containers"][0])["AWS_ACCESS_KEY_ID"]["name"] == "s3"
    result, _ = run(pod({"kaip.dev/credentials": "gcs"}), context(["gcs"], account))
    assert "AWS_ACCESS_KEY_ID" not in env_of(result["spec"]["containers"][0])
    # An empty Pod annotation is an explicit "none", stronger than the ServiceAccount's.
    verdict = mutate_pod(pod({"kaip.dev/credentials": ""}), context([], account), mutators=MUTATORS)
    assert list(verdict.patch) == []


def test_pod_without_credentials_is_untouched() -> None:
    verdict = mutate_pod(pod(), context([]), mutators=MUTATORS)
    assert verdict.allowed and list(verdict.patch) == [] and list(verdict.warnings) == []


@pytest.mark.parametrize(
    ("annotations", "names", "expected"),
    [
        ({"kaip.dev/credentials": "nope"}, ["nope"], 'Secret "nope" not found in namespace "team-a"'),
        (
            {"kaip.dev/credentials": "plain"},
            ["plain"],
            'Secret "plain" is of type "Opaque", not kaip.dev/aws',
        ),
        (
            {"kaip.dev/credentials": "other-team/s3"},
            [],
            '"other-team/s3" names a Secret in another namespace',
        ),
        ({"kaip.dev/credentials": "s3,minio"}, ["s3", "minio"], "names 2 AWS credentials (s3, minio)"),
        ({"kaip.dev/credentials": "Bad_Name"}, [], '"Bad_Name" is not a valid Secret name'),
        (
            {"kaip.dev/credentials": "s3", "kaip.dev/skip-containers": "sidecar"},
            ["s3"],
            "kaip.dev/skip-containers: no container or init container is named 'sidecar'",
        ),
    ],
)
def test_refusals_say_what_is_wrong(annotations: dict[str, str], names: list[str], expected: str) -> None:
    verdict = mutate_pod(pod(annotations), context(names), mutators=MUTATORS)
    assert not verdict.allowed
    assert expected in verdict.message
    assert verdict.code == 400


def test_refusal_names_the_service_account_it_came_from() -> None:
    account = ServiceAccountInfo("trainer", {"kaip.dev/credentials": "nope"})
    verdict = mutate_pod(pod(), context(["nope"], account), mutators=MUTATORS)
    assert 'kaip.dev/credentials on ServiceAccount "trainer": Secret "nope" not found' in verdict.message


def test_long_secret_names_get_a_valid_deterministic_volume_name() -> None:
    name = "a" * 60 + ".example.team"
    info = SecretInfo(name, "kaip.dev/gcp-credentials", frozenset({"key.json"}))
    ctx = PodContext(namespace="n", secrets={name: info})
    result, _ = run(pod({"kaip.dev/credentials": name}), ctx)
    volume = result["spec"]["volumes"][0]["name"]
    assert len(volume) <= 63 and volume.startswith("kaip-gcp-")
    assert all(c.isalnum() or c == "-" for c in volume)
    again, _ = run(pod({"kaip.dev/credentials": name}), ctx)
    assert again["spec"]["volumes"][0]["name"] == volume


def test_patch_holds_references_only() -> None:
    verdict = mutate_pod(
        pod({"kaip.dev/credentials": "minio,gcs"}), context(["minio", "gcs"]), mutators=MUTATORS
    )
    env = [
        entry
        for op in verdict.patch
        if "/env" in op["path"]
        for entry in (op["value"] if isinstance(op["value"], list) else [op["value"]])
    ]
    assert len(env) == 6  # key id, secret key, region twice, endpoint + GOOGLE_APPLICATION_CREDENTIALS
    for entry in env:
        if "value" in entry:
            assert entry == {
                "name": "GOOGLE_APPLICATION_CREDENTIALS",
                "value": "/var/run/secrets/kaip.dev/gcp/gcs/key.json",
            }
        else:
            assert set(entry["valueFrom"]) == {"secretKeyRef"}


def test_mutators_run_in_order_on_the_patched_pod() -> None:
    seen: list[dict[str, Any]] = []

    def first(obj: Any, ctx: PodContext) -> Mutation:
        return Mutation(ops=[jsonpatch.set_annotation(obj, "example.com/a", "1")], warnings=["first"])

    def second(obj: Any, ctx: PodContext) -> Mutation:
        seen.append(copy.deepcopy(obj))
        return Mutation(ops=[jsonpatch.set_annotation(obj, "example.com/b", "2")])

    verdict = mutate_pod(pod(), context([]), mutators=(first, second))
    assert seen[0]["metadata"]["annotations"] == {"example.com/a": "1"}
    result = jsonpatch.apply(pod(), verdict.patch)
    assert result["metadata"]["annotations"] == {"example.com/a": "1", "example.com/b": "2"}
    assert list(verdict.warnings) == ["first"]


def test_applying_a_patch_leaves_the_reviewed_pod_untouched() -> None:
    obj = pod({"kaip.dev/credentials": "minio,gcs"}, volumes=[{"name": "data", "emptyDir": {}}])
    before = copy.deepcopy(obj)
    verdict = mutate_pod(obj, context(["minio", "gcs"]), mutators=MUTATORS)
    patched = jsonpatch.apply(obj, verdict.patch)
    assert obj == before
    assert len(patched["spec"]["volumes"]) == 2
