"""A Loki HTTP API client: ``GET /loki/api/v1/query_range`` paged by time, and ``/loki/api/v1/labels``.

Loki caps every answer at ``limit`` entries (and refuses a ``limit`` above its
``max_entries_limit_per_query``, 5000 by default), so a long range is read page by page: forward, the next
page starts at the last timestamp seen (``start`` is inclusive); backward, it ends one nanosecond after it
(``end`` is exclusive). The entries at that boundary nanosecond are asked for again, and those already
yielded (the same timestamp, stream and line: what Loki itself treats as one entry) are skipped, so no
entry is lost or repeated. A page that is full and all one nanosecond cannot be paged by time: that
nanosecond is asked for alone with a larger limit, and if Loki still caps it the gap is reported.

Paging (:func:`read_range`) is pure over a ``fetch`` function, so it is tested without a server;
:class:`Loki` is the fetch over kaip's own HTTP layer (:mod:`kaip.kube.transport`), with the tenant
header (``X-Scope-OrgID``), bearer or basic authentication, and retries of 429 and 5xx with back-off.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from kaip.errors import ConfigError, KaipError, UnreachableError, shorten

DEFAULT_LIMIT = 5000  # Loki's default max_entries_limit_per_query
MAX_SAME_NS_LIMIT = 50_000
RETRIES = 5
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

Labels = tuple[tuple[str, str], ...]  # a stream's labels, sorted: hashable, one per stream


@dataclass(frozen=True, slots=True)
class Entry:
    ts: int  # nanoseconds since the epoch
    line: str
    labels: Labels

    @property
    def key(self) -> tuple[int, Labels, str]:
        return (self.ts, self.labels, self.line)

    def label(self, name: str) -> str:
        for key, value in self.labels:
            if key == name:
                return value
        return ""


@dataclass
class Page:
    """One answer of query_range, its entries in the order asked for."""

    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)


class LokiError(KaipError):
    """Loki refused a query or could not be reached; ``partial`` when some lines were already read."""

    partial = False


Fetch = Callable[[int, int, int, str], Page]  # (start, end, limit, direction) -> a page


def parse_answer(body: Mapping[str, Any], direction: str) -> Page:
    """A query_range answer (``resultType: streams``) as entries in ``direction``'s order."""
    data = body.get("data") or {}
    if data.get("resultType", "streams") != "streams":
        raise LokiError(f"Loki answered {data.get('resultType')}, not log streams: is the query a log query?")
    entries: list[Entry] = []
    for stream in data.get("result") or []:
        labels: Labels = tuple(sorted((str(k), str(v)) for k, v in (stream.get("stream") or {}).items()))
        for value in stream.get("values") or []:
            entries.append(Entry(int(value[0]), str(value[1]), labels))
    entries.sort(key=lambda e: (e.ts, e.labels), reverse=direction == "backward")
    return Page(entries, [str(w) for w in body.get("warnings") or []])


def read_range(
    fetch: Fetch,
    start: int,
    end: int,
    *,
    limit: int = DEFAULT_LIMIT,
    direction: str = "forward",
    warn: Callable[[str], None] = lambda message: None,
) -> Iterator[Entry]:
    """Every entry in ``[start, end)`` in ``direction``'s order, page by page, none lost or repeated."""
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction {direction!r}")
    forward = direction == "forward"
    boundary = -1  # the nanosecond the last page ended on
    seen: set[tuple[int, Labels, str]] = set()  # the entries yielded at that nanosecond
    while start < end:
        page = fetch(start, end, limit, direction)
        for message in page.warnings:
            warn(message)
        entries = page.entries
        full = len(entries) >= limit
        if full and entries and entries[0].ts == entries[-1].ts:
            # All one nanosecond: no later start can split it. Ask for that nanosecond alone.
            entries = _one_nanosecond(fetch, entries[0].ts, limit, direction, warn)
        for entry in entries:
            if entry.ts == boundary and entry.key in seen:
                continue
            if entry.ts != boundary:
                boundary, seen = entry.ts, set()
            seen.add(entry.key)
            yield entry
        if not full or not entries:
            return
        last = entries[-1].ts
        if entries[0].ts == last:  # the nanosecond was read alone: go past it
            start, end = (last + 1, end) if forward else (start, last)
        else:
            start, end = (last, end) if forward else (start, last + 1)


def _one_nanosecond(
    fetch: Fetch, ts: int, limit: int, direction: str, warn: Callable[[str], None]
) -> list[Entry]:
    """Every entry at nanosecond ``ts``: asked for alone, with ever larger limits while Loki allows."""
    entries = fetch(ts, ts + 1, limit, direction).entries
    asked = limit
    while len(entries) >= asked and asked < MAX_SAME_NS_LIMIT:
        wider = min(asked * 4, MAX_SAME_NS_LIMIT)
        try:
            entries = fetch(ts, ts + 1, wider, direction).entries
        except LokiError:  # a limit above max_entries_limit_per_query is refused
            break
        asked = wider
    if len(entries) >= asked:
        warn(
            f"Loki caps an answer at {asked} lines and more were written at one nanosecond "
            f"({ts}); some are missing"
        )
    return entries


