"""Failures nobody can repair automatically reach people: the controller on the real API server hands
unhandled and exhausted failures to a webhook (JSON summary) and to GitHub issues (token from a
Secret), one issue per node and condition, closed when it clears and reopened, not duplicated, when
it comes back. GitHub is the local stand-in of ``github_standin`` (the real one is unreachable here)."""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from github_standin import GitHubState, serve
from remediation_testlib import ThreadController, config, get_or_none, set_condition

from kaip.kube.client import Kube
from kaip.remediation.spec import GitHubTarget
from kaip.resources import kinds
from kaip.resources import remediation as names
from kaip_incluster.remediation.loop import Settings
from kaip_incluster.remediation.notify import Notice, Notifier
from kaip_testbed.waiting import wait_for

pytestmark = pytest.mark.integration

TOKEN = "ghp_" + "s3cr3t" * 6


@pytest.fixture
def github() -> Iterator[tuple[GitHubState, str]]:
    state = GitHubState(token=TOKEN)
    server = serve(state)
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def plain_node(name: str, pool: str) -> dict[str, Any]:
    """A Node object without a kubelet: enough for conditions, cordons and labels."""
    return {"metadata": {"name": name, "labels": {"kaip.dev/pool": pool, "kubernetes.io/hostname": name}}}


def phase(kube: Kube, node: str) -> str:
    return str(((get_or_none(kube, names.REMEDIATIONS, node) or {}).get("status") or {}).get("phase") or "")


def test_unhandled_and_exhausted_failures_become_one_github_issue_each_reopened_not_duplicated(
    remediation: Kube, kube: Kube, github: tuple[GitHubState, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gh, url = github
    pool = f"notify-{uuid.uuid4().hex[:6]}"
    odd, sick = f"{pool}-odd", f"{pool}-sick"
    for name in (odd, sick):
        remediation.create(kinds.NODES, plain_node(name, pool))
    try:
        kube.create(
            kinds.SECRETS,
            {"metadata": {"name": "github"}, "data": {"token": base64.b64encode(TOKEN.encode()).decode()}},
        )
        remediation.create(
            names.CONFIGS,
            config(
                {
                    "circuitBreaker": {"threshold": 10},
                    "notifier": {
                        "webhook": {"url": f"{url}/hook"},
                        "github": {
                            "apiURL": url,
                            "owner": "ops",
                            "repo": "cluster",
                            "tokenSecretRef": {"namespace": kube.namespace, "name": "github", "key": "token"},
                        },
                    },
                }
            ),
        )
        # A rule with nothing left to try once the condition stays: cordon, then give up.
        remediation.create(
            names.RULES,
            {
                "apiVersion": names.RULES.api_version,
                "kind": names.RULES.kind,
                "metadata": {"name": "nothing-helps"},
                "spec": {
                    "conditions": [{"type": "GPUPendingPage", "duration": "0s"}],
                    "nodeSelector": {"matchLabels": {"kaip.dev/pool": pool}},
                    "drain": {"skip": True},
                },
            },
        )
        set_condition(remediation, odd, "DStateProcess", "True", message="pid 4242 in D state for 1300s")
        set_condition(remediation, sick, "GPUPendingPage", "True", message="pages pending")

        with ThreadController(remediation, Settings(namespace=kube.namespace, identity="notify-test")) as ctl:
            wait_for(lambda: phase(remediation, odd) == names.UNHANDLED, what="unhandled")
            wait_for(lambda: phase(remediation, sick) == names.FAILED, what="failed")
            wait_for(lambda: len(gh.issues) == 2, what="two issues")
            by_title = {i["title"]: i for i in gh.issues}
            assert set(by_title) == {f"Node {odd}: DStateProcess", f"Node {sick}: GPUPendingPage"}
            assert all(i["labels"] == [{"name": "kaip-remediation"}] for i in gh.issues)
            assert "pid 4242 in D state" in by_title[f"Node {odd}: DStateProcess"]["body"]
            assert remediation.get(kinds.NODES, sick)["spec"].get("unschedulable") is True
            wait_for(lambda: len(gh.hooks) >= 2, what="webhook deliveries")
            kinds_sent = {(h["kind"], h["node"]) for h in gh.hooks}
            assert {("unhandled", odd), ("failed", sick)} <= kinds_sent
            failed = next(h for h in gh.hooks if h["kind"] == "failed")
            assert failed["condition"] == "GPUPendingPage" and failed["rule"] == "nothing-helps"
            assert "pages pending" in failed["message"], "the detector's message reaches people"
            assert failed["history"], "the summary carries the steps taken"

            # It clears: the issue is closed and the node handed back.
            set_condition(remediation, odd, "DStateProcess", "False")
            set_condition(remediation, sick, "GPUPendingPage", "False")
            wait_for(lambda: all(i["state"] == "closed" for i in gh.issues), what="issues closed")
            wait_for(lambda: phase(remediation, sick) == names.RESOLVED, what="resolved")
            assert not remediation.get(kinds.NODES, sick)["spec"].get("unschedulable")

            # It comes back: the same issue reopens, no second one.
            time.sleep(1.1)  # a new lastTransitionTime: a new occurrence
            set_condition(remediation, odd, "DStateProcess", "True", message="pid 5151 in D state")
            wait_for(
                lambda: next(i for i in gh.issues if i["title"].startswith(f"Node {odd}"))["state"] == "open",
                what="reopened",
            )
            time.sleep(1)
            assert len(gh.issues) == 2
            reopened = next(i for i in gh.issues if i["title"].startswith(f"Node {odd}"))
            assert any("pid 5151" in c for c in gh.comments[reopened["number"]])
            assert not ctl.errors

        # The token never leaves the Secret: not in logs, Events or statuses.
        events = remediation.list(kinds.EVENTS, namespace="default")["items"]
        records = [str(e.get("message")) for e in events] + [caplog.text]
        records += [str(o.get("status")) for o in remediation.list_all(names.REMEDIATIONS)]
        assert not any(TOKEN in r for r in records)
    finally:
        for name in (odd, sick):
            remediation.delete(kinds.NODES, name, ignore_missing=True)


def test_a_wrong_token_is_reported_without_the_token(
    kube: Kube, github: tuple[GitHubState, str], caplog: pytest.LogCaptureFixture
) -> None:
    gh, url = github
    wrong = "ghp_wrongwrongwrong"
    kube.create(
        kinds.SECRETS,
        {"metadata": {"name": "gh"}, "data": {"token": base64.b64encode(wrong.encode()).decode()}},
    )
    target = GitHubTarget(
        api_url=url, owner="ops", repo="cluster", token_namespace=kube.namespace, token_secret="gh"
    )
    notifier = Notifier(kube)
    from kaip.remediation.spec import Config

    with caplog.at_level(logging.WARNING):
        notifier.send(
            Config(github=target),
            Notice(kind="failed", node="n1", condition="GPUIsLost", message="m", at="t"),
        )
    assert "401" in caplog.text and "Bad credentials" in caplog.text
    assert wrong not in caplog.text
    assert gh.issues == []
