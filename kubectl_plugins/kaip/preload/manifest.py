"""The record on the volume of what is loaded: ``MANIFEST_FILE`` plus an append-only journal.

The manifest is rewritten atomically at the end of a run; during a run every finished file appends
one line to the journal, so a run killed at any point (SIGKILL included) knows on resume which files
are whole. A record counts only if the file is there with its size: the journal may be ahead of a
lost page cache after a power cut, never behind a finished file.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kaip.resources.preload import MANIFEST_FILE

FORMAT = 1


@dataclass(frozen=True)
class Record:
    key: str
    size: int
    version: str


@dataclass(frozen=True)
class Loaded:
    """What an earlier run left: records by relative path, and whether that run completed."""

    records: dict[str, Record]
    digest: str = ""
    source: str = ""
    complete: bool = False


def _record(raw: Any) -> Record | None:
    if isinstance(raw, list) and len(raw) == 3 and isinstance(raw[1], int):
        return Record(key=str(raw[0]), size=raw[1], version=str(raw[2]))
    return None


def read(target: Path, *, name: str = MANIFEST_FILE) -> Loaded:
    """The manifest ``name`` and its journal in ``target``; unreadable parts count as absent (we
    re-check files). A shard keeps its own (:attr:`kaip.preload.shards.Shard.record_name`)."""
    records: dict[str, Record] = {}
    digest = source = ""
    complete = False
    try:
        doc = json.loads((target / name).read_bytes())
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            digest, source = str(doc.get("digest", "")), str(doc.get("source", ""))
            complete = bool(doc.get("complete"))
            for path, raw in (doc.get("objects") or {}).items():
                rec = _record(raw)
                if rec:
                    records[path] = rec
    except (OSError, ValueError):
        pass
    try:
        with (target / f"{name}.journal").open(encoding="utf-8", errors="surrogateescape") as journal:
            complete = False  # a journal means a run after the manifest did not finish
            for line in journal:
                try:
                    path, *raw = json.loads(line)
                except ValueError:
                    continue  # the line a kill cut short
                rec = _record(raw)
                if rec and isinstance(path, str):
                    records[path] = rec
    except OSError:
        pass
    return Loaded(records=records, digest=digest, source=source, complete=complete)


class Journal:
    """Appends one line per finished file; thread-safe. Lines are buffered and reach the kernel on
    :meth:`flush` (the copier flushes with every progress report): a kill loses at most the lines of
    the last interval, and those files are still recognised on resume by their size and mtime."""

    def __init__(self, target: Path, *, name: str = MANIFEST_FILE) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target / f"{name}.journal", flags, 0o644)
        self._file: TextIO = os.fdopen(fd, "a", encoding="utf-8", errors="surrogateescape", buffering=1 << 16)
        self._lock = threading.Lock()

    def add(self, path: str, record: Record) -> None:
        line = json.dumps([path, record.key, record.size, record.version], ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def write(
    target: Path,
    *,
    records: dict[str, Record],
    digest: str,
    source: str,
    durable: bool,
    name: str = MANIFEST_FILE,
) -> None:
    """Replace the manifest atomically with a complete one and drop the journal."""
    doc = {
        "format": FORMAT,
        "source": source,
        "digest": digest,
        "complete": True,
        "objects": {p: [r.key, r.size, r.version] for p, r in sorted(records.items())},
    }
    tmp = target / f"{name}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
        json.dump(doc, handle, ensure_ascii=False, separators=(",", ":"))
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    os.replace(tmp, target / name)
    with contextlib.suppress(FileNotFoundError):
        (target / f"{name}.journal").unlink()
