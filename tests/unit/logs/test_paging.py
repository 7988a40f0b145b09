"""query_range paging (kaip.logs.loki.read_range) against the Loki stand-in's answer function, no
network: same-nanosecond boundaries, pages all one nanosecond, both directions, warnings."""

from __future__ import annotations

import random

import pytest

from kaip.logs.loki import LokiError, Page, parse_answer, read_range
from kaip_testbed.loki_standin import LokiState, Refused, Synthetic, query_range

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
SELECTOR = '{namespace="team-a", pod=~"mnist-.*"}'


def fetcher(state: LokiState, calls: list[tuple[int, int, int, str]] | None = None):
    def fetch(start: int, end: int, limit: int, direction: str) -> Page:
        if calls is not None:
            calls.append((start, end, limit, direction))
        params = {
            "query": SELECTOR,
            "start": str(start),
            "end": str(end),
            "limit": str(limit),
            "direction": direction,
        }
        try:
            body = query_range(state, "t1", params, now=T0 + 10**15)
        except Refused as exc:
            raise LokiError(exc.text) from exc
        return parse_answer(body, direction)

    return fetch


def stored(
    streams: int = 3, per_stream: int = 200, seed: int = 7
) -> tuple[LokiState, list[tuple[int, str, str]]]:
    """Streams whose stamps collide a lot, within and across streams."""
    rng = random.Random(seed)
    state = LokiState()
    everything = []
    for s in range(streams):
        pod = f"mnist-worker-{s}"
        entries = sorted({(T0 + rng.randrange(40), f"{pod} line {i}") for i in range(per_stream)})
        state.push("t1", {"namespace": "team-a", "pod": pod, "container": "pytorch"}, entries)
        everything += [(ts, pod, line) for ts, line in entries]
    return state, everything


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50, 5000])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_every_entry_once_in_order(limit: int, direction: str) -> None:
    state, everything = stored()
    got = list(read_range(fetcher(state), T0, T0 + 100, limit=limit, direction=direction))
    keys = [(e.ts, e.label("pod"), e.line) for e in got]
    assert sorted(keys) == sorted(everything)  # none lost
    assert len(set(keys)) == len(keys)  # none repeated
    stamps = [e.ts for e in got]
    assert stamps == sorted(stamps, reverse=direction == "backward")


def test_a_page_all_one_nanosecond_is_read_alone_and_passed() -> None:
    state = LokiState()
    state.add_synthetic(
        "t1", {"namespace": "team-a", "pod": "mnist-master-0"}, Synthetic(T0, 1000, 100, same=25)
    )
    calls: list[tuple[int, int, int, str]] = []
    got = list(read_range(fetcher(state, calls), T0, T0 + 10**9, limit=10))
    assert [e.line for e in got] == [f"line {i}" for i in range(100)]
    assert any(end - start == 1 and limit > 10 for start, end, limit, _ in calls)  # the nanosecond alone


def test_more_lines_at_one_nanosecond_than_loki_allows_is_reported() -> None:
    state = LokiState(max_entries=20)
    state.add_synthetic(
        "t1", {"namespace": "team-a", "pod": "mnist-master-0"}, Synthetic(T0, 1000, 60, same=30)
    )
    warnings: list[str] = []
    got = list(read_range(fetcher(state), T0, T0 + 10**9, limit=20, warn=warnings.append))
    assert warnings and "some are missing" in warnings[0]
    keys = [(e.ts, e.line) for e in got]
    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys, key=lambda k: k[0])


def test_start_inclusive_end_exclusive() -> None:
    state = LokiState()
    state.push("t1", {"namespace": "team-a", "pod": "mnist-ps-0"}, [(T0, "a"), (T0 + 5, "b"), (T0 + 10, "c")])
    assert [e.line for e in read_range(fetcher(state), T0, T0 + 10, limit=1)] == ["a", "b"]
    assert [e.line for e in read_range(fetcher(state), T0 + 5, T0 + 11, limit=1, direction="backward")] == [
        "c",
        "b",
    ]


def test_warnings_of_an_answer_are_passed_on() -> None:
    def fetch(start: int, end: int, limit: int, direction: str) -> Page:
        return Page([], ["query timed out on some ingesters: partial result"])

    warnings: list[str] = []
    assert list(read_range(fetch, 0, 10, warn=warnings.append)) == []
    assert warnings == ["query timed out on some ingesters: partial result"]


def test_a_million_line_stream_pages_in_bounded_memory() -> None:
    state = LokiState()
    state.add_synthetic(
        "t1", {"namespace": "team-a", "pod": "mnist-master-0"}, Synthetic(T0, 7, 50_000, same=3)
    )
    count, last = 0, -1
    for entry in read_range(fetcher(state), T0, T0 + 10**12, limit=5000):
        assert entry.ts >= last
        last = entry.ts
        count += 1
    assert count == 50_000
