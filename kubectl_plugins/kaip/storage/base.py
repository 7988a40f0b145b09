"""What every store offers: list under a prefix, read a byte range with retries, published checksums."""

from __future__ import annotations

import abc
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kaip.storage.checksums import Expected
from kaip.storage.errors import StorageError, TransferFailed
from kaip.storage.retry import Retryable, RetryCounter, RetryPolicy, call

#: errno values that say the file being written has no room left: raised as they are, never retried.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a listing. ``version`` is what pins the content (S3 ETag, GCS generation)."""

    key: str
    size: int
    version: str
    mtime: float = 0.0
    #: Checksums the listing already published (GCS crc32c/md5; S3 lists none).
    published: tuple[Expected, ...] = ()


@dataclass(frozen=True)
class StoreConfig:
    """Where and as whom to connect; ``None`` fields come from the standard environment variables."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    #: A service-account key file for GCS (GOOGLE_APPLICATION_CREDENTIALS otherwise).
    gcp_key_file: str | None = None
    #: Skip credentials entirely (public buckets).
    anonymous: bool = False
    max_connections: int = 64
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 60.0


@dataclass(frozen=True)
class Opened:
    """A streaming answer to a ranged GET."""

    chunks: Iterator[bytes]
    close: Callable[[], None]
    #: Checksums the answer carried (S3 ``x-amz-checksum-*``; only for whole-object reads).
    checksums: tuple[Expected, ...] = ()
    #: Moves the rest of the answer into a file in the kernel, when the connection allows it:
    #: ``splice(fd, position, moved)`` calls ``moved(n)`` as bytes land; the answer is then read.
    splice: Callable[[int, int, Callable[[int], None]], None] | None = None


class Store(abc.ABC):
    """One object store (S3 or GCS). Thread-safe: one instance serves every worker."""

    scheme: str = ""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.counter = RetryCounter()

    # -- what a backend implements -----------------------------------------------------------
    @abc.abstractmethod
    def _list_page(self, bucket: str, prefix: str, token: str | None) -> tuple[list[ObjectInfo], str | None]:
        """One page of the listing; raise :class:`Retryable` for what may pass."""

    @abc.abstractmethod
    def _open(self, bucket: str, obj: ObjectInfo, *, offset: int, length: int) -> Opened:
        """Start a GET of ``length`` bytes at ``offset`` pinned to ``obj.version``."""

    @abc.abstractmethod
    def _stream_error(self, exc: Exception, *, bucket: str, key: str) -> Retryable | None:
        """Classify an error raised while reading a body (connection reset...)."""

    def stat_checksums(self, bucket: str, obj: ObjectInfo) -> tuple[Expected, ...]:
        """Checksums of the whole object, asked separately (S3 HEAD); listing ones by default."""
        return obj.published

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- shared behaviour ----------------------------------------------------------------------
    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            page, token = call(
                lambda t=token: self._list_page(bucket, prefix, t),  # type: ignore[misc]
                policy=self.config.retry,
                counter=self.counter,
            )
            yield from page
            if not token:
                return

    def read(
        self,
        bucket: str,
        obj: ObjectInfo,
        *,
        offset: int = 0,
        length: int | None = None,
        write: Callable[[bytes], None],
        on_open: Callable[[tuple[Expected, ...]], bool] | None = None,
        splice_into: tuple[int, Callable[[int], None]] | None = None,
    ) -> None:
        """Stream a range of ``obj`` to ``write``; a broken stream resumes where it stopped.

        ``on_open`` receives, before the first byte, the checksums the first answer carried, and
        answers whether it needs the bytes themselves. When it does not and ``splice_into`` is
        ``(fd, spliced)``, a connection that allows it moves them into ``fd`` at their offsets in the
        kernel instead (``spliced(n)`` as they land): no copy through Python, no ``write``.
        """
        needs_bytes = True

        def opened_first(carried: tuple[Expected, ...]) -> None:
            nonlocal needs_bytes
            if on_open is not None:
                needs_bytes = on_open(carried)

        def pump(opened: Opened, done: int, moved: Callable[[int], None]) -> None:
            if splice_into is not None and not needs_bytes and opened.splice is not None:
                fd, spliced = splice_into

                def landed(n: int) -> None:
                    moved(n)
                    spliced(n)

                opened.splice(fd, offset + done, landed)
                return
            for chunk in opened.chunks:
                write(chunk)
                moved(len(chunk))

        self._fetch(bucket, obj, offset=offset, length=length, pump=pump, on_open=opened_first)

    def read_into(
        self, bucket: str, obj: ObjectInfo, *, offset: int, length: int, fd: int, moved: Callable[[int], None]
    ) -> None:
        """Write bytes ``offset`` to ``offset + length`` of ``obj`` at the same offsets of the file
        ``fd``, in the kernel when the store's connection allows it (``splice``: no copy through
        Python); ``moved(n)`` follows the progress. A broken stream resumes where it stopped."""

        def pump(opened: Opened, done: int, count: Callable[[int], None]) -> None:
            position = offset + done
            if opened.splice is not None:
                opened.splice(fd, position, count)
                return
            for chunk in opened.chunks:
                pwrite_all(fd, chunk, position)
                position += len(chunk)
                count(len(chunk))

        self._fetch(bucket, obj, offset=offset, length=length, pump=pump, moved=moved)

    def _fetch(
        self,
        bucket: str,
        obj: ObjectInfo,
        *,
        offset: int,
        length: int | None,
        pump: Callable[[Opened, int, Callable[[int], None]], None],
        on_open: Callable[[tuple[Expected, ...]], None] | None = None,
        moved: Callable[[int], None] | None = None,
    ) -> None:
        """Open the range and hand it to ``pump(opened, done, count)``, again from ``done`` after a
        retryable failure, until ``length`` bytes were counted."""
        total = obj.size - offset if length is None else length
        done = 0
        opened_once = False

        def count(n: int) -> None:
            nonlocal done
            done += n
            if moved is not None:
                moved(n)

        def attempt() -> None:
            nonlocal opened_once
            opened = self._open(bucket, obj, offset=offset + done, length=total - done)
            if not opened_once:
                opened_once = True
                if on_open is not None:
                    on_open(opened.checksums)
            try:
                pump(opened, done, count)
            except StorageError:
                raise
            except Exception as exc:
                if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                    raise  # the file being written is full: the caller's disk, not the store
                retry = self._stream_error(exc, bucket=bucket, key=obj.key)
                if retry is None:
                    raise
                raise retry from exc
            finally:
                opened.close()
            if done != total:
                where = f"{self.scheme}://{bucket}/{obj.key}"
                raise Retryable(TransferFailed(f"{where}: the answer ended after {done} of {total} bytes"))

        if total > 0:
            call(attempt, policy=self.config.retry, counter=self.counter)
        elif on_open is not None:
            on_open(())


def pwrite_all(fd: int, data: bytes, position: int) -> None:
    """Write all of ``data`` at ``position`` of ``fd`` (a pwrite may take less than it was given)."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, position)
        position += n
        view = view[n:]
