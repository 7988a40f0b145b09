"""kaip-alerts' HTTP answers: 200 with what was done, 400 for a payload that is not Alertmanager's,
503 when GitHub fails (so Alertmanager retries), and the counts on /metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from kaip_incluster.alerts.main import TokenFile, build_app
from kaip_incluster.github import GitHub
from kaip_testbed.github_standin import GitHubState, serve

TOKEN = "ghp_" + "y" * 36
FIRING = {
    "version": "4",
    "groupKey": '{}:{node="n1"}',
    "status": "firing",
    "receiver": "kaip-alerts",
    "groupLabels": {"node": "n1"},
    "commonLabels": {"alertname": "GPUIsLost", "node": "n1"},
    "alerts": [{"status": "firing", "labels": {"alertname": "GPUIsLost", "node": "n1"}, "fingerprint": "f1"}],
}


def test_the_alert_server_answers_alertmanager_and_counts(tmp_path: Path) -> None:
    state = GitHubState(token=TOKEN)
    github = serve(state)
    (tmp_path / "token").write_text(TOKEN + "\n")
    url = f"http://127.0.0.1:{github.server_address[1]}"

    async def run() -> None:
        good = GitHub(url, "org", "ops", TokenFile(tmp_path / "token"))
        async with TestClient(TestServer(build_app(good, labels=("kaip-alert",), rota_dir=None))) as client:
            assert (await (await client.post("/alerts", json=FIRING)).json()) == {"result": "opened"}
            assert (await client.post("/alerts", data=b"not json")).status == 400
            assert (await client.post("/alerts", json={"version": "4"})).status == 400
            metrics = await (await client.get("/metrics")).text()
            assert 'kaip_alerts_notifications_total{result="opened"} 1' in metrics
            assert 'kaip_alerts_notifications_total{result="bad_payload"} 2' in metrics
        bad = GitHub(url, "org", "ops", TokenFile(tmp_path / "missing"))
        async with TestClient(TestServer(build_app(bad, labels=("kaip-alert",), rota_dir=None))) as client:
            answer = await client.post("/alerts", json=FIRING)
            assert answer.status == 503 and "token file" in (await answer.json())["error"]

    try:
        asyncio.run(run())
    finally:
        github.shutdown()
    assert len(state.issues) == 1 and state.violations == []
