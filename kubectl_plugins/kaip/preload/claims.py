"""PVCs for preloading, as data: the claim ``kubectl pvc-preload create`` sends, and how a claim's
``DataLoaded`` condition reads to a person (state, progress). Pure: no I/O.

The condition and its progress message are read as :mod:`kaip.preload.status` defines them; whether
a PVC is a preload at all is :func:`kaip.preload.contract.is_preload`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaip.errors import UsageError
from kaip.kube.objects import annotations_of, metadata, name_of, namespace_of, spec_of, status_of, version_of
from kaip.preload.contract import MAX_PARALLELISM, is_preload
from kaip.preload.plan import path_problem
from kaip.preload.progress import human_bytes
from kaip.preload.status import FAILED, LOADED, LOADING, PENDING, Progress, current, parse_message, state_of
from kaip.resources.preload import (
    ANNOTATION_CREDENTIALS,
    ANNOTATION_PARALLELISM,
    ANNOTATION_PATH,
    ANNOTATION_RETRY,
    ANNOTATION_SOURCE,
)
from kaip.storage.source import Source

__all__ = [
    "FAILED",
    "LOADED",
    "LOADING",
    "PENDING",
    "ClaimView",
    "build_claim",
    "is_preload",
    "retry_patch",
    "view",
]

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
    parallelism: int | None = None,
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
    if parallelism is not None:
        if not 1 <= parallelism <= MAX_PARALLELISM:
            raise UsageError(
                f"--parallelism {parallelism} is not a number of loader Pods from 1 to {MAX_PARALLELISM}"
            )
        if parallelism > 1 and "ReadWriteMany" not in modes:
            raise UsageError(
                f"--parallelism {parallelism} needs a volume every loader Pod can mount: add "
                "--access-mode ReadWriteMany (a StorageClass that offers it, e.g. NFS or CephFS), or drop --parallelism"
            )
        annotations[ANNOTATION_PARALLELISM] = str(parallelism)
    meta: dict[str, Any] = {"name": name, "annotations": annotations}
    if namespace:
        meta["namespace"] = namespace
    spec: dict[str, Any] = {
        "accessModes": list(dict.fromkeys(modes)),
        "resources": {"requests": {"storage": size}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


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
    annotations = annotations_of(pvc)
    spec, status = spec_of(pvc), status_of(pvc)
    cond = current(pvc)
    reason, message = (cond.reason, cond.message) if cond is not None else ("", "")
    size = (status.get("capacity") or {}).get("storage") or (
        (spec.get("resources") or {}).get("requests") or {}
    ).get("storage", "")
    created = metadata(pvc).get("creationTimestamp")
    return ClaimView(
        name=name_of(pvc),
        namespace=namespace_of(pvc),
        source=str(annotations.get(ANNOTATION_SOURCE, "")),
        state=state_of(cond),
        reason=reason,
        message=message,
        progress=parse_message(message),
        size=str(size),
        storage_class=str(spec.get("storageClassName") or ""),
        credentials=str(annotations.get(ANNOTATION_CREDENTIALS, "")),
        path=str(annotations.get(ANNOTATION_PATH, "")),
        created=str(created) if created else None,
        phase=str(status.get("phase") or ""),
    )


def retry_patch(pvc: Mapping[str, Any]) -> dict[str, Any]:
    """Merge patch that bumps the retry counter (a counter, so every retry is a change)."""
    try:
        count = int(annotations_of(pvc).get(ANNOTATION_RETRY, "0")) + 1
    except ValueError:
        count = 1
    rv = version_of(pvc)
    meta: dict[str, Any] = {"annotations": {ANNOTATION_RETRY: str(count)}}
    if rv:
        meta["resourceVersion"] = rv  # lose a race rather than skip a bump
    return {"metadata": meta}


def describe(v: ClaimView) -> str:
    """``pvc-preload status``: the claim as aligned ``Field:  value`` lines, kubectl describe's shape."""
    lines = [
        ("Name", v.name),
        ("Namespace", v.namespace),
        ("Source", v.source or "<none: not a preloaded PVC>"),
        ("Path", v.path or "/"),
        ("Credentials", v.credentials or "<none>"),
        ("Size", v.size),
        ("Phase", v.phase or "<unknown>"),
        ("State", v.state),
    ]
    p = v.progress
    if p is not None:
        bar = "#" * int(p.fraction * 30)
        lines.append(
            (
                "Progress",
                f"[{bar:<30}] {int(p.fraction * 100)}%  {p.objects_done}/{p.objects_total} objects, "
                f"{human_bytes(p.bytes_done)}/{human_bytes(p.bytes_total)}",
            )
        )
    if v.reason:
        lines.append(("Reason", v.reason))
    if v.message and p is None:
        lines.append(("Message", v.message))
    return "\n".join(f"{k + ':':<13}{val}" for k, val in lines)
