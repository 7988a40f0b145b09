"""Sample credentials Secrets and key files for the unit tests (imported as a plain module)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def rsa_pem() -> str:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_pem() -> str:
    return pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def key_file(rsa_pem: str) -> dict[str, Any]:
    return {
        "type": "service_account",
        "project_id": "ml-platform",
        "private_key_id": "0123456789abcdef",
        "private_key": rsa_pem,
        "client_email": "trainer@ml-platform.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "universe_domain": "googleapis.com",
    }


def secret(
    kind: str, data: dict[str, str | bytes], *, string_data: dict[str, str] | None = None
) -> dict[str, Any]:
    encoded = {
        k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode() for k, v in data.items()
    }
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "type": kind}
    if encoded:
        obj["data"] = encoded
    if string_data is not None:
        obj["stringData"] = string_data
    return obj


def gcp_secret(doc: Any) -> dict[str, Any]:
    return secret("kaip.dev/gcp-credentials", {"key.json": json.dumps(doc)})
