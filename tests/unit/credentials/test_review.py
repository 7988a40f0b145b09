"""AdmissionReview v1 envelopes: what the apiserver accepts back, and what is refused as malformed."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest

from kaip_incluster.admission.errors import MalformedReview
from kaip_incluster.admission.review import Verdict, build_response, parse


def envelope(**request: Any) -> bytes:
    base: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Secret"},
        "operation": "CREATE",
        "namespace": "team-a",
        "name": "creds",
        "object": {"type": "Opaque"},
        "dryRun": False,
    }
    base.update(request)
    return orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": base})


def test_request_fields_are_read() -> None:
    req = parse(envelope(dryRun=True, userInfo={"username": "alice"}))
    assert (req.uid, req.operation, req.namespace, req.name, req.kind) == (
        "705ab4f5-6393-11e8-b7cc-42010a800002",
        "CREATE",
        "team-a",
        "creds",
        "Secret",
    )
    assert req.dry_run and req.username == "alice"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "the body is not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "expected apiVersion"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request is missing"),
        (envelope(uid=""), "request.uid must be a non-empty string"),
        (envelope(uid=7), "request.uid must be a non-empty string"),
        (envelope(operation="PATCH"), "request.operation must be one of"),
        (envelope(kind="Secret"), "request.kind must be an object"),
        (envelope(object=[1]), "request.object must be an object"),
        (envelope(dryRun="yes"), "request.dryRun must be a boolean"),
    ],
)
def test_malformed_reviews_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedReview) as caught:
        parse(body)
    assert reason in caught.value.message


def test_answer_echoes_type_and_uid_and_encodes_the_patch() -> None:
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]
    answer = build_response("u-1", Verdict(patch=ops, warnings=["w"]))
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == "u-1" and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == ops
    assert response["warnings"] == ["w"]
    assert "status" not in response


def test_denial_carries_status_and_no_patch() -> None:
    ops = [{"op": "add", "path": "/x", "value": 1}]
    response = build_response("u", Verdict(allowed=False, code=422, message="no", patch=ops))["response"]
    assert response["status"] == {"code": 422, "message": "no"}
    assert "patch" not in response


def test_warnings_are_cut_to_what_the_apiserver_keeps() -> None:
    many = ["x" * 500] * 40
    warnings = build_response("u", Verdict(warnings=many))["response"]["warnings"]
    assert all(len(w) <= 256 for w in warnings)
    assert sum(len(w) for w in warnings) <= 4096
