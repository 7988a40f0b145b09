"""The CRDs agree with the code that reads and writes them: a status field the schema lacks would be
dropped by the API server (structural pruning) and the controller would lose its place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kaip.remediation import breaker
from kaip.remediation.state import State
from kaip.resources import remediation as names

CRDS = Path(__file__).resolve().parents[3] / "manifests" / "remediation" / "crds"


def schema(plural: str) -> dict[str, Any]:
    doc = yaml.safe_load((CRDS / f"{plural}.yaml").read_text())
    (version,) = doc["spec"]["versions"]
    assert doc["spec"]["group"] == names.GROUP and version["name"] == names.VERSION
    return dict(version["schema"]["openAPIV3Schema"])


def test_every_status_field_the_controller_writes_is_in_the_noderemediation_schema() -> None:
    status = schema("noderemediations")["properties"]["status"]
    full = State(
        phase="Operating",
        rule="r",
        condition="c",
        condition_since="t",
        detected_at="t",
        phase_since="t",
        operation_started="t",
        job="j",
        retry_at="t",
        message="m",
        handled_request="t",
    ).to_status()
    assert set(full) <= set(status["properties"])
    assert status["properties"]["phase"]["enum"] == list(names.PHASES)


def test_the_config_status_holds_the_breaker_and_the_slots() -> None:
    status = schema("remediationconfigs")["properties"]["status"]["properties"]
    tripped = breaker.Breaker(names.BREAKER_TRIPPED, "t", "r", "t", "me").as_status()
    assert set(tripped) <= set(status["circuitBreaker"]["properties"])
    assert status["circuitBreaker"]["properties"]["state"]["enum"] == [
        names.BREAKER_CLOSED,
        names.BREAKER_TRIPPED,
    ]
    assert set(status["holders"]["items"]["properties"]) == {"node", "rule", "since"}


def test_every_crd_is_cluster_scoped_and_named_as_the_code_addresses_it() -> None:
    for resource in (names.RULES, names.BUDGETS, names.REMEDIATIONS, names.CONFIGS):
        doc = yaml.safe_load((CRDS / f"{resource.plural}.yaml").read_text())
        assert doc["metadata"]["name"] == resource.qualified
        assert doc["spec"]["scope"] == "Cluster"
        assert doc["spec"]["names"]["kind"] == resource.kind
