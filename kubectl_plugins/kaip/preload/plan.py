"""Deciding what to copy where, from one listing: pure, no I/O.

Every key becomes a path relative to the target, or is refused with a reason: ``..`` and ``.``
segments, absolute paths (``//``), empty segments, NUL, bytes that are no UTF-8, names over 255 bytes, paths over 4000 bytes,
our own reserved names, and an object whose path is also a directory of other objects (``a`` vs
``a/b``: the object ``a`` is refused). Directory markers (zero-byte keys ending in ``/``) are skipped
and reported apart: they carry no data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kaip.resources.preload import MANIFEST_FILE
from kaip.storage.base import ObjectInfo

NAME_MAX = 255
PATH_MAX = 4000
TEMP_PREFIX = ".kaip-tmp-"
JOURNAL_FILE = f"{MANIFEST_FILE}.journal"
RESERVED = frozenset({MANIFEST_FILE, JOURNAL_FILE, f"{MANIFEST_FILE}.tmp"})
#: Prefix of the shards' own manifests and journals (:mod:`kaip.preload.shards`).
SHARD_RECORDS = f"{MANIFEST_FILE}.shard-"


@dataclass(frozen=True)
class Entry:
    """One object to place at ``path`` (relative, ``/``-separated) under the target."""

    path: str
    obj: ObjectInfo


@dataclass(frozen=True)
class Plan:
    entries: tuple[Entry, ...]
    refused: tuple[tuple[str, str], ...]
    skipped: tuple[tuple[str, str], ...]
    digest: str
    listed: int = 0
    bytes_total: int = field(default=0)


def path_problem(rel: str) -> str | None:
    """Why ``rel`` cannot be a file path inside the target, or None when it can."""
    if not rel:
        return "empty path"
    if "\x00" in rel:
        return "contains a NUL character"
    try:
        size = len(rel.encode("utf-8"))
    except UnicodeEncodeError:
        return "not valid UTF-8 (the store listed bytes that are no text)"
    if rel.startswith("/"):
        return "absolute path"
    if size > PATH_MAX:
        return f"path longer than {PATH_MAX} bytes"
    for segment in rel.split("/"):
        if segment == "":
            return "empty path segment ('//')"
        if segment in (".", ".."):
            return f"{segment!r} path segment"
        if len(segment.encode("utf-8", "surrogatepass")) > NAME_MAX:
            return f"a name longer than {NAME_MAX} bytes"
        if segment.startswith(TEMP_PREFIX):
            return "reserved name (kaip temporary file)"
    if rel in RESERVED or rel.startswith(SHARD_RECORDS):
        return "reserved name (kaip manifest)"
    return None


def listing_digest(source_url: str, objects: Iterable[ObjectInfo]) -> str:
    """``sha256:...`` of the source and its sorted (key, size, version): same listing, same digest."""
    h = hashlib.sha256(source_url.encode())
    for obj in sorted(objects, key=lambda o: o.key):
        h.update(f"\n{obj.key}\t{obj.size}\t{obj.version}".encode("utf-8", "surrogatepass"))
    return f"sha256:{h.hexdigest()}"


def make_plan(*, source_url: str, prefix: str, objects: Sequence[ObjectInfo]) -> Plan:
    refused: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    candidates: list[Entry] = []
    for obj in objects:
        if not obj.key.startswith(prefix):
            continue  # a store that ignores the prefix; never ours to write
        rel = obj.key[len(prefix) :]
        if rel == "" or rel.endswith("/"):
            if obj.size == 0:
                skipped.append((obj.key, "directory marker"))
            else:
                refused.append((obj.key, "key ends with '/' but holds data"))
            continue
        problem = path_problem(rel)
        if problem:
            refused.append((obj.key, problem))
            continue
        candidates.append(Entry(rel, obj))
    directories = {rel.rsplit("/", 1)[0] for rel in (e.path for e in candidates) if "/" in rel}
    parents: set[str] = set()
    for d in directories:
        parts = d.split("/")
        parents.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    entries: list[Entry] = []
    for entry in candidates:
        if entry.path in parents:
            refused.append((entry.obj.key, f"{entry.path!r} is also a directory of other objects"))
        else:
            entries.append(entry)
    # Large objects first: their parts keep every worker busy while the small ones drain.
    entries.sort(key=lambda e: (-e.obj.size, e.path))
    return Plan(
        entries=tuple(entries),
        refused=tuple(sorted(refused)),
        skipped=tuple(sorted(skipped)),
        digest=listing_digest(source_url, objects),
        listed=len(objects),
        bytes_total=sum(e.obj.size for e in entries),
    )
