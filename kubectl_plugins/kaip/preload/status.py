"""The status contract of a preload PVC, in one place: how its ``DataLoaded`` condition and the
loader's outcome are written, and how they are read. Pure: no I/O.

Who writes and who reads:

* the condition (:class:`Condition`, :func:`status_patch`): written by the controller
  (``kaip_incluster.controller``) and, for progress, by the loader (``kaip_incluster.loader``);
  read by the controller (:func:`current`), its scheduling gate and the admission webhook
  (:func:`is_loaded`), and the plugin (:func:`state_of`, ``kubectl pvc-preload list/status``);
* the progress message (:func:`format_message` / :func:`parse_message`): ``N/M objects, X/Y bytes``,
  integers without separators, optionally followed by ``; free text`` (rate, counts, retries); the
  loader writes it while it copies (``Unknown``/``Loading``) and on success (``True``/``Succeeded``),
  the plugin reads it;
* the outcome (:class:`Outcome`): one JSON object in the loader container's termination message
  (at most 4 KiB, kubelet keeps no more), written by the loader (:meth:`Outcome.to_json`), read by
  the controller from the Pod's container status (:func:`outcome_in`).

The names (condition type, reasons, annotations) are :mod:`kaip.resources.preload`.

PVC conditions are a list keyed by ``type`` (strategic merge), so a patch that names only
``DataLoaded`` leaves the conditions of others (resize, modify-volume) alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kaip.errors import shorten
from kaip.kube.objects import condition_of, status_of
from kaip.resources.preload import CONDITION_LOADED, REASON_LOADING

# -- the DataLoaded condition ----------------------------------------------------------------------
TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


@dataclass(frozen=True)
class Condition:
    status: str
    reason: str
    message: str


def current(pvc: Mapping[str, Any]) -> Condition | None:
    """The PVC's ``DataLoaded`` condition, ``None`` while it has none."""
    item = condition_of(pvc, CONDITION_LOADED)
    if item is None:
        return None
    return Condition(
        status=str(item.get("status") or ""),
        reason=str(item.get("reason") or ""),
        message=str(item.get("message") or ""),
    )


def is_loaded(pvc: Mapping[str, Any]) -> bool:
    found = current(pvc)
    return found is not None and found.status == TRUE


def status_patch(
    condition: Condition, *, now: str, transition: bool, type_: str = CONDITION_LOADED
) -> dict[str, Any]:
    """Strategic-merge patch for the status subresource; ``transition`` stamps lastTransitionTime.

    ``now`` is a ``metav1.Time`` (:func:`kaip.kube.objects.api_time`); ``type_`` another condition
    type (a shard's progress, :mod:`kaip.preload.shards`).
    """
    item: dict[str, Any] = {
        "type": type_,
        "status": condition.status,
        "reason": condition.reason,
        "message": condition.message,
        "lastProbeTime": now,
    }
    if transition:
        item["lastTransitionTime"] = now
    return {"status": {"conditions": [item]}}


# -- the progress message --------------------------------------------------------------------------
_MESSAGE = re.compile(r"^\s*(\d+)/(\d+) objects, (\d+)/(\d+) bytes(?:;\s*(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Progress:
    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int

    @property
    def fraction(self) -> float:
        """Done part in [0, 1], by bytes (by objects when there are no bytes)."""
        if self.bytes_total > 0:
            return min(self.bytes_done / self.bytes_total, 1.0)
        if self.objects_total > 0:
            return min(self.objects_done / self.objects_total, 1.0)
        return 1.0


def format_message(progress: Progress, *, note: str = "") -> str:
    text = (
        f"{progress.objects_done}/{progress.objects_total} objects, "
        f"{progress.bytes_done}/{progress.bytes_total} bytes"
    )
    return f"{text}; {note}" if note else text


def parse_message(message: str | None) -> Progress | None:
    """The progress in a condition message, or None when it holds none (a failure, a pending load)."""
    match = _MESSAGE.match(message or "")
    if not match:
        return None
    od, ot, bd, bt = (int(g) for g in match.groups()[:4])
    return Progress(objects_done=od, objects_total=ot, bytes_done=bd, bytes_total=bt)


def note_of(message: str | None) -> str:
    match = _MESSAGE.match(message or "")
    return (match.group(5) or "").strip() if match else ""


# -- the condition as a person reads it --------------------------------------------------------------
LOADED, LOADING, FAILED, PENDING = "Loaded", "Loading", "Failed", "Pending"


def state_of(condition: Condition | None) -> str:
    """``Loaded`` (True), ``Failed`` (False), ``Loading`` (copying), else ``Pending``."""
    if condition is None:
        return PENDING
    if condition.status == TRUE:
        return LOADED
    if condition.status == FALSE:
        return FAILED
    if condition.reason == REASON_LOADING or parse_message(condition.message):
        return LOADING
    return PENDING


# -- the loader's outcome (termination message) ------------------------------------------------------
LIMIT = 4096
_COUNTS = ("objects", "bytes", "copied", "reused", "refused")


@dataclass(frozen=True)
class Outcome:
    """``reason``: a ``DataLoaded`` reason (``Succeeded``, ``SourceNotFound``, ``AccessDenied``,
    ``UnsafeKeys``…); ``message``: for the condition, never a secret; for a success the counts and
    the digest of the source listing (recorded as ``preload.kaip.dev/loaded-digest``)."""

    reason: str
    message: str
    digest: str = ""
    objects: int = 0
    bytes: int = 0
    copied: int = 0
    reused: int = 0
    refused: int = 0

    def to_json(self) -> str:
        data = asdict(self)
        text = json.dumps(data, separators=(",", ":"))
        if len(text.encode()) > LIMIT:
            data["message"] = shorten(self.message, 1000)
            text = json.dumps(data, separators=(",", ":"))
        return text


def parse_outcome(text: str | None) -> Outcome | None:
    """The outcome in a termination message; None when it is not ours (e.g. logs of a crash)."""
    if not text:
        return None
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        return None
    ints = {k: int(data[k]) for k in _COUNTS if isinstance(data.get(k), int)}
    return Outcome(
        reason=data["reason"],
        message=str(data.get("message") or ""),
        digest=str(data.get("digest") or ""),
        **ints,
    )


def terminated(pod: Mapping[str, Any], container: str) -> Mapping[str, Any] | None:
    """The ``terminated`` state of ``container`` in the Pod's status, ``None`` while it runs."""
    for status in status_of(pod).get("containerStatuses") or ():
        if isinstance(status, Mapping) and status.get("name") == container:
            found = (status.get("state") or {}).get("terminated")
            return found if isinstance(found, Mapping) else None
    return None


def outcome_in(pods: Sequence[Mapping[str, Any]], *, container: str, succeeded: bool) -> Outcome | None:
    """The outcome in the termination message of the newest Pod whose ``container`` ended as wanted."""
    ended = []
    for pod in pods:
        term = terminated(pod, container)
        if term is not None and (term.get("exitCode") == 0) == succeeded:
            ended.append((str(term.get("finishedAt") or ""), parse_outcome(str(term.get("message") or ""))))
    ended.sort(key=lambda pair: pair[0])
    return ended[-1][1] if ended else None
