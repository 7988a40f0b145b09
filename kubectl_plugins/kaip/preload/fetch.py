"""One object's bytes onto disk, verified: the copier's work per object, run by its workers.

A small object is one GET streamed to a temporary file while its checksum is computed (fetched again,
up to :data:`VERIFY_ATTEMPTS` times, when it does not match), or moved by the kernel (``splice`` from
the socket over plain HTTP) when no checksum is to be computed; a large one is cut into ranges
(:class:`Large`), each fetched by any worker and written in place (``splice`` over plain HTTP,
``pwrite`` otherwise), and checked by reading the file back once its last range is in. Which published
checksums are computed is the ``check`` policy's (:data:`kaip.storage.checksums.CHECK_HASHES`).
What happens to a verified file (renamed, journaled, counted) or to a refused one is the copier's
(:mod:`kaip.preload.copier`), through the callbacks a :class:`Fetcher` is given.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from kaip.preload.errors import ChecksumMismatch
from kaip.preload.plan import Entry
from kaip.preload.target import Target, UnsafePath, full
from kaip.storage import Store, checksums
from kaip.storage.base import pwrite_all
from kaip.storage.checksums import Expected
from kaip.storage.source import Source

MiB = 1024 * 1024
VERIFY_ATTEMPTS = 3


class Large:
    """A large object being fetched in parts by several workers."""

    def __init__(self, entry: Entry, parts: int) -> None:
        self.entry = entry
        self.parts_left = parts
        self.fd = -1
        self.tmp: Path | None = None
        self.lock = threading.Lock()
        self.failed = False
        #: Parts writing into ``fd`` now: the file is closed only when none is.
        self.active = 0


class Fetcher:
    """Fetches and verifies objects of ``source`` into temporary files of ``target``.

    ``moved(n)`` counts bytes written (negative when a failed attempt's bytes are dropped);
    ``publish(entry, tmp, checked)`` takes a verified file and what checked it (:func:`checked_by`);
    ``refuse(entry, why)`` an object whose path the target refuses. All three are called from the
    workers' threads. ``check`` is one of :data:`kaip.storage.checksums.CHECK_HASHES`; ``durable``
    starts each finished file's writeback at once (the copy's final flush then has less to wait for).
    """

    def __init__(
        self,
        *,
        store: Store,
        source: Source,
        target: Target,
        moved: Callable[[int], None],
        publish: Callable[[Entry, Path, str], None],
        refuse: Callable[[Entry, str], None],
        check: str = checksums.DEFAULT_CHECK,
        durable: bool = False,
    ) -> None:
        self.store, self.source, self.target = store, source, target
        self.moved, self.publish, self.refuse = moved, publish, refuse
        self.check, self.durable = check, durable

    # -- one small object ---------------------------------------------------------------------
    def small(self, entry: Entry) -> None:
        for attempt in range(VERIFY_ATTEMPTS):
            try:
                fd, tmp = self.target.create_temp(entry.path)
            except UnsafePath as exc:
                self.refuse(entry, str(exc))
                return
            sink = _Sink(fd, entry.obj.published, self.moved, check=self.check)
            try:
                self.store.read(
                    self.source.bucket,
                    entry.obj,
                    write=sink.write,
                    on_open=sink.open,
                    splice_into=(fd, sink.spliced),
                )
            except BaseException as exc:
                os.close(fd)
                self.target.discard(tmp)
                self.moved(-sink.written)
                no_room = full(exc, entry.path) if isinstance(exc, OSError) else None
                if no_room is not None:
                    raise no_room from exc
                raise
            if self.durable:
                self.target.start_writeback(fd, sink.written)
            os.close(fd)
            if sink.matches():
                self.publish(entry, tmp, checked_by(sink.expected, sink.passed_over, check=self.check))
                return
            self.target.discard(tmp)
            self.moved(-sink.written)
            if attempt == VERIFY_ATTEMPTS - 1 and sink.expected is not None:
                raise _mismatch(self.source, entry, sink.expected)

    # -- one part of a large object -----------------------------------------------------------
    def part(self, large: Large, offset: int, length: int) -> None:
        with large.lock:
            if large.failed:
                return
            if large.fd < 0:
                try:
                    large.fd, large.tmp = self.target.create_temp(large.entry.path)
                    try:
                        os.ftruncate(large.fd, large.entry.obj.size)
                    except OSError as exc:
                        large.failed = True
                        _close(large, self.target)
                        no_room = full(exc, large.entry.path)
                        if no_room is None:
                            raise
                        raise no_room from exc
                except UnsafePath as exc:
                    large.failed = True
                    self.refuse(large.entry, str(exc))
                    return
            large.active += 1
        try:
            self.store.read_into(
                self.source.bucket,
                large.entry.obj,
                offset=offset,
                length=length,
                fd=large.fd,
                moved=self.moved,
            )
        except BaseException as exc:
            self._release(large, failed=True)
            no_room = full(exc, large.entry.path) if isinstance(exc, OSError) else None
            if no_room is not None:
                raise no_room from exc
            raise
        if self._release(large, failed=False):
            self._finish_large(large)

    def _release(self, large: Large, *, failed: bool) -> bool:
        """One part is over; whether it was the last of an object that did not fail. The file of a
        failed object is closed and removed by the last part still writing into it, never under one
        (a closed descriptor's number may already name another file)."""
        with large.lock:
            large.active -= 1
            if failed:
                large.failed = True
            else:
                large.parts_left -= 1
            if large.failed:
                if large.active == 0:
                    _close(large, self.target)
                return False
            return large.parts_left == 0

    def abandon(self, large: Large) -> None:
        """Remove the temporary file of an object whose remaining parts will not run (the copier
        stopped); called once no worker runs."""
        with large.lock:
            large.failed = True
            if large.active == 0:
                _close(large, self.target)

    def _finish_large(self, large: Large) -> None:
        entry, tmp = large.entry, large.tmp
        assert tmp is not None
        expected: Expected | None = None
        passed_over: str | None = None
        try:
            if self.check != "never":
                published = (*entry.obj.published, *self.store.stat_checksums(self.source.bucket, entry.obj))
                expected = checksums.choose(published, check=self.check)
                passed_over = checksums.passed_over(published, check=self.check)
            if expected is not None:
                got = checksums.digest_of(expected.algorithm, _read_back(large.fd, entry.obj.size))
                if got != expected.digest:
                    raise _mismatch(self.source, entry, expected)
        except BaseException:
            with large.lock:
                large.failed = True
                _close(large, self.target)
            raise
        with large.lock:
            if self.durable:
                self.target.start_writeback(large.fd, entry.obj.size)
            os.close(large.fd)
            large.fd = -1
        self.publish(entry, tmp, checked_by(expected, passed_over, check=self.check))


#: What the report says of a file whose store published no checksum (or none the policy computes).
SIZE_ONLY = "size"


def checked_by(expected: Expected | None, passed_over: str | None, *, check: str) -> str:
    """The report's name for what checked a file: the checksum, or by its size only: ``size`` (none
    published), ``size, md5 not computed`` (the policy left out the one published) or ``size, never``."""
    if expected is not None:
        return expected.algorithm
    if check == "never":
        return f"{SIZE_ONLY}, never"
    return f"{SIZE_ONLY}, {passed_over} not computed" if passed_over else SIZE_ONLY


class _Sink:
    """Writes a streamed object to its file while hashing it with the checksum the store published;
    when no checksum is to be computed the store may splice the bytes in instead (:meth:`spliced`)."""

    def __init__(
        self, fd: int, published: tuple[Expected, ...], moved: Callable[[int], None], *, check: str
    ) -> None:
        self.fd, self.published, self.moved, self.check = fd, published, moved, check
        self.expected: Expected | None = None
        self.passed_over: str | None = None
        self.hasher: checksums.Hasher | None = None
        self.written = 0

    def open(self, carried: tuple[Expected, ...]) -> bool:
        """Choose the checksum; whether the bytes must pass through :meth:`write` to compute it."""
        candidates = (*self.published, *carried)
        self.expected = checksums.choose(candidates, check=self.check)
        self.passed_over = checksums.passed_over(candidates, check=self.check)
        self.hasher = checksums.hasher(self.expected.algorithm) if self.expected else None
        return self.hasher is not None

    def write(self, chunk: bytes) -> None:
        pwrite_all(self.fd, chunk, self.written)
        if self.hasher is not None:
            self.hasher.update(chunk)
        self.written += len(chunk)
        self.moved(len(chunk))

    def spliced(self, n: int) -> None:
        self.written += n
        self.moved(n)

    def matches(self) -> bool:
        return self.expected is None or self.hasher is None or self.hasher.digest() == self.expected.digest


def _close(large: Large, target: Target) -> None:
    """Close and remove a failed large object's temporary file, once (under ``large.lock``)."""
    if large.fd >= 0:
        os.close(large.fd)
        large.fd = -1
    if large.tmp is not None:
        target.discard(large.tmp)
        large.tmp = None


def _read_back(fd: int, size: int, chunk: int = 8 * MiB) -> Iterator[bytes]:
    offset = 0
    while offset < size:
        data = os.pread(fd, min(chunk, size - offset), offset)
        if not data:
            return
        offset += len(data)
        yield data


def _mismatch(source: Source, entry: Entry, expected: Expected) -> ChecksumMismatch:
    return ChecksumMismatch(
        f"{source.scheme}://{source.bucket}/{entry.obj.key}: {expected.algorithm} of the downloaded bytes "
        f"differs from the store's after {VERIFY_ATTEMPTS} attempts"
    )
