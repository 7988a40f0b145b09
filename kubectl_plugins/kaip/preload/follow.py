"""Following one preloaded PVC until its load ends: the loop under ``pvc-preload status --watch``.

The PVC is listed by name and then watched (:func:`kaip.kube.watching.list_watch`); each version
of it is turned into a :class:`~kaip.preload.claims.ClaimView` and handed to the caller, which
draws it. The loop ends when the load ends (loaded or failed), and fails when the PVC is missing,
is not a preloaded one, is deleted meanwhile, or the load outlasts the caller's timeout (as
``kubectl wait --timeout`` does).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from kaip.errors import OperationFailed
from kaip.kube import watching
from kaip.preload.claims import ClaimView, view
from kaip.preload.contract import is_preload
from kaip.resources import kinds

if TYPE_CHECKING:
    from kaip.kube.client import Kube

#: The watch is opened again after this long (from the last resourceVersion, without a new list).
WATCH_SECONDS = 60


def follow(
    kube: Kube, name: str, on_update: Callable[[ClaimView], None], *, timeout: float | None = None
) -> ClaimView:
    """Watch the PVC ``name`` of ``kube``'s namespace until its load ends; every change goes to
    ``on_update``. Raises NotFound (exit 7) for a missing PVC, OperationFailed for one that is not
    preloaded, is deleted while it loads, or is still loading after ``timeout`` seconds (None or 0:
    no limit)."""
    stop = threading.Event()
    seconds = WATCH_SECONDS
    timer = None
    if timeout:
        # The server ends each watch by then, and the loop does not open another once stop is set.
        seconds = max(1, min(WATCH_SECONDS, math.ceil(timeout)))
        timer = threading.Timer(timeout, stop.set)
        timer.daemon = True
        timer.start()
    try:
        current = _follow(kube, name, on_update, stop=stop, watch_seconds=seconds)
    finally:
        if timer is not None:
            timer.cancel()
    if current is not None and current.done:
        return current
    if not timeout:  # pragma: no cover - the loop ends only when stopped
        raise OperationFailed(f"stopped following persistentvolumeclaim/{name}")
    raise OperationFailed(
        f"timed out waiting for persistentvolumeclaim/{name} to load (--timeout {timeout:g}s)"
    )


def _follow(
    kube: Kube,
    name: str,
    on_update: Callable[[ClaimView], None],
    *,
    stop: threading.Event,
    watch_seconds: int,
) -> ClaimView | None:
    from kaip.kube.errors import NotFound

    seen = False
    current = None
    for kind, obj in watching.list_watch(
        kube, kinds.PVCS, field_selector=f"metadata.name={name}", watch_seconds=watch_seconds, stop=stop
    ):
        if kind == watching.RESET:  # the list broke off: a new one follows
            continue
        if kind == watching.SYNCED:
            if not seen:
                raise NotFound(
                    f"persistentvolumeclaim/{name} not found in namespace {kube.namespace}", status=404
                )
            continue
        if kind == "DELETED":
            raise OperationFailed(f"persistentvolumeclaim/{name} was deleted while loading")
        if kind == watching.LISTED:
            seen = True
            if not is_preload(obj):
                raise OperationFailed(
                    f"persistentvolumeclaim/{name} is not a preloaded PVC (no source annotation)"
                )
        current = view(obj)
        on_update(current)
        if current.done:
            return current
    return current  # stopped: the timeout
