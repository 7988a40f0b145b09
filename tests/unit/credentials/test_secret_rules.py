"""The validating webhook's rules: what a user who writes a credentials Secret is told."""

from __future__ import annotations

import json
from typing import Any

import pytest
from credentials_samples import AWS_ID, AWS_SECRET, gcp_secret, secret

from kaip_incluster.admission.secrets import validate_secret

AWS = "kaip.dev/aws-credentials"


def aws(**data: str | bytes) -> dict[str, Any]:
    return secret(AWS, dict(data))


def test_complete_aws_secret_is_admitted_without_warnings() -> None:
    verdict = validate_secret(
        aws(aws_access_key_id=AWS_ID, aws_secret_access_key=AWS_SECRET, region="eu-west-1")
    )
    assert verdict.allowed
    assert list(verdict.warnings) == []


def test_string_data_is_validated_like_data() -> None:
    good = secret(AWS, {}, string_data={"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET})
    assert validate_secret(good).allowed
    bad = secret(AWS, {}, string_data={"aws_access_key_id": AWS_ID})
    verdict = validate_secret(bad)
    assert not verdict.allowed
    assert 'key "aws_secret_access_key" is missing' in verdict.message


def test_string_data_overrides_data_as_the_apiserver_does() -> None:
    obj = secret(AWS, {"aws_access_key_id": AWS_ID, "aws_secret_access_key": ""})
    obj["stringData"] = {"aws_secret_access_key": AWS_SECRET}
    assert validate_secret(obj).allowed


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"aws_secret_access_key": AWS_SECRET}, 'key "aws_access_key_id" is missing'),
        ({"aws_access_key_id": "", "aws_secret_access_key": AWS_SECRET}, 'key "aws_access_key_id" is empty'),
        (
            {"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET + "\n"},
            'key "aws_secret_access_key": ends with a line break',
        ),
        (
            {"aws_access_key_id": "AKIA IOSFODNN7EXAMPLE", "aws_secret_access_key": AWS_SECRET},
            'key "aws_access_key_id": contains whitespace',
        ),
        (
            {"aws_access_key_id": AWS_ID, "aws_secret_access_key": "caf\u00e9" + AWS_SECRET[4:]},
            'key "aws_secret_access_key": must be ASCII text',
        ),
        (
            {"aws_access_key_id": AWS_ID, "aws_secret_access_key": "abc\x07def"},
            'key "aws_secret_access_key": contains non-printable characters',
        ),
        (
            {"aws_access_key_id": "ASIAIOSFODNN7EXAMPLE", "aws_secret_access_key": AWS_SECRET},
            'key "aws_session_token" is missing: temporary access key ids (ASIA…) need a session token',
        ),
        (
            {"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET, "endpoint_url": "minio:9000"},
            'key "endpoint_url": must be an http(s) URL',
        ),
        (
            {"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET, "endpoint_url": "ftp://minio"},
            'key "endpoint_url": must be an http(s) URL',
        ),
        (
            {
                "aws_access_key_id": AWS_ID,
                "aws_secret_access_key": AWS_SECRET,
                "endpoint_url": "https://admin:pw@minio:9000",
            },
            'key "endpoint_url": must not hold a user or password',
        ),
        (
            {"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET, "region": ""},
            'key "region" is empty',
        ),
        ({"aws_access_key_id": "A" * 129, "aws_secret_access_key": AWS_SECRET}, "longer than 128 characters"),
    ],
)
def test_broken_aws_secret_is_denied_naming_key_and_rule(data: dict[str, str], expected: str) -> None:
    verdict = validate_secret(aws(**data))
    assert not verdict.allowed
    assert verdict.code == 422
    assert verdict.message.startswith("Secret of type kaip.dev/aws-credentials: ")
    assert expected in verdict.message
    for value in data.values():
        if len(value.strip()) >= 8:
            assert value.strip() not in verdict.message


def test_every_problem_is_reported_at_once() -> None:
    verdict = validate_secret(aws(aws_access_key_id=AWS_ID + "\n"))
    assert 'key "aws_access_key_id": ends with a line break' in verdict.message
    assert 'key "aws_secret_access_key" is missing' in verdict.message


def test_minio_keys_are_admitted_with_the_unusual_parts_as_warnings() -> None:
    verdict = validate_secret(
        aws(
            aws_access_key_id="minio-user",
            aws_secret_access_key="short",
            endpoint_url="http://minio.storage:9000",
            region="site-a",
        )
    )
    assert verdict.allowed
    text = " | ".join(verdict.warnings)
    assert "http:// sends requests unencrypted" in text
    assert "has characters other than letters, digits and _" in text
    assert "minio-user" not in text and "short" not in text


def test_aws_shaped_checks_warn_only_without_an_endpoint() -> None:
    verdict = validate_secret(
        aws(aws_access_key_id="storagegrid1", aws_secret_access_key="x" * 12, region="mars")
    )
    assert verdict.allowed
    text = " | ".join(verdict.warnings)
    assert "does not look like an AWS key id" in text
    assert "AWS secret keys are 40 characters long" in text
    assert "does not look like an AWS region" in text


def test_session_token_and_misspelled_keys_are_warned_about() -> None:
    verdict = validate_secret(
        aws(
            aws_access_key_id="ASIAIOSFODNN7EXAMPLE",
            aws_secret_access_key=AWS_SECRET,
            aws_session_token="FQoGZXIvYXdzEXAMPLE",
            AWS_DEFAULT_REGION="us-east-1",
        )
    )
    assert verdict.allowed
    text = " | ".join(verdict.warnings)
    assert "session credentials expire" in text
    assert 'key "AWS_DEFAULT_REGION" is not used; did you mean "region"?' in text


def test_invalid_base64_is_denied() -> None:
    obj = aws(aws_access_key_id=AWS_ID, aws_secret_access_key=AWS_SECRET)
    obj["data"]["aws_secret_access_key"] = "not base64!!"
    verdict = validate_secret(obj)
    assert not verdict.allowed
    assert 'key "aws_secret_access_key": the value is not valid base64' in verdict.message


def test_other_secret_types_are_not_judged() -> None:
    assert validate_secret({"type": "Opaque", "data": {"x": "!!"}}).allowed


# -- GCP ------------------------------------------------------------------------------------------


def test_service_account_key_file_is_admitted(key_file: dict[str, Any]) -> None:
    verdict = validate_secret(gcp_secret(key_file))
    assert verdict.allowed
    assert list(verdict.warnings) == []


def _denied(doc: Any) -> str:
    verdict = validate_secret(
        gcp_secret(doc)
        if not isinstance(doc, bytes)
        else secret("kaip.dev/gcp-credentials", {"key.json": doc})
    )
    assert not verdict.allowed
    assert verdict.message.startswith("Secret of type kaip.dev/gcp-credentials: ")
    return verdict.message


def test_key_file_that_is_not_json_names_the_position_only() -> None:
    message = _denied(b'{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIsecret')
    assert '"key.json" is not JSON (error at line 1' in message
    assert "MIIsecret" not in message


def test_key_file_must_be_an_object() -> None:
    assert '"key.json" must be a JSON object' in _denied(["service_account"])


def test_missing_key_file() -> None:
    verdict = validate_secret(secret("kaip.dev/gcp-credentials", {"credentials.json": "{}"}))
    assert 'key "key.json" is missing' in verdict.message
    assert 'key "credentials.json" is not used; did you mean "key.json"?' in " ".join(verdict.warnings)


@pytest.mark.parametrize("field", ["client_email", "private_key", "token_uri"])
def test_required_fields(key_file: dict[str, Any], field: str) -> None:
    del key_file[field]
    assert f"field {field} is missing" in _denied(key_file)


def test_type_we_do_not_support(key_file: dict[str, Any]) -> None:
    key_file["type"] = "authorized_user"
    assert 'type "authorized_user" is not supported' in _denied(key_file)
    key_file["type"] = "something-secret-looking"
    message = _denied(key_file)
    assert "type is not supported" in message and "something-secret-looking" not in message


def test_private_key_must_be_a_pem_private_key(key_file: dict[str, Any], rsa_pem: str, ec_pem: str) -> None:
    key_file["private_key"] = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    message = _denied(key_file)
    assert "private_key is not a PEM private key" in message and "MIIEvQ" not in message
    key_file["private_key"] = rsa_pem.replace(rsa_pem.splitlines()[3], "garbage")
    assert "private_key is not a readable PEM private key" in _denied(key_file)
    key_file["private_key"] = ec_pem
    assert "private_key is not an RSA key" in _denied(key_file)


def test_email_and_token_uri_shapes(key_file: dict[str, Any]) -> None:
    key_file["client_email"] = "trainer.ml-platform"
    key_file["token_uri"] = "http://oauth2.googleapis.com/token"
    message = _denied(key_file)
    assert "client_email is not an email address" in message
    assert "token_uri must be an https:// URL" in message


def test_unusual_key_files_are_admitted_with_warnings(key_file: dict[str, Any]) -> None:
    key_file["client_email"] = "trainer@ml-platform.s3ns.iam.example.com"
    key_file["universe_domain"] = "s3nsapis.fr"
    del key_file["project_id"]
    verdict = validate_secret(gcp_secret(key_file))
    assert verdict.allowed
    text = " | ".join(verdict.warnings)
    assert "client_email is not a *.gserviceaccount.com service account" in text
    assert "universe_domain is not googleapis.com" in text
    assert "field project_id is missing" in text


def _external(source: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "credential_source": source,
    }


def test_external_account_pointing_at_a_local_file_is_denied() -> None:
    message = _denied(_external({"file": "/var/run/secrets/tokens/gcp-ksa/token"}))
    assert "credential_source points at a local file" in message
    assert "executable" in _denied(_external({"executable": {"command": "/bin/get-token"}}))


def test_external_account_with_url_source_is_admitted() -> None:
    verdict = validate_secret(gcp_secret(_external({"url": "http://metadata.internal/token"})))
    assert verdict.allowed, verdict.message


def test_denial_messages_never_hold_private_key_material(key_file: dict[str, Any]) -> None:
    key_file["token_uri"] = ""
    verdict = validate_secret(gcp_secret(key_file))
    body = json.dumps([verdict.message, list(verdict.warnings)])
    assert "PRIVATE KEY" not in body
    assert key_file["private_key"].splitlines()[1] not in body
