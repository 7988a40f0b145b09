"""Errors of the data loader; each ``reason`` is usable as the ``DataLoaded`` condition's reason.

The object-store ones are defined in :mod:`kaip.storage.errors` (the layer below) and re-exported
here, so a caller of the copier needs this module only.
"""

from __future__ import annotations

from collections.abc import Sequence

from kaip.errors import ExitCode
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


__all__ = [
    "AccessDenied",
    "BadAnswer",
    "ChecksumMismatch",
    "InvalidSource",
    "ObjectChanged",
    "SourceNotFound",
    "StorageError",
    "StoreUnreachable",
    "TargetError",
    "Throttled",
    "TransferFailed",
    "UnsafeKeys",
]
