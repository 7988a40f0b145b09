"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it; reusable by any process.

One replica holds the Lease and renews it every ``retry_period``; the others wait until the record
has not changed for ``lease_seconds`` (measured on their own clock, so clock skew between nodes does
not matter) and then take it over with an update guarded by resourceVersion: of two candidates, one
wins and the other gets a 409. A leader that cannot renew for ``renew_deadline`` (shorter than
``lease_seconds``) stops leading before anyone else may start.

The decision (:func:`decide`) is pure; :class:`LeaderElector` is the thin loop around it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kaip.errors import KaipError
from kaip.kube.objects import api_micro_time, spec_of
from kaip.resources.kinds import LEASES

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    lease_seconds: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def micro_time(moment: float) -> str:
    """A MicroTime as the API writes it."""
    return api_micro_time(datetime.fromtimestamp(moment, timezone.utc))


@dataclass(frozen=True)
class Decision:
    """``create`` or ``update`` the Lease with ``spec``, or ``wait``."""

    verb: str
    spec: Mapping[str, Any] | None = None


def decide(lease: Mapping[str, Any] | None, *, config: LeaseConfig, now: float, expired: bool) -> Decision:
    """What to do with the Lease as read; ``expired``: its record has not changed for lease_seconds."""
    duration = max(round(config.lease_seconds), 1)
    if lease is None:
        fresh: dict[str, Any] = {
            "holderIdentity": config.identity,
            "leaseDurationSeconds": duration,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
            "leaseTransitions": 0,
        }
        return Decision("create", fresh)
    spec: dict[str, Any] = dict(spec_of(lease))
    holder = spec.get("holderIdentity") or ""
    if holder == config.identity:
        spec.update(renewTime=micro_time(now), leaseDurationSeconds=duration)
        return Decision("update", spec)
    if holder and not expired:
        return Decision("wait")
    spec.update(
        holderIdentity=config.identity,
        leaseDurationSeconds=duration,
        acquireTime=micro_time(now),
        renewTime=micro_time(now),
        leaseTransitions=int(spec.get("leaseTransitions") or 0) + (1 if holder else 0),
    )
    return Decision("update", spec)


class LeaderElector:
    def __init__(
        self, kube: Kube, config: LeaseConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kube, self.config, self.clock = kube, config, clock
        self._seen: tuple[str, str] | None = None  # (holder, renewTime) last observed
        self._seen_at = 0.0
        self._renewed_at: float | None = None
        self.leading = threading.Event()

    def _expired(self, lease: Mapping[str, Any]) -> bool:
        spec = spec_of(lease)
        record = (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""))
        now = self.clock()
        if record != self._seen:
            self._seen, self._seen_at = record, now
        return now - self._seen_at >= self.config.lease_seconds

    def try_acquire_or_renew(self) -> bool:
        """One round; True when this process holds the Lease afterwards."""
        from kaip.kube.errors import Conflict, NotFound

        kube, cfg = self.kube, self.config
        try:
            lease: dict[str, Any] | None = kube.get(LEASES, cfg.name, namespace=cfg.namespace)
        except NotFound:
            lease = None
        decision = decide(
            lease, config=cfg, now=time.time(), expired=lease is not None and self._expired(lease)
        )
        if decision.verb == "wait":
            if self.leading.is_set():
                self._renewed_at = float("-inf")  # someone else holds it: we lost it already
            return False
        try:
            if decision.verb == "create":
                kube.create(
                    LEASES, {"metadata": {"name": cfg.name}, "spec": decision.spec}, namespace=cfg.namespace
                )
            else:
                assert lease is not None
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": lease["metadata"],
                    "spec": decision.spec,
                }
                kube.replace(LEASES, body, namespace=cfg.namespace)
        except Conflict:
            return False  # another candidate wrote first
        self._renewed_at = self.clock()
        return True

    def release(self) -> None:
        """Give the Lease up on a clean shutdown, so the next leader starts at once."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        cfg = self.config
        try:
            lease = self.kube.get(LEASES, cfg.name, namespace=cfg.namespace)
            spec = dict(spec_of(lease))
            if spec.get("holderIdentity") != cfg.identity:
                return
            spec.update(holderIdentity="", leaseDurationSeconds=1)
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": lease["metadata"],
                "spec": spec,
            }
            self.kube.replace(LEASES, body, namespace=cfg.namespace)
        except KaipError as exc:
            log.warning("lease %s/%s not released: %s", cfg.namespace, cfg.name, exc.message)

    def run(self, *, stop: threading.Event, on_lost: Callable[[], None]) -> None:
        """Campaign until leading, then renew; call ``on_lost`` when leadership cannot be kept."""
        cfg = self.config
        while not stop.is_set():
            try:
                ok = self.try_acquire_or_renew()
            except KaipError as exc:
                log.warning("lease %s/%s: %s", cfg.namespace, cfg.name, exc.message)
                ok = False
            if ok and not self.leading.is_set():
                log.info(
                    "became the leader (lease %s/%s, identity %s)", cfg.namespace, cfg.name, cfg.identity
                )
                self.leading.set()
            if self.leading.is_set() and not ok:
                since = self.clock() - (self._renewed_at or 0.0)
                if since >= cfg.renew_deadline:
                    log.error("lost the lease %s/%s (not renewed for %.0fs)", cfg.namespace, cfg.name, since)
                    self.leading.clear()
                    on_lost()
                    return
            stop.wait(cfg.retry_period)
