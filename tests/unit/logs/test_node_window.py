"""`node-health describe --logs`: the window around a problem's start, where each line came from,
and `stream-logs --since/--since-time`."""

from __future__ import annotations

import pytest

from kaip.commands.ai_platform.jobs import since_ns
from kaip.errors import UsageError
from kaip.logs import contract
from kaip.logs.merge import parse_stamp
from kaip.nodehealth import nodelogs

S = 1_000_000_000
NOW = parse_stamp("2026-01-01T12:00:00Z")


def test_window_around_the_problem_never_past_now() -> None:
    w = nodelogs.window("2026-01-01T11:00:00Z", before=1800, after=600, now=NOW)
    assert (w.start, w.end) == (NOW - 3600 * S - 1800 * S, NOW - 3600 * S + 600 * S + 1)
    w = nodelogs.window("2026-01-01T11:59:00Z", before=1800, after=600, now=NOW)
    assert w.end == NOW + 1
    w = nodelogs.window(None, before=1800, after=600, now=NOW)
    assert (w.start, w.end) == (NOW - 1800 * S, NOW + 1)


def test_sources_and_the_node_query() -> None:
    assert nodelogs.source_of({"unit": "kubelet.service"}) == "kubelet"
    assert nodelogs.source_of({"transport": "kernel"}) == "kernel"
    assert nodelogs.source_of({}) == "kernel"
    q = contract.node_query("gpu-a-1")
    assert q.startswith('{node_name="gpu-a-1", job="node/journal", unit=~"kubelet\\\\.service|')


def test_since_and_since_time() -> None:
    assert since_ns(None, None) is None
    assert since_ns(None, "2026-01-01T12:00:00Z") == NOW
    a, b = since_ns("1h30m", None), since_ns("90m", None)
    assert a is not None and b is not None and abs(a - b) < 5 * S
    for bad in ("1x", "h", "10"):
        with pytest.raises(UsageError):
            since_ns(bad, None)
    with pytest.raises(UsageError):
        since_ns("1h", "2026-01-01T12:00:00Z")
    with pytest.raises(UsageError):
        since_ns(None, "yesterday")
