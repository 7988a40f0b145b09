"""The object accessors, the watch back-off and the Event builder: pure, no server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kaip.kube import events, objects
from kaip.kube.watching import Backoff

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "resourceVersion": "42",
        "labels": {"app": "a"},
        "annotations": {"note": "n"},
        "ownerReferences": [{"kind": "Job", "name": "j"}, {"kind": "Node", "name": "x"}],
    },
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]},
}


def test_accessors_read_a_full_object() -> None:
    assert objects.name_of(POD) == "p" and objects.namespace_of(POD) == "ns"
    assert objects.key_of(POD) == ("ns", "p")
    assert objects.uid_of(POD) == "u-1" and objects.version_of(POD) == "42"
    assert objects.labels_of(POD) == {"app": "a"} and objects.annotations_of(POD) == {"note": "n"}
    assert objects.owner_of(POD, "Job") == {"kind": "Job", "name": "j"}
    assert objects.owner_of(POD, "ReplicaSet") is None
    cond = objects.condition_of(POD, "Ready")
    assert cond is not None and cond["status"] == "True"
    assert objects.condition_of(POD, "Missing") is None


@pytest.mark.parametrize(
    "obj",
    [
        None,
        {},
        {"metadata": None, "status": None},
        {"metadata": {"labels": None, "ownerReferences": None}},
        {"metadata": "garbage", "status": {"conditions": "garbage"}},
    ],
)
def test_accessors_take_what_the_api_may_send_absent_or_null(obj: dict | None) -> None:
    assert objects.name_of(obj) == "" and objects.key_of(obj) == ("", "")
    assert objects.labels_of(obj) == {} and objects.annotations_of(obj) == {}
    assert objects.owners_of(obj) == () and objects.conditions_of(obj) == ()
    assert objects.condition_of(obj, "Ready") is None and objects.version_of(obj) == ""


def test_one_timestamp_format_in_utc() -> None:
    moment = datetime(2026, 12, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert objects.api_time(moment) == "2026-12-06T05:08:09Z"
    assert objects.api_micro_time(moment) == "2026-12-06T05:08:09.123456Z"
    assert objects.api_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"  # naive: UTC
    assert objects.api_time().endswith("Z")


def test_watch_backoff_doubles_with_equal_jitter_and_a_cap() -> None:
    policy = Backoff(base=0.5, factor=2.0, cap=30.0)
    assert [policy.delay(n, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert [policy.delay(n, rng=lambda: 0.0) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert policy.delay(1000, rng=lambda: 1.0) == 30.0  # no overflow past the cap


def test_an_event_refers_to_its_object_and_is_cut_short() -> None:
    ref = events.reference(POD)
    assert ref == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "resourceVersion": "42",
    }
    body = events.build(ref, reason="R", message="m" * 3000, component="c", instance="i", now="T")
    assert body["metadata"]["namespace"] == "ns" and body["metadata"]["name"].startswith("p.")
    assert body["type"] == "Normal" and len(body["message"]) <= events.MESSAGE_LIMIT
    assert body["firstTimestamp"] == body["lastTimestamp"] == "T"
    assert body["source"] == {"component": "c"} and body["reportingInstance"] == "i"
    node = events.build(
        {"kind": "Node", "name": "n"}, reason="R", message="m", component="c", instance="i", warning=True
    )
    assert node["metadata"]["namespace"] == "default" and node["type"] == "Warning"
    other = events.build(ref, reason="R", message="m", component="c", instance="i")
    assert other["metadata"]["name"] != body["metadata"]["name"]
