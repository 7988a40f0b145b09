"""One GitHub issue per Alertmanager alert group.

Alertmanager's webhook payload (version 4, prometheus.io/docs/alerting/latest/configuration/#webhook_config)
names the group (``groupKey``), its ``status`` and its ``alerts`` (each with ``status``, ``labels``,
``annotations``, ``startsAt``, ``endsAt``, ``fingerprint``). For each notification:

- no issue for the group yet, and alerts firing: an issue is opened, assigned by ``rota``'s rule;
- its issue is closed and alerts fire again: it is reopened (reassigned to whoever is on duty now),
  with a comment;
- its issue is open and the set of firing alerts changed: a comment says what started and what
  ended (Alertmanager's repeats of an unchanged group add nothing);
- the group resolved: a comment, and the issue is closed as completed.

The issue is found by a hidden marker in its body (a hash of the group key); the set of firing alerts
last written is a second hidden marker in the body, updated with each change. The comments are the
history. A GitHub failure raises ``RequestFailed``: the HTTP server answers 503 and Alertmanager retries.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaip.errors import KaipError
from kaip_incluster.alerts import rota as rotas
from kaip_incluster.github import GitHub

DEFAULT_LABELS = ("kaip-alert",)
_STATE = re.compile(r"<!-- kaip-alert-state: (\[.*?\]) -->")


class BadPayload(KaipError):
    pass


@dataclass(frozen=True)
class Alert:
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str
    fingerprint: str

    def line(self) -> str:
        name = self.labels.get("alertname", "alert")
        where = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k != "alertname")
        text = self.annotations.get("summary") or self.annotations.get("description") or ""
        return f"`{name}` {{{where}}} since {self.starts_at}" + (f": {text}" if text else "")


@dataclass(frozen=True)
class Group:
    key: str
    status: str
    receiver: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    external_url: str
    alerts: tuple[Alert, ...]

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status == "firing")


def _labels(doc: Any, what: str) -> dict[str, str]:
    if doc is None:
        return {}
    if not isinstance(doc, Mapping) or not all(isinstance(v, str) for v in doc.values()):
        raise BadPayload(f"{what} must be an object of strings")
    return {str(k): v for k, v in doc.items()}


def parse(doc: Any) -> Group:
    """Alertmanager's payload, checked; anything else is a BadPayload (answered 400)."""
    if not isinstance(doc, Mapping):
        raise BadPayload("the payload must be a JSON object")
    if str(doc.get("version", "")) != "4":
        raise BadPayload(
            f"payload version {doc.get('version')!r}: only Alertmanager's version 4 is understood"
        )
    key, status = doc.get("groupKey"), doc.get("status")
    if not isinstance(key, str) or not key:
        raise BadPayload("groupKey is missing")
    if status not in ("firing", "resolved"):
        raise BadPayload(f"status {status!r} is neither firing nor resolved")
    raw = doc.get("alerts")
    if not isinstance(raw, list):
        raise BadPayload("alerts must be a list")
    alerts = []
    for i, a in enumerate(raw):
        if not isinstance(a, Mapping) or a.get("status") not in ("firing", "resolved"):
            raise BadPayload(f"alerts[{i}] has no firing/resolved status")
        labels = _labels(a.get("labels"), f"alerts[{i}].labels")
        fp = (
            a.get("fingerprint")
            or hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
        )
        alerts.append(
            Alert(
                status=str(a["status"]),
                labels=labels,
                annotations=_labels(a.get("annotations"), f"alerts[{i}].annotations"),
                starts_at=str(a.get("startsAt") or ""),
                ends_at=str(a.get("endsAt") or ""),
                fingerprint=str(fp),
            )
        )
    return Group(
        key=key,
        status=str(status),
        receiver=str(doc.get("receiver") or ""),
        group_labels=_labels(doc.get("groupLabels"), "groupLabels"),
        common_labels=_labels(doc.get("commonLabels"), "commonLabels"),
        external_url=str(doc.get("externalURL") or ""),
        alerts=tuple(alerts),
    )


