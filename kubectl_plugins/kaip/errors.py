"""Error types of the suite, one per kind of failure, each with the exit code the CLI returns.

Rule: messages name fields, resources and fixes, never a secret value. Payloads quoted from servers
are cut short (:func:`shorten`) before they reach a message.
"""

from __future__ import annotations

import enum


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