@dataclass(frozen=True)
class Settings:
    """Where Loki is and how to prove who we are (the token and password are never printed)."""

    url: str
    tenant: str | None = None
    token: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_pem: str | None = None
    insecure: bool = False
    timeout: float = 30.0

    def __repr__(self) -> str:  # never the credentials
        return f"Settings(url={self.url!r}, tenant={self.tenant!r})"


class Loki:
    """query_range and labels for one tenant, over :mod:`kaip.kube.transport`'s connection pool."""

    def __init__(
        self,
        settings: Settings,
        *,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import os

        from kaip.kube import transport
        from kaip.proxies import proxy_from_environment

        self.settings = settings
        parts = urlsplit(settings.url)
        self._prefix = parts.path.rstrip("/")
        found = proxy_from_environment(settings.url, os.environ if environ is None else environ)
        proxy_url, proxy_from = found if found else (None, "")
        try:
            endpoint = transport.Endpoint.parse(settings.url, proxy_url, proxy_from=proxy_from or "proxy-url")
        except ValueError as exc:
            raise ConfigError(f"Loki URL: {exc}") from exc
        tls = None
        if endpoint.scheme == "https":
            from kaip.kube.auth import server_tls

            tls = server_tls(settings.ca_pem, insecure=settings.insecure, what="Loki CA")
        self._pool = transport.Pool(endpoint, tls=tls, maxsize=2)
        self._timeouts = transport.Timeouts(connect=min(10.0, settings.timeout), read=settings.timeout)
        self._sleep = sleep

    def _headers(self) -> list[tuple[str, str]]:
        headers = [("Accept", "application/json"), ("Accept-Encoding", "gzip"), ("User-Agent", "kaip")]
        if self.settings.tenant:
            headers.append(("X-Scope-OrgID", self.settings.tenant))
        if self.settings.token:
            headers.append(("Authorization", f"Bearer {self.settings.token}"))
        elif self.settings.basic_auth:
            import base64

            user, password = self.settings.basic_auth
            encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers.append(("Authorization", f"Basic {encoded}"))
        return headers

    def get(self, path: str, query: Mapping[str, Any]) -> Any:
        """GET ``path`` and its JSON answer; 429 and 5xx are asked again with back-off."""
        from kaip.kube import transport

        target = f"{self._prefix}{path}?{urlencode(query)}"
        delay = 0.25
        for attempt in range(RETRIES + 1):
            try:
                status, data = self._pool.request(
                    "GET", target, body=None, headers=self._headers(), timeouts=self._timeouts
                )
            except (transport.ConnectFailed, transport.TLSFailed, transport.ReadTimeout) as exc:
                if attempt == RETRIES or isinstance(exc, transport.TLSFailed):
                    raise UnreachableError(f"Loki at {self.settings.url}: {exc}") from exc
                status, data = 0, b""
            if status and status not in RETRY_STATUS:
                break
            if attempt < RETRIES:
                self._sleep(delay)
                delay = min(delay * 2, 8.0)
        text = data.decode(errors="replace")
        if status == 200:
            try:
                return json.loads(text)
            except ValueError as exc:
                raise LokiError(f"Loki answered what is not JSON: {shorten(text, 120)}") from exc
        raise LokiError(f"Loki answered {status}: {shorten(text.strip(), 200)}" + _hint(status, text))

    def fetch(self, query: str) -> Fetch:
        def one(start: int, end: int, limit: int, direction: str) -> Page:
            body = self.get(
                "/loki/api/v1/query_range",
                {"query": query, "start": start, "end": end, "limit": limit, "direction": direction},
            )
            return parse_answer(body, direction)

        return one

    def entries(
        self,
        query: str,
        start: int,
        end: int,
        *,
        direction: str = "forward",
        limit: int = DEFAULT_LIMIT,
        warn: Callable[[str], None] = lambda message: None,
    ) -> Iterator[Entry]:
        return read_range(self.fetch(query), start, end, limit=limit, direction=direction, warn=warn)

    def labels(self, start: int | None = None, end: int | None = None) -> list[str]:
        query = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        return [str(x) for x in self.get("/loki/api/v1/labels", query).get("data") or []]

    def close(self) -> None:
        self._pool.close()


def _hint(status: int, text: str) -> str:
    if status == 401 and "org id" in text.lower():
        return " (Loki is multi-tenant: set the tenant in kaip-system/kaip-logging or with --loki-tenant)"
    if status == 400 and "max entries limit" in text.lower():
        return " (lower the page size)"
    return ""


def selector(matchers: Sequence[tuple[str, str, str]]) -> str:
    """A LogQL stream selector from ``(label, op, value)``: ``{namespace="a", pod=~"b-.*"}``."""
    parts = [f"{label}{op}{json.dumps(value)}" for label, op, value in matchers]
    return "{" + ", ".join(parts) + "}"