def marker(group_key: str) -> str:
    digest = hashlib.sha256(group_key.encode()).hexdigest()[:24]
    return f"<!-- kaip-alert-group: {digest} -->"


def firing_ids(group: Group) -> list[str]:
    return sorted({a.fingerprint for a in group.firing})


def recorded_ids(body: str) -> list[str] | None:
    found = _STATE.search(body or "")
    if not found:
        return None
    try:
        return sorted(str(x) for x in json.loads(found.group(1)))
    except ValueError:
        return None


def title(group: Group) -> str:
    name = group.common_labels.get("alertname") or group.group_labels.get("alertname") or "Alert"
    where = ", ".join(f"{k}={v}" for k, v in sorted(group.group_labels.items()) if k != "alertname")
    return f"{name}: {where}" if where else name


def body(group: Group, assignees: Sequence[str]) -> str:
    lines = [f"Alertmanager group `{group.key}` (receiver `{group.receiver}`).", ""]
    if group.firing:
        lines += ["Firing now:", ""] + [f"- {a.line()}" for a in group.firing]
    else:
        lines += ["Nothing fires now."]
    if assignees:
        lines += ["", "Assigned (docs/remediation.md, The alert route): " + ", ".join(assignees)]
    if group.external_url:
        lines += ["", f"Alertmanager: {group.external_url}"]
    lines += ["", "History: the comments below.", "", marker(group.key)]
    lines += [f"<!-- kaip-alert-state: {json.dumps(firing_ids(group))} -->"]
    return "\n".join(lines)


def change_comment(group: Group, before: Sequence[str]) -> str:
    new = [a for a in group.firing if a.fingerprint not in before]
    now = {a.fingerprint for a in group.firing}
    ended = [a for a in group.alerts if a.status == "resolved" and a.fingerprint in before]
    gone = len([x for x in before if x not in now]) - len(ended)
    lines = ["**Changed.**"]
    if new:
        lines += ["", "Started firing:"] + [f"- {a.line()}" for a in new]
    if ended or gone > 0:
        lines += ["", "Resolved:"] + [f"- {a.line()} (ended {a.ends_at})" for a in ended]
        if gone > 0 and not ended:
            lines += [f"- {gone} alert(s) no longer firing"]
    lines += ["", f"Firing now: {len(group.firing)}"]
    return "\n".join(lines)


def handle(
    group: Group, client: GitHub, *, labels: Sequence[str] = DEFAULT_LABELS, rota: rotas.Rota, now: datetime
) -> str:
    """Apply one notification to the group's issue; returns what was done (for logs and metrics)."""
    found = client.find(marker(group.key), labels)
    firing = firing_ids(group)
    if group.status == "resolved" or not firing:
        if found is None or found.get("state") != "open":
            return "nothing"
        number = int(found["number"])
        ended = [f"- {a.line()} (ended {a.ends_at})" for a in group.alerts]
        client.comment(number, "\n".join(["**Resolved.**", "", *ended]))
        client.update(number, body=body(group, []), state="closed", state_reason="completed")
        return "closed"
    people = rotas.assignees(group.common_labels, rota, now)
    if found is None:
        client.open_issue(title(group), body(group, people), labels, people)
        return "opened"
    number = int(found["number"])
    if found.get("state") != "open":
        fields: dict[str, Any] = {"state": "open", "state_reason": "reopened", "body": body(group, people)}
        if people:
            fields["assignees"] = people
        client.update(number, **fields)
        client.comment(number, "\n".join(["**Firing again.**", "", *[f"- {a.line()}" for a in group.firing]]))
        return "reopened"
    before = recorded_ids(found.get("body") or "")
    if before == firing:
        return "unchanged"
    client.comment(number, change_comment(group, before or []))
    kept = [str(a.get("login")) for a in (found.get("assignees") or []) if isinstance(a, Mapping)]
    client.update(number, body=body(group, kept))
    return "commented"
