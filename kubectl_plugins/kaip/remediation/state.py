"""The step machine's vocabulary: the NodeRemediation status (:class:`State`), the request in its
spec, what the loop observed (:class:`Situation`), and the actions a decision asks for. Pure data."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kaip.kube.objects import api_time, name_of, spec_of
from kaip.remediation.matching import Match, NodeFacts
from kaip.remediation.spec import Rule


# -- the status --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class State:
    phase: str = ""
    rule: str = ""
    condition: str = ""  # "Type=Status"
    condition_since: str = ""  # the occurrence: the condition's lastTransitionTime
    detected_at: str = ""
    phase_since: str = ""
    operation: int = 0
    attempt: int = 0
    operation_started: str = ""
    job: str = ""
    retry_at: str = ""
    was_unschedulable: bool = False
    manual: bool = False
    notified: bool = False
    message: str = ""
    #: The ``spec.requestedAt`` of the last manual request acted on: each request runs once.
    handled_request: str = ""
    history: tuple[Mapping[str, str], ...] = ()

    _FIELDS = (
        ("phase", "phase"),
        ("rule", "rule"),
        ("condition", "condition"),
        ("condition_since", "conditionSince"),
        ("detected_at", "detectedAt"),
        ("phase_since", "phaseSince"),
        ("operation_started", "operationStartedAt"),
        ("job", "job"),
        ("retry_at", "retryAt"),
        ("message", "message"),
        ("handled_request", "handledRequest"),
    )

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> State:
        raw = raw or {}
        text = {attr: str(raw.get(key) or "") for attr, key in cls._FIELDS}
        return cls(
            **text,
            operation=int(raw.get("operation") or 0),
            attempt=int(raw.get("attempt") or 0),
            was_unschedulable=bool(raw.get("wasUnschedulable")),
            manual=bool(raw.get("manual")),
            notified=bool(raw.get("notified")),
            history=tuple(dict(h) for h in raw.get("history") or ()),
        )

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: getattr(self, attr) for attr, key in self._FIELDS if getattr(self, attr)}
        out |= {"operation": self.operation, "attempt": self.attempt}
        out |= {"wasUnschedulable": self.was_unschedulable, "manual": self.manual, "notified": self.notified}
        out["history"] = [dict(h) for h in self.history]
        return out


@dataclass(frozen=True)
class Request:
    """A NodeRemediation's spec: written by ``kubectl node-health remediate`` (manual) or by us."""

    node: str
    rule: str = ""
    manual: bool = False
    dry_run: bool = False
    requested_at: str = ""


def read_request(obj: Mapping[str, Any]) -> Request:
    spec = spec_of(obj)
    return Request(
        node=str(spec.get("nodeName") or name_of(obj)),
        rule=str(spec.get("rule") or ""),
        manual=bool(spec.get("manual")),
        dry_run=bool(spec.get("dryRun")),
        requested_at=str(spec.get("requestedAt") or ""),
    )


# -- actions -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cordon:
    """spec.unschedulable and our NoSchedule taint."""


@dataclass(frozen=True)
class Uncordon:
    keep_unschedulable: bool  # the node was cordoned by someone else before us


@dataclass(frozen=True)
class Mark:
    phase: str  # the node label's value; "" removes it


@dataclass(frozen=True)
class RequestSlot:
    """Ask for a budget slot; the loop admits in detection order with a compare-and-swap."""


@dataclass(frozen=True)
class Release:
    """Give the budget slot back."""


@dataclass(frozen=True)
class Evict:
    pods: tuple[str, ...]  # "namespace/name"


@dataclass(frozen=True)
class RunJob:
    name: str
    rule: str
    operation: int


@dataclass(frozen=True)
class DeleteJob:
    name: str


@dataclass(frozen=True)
class Emit:
    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Notify:
    kind: str  # "failed", "unhandled", "resolved"
    condition: str
    message: str


Action = Cordon | Uncordon | Mark | RequestSlot | Release | Evict | RunJob | DeleteJob | Emit | Notify


@dataclass(frozen=True)
class Decision:
    state: State
    actions: tuple[Action, ...] = ()


# -- what the loop observed ------------------------------------------------------------------------
JOB_NONE, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_MISSING = (
    "",
    "Running",
    "Succeeded",
    "Failed",
    "Missing",
)


@dataclass(frozen=True)
class Situation:
    now: datetime
    node: NodeFacts
    state: State = State()
    request: Request | None = None
    rules: Mapping[str, Rule] = field(default_factory=dict)
    match: Match | None = None
    unknown: Sequence[tuple[str, str]] = ()  # (condition type, lastTransitionTime) no rule handles
    slot: bool = False
    paused: bool = False  # the RemediationConfig or the rule is paused
    tripped: bool = False
    dry_run: bool = False  # the RemediationConfig asks for dry-run
    pods: tuple[str, ...] = ()  # evictable Pods still on the node
    job: str = JOB_NONE

    @property
    def stamp(self) -> str:
        return api_time(self.now)


def job_name(node: str, state: State, operation: int, attempt: int) -> str:
    """Deterministic per episode, operation and attempt: re-creating after a crash finds the same Job."""
    digest = hashlib.sha256(f"{node}|{state.detected_at}|{operation}|{attempt}".encode()).hexdigest()[:8]
    stem = node[:40].rstrip("-.")
    return f"kaip-remediate-{stem}-{digest}"
