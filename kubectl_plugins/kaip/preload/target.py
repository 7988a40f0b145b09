"""Writing into the target directory without ever leaving it or following a symlink.

Directories are made one component at a time and each existing component is ``lstat``-ed: a
symlink or a file where a directory should be refuses the key. Files are written to a temporary name
created with ``O_EXCL | O_NOFOLLOW`` in the same directory and renamed over the final name (a rename
replaces a symlink, it never writes through it). A kill leaves at most a ``.kaip-tmp-*`` file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from kaip.preload.errors import TargetError, TargetFull
from kaip.preload.plan import TEMP_PREFIX
from kaip.storage.base import NO_SPACE

_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>


def _sync_file_range() -> Callable[..., int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


_SYNC_FILE_RANGE = _sync_file_range()

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(Exception):
    """A path of the plan meets a symlink or a non-directory on disk; the key is refused."""


class Target:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[str] = {""}
        self._lock = threading.Lock()

    @staticmethod
    def prepare(root: Path) -> Target:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TargetError(f"cannot create the target directory {root}: {exc.strerror}") from exc
        if not root.is_dir():  # the root itself may be a symlink the user chose; nothing below it may
            raise TargetError(f"the target {root} is not a directory")
        return Target(root)

    def ensure_dir(self, rel_dir: str) -> None:
        """Make ``rel_dir`` (``a/b``) under the root, refusing symlinks and files on the way."""
        if rel_dir in self._dirs:
            return
        parts = rel_dir.split("/")
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            if sub in self._dirs:
                continue
            path = self.root / sub
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    raise UnsafePath(f"{sub!r} is a symlink in the target") from None
                if not stat.S_ISDIR(mode):
                    raise UnsafePath(f"{sub!r} is a file in the target, not a directory") from None
            except OSError as exc:
                raise _target_error(exc, path) from exc
            with self._lock:
                self._dirs.add(sub)

    def temp_for(self, rel: str) -> Path:
        parent, _, _ = rel.rpartition("/")
        name = (
            TEMP_PREFIX
            + hashlib.sha1(rel.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()[:20]
        )
        return self.root / parent / name if parent else self.root / name

    def create_temp(self, rel: str) -> tuple[int, Path]:
        parent = rel.rpartition("/")[0]
        if parent:
            self.ensure_dir(parent)
        tmp = self.temp_for(rel)
        for _ in range(3):
            try:
                return os.open(tmp, _OPEN_FLAGS, 0o644), tmp
            except FileExistsError:
                # Left by a killed run (or planted as a symlink): removed, never opened through.
                _discard(tmp)
            except OSError as exc:
                raise _target_error(exc, tmp) from exc
        raise UnsafePath(f"cannot create a temporary file for {rel!r}")

    def publish(self, tmp: Path, rel: str, *, mtime: float) -> None:
        """Give the finished file the object's time and its real name."""
        final = self.root / rel
        try:
            if mtime:
                os.utime(tmp, (mtime, mtime), follow_symlinks=False)
            os.rename(tmp, final)
        except IsADirectoryError:
            _discard(tmp)
            raise UnsafePath(f"{rel!r} is a directory in the target") from None
        except OSError as exc:
            _discard(tmp)
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise UnsafePath(f"{rel!r} is a directory in the target") from None
            raise _target_error(exc, final) from exc

    def is_whole(self, rel: str, *, size: int, mtime: float | None = None) -> bool:
        """Whether a regular file (not a symlink) of ``size`` bytes sits at ``rel`` (and, if given, ``mtime``)."""
        try:
            st = os.lstat(self.root / rel)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return False
        return mtime is None or abs(st.st_mtime - mtime) < 0.001

    def remove(self, rel: str) -> bool:
        """Remove a file an earlier run wrote, if its directories are still real directories."""
        parts = rel.split("/")
        path = self.root
        for part in parts[:-1]:
            path = path / part
            try:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    return False
            except OSError:
                return False
        try:
            if stat.S_ISREG(os.lstat(path / parts[-1]).st_mode):
                os.unlink(path / parts[-1])
                return True
        except OSError:
            return False
        return False

    def discard(self, tmp: Path) -> None:
        _discard(tmp)

    def space(self) -> tuple[int, int, int]:
        """The target's file system: (size, bytes free to us, block size), from one ``statvfs``."""
        try:
            st = os.statvfs(self.root)
        except OSError as exc:
            raise _target_error(exc, self.root) from exc
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, st.f_frsize or 4096

    @staticmethod
    def start_writeback(fd: int, size: int) -> None:
        """Start writing a finished file's pages to disk now, without waiting (``sync_file_range``
        with ``SYNC_FILE_RANGE_WRITE``): the flush at the end of a durable copy then finds most of
        the data already written instead of all of it, as the kernel's own writeback would have had
        it for a slower copier. Nothing where the call is missing (not Linux)."""
        if _SYNC_FILE_RANGE is None or size <= 0:
            return
        _SYNC_FILE_RANGE(fd, ctypes.c_longlong(0), ctypes.c_longlong(size), _SYNC_FILE_RANGE_WRITE)

    def sync(self) -> None:
        """Flush the target's file system only (``syncfs``), not every disk of the node."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
                os.sync()
        except (OSError, AttributeError):
            os.sync()  # no syncfs (not Linux): the whole machine, slower but as safe
        finally:
            os.close(fd)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def full(exc: OSError, what: str) -> TargetFull | None:
    """The error for a write that met a full volume or quota (ENOSPC, EDQUOT); None for other errors."""
    if exc.errno not in NO_SPACE:
        return None
    why = "no space left on the target volume" if exc.errno == errno.ENOSPC else "the disk quota is exhausted"
    return TargetFull(
        f"{why} (writing {what}); the partial files of this run were removed: make the volume larger "
        "(a PVC with more spec.resources.requests.storage) or free space on it, then retry"
    )


def _target_error(exc: OSError, path: Path) -> TargetError:
    no_room = full(exc, path.name)
    if no_room is not None:
        return no_room
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return TargetError(f"cannot write in the target: {exc.strerror} ({path.name})")
    return TargetError(f"cannot write in the target: {exc.strerror or exc} ({path.name})")
