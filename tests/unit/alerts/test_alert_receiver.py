"""The Alertmanager receiver's rule, against the GitHub stand-in through the shared GitHub client:
one issue per alert group, opened, commented on change, closed, reopened and reassigned; the rota."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kaip_incluster.alerts import receiver, rota
from kaip_incluster.github import GitHub, RequestFailed
from kaip_incluster.remediation import notify
from kaip_testbed.github_standin import GitHubState, serve

TOKEN = "ghp_" + "x" * 36
NOW = datetime(2026, 1, 7, 12, tzinfo=timezone.utc)


@pytest.fixture
def github() -> Iterator[tuple[GitHubState, GitHub]]:
    state = GitHubState(token=TOKEN)
    server = serve(state)
    try:
        yield state, GitHub(f"http://127.0.0.1:{server.server_address[1]}", "org", "ops", lambda: TOKEN)
    finally:
        server.shutdown()


def alert(name: str, node: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "node": node, "kaip_condition": name, **labels},
        "annotations": {"summary": f"Node {node}: {name}"},
        "startsAt": "2026-01-07T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-07T12:05:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"{name}-{node}",
    }


def payload(status: str, *alerts: dict[str, Any], key: str = '{}/{kaip_condition=~".+"}:{node="n1"}') -> Any:
    common = dict(alerts[0]["labels"]) if len(alerts) == 1 else {"node": "n1"}
    return {
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "kaip-alerts",
        "groupLabels": {"node": "n1"},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def apply(client: GitHub, doc: Any, people: tuple[str, ...] = ("alice", "bob"), at: datetime = NOW) -> str:
    return receiver.handle(receiver.parse(doc), client, rota=rota.Rota(people), now=at)


def test_an_alert_group_keeps_one_issue_opened_commented_closed_reopened(
    github: tuple[GitHubState, GitHub],
) -> None:
    state, client = github
    lost = alert("GPUIsLost", "n1")
    assert apply(client, payload("firing", lost)) == "opened"
    (issue,) = state.issues
    assert issue["title"] == "GPUIsLost: node=n1"
    assert issue["labels"] == [{"name": "kaip-alert"}]
    assert [a["login"] for a in issue["assignees"]] == ["bob"]  # 105 weeks after 2024-01-01: odd turn
    assert apply(client, payload("firing", lost)) == "unchanged"  # Alertmanager's repeat
    page = alert("GPUPendingPage", "n1")
    assert apply(client, payload("firing", lost, page)) == "commented"
    assert "Started firing" in state.comments[1][-1] and "GPUPendingPage" in state.comments[1][-1]
    assert apply(
        client, payload("firing", dict(lost, status="resolved", endsAt="2026-01-07T12:05:00Z"), page)
    ) == ("commented")
    assert "Resolved" in state.comments[1][-1] and "GPUIsLost" in state.comments[1][-1]
    assert apply(client, payload("resolved", dict(page, status="resolved"))) == "closed"
    assert state.issues[0]["state"] == "closed" and state.issues[0]["state_reason"] == "completed"
    assert apply(client, payload("resolved", dict(page, status="resolved"))) == "nothing"
    later = NOW + timedelta(days=7)
    assert apply(client, payload("firing", lost), at=later) == "reopened"
    assert len(state.issues) == 1
    assert state.issues[0]["state"] == "open" and [a["login"] for a in state.issues[0]["assignees"]] == [
        "alice"
    ]
    assert state.events[1] == [
        "opened", "assigned", "commented", "commented", "commented", "closed", "reopened", "assigned", "commented",
    ]  # fmt: skip
    assert state.violations == []


def test_alert_groups_have_issues_of_their_own_and_state_survives_a_new_client(
    github: tuple[GitHubState, GitHub],
) -> None:
    state, client = github
    assert apply(client, payload("firing", alert("GPUIsLost", "n1"))) == "opened"
    other = payload("firing", alert("GPUIsLost", "n2"), key='{}:{node="n2"}')
    assert apply(client, other) == "opened"
    fresh = GitHub(client.repo_url.split("/repos/")[0], "org", "ops", lambda: TOKEN)  # a restarted receiver
    assert apply(fresh, other) == "unchanged"
    assert len(state.issues) == 2


def test_the_alert_label_assignee_wins_over_the_rota(github: tuple[GitHubState, GitHub]) -> None:
    state, client = github
    apply(client, payload("firing", alert("GPUIsLost", "n1", assignee="gpu-team, carol")))
    assert [a["login"] for a in state.issues[0]["assignees"]] == ["gpu-team", "carol"]


def test_the_alert_rota_turns_every_period_and_reads_its_configmap_folder(tmp_path: Any) -> None:
    (tmp_path / "rota").write_text("# on call\nalice\n\nbob  # nights\ncarol\n")
    (tmp_path / "start").write_text("2026-01-05")
    (tmp_path / "period-days").write_text("1")
    r = rota.load(tmp_path)
    assert r.people == ("alice", "bob", "carol")
    at = datetime(2026, 1, 5, 23, 59, tzinfo=timezone.utc)
    assert [r.on_duty(at + timedelta(days=d)) for d in range(4)] == ["alice", "bob", "carol", "alice"]
    assert rota.load(tmp_path / "missing") == rota.Rota()
    assert rota.assignees({}, rota.Rota(), at) == []
    with pytest.raises(rota.BadRota):
        rota.parse({"period-days": "0"})
    with pytest.raises(rota.BadRota):
        rota.parse({"start": "monday"})


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ([], "JSON object"),
        ({"version": "3", "groupKey": "k", "status": "firing", "alerts": []}, "version"),
        ({"version": "4", "status": "firing", "alerts": []}, "groupKey"),
        ({"version": "4", "groupKey": "k", "status": "odd", "alerts": []}, "status"),
        ({"version": "4", "groupKey": "k", "status": "firing", "alerts": [{"status": "x"}]}, r"alerts\[0\]"),
        (
            {"version": "4", "groupKey": "k", "status": "firing", "alerts": [], "commonLabels": {"a": 1}},
            "strings",
        ),
    ],
)
def test_an_alert_payload_that_is_not_alertmanagers_is_refused(doc: Any, why: str) -> None:
    with pytest.raises(receiver.BadPayload, match=why):
        receiver.parse(doc)


def test_the_github_standin_refuses_what_github_would(github: tuple[GitHubState, GitHub]) -> None:
    state, client = github
    with pytest.raises(RequestFailed, match="422"):
        client._call("POST", "/issues", {"body": "no title"})
    with pytest.raises(RequestFailed, match="422"):
        client._call("POST", "/issues", {"title": "t", "asignees": ["typo"]})
    client.open_issue("t", "b", ["x"])
    with pytest.raises(RequestFailed, match="422"):
        client.update(1, state="resolved")
    with pytest.raises(RequestFailed, match="422"):
        client._call("POST", "/issues/1/comments", {})
    bad = GitHub(client.repo_url.split("/repos/")[0], "org", "ops", lambda: "wrong")
    with pytest.raises(RequestFailed, match="401"):
        bad.find("m", ["x"])
    assert len(state.violations) == 4
    found = client._call("GET", "/issues?state=all")  # the listing, and search through the same server
    assert [i["number"] for i in found] == [1]


def test_the_remediators_notices_use_the_shared_github_client() -> None:
    assert notify.NotifyFailed is RequestFailed
    client = notify.Notifier(None).client(
        notify.GitHubTarget("https://api.github.com", "org", "ops", "ns", "secret")
    )
    assert isinstance(client, GitHub)
    assert client.repo_url == "https://api.github.com/repos/org/ops"
