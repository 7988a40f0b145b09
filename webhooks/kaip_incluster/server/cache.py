"""Watch caches: list + watch in a thread, objects stripped to what admission needs.

A Secret is kept as its name, type and key names; its values are dropped as soon as an event is
decoded. A ServiceAccount is kept as its name and its ``kaip.dev/`` annotations. ``synced`` is set
after the first full list, which is what ``/readyz`` waits for. On a miss (an object created an
instant before the Pod that refers to it) the server asks :meth:`WatchCache.fetch`, one rate-limited
GET with a short timeout, as amazon-eks-pod-identity-webhook learned to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kaip.errors import KaipError
from kaip.kube import watching
from kaip.kube.errors import NotFound
from kaip.kube.objects import annotations_of, key_of, name_of
from kaip.resources import credentials as cr
from kaip.resources import kinds
from kaip.resources.kinds import Resource
from kaip_incluster.admission.pods import SecretInfo, ServiceAccountInfo
from kaip_incluster.admission.preload_gate import ClaimState, claim_state
from kaip_incluster.admission.secrets import key_names

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger("kaip.webhook.cache")

T = TypeVar("T")
Key = tuple[str, str]
_PAGE = 500
#: A failing watch lists again after 0.5 s, doubling to 30 s while it keeps failing.
_BACKOFF = watching.Backoff(base=0.5, cap=30.0)
FETCH_TIMEOUT = 1.0


def strip_secret(obj: dict[str, Any]) -> SecretInfo:
    return SecretInfo(name=name_of(obj), type=str(obj.get("type") or ""), keys=frozenset(key_names(obj)))


def strip_service_account(obj: dict[str, Any]) -> ServiceAccountInfo:
    mine = {str(k): str(v) for k, v in annotations_of(obj).items() if str(k).startswith(f"{cr.GROUP}/")}
    return ServiceAccountInfo(name=name_of(obj), annotations=mine)


class RateLimit:
    """A token bucket: ``rate`` per second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class CacheMiss(KaipError):
    """A lookup that neither the cache nor a direct GET could answer (rate limit, API error)."""

    temporary = True


class WatchCache(Generic[T]):
    """One resource type across all namespaces, optionally narrowed by a field selector."""

    def __init__(
        self,
        kube: Kube,
        resource: Resource,
        strip: Callable[[dict[str, Any]], T],
        *,
        field_selectors: tuple[str | None, ...] = (None,),
        limiter: RateLimit | None = None,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.strip = strip
        self.selectors = field_selectors
        self.items: dict[Key, T] = {}
        self.synced = threading.Event()
        self.limiter = limiter or RateLimit(10.0, 20)
        self._synced_parts: set[str | None] = set()
        self._stop = threading.Event()

    def start(self) -> None:
        for selector in self.selectors:
            name = f"watch-{self.resource.plural}-{selector or 'all'}"
            threading.Thread(target=self._run, args=(selector,), name=name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def get(self, namespace: str, name: str) -> T | None:
        return self.items.get((namespace, name))

    def fetch(self, namespace: str, name: str) -> T | None:
        """A direct GET on a cache miss; ``None`` when the object does not exist."""
        if not self.limiter.allow():
            raise CacheMiss(f"{self.resource.kind} lookups are rate-limited; try again")
        path = self.resource.path(namespace=namespace, name=name)
        try:
            obj = self.kube.request("GET", path, timeout=FETCH_TIMEOUT, resource=self.resource)
        except NotFound:
            return None
        except KaipError as exc:
            raise CacheMiss(f"{self.resource.kind} lookup failed ({type(exc).__name__}); try again") from exc
        return self.strip(obj)

    # -- the loop -----------------------------------------------------------------------------------
    def _run(self, selector: str | None) -> None:
        fresh: dict[Key, T] = {}
        for kind, obj in watching.list_watch(
            self.kube,
            self.resource,
            all_namespaces=True,
            field_selector=selector,
            backoff=_BACKOFF,
            stop=self._stop,
            page=_PAGE,
            on_error=lambda exc, delay: log.warning(
                "watch of %s failed (%s); retrying in %.1fs", self.resource.plural, type(exc).__name__, delay
            ),
        ):
            if kind == watching.RESET:  # the list broke off: a new one follows
                fresh = {}
            elif kind == watching.LISTED:
                fresh[key_of(obj)] = self.strip(obj)
            elif kind == watching.SYNCED:
                self._replace(selector, fresh)
                fresh = {}
            elif kind == "DELETED":
                self.items.pop(key_of(obj), None)
            else:
                self.items[key_of(obj)] = self.strip(obj)

    def _replace(self, selector: str | None, fresh: dict[Key, T]) -> None:
        """A (re-)list is the whole state of this selector's share; other selectors keep theirs."""
        for key in [k for k, v in self.items.items() if self._owned(v, selector) and k not in fresh]:
            self.items.pop(key, None)
        self.items.update(fresh)
        self._synced_parts.add(selector)
        if len(self._synced_parts) == len(self.selectors):
            self.synced.set()

    def _owned(self, value: T, selector: str | None) -> bool:
        if selector is None or not selector.startswith("type="):
            return True
        return getattr(value, "type", None) == selector.removeprefix("type=")


def secrets_cache(kube: Kube) -> WatchCache[SecretInfo]:
    return WatchCache(kube, kinds.SECRETS, strip_secret, field_selectors=tuple(f"type={t}" for t in cr.TYPES))


def service_accounts_cache(kube: Kube) -> WatchCache[ServiceAccountInfo]:
    return WatchCache(kube, kinds.SERVICEACCOUNTS, strip_service_account)


def claims_cache(kube: Kube) -> WatchCache[ClaimState]:
    """Every PVC reduced to two flags (asks for a preload, is loaded): what the preload gate needs."""
    return WatchCache(kube, kinds.PVCS, claim_state)
