"""`jobs submit training`'s HPC flags from the command line: ``--volume``, ``--run-as-user``,
``--run-as-group``, ``--fs-group``, ``--exclusive``, as a user sees them in ``--dry-run=client``
and in the one-line refusals."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kaip.cli.app import run
from kaip.commands.ai_platform import cli

BASE = ("--master-image-uri=i", "--scale-tier=custom", "--master-machine-type=n1-standard-8")


def submit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    argv = ["jobs", "submit", "training", "j", *BASE, "--dry-run=client", "-o", "yaml", *args]
    code = run(cli, argv, prog_name="kubectl ai-platform")
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def pod(result: tuple[int, str, str]) -> dict[str, Any]:
    code, out, err = result
    assert code == 0, err
    job = list(yaml.safe_load_all(out))[-1]
    spec: dict[str, Any] = job["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]
    return spec


def test_the_flags_show_in_a_client_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    spec = pod(
        submit(
            capsys,
            "--volume=fast=pvc:lustre-fast:/fast",
            "--volume=large=pvc:lustre-large:/large:ro",
            "--run-as-user=20001",
            "--run-as-group=20001",
            "--fs-group=20001",
            "--exclusive",
        )
    )
    assert spec["securityContext"] == {"runAsUser": 20001, "runAsGroup": 20001, "fsGroup": 20001}
    resources = spec["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "8", "memory": "30720Mi"}
    assert {"name": "large", "mountPath": "/large", "readOnly": True} in spec["containers"][0]["volumeMounts"]
    assert {"name": "fast", "persistentVolumeClaim": {"claimName": "lustre-fast"}} in spec["volumes"]


def test_without_the_flags_nothing_changes(capsys: pytest.CaptureFixture[str]) -> None:
    spec = pod(submit(capsys, "--no-exclusive"))
    assert "securityContext" not in spec
    assert spec["containers"][0]["resources"] == {
        "requests": {"cpu": "8", "memory": "30720Mi"},
        "limits": {"memory": "30720Mi"},
    }


def test_refusals_are_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = submit(capsys, "--volume=fast=nfs:/x")
    assert code == 2
    assert "error: --volume 'fast=nfs:/x': expected NAME=pvc:CLAIM:/PATH[:ro]" in err
    code, _, err = submit(capsys, "--volume=shm=pvc:c:/dev/shm")
    assert code == 2 and "--volume shm: mount path /dev/shm collides with /dev/shm" in err
    code, _, err = submit(capsys, "--run-as-user=-1")
    assert code == 2 and "--run-as-user" in err and "-1 is not in the range x>=0" in err
