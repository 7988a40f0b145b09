"""API errors, chosen by HTTP status and the server's Status object, read in one place.

Each carries the exit code the CLI returns and whether trying again may help. The server's message
is kept (it says which verb on which resource was refused) but cut short; request bodies are never
quoted, so a Secret's data cannot reach a message.
"""

from __future__ import annotations

from typing import Any

from kaip.errors import ExitCode, KaipError, UnreachableError, shorten
from kaip.resources.kinds import Resource


class ApiError(KaipError):
    """The API server answered with an error status."""

    exit_code = ExitCode.SERVER

    def __init__(
        self, message: str, *, status: int = 0, reason: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.details = details or {}


class Unauthorized(ApiError):
    exit_code = ExitCode.UNAUTHORIZED


class Forbidden(ApiError):
    exit_code = ExitCode.FORBIDDEN


class NotFound(ApiError):
    exit_code = ExitCode.NOT_FOUND


class ApiMissing(NotFound):
    """The cluster does not serve a resource type (a CRD is not installed)."""

    exit_code = ExitCode.API_MISSING


class Conflict(ApiError):
    """409: already exists, or a write lost a race (resourceVersion)."""

    exit_code = ExitCode.REJECTED
    temporary = True


class Invalid(ApiError):
    """400/422 or an admission denial: the server refused the object as it is."""

    exit_code = ExitCode.REJECTED


class ServerError(ApiError):
    exit_code = ExitCode.SERVER
    temporary = True


class RequestTimeout(UnreachableError):
    pass


def api_missing(resource: Resource) -> ApiMissing:
    hint = f": {resource.install_hint}" if resource.install_hint else ""
    return ApiMissing(
        f"the cluster does not serve {resource.qualified}/{resource.version} ({resource.kind}){hint}",
        status=404,
        reason="NotFound",
    )


_LABELS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid"}


def from_status(status: int, body: Any, *, resource: Resource | None = None) -> ApiError:
    """Build the error for a non-2xx answer from its decoded Status object (or raw text)."""
    reason, message = "", ""
    details: dict[str, Any] = {}
    if isinstance(body, dict):
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or "")
        if isinstance(body.get("details"), dict):
            details = body["details"]
    elif body:
        message = str(body)
    label = reason or _LABELS.get(status, f"HTTP {status}")
    # kubectl's wording: the server's own message (`nodes "x" not found`), which the CLI prints as
    # `error: ...` like every other error, without kubectl's `Error from server (NotFound): `.
    text = shorten(message) or f"the server answered {label} (HTTP {status})"
    if status == 401:
        return Unauthorized(
            f"You must be logged in to the server ({label}): the credentials of this kubeconfig user "
            "were refused; log in again or check the token",
            status=status,
            reason=reason,
        )
    if status == 403:
        return Forbidden(text, status=status, reason=reason, details=details)
    if status == 404:
        # A missing object names itself in details; a missing resource type does not.
        if resource is not None and not details.get("name"):
            return api_missing(resource)
        return NotFound(text, status=status, reason=reason, details=details)
    if status == 409:
        return Conflict(text, status=status, reason=reason, details=details)
    if status in (400, 422):
        return Invalid(text, status=status, reason=reason, details=details)
    if status == 429 or status >= 500:
        return ServerError(text, status=status, reason=reason, details=details)
    return ApiError(text, status=status, reason=reason, details=details)
