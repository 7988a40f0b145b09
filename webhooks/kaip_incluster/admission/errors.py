"""Errors of the admission decisions: a malformed review (HTTP 400) or a refused object."""

from __future__ import annotations

from kaip.errors import ExitCode, KaipError


class MalformedReview(KaipError):
    """The request body is not an AdmissionReview v1 we can answer; the server replies HTTP 400."""

    exit_code = ExitCode.USAGE


class Refused(KaipError):
    """The object is refused; the message goes to the user as the AdmissionReview status."""

    exit_code = ExitCode.REJECTED

    def __init__(self, message: str, *, code: int = 400) -> None:
        super().__init__(message)
        self.code = code
