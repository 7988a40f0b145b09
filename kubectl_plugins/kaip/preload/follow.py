"""Following one preloaded PVC until its load ends: the loop under ``pvc-preload status --watch``.

The PVC is listed by name and then watched (:func:`kaip.kube.watching.list_watch`); each version
of it is turned into a :class:`~kaip.preload.claims.ClaimView` and handed to the caller, which
draws it. The loop ends when the load ends (loaded or failed), and fails when the PVC is missing,
is not a preloaded one, or is deleted meanwhile.
"""

from __future__ import annotations

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


def follow(kube: Kube, name: str, on_update: Callable[[ClaimView], None]) -> ClaimView:
    """Watch the PVC ``name`` of ``kube``'s namespace until its load ends; every change goes to
    ``on_update``. Raises NotFound (exit 7) for a missing PVC, OperationFailed for one that is not
    preloaded or is deleted while it loads."""
    from kaip.kube.errors import NotFound

    seen = False
    for kind, obj in watching.list_watch(
        kube, kinds.PVCS, field_selector=f"metadata.name={name}", watch_seconds=WATCH_SECONDS
    ):
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
    raise OperationFailed(f"stopped following persistentvolumeclaim/{name}")  # pragma: no cover
