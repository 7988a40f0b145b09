"""manifests/data-loader agrees with the code: flags the controller takes, names the policy checks,
and RBAC that never reaches a Secret."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.resources import preload as names
from kaip_incluster.controller.main import parse_args
from kaip_testbed import binaries

ROOT = Path(__file__).parents[3] / "manifests" / "data-loader"


def documents() -> list[dict[str, Any]]:
    listed = yaml.safe_load((ROOT / "kustomization.yaml").read_text())["resources"]
    return [d for name in listed for d in yaml.safe_load_all((ROOT / name).read_text()) if d]


@pytest.mark.testbin  # kubectl kustomize, from hack/testbin.sh
def test_kustomize_builds_the_directory() -> None:
    built = subprocess.run(
        [binaries.path_of("kubectl"), "kustomize", str(ROOT)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(built.stdout) if d]
    assert {
        "Deployment",
        "ClusterRole",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    } <= set(kinds)


def test_the_deployment_runs_two_replicas_with_flags_the_controller_takes() -> None:
    (deployment,) = [d for d in documents() if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [re.sub(r"\$\((\w+)\)", "x", a) for a in container["args"]]
    parsed = parse_args(args)
    assert parsed.lease_name == "kaip-data-loader"
    assert parsed.health_port == container["ports"][0]["containerPort"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_rbac_grants_nothing_on_secrets_and_leases_only_by_name() -> None:
    rules = [r for d in documents() if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]
    assert not any("secrets" in r["resources"] for r in rules)
    lease_rules = [r for r in rules if "leases" in r["resources"]]
    assert all(
        r.get("resourceNames") == ["kaip-data-loader"] for r in lease_rules if r["verbs"] != ["create"]
    )


def test_the_policy_uses_our_public_names() -> None:
    text = (ROOT / "policy.yaml").read_text()
    for name in (
        names.ANNOTATION_SOURCE,
        names.SCHEDULING_GATE,
        names.CONDITION_LOADED,
        names.COMPONENT_LOADER,
    ):
        assert name in text
