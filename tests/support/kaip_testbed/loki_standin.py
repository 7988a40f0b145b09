"""A stand-in for Grafana Loki's HTTP query API: the part that kaip calls, for the tests only.

Grafana Loki is AGPL-licensed and the Go module proxy marks it not to be used, so the test bed cannot
build the real one. This server answers as Loki's published HTTP API reference documents
(grafana.com/docs/loki/latest/reference/loki-http-api/):

- ``GET /loki/api/v1/query_range``: ``query`` (a LogQL stream selector: ``{label="v", l=~"re", l!="v",
  l!~"re"}``, regexes anchored as LogQL's are), ``start`` and ``end`` (nanoseconds, or RFC 3339;
  ``start`` inclusive, ``end`` exclusive; defaults: an hour ago, now), ``limit`` (default 100),
  ``direction`` (``forward`` | ``backward``, default ``backward``), ``step`` (accepted, unused for log
  queries). At most ``limit`` entries across all streams, the first in ``direction``'s order; each
  stream's ``values`` in that order. Answer::

      {"status": "success", "data": {"resultType": "streams",
        "result": [{"stream": {labels}, "values": [["<ns>", "<line>"], ...]}], "stats": {}}}

- ``GET /loki/api/v1/labels``: ``{"status": "success", "data": [label names]}``.
- Tenancy (``auth_enabled: true``): without ``X-Scope-OrgID`` Loki answers ``401`` with the text
  ``no org id``; each tenant sees only its own streams.
- Limits: a ``limit`` above ``max_entries_limit_per_query`` (5000 by default) is a ``400`` (the
  ``max entries limit per query exceeded`` text); ``start`` after ``end`` is a ``400``; a query that
  is not a selector is a ``400`` ``parse error``.

Beyond Loki, for the tests: ``LokiState.fail`` queues statuses to answer before the real one (429,
500, 503: the retries), ``LokiState.requests`` records each query, ``LokiState.token`` requires a
bearer token (as a gateway in front of Loki would), and :class:`Synthetic` is a stream whose lines are
computed, not stored, so a million-line job costs the server no memory.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_ENTRIES = 5000
HOUR_NS = 3600 * 1_000_000_000


@dataclass
class Synthetic:
    """``count`` lines at ``start + i * step`` ns; line i is ``text(i)``; ``same`` lines share each stamp."""

    start: int
    step: int
    count: int
    text: Callable[[int], str] = lambda i: f"line {i}"
    same: int = 1

    def ts(self, i: int) -> int:
        return self.start + (i // self.same) * self.step

    def index(self, ts: int) -> int:
        """The first i whose stamp is >= ts."""
        if ts <= self.start:
            return 0
        slot = -(-(ts - self.start) // self.step)
        return min(self.count, slot * self.same)

    def between(self, start: int, end: int, backward: bool) -> Iterator[tuple[int, str]]:
        lo, hi = self.index(start), self.index(end)
        order = range(hi - 1, lo - 1, -1) if backward else range(lo, hi)
        for i in order:
            yield self.ts(i), self.text(i)


@dataclass
class Stored:
    entries: list[tuple[int, str]] = field(default_factory=list)

    def between(self, start: int, end: int, backward: bool) -> Iterator[tuple[int, str]]:
        lo = bisect.bisect_left(self.entries, (start, ""))
        hi = bisect.bisect_left(self.entries, (end, ""))
        part = self.entries[lo:hi]
        return iter(part[::-1] if backward else part)


@dataclass
class LokiState:
    #: tenant → stream labels (sorted items) → its entries; tenant "" is single-tenant Loki's "fake".
    streams: dict[str, dict[tuple[tuple[str, str], ...], Stored | Synthetic]] = field(default_factory=dict)
    auth_enabled: bool = True
    token: str | None = None
    max_entries: int = MAX_ENTRIES
    fail: list[int] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def push(self, tenant: str, labels: Mapping[str, str], entries: list[tuple[int, str]]) -> None:
        """Store entries; an entry with the same stamp and line as a stored one is dropped, as Loki does."""
        key = tuple(sorted(labels.items()))
        with self.lock:
            stream = self.streams.setdefault(tenant, {}).setdefault(key, Stored())
            assert isinstance(stream, Stored)
            merged = set(stream.entries) | set(entries)
            stream.entries = sorted(merged)

    def add_synthetic(self, tenant: str, labels: Mapping[str, str], stream: Synthetic) -> None:
        with self.lock:
            self.streams.setdefault(tenant, {})[tuple(sorted(labels.items()))] = stream


class Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_selector(query: str) -> list[tuple[str, str, str]]:
    text = query.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise Refused(400, f"parse error : syntax error: unexpected input, expecting {{ in {query!r}")
    body, out, pos = text[1:-1], [], 0
    while pos < len(body):
        found = _MATCHER.match(body, pos)
        if not found:
            raise Refused(400, f"parse error at position {pos + 1}: syntax error in {query!r}")
        out.append((found[1], found[2], json.loads(f'"{found[3]}"')))
        pos = found.end()
    if not any(op in ("=", "=~") and value for _, op, value in out):
        raise Refused(
            400,
            "parse error : queries require at least one regexp or equality matcher "
            "that does not have an empty-compatible value",
        )
    return out


def _matches(labels: Mapping[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
        if op == "!~" and re.fullmatch(value, have):
            return False
    return True


def _time(raw: str | None, default: int) -> int:
    if not raw:
        return default
    try:
        if re.fullmatch(r"[0-9]+", raw):
            return int(raw) if len(raw) > 12 else int(raw) * 1_000_000_000
        if re.fullmatch(r"[0-9]+\.[0-9]+", raw):
            return int(float(raw) * 1_000_000_000)
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    except ValueError as exc:
        raise Refused(400, f"cannot parse {raw!r} to a valid timestamp") from exc


def query_range(state: LokiState, tenant: str, params: Mapping[str, str], now: int) -> dict[str, Any]:
    matchers = parse_selector(params.get("query", ""))
    end = _time(params.get("end"), now)
    start = _time(params.get("start"), end - HOUR_NS)
    if end < start:
        raise Refused(400, "end timestamp must not be before or equal to start time")
    try:
        limit = int(params.get("limit") or 100)
    except ValueError as exc:
        raise Refused(400, f"invalid limit {params.get('limit')!r}") from exc
    if limit <= 0:
        raise Refused(400, "limit must be a positive value")
    if limit > state.max_entries:
        raise Refused(
            400,
            f"max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {state.max_entries})",
        )
    direction = params.get("direction") or "backward"
    if direction not in ("forward", "backward"):
        raise Refused(400, f"invalid direction {direction!r}")
    backward = direction == "backward"
    import heapq

    with state.lock:
        chosen = [(k, s) for k, s in state.streams.get(tenant, {}).items() if _matches(dict(k), matchers)]

    # The first `limit` entries across the streams in direction's order (ties: by stream labels).
    def keyed(key: tuple[tuple[str, str], ...], stream: Stored | Synthetic) -> Iterator[tuple[int, Any, str]]:
        for ts, line in stream.between(start, end, backward):
            yield (-ts if backward else ts), key, line

    merged = heapq.merge(*[keyed(key, stream) for key, stream in chosen])
    out: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
    for n, (signed, key, line) in enumerate(merged):
        if n >= limit:
            break
        out.setdefault(key, []).append([str(-signed if backward else signed), line])
    result = [{"stream": dict(k), "values": v} for k, v in out.items()]
    return {
        "status": "success",
        "data": {
            "resultType": "streams",
            "result": result,
            "stats": {"summary": {"totalEntriesReturned": sum(len(v) for v in out.values())}},
        },
    }


def serve(state: LokiState, *, clock: Callable[[], int] | None = None) -> ThreadingHTTPServer:
    """Start the stand-in on a free loopback port; its URL is ``http://127.0.0.1:<server_port>``."""
    import time

    now = clock or time.time_ns

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, code: int, body: Any) -> None:
            if isinstance(body, str):
                data, kind = body.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(body).encode(), "application/json; charset=UTF-8"
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            tenant = self.headers.get("X-Scope-OrgID") or ""
            with state.lock:
                state.requests.append({"path": parts.path, "tenant": tenant, **params})
                failure = state.fail.pop(0) if state.fail else None
            try:
                if failure is not None:
                    raise Refused(
                        failure, "too many outstanding requests" if failure == 429 else "internal error"
                    )
                if state.token is not None and self.headers.get("Authorization") != f"Bearer {state.token}":
                    raise Refused(401, "unauthorized")
                if state.auth_enabled and not tenant:
                    raise Refused(401, "no org id")
                if not state.auth_enabled:
                    tenant = "fake"
                if parts.path == "/loki/api/v1/query_range":
                    self._send(200, query_range(state, tenant, params, now()))
                elif parts.path == "/loki/api/v1/labels":
                    with state.lock:
                        names = sorted({k for key in state.streams.get(tenant, {}) for k, _ in key})
                    self._send(200, {"status": "success", "data": names})
                else:
                    raise Refused(404, "404 page not found")
            except Refused as exc:
                self._send(exc.status, exc.text + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
