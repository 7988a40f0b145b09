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
from kaip.kube.errors import ApiError, NotFound
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
_WATCH_SECONDS = 240
_BACKOFF_MAX = 30.0
FETCH_TIMEOUT = 1.0


def strip_secret(obj: dict[str, Any]) -> SecretInfo:
    meta = obj.get("metadata") or {}
    return SecretInfo(
        name=str(meta.get("name")), type=str(obj.get("type") or ""), keys=frozenset(key_names(obj))
    )


def strip_service_account(obj: dict[str, Any]) -> ServiceAccountInfo:
    meta = obj.get("metadata") or {}
    mine = {
        str(k): str(v)
        for k, v in (meta.get("annotations") or {}).items()
        if str(k).startswith(f"{cr.GROUP}/")
    }
    return ServiceAccountInfo(name=str(meta.get("name")), annotations=mine)


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
    def _list(self, selector: str | None) -> str:
        fresh: dict[Key, T] = {}
        token: str | None = None
        version = ""
        while True:
            page = self.kube.list(
                self.resource, all_namespaces=True, field_selector=selector, limit=_PAGE, continue_token=token
            )
            for obj in page.get("items") or []:
                meta = obj.get("metadata") or {}
                fresh[(str(meta.get("namespace") or ""), str(meta.get("name")))] = self.strip(obj)
            meta = page.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = meta.get("continue")
            if not token:
                break
        # Replace only this selector's share: other selectors of the same cache keep theirs.
        for key in [k for k, v in self.items.items() if self._owned(v, selector) and k not in fresh]:
            self.items.pop(key, None)
        self.items.update(fresh)
        self._synced_parts.add(selector)
        if len(self._synced_parts) == len(self.selectors):
            self.synced.set()
        return version

    def _owned(self, value: T, selector: str | None) -> bool:
        if selector is None or not selector.startswith("type="):
            return True
        return getattr(value, "type", None) == selector.removeprefix("type=")

    def _watch(self, selector: str | None, version: str) -> str:
        for kind, obj in self.kube.watch(
            self.resource,
            all_namespaces=True,
            field_selector=selector,
            resource_version=version,
            timeout_seconds=_WATCH_SECONDS,
        ):
            meta = obj.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            key = (str(meta.get("namespace") or ""), str(meta.get("name")))
            if kind == "DELETED":
                self.items.pop(key, None)
            else:
                self.items[key] = self.strip(obj)
            if self._stop.is_set():
                break
        return version

    def _run(self, selector: str | None) -> None:
        backoff = 0.5
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    version = self._list(selector)
                version = self._watch(selector, version)
                backoff = 0.5
            except ApiError as exc:
                if exc.status == 410:  # resourceVersion too old: list again
                    version = ""
                    continue
                log.warning("watch of %s failed (%s); retrying", self.resource.plural, type(exc).__name__)
                version = ""
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            except KaipError as exc:
                log.warning("watch of %s failed (%s); retrying", self.resource.plural, type(exc).__name__)
                version = ""
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)


def secrets_cache(kube: Kube) -> WatchCache[SecretInfo]:
    return WatchCache(kube, kinds.SECRETS, strip_secret, field_selectors=tuple(f"type={t}" for t in cr.TYPES))


def service_accounts_cache(kube: Kube) -> WatchCache[ServiceAccountInfo]:
    return WatchCache(kube, kinds.SERVICEACCOUNTS, strip_service_account)


def claims_cache(kube: Kube) -> WatchCache[ClaimState]:
    """Every PVC reduced to two flags (asks for a preload, is loaded): what the preload gate needs."""
    return WatchCache(kube, kinds.PVCS, claim_state)
