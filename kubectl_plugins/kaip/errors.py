"""Error types of the suite, one per kind of failure, each with the exit code the CLI returns.

Rule: messages name fields, resources and fixes, never a secret value. Payloads quoted from servers
are cut short (:func:`shorten`) before they reach a message.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator


class ExitCode(enum.IntEnum):
    """Exit codes of every kubectl-* plugin (documented in README.md and docs/)."""

    OK = 0
    FAILURE = 1  # the operation ran and reports failure (a job that failed, problems found)
    USAGE = 2  # bad flags or arguments (click's own code)
    CONFIG = 3  # no kubeconfig, unknown context/cluster/user, unreadable credentials
    UNREACHABLE = 4  # server unreachable, TLS failure, request timeout
    UNAUTHORIZED = 5  # HTTP 401
    FORBIDDEN = 6  # HTTP 403
    NOT_FOUND = 7  # HTTP 404 for a named object
    API_MISSING = 8  # a resource type (CRD) the cluster does not serve
    REJECTED = 9  # the server refused the object: 409 conflict, 422 invalid, admission denied
    SERVER = 10  # 5xx or an answer we cannot read
    MISSING_EXTRA = 11  # an optional dependency is not installed: the message names the pip command


def shorten(text: str, limit: int = 300) -> str:
    """Cut ``text`` to ``limit`` characters on one line, so a server payload never floods a message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class KaipError(Exception):
    """Base of every error the CLI turns into one line and an exit code."""

    exit_code: ExitCode = ExitCode.FAILURE
    #: Temporary errors may succeed when tried again; controllers requeue them.
    temporary: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(KaipError):
    exit_code = ExitCode.USAGE


class ConfigError(KaipError):
    exit_code = ExitCode.CONFIG


class UnreachableError(KaipError):
    exit_code = ExitCode.UNREACHABLE
    temporary = True


class OperationFailed(KaipError):
    exit_code = ExitCode.FAILURE


class MissingExtra(KaipError):
    """An optional dependency is not installed; the message names the ``pip install`` that adds it.

    The base install (``pip install kaip``) holds the plugins; the cloud SDKs and the in-cluster
    servers' libraries come with extras (pyproject.toml). Raised by :func:`needs_extra`, the one way
    to say it.
    """

    exit_code = ExitCode.MISSING_EXTRA

    def __init__(self, *, module: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs {module}, which is not installed: pip install 'kaip[{extra}]'")
        self.module = module
        self.extra = extra


#: Our own packages: a missing one of these is a broken install, not a missing extra.
_FIRST_PARTY = frozenset({"kaip", "kaip_incluster", "kaip_testbed"})


@contextlib.contextmanager
def needs_extra(extra: str, *, purpose: str) -> Iterator[None]:
    """Turn a missing third-party module imported in the block into :class:`MissingExtra`.

    The imports stay plain ``import`` statements inside the block, so import-linter and mypy still
    see them::

        with needs_extra("s3", purpose="S3 credentials from boto3's chain"):
            import boto3
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if not top or top in _FIRST_PARTY:
            raise
        raise MissingExtra(module=top, extra=extra, purpose=purpose) from None
