"""The one list-watch loop: list, watch from the list's resourceVersion, list again when needed.

Every follower of API objects in kaip (the controller's watches, the webhook's caches,
``node-health list --watch``, ``pvc-preload status --watch``) reads the stream of
:func:`list_watch`:

* ``("LISTED", obj)`` for each object of a (re-)list, page by page, then one ``("SYNCED", list)``
  whose ``metadata.resourceVersion`` is the list's: everything listed before it is the whole state;
* ``("ADDED" | "MODIFIED" | "DELETED", obj)`` as the watch reports changes;
* ``("RESET", {})`` when a list broke off midway (a 410 on a later page, an error): forget its
  ``LISTED`` events, a new list follows. A follower that builds its state from a list must take it.

Bookmarks (asked for) keep the resourceVersion fresh and are not passed on; a watch the server ends
(``timeoutSeconds``) is opened again from the last resourceVersion without a list. A ``410 Gone``
(the resourceVersion fell out of the server's window) lists again at once. Any other error either
ends the stream (``backoff=None``: a command shows it) or waits as the :class:`Backoff` policy says,
then lists again (a long-running process keeps following).

Rule: decisions stay with the caller; this module only moves objects.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kaip.errors import KaipError
from kaip.kube.objects import metadata, version_of

if TYPE_CHECKING:
    from kaip.kube.client import Kube
    from kaip.resources.kinds import Resource

log = logging.getLogger(__name__)

LISTED = "LISTED"
SYNCED = "SYNCED"
RESET = "RESET"
#: The server ends each watch after this long; the loop opens the next from the last resourceVersion.
WATCH_SECONDS = 240
PAGE = 500


@dataclass(frozen=True)
class Backoff:
    """Wait before listing again after the ``n``-th failure in a row: ``base * factor**(n-1)``, capped,
    with equal jitter (half fixed, half random) so replicas do not retry in step."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, failures: int, *, rng: Callable[[], float] = random.random) -> float:
        top = min(self.cap, self.base * self.factor ** min(max(failures - 1, 0), 32))
        return float(top / 2 + rng() * top / 2)


def list_watch(
    kube: Kube,
    resource: Resource,
    *,
    namespace: str | None = None,
    all_namespaces: bool = False,
    label_selector: str | None = None,
    field_selector: str | None = None,
    resource_version: str | None = None,
    backoff: Backoff | None = None,
    stop: threading.Event | None = None,
    page: int = PAGE,
    watch_seconds: int = WATCH_SECONDS,
    on_error: Callable[[KaipError, float], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Follow ``resource`` as described in the module's docstring, until ``stop`` is set.

    ``resource_version``: watch from there without a first list (the caller has just listed).
    ``backoff``: ``None`` raises any error but a 410; a policy waits and lists again, telling
    ``on_error(error, delay)`` (default: a warning in the log; the message only, never a body).
    ``stop`` is looked at between events and ends a wait at once.
    """
    from kaip.kube.errors import ApiError

    halt = stop or threading.Event()
    scope: dict[str, Any] = {
        "namespace": namespace,
        "all_namespaces": all_namespaces,
        "label_selector": label_selector,
        "field_selector": field_selector,
    }
    version = resource_version or ""
    failures = 0
    listed = [False]  # set by _list once it has passed on an object of an unfinished list
    while not halt.is_set():
        try:
            if not version:
                if listed[0]:
                    yield RESET, {}
                version = yield from _list(kube, resource, scope, page, listed)
                if halt.is_set():
                    return
            for kind, obj in kube.watch(
                resource, resource_version=version, timeout_seconds=watch_seconds, **scope
            ):
                version = version_of(obj) or version
                failures = 0
                if kind != "BOOKMARK":
                    yield kind, obj
                if halt.is_set():
                    return
        except ApiError as exc:
            version = ""
            if exc.status == 410:  # too old: list again at once
                continue
            if backoff is None:
                raise
            failures += 1
            _wait(exc, backoff.delay(failures), halt, resource, on_error)
        except KaipError as exc:
            version = ""
            if backoff is None:
                raise
            failures += 1
            _wait(exc, backoff.delay(failures), halt, resource, on_error)


def _list(
    kube: Kube, resource: Resource, scope: Mapping[str, Any], page: int, listed: list[bool]
) -> Generator[tuple[str, dict[str, Any]], None, str]:
    """One consistent list, page by page (one page of raw objects alive at a time); returns its version.

    ``listed[0]`` is true from its first object until it ends: a list that breaks off leaves it set.
    """
    token: str | None = None
    version = ""
    while True:
        chunk = kube.list(resource, limit=page, continue_token=token, **scope)
        version = version or version_of(chunk)
        for item in chunk.get("items") or ():
            listed[0] = True
            yield LISTED, item
        token = metadata(chunk).get("continue")
        del chunk
        if not token:
            break
    listed[0] = False
    yield SYNCED, {"metadata": {"resourceVersion": version}}
    return version


def _wait(
    exc: KaipError,
    delay: float,
    halt: threading.Event,
    resource: Resource,
    on_error: Callable[[KaipError, float], None] | None,
) -> None:
    if on_error is not None:
        on_error(exc, delay)
    else:
        log.warning("watch of %s: %s; listing again in %.1fs", resource.plural, exc.message, delay)
    halt.wait(delay)
