"""``describe NODE --logs``: the node's kernel, kubelet, container runtime and node-problem-detector
lines around its problem's start (or the last window when it has none), read from Loki's node journal
streams (:mod:`kaip.logs.contract`) with the nodes' tenant. For admins: node logs hold every tenant's
Pod names."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kaip.logs import contract
from kaip.logs.merge import format_stamp, parse_stamp

NS = 1_000_000_000
MAX_LINES = 500


@dataclass(frozen=True)
class Window:
    start: int
    end: int

    def text(self) -> str:
        return f"{format_stamp(self.start)} to {format_stamp(self.end)}"


def window(since: str | None, *, before: int, after: int, now: int) -> Window:
    """``before`` seconds before the problem's start to ``after`` seconds after it (never past now);
    without a problem, the last ``before`` seconds."""
    if since:
        try:
            at = parse_stamp(since)
        except ValueError:
            at = now
        return Window(at - before * NS, min(now, at + after * NS) + 1)
    return Window(now - before * NS, now + 1)


def source_of(labels: dict[str, str]) -> str:
    if labels.get(contract.TRANSPORT) == "kernel" or not labels.get(contract.UNIT):
        return "kernel"
    return labels[contract.UNIT].removesuffix(".service")


def lines(entries: Iterable[Any], *, limit: int = MAX_LINES) -> tuple[list[tuple[str, str, str]], bool]:
    """(stamp, source, text) of the first ``limit`` entries, and whether there were more."""
    out: list[tuple[str, str, str]] = []
    for entry in entries:
        if len(out) >= limit:
            return out, True
        out.append((format_stamp(entry.ts), source_of(dict(entry.labels)), entry.line))
    return out, False


def read(
    loki: Any, node: str, span: Window, *, warn: Callable[[str], None]
) -> tuple[list[tuple[str, str, str]], bool]:
    return lines(loki.entries(contract.node_query(node), span.start, span.end, warn=warn))
