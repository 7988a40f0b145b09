"""Every malformed value gets a precise denial: the field, the type expected, never "try again".

The webhook answers "failed unexpectedly" only when a rule raises; these tests feed the rules wrong
JSON types in every field of key.json and arbitrary Secrets, and assert that none raises.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from credentials_samples import gcp_secret, secret
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaip_incluster.admission.gcpkey import FIELD_TYPES, NESTED_TYPES, json_type
from kaip_incluster.admission.secrets import validate_secret

GCP = "kaip.dev/gcp-credentials"
EXPECTED = {str: "a string", dict: "an object", int: "an integer"}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
WRONG: dict[type, list[Any]] = {
    str: [["service_account"], 1, 1.5, None, True, {"a": "b"}],
    dict: ["x", [], 0, None, False],
    int: ["3600", 1.5, None, True, [], {}],
}
EXTERNAL = {
    "type": "external_account",
    "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    "token_url": "https://sts.googleapis.com/v1/token",
    "credential_source": {"url": "http://169.254.169.254/token", "headers": {"Metadata": "True"}},
}


def denial(doc: Any) -> str:
    verdict = validate_secret(gcp_secret(doc))
    assert not verdict.allowed
    assert "unexpectedly" not in verdict.message
    return verdict.message


def cases() -> list[tuple[str, str, Any]]:
    found: list[tuple[str, str, Any]] = []
    for name, expected in FIELD_TYPES.items():
        found.extend(("", name, value) for value in WRONG[expected])
    for path, fields in NESTED_TYPES.items():
        for name, expected in fields.items():
            found.extend((path, name, value) for value in WRONG[expected])
    return found


@pytest.mark.parametrize(("path", "name", "value"), cases())
@pytest.mark.parametrize("base", ["service_account", "external_account"])
def test_a_wrong_type_in_any_field_is_denied_naming_the_field_and_the_type(
    key_file: dict[str, Any], base: str, path: str, name: str, value: Any
) -> None:
    doc = json.loads(json.dumps(key_file if base == "service_account" else EXTERNAL))
    target = doc
    for part in path.split(".") if path else []:
        target = target.setdefault(part, {})
    target[name] = value
    where = f"{path}.{name}" if path else name
    types = NESTED_TYPES[path] if path else FIELD_TYPES
    message = denial(doc)
    assert f"field {where} must be {EXPECTED[types[name]]}, not {json_type(value)}" in message


def test_the_issues_list_type_is_named() -> None:
    assert denial({"type": ["service_account"]}) == (
        'Secret of type kaip.dev/gcp-credentials: "key.json": field type must be a string, not an array'
    )


def test_a_byte_order_mark_is_named_as_such(key_file: dict[str, Any]) -> None:
    raw = b"\xef\xbb\xbf" + json.dumps(key_file).encode()
    verdict = validate_secret(secret(GCP, {"key.json": raw}))
    assert not verdict.allowed
    assert "byte order mark (BOM)" in verdict.message and "not JSON" not in verdict.message
    utf16 = validate_secret(secret(GCP, {"key.json": json.dumps(key_file).encode("utf-16")}))
    assert "UTF-16" in utf16.message
    aws = validate_secret(
        secret(
            "kaip.dev/aws-credentials",
            {"aws_access_key_id": b"\xef\xbb\xbfAKIA", "aws_secret_access_key": "s"},
        )
    )
    assert 'key "aws_access_key_id": starts with a UTF-8 byte order mark (BOM)' in aws.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"[" * 50000, "nested too deeply"),
        (b"9" * 5000, "a number too long"),
        (b"null", "must be a JSON object"),
        (b'"text"', "(it is a string)"),
    ],
)
def test_json_the_parser_cannot_take_is_named(raw: bytes, expected: str) -> None:
    verdict = validate_secret(secret(GCP, {"key.json": raw}))
    assert not verdict.allowed and expected in verdict.message


@pytest.mark.parametrize("endpoint", ["http://[::1", "https://[", "http://user@[x]:9000"])
def test_urls_the_parser_refuses_are_denied_not_crashed_on(endpoint: str) -> None:
    verdict = validate_secret(
        secret(
            "kaip.dev/aws-credentials",
            {"aws_access_key_id": "minio", "aws_secret_access_key": "minio123", "endpoint_url": endpoint},
        )
    )
    assert not verdict.allowed and 'key "endpoint_url"' in verdict.message


def test_wrong_types_in_the_secret_itself_are_named() -> None:
    verdict = validate_secret({"type": GCP, "stringData": {"key.json": {"type": "service_account"}}})
    assert 'key "key.json" in stringData: the value must be a string' in verdict.message
    verdict = validate_secret({"type": GCP, "stringData": ["key.json"]})
    assert "stringData must be a map of keys to strings" in verdict.message


@st.composite
def key_files(draw: st.DrawFn) -> bytes:
    """A valid-looking key file with some fields given arbitrary JSON, or arbitrary bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=60))
    doc: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from([KEY, EXTERNAL]))))
    names = [
        *sorted(FIELD_TYPES),
        "credential_source.url",
        "credential_source.format",
        "credential_source.headers",
    ]
    for name in draw(st.lists(st.sampled_from(names), max_size=4)):
        parent, _, leaf = name.rpartition(".")
        target = doc.get(parent) if parent else doc
        if isinstance(target, dict):
            target[leaf] = draw(json_values)
    text = json.dumps(doc).encode()
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"])) + text


KEY = {
    "type": "service_account",
    "client_email": "a@p.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    "project_id": "p",
    "private_key_id": "k",
}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(raw=key_files())
def test_no_key_file_gets_the_unexpected_answer(raw: bytes) -> None:
    verdict = validate_secret(secret(GCP, {"key.json": raw}))  # raises if a rule is not total
    assert "unexpectedly" not in verdict.message
    assert verdict.allowed or verdict.message.startswith(f"Secret of type {GCP}: ")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    obj=st.fixed_dictionaries(
        {"type": st.sampled_from([GCP, "kaip.dev/aws-credentials"])},
        optional={
            "data": st.dictionaries(
                st.sampled_from(
                    ["aws_access_key_id", "aws_secret_access_key", "endpoint_url", "region", "key.json"]
                ),
                st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()) | json_values,
            )
            | json_values,
            "stringData": st.dictionaries(st.text(max_size=15), st.text(max_size=40) | json_values)
            | json_values,
        },
    )
)
def test_no_secret_gets_the_unexpected_answer(obj: dict[str, Any]) -> None:
    verdict = validate_secret(obj)
    assert "unexpectedly" not in verdict.message
