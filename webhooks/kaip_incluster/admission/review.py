"""AdmissionReview v1: reading the request envelope and building the answer.

The answer echoes ``apiVersion``, ``kind`` and ``uid`` (the apiserver rejects anything else), carries
``status`` only when denying, the patch as base64 JSONPatch and warnings cut to the advised length.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from kaip_incluster.admission.errors import MalformedReview

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
#: The apiserver truncates a warning above 256 characters and drops them all above 4096 in total.
WARNING_LIMIT = 256
WARNINGS_TOTAL_LIMIT = 4000
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


@dataclass(frozen=True)
class AdmissionRequest:
    """The fields of ``request`` that our decisions use."""

    uid: str
    operation: str
    namespace: str
    name: str
    kind: str
    object: Mapping[str, Any] | None
    dry_run: bool = False
    username: str = ""


@dataclass(frozen=True)
class Verdict:
    """A decision: allowed or not, why, and what to change (JSONPatch operations)."""

    allowed: bool = True
    message: str = ""
    code: int = 200
    patch: Sequence[Mapping[str, Any]] = ()
    warnings: Sequence[str] = ()
    audit: Mapping[str, str] = field(default_factory=dict)


def _text(value: Any, what: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise MalformedReview(f"request.{what} must be a {'non-empty ' if required else ''}string")
    return value


def parse(body: bytes) -> AdmissionRequest:
    """Read an AdmissionReview v1 request; :class:`MalformedReview` says what is wrong with it."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedReview("the body is not JSON") from exc
    if not isinstance(doc, dict):
        raise MalformedReview("the body is not a JSON object")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise MalformedReview(f"expected apiVersion {API_VERSION} and kind {KIND}")
    req = doc.get("request")
    if not isinstance(req, dict):
        raise MalformedReview("request is missing or not an object")
    operation = _text(req.get("operation"), "operation", required=True)
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(OPERATIONS)}")
    kind = req.get("kind")
    if not isinstance(kind, dict):
        raise MalformedReview("request.kind must be an object")
    obj = req.get("object")
    if obj is not None and not isinstance(obj, dict):
        raise MalformedReview("request.object must be an object")
    dry_run = req.get("dryRun", False)
    if not isinstance(dry_run, bool) and dry_run is not None:
        raise MalformedReview("request.dryRun must be a boolean")
    user_info = req.get("userInfo")
    user: dict[str, Any] = user_info if isinstance(user_info, dict) else {}
    return AdmissionRequest(
        uid=_text(req.get("uid"), "uid", required=True),
        operation=operation,
        namespace=_text(req.get("namespace"), "namespace"),
        name=_text(req.get("name"), "name"),
        kind=_text(kind.get("kind"), "kind.kind"),
        object=obj,
        dry_run=bool(dry_run),
        username=str(user.get("username") or ""),
    )


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _warnings(items: Sequence[str]) -> list[str]:
    kept: list[str] = []
    total = 0
    for item in items:
        text = _cut(item, WARNING_LIMIT)
        if total + len(text) > WARNINGS_TOTAL_LIMIT:
            break
        kept.append(text)
        total += len(text)
    return kept


def build_response(uid: str, verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview answer for ``verdict``."""
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {"code": verdict.code, "message": verdict.message}
    if verdict.allowed and verdict.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(list(verdict.patch))).decode()
    if verdict.warnings:
        response["warnings"] = _warnings(verdict.warnings)
    if verdict.audit:
        response["auditAnnotations"] = dict(verdict.audit)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
