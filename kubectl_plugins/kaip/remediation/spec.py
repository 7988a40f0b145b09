"""The remediation.kaip.dev objects read into frozen dataclasses, checked once, with defaults filled in.

The API server has already checked the structural schema; what is checked here is what a schema
cannot say (a duration's syntax, a percent's range, a Job operation without containers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kaip.errors import KaipError
from kaip.kube.objects import name_of, spec_of
from kaip.resources import remediation as names


class SpecInvalid(KaipError):
    """A remediation object that the controller cannot act on; said on its Events and status."""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str | int | float, *, what: str) -> timedelta:
    """Go's duration syntax as Kubernetes uses it (``90s``, ``5m``, ``1h30m``); a bare number is seconds."""
    if isinstance(text, (int, float)):
        return timedelta(seconds=float(text))
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return timedelta(seconds=float(value))
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise SpecInvalid(f'{what}: "{text}" is not a duration (use e.g. 30s, 5m, 1h30m)')
    return timedelta(seconds=total)


@dataclass(frozen=True)
class Amount:
    """A number of nodes, or a percent of a pool (Kubernetes' IntOrString)."""

    value: int
    percent: bool = False

    @classmethod
    def parse(cls, raw: int | str, *, what: str) -> Amount:
        if isinstance(raw, int):
            if raw < 0:
                raise SpecInvalid(f"{what}: {raw} is negative")
            return cls(raw)
        text = str(raw).strip()
        if text.endswith("%") and text[:-1].isdigit() and int(text[:-1]) <= 100:
            return cls(int(text[:-1]), percent=True)
        if text.isdigit():
            return cls(int(text))
        raise SpecInvalid(f'{what}: "{raw}" is neither a number nor a percent from 0% to 100%')

    def of(self, pool: int, *, round_up: bool) -> int:
        """The number of nodes this amount means in a pool of ``pool`` nodes."""
        if not self.percent:
            return self.value
        exact = pool * self.value / 100
        count = math.ceil(exact) if round_up else math.floor(exact)
        # A positive percent of a non-empty pool is at least one node, or the rule could never act.
        return max(count, 1) if self.value and pool else count

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


