"""Errors of the data loader, and the ``DataLoaded`` reason each one puts on the PVC.

The object-store ones are defined in :mod:`kaip.storage.errors` (the layer below, which knows
nothing of preload) and re-exported here, so a caller of the copier needs this module only;
:func:`condition_reason` maps any of them to the condition's reason (names in
:mod:`kaip.resources.preload`).
"""

from __future__ import annotations

from collections.abc import Sequence

from kaip.errors import ExitCode
from kaip.resources import preload as names
from kaip.storage.errors import (
    AccessDenied,
    BadAnswer,
    InvalidSource,
    ObjectChanged,
    SourceNotFound,
    StorageError,
    StoreUnreachable,
    Throttled,
    TransferFailed,
)


class ChecksumMismatch(StorageError):
    """Downloaded bytes differ from the checksum the store published (the file is not kept)."""

    reason = "ChecksumMismatch"
    temporary = True


class TargetError(StorageError):
    """The target directory cannot take the data: not a directory, a symlink in the way, disk full."""

    exit_code = ExitCode.FAILURE
    reason = "TargetUnwritable"


class InsufficientCapacity(TargetError):
    """The listing holds more bytes than the volume can take; found before anything is copied."""

    reason = names.REASON_INSUFFICIENT_CAPACITY


class TargetFull(TargetError):
    """The volume ran out of space or quota (ENOSPC, EDQUOT) during the copy: retrying cannot help."""

    reason = names.REASON_TARGET_FULL


class UnsafeKeys(StorageError):
    """Some keys were refused because they would land outside the target or collide."""

    reason = "UnsafeKeys"

    def __init__(self, message: str, *, refused: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.refused = list(refused)

    @classmethod
    def of(cls, refused: Sequence[tuple[str, str]], *, shown: int = 3) -> UnsafeKeys:
        sample = "; ".join(f"{key!r}: {why}" for key, why in refused[:shown])
        more = f" (and {len(refused) - shown} more)" if len(refused) > shown else ""
        return cls(f"{len(refused)} object key(s) refused: {sample}{more}", refused=refused)


def condition_reason(exc: BaseException) -> str:
    """The ``DataLoaded`` reason for a load that ended with ``exc``.

    A source that is no ``s3://``/``gs://`` location is ``InvalidSource``; an object-store or loader
    error keeps its own reason (``SourceNotFound``, ``AccessDenied``, ``UnsafeKeys``…); anything
    else is ``LoadFailed``.
    """
    if isinstance(exc, InvalidSource):
        return names.REASON_INVALID
    if isinstance(exc, StorageError):
        return exc.reason
    return names.REASON_FAILED


__all__ = [
    "AccessDenied",
    "BadAnswer",
    "ChecksumMismatch",
    "InsufficientCapacity",
    "InvalidSource",
    "ObjectChanged",
    "SourceNotFound",
    "StorageError",
    "StoreUnreachable",
    "TargetError",
    "TargetFull",
    "Throttled",
    "TransferFailed",
    "UnsafeKeys",
    "condition_reason",
]
