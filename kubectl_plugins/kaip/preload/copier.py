"""The copier: list once, plan, fetch in parallel, verify, rename, record. The loader's engine.

Small objects are one GET each, streamed to a temporary file while their checksum is computed;
objects above ``multipart_threshold`` are cut into ``part_size`` ranges fetched by any worker and
written in place, then checked by reading the file back (:mod:`kaip.preload.fetch` does one object;
this module plans, runs the workers and records). Every finished file is renamed to its name and
appended to the journal (:mod:`kaip.preload.manifest`), so a killed run resumes without fetching a
finished file again, and a run over an unchanged source fetches nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kaip.preload import manifest
from kaip.preload.errors import InsufficientCapacity, SourceNotFound
from kaip.preload.fetch import SIZE_ONLY, Fetcher, Large, MiB
from kaip.preload.manifest import Record
from kaip.preload.plan import JOURNAL_FILE, Entry, Plan, make_plan
from kaip.preload.shards import Shard
from kaip.preload.status import Progress
from kaip.preload.target import Target, UnsafePath, full
from kaip.resources.preload import MANIFEST_FILE
from kaip.storage import Store, StoreConfig, open_store
from kaip.storage.checksums import DEFAULT_CHECK
from kaip.storage.retry import RetryPolicy
from kaip.storage.source import Source


@dataclass(frozen=True)
class CopyOptions:
    """Overrides of the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, STORAGE_EMULATOR_HOST) and tuning."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    gcp_key_file: str | None = None
    anonymous: bool = False
    workers: int = 32
    #: Ranges of large objects; 50 MiB measured best against MinIO (and is s5cmd's default too).
    part_size: int = 50 * MiB
    multipart_threshold: int = 64 * MiB
    #: fsync the data and the manifest before declaring the copy complete (survives a power cut).
    durable: bool = True
    #: Which published checksums are computed: one of :data:`kaip.storage.checksums.CHECK_HASHES`.
    check_hashes: str = DEFAULT_CHECK
    #: Remove files an earlier run loaded whose objects are gone from the source.
    delete_removed: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Seconds a connection may stay silent (connect, or between bytes of an answer) before a retry.
    timeout: float = 60.0
    progress_interval: float = 0.5
    #: The volume's declared capacity in bytes (the PVC's), checked with the file system's own size
    #: and free space before copying; None: the file system's figures only.
    capacity: int | None = None
    #: Copy only the keys this shard owns, recorded in its own manifest (:mod:`kaip.preload.shards`).
    shard: Shard | None = None

    def store_config(self) -> StoreConfig:
        return StoreConfig(
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            session_token=self.session_token,
            gcp_key_file=self.gcp_key_file,
            anonymous=self.anonymous,
            max_connections=max(self.workers, 10),
            retry=self.retry,
            timeout=self.timeout,
        )


@dataclass
class CopyReport:
    objects_copied: int = 0
    objects_reused: int = 0
    bytes_copied: int = 0
    bytes_reused: int = 0
    #: Keys not written because they would land outside the target or collide: (key, reason).
    refused: list[tuple[str, str]] = field(default_factory=list)
    #: Keys skipped because they carry no data (directory markers): (key, reason).
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Digest of the source listing (``sha256:...``): same digest, same content.
    digest: str = ""
    #: How many files were verified with each checksum; ``size...`` when by their size only.
    verified: dict[str, int] = field(default_factory=dict)
    removed: int = 0
    retries: int = 0
    throttled: int = 0
    seconds: float = 0.0

    @property
    def objects_total(self) -> int:
        return self.objects_copied + self.objects_reused

    def verification(self) -> str:
        """``crc32c: 10, size only (no checksum published): 2`` — says plainly what was checked."""
        parts = []
        for name, count in sorted(self.verified.items()):
            if name == SIZE_ONLY:
                parts.append(f"size only (no checksum published): {count}")
            elif name == f"{SIZE_ONLY}, never":
                parts.append(f"size only (--check-hashes=never): {count}")
            elif name.startswith(f"{SIZE_ONLY}, "):
                passed_over = name.removeprefix(f"{SIZE_ONLY}, ").removesuffix(" not computed")
                parts.append(f"size only ({passed_over} published, not computed): {count}")
            else:
                parts.append(f"{name}: {count}")
        return ", ".join(parts) or "nothing copied"


def _size(n: int) -> str:
    """``3145728 bytes (3.0 MiB)``: exact, and readable."""
    value, unit = float(n), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    return f"{n} bytes" if unit == "bytes" else f"{n} bytes ({value:.1f} {unit})"