@dataclass(frozen=True)
class Selector:
    """A LabelSelector (matchLabels and matchExpressions); the empty selector picks every node."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Selector:
        raw = raw or {}
        exprs = tuple(
            (str(e["key"]), str(e["operator"]), tuple(str(v) for v in e.get("values") or ()))
            for e in raw.get("matchExpressions") or ()
        )
        return cls(dict(raw.get("matchLabels") or {}), exprs)

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for key, op, values in self.expressions:
            ok = {
                "In": key in labels and labels[key] in values,
                "NotIn": key not in labels or labels[key] not in values,
                "Exists": key in labels,
                "DoesNotExist": key not in labels,
            }.get(op, False)
            if not ok:
                return False
        return True


@dataclass(frozen=True)
class ConditionMatch:
    type: str
    status: str = "True"
    duration: timedelta = timedelta(0)

    def __str__(self) -> str:
        return f"{self.type}={self.status}"


@dataclass(frozen=True)
class Operation:
    name: str
    type: str  # names.OPERATION_JOB or names.OPERATION_REBOOT
    timeout: timedelta
    template: Mapping[str, Any] = field(default_factory=dict)  # a Pod template (metadata, spec)
    image: str = names.REBOOT_IMAGE


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: tuple[ConditionMatch, ...]
    selector: Selector = Selector()
    drain: bool = True
    drain_timeout: timedelta = timedelta(minutes=10)
    continue_after_drain_timeout: bool = False
    operations: tuple[Operation, ...] = ()
    retry_limit: int = 0
    retry_backoff: timedelta = timedelta(minutes=1)
    paused: bool = False
    dry_run: bool = False


def parse_rule(obj: Mapping[str, Any]) -> Rule:
    name = name_of(obj)
    spec = spec_of(obj)
    where = f"RemediationRule {name}"
    conditions = tuple(
        ConditionMatch(
            str(c["type"]),
            str(c.get("status") or "True"),
            parse_duration(c.get("duration") or 0, what=f"{where}: conditions[{i}].duration"),
        )
        for i, c in enumerate(spec.get("conditions") or ())
    )
    if not conditions:
        raise SpecInvalid(f"{where}: spec.conditions is empty; name at least one node condition")
    drain = spec.get("drain") or {}
    retry = spec.get("retry") or {}
    operations = tuple(
        _operation(o, where=f"{where}: operations[{i}]") for i, o in enumerate(spec.get("operations") or ())
    )
    return Rule(
        name=name,
        conditions=conditions,
        selector=Selector.parse(spec.get("nodeSelector")),
        drain=not drain.get("skip", False),
        drain_timeout=parse_duration(drain.get("timeout") or "10m", what=f"{where}: drain.timeout"),
        continue_after_drain_timeout=drain.get("onTimeout", "Fail") == "Continue",
        operations=operations,
        retry_limit=int(retry.get("limit") or 0),
        retry_backoff=parse_duration(retry.get("backoff") or "1m", what=f"{where}: retry.backoff"),
        paused=bool(spec.get("paused", False)),
        dry_run=bool(spec.get("dryRun", False)),
    )


def _operation(raw: Mapping[str, Any], *, where: str) -> Operation:
    kind = str(raw.get("type") or names.OPERATION_JOB)
    template = raw.get("template") or {}
    if kind == names.OPERATION_JOB and not spec_of(template).get("containers"):
        raise SpecInvalid(f"{where}: a Job operation needs template.spec.containers")
    if kind not in (names.OPERATION_JOB, names.OPERATION_REBOOT):
        raise SpecInvalid(f'{where}: type "{kind}" is not Job or Reboot')
    return Operation(
        name=str(raw.get("name") or kind.lower()),
        type=kind,
        timeout=parse_duration(raw.get("timeout") or "15m", what=f"{where}.timeout"),
        template=template,
        image=str(raw.get("image") or names.REBOOT_IMAGE),
    )


@dataclass(frozen=True)
class Budget:
    name: str
    selector: Selector
    max_unavailable: Amount


def parse_budget(obj: Mapping[str, Any]) -> Budget:
    name = name_of(obj)
    spec = spec_of(obj)
    return Budget(
        name,
        Selector.parse(spec.get("selector")),
        Amount.parse(spec.get("maxUnavailable", 1), what=f"NodeDisruptionBudget {name}: maxUnavailable"),
    )


@dataclass(frozen=True)
class GitHubTarget:
    api_url: str
    owner: str
    repo: str
    token_namespace: str
    token_secret: str
    token_key: str = "token"  # noqa: S105 - the key name in the Secret
    labels: tuple[str, ...] = ("kaip-remediation",)


@dataclass(frozen=True)
class Config:
    paused: bool = False
    dry_run: bool = False
    breaker_threshold: Amount = Amount(50, percent=True)
    breaker_window: timedelta = timedelta(minutes=5)
    webhook_url: str = ""
    github: GitHubTarget | None = None
    unknown_conditions: tuple[str, ...] = ()


def parse_config(obj: Mapping[str, Any] | None, *, default_unknown: Sequence[str] = ()) -> Config:
    spec = spec_of(obj)
    breaker = spec.get("circuitBreaker") or {}
    notifier = spec.get("notifier") or {}
    gh = notifier.get("github")
    github = None
    if gh:
        secret = gh.get("tokenSecretRef") or {}
        github = GitHubTarget(
            api_url=str(gh.get("apiURL") or "https://api.github.com").rstrip("/"),
            owner=str(gh["owner"]),
            repo=str(gh["repo"]),
            token_namespace=str(secret.get("namespace") or "kaip-remediation"),
            token_secret=str(secret.get("name") or "kaip-remediation-github"),
            token_key=str(secret.get("key") or "token"),
            labels=tuple(gh.get("labels") or ("kaip-remediation",)),
        )
    return Config(
        paused=bool(spec.get("paused", False)),
        dry_run=bool(spec.get("dryRun", False)),
        breaker_threshold=Amount.parse(
            breaker.get("threshold", "50%"), what="RemediationConfig: circuitBreaker.threshold"
        ),
        breaker_window=parse_duration(
            breaker.get("window") or "5m", what="RemediationConfig: circuitBreaker.window"
        ),
        webhook_url=str((notifier.get("webhook") or {}).get("url") or ""),
        github=github,
        unknown_conditions=tuple(spec.get("unknownConditions") or default_unknown),
    )
