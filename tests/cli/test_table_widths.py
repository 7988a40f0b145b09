"""Default tables fit an 80-column terminal, as kubectl's do: the long fields are in -o wide, GPU USED
appears only with --gpu-usage, and a column that can be cut is cut to the terminal's width (COLUMNS).
Against the real API server, with nodes of 18-character names (a name of 40 leaves too little room for the rest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaip.cli.app import run
from kaip.cli.output import Table, format_table
from kaip.commands import node_health
from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed.gpu_nodes import GPUNode, create

pytestmark = pytest.mark.integration
TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def pool(admin_kube: Kube) -> Iterator[str]:
    run_id = uuid.uuid4().hex[:8]
    name = f"a100-{run_id}"
    nodes = [
        GPUNode(f"{name}-x9k2", pool=run_id, not_ready=True, taints=[TAINT]),
        GPUNode(
            f"{name}-p4m7",
            pool=run_id,
            not_ready=True,
            cordoned=True,
            taints=[TAINT, {"key": "kaip.dev/remediation", "value": "drain", "effect": "NoExecute"}],
            problems={
                "GPUIsLost": "lost",
                "GPUPendingPage": "page",
                "DStateProcess": "d",
                "PCIeLinkDegraded": "x",
            },
        ),
        GPUNode(f"{name}-q1z8", pool=run_id, not_ready=True, mig={"nvidia.com/mig-1g.10gb": 7}),
    ]
    create(admin_kube, nodes)
    yield run_id
    for node in nodes:
        admin_kube.delete(kinds.NODES, node.name, ignore_missing=True)


def lines(capsys: pytest.CaptureFixture[str], kubeconfig: Path, pool: str, *args: str) -> list[str]:
    argv = [
        *args,
        "-l",
        f"kaip.dev/pool={pool}",
        "--kubeconfig",
        str(kubeconfig),
        "--polarity-configmap",
        "none",
    ]
    code = run(node_health.cli, argv, prog_name="kubectl node-health")
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.splitlines()


def test_list_fits_80_columns(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    shown = lines(capsys, kubeconfig, pool, "list")
    assert shown[0].split() == ["NAME", "STATUS", "PROBLEMS", "SINCE", "GPU", "AGE"]
    assert max(len(line) for line in shown) <= 80, "\n".join(shown)
    wide = lines(capsys, kubeconfig, pool, "list", "-o", "wide")
    assert "TAINTS" in wide[0] and "GPU USED" not in wide[0]
    assert any("nvidia.com/gpu=present:NoSchedule" in line for line in wide)


def test_gpu_used_only_with_gpu_usage(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    shown = lines(capsys, kubeconfig, pool, "list", "--gpu-usage")
    assert shown[0].split()[4:7] == ["GPU", "GPU", "USED"]
    assert max(len(line) for line in shown) <= 80


def test_the_terminal_width_cuts_the_problems(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "78")
    shown = lines(capsys, kubeconfig, pool, "list")
    assert max(len(line) for line in shown) <= 78
    assert any("…" in line for line in shown)
    monkeypatch.delenv("COLUMNS")
    assert not any("…" in line for line in lines(capsys, kubeconfig, pool, "list"))  # a pipe: all of it


def test_summary_fits_80_columns(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for extra in ((), ("--gpu-usage",), ("--group-by", "kaip.dev/pool")):
        shown = lines(capsys, kubeconfig, pool, "summary", *extra)
        assert max(len(line) for line in shown) <= 80, "\n".join(shown)
    shown = lines(capsys, kubeconfig, pool, "summary")
    assert shown[0].split() == [
        "NODES", "READY", "NOTREADY", "UNKNOWN", "CORDONED", "TAINTED", "REMEDIATING", "PROBLEMS"
    ]  # fmt: skip
    gpus = "\n".join(shown).split("\n\n")[-1].splitlines()
    assert gpus[0].split() == ["GPU.PRODUCT", "RESOURCE", "NODES", "CAPACITY", "ALLOCATABLE", "STRANDED"]
    assert {tuple(r.split()[1:2]) for r in gpus[1:]} == {("gpu",), ("mig-1g.10gb",)}
    wide = lines(capsys, kubeconfig, pool, "summary", "-o", "wide")
    assert any(line.split()[:2] == ["NVIDIA.COM/GPU.PRODUCT", "RESOURCE"] for line in wide)
    assert any("UNAVAILABLE" in line for line in wide)


def test_a_cut_column_keeps_its_header_and_a_floor() -> None:
    table = Table(["NAME", "REASON"], [["job", "x" * 100]], fit=("REASON",))
    assert [len(line) for line in format_table(table, width=40).splitlines()] == [13, 40]
    assert format_table(table, width=10).splitlines()[1] == "job    " + "x" * 7 + "…"
    assert format_table(table).splitlines()[1].endswith("x" * 100)
