"""The only package that talks to object stores: S3 (and S3-compatible servers) and GCS.

Rule: boto3, google-auth and requests are imported on first use, inside :mod:`kaip.storage.s3` and
:mod:`kaip.storage.gcs`, so ``--help`` stays fast. Both stores sit behind :class:`Store`: list under a
prefix, ranged reads that resume a broken stream, published checksums, and one retry policy
(capped exponential back-off with jitter) for throttling (S3 503 SlowDown, GCS 429) and transient
errors. Errors are :mod:`kaip.storage.errors` types with a condition ``reason``.
"""

from __future__ import annotations

from pathlib import Path

from kaip.storage.base import ObjectInfo, Store, StoreConfig


def open_store(scheme: str, config: StoreConfig) -> Store:
    """A store for ``s3`` or ``gs``."""
    if scheme == "s3":
        from kaip.storage.s3 import S3Store

        return S3Store(config)
    if scheme == "gs":
        from kaip.storage.gcs import GCSStore

        return GCSStore(config)
    raise ValueError(f"unknown scheme {scheme!r}")


def upload_file(local: Path, uri: str) -> None:
    """Upload one local file to an ``s3://`` or ``gs://`` object URI (see :mod:`kaip.storage.upload`)."""
    from kaip.storage.upload import upload_file as upload

    upload(local, uri)


__all__ = ["ObjectInfo", "Store", "StoreConfig", "open_store", "upload_file"]
