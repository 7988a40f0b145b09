"""Errors of the object stores, chosen by HTTP status or cause, each with a condition ``reason``.

Rule: a message names the bucket, the key and the fix; it never quotes a credential, and a server's
payload is cut short (:func:`kaip.errors.shorten`) before it reaches a message.
"""

from __future__ import annotations

from kaip.errors import ExitCode, KaipError, UsageError


class StorageError(KaipError):
    """Base of the object-store errors; ``reason`` is usable as a Kubernetes condition reason."""

    reason = "TransferFailed"


class SourceNotFound(StorageError):
    """The bucket does not exist, or nothing lies under the prefix."""

    exit_code = ExitCode.NOT_FOUND
    reason = "SourceNotFound"


class AccessDenied(StorageError):
    """The store refused the credentials (401/403), or none were given for a private bucket."""

    exit_code = ExitCode.FORBIDDEN
    reason = "AccessDenied"


class StoreUnreachable(StorageError):
    """No connection to the endpoint (refused, DNS, TLS, timeout) after the retries."""

    exit_code = ExitCode.UNREACHABLE
    reason = "StoreUnreachable"
    temporary = True


class ProxyUnusable(StorageError):
    """HTTPS_PROXY / HTTP_PROXY names a proxy we cannot use (not ``http://``, no host or port)."""

    exit_code = ExitCode.CONFIG
    reason = "StoreUnreachable"


class Throttled(StorageError):
    """The store kept answering 503 SlowDown / 429 after the retries."""

    reason = "Throttled"
    temporary = True


class TransferFailed(StorageError):
    """A transient failure (5xx, connection reset) that outlasted the retries."""

    reason = "TransferFailed"
    temporary = True


class ObjectChanged(StorageError):
    """An object changed (or vanished) between the listing and its download."""

    reason = "SourceChanged"
    temporary = True


class BadAnswer(StorageError):
    """The store answered something we cannot use (4xx other than auth/not-found, bad XML/JSON)."""

    exit_code = ExitCode.SERVER
    reason = "StoreError"


class InvalidSource(UsageError):
    """A location (from a flag or an annotation) is not ``s3://bucket/prefix`` or ``gs://bucket/prefix``."""

    reason = "InvalidSource"
