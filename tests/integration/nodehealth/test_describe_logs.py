"""`node-health describe NODE --logs`: the node's kernel, kubelet, runtime and NPD lines from Loki
(the stand-in of ``kaip_testbed.loki_standin``: Loki is AGPL and cannot be built here), with the
nodes' tenant; the Node is the real API server's."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaip.cli.app import run
from kaip.commands.node_health import cli
from kaip.kube.client import Kube
from kaip.logs.merge import format_stamp
from kaip.resources import kinds
from kaip_testbed.loki_standin import LokiState, serve

pytestmark = [pytest.mark.integration]
S = 1_000_000_000


@pytest.fixture
def node(admin_kube: Kube, namespace: str) -> Iterator[str]:
    name = f"logs-{namespace}"[:60]
    admin_kube.create(kinds.NODES, {"metadata": {"name": name}})
    yield name
    admin_kube.delete(kinds.NODES, name, ignore_missing=True)


def journal(node: str, unit: str) -> dict[str, str]:
    labels = {"node_name": node, "job": "node/journal"}
    if unit:
        labels["unit"] = unit
    else:
        labels["transport"] = "kernel"
    return labels


def test_describe_logs_shows_the_nodes_journal_from_loki(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    kube: Kube,
    namespace: str,
    node: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = LokiState()
    server = serve(state)
    now = time.time_ns()
    state.push("ops", journal(node, "kubelet.service"), [(now - 60 * S, "PLEG is not healthy")])
    state.push(
        "ops",
        journal(node, ""),
        [(now - 30 * S, "NVRM: Xid (PCI:0000:47:00): 79, GPU has fallen off the bus")],
    )
    state.push("ops", journal(node, "sshd.service"), [(now - 20 * S, "Accepted publickey")])
    state.push("ops", journal(node, "kubelet.service"), [(now - 7200 * S, "too old")])
    state.push("ops", journal("other-node", "kubelet.service"), [(now - 10 * S, "another node")])
    state.push("team-a", journal(node, "kubelet.service"), [(now - 10 * S, "another tenant")])
    kube.create(
        kinds.CONFIGMAPS,
        {
            "metadata": {"name": "kaip-logging"},
            "data": {
                "url": f"http://127.0.0.1:{server.server_port}",
                "tenant": "team-a",
                "nodeTenant": "ops",
            },
        },
    )
    monkeypatch.setenv("KAIP_LOGGING_CONFIGMAP", f"{namespace}/kaip-logging")
    monkeypatch.delenv("KAIP_LOKI_URL", raising=False)
    monkeypatch.delenv("KAIP_LOKI_TENANT", raising=False)
    try:
        code = run(
            cli,
            ["describe", node, "--logs", "--kubeconfig", str(kubeconfig)],
            prog_name="kubectl node-health",
        )
        out, err = capsys.readouterr()
        assert code == 0, err
        logs = out.split("Logs:\n", 1)[1].splitlines()
        assert [line.split(None, 2) for line in logs] == [
            [format_stamp(now - 60 * S), "kubelet", "PLEG is not healthy"],
            [
                format_stamp(now - 30 * S),
                "kernel",
                "NVRM: Xid (PCI:0000:47:00): 79, GPU has fallen off the bus",
            ],
        ]
        assert f"Logs of node {node} from Loki" in err
        code = run(
            cli,
            ["describe", node, "--logs", "-o", "json", "--kubeconfig", str(kubeconfig)],
            prog_name="kubectl node-health",
        )
        out, err = capsys.readouterr()
        assert code == 0, err
        assert [x["source"] for x in json.loads(out)["logs"]] == ["kubelet", "kernel"]
        assert {r["tenant"] for r in state.requests} == {"ops"}
    finally:
        server.shutdown()
