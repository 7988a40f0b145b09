"""Rows of the remediation views (``kubectl node-health remediation``): pure, from NodeRemediations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from kaip.kube.objects import name_of, status_of
from kaip.remediation.state import State, read_request
from kaip.resources import timestamps

HEADERS = ["NODE", "RULE", "PHASE", "CONDITION", "STEP", "ATTEMPT", "SINCE", "MESSAGE"]
WIDE_HEADERS = [*HEADERS, "JOB", "DETECTED", "MODE"]
HISTORY_HEADERS = ["TIME", "PHASE", "MESSAGE"]


def row(obj: Mapping[str, Any], *, now: datetime, wide: bool) -> list[str]:
    st = State.from_status(status_of(obj))
    req = read_request(obj)
    step = str(st.operation + 1) if st.job else "-"
    cells = [
        req.node,
        st.rule or req.rule or "-",
        st.phase or "New",
        st.condition or "-",
        step,
        str(st.attempt),
        timestamps.age(st.phase_since, at=now) if st.phase_since else "-",
        st.message or "",
    ]
    if not wide:
        cells[-1] = cells[-1] if len(cells[-1]) <= 70 else cells[-1][:69] + "…"
        return cells
    mode = "manual" if st.manual or req.manual else "auto"
    if req.dry_run:
        mode += ",dry-run"
    detected = timestamps.age(st.detected_at, at=now) if st.detected_at else "-"
    return [*cells, st.job or "-", detected, mode]


def rows(objs: Sequence[Mapping[str, Any]], *, now: datetime, wide: bool) -> list[list[str]]:
    ordered = sorted(objs, key=name_of)
    return [row(o, now=now, wide=wide) for o in ordered]


def history(obj: Mapping[str, Any]) -> list[list[str]]:
    st = State.from_status(status_of(obj))
    return [[h.get("time", ""), h.get("phase", ""), h.get("message", "")] for h in st.history]
