"""The one list-watch loop and the one Event poster against the real kube-apiserver: a list, then
changes as they happen; a resourceVersion the server no longer has (410 Gone) answered by a new list;
an error either raised (a command) or waited out with the back-off (a controller); an Event that
``kubectl describe`` would show, and one the API refuses, which costs a log line and nothing else."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kaip.errors import KaipError
from kaip.kube import connect, events, watching
from kaip.kube.client import Kube
from kaip.kube.config import ClusterTarget
from kaip.kube.errors import Forbidden
from kaip.kube.objects import name_of
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane

pytestmark = pytest.mark.integration


#: Ours only: kube-controller-manager, when a test runs it, adds kube-root-ca.crt to every namespace.
MINE = "kaip.dev/test=watching"


def _configmap(name: str, value: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kaip.dev/test": "watching"}}, "data": {"v": value}}


class _Follower:
    """``list_watch`` run in a thread, its events in a queue; stopped at the end of the test."""

    def __init__(self, stream: Iterator[tuple[str, dict[str, Any]]], stop: threading.Event) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.stop = stop
        self.error: BaseException | None = None

        def pump() -> None:
            try:
                for kind, obj in stream:
                    self.events.put((kind, name_of(obj)))
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=pump, daemon=True)
        self.thread.start()

    def next(self) -> tuple[str, str]:
        return self.events.get(timeout=20)

    def until(self, wanted: tuple[str, str]) -> list[tuple[str, str]]:
        seen = []
        while (got := self.next()) != wanted:
            seen.append(got)
        return seen


def test_lists_then_follows_every_change_in_order(kube: Kube, namespace: str) -> None:
    kube.create(kinds.CONFIGMAPS, _configmap("before"))
    stop = threading.Event()
    follower = _Follower(
        watching.list_watch(
            kube, kinds.CONFIGMAPS, namespace=namespace, label_selector=MINE, stop=stop, watch_seconds=2
        ),
        stop,
    )
    try:
        assert follower.until(("SYNCED", "")) == [("LISTED", "before")]
        kube.create(kinds.CONFIGMAPS, _configmap("after"))
        assert follower.next() == ("ADDED", "after")
        kube.replace(kinds.CONFIGMAPS, {**kube.get(kinds.CONFIGMAPS, "before"), "data": {"v": "2"}})
        assert follower.next() == ("MODIFIED", "before")
        kube.delete(kinds.CONFIGMAPS, "after")
        assert follower.next() == ("DELETED", "after")
        # The server ends each watch after watch_seconds; the loop goes on from the last version,
        # without a new list: the next event is the next change, not a LISTED.
        threading.Event().wait(2.5)
        kube.create(kinds.CONFIGMAPS, _configmap("later"))
        assert follower.next() == ("ADDED", "later")
    finally:
        stop.set()
    follower.thread.join(timeout=10)
    assert not follower.thread.is_alive() and follower.error is None


def test_a_version_the_server_no_longer_has_is_answered_by_a_new_list(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    """After etcd compacted its history, resourceVersion 1 is gone: the watch ends with 410 Gone.

    Events, because kube-apiserver keeps no watch cache for them: their watch is served by etcd,
    which answers a compacted revision at once (a cached resource's answer waits on the cache)."""
    note = events.build(
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "there", "namespace": namespace},
        reason="Seen",
        message="m",
        component="kaip-test",
        instance="test-1",
    )
    assert events.post(kube, note)
    control_plane.compact_etcd()
    stream = watching.list_watch(kube, kinds.EVENTS, namespace=namespace, resource_version="1")
    first = [next(stream) for _ in range(2)]
    assert [kind for kind, _ in first] == ["LISTED", "SYNCED"]
    assert first[0][1]["reason"] == "Seen"
    assert first[1][1]["metadata"]["resourceVersion"]
    stream.close()


