"""Who gets an alert's issue: the documented rule, pure.

1. The alert group's common label ``assignee`` (set in a PrometheusRule, or by Alertmanager relabelling),
   one GitHub login or several separated by commas, wins.
2. Otherwise the on-call rota, a ConfigMap mounted as a folder (``kaip-alerts-rota``) with the keys
   ``rota`` (GitHub logins, one per line, ``#`` comments allowed), ``start`` (an ISO date or time, UTC
   when no offset is given; default 2024-01-01, a Monday) and ``period-days`` (default 7): the person on
   duty at time ``t`` is ``rota[floor((t - start) / period) mod len(rota)]``.
3. Otherwise nobody: the issue is opened unassigned.

The assignee is chosen when an issue is opened and again when it is reopened (whoever is on duty then).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kaip.errors import KaipError

LABEL = "assignee"
DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)


class BadRota(KaipError):
    pass


@dataclass(frozen=True)
class Rota:
    people: tuple[str, ...] = ()
    start: datetime = DEFAULT_START
    period: timedelta = timedelta(days=7)

    def on_duty(self, at: datetime) -> str | None:
        if not self.people:
            return None
        turns = int((at - self.start) // self.period)
        return self.people[turns % len(self.people)]


def parse(data: Mapping[str, str]) -> Rota:
    """A rota from a ConfigMap's ``data`` (or the files of its mounted folder)."""
    people = tuple(
        line.split("#", 1)[0].strip()
        for line in (data.get("rota") or "").splitlines()
        if line.split("#", 1)[0].strip()
    )
    start = DEFAULT_START
    if (data.get("start") or "").strip():
        try:
            start = datetime.fromisoformat(data["start"].strip())
        except ValueError as exc:
            raise BadRota(f"rota start {data['start'].strip()!r} is not an ISO date or time") from exc
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
    days = 7.0
    if (data.get("period-days") or "").strip():
        try:
            days = float(data["period-days"])
        except ValueError as exc:
            raise BadRota(f"rota period-days {data['period-days'].strip()!r} is not a number") from exc
        if days <= 0:
            raise BadRota("rota period-days must be above 0")
    return Rota(people, start, timedelta(days=days))


def load(folder: Path | None) -> Rota:
    """The rota in a mounted ConfigMap folder, read at each use so an edit applies without a restart."""
    if folder is None or not folder.is_dir():
        return Rota()
    data = {p.name: p.read_text() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
    return parse(data)


def assignees(common_labels: Mapping[str, str], rota: Rota, at: datetime) -> list[str]:
    named = [x.strip() for x in (common_labels.get(LABEL) or "").split(",") if x.strip()]
    if named:
        return named
    person = rota.on_duty(at)
    return [person] if person else []
