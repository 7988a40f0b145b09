"""The loader's outcome as its termination message: written by the loader, read by the controller.

One JSON object, at most 4 KiB (kubelet keeps no more): ``reason`` (a ``DataLoaded`` reason such as
``Succeeded``, ``SourceNotFound``, ``AccessDenied``, ``UnsafeKeys``), ``message`` (for the
condition, never a secret), and for a success the counts and the digest of the source listing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from kaip.errors import shorten

LIMIT = 4096


@dataclass(frozen=True)
class Outcome:
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


def parse(text: str | None) -> Outcome | None:
    """The outcome in a termination message; None when it is not ours (e.g. logs of a crash)."""
    if not text:
        return None
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        return None
    ints = {
        k: int(data[k])
        for k in ("objects", "bytes", "copied", "reused", "refused")
        if isinstance(data.get(k), int)
    }
    return Outcome(
        reason=data["reason"],
        message=str(data.get("message") or ""),
        digest=str(data.get("digest") or ""),
        **ints,
    )
