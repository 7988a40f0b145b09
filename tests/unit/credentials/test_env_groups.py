"""What a container sets is what its SDKs use: variables read as one setting are injected all or none.

The effective settings are read by the SDKs themselves inside the mutated environment: boto3,
botocore's own resolver, and the AWS CLI (``aws configure list``) where it is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import boto3
import botocore.session
import pytest

from kaip_incluster.admission import jsonpatch
from kaip_incluster.admission.mutators import MUTATORS
from kaip_incluster.admission.pods import PodContext, SecretInfo, mutate_pod
from kaip_testbed import needs

SECRET = "s3"
#: The Secret's values, which the kubelet would put behind each secretKeyRef.
VALUES = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "region": "eu-west-1",
    "endpoint_url": "https://minio.storage:9000",
}
INFO = SecretInfo(SECRET, "kaip.dev/aws-credentials", frozenset(VALUES))
CONTEXT = PodContext(namespace="team-a", secrets={SECRET: INFO})


def mutated(own: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    pod = {
        "metadata": {"name": "p", "annotations": {"kaip.dev/credentials": SECRET}},
        "spec": {
            "containers": [
                {"name": "main", "image": "x", "env": [{"name": k, "value": v} for k, v in own.items()]}
            ]
        },
    }
    verdict = mutate_pod(pod, CONTEXT, mutators=MUTATORS)
    assert verdict.allowed, verdict.message
    return jsonpatch.apply(pod, verdict.patch)["spec"]["containers"][0], list(verdict.warnings)


def environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it (secretKeyRef resolved)."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == SECRET
            if ref["key"] in VALUES:
                env[entry["name"]] = VALUES[ref["key"]]
    return env


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, str]:
    """An environment with no AWS setting of this machine: no AWS_* variable, no config files."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    base = {
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in base.items():
        monkeypatch.setenv(name, value)
    return base


def boto3_region(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str | None:
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        region: str | None = boto3.session.Session().region_name
        assert botocore.session.Session().get_config_variable("region") == region
        return region


def cli_region(env: dict[str, str], base: dict[str, str]) -> str | None:
    """The region the AWS CLI resolves (``aws configure list`` shows it and where it came from)."""
    aws = shutil.which("aws")
    if aws is None:
        needs.missing(
            "the aws CLI is not installed (pip install -e '.[dev]' brings it); boto3 and botocore's resolver were checked"
        )
    done = subprocess.run(
        [aws, "configure", "list"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": base["AWS_CONFIG_FILE"], **base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    row = next(line.split() for line in done.stdout.splitlines() if line.split()[:1] == ["region"])
    return None if row[1] == "<not" else row[1]


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        ({}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
        ({"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
        # boto3 and the CLI read AWS_DEFAULT_REGION only: they find no region, never the Secret's.
        ({"AWS_REGION": "us-west-2"}, None),
    ],
)
def test_the_region_sdks_resolve_is_the_containers_or_else_the_secrets(
    own: dict[str, str], expected: str | None, isolated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    container, warnings = mutated(own)
    env = environment(container)
    assert boto3_region(env, monkeypatch) == expected
    assert cli_region(env, isolated) == expected
    if own:
        assert "eu-west-1" not in (env.get("AWS_REGION"), env.get("AWS_DEFAULT_REGION"))
        assert len(warnings) == 1 and "kept" in warnings[0]
    else:
        assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1" and warnings == []


@pytest.mark.parametrize("own", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"])
def test_an_endpoint_the_container_sets_is_the_one_boto3_uses(
    own: str, isolated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    container, warnings = mutated({own: "https://s3.internal:9000"})
    env = environment(container)
    assert "AWS_ENDPOINT_URL" not in env or own == "AWS_ENDPOINT_URL"
    assert env.get("AWS_ENDPOINT_URL") != VALUES["endpoint_url"]
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        client = boto3.session.Session().client("s3", region_name="us-east-1")
        assert client.meta.endpoint_url == "https://s3.internal:9000"
    assert warnings[0].startswith(f'container "main" sets {own} itself; kept')


@pytest.mark.parametrize("own", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN"])
def test_a_credential_variable_the_container_sets_keeps_all_of_the_triple_out(
    own: str, isolated: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    container, warnings = mutated({own: "OWN"})
    env = environment(container)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if name != own:
            assert name not in env
    assert env["AWS_REGION"] == "eu-west-1"  # another setting: still injected
    assert warnings == [
        f'container "main" sets {own} itself; kept, and '
        + ", ".join(n for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if n != own)
        + f' {"are" if own == "AWS_SECURITY_TOKEN" else "is"} not taken from Secret "s3" either, '
        "so that SDKs read one value"
    ]


@pytest.mark.parametrize(
    "own",
    [{}, {"AWS_REGION": "us-west-2"}, {"AWS_ENDPOINT_URL_S3": "https://x"}, {"AWS_ACCESS_KEY_ID": "A"}],
)
def test_reinvocation_changes_nothing_whatever_the_container_sets(own: dict[str, str]) -> None:
    container, _ = mutated(own)
    pod = {
        "metadata": {"name": "p", "annotations": {"kaip.dev/credentials": SECRET}},
        "spec": {"containers": [container]},
    }
    first = mutate_pod(pod, CONTEXT, mutators=MUTATORS)
    again = mutate_pod(jsonpatch.apply(pod, first.patch), CONTEXT, mutators=MUTATORS)
    assert list(again.patch) == []


def test_env_from_is_named_in_a_warning() -> None:
    pod = {
        "metadata": {"name": "p", "annotations": {"kaip.dev/credentials": SECRET}},
        "spec": {
            "containers": [{"name": "main", "image": "x", "envFrom": [{"configMapRef": {"name": "c"}}]}]
        },
    }
    verdict = mutate_pod(pod, CONTEXT, mutators=MUTATORS)
    assert any("has envFrom" in w for w in verdict.warnings)