def copy(
    source: Source,
    target: Path,
    *,
    options: CopyOptions | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> CopyReport:
    """Copy every object under ``source`` into ``target``; see the module docstring."""
    opts = options or CopyOptions()
    store = open_store(source.scheme, opts.store_config())
    try:
        return _Run(store=store, source=source, root=target, options=opts, on_progress=on_progress).run()
    finally:
        store.close()


class _Run:
    def __init__(
        self,
        *,
        store: Store,
        source: Source,
        root: Path,
        options: CopyOptions,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.store, self.source, self.options, self.on_progress = store, source, options, on_progress
        self.target = Target.prepare(root)
        self.report = CopyReport()
        self.lock = threading.Lock()
        self.objects_done = 0
        self.bytes_done = 0
        self.error: BaseException | None = None
        self.records: dict[str, Record] = {}
        self.journal: manifest.Journal | None = None
        self.loaded = manifest.Loaded(records={})
        self.record = options.shard.record_name if options.shard else MANIFEST_FILE
        self.listing_bytes = self.listing_count = 0  # the whole listing's, a shard's plan aside
        self.larges: list[Large] = []
        self.fresh: list[tuple[str, Record]] = []
        self.fetch = Fetcher(
            store=store,
            source=source,
            target=self.target,
            moved=self._count_bytes,
            publish=self._publish,
            refuse=self._refuse,
            check=options.check_hashes,
            durable=options.durable,
        )

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> CopyReport:
        started = time.monotonic()
        objects = list(self.store.list(self.source.bucket, self.source.prefix))
        if not objects:
            raise SourceNotFound(f"no objects under {self.source.url}")
        plan = make_plan(source_url=self.source.url, prefix=self.source.prefix, objects=objects)
        self.listing_bytes, self.listing_count = plan.bytes_total, len(plan.entries)
        if self.options.shard is not None:
            plan = _owned(plan, self.options.shard)
        self.report.refused = list(plan.refused)
        self.report.skipped = list(plan.skipped)
        self.report.digest = plan.digest
        todo = self._reuse(plan)
        try:
            try:
                self._check_space(plan, todo)
                self._open_journal(todo)
                self._progress(plan)
                self._transfer(plan, todo)
            finally:
                for large in self.larges:  # parts that never ran: their temporary file goes
                    if large.parts_left:
                        self.fetch.abandon(large)
                if self.journal is not None:
                    self.journal.close()
                self.report.retries = self.store.counter.retries
                self.report.throttled = self.store.counter.throttled
            if self.error is not None:
                raise self.error
            self._finish(plan)
        except OSError as exc:  # the journal or the manifest met a full volume
            no_room = full(exc, JOURNAL_FILE)
            if no_room is None:
                raise
            raise no_room from exc
        self.report.seconds = time.monotonic() - started
        return self.report

    def _reuse(self, plan: Plan) -> list[Entry]:
        """Entries still to fetch; the rest are whole on disk from an earlier (maybe killed) run."""
        loaded = manifest.read(self.target.root, name=self.record)
        self.loaded = loaded
        todo: list[Entry] = []
        fresh: list[tuple[str, Record]] = []
        for entry in plan.entries:
            obj, wanted = entry.obj, Record(entry.obj.key, entry.obj.size, entry.obj.version)
            known = loaded.records.get(entry.path)
            if known == wanted and self.target.is_whole(entry.path, size=obj.size):
                pass
            elif (
                known is None
                and obj.mtime
                and self.target.is_whole(entry.path, size=obj.size, mtime=obj.mtime)
            ):
                fresh.append((entry.path, wanted))  # renamed by a run killed before its journal line
            else:
                todo.append(entry)
                continue
            self.records[entry.path] = wanted
            self.report.objects_reused += 1
            self.report.bytes_reused += obj.size
        self.objects_done = self.report.objects_reused
        self.bytes_done = self.report.bytes_reused
        self.fresh = fresh
        return todo

    def _open_journal(self, todo: list[Entry]) -> None:
        """The journal, when this run will write: after the space check, so a refusal writes nothing."""
        if todo or self.fresh:
            self.journal = manifest.Journal(self.target.root, name=self.record)
            for path, record in self.fresh:
                self.journal.add(path, record)

    def _check_space(self, plan: Plan, todo: list[Entry]) -> None:
        """Before anything is written: refuse a listing larger than the volume itself, or needing more
        than its free space for what is still to fetch (each file counted in whole blocks)."""
        size, free, block = self.target.space()
        capacity = min(size, self.options.capacity) if self.options.capacity else size
        if self.listing_bytes > capacity:
            whose = "the PVC's capacity" if capacity == self.options.capacity else "the volume's size"
            raise InsufficientCapacity(
                f"{self.source.url} holds {_size(self.listing_bytes)} in {self.listing_count} objects, more "
                f"than {whose} of {_size(capacity)}: make the PVC larger (spec.resources.requests.storage) "
                "or load a smaller prefix, then retry"
            )
        needed = sum(-(-e.obj.size // block) * block for e in todo)
        if needed > free:
            raise InsufficientCapacity(
                f"{self.source.url} needs {_size(needed)} more on the volume for {len(todo)} objects, and "
                f"the volume has {_size(free)} free: make the PVC larger (spec.resources.requests.storage) "
                "or free space on it, then retry"
            )

    def _transfer(self, plan: Plan, todo: list[Entry]) -> None:
        tasks: deque[Callable[[], None]] = deque()
        part = self.options.part_size
        # Largest first: a 60 MiB shard met last would run alone while the other workers sit idle;
        # the small files behind the large ones then fill the gaps to the end.
        for entry in sorted(todo, key=lambda e: -e.obj.size):
            size = entry.obj.size
            if size > self.options.multipart_threshold:
                count = -(-size // part)
                large = Large(entry, count)
                self.larges.append(large)
                tasks.extend(
                    functools.partial(self.fetch.part, large, i * part, min(part, size - i * part))
                    for i in range(count)
                )
            else:
                tasks.append(functools.partial(self.fetch.small, entry))
        if not tasks:
            return
        workers = [
            threading.Thread(target=self._worker, args=(tasks,), name=f"kaip-copy-{i}", daemon=True)
            for i in range(min(self.options.workers, len(tasks)))
        ]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(self.options.progress_interval)
                    self._progress(plan)
            self._progress(plan)
        except BaseException as exc:
            # The journal's flush met a full volume, or the progress callback raised: stop the workers
            # and wait for them, or one would create a temporary file after the cleanup has run.
            with self.lock:
                if self.error is None:
                    self.error = exc
            for w in workers:
                w.join()
            raise

    def _worker(self, tasks: deque[Callable[[], None]]) -> None:
        while self.error is None:
            try:
                task = tasks.popleft()
            except IndexError:
                return
            try:
                task()
            except BaseException as exc:
                with self.lock:
                    if self.error is None:
                        self.error = exc
                return

    def _progress(self, plan: Plan) -> None:
        if self.journal is not None:
            self.journal.flush()
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    objects_done=self.objects_done,
                    objects_total=len(plan.entries),
                    bytes_done=self.bytes_done,
                    bytes_total=plan.bytes_total,
                )
            )

    def _count_bytes(self, n: int) -> None:
        with self.lock:
            self.bytes_done += n

    # -- shared ends ---------------------------------------------------------------------------
    def _publish(self, entry: Entry, tmp: Path, name: str) -> None:
        try:
            self.target.publish(tmp, entry.path, mtime=entry.obj.mtime)
        except UnsafePath as exc:
            self._refuse(entry, str(exc))
            return
        record = Record(entry.obj.key, entry.obj.size, entry.obj.version)
        assert self.journal is not None
        self.journal.add(entry.path, record)
        with self.lock:
            self.records[entry.path] = record
            self.objects_done += 1
            self.report.objects_copied += 1
            self.report.bytes_copied += entry.obj.size
            self.report.verified[name] = self.report.verified.get(name, 0) + 1

    def _refuse(self, entry: Entry, why: str) -> None:
        with self.lock:
            self.report.refused.append((entry.obj.key, why))
            self.objects_done += 1

    def _finish(self, plan: Plan) -> None:
        if self.options.delete_removed:
            planned = {e.path for e in plan.entries}
            shard = self.options.shard
            for path in set(self.loaded.records) - planned:
                if shard is not None and not shard.owns(self.loaded.records[path].key):
                    continue  # another shard's file: never ours to remove
                if self.target.remove(path):
                    self.report.removed += 1
        if self.options.durable and self.report.objects_copied:
            self.target.sync()
        if self.journal is not None or self.report.removed or self.loaded.digest != plan.digest:
            manifest.write(
                self.target.root,
                records=self.records,
                digest=plan.digest,
                source=self.source.url,
                durable=self.options.durable,
                name=self.record,
            )
        self.report.refused.sort()


def _owned(plan: Plan, shard: Shard) -> Plan:
    """The part of ``plan`` that ``shard`` fetches (and reports: its refused and skipped keys)."""
    entries = tuple(e for e in plan.entries if shard.owns(e.obj.key))
    return dataclasses.replace(
        plan,
        entries=entries,
        refused=tuple(r for r in plan.refused if shard.owns(r[0])),
        skipped=tuple(r for r in plan.skipped if shard.owns(r[0])),
        bytes_total=sum(e.obj.size for e in entries),
    )
