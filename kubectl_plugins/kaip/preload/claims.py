"""PVCs for preloading, as data: the claim ``kubectl pvc-preload create`` sends, and how a claim's
``DataLoaded`` condition reads to a person (state, progress). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaip.errors import UsageError
from kaip.preload.plan import path_problem
from kaip.preload.progress import Progress, parse_message
from kaip.resources.preload import (
    ANNOTATION_CREDENTIALS,
    ANNOTATION_PATH,
    ANNOTATION_RETRY,
    ANNOTATION_SOURCE,
    CONDITION_LOADED,
    REASON_LOADING,
)
from kaip.storage.source import Source

ACCESS_MODES = {
    "ReadWriteOnce": "ReadWriteOnce",
    "RWO": "ReadWriteOnce",
    "ReadOnlyMany": "ReadOnlyMany",
    "ROX": "ReadOnlyMany",
    "ReadWriteMany": "ReadWriteMany",
    "RWX": "ReadWriteMany",
    "ReadWriteOncePod": "ReadWriteOncePod",
    "RWOP": "ReadWriteOncePod",
}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")

LOADED, LOADING, FAILED, PENDING = "Loaded", "Loading", "Failed", "Pending"


def build_claim(
    *,
    name: str,
    source: Source,
    size: str,
    namespace: str | None = None,
    storage_class: str | None = None,
    access_modes: Sequence[str] = ("ReadWriteOnce",),
    credentials: str | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """The PersistentVolumeClaim to create; UsageError names the flag that is wrong."""
    if not _NAME.match(name):
        raise UsageError(f"NAME {name!r} is not a valid PVC name (lower case letters, digits, '-', '.')")
    if not _QUANTITY.match(size):
        raise UsageError(f"--size {size!r} is not a Kubernetes quantity (e.g. 100Gi)")
    modes = []
    for mode in access_modes:
        if mode not in ACCESS_MODES:
            raise UsageError(
                f"--access-mode {mode!r} is not one of {', '.join(sorted(set(ACCESS_MODES.values())))}"
            )
        modes.append(ACCESS_MODES[mode])
    annotations = {ANNOTATION_SOURCE: source.url}
    if credentials:
        if not _NAME.match(credentials):
            raise UsageError(f"--credentials {credentials!r} is not a valid Secret name")
        annotations[ANNOTATION_CREDENTIALS] = credentials
    if path:
        clean = path.strip("/")
        problem = path_problem(clean) if clean else None
        if problem:
            raise UsageError(f"--path {path!r} must be a sub-directory of the volume ({problem})")
        annotations[ANNOTATION_PATH] = clean
    metadata: dict[str, Any] = {"name": name, "annotations": annotations}
    if namespace:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {
        "accessModes": list(dict.fromkeys(modes)),
        "resources": {"requests": {"storage": size}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def is_preload(pvc: Mapping[str, Any]) -> bool:
    return ANNOTATION_SOURCE in ((pvc.get("metadata") or {}).get("annotations") or {})


def condition(pvc: Mapping[str, Any]) -> dict[str, Any] | None:
    for cond in (pvc.get("status") or {}).get("conditions") or ():
        if cond.get("type") == CONDITION_LOADED:
            return dict(cond)
    return None


@dataclass(frozen=True)
class ClaimView:
    name: str
    namespace: str
    source: str
    state: str
    reason: str
    message: str
    progress: Progress | None
    size: str
    storage_class: str
    credentials: str
    path: str
    created: str | None
    phase: str

    @property
    def done(self) -> bool:
        return self.state in (LOADED, FAILED)

    def progress_text(self) -> str:
        """``42% (120/300)``; ``100%`` once loaded; ``-`` when unknown."""
        if self.state == LOADED:
            return "100%"
        p = self.progress
        if p is None:
            return "-"
        return f"{int(p.fraction * 100)}% ({p.objects_done}/{p.objects_total})"


def view(pvc: Mapping[str, Any]) -> ClaimView:
    meta = pvc.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    cond = condition(pvc)
    if cond is None:
        state, reason, message = PENDING, "", ""
    else:
        reason, message = str(cond.get("reason") or ""), str(cond.get("message") or "")
        state = {"True": LOADED, "False": FAILED}.get(str(cond.get("status")), "")
        if not state:
            state = LOADING if reason == REASON_LOADING or parse_message(message) else PENDING
    size = (status.get("capacity") or {}).get("storage") or (
        (spec.get("resources") or {}).get("requests") or {}
    ).get("storage", "")
    return ClaimView(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        source=str(annotations.get(ANNOTATION_SOURCE, "")),
        state=state,
        reason=reason,
        message=message,
        progress=parse_message(message),
        size=str(size),
        storage_class=str(spec.get("storageClassName") or ""),
        credentials=str(annotations.get(ANNOTATION_CREDENTIALS, "")),
        path=str(annotations.get(ANNOTATION_PATH, "")),
        created=meta.get("creationTimestamp"),
        phase=str(status.get("phase") or ""),
    )


def retry_patch(pvc: Mapping[str, Any]) -> dict[str, Any]:
    """Merge patch that bumps the retry counter (a counter, so every retry is a change)."""
    current = ((pvc.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_RETRY, "0")
    try:
        count = int(current) + 1
    except ValueError:
        count = 1
    rv = (pvc.get("metadata") or {}).get("resourceVersion")
    meta: dict[str, Any] = {"annotations": {ANNOTATION_RETRY: str(count)}}
    if rv:
        meta["resourceVersion"] = rv  # lose a race rather than skip a bump
    return {"metadata": meta}