def _note(kube: Kube, namespace: str, about: str) -> None:
    involved = {"apiVersion": "v1", "kind": "ConfigMap", "name": about, "namespace": namespace}
    assert events.post(
        kube, events.build(involved, reason="Seen", message="m", component="kaip-test", instance="test-1")
    )


def test_a_list_that_breaks_off_midway_is_reset_and_listed_again(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    """The next page of a list whose revision etcd has compacted meanwhile is refused (410): the loop
    says RESET, so a follower forgets the first page, and lists again from the start."""
    for n in range(3):
        _note(kube, namespace, f"c{n}")
    stream = watching.list_watch(kube, kinds.EVENTS, namespace=namespace, page=1)
    assert next(stream)[0] == "LISTED"
    _note(kube, namespace, "c3")  # a revision after the list's, so compacting makes the list's too old
    control_plane.compact_etcd()
    rest = [next(stream) for _ in range(6)]
    assert [kind for kind, _ in rest] == ["RESET", "LISTED", "LISTED", "LISTED", "LISTED", "SYNCED"]
    names = sorted(obj["involvedObject"]["name"] for kind, obj in rest if kind == "LISTED")
    assert names == ["c0", "c1", "c2", "c3"]
    stream.close()


def _nobody(control_plane: ControlPlane, namespace: str) -> Kube:
    return connect(
        ClusterTarget(kubeconfig=str(control_plane.kubeconfig), impersonate="nobody", namespace=namespace)
    )


def test_a_command_sees_the_error_and_a_controller_waits_it_out(
    control_plane: ControlPlane, namespace: str
) -> None:
    nobody = _nobody(control_plane, namespace)
    with pytest.raises(Forbidden):
        next(watching.list_watch(nobody, kinds.CONFIGMAPS, namespace=namespace))

    stop = threading.Event()
    told: list[tuple[str, float]] = []

    def on_error(exc: KaipError, delay: float) -> None:
        told.append((type(exc).__name__, delay))
        if len(told) == 4:
            stop.set()

    policy = watching.Backoff(base=0.05, factor=2.0, cap=0.2)
    assert (
        list(watching.list_watch(nobody, kinds.CONFIGMAPS, backoff=policy, stop=stop, on_error=on_error))
        == []
    )
    assert [name for name, _ in told] == ["Forbidden"] * 4
    delays = [delay for _, delay in told]
    assert 0.025 <= delays[0] <= 0.05 and 0.1 <= delays[3] <= 0.2  # doubling, capped, half jitter


def test_an_event_is_posted_where_describe_finds_it(kube: Kube, namespace: str) -> None:
    cm = kube.create(kinds.CONFIGMAPS, _configmap("subject"))
    body = events.build(
        events.reference(cm, kind="ConfigMap"),
        reason="Checked",
        message="x" * 5000,
        warning=True,
        component="kaip-test",
        instance="test-1",
    )
    assert events.post(kube, body)
    found = kube.list(kinds.EVENTS, namespace=namespace, field_selector="involvedObject.name=subject")[
        "items"
    ]
    assert len(found) == 1
    event = found[0]
    assert event["type"] == "Warning" and event["reason"] == "Checked"
    assert event["involvedObject"]["kind"] == "ConfigMap"
    assert event["involvedObject"]["uid"] == cm["metadata"]["uid"]
    assert event["source"]["component"] == "kaip-test" and event["reportingInstance"] == "test-1"
    assert len(event["message"]) <= events.MESSAGE_LIMIT


def test_an_event_the_api_refuses_costs_a_log_line_only(
    control_plane: ControlPlane, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = events.build(
        {"apiVersion": "v1", "kind": "Node", "name": "n1"},
        reason="Checked",
        message="fine",
        component="kaip-test",
        instance="test-1",
        namespace=namespace,
    )
    with caplog.at_level(logging.WARNING, logger="kaip.kube.events"):
        assert events.post(_nobody(control_plane, namespace), body) is False
    assert "event Checked not recorded" in caplog.text
